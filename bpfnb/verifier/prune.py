"""State pruning: ``is_state_visited`` keeps states at prune points and stops a
path whose state an explored one covers (``states_equal``: ``regsafe`` for each
live register, ``stacksafe`` for the stack); an identical state met again on
its own path is an infinite loop."""

from __future__ import annotations

from ..isa import opcodes as op
from ..isa.helpers import BpfFunc
from .cfg import compute_scc
from .insn_aux import per_insns
from .log import Reject
from .precision import (
    MAX_JMP_HISTORY_BEFORE_CHECKPOINT,
    is_sync_callback_calling_insn,
    mark_all_scalars_imprecise,
    propagate_precision,
    push_jmp_history,
)
from .regstate import (
    BPF_ADD_CONST,
    NOT_INIT,
    PTR_TO_MAP_KEY,
    PTR_TO_MAP_VALUE,
    PTR_TO_MEM,
    PTR_TO_PACKET,
    PTR_TO_PACKET_META,
    PTR_TO_STACK,
    SCALAR,
    Reg,
)
from .scalar import Scalar
from .state import INVALID, MISC, SPILL, Frame, Slot, State, format_frame

# is_state_visited's heuristics for keeping the current state: not before 2 jumps and
# 8 instructions since the last kept one; inside a loop (a state on the current path
# at this instruction) not before 20 jumps or 100 instructions; and a kept state that
# missed more than EVICT_AFTER_MISSES * (hits + 1) times is dropped from its list
# (64 for the force checkpoints of may_goto while on the path)
KEEP_AFTER_JMPS, KEEP_AFTER_INSNS = 2, 8
LOOP_KEEP_AFTER_JMPS, LOOP_KEEP_AFTER_INSNS = 20, 100
EVICT_AFTER_MISSES, CHECKPOINT_EVICT_AFTER_MISSES = 3, 64
ALL_REGS = range(10)
BPF_REG_SIZE = 8
EMPTY_SLOT = (INVALID,) * BPF_REG_SIZE
U32_MASK = 0xFFFFFFFF
# helpers that register a callback run later: the call is a prune point
ASYNC_CALLBACK_HELPERS = (BpfFunc.timer_set_callback,)
# how states_equal compares (enum exact_level): precision decides; or, for states of
# one path (a callback's visits), every register and slot by its range
NOT_EXACT, RANGE_WITHIN = 0, 2


_CLASS_MASK, _OP_MASK = 0x07, 0xF0
_JMP_CLASSES = (op.BPF_JMP, op.BPF_JMP32)
_LD_IMM64, _GOTOL, _HELPER_CALL = op.BPF_LD | op.BPF_IMM | op.BPF_DW, op.BPF_JMP32 | op.BPF_JA, op.BPF_JMP | op.BPF_CALL


@per_insns
def prune_points(insns) -> tuple[frozenset[int], frozenset[int], frozenset[int], frozenset[int]]:
    """``mark_prune_point``, ``mark_force_checkpoint`` and ``mark_jmp_point`` as
    ``check_cfg`` places them: (prune points, force checkpoints: may_goto and the
    helpers calling a callback, jump points: where the jump history records how
    the walk arrived, and the calls of those helpers). One pass that looks only at
    jumps, calls and 64-bit loads (it runs over every instruction before the walk)."""
    points: set[int] = set()
    force: set[int] = set()
    jmp_points: set[int] = set()
    callback_calls: set[int] = set()
    for i, insn in enumerate(insns):
        code = insn.code
        if code == _LD_IMM64:
            if insn.src == op.BPF_PSEUDO_FUNC:  # a callback's address
                points.update((i, i + 2, i + insn.imm + 1))
                jmp_points.update((i + 2, i + insn.imm + 1))
            continue
        if code & _CLASS_MASK not in _JMP_CLASSES:
            continue
        operation = code & _OP_MASK
        if operation == op.BPF_EXIT:
            continue
        if operation == op.BPF_CALL:  # the return point, and a bpf-to-bpf call itself
            if code == _HELPER_CALL and insn.src == 0:
                if insn.imm in ASYNC_CALLBACK_HELPERS:
                    points.add(i)
                if is_sync_callback_calling_insn(insn):
                    points.add(i)
                    force.add(i)
                    jmp_points.add(i)
                    callback_calls.add(i)
            points.add(i + 1)
            jmp_points.add(i + 1)
            if insn.src == op.BPF_PSEUDO_CALL:
                points.add(i)
                points.add(i + insn.imm + 1)
                jmp_points.add(i + insn.imm + 1)
            continue
        target = i + (insn.imm if code == _GOTOL else insn.off) + 1  # jump_target
        if operation == op.BPF_JA:  # the target of an unconditional jump
            points.add(target)
            jmp_points.add(target)
        else:  # a conditional jump, and the target of its branch edge
            points.add(i)
            points.add(target)
            jmp_points.add(target)
            if operation == op.BPF_JCOND:
                force.add(i)
    return frozenset(points), frozenset(force), frozenset(jmp_points), frozenset(callback_calls)


class StateList:
    """``struct bpf_verifier_state_list``: a kept state, where it was kept, its hit and
    miss counts, and ``branches``: how many paths still being explored descend from it
    (``parent`` is the state kept before it on its path). A state with branches is on
    the path being explored (exploration is depth first), so it cannot prune yet."""

    __slots__ = ("state", "insn_idx", "parent", "branches", "miss_cnt", "hit_cnt", "in_free_list", "cleaned")

    def __init__(self, state: State, insn_idx: int, parent: StateList | None):
        self.state, self.insn_idx, self.parent = state, insn_idx, parent
        self.branches = 1
        self.miss_cnt = self.hit_cnt = 0
        self.in_free_list = False
        self.cleaned = False  # clean_verifier_state ran: what nothing reads is forgotten


class ExploredStates:
    """``env->explored_states``: a list of kept states per hash of (instruction, call
    site), newest first; the last state kept on the current path (``checkpoints``,
    the chain of its ``parent`` links); and the counters the log prints
    (``peak_states`` counts the dropped states still on a path, as the kernel's free
    list does)."""

    def __init__(self, insns):
        self.points, self.force_checkpoints, self.jmp_points, self.callback_calls = prune_points(insns)
        self.size = max(len(insns), 1)  # state_htab_size
        self.buckets: dict[int, list[StateList]] = {}
        self.checkpoints: StateList | None = None
        self.total_states = self.peak_states = self.max_states_per_insn = 0
        self.explored_states_size = self.free_list_size = 0
        self.prev_jmps_processed = self.prev_insn_processed = 0
        # bpf_scc_visit: the entry state of each loop the walk is in, by its call chain
        self.scc_visits: dict[tuple[int, ...], StateList | None] = {}

    def is_prune_point(self, insn_idx: int) -> bool:
        return insn_idx in self.points

    def is_jmp_point(self, insn_idx: int) -> bool:
        return insn_idx in self.jmp_points

    def bucket(self, state: State, insn_idx: int) -> list[StateList]:
        """``explored_state``: the list for this instruction in this call frame."""
        key = ((insn_idx ^ state.frame.callsite) & U32_MASK) % self.size
        seen = self.buckets.get(key)
        if seen is None:
            seen = self.buckets[key] = []
        return seen

    def keep(self, state: State, insn_idx: int, head: list[StateList], jmps_processed: int,
             insn_processed: int) -> None:
        """Keep a copy of ``state``: it becomes the state's parent, and the state's jump
        history starts again here."""
        kept = StateList(state.copy(), insn_idx, self.checkpoints)
        head.insert(0, kept)
        self.checkpoints = kept
        state.parent = kept
        state.first_insn_idx = insn_idx
        state.jmp_history = []
        self.total_states += 1
        self.explored_states_size += 1
        self.peak_states = max(self.peak_states, self.explored_states_size + self.free_list_size)
        self.prev_jmps_processed, self.prev_insn_processed = jmps_processed, insn_processed

    def branch_pushed(self) -> None:
        """``push_stack``: one more path descends from the current checkpoint."""
        if self.checkpoints is not None:
            self.checkpoints.branches += 1

    def path_ended(self, on_done=None) -> None:
        """``update_branch_counts``: the current path ended (exit or pruned); a kept state
        no path descends from any more leaves the path (and the free list), after
        ``on_done(kept)`` (``maybe_exit_scc``)."""
        sl = self.checkpoints
        while sl is not None:
            sl.branches -= 1
            if sl.branches:
                break
            if on_done is not None:
                on_done(sl)
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
    the current one, and give the current path's kept states the precision the
    covering state had (``propagate_precision``); a state on the path that equals
    the current one exactly is an infinite loop. States that keep missing are
    dropped from the list. The current state is kept for later comparisons after
    at least 2 jumps and 8 instructions since the last kept state (20 jumps or 100
    instructions inside a loop), always at a force checkpoint, and when its jump
    history grew long."""
    explored = env.explored
    force_new_state = insn_idx in explored.force_checkpoints or \
        len(state.jmp_history) > MAX_JMP_HISTORY_BEFORE_CHECKPOINT
    add_new_state = force_new_state or (
        env.jmps_processed - explored.prev_jmps_processed >= KEEP_AFTER_JMPS
        and env.insn_processed - explored.prev_insn_processed >= KEEP_AFTER_INSNS)
    head = explored.bucket(state, insn_idx)
    clean_live_states(env, insn_idx, state, head)
    # the registers live here: computed for the program the first time a state is compared
    live_regs = env.liveness.live if head else ()
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
                if states_equal(old, state, live_regs, env.id_gen, insn_idx, RANGE_WITHIN):
                    return _hit(env, sl, old, state, insn_idx)
            # identical states on one path: a loop that cannot end, unless they are two
            # visits of a callback
            elif old.callback_unroll_depth == state.callback_unroll_depth and states_maybe_looping(old, state) \
                    and states_exact(old, state, live_regs, env.id_gen, insn_idx):
                raise Reject(f"infinite loop detected at insn {insn_idx}\ncur state:{format_frame(state.frame)}"
                             f"\nold state:{format_frame(old.frame)}")
            if not force_new_state and \
                    env.jmps_processed - explored.prev_jmps_processed < LOOP_KEEP_AFTER_JMPS and \
                    env.insn_processed - explored.prev_insn_processed < LOOP_KEEP_AFTER_INSNS:
                add_new_state = False
        elif states_equal(old, state, live_regs, env.id_gen, insn_idx):
            return _hit(env, sl, old, state, insn_idx)
        if add_new_state:
            sl.miss_cnt += 1
        n = CHECKPOINT_EVICT_AFTER_MISSES if force_new_state and sl.branches else EVICT_AFTER_MISSES
        if sl.miss_cnt > sl.hit_cnt * n + n:
            explored.evict(head, sl)
    explored.max_states_per_insn = max(explored.max_states_per_insn, states_cnt)
    if add_new_state:
        mark_all_scalars_imprecise(state)  # the kept copy starts imprecise: its descendants decide
        explored.keep(state, insn_idx, head, env.jmps_processed, env.insn_processed)
        if env.log.level >= 2:
            maybe_enter_scc(env, explored.checkpoints)
    return False


# -- loops: the kept state a walk entered each strongly connected component with -----------
def compute_scc_callchain(env, sl: StateList) -> tuple[int, ...] | None:
    """``compute_scc_callchain``: the call sites down to the first frame whose instruction
    is in a loop, and that loop's number; None when no frame's is."""
    scc = compute_scc(env.insns)
    frames = sl.state.frames
    callsites = []
    for depth in range(len(frames)):
        insn_idx = sl.insn_idx if depth == len(frames) - 1 else frames[depth + 1].callsite
        if scc[insn_idx]:
            return (*callsites, scc[insn_idx])
        if depth == len(frames) - 1:
            return None
        callsites.append(insn_idx)
    return None


def format_callchain(callchain: tuple[int, ...]) -> str:
    """``(callsite,...,scc)``: the call sites up to the first zero, then the loop."""
    *callsites, scc = callchain
    shown = []
    for site in callsites:
        if not site:
            break
        shown.append(str(site))
    return "(" + "".join(f"{site}," for site in shown) + f"{scc})"


def maybe_enter_scc(env, sl: StateList) -> None:
    """A state kept inside a loop whose visit has no entry state yet becomes it (printed at
    log level 2 as ``SCC enter``)."""
    callchain = compute_scc_callchain(env, sl)
    if callchain is None:
        return
    visits = env.explored.scc_visits
    if visits.get(callchain) is None:
        visits[callchain] = sl
        env.log.verbose(f"SCC enter {format_callchain(callchain)}")


def maybe_exit_scc(env, sl: StateList) -> None:
    """The loop's entry state has no path left below it: the visit ends (``SCC exit``).
    (The kernel then propagates precision over the loop's back edges, which bpfnb does
    not model: its pruning compares loops without them.)"""
    callchain = compute_scc_callchain(env, sl)
    if callchain is None or env.explored.scc_visits.get(callchain) is not sl:
        return
    env.log.verbose(f"SCC exit {format_callchain(callchain)}")
    env.explored.scc_visits[callchain] = None


def _hit(env, sl: StateList, old: State, state: State, insn_idx: int) -> bool:
    """The current state is covered by ``old``: what was precise there becomes precise
    on the current path (``propagate_precision``)."""
    sl.hit_cnt += 1
    if env.explored.is_jmp_point(insn_idx):
        push_jmp_history(env, state)
    propagate_precision(env, old, state)
    return True


def states_maybe_looping(old: State, cur: State) -> bool:
    """A cheap first test for an infinite loop: the same frames, and every register
    of the innermost frame the same in every field (ids too)."""
    if len(old.frames) != len(cur.frames):
        return False
    return all(_same_head(o, c) and _same_bounds(o.s, c.s) and o.id == c.id and o.ref_obj_id == c.ref_obj_id
               for o, c in zip(old.frame.regs, cur.frame.regs, strict=True))


def states_exact(old: State, cur: State, live_regs: list[set[int]], id_gen: int, insn_idx: int) -> bool:
    """``states_equal(.., EXACT)``: every live register and every stack byte the same
    (ids mapped alike), precision aside."""
    if len(old.frames) != len(cur.frames) or len(old.refs) != len(cur.refs) or \
            old.active_rcu_lock != cur.active_rcu_lock:
        return False
    idmap = IdMap(id_gen)
    if not all(idmap.check_ids(o, c) for (o, _), (c, _) in zip(old.refs, cur.refs, strict=True)):
        return False
    last = len(old.frames) - 1
    for depth, (fo, fc) in enumerate(zip(old.frames, cur.frames, strict=True)):
        if fo.callsite != fc.callsite:
            return False
        live = live_regs[insn_idx if depth == last else old.frames[depth + 1].callsite]
        if not all(regs_exact(fo.regs[r], fc.regs[r], idmap) for r in ALL_REGS if r in live):
            return False
        if fo.allocated_slots > fc.allocated_slots:
            return False
        for spi in range(fo.allocated_slots):
            slot, cslot = fo.stack.get(spi), fc.stack.get(spi)
            types = slot.types if slot is not None else list(EMPTY_SLOT)
            ctypes = cslot.types if cslot is not None else list(EMPTY_SLOT)
            if types != ctypes:
                return False
            if types[BPF_REG_SIZE - 1] == SPILL and not regs_exact(slot.spilled or Reg(), cslot.spilled or Reg(),
                                                                 idmap):
                return False
    return True


class IdMap:
    """``struct bpf_idmap``: which id of the current state each id of the old one
    stands for (two registers sharing an id in the old state must share one in the
    current state too); ``tmp_id_gen`` numbers the current state's id-less scalars."""

    __slots__ = ("pairs", "tmp_id_gen")

    def __init__(self, id_gen: int):
        self.pairs: list[tuple[int, int]] = []
        self.tmp_id_gen = id_gen

    def check_ids(self, old_id: int, cur_id: int) -> bool:
        if bool(old_id) != bool(cur_id):
            return False
        if not old_id:
            return True
        for o, c in self.pairs:
            if o == old_id:
                return c == cur_id
            if c == cur_id:
                return False
        self.pairs.append((old_id, cur_id))
        return True

    def check_scalar_ids(self, old_id: int, cur_id: int) -> bool:
        """An old scalar without an id is linked to nothing: any current one will do;
        a current one without an id gets a fresh one, so two linked old scalars
        cannot both map to "no id"."""
        if not old_id:
            return True
        if not cur_id:
            self.tmp_id_gen += 1
            cur_id = self.tmp_id_gen
        if not self.check_ids(old_id, cur_id):
            return False
        if old_id & BPF_ADD_CONST:
            return self.check_ids(old_id & ~BPF_ADD_CONST, cur_id & ~BPF_ADD_CONST)
        return True


def range_within(o: Scalar, c: Scalar) -> bool:
    return (o.umin <= c.umin and c.umax <= o.umax and o.smin <= c.smin and c.smax <= o.smax
            and o.u32_min <= c.u32_min and c.u32_max <= o.u32_max and o.s32_min <= c.s32_min
            and c.s32_max <= o.s32_max)


def _same_bounds(o: Scalar, c: Scalar) -> bool:
    return (o.var_off == c.var_off and o.smin == c.smin and o.smax == c.smax and o.umin == c.umin
            and o.umax == c.umax and o.s32_min == c.s32_min and o.s32_max == c.s32_max
            and o.u32_min == c.u32_min and o.u32_max == c.u32_max)


def _same_type(o: Reg, c: Reg) -> bool:
    """The type with its flags (``PTR_MAYBE_NULL``, ``PTR_TRUSTED``, ``MEM_RDONLY`` ...)."""
    return (o.type == c.type and o.maybe_null == c.maybe_null and o.trusted == c.trusted
            and o.untrusted == c.untrusted and o.rcu == c.rcu and o.rdonly == c.rdonly and o.ringbuf == c.ringbuf)


def _same_head(o: Reg, c: Reg) -> bool:
    """What the kernel compares with ``memcmp`` up to ``var_off``: the type, the fixed
    offset and the type's own facts (the map, the BTF type, the memory size, the range)."""
    return (_same_type(o, c) and o.off == c.off and o.map is c.map and o.btf_id == c.btf_id
            and o.mem_size == c.mem_size and o.range == c.range and o.subprogno == c.subprogno)


def regs_exact(o: Reg, c: Reg, idmap: IdMap) -> bool:
    return (_same_head(o, c) and _same_bounds(o.s, c.s) and idmap.check_ids(o.id, c.id)
            and idmap.check_ids(o.ref_obj_id, c.ref_obj_id))


# pointers whose variable offset may grow within what the old one allowed
RANGED_POINTERS = (PTR_TO_MAP_KEY, PTR_TO_MAP_VALUE, PTR_TO_MEM)


def regsafe(old: Reg, cur: Reg, idmap: IdMap, exact: int = NOT_EXACT) -> bool:
    """Whether ``cur`` is safe wherever ``old`` was (``regsafe``; ``RANGE_WITHIN``, for
    states of one path, compares every scalar by its range)."""
    if old.type == NOT_INIT and (exact == NOT_EXACT or cur.type == NOT_INIT):
        return True  # the explored state cannot have used it
    if not _same_type(old, cur):
        return False
    if old.type == SCALAR:
        if not old.precise and exact == NOT_EXACT:
            return True  # its exact value decided nothing
        o_linked, c_linked = old.id & BPF_ADD_CONST, cur.id & BPF_ADD_CONST
        if o_linked and not c_linked:
            return False
        if old.id and not o_linked and c_linked:
            return False
        if o_linked and old.off != cur.off:
            return False
        if not idmap.check_scalar_ids(old.id, cur.id):
            return False
        return range_within(old.s, cur.s) and old.s.var_off.contains(cur.s.var_off)
    if old.type in RANGED_POINTERS:
        return (_same_head(old, cur) and range_within(old.s, cur.s) and old.s.var_off.contains(cur.s.var_off)
                and idmap.check_ids(old.id, cur.id) and idmap.check_ids(old.ref_obj_id, cur.ref_obj_id))
    if old.type in (PTR_TO_PACKET, PTR_TO_PACKET_META):
        # at least the old range (a negative range marks a comparison with pkt_end: exact)
        if old.range < 0 or cur.range < 0:
            if old.range != cur.range:
                return False
        elif old.range > cur.range:
            return False
        if old.off != cur.off or not idmap.check_ids(old.id, cur.id):
            return False
        return range_within(old.s, cur.s) and old.s.var_off.contains(cur.s.var_off)
    if old.type == PTR_TO_STACK:  # fp-8 of one frame is not fp-8 of another
        return regs_exact(old, cur, idmap) and old.frameno == cur.frameno
    return regs_exact(old, cur, idmap)


# what a load from a slot of MISC (or, as root, never written) bytes gives: any number
# (compared, never changed)
UNBOUND_SCALAR = Reg(SCALAR, Scalar.unknown())
SKIPPED_BYTES = (INVALID, MISC)  # bytes root may read as anything: an old state relied on nothing there


def scalar_reg_for_stack(slot: Slot | None) -> Reg | None:
    """A slot a 64-bit scalar was spilled to, or one a load would read as any number
    (every byte ``STACK_MISC``, or never written: root may read those)."""
    if slot is None:
        return UNBOUND_SCALAR
    types = slot.types
    if types[0] == SPILL and slot.spilled is not None and slot.spilled.type == SCALAR:
        return slot.spilled
    if all(t in SKIPPED_BYTES for t in types):
        return UNBOUND_SCALAR
    return None


def stacksafe(old_frame: Frame, cur_frame: Frame, idmap: IdMap, exact: int = NOT_EXACT) -> bool:
    """Every slot byte the old state relied on is at least as good in the current one.
    As root, bytes never written and ``STACK_MISC`` bytes are any number alike (unless
    ``exact``: then every byte is typed alike)."""
    cur_slots = cur_frame.allocated_slots
    cur_stack = cur_frame.stack
    for spi, slot in sorted(old_frame.stack.items()):
        types = slot.types
        if exact != NOT_EXACT and spi < old_frame.allocated_slots:
            cslot = cur_stack.get(spi) if spi < cur_slots else None
            if cslot is None and any(t != INVALID for t in types) or (
                    cslot is not None and cslot.types != types):
                return False
        for k in range(BPF_REG_SIZE):
            t = types[k]
            if t in SKIPPED_BYTES:
                continue
            if spi >= cur_slots:
                return False
            cslot = cur_stack.get(spi)
            old_reg, cur_reg = scalar_reg_for_stack(slot), scalar_reg_for_stack(cslot)
            if old_reg is not None and cur_reg is not None:
                if not regsafe(old_reg, cur_reg, idmap, exact):
                    return False
                break
            ctypes = cslot.types if cslot is not None else EMPTY_SLOT
            for j in range(k, BPF_REG_SIZE):
                t = types[j]
                if t in SKIPPED_BYTES:
                    continue
                if t != ctypes[j]:
                    return False
            if types[BPF_REG_SIZE - 1] == SPILL:
                cur_spill = cslot.spilled if cslot is not None else None
                if not regsafe(slot.spilled or Reg(), cur_spill or Reg(), idmap, exact):
                    return False
            break
    return True


def states_equal(old: State, cur: State, live_regs: list[set[int]], id_gen: int, insn_idx: int,
                 exact: int = NOT_EXACT) -> bool:
    """``states_equal``: the same frames and call sites, the same references (ids
    mapped), and in each frame every register live where the old state stands
    (``live_regs`` before each instruction) and every stack slot safe."""
    if len(old.frames) != len(cur.frames):
        return False
    idmap = IdMap(id_gen)
    if len(old.refs) != len(cur.refs) or old.active_rcu_lock != cur.active_rcu_lock:
        return False
    for (old_ref, _), (cur_ref, _) in zip(old.refs, cur.refs, strict=True):
        if not idmap.check_ids(old_ref, cur_ref):
            return False
    last = len(old.frames) - 1
    for depth, (fo, fc) in enumerate(zip(old.frames, cur.frames, strict=True)):
        if fo.callsite != fc.callsite:
            return False
        if fo.callback_depth > fc.callback_depth:  # fewer callback visits made than the old state's
            return False
        live = live_regs[insn_idx if depth == last else old.frames[depth + 1].callsite]
        for r in ALL_REGS:
            if r in live and not regsafe(fo.regs[r], fc.regs[r], idmap, exact):
                return False
        if not stacksafe(fo, fc, idmap, exact):
            return False
    return True


def clean_live_states(env, insn_idx: int, cur: State, head: list[StateList]) -> None:
    """``clean_live_states``: each kept state here whose paths are all explored forgets,
    once, the registers and stack slots nothing after it reads (``clean_func_state``)."""
    for sl in head:
        if sl.branches or sl.cleaned or sl.insn_idx != insn_idx or not same_callsites(sl.state, cur):
            continue
        clean_verifier_state(env, sl.state, insn_idx)
        sl.cleaned = True


def same_callsites(a: State, b: State) -> bool:
    return len(a.frames) == len(b.frames) and all(
        fa.callsite == fb.callsite for fa, fb in zip(a.frames, b.frames, strict=True))


def clean_verifier_state(env, st: State, insn_idx: int) -> None:
    live_stack = env.live_stack
    live_stack.query_init(st, insn_idx)
    live_regs = env.liveness.live
    last = len(st.frames) - 1
    for depth, frame in enumerate(st.frames):
        ip = insn_idx if depth == last else st.frames[depth + 1].callsite
        live = live_regs[ip]
        for r in ALL_REGS:
            if r not in live:
                frame.regs[r] = Reg()
        for spi, slot in frame.stack.items():
            if not live_stack.slot_alive(depth, spi):
                slot.types = [INVALID] * BPF_REG_SIZE
                slot.spilled = None


__all__ = ["ExploredStates", "IdMap", "StateList", "clean_live_states", "is_state_visited", "regsafe", "stacksafe",
           "states_equal"]
