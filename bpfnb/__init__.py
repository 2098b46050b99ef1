"""bpfnb — a Jupyter laboratory for eBPF programs with BTF-typed kernel pointers.

>>> import bpfnb
>>> obj = bpfnb.load("kfree_skb.bpf.o")          # doctest: +SKIP
>>> res = bpfnb.verify(obj.program("trace_kfree_skb"))  # doctest: +SKIP
"""

from __future__ import annotations

from .errors import BpfnbError
from .program import Program, program

__version__ = "0.1.0"

# Heavier layers load on first use so ``import bpfnb`` stays quick.
_LAZY = {
    "load": ("bpfnb.elf", "load"),
    "Object": ("bpfnb.elf", "Object"),
    "Btf": ("bpfnb.btf", "Btf"),
    "verify": ("bpfnb.verifier", "verify"),
    "stats": ("bpfnb.verifier.stats", "stats"),
    "Vm": ("bpfnb.vm", "Vm"),
    "KernelObjects": ("bpfnb.vm", "KernelObjects"),
    # the package, callable as the x86-64 compiler (bpfnb/jit/__init__.py): the
    # same object whether or not ``bpfnb.jit.x86_64`` was imported first
    "jit": ("bpfnb.jit", None),
    "widgets": ("bpfnb.widgets", None),
    "kernel": ("bpfnb.kernel", None),
    "frames": ("bpfnb.frames", None),
    "viz": ("bpfnb.viz", None),
    "examples": ("bpfnb.examples", None),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'bpfnb' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


__all__ = ["BpfnbError", "Program", "program", *_LAZY]
