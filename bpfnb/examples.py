"""The example objects shipped with bpfnb (``bpfnb/data/examples``, built by ``make examples``)."""

from __future__ import annotations

import pathlib

from .errors import BpfnbError

ROOT = pathlib.Path(__file__).resolve().parent / "data"
EXAMPLES = ROOT / "examples"
TRACER = ROOT / "drops.bpf.o"


def path(name: str) -> pathlib.Path:
    """The path of example ``name`` (``"count_protocols"`` or ``"count_protocols.bpf.o"``)."""
    file = EXAMPLES / (name if name.endswith(".o") else f"{name}.bpf.o")
    if not file.exists():
        known = ", ".join(sorted(p.name.removesuffix(".bpf.o") for p in EXAMPLES.glob("*.bpf.o")))
        raise BpfnbError(f"no example {name!r} (examples: {known})")
    return file


def names() -> list[str]:
    return sorted(p.name.removesuffix(".bpf.o") for p in EXAMPLES.glob("*.bpf.o"))
