"""Execution: the numba interpreter, its memory model and synthetic kernel objects."""

from __future__ import annotations

from ..errors import VmError
from .memory import UNMAPPED, KernelObject, KernelObjects, Memory
from .vm import RunResult, Vm


def load_raw(insns, mem: bytes = b""):
    """The conformance engine ``interp``: the program checked at load as the JIT's raw path
    checks it (registers, opcodes, 64-bit loads, then ``check_structure``: jumps inside
    their function, each function ending in exit or jmp); returns ``run() -> r0`` with r1
    pointing at ``mem`` and r2 its length."""
    from ..program import Program
    from ..verifier.verify import check_structure

    prog = Program("conformance", tuple(insns))
    vm = Vm(prog, max_steps=1_000_000)
    problem = check_structure(prog)
    if problem:
        raise VmError(f"conformance: {problem}")
    addr = vm.memory.add("mem", mem, kind="mem") if mem else 0
    return lambda: vm.run(r1=addr, r2=len(mem)).r0


def execute_raw(insns, mem: bytes = b"") -> int:
    """Load and run (see :func:`load_raw`): r0."""
    return load_raw(insns, mem)()


__all__ = ["KernelObject", "KernelObjects", "Memory", "RunResult", "UNMAPPED", "Vm", "VmError", "execute_raw", "load_raw"]
