"""State pruning: ``is_state_visited`` keeps states at prune points and stops a
path whose state an explored one covers (``states_equal``: ``regsafe`` for each
live register, ``stacksafe`` for the stack); an identical state met again on
its own path is an infinite loop."""

from __future__ import annotations

from ..isa import opcodes as op
from ..isa.flow import jump_offset, jump_target
from .log import Reject
from .regstate import NOT_INIT, SCALAR, Reg
from .state import INVALID, MISC, SPILL, ZERO, Slot, State, format_frame

# the kernel's heuristic for keeping a state: after this many jumps and instructions
# since the last kept one (or always at a loop head)
KEEP_AFTER_JMPS, KEEP_AFTER_INSNS = 2, 8
ALL_REGS = range(10)


def prune_points(insns) -> tuple[set[int], set[int]]:
    """``mark_prune_point`` as ``check_cfg`` places them: (prune points, loop heads)."""
    points: set[int] = set()
    loop_heads: set[int] = set()
    for i, insn in enumerate(insns):
        if not insn.is_jmp_class or insn.is_exit:
            continue
        if insn.is_call:  # the return point, and a bpf-to-bpf call itself
            points.add(i + 1)
            if insn.is_pseudo_call:
                points.add(i)
            continue
        target = jump_target(insn, i)
        if insn.op == op.BPF_JA:  # the target of an unconditional jump
            points.add(target)
        else:  # a conditional jump, and the target of its branch edge
            points.add(i)
            points.add(target)
        if jump_offset(insn) < 0:
            loop_heads.add(target)
    return points, loop_heads


class ExploredStates:
    """``env->explored_states``: states kept per instruction, the ones kept on the
    current path (a linked list of ids), and the counters the log prints."""

    def __init__(self, insns):
        self.points, self.loop_heads = prune_points(insns)
        self.at: dict[int, list[State]] = {}
        self.checkpoints: tuple | None = None  # (id of a kept state, the rest of the path)
        self._path_cache: tuple | None = None  # (checkpoints node, the ids on it)
        self.quick_keys: dict[int, tuple] = {}  # kept state id -> quick_key (fixed once kept)
        self.total_states = self.peak_states = self.max_states_per_insn = 0
        self.prev_jmps_processed = self.prev_insn_processed = 0

    def is_prune_point(self, insn_idx: int) -> bool:
        return insn_idx in self.points

    def on_path(self) -> set[int]:
        """The ids of the states kept on the current path; extended in place while the
        path only grows (a long loop), rebuilt when exploration switches paths."""
        node = self.checkpoints
        if self._path_cache is not None:
            cached_node, ids = self._path_cache
            if cached_node is node:
                return ids
            if node is not None and node[1] is cached_node:
                ids.add(node[0])
                self._path_cache = (node, ids)
                return ids
        ids = set()
        walk = node
        while walk:
            ids.add(walk[0])
            walk = walk[1]
        self._path_cache = (node, ids)
        return ids

    def keep(self, state: State, insn_idx: int, jmps_processed: int, insn_processed: int) -> None:
        seen = self.at.setdefault(insn_idx, [])
        kept = state.copy()
        seen.append(kept)
        self.quick_keys[id(kept)] = quick_key(kept)
        self.checkpoints = (id(kept), self.checkpoints)
        self.prev_jmps_processed, self.prev_insn_processed = jmps_processed, insn_processed
        self.total_states += 1
        self.peak_states = max(self.peak_states, self.total_states)
        self.max_states_per_insn = max(self.max_states_per_insn, len(seen))


def is_state_visited(env, state: State, insn_idx: int) -> bool:
    """Prune when an explored state at this insn covers the current one; a
    state still being explored on this very path that equals the current one
    exactly is an infinite loop. The current state is kept for later
    comparisons under the kernel's heuristic (after at least 2 jumps and 8
    instructions since the last kept state, or at a loop head)."""
    explored = env.explored
    seen = explored.at.setdefault(insn_idx, [])
    liveness = env.liveness
    live = liveness.live[insn_idx] if insn_idx < len(liveness.live) else set(ALL_REGS)
    stack_matters = liveness.stack_read_after[insn_idx] if insn_idx < len(liveness.stack_read_after) else True
    on_path = explored.on_path()
    current = None
    for old in seen:
        if id(old) in on_path:
            # identical states on one path: a loop that cannot end (compare cheaply first)
            if explored.quick_keys[id(old)] == (current or (current := quick_key(state))) and \
                    format_state(old) == format_state(state):
                raise Reject(f"infinite loop detected at insn {insn_idx}\ncur state:{format_frame(state.frame)}"
                             f"\nold state:{format_frame(old.frame)}")
            continue
        if states_equal(old, state, live, stack_matters):
            return True
    add = insn_idx in explored.loop_heads or (
        env.jmps_processed - explored.prev_jmps_processed >= KEEP_AFTER_JMPS
        and env.insn_processed - explored.prev_insn_processed >= KEEP_AFTER_INSNS)
    if add:
        explored.keep(state, insn_idx, env.jmps_processed, env.insn_processed)
    return False


def format_state(state: State) -> str:
    return "|".join(format_frame(f) for f in state.frames)


def quick_key(state: State) -> tuple:
    """What two states printing alike must share: each register's type, a pointer's
    offset, a constant scalar's value (a cheap filter before ``format_state``)."""
    key = []
    for frame in state.frames:
        for reg in frame.regs:
            if reg.type == NOT_INIT:
                key.append(NOT_INIT)
            elif reg.type == SCALAR:
                key.append(reg.s.var_off.value if reg.s.var_off.is_const else SCALAR)
            else:
                key.append((reg.type, reg.off))
    return tuple(key)


def regsafe(old: Reg, cur: Reg) -> bool:
    if old.type == NOT_INIT:
        return True
    if old.type != cur.type:
        return False
    if old.type == SCALAR:
        if not old.precise:
            return True  # the kernel: an imprecise scalar's exact value did not matter
        o, c = old.s, cur.s
        return (o.smin <= c.smin and c.smax <= o.smax and o.umin <= c.umin and c.umax <= o.umax
                and o.s32_min <= c.s32_min and c.s32_max <= o.s32_max and o.u32_min <= c.u32_min
                and c.u32_max <= o.u32_max and o.var_off.contains(c.var_off))
    return (old.off == cur.off and old.maybe_null == cur.maybe_null and old.map is cur.map
            and old.btf_id == cur.btf_id and cur.range >= old.range and old.trusted == cur.trusted
            and old.s.var_off == cur.s.var_off and old.frameno == cur.frameno)


def stacksafe(old_frame, cur_frame) -> bool:
    for spi, slot in old_frame.stack.items():
        cslot = cur_frame.stack.get(spi, Slot())
        for k in range(8):
            if slot.types[k] == INVALID:
                continue
            if slot.types[k] == MISC and cslot.types[k] in (MISC, ZERO, SPILL):
                continue
            if slot.types[k] != cslot.types[k]:
                return False
        if slot.is_spill and slot.spilled is not None:
            if cslot.spilled is None or not regsafe(slot.spilled, cslot.spilled):
                return False
    return True


def states_equal(old: State, cur: State, live: set[int], stack_matters: bool = True) -> bool:
    if len(old.frames) != len(cur.frames) or old.refs != cur.refs or old.active_rcu_lock != cur.active_rcu_lock:
        return False
    for depth, (fo, fc) in enumerate(zip(old.frames, cur.frames, strict=True)):
        innermost = depth == len(old.frames) - 1
        regs = live if innermost else ALL_REGS
        for r in regs:
            if not regsafe(fo.regs[r], fc.regs[r]):
                return False
        if not stack_matters and innermost:
            continue
        if not stacksafe(fo, fc):
            return False
    return True


__all__ = ["ExploredStates", "is_state_visited", "regsafe", "stacksafe", "states_equal"]
