"""The example objects shipped with bpfnb (``bpfnb/data/examples``, built by ``make examples``)."""

from __future__ import annotations

import pathlib

from .errors import BpfnbError

ROOT = pathlib.Path(__file__).resolve().parent / "data"
EXAMPLES = ROOT / "examples"
TRACER = ROOT / "drops.bpf.o"
LOGS = ROOT / "logs"  # kernel verifier logs of the examples (Linux 6.18), for machines without BPF


def path(name: str) -> pathlib.Path:
    """The path of example ``name`` (``"count_protocols"`` or ``"count_protocols.bpf.o"``)."""
    file = EXAMPLES / (name if name.endswith(".o") else f"{name}.bpf.o")
    if not file.exists():
        known = ", ".join(sorted(p.name.removesuffix(".bpf.o") for p in EXAMPLES.glob("*.bpf.o")))
        raise BpfnbError(f"no example {name!r} (examples: {known})")
    return file


def names() -> list[str]:
    return sorted(p.name.removesuffix(".bpf.o") for p in EXAMPLES.glob("*.bpf.o"))


def log(name: str) -> str:
    """The text of shipped verifier log ``name`` (``"count_protocols_nocheck.level1"``)."""
    file = LOGS / (name if name.endswith(".log") else f"{name}.log")
    if not file.exists():
        known = ", ".join(sorted(p.stem for p in LOGS.glob("*.log")))
        raise BpfnbError(f"no verifier log {name!r} (logs: {known})")
    return file.read_text()


NOTEBOOKS = ("01_verifier_walkthrough", "02_btf_type_tracking", "03_jit_and_exception_tables",
             "04_skb_events")


def strip_outputs(model: dict, path: str = "", **_kwargs) -> None:
    """A Jupyter pre-save hook (``make lab`` installs it): the notebooks bpfnb
    ships are saved without outputs, execution counts or widget state, so running
    them in the lab never dirties the repository. Other notebooks are untouched."""
    if model.get("type") != "notebook" or pathlib.PurePath(path).stem not in NOTEBOOKS:
        return
    nb = model.get("content")
    if not nb:
        return
    for cell in nb.get("cells", ()):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    nb.get("metadata", {}).pop("widgets", None)
