"""Register liveness before each instruction (the kernel's ``compute_live_registers``,
printed at log level 2 as ``Live regs before insn:``). Pruning needs it only once it
compares states: the walk computes it then (``VerifierEnv.liveness``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..isa.disasm import format_insn
from ..isa.effects import effects
from .cfg import flow_successors
from .helper_protos import PROTOS
from .insn_aux import per_insns
from .log import VerifierLog

BPF_REG_FP = 10
MAX_ARGS = 5
FP_MASK = 1 << BPF_REG_FP
DISTINCT_INSNS_KEPT = 1 << 14  # the register masks of this many distinct instructions are kept


@dataclass(frozen=True)
class Liveness:
    live: tuple[frozenset[int], ...]  # registers live before each slot


def _helper_args(insn) -> int:
    proto = PROTOS.get(insn.imm) if insn.is_helper_call else None
    return len(proto.args) if proto is not None else MAX_ARGS


def _register_mask(names) -> int:
    mask = 0
    for name in names:
        if name[0] == "r":
            mask |= 1 << int(name[1:])
    return mask


@functools.lru_cache(maxsize=DISTINCT_INSNS_KEPT)
def _register_flow(insn) -> tuple[int, int]:
    """(registers ``insn`` reads, registers it leaves as they were) as bit masks: a
    function of the instruction alone, so programs share it (most instructions repeat)."""
    fx = effects(insn, helper_args=_helper_args(insn))
    return _register_mask(fx.reads) & ~FP_MASK, ~_register_mask(fx.writes) & ~FP_MASK


@per_insns
def compute_live_registers(insns) -> Liveness:
    """Backward data flow to a fixed point over the function-local flow graph (the
    registers as bit masks; each instruction's effects read once)."""
    n = len(insns)
    succ = flow_successors(insns)
    if not all(0 <= x < n for out in succ for x in out):  # only after the checks of the shape failed
        succ = [tuple(x for x in out if 0 <= x < n) for out in succ]
    # (slot, successors, registers read, registers kept) of each slot but a 64-bit load's
    # second, last first
    flow = []
    after_ld_imm64 = False
    for i, insn in enumerate(insns):
        if not after_ld_imm64:
            flow.append((i, succ[i], *_register_flow(insn)))
        after_ld_imm64 = insn.is_ld_imm64
    flow.reverse()
    live = [0] * (n + 1)
    changed = True
    while changed:
        changed = False
        for i, out_slots, read, kept in flow:
            out = 0
            for s in out_slots:
                out |= live[s]
            new = (out & kept) | read
            if new != live[i]:
                live[i] = new
                changed = True
    sets: dict[int, frozenset[int]] = {}
    for mask in live:
        if mask not in sets:
            sets[mask] = frozenset(r for r in range(BPF_REG_FP + 1) if mask >> r & 1)
    return Liveness(tuple(sets[mask] for mask in live))


LIVE_TABLE_INDENT = " " * 4


def print_liveness(log: VerifierLog, insns, live: list[set[int]], call_name=None) -> None:
    """The ``Live regs before insn:`` table; ``call_name(insn)`` names kfunc calls as the walk does."""
    log.verbose("Live regs before insn:")
    i = 0
    while i < len(insns):
        insn = insns[i]
        nxt = insns[i + 1] if insn.is_ld_imm64 and i + 1 < len(insns) else None
        marks = "".join(str(r) if r in live[i] else "." for r in range(BPF_REG_FP))
        named = call_name(insn) if call_name is not None else None
        # the kernel's "%3d: " after a four-space indent: indices past 999 widen the column
        log.verbose(f"{LIVE_TABLE_INDENT}{i:>3}: {marks} {format_insn(insn, nxt, call_name=named)}")
        i += 2 if insn.is_ld_imm64 else 1
