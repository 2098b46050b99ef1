"""Where control goes after an instruction: the one definition of jump targets,
successors and function starts that the verifier, the CFG view, the stepper and
the JIT share.

A jump's offset is ``off`` except for ``gotol`` (``BPF_JMP32 | BPF_JA``) and a
bpf-to-bpf call, whose offsets are in ``imm``. Targets count from the next slot.
"""

from __future__ import annotations

from . import opcodes as op
from .insn import Insn


def jump_offset(insn: Insn) -> int:
    """The relative offset of a jump or bpf-to-bpf call (``imm`` for gotol and calls)."""
    if insn.code == op.BPF_JMP32 | op.BPF_JA or insn.is_call:
        return insn.imm
    return insn.off


def with_jump_offset(insn: Insn, offset: int) -> Insn:
    """``insn`` with its jump offset replaced, in the field that holds it."""
    if insn.code == op.BPF_JMP32 | op.BPF_JA or insn.is_call:
        return Insn(insn.code, insn.dst, insn.src, insn.off, offset)
    return Insn(insn.code, insn.dst, insn.src, offset, insn.imm)


def jump_target(insn: Insn, i: int) -> int | None:
    """The slot a jump at ``i`` may go to, a bpf-to-bpf call's callee, or None
    (not a jump, an exit, a helper or kfunc call)."""
    if not insn.is_jmp_class or insn.is_exit or (insn.is_call and not insn.is_pseudo_call):
        return None
    return i + jump_offset(insn) + 1


def is_cond_jump(insn: Insn) -> bool:
    """Two ways out: the conditional jumps and ``may_goto``."""
    return insn.is_jmp_class and insn.op not in (op.BPF_JA, op.BPF_CALL, op.BPF_EXIT)


_LD_IMM64, _GOTOL, _JMP_CALL = op.BPF_LD | op.BPF_IMM | op.BPF_DW, op.BPF_JMP32 | op.BPF_JA, op.BPF_JMP | op.BPF_CALL
_JMP_CLASSES = (op.BPF_JMP, op.BPF_JMP32)
_CLASS_MASK, _OP_MASK = 0x07, 0xF0


def _successors(code: int, off: int, imm: int, i: int) -> tuple[int, ...]:
    if code == _LD_IMM64:
        return (i + 2,)
    if code & _CLASS_MASK not in _JMP_CLASSES:
        return (i + 1,)
    operation = code & _OP_MASK
    if operation == op.BPF_CALL:
        return (i + 1,)
    if operation == op.BPF_EXIT:
        return ()
    target = i + (imm if code == _GOTOL else off) + 1
    if operation == op.BPF_JA:
        return (target,)
    return (i + 1, target)


def successors(insns, i: int) -> tuple[int, ...]:
    """Where control goes after slot ``i`` inside its function: calls fall through
    (their callee is ``jump_target``), an exit goes nowhere, a 64-bit immediate
    load skips its second slot; the fall-through comes first."""
    insn = insns[i]
    return _successors(insn.code, insn.off, insn.imm, i)


def all_successors(insns) -> tuple[tuple[int, ...], ...]:
    """``successors`` of every slot (one pass: the verifier's passes before its walk
    read them for every instruction)."""
    out = []
    append = out.append
    for i, insn in enumerate(insns):
        code = insn.code
        if code & _CLASS_MASK in _JMP_CLASSES or code == _LD_IMM64:
            append(_successors(code, insn.off, insn.imm, i))
        else:  # most slots: the next one
            append((i + 1,))
    return tuple(out)


def pseudo_call_targets(insns) -> set[int]:
    """The first slot of every function a bpf-to-bpf call names (in range or not)."""
    return {jump_target(insn, i) for i, insn in enumerate(insns)
            if insn.code == op.BPF_JMP | op.BPF_CALL and insn.src == op.BPF_PSEUDO_CALL}


def pseudo_func_target(insn: Insn, i: int) -> int:
    """The first slot of the function a ``BPF_PSEUDO_FUNC`` 64-bit load at ``i`` takes the
    address of (its offset is in ``imm``, counted from the next slot)."""
    return i + insn.imm + 1


def function_starts(insns, *, callbacks: bool = False) -> list[int]:
    """Slot 0 and the target of every bpf-to-bpf call, sorted (in range only); with
    ``callbacks``, also every function a 64-bit load takes the address of
    (``BPF_PSEUDO_FUNC``, a callback for bpf_loop and the like)."""
    starts = {0}
    for i, insn in enumerate(insns):  # one pass reading ``code`` once: it runs before every walk
        code = insn.code
        if code == _JMP_CALL and insn.src == op.BPF_PSEUDO_CALL:
            starts.add(jump_target(insn, i))
        elif callbacks and code == _LD_IMM64 and insn.src == op.BPF_PSEUDO_FUNC:
            starts.add(pseudo_func_target(insn, i))
    return sorted(s for s in starts if 0 <= s < len(insns))
