"""State pruning: ``is_state_visited`` keeps states at prune points and stops a
path whose state an explored one covers (``states_equal``: ``regsafe`` for each
live register, ``stacksafe`` for the stack); an identical state met again on
its own path is an infinite loop."""

from __future__ import annotations

from ..isa import opcodes as op
from ..isa.flow import jump_target
from ..isa.helpers import BpfFunc
from .insn_aux import per_insns
from .log import Reject
from .regstate import NOT_INIT, SCALAR, Reg
from .state import INVALID, MISC, SPILL, ZERO, Slot, State, format_frame

# is_state_visited's heuristics for keeping the current state: not before 2 jumps and
# 8 instructions since the last kept one; inside a loop (a state on the current path
# at this instruction) not before 20 jumps or 100 instructions; and a kept state that
# missed more than EVICT_AFTER_MISSES * (hits + 1) times is dropped from its list
# (64 for the force checkpoints of may_goto while on the path)
KEEP_AFTER_JMPS, KEEP_AFTER_INSNS = 2, 8
LOOP_KEEP_AFTER_JMPS, LOOP_KEEP_AFTER_INSNS = 20, 100
EVICT_AFTER_MISSES, CHECKPOINT_EVICT_AFTER_MISSES = 3, 64
ALL_REGS = range(10)
U32_MASK = 0xFFFFFFFF


# the helpers that call a callback before they return (``is_sync_callback_calling_function``)
SYNC_CALLBACK_CALLERS = (BpfFunc.loop, BpfFunc.for_each_map_elem)


def is_sync_callback_calling_insn(insn) -> bool:
    return insn.is_helper_call and insn.imm in SYNC_CALLBACK_CALLERS


@per_insns
def prune_points(insns) -> tuple[frozenset[int], frozenset[int]]:
    """``mark_prune_point`` and ``mark_force_checkpoint`` as ``check_cfg`` places them:
    (prune points, force checkpoints: the may_goto instructions)."""
    points: set[int] = set()
    force: set[int] = set()
    for i, insn in enumerate(insns):
        if insn.is_ld_imm64 and insn.src == op.BPF_PSEUDO_FUNC:  # visit_func_call_insn: a callback's address
            points.update((i, i + 2))
            continue
        if not insn.is_jmp_class or insn.is_exit:
            continue
        if insn.is_call:  # the return point, and a bpf-to-bpf call itself
            points.add(i + 1)
            if insn.is_pseudo_call or (insn.is_helper_call and insn.imm == BpfFunc.timer_set_callback):
                points.add(i)  # (for an async callback: checked before another walk of it is queued)
            if is_sync_callback_calling_insn(insn):  # where the walk comes back after each callback visit
                points.add(i)
                force.add(i)
            continue
        target = jump_target(insn, i)
        if insn.op == op.BPF_JA:  # the target of an unconditional jump
            points.add(target)
        else:  # a conditional jump, and the target of its branch edge
            points.add(i)
            points.add(target)
            if insn.op == op.BPF_JCOND:
                force.add(i)
    return frozenset(points), frozenset(force)


class StateList:
    """``struct bpf_verifier_state_list``: a kept state, where it was kept, its hit and
    miss counts, and ``branches``: how many paths still being explored descend from it
    (``parent`` is the state kept before it on its path). A state with branches is on
    the path being explored (exploration is depth first), so it cannot prune yet."""

    __slots__ = ("state", "insn_idx", "parent", "branches", "miss_cnt", "hit_cnt", "in_free_list", "key")

    def __init__(self, state: State, insn_idx: int, parent: StateList | None):
        self.state, self.insn_idx, self.parent = state, insn_idx, parent
        self.branches = 1
        self.miss_cnt = self.hit_cnt = 0
        self.in_free_list = False
        self.key = quick_key(state)


class ExploredStates:
    """``env->explored_states``: a list of kept states per hash of (instruction, call
    site), newest first; the last state kept on the current path (``checkpoints``,
    the chain of its ``parent`` links); and the counters the log prints
    (``peak_states`` counts the dropped states still on a path, as the kernel's free
    list does)."""

    def __init__(self, insns):
        self.points, self.force_checkpoints = prune_points(insns)
        self.callback_calls = {i for i, insn in enumerate(insns) if is_sync_callback_calling_insn(insn)}
        self.size = max(len(insns), 1)  # state_htab_size
        self.buckets: dict[int, list[StateList]] = {}
        self.checkpoints: StateList | None = None
        self.total_states = self.peak_states = self.max_states_per_insn = 0
        self.explored_states_size = self.free_list_size = 0
        self.prev_jmps_processed = self.prev_insn_processed = 0

    def is_prune_point(self, insn_idx: int) -> bool:
        return insn_idx in self.points

    def bucket(self, state: State, insn_idx: int) -> list[StateList]:
        """``explored_state``: the list for this instruction in this call frame."""
        key = ((insn_idx ^ state.frame.callsite) & U32_MASK) % self.size
        seen = self.buckets.get(key)
        if seen is None:
            seen = self.buckets[key] = []
        return seen

    def keep(self, state: State, insn_idx: int, head: list[StateList], jmps_processed: int,
             insn_processed: int) -> None:
        kept = StateList(state.copy(), insn_idx, self.checkpoints)
        head.insert(0, kept)
        self.checkpoints = kept
        self.total_states += 1
        self.explored_states_size += 1
        self.peak_states = max(self.peak_states, self.explored_states_size + self.free_list_size)
        self.prev_jmps_processed, self.prev_insn_processed = jmps_processed, insn_processed

    def branch_pushed(self) -> None:
        """``push_stack``: one more path descends from the current checkpoint."""
        if self.checkpoints is not None:
            self.checkpoints.branches += 1

    def path_ended(self) -> None:
        """``update_branch_counts``: the current path ended (exit or pruned); a kept state
        no path descends from any more leaves the path (and the free list)."""
        sl = self.checkpoints
        while sl is not None:
            sl.branches -= 1
            if sl.branches:
                break
            if sl.in_free_list:
                sl.in_free_list = False
                self.free_list_size -= 1
            sl = sl.parent

    def evict(self, head: list[StateList], sl: StateList) -> None:
        head.remove(sl)
        self.explored_states_size -= 1
        if sl.branches:  # still on the path: freed when its paths end
            sl.in_free_list = True
            self.free_list_size += 1


def is_state_visited(env, state: State, insn_idx: int) -> bool:
    """Prune when a kept state at this instruction (no longer on the path) covers
    the current one; a state on the path that equals the current one exactly is
    an infinite loop. States that keep missing are dropped from the list. The
    current state is kept for later comparisons after at least 2 jumps and 8
    instructions since the last kept state (20 jumps or 100 instructions inside
    a loop), or always at a may_goto."""
    explored = env.explored
    force_new_state = insn_idx in explored.force_checkpoints
    add_new_state = force_new_state or (
        env.jmps_processed - explored.prev_jmps_processed >= KEEP_AFTER_JMPS
        and env.insn_processed - explored.prev_insn_processed >= KEEP_AFTER_INSNS)
    head = explored.bucket(state, insn_idx)
    liveness = env.liveness
    live = liveness.live[insn_idx] if insn_idx < len(liveness.live) else set(ALL_REGS)
    stack_matters = liveness.stack_read_after[insn_idx] if insn_idx < len(liveness.stack_read_after) else True
    current = None
    states_cnt = 0
    for sl in tuple(head):
        states_cnt += 1
        if sl.insn_idx != insn_idx:
            continue
        old = sl.state
        if sl.branches:
            if old.frame.in_async_callback_fn and old.frame.async_entry_cnt != state.frame.async_entry_cnt:
                pass  # another entry into an async callback: no loop, but no proof either
            elif insn_idx in explored.callback_calls:
                # back at a callback's call site: the visits converged when nothing grew
                if states_equal(old, state, live, stack_matters, exact=RANGE_WITHIN):
                    sl.hit_cnt += 1
                    return True
            # identical states on one path: a loop that cannot end (compare cheaply first), unless
            # they are two visits of a callback
            elif sl.key == (current or (current := quick_key(state))) and \
                    old.callback_unroll_depth == state.callback_unroll_depth and format_state(old) == format_state(state):
                raise Reject(f"infinite loop detected at insn {insn_idx}\ncur state:{format_frame(state.frame)}"
                             f"\nold state:{format_frame(old.frame)}")
            if not force_new_state and \
                    env.jmps_processed - explored.prev_jmps_processed < LOOP_KEEP_AFTER_JMPS and \
                    env.insn_processed - explored.prev_insn_processed < LOOP_KEEP_AFTER_INSNS:
                add_new_state = False
        elif states_equal(old, state, live, stack_matters):
            sl.hit_cnt += 1
            return True
        if add_new_state:
            sl.miss_cnt += 1
        n = CHECKPOINT_EVICT_AFTER_MISSES if force_new_state and sl.branches else EVICT_AFTER_MISSES
        if sl.miss_cnt > sl.hit_cnt * n + n:
            explored.evict(head, sl)
    explored.max_states_per_insn = max(explored.max_states_per_insn, states_cnt)
    if add_new_state:
        explored.keep(state, insn_idx, head, env.jmps_processed, env.insn_processed)
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


# how states_equal compares: NOT_EXACT ignores what was never read or never decided anything;
# RANGE_WITHIN (states of one path, e.g. a callback's visits) compares every register and slot
NOT_EXACT, RANGE_WITHIN = 0, 1


def regsafe(old: Reg, cur: Reg, exact: int = NOT_EXACT) -> bool:
    if old.type == NOT_INIT:
        return exact == NOT_EXACT or cur.type == NOT_INIT
    if old.type != cur.type:
        return False
    if old.type == SCALAR:
        if not old.precise and exact == NOT_EXACT:
            return True  # the kernel: an imprecise scalar's exact value did not matter
        o, c = old.s, cur.s
        return (o.smin <= c.smin and c.smax <= o.smax and o.umin <= c.umin and c.umax <= o.umax
                and o.s32_min <= c.s32_min and c.s32_max <= o.s32_max and o.u32_min <= c.u32_min
                and c.u32_max <= o.u32_max and o.var_off.contains(c.var_off))
    return (old.off == cur.off and old.maybe_null == cur.maybe_null and old.map is cur.map
            and old.btf_id == cur.btf_id and cur.range >= old.range and old.trusted == cur.trusted
            and old.s.var_off == cur.s.var_off and old.frameno == cur.frameno and old.subprogno == cur.subprogno)


def stacksafe(old_frame, cur_frame, exact: int = NOT_EXACT) -> bool:
    if exact != NOT_EXACT:  # every slot of either state typed alike
        for spi in old_frame.stack.keys() | cur_frame.stack.keys():
            if old_frame.stack.get(spi, Slot()).types != cur_frame.stack.get(spi, Slot()).types:
                return False
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
            if cslot.spilled is None or not regsafe(slot.spilled, cslot.spilled, exact):
                return False
    return True


def states_equal(old: State, cur: State, live: set[int], stack_matters: bool = True,
                 exact: int = NOT_EXACT) -> bool:
    if len(old.frames) != len(cur.frames) or old.refs != cur.refs or old.active_rcu_lock != cur.active_rcu_lock:
        return False
    for depth, (fo, fc) in enumerate(zip(old.frames, cur.frames, strict=True)):
        if fo.callback_depth > fc.callback_depth:  # fewer callback visits made than the old state's
            return False
        innermost = depth == len(old.frames) - 1
        regs = live if innermost and exact == NOT_EXACT else ALL_REGS
        for r in regs:
            if not regsafe(fo.regs[r], fc.regs[r], exact):
                return False
        if not stack_matters and innermost and exact == NOT_EXACT:
            continue
        if not stacksafe(fo, fc, exact):
            return False
    return True


__all__ = ["ExploredStates", "StateList", "is_state_visited", "regsafe", "stacksafe", "states_equal"]
