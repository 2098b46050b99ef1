"""The program's shape before any value is tracked: ``add_subprog``/``check_subprogs``
(where functions start, which are global) and ``check_cfg`` (every jump lands
inside its function and the program, every function ends in an exit or a jump,
no instruction is unreachable, no jump lands in the middle of a 64-bit load)."""

from __future__ import annotations

from ..isa import opcodes as op
from ..isa.flow import function_starts, jump_target, successors

BTF_FUNC_GLOBAL = 1  # linkage of a global function in BTF


class Subprogs:
    """``env->subprog_info``: the functions of a program, by their first slot."""

    def __init__(self, prog):
        self.prog = prog
        self.starts: list[int] = function_starts(prog.insns)

    def of(self, insn: int) -> int:
        """The first slot of the function holding ``insn``."""
        return max((s for s in self.starts if s <= insn), default=0)

    def index(self, start: int) -> int:
        return self.starts.index(start)

    def func_info(self, start: int):
        btf = getattr(self.prog, "btf", None)
        for fi in getattr(self.prog, "func_info", ()):
            if fi.insn == start:
                return fi, btf
        return None, btf

    def name(self, start: int) -> str:
        fi, _ = self.func_info(start)
        return fi.name if fi is not None else f"func#{self.index(start)}"

    def is_global(self, start: int) -> bool:
        fi, btf = self.func_info(start)
        return fi is not None and btf is not None and btf.type(fi.type_id).linkage == BTF_FUNC_GLOBAL

    def proto(self, start: int):
        """The BTF ``func_proto`` of the function at ``start``, or None."""
        fi, btf = self.func_info(start)
        if fi is None or btf is None:
            return None
        return btf.type(btf.type(fi.type_id).type)


def check_cfg(insns, subprogs: Subprogs, reject, *, reachability: bool = True) -> None:
    """Raise ``reject(message)`` at the first structural fault, as the kernel orders them."""
    n = len(insns)
    if n == 0:
        raise reject("last insn is not an exit or jmp")
    for i, insn in enumerate(insns):
        target = jump_target(insn, i)
        if target is None:
            continue
        if not 0 <= target < n:
            raise reject(f"jump out of range from insn {i} to {target}")
        if not insn.is_call and subprogs.of(target) != subprogs.of(i):
            raise reject(f"jump out of range from insn {i} to {target}")  # into another function
    ends = subprogs.starts[1:] + [n]
    for end in ends:
        if insns[end - 1].code not in (op.BPF_JMP | op.BPF_EXIT, op.BPF_JMP | op.BPF_JA, op.BPF_JMP32 | op.BPF_JA):
            raise reject("last insn is not an exit or jmp")
    if reachability:
        _check_reachable(insns, reject)
    _check_ld_imm64_targets(insns, reject)


def _check_reachable(insns, reject) -> None:
    """Every slot reachable over the flow graph, callees included (calls also fall through)."""
    n = len(insns)
    seen = [False] * n
    work = [0]
    while work:
        i = work.pop()
        if not 0 <= i < n or seen[i]:
            continue
        seen[i] = True
        insn = insns[i]
        if insn.is_ld_imm64:
            if i + 1 >= n:
                raise reject("invalid BPF_LD_IMM insn")
            seen[i + 1] = True
        work += successors(insns, i)
        if insn.is_pseudo_call:
            work.append(jump_target(insn, i))
    for i in range(n):
        if not seen[i]:
            raise reject(f"unreachable insn {i}")


def _check_ld_imm64_targets(insns, reject) -> None:
    """No jump may land on the second slot of a 64-bit immediate load."""
    targets = {jump_target(other, j) for j, other in enumerate(insns) if not other.is_call}
    for i, insn in enumerate(insns):
        if insn.is_ld_imm64 and i + 1 in targets:
            raise reject(f"jump into the middle of ldimm64 insn {i + 1}")
