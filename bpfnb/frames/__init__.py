"""DataFrames of what bpfnb sees: records decoded through BTF (``records``), drops
(``drops``), and drop datasets on disk (``dataset``: ``open_drops``)."""

from __future__ import annotations


def __getattr__(name: str):
    # submodules load on first use: ``import bpfnb.frames.drops`` stays light
    if name in ("open_drops", "write_drops", "DropDataset"):
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'bpfnb.frames' has no attribute {name!r}")


__all__ = ["DropDataset", "open_drops", "write_drops"]
