"""Register liveness before each instruction (the kernel's ``compute_live_registers``,
printed at log level 2 as ``Live regs before insn:``), and whether the stack may
still be read after an instruction (what pruning may ignore)."""

from __future__ import annotations

from dataclasses import dataclass

from ..isa import opcodes as op
from ..isa.disasm import format_insn
from ..isa.effects import effects
from .cfg import flow_successors
from .helper_protos import PROTOS
from .insn_aux import per_insns
from .log import VerifierLog

BPF_REG_FP = 10
MAX_ARGS = 5


@dataclass(frozen=True)
class Liveness:
    live: tuple[frozenset[int], ...]  # registers live before each slot
    stack_read_after: tuple[bool, ...]  # whether any instruction reachable from a slot may read memory


def _helper_args(insn) -> int:
    proto = PROTOS.get(insn.imm) if insn.is_helper_call else None
    return len(proto.args) if proto is not None else MAX_ARGS


def _reads_memory(insn) -> bool:
    return (insn.cls == op.BPF_LDX or insn.code == op.BPF_JMP | op.BPF_CALL
            or (insn.cls == op.BPF_STX and insn.mode == op.BPF_ATOMIC))


def _register_mask(names) -> int:
    mask = 0
    for name in names:
        if name[0] == "r":
            mask |= 1 << int(name[1:])
    return mask


@per_insns
def compute_live_registers(insns) -> Liveness:
    """Backward data flow to a fixed point over the function-local flow graph (the
    registers as bit masks; each instruction's effects read once)."""
    n = len(insns)
    succ = [tuple(x for x in out if 0 <= x < n) for out in flow_successors(insns)]
    reads = [_reads_memory(insn) for insn in insns]
    stack_read_after = [False] * (n + 1)
    changed = True
    while changed:
        changed = False
        for i in range(n - 1, -1, -1):
            if stack_read_after[i]:  # it only ever turns True
                continue
            value = reads[i]
            if not value:
                for x in succ[i]:
                    if stack_read_after[x]:
                        value = True
                        break
            if value:
                stack_read_after[i] = True
                changed = True
    # (slot, registers read, registers written) of each slot but a 64-bit load's second
    flow = []
    for i in range(n - 1, -1, -1):
        insn = insns[i]
        if i > 0 and insns[i - 1].is_ld_imm64:
            continue
        fx = effects(insn, helper_args=_helper_args(insn))
        flow.append((i, _register_mask(fx.reads), ~_register_mask(fx.writes) & ~(1 << BPF_REG_FP)))
    live = [0] * (n + 1)
    changed = True
    while changed:
        changed = False
        for i, read, kept in flow:
            out = 0
            for s in succ[i]:
                out |= live[s]
            new = (out & kept) | (read & ~(1 << BPF_REG_FP))
            if new != live[i]:
                live[i] = new
                changed = True
    sets: dict[int, frozenset[int]] = {}
    for mask in live:
        if mask not in sets:
            sets[mask] = frozenset(r for r in range(BPF_REG_FP + 1) if mask >> r & 1)
    return Liveness(tuple(sets[mask] for mask in live), tuple(stack_read_after))


def print_liveness(log: VerifierLog, insns, live: list[set[int]], call_name=None) -> None:
    """The ``Live regs before insn:`` table; ``call_name(insn)`` names kfunc calls as the walk does."""
    log.verbose("Live regs before insn:")
    i = 0
    while i < len(insns):
        insn = insns[i]
        nxt = insns[i + 1] if insn.is_ld_imm64 and i + 1 < len(insns) else None
        marks = "".join(str(r) if r in live[i] else "." for r in range(BPF_REG_FP))
        named = call_name(insn) if call_name is not None else None
        log.verbose(f"{i:>7}: {marks} {format_insn(insn, nxt, call_name=named)}")
        i += 2 if insn.is_ld_imm64 else 1
