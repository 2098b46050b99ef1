"""Execution: the numba interpreter, its memory model and synthetic kernel objects."""

from __future__ import annotations

from ..errors import VmError
from .memory import UNMAPPED, KernelObject, KernelObjects, Memory
from .vm import RunResult, Vm


def execute_raw(insns, mem: bytes = b"") -> int:
    """The conformance engine: r1 points at ``mem`` (r2 its length), returns r0."""
    from ..program import Program

    vm = Vm(Program("conformance", tuple(insns)), max_steps=1_000_000)
    addr = vm.memory.add("mem", mem or bytes(1), kind="mem") if mem else 0
    return vm.run(r1=addr, r2=len(mem)).r0


__all__ = ["KernelObject", "KernelObjects", "Memory", "RunResult", "UNMAPPED", "Vm", "VmError", "execute_raw"]
