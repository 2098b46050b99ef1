"""What an instruction reads and writes: registers and frame-pointer stack slots.

Used to mark the registers an instruction touches in a stepper and to walk
a value back to where it was made (its provenance), through spills to the
stack and fills from it. Stack slots are named as the verifier log names
them: ``fp-8`` for the 8 bytes at ``r10 - 8``.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import opcodes as op
from .insn import Insn

CALLER_SAVED = ("r1", "r2", "r3", "r4", "r5")


@dataclass(frozen=True)
class Effects:
    """Registers (``"r0"``..``"r10"``) and stack slots (``"fp-8"``) read and written."""

    reads: frozenset[str]
    writes: frozenset[str]
    # a register copied into another whole (mov, fill) or into a slot (spill):
    # the value's origin moves with it
    copies: tuple[tuple[str, str], ...] = ()  # (to, from)

    @property
    def registers_read(self) -> frozenset[str]:
        return frozenset(x for x in self.reads if x.startswith("r"))

    @property
    def registers_written(self) -> frozenset[str]:
        return frozenset(x for x in self.writes if x.startswith("r"))


def _r(n: int) -> str:
    return f"r{n}"


def stack_slot(off: int) -> str:
    """The 8-byte slot holding ``r10 + off`` (the log's ``fp-N``)."""
    start = off - (off % 8)
    return f"fp{start}" if start < 0 else f"fp+{start}"


def effects(insn: Insn, *, helper_args: int = 5) -> Effects:
    """Reads and writes of ``insn``. A helper call reads its ``helper_args``
    argument registers, writes r0 and clobbers r1-r5."""
    cls = insn.cls
    code = insn.code
    dst, src = _r(insn.dst), _r(insn.src)
    if cls in (op.BPF_ALU, op.BPF_ALU64):
        operation = code & 0xF0
        uses_src = (code & op.BPF_X) and operation not in (op.BPF_NEG, op.BPF_END)
        if operation == op.BPF_MOV:
            if uses_src:
                copy = ((dst, src),) if insn.off == 0 and cls == op.BPF_ALU64 else ()
                return Effects(frozenset({src}), frozenset({dst}), copy)
            return Effects(frozenset(), frozenset({dst}))
        reads = {dst, src} if uses_src else {dst}
        return Effects(frozenset(reads), frozenset({dst}))
    if cls == op.BPF_LD:
        if insn.is_ld_imm64:
            return Effects(frozenset(), frozenset({dst}))
        mode = code & 0xE0
        reads = {"r6"} | ({src} if mode == op.BPF_IND else set())  # legacy packet loads use the skb in r6
        return Effects(frozenset(reads), frozenset({"r0"} | set(CALLER_SAVED)))
    if cls == op.BPF_LDX:
        reads = {src}
        copies = ()
        if insn.src == op.BPF_REG_FP:
            slot = stack_slot(insn.off)
            reads.add(slot)
            if code & 0x18 == op.BPF_DW:
                copies = ((dst, slot),)
        return Effects(frozenset(reads), frozenset({dst}), copies)
    if cls in (op.BPF_ST, op.BPF_STX):
        mode = code & 0xE0
        reads = {dst} | ({src} if cls == op.BPF_STX else set())
        writes: set[str] = set()
        copies = ()
        if insn.dst == op.BPF_REG_FP:
            slot = stack_slot(insn.off)
            writes.add(slot)
            if cls == op.BPF_STX and mode == op.BPF_MEM and code & 0x18 == op.BPF_DW:
                copies = ((slot, src),)
        if mode == op.BPF_ATOMIC:
            if insn.imm == op.BPF_CMPXCHG:
                reads.add("r0")
                writes.add("r0")
            elif insn.imm & op.BPF_FETCH:
                writes.add(src)
        return Effects(frozenset(reads), frozenset(writes), copies)
    # JMP / JMP32
    operation = code & 0xF0
    if operation == op.BPF_EXIT:
        return Effects(frozenset({"r0"}), frozenset())
    if operation == op.BPF_CALL:
        if insn.src == op.BPF_PSEUDO_CALL:  # bpf-to-bpf: arguments r1-r5, result r0
            args = CALLER_SAVED
        else:
            args = CALLER_SAVED[:helper_args]
        reads = set(args)
        if cls == op.BPF_JMP and code & op.BPF_X:  # callx
            reads.add(dst)
        return Effects(frozenset(reads), frozenset({"r0", *CALLER_SAVED}))
    if operation == op.BPF_JA or operation == op.BPF_JCOND:
        return Effects(frozenset(), frozenset())
    reads = {dst, src} if code & op.BPF_X else {dst}
    return Effects(frozenset(reads), frozenset())
