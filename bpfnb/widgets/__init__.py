"""Notebook widgets (ipywidgets 8): each also renders statically with ``_repr_html_``."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "EventsView": ".events",
    "JitViewer": ".jit",
    "VerifierStepper": ".stepper",
    "TypeWalkView": ".typewalk",
    "Walk": ".walk",
    "Visit": ".walk",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
