"""Register liveness before each instruction (the kernel's ``compute_live_registers``,
printed at log level 2 as ``Live regs before insn:``). Pruning needs it only once it
compares states: the walk computes it then (``VerifierEnv.liveness``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..isa import opcodes as op
from ..isa.disasm import format_insn
from ..isa.effects import effects
from .cfg import LD_PACKET_CODES, insn_successors
from .helper_protos import PROTOS
from .insn_aux import InsnsCache
from .log import VerifierLog

BPF_REG_FP = 10
MAX_ARGS = 5
CALL = op.BPF_JMP | op.BPF_CALL
FP_MASK = 1 << BPF_REG_FP
ALL_REGS_MASK = FP_MASK - 1  # r0-r9
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
    if insn.code in LD_PACKET_CODES:  # compute_insn_live_regs keeps its defaults for them: all read, none defined
        return ALL_REGS_MASK, ~0 & ~FP_MASK
    fx = effects(insn, helper_args=_helper_args(insn))
    return _register_mask(fx.reads) & ~FP_MASK, ~_register_mask(fx.writes) & ~FP_MASK


def call_params(prog) -> tuple[tuple[int, int], ...]:
    """``get_call_summary``'s count of the arguments each helper or kfunc call reads, where
    the program's type decides it: a helper the type may not call, or a kfunc it may not
    call, has no summary (all of r1-r5 are read then); a kfunc's count is its BTF
    prototype's. (slot, count) for the calls whose count is not the helper table's; kept
    per instruction tuple, type and kernel BTF."""
    kept = _CALL_PARAMS.get(prog.insns)
    if kept is None:
        kept = {}
        _CALL_PARAMS.put(prog.insns, kept)
    key = (prog.type, prog.expected_attach_type, id(getattr(prog, "kernel_btf", None)))
    if key not in kept:
        kept[key] = _call_params(prog)
    return kept[key]


_CALL_PARAMS = InsnsCache()


def _call_params(prog) -> tuple[tuple[int, int], ...]:
    from .helper_availability import AVAILABLE
    from .helper_protos import trampoline_helper
    from .kfunc_sets import allowed, find_kfunc_set

    available = AVAILABLE.get(f"{prog.type}:{prog.expected_attach_type}", AVAILABLE.get(prog.type))
    btf = getattr(prog, "kernel_btf", None)
    out = []
    for i, insn in enumerate(prog.insns):
        if insn.is_helper_call:
            if available is not None and insn.imm not in available and not trampoline_helper(prog, insn.imm):
                out.append((i, MAX_ARGS))
        elif insn.code == CALL and insn.src == op.BPF_PSEUDO_KFUNC_CALL and btf is not None:
            try:
                func = btf.type(insn.imm)
            except Exception:  # no such type: add_kfunc_calls refuses the program
                continue
            if func.kind != "func":
                continue
            kset = find_kfunc_set(func.name)
            count = len(btf.type(func.type).params) if kset is None or allowed(kset, prog.type) else MAX_ARGS
            out.append((i, count))
    return tuple(out)


def compute_live_registers(insns, params: tuple[tuple[int, int], ...] = ()) -> Liveness:
    """Backward data flow to a fixed point over the function-local flow graph (the
    registers as bit masks; each instruction's effects read once). ``params``: the
    calls whose argument count is the program's (``call_params``); kept per instruction
    tuple and those counts."""
    kept = _LIVENESS.get(insns)
    if kept is None:
        kept = {}
        _LIVENESS.put(insns, kept)
    live = kept.get(params)
    if live is None:
        live = kept[params] = _compute_live_registers(insns, dict(params))
    return live


_LIVENESS = InsnsCache()
CALLER_SAVED_MASK = (1 << (MAX_ARGS + 1)) - 1  # r0-r5, which a call leaves undefined


def _call_flow(count: int) -> tuple[int, int]:
    """(registers read, registers kept) of a call reading ``count`` arguments."""
    return ((1 << (count + 1)) - 1) & ~1, ~CALLER_SAVED_MASK & ~FP_MASK


def _compute_live_registers(insns, params: dict[int, int]) -> Liveness:
    n = len(insns)
    succ = insn_successors(insns)
    if not all(0 <= x < n for out in succ for x in out):  # only after the checks of the shape failed
        succ = [tuple(x for x in out if 0 <= x < n) for out in succ]
    # (slot, successors, registers read, registers kept) of each slot but a 64-bit load's
    # second, last first
    flow = []
    after_ld_imm64 = False
    for i, insn in enumerate(insns):
        if not after_ld_imm64:
            flow.append((i, succ[i], *(_call_flow(params[i]) if i in params else _register_flow(insn))))
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


def print_liveness(log: VerifierLog, insns, live: list[set[int]], call_name=None, scc=None) -> None:
    """The ``Live regs before insn:`` table; ``call_name(insn)`` names kfunc calls as the walk
    does; ``scc``: each slot's loop (``compute_scc``), printed before the index when it has one."""
    log.verbose("Live regs before insn:")
    i = 0
    while i < len(insns):
        insn = insns[i]
        nxt = insns[i + 1] if insn.is_ld_imm64 and i + 1 < len(insns) else None
        marks = "".join(str(r) if r in live[i] else "." for r in range(BPF_REG_FP))
        named = call_name(insn) if call_name is not None else None
        # the kernel's "%3d " (the loop) or four spaces, then "%3d: ": indices past 999 widen it
        loop = f"{scc[i]:>3} " if scc is not None and scc[i] else LIVE_TABLE_INDENT
        log.verbose(f"{loop}{i:>3}: {marks} {format_insn(insn, nxt, call_name=named)}")
        i += 2 if insn.is_ld_imm64 else 1
