"""Which stack slots may still be read: the kernel's live stack analysis
(kernel/bpf/liveness.c, Linux 6.18), which decides the slots pruning compares.

It is collected while the walk runs. For each call chain (the call instructions
leading to a function, then the function's first instruction: a "function
instance") and each instruction of that function, it keeps per frame of the chain:

- ``may_read``: slots the instruction read on some path (a union);
- ``must_write``: slots it wrote whole (8 aligned bytes) on every path (an
  intersection; an instruction seen once without writing has none);
- ``live_before``: slots it or an instruction after it may read before writing,
  the backward data flow ``live_before = (U live_before(successors) - must_write)
  | may_read`` solved in postorder when a path ends or a function returns;
- ``must_write_acc``: slots written on every path from the instruction to the
  function's end, carried with ``live_before`` at the entry to the caller's call
  instruction when a callee's instance is updated.

A kept state whose paths are all explored is then "cleaned": slots not live
where it was kept become ``STACK_INVALID`` (``clean_func_state``), so they never
stop a prune. At log level 2 each change prints as the kernel prints it
(``(3,6) frame 1 insn 97 +live -8,-24`` and ``(3,6) live stack update done in 2
iterations``).
"""

from __future__ import annotations

from .cfg import insn_successors

# the four masks of one instruction in one frame (``struct per_frame_masks``)
MAY_READ, MUST_WRITE, MUST_WRITE_ACC, LIVE_BEFORE = range(4)
ALL_SLOTS = (1 << 64) - 1
BPF_REG_SIZE = 8


def compute_postorder(insns, starts: list[int]) -> dict[int, list[int]]:
    """``compute_postorder``: each function's instructions in the postorder of an
    iterative depth-first walk from its first instruction (a jump target is taken
    before the fall-through)."""
    succ = insn_successors(insns)
    return {start: function_postorder(insns, succ, start) for start in starts}


def function_postorder(insns, succ, start: int) -> list[int]:
    """``compute_postorder`` of the function at ``start`` (``succ``: ``insn_successors``)."""
    n = len(insns)
    state = bytearray(n)
    discovered, explored = 1, 2
    order: list[int] = []
    stack = [start]
    while stack:
        top = stack[-1]
        state[top] |= discovered
        if state[top] & explored:
            order.append(top)
            stack.pop()
            continue
        for s in succ[top]:
            if 0 <= s < n and not state[s]:
                stack.append(s)
                state[s] |= discovered
        state[top] |= explored
    return order


def format_stack_mask(mask: int) -> str:
    """``bpf_fmt_stack_mask``: ``-8,-24`` for slots 0 and 2."""
    return ",".join(str(-(spi + 1) * BPF_REG_SIZE) for spi in range(64) if mask >> spi & 1)


class FuncInstance:
    """``struct func_instance``: the marks of one function reached by one call chain."""

    __slots__ = ("callchain", "start", "insn_cnt", "frames", "must_write_set", "updated", "must_write_dropped")

    def __init__(self, callchain: tuple[int, ...], start: int, insn_cnt: int):
        self.callchain = callchain  # the call instruction of each outer frame, then ``start``
        self.start = start
        self.insn_cnt = insn_cnt
        self.frames: list[list[list[int]] | None] = [None] * len(callchain)  # [mask kind][relative insn]
        self.must_write_set = [False] * insn_cnt
        self.updated = False
        self.must_write_dropped = False

    @property
    def curframe(self) -> int:
        return len(self.callchain) - 1

    def masks(self, frame: int) -> list[list[int]]:
        arr = self.frames[frame]
        if arr is None:
            arr = self.frames[frame] = [[0] * self.insn_cnt for _ in range(4)]
        return arr

    def text(self) -> str:
        return "(" + ",".join(str(c) for c in self.callchain) + ")"


class LiveStack:
    """``struct bpf_liveness``: the instances by call chain, the one the walk is in,
    and the whole-slot writes of the instruction being checked."""

    def __init__(self, insns, subprogs, prune_points: set[int], log):
        self.insns = insns
        self.subprogs = subprogs
        self.prune_points = prune_points
        self.log = log
        self.starts = list(subprogs.starts)
        # each function's postorder, computed when the walk first updates it
        self.postorder: dict[int, list[int]] = {}
        self.succ = insn_successors(insns)
        self.instances: dict[tuple[int, ...], FuncInstance] = {}
        self.cur_instance: FuncInstance | None = None
        self.write_masks_acc: list[int] = []
        self.write_insn_idx = 0
        self.query: list[FuncInstance] = []
        self.query_insn = 0

    # -- call chains ----------------------------------------------------------------
    def _end(self, start: int) -> int:
        later = [s for s in self.starts if s > start]
        return min(later) if later else len(self.insns)

    def lookup(self, callchain: tuple[int, ...]) -> FuncInstance:
        inst = self.instances.get(callchain)
        if inst is None:
            start = callchain[-1]
            inst = self.instances[callchain] = FuncInstance(callchain, start, self._end(start) - start)
        return inst

    @staticmethod
    def callchain(state, frameno: int) -> tuple[int, ...]:
        """``compute_callchain``: the call instruction of each frame below ``frameno``,
        then the first instruction of frame ``frameno``'s function."""
        frames = state.frames
        return tuple(frames[i + 1].callsite for i in range(frameno)) + (frames[frameno].subprog,)

    def _ensure_cur_instance(self, state) -> FuncInstance:
        if self.cur_instance is None:
            self.cur_instance = self.lookup(self.callchain(state, len(state.frames) - 1))
        return self.cur_instance

    def reset_callchain(self) -> None:
        """``bpf_reset_live_stack_callchain``: the walk entered another function."""
        self.cur_instance = None

    # -- marks ----------------------------------------------------------------------
    @staticmethod
    def _mark_read(inst: FuncInstance, frame: int, insn_idx: int, mask: int) -> None:
        masks = inst.masks(frame)
        idx = insn_idx - inst.start
        old = masks[MAY_READ][idx]
        new = old | mask
        if new != old and (new | masks[LIVE_BEFORE][idx]) != masks[LIVE_BEFORE][idx]:
            inst.updated = True
        masks[MAY_READ][idx] = new

    def mark_read(self, state, frame: int, insn_idx: int, mask: int) -> None:
        """``bpf_mark_stack_read``: the instruction read these slots of ``frame``."""
        self._mark_read(self._ensure_cur_instance(state), frame, insn_idx, mask)

    def reset_write_marks(self, state, insn_idx: int) -> None:
        """``bpf_reset_stack_write_marks``: before each instruction."""
        inst = self._ensure_cur_instance(state)
        self._reset_write_marks(inst, insn_idx)

    def _reset_write_marks(self, inst: FuncInstance, insn_idx: int) -> None:
        self.write_insn_idx = insn_idx
        self.write_masks_acc = [0] * len(inst.callchain)

    def mark_write(self, frame: int, mask: int) -> None:
        """``bpf_mark_stack_write``: the instruction wrote these slots of ``frame`` whole."""
        if frame < len(self.write_masks_acc):
            self.write_masks_acc[frame] |= mask

    def commit_write_marks(self) -> None:
        """``bpf_commit_stack_write_marks``: after each instruction (not after a call
        or a return, which left the instance)."""
        self._commit_write_marks(self.cur_instance)

    def _commit_write_marks(self, inst: FuncInstance | None) -> None:
        if inst is None:
            return
        idx = self.write_insn_idx - inst.start
        seen = inst.must_write_set[idx]
        for frame in range(len(inst.callchain)):
            mask = self.write_masks_acc[frame] if frame < len(self.write_masks_acc) else 0
            if mask == 0 and not seen:
                continue
            masks = inst.masks(frame)
            old = masks[MUST_WRITE][idx]
            if seen:
                mask &= old
            if old != mask:
                masks[MUST_WRITE][idx] = mask
                inst.updated = True
            if old & ~mask:
                inst.must_write_dropped = True
        inst.must_write_set[idx] = True
        self.write_insn_idx = 0

    # -- propagation ----------------------------------------------------------------
    def _log_mask_change(self, inst: FuncInstance, what: str, frame: int, insn_idx: int, old: int,
                         new: int) -> None:
        changed = old ^ new
        if not changed:
            return
        text = f"{inst.text()} frame {frame} insn {insn_idx} "
        if new & changed:
            text += f"+{what} {format_stack_mask(new & changed)} "
        if ~new & changed:
            text += f"-{what} {format_stack_mask(~new & changed & ALL_SLOTS)}"
        self.log.verbose(text)

    def _update_insn(self, inst: FuncInstance, frame: int, insn_idx: int) -> bool:
        succ = self.succ[insn_idx]
        if not succ:
            return False
        may_read, must_write, acc, live = inst.masks(frame)
        start = inst.start
        idx = insn_idx - start
        new_after = 0
        must_write_acc = ALL_SLOTS
        for s in succ:
            new_after |= live[s - start]
            must_write_acc &= acc[s - start]
        must_write_acc |= must_write[idx]
        new_before = (new_after & ~must_write[idx]) | may_read[idx]
        changed = new_before != live[idx] or must_write_acc != acc[idx]
        if self.log.level >= 2 and (may_read[idx] or must_write[idx] or insn_idx == inst.start
                                    or insn_idx in self.prune_points):
            self._log_mask_change(inst, "live", frame, insn_idx, live[idx], new_before)
            self._log_mask_change(inst, "written", frame, insn_idx, acc[idx], must_write_acc)
        live[idx] = new_before
        acc[idx] = must_write_acc
        return changed

    def _update_instance(self, inst: FuncInstance) -> None:
        if inst.must_write_dropped:
            for arr in inst.frames:
                if arr is not None:
                    arr[MUST_WRITE_ACC][:] = [0] * inst.insn_cnt
        order = self.postorder.get(inst.start)
        if order is None:
            order = self.postorder[inst.start] = function_postorder(self.insns, self.succ, inst.start) \
                if inst.start in self.starts else []
        rounds = 0
        changed = True
        while changed:
            rounds += 1
            changed = False
            for frame in range(len(inst.callchain)):
                if inst.frames[frame] is None:
                    continue
                for i in order:
                    changed |= self._update_insn(inst, frame, i)
        if self.log.level >= 2:
            self.log.verbose(f"{inst.text()} live stack update done in {rounds} iterations")
        if inst.curframe > 0:
            self._propagate_to_outer_instance(inst)

    def _propagate_to_outer_instance(self, inst: FuncInstance) -> None:
        """The callee's entry marks become its call instruction's in the caller."""
        outer = self.lookup(inst.callchain[:-2] + (self.subprogs.of(inst.callchain[-2]),))
        callsite = inst.callchain[-2]
        self._reset_write_marks(outer, callsite)
        for frame in range(inst.curframe):
            arr = inst.frames[frame]
            if arr is None:
                continue
            self.write_masks_acc[frame] |= arr[MUST_WRITE_ACC][0]
            self._mark_read(outer, frame, callsite, arr[LIVE_BEFORE][0])
        self._commit_write_marks(outer)

    def update(self, state) -> None:
        """``bpf_update_live_stack``: after a path ended and before a return, solve
        every instance of the current state's chain that changed, callee first."""
        self.reset_callchain()
        for frame in range(len(state.frames) - 1, -1, -1):
            inst = self.lookup(self.callchain(state, frame))
            if inst.updated:
                self._update_instance(inst)
                inst.updated = False
                inst.must_write_dropped = False

    # -- queries --------------------------------------------------------------------
    def query_init(self, state, insn_idx: int) -> None:
        """``bpf_live_stack_query_init``: the instances of a kept state's chain."""
        self.query = [self.lookup(self.callchain(state, f)) for f in range(len(state.frames))]
        self.query_insn = insn_idx

    @staticmethod
    def _live_before(inst: FuncInstance, insn_idx: int, frameno: int, spi: int) -> bool:
        arr = inst.frames[frameno] if frameno < len(inst.frames) else None
        idx = insn_idx - inst.start
        return arr is not None and 0 <= idx < inst.insn_cnt and bool(arr[LIVE_BEFORE][idx] >> spi & 1)

    def slot_alive(self, frameno: int, spi: int) -> bool:
        """``bpf_stack_slot_alive``: read after the kept state's instruction in its own
        function, or after the return to some caller."""
        cur = self.query[-1]
        if self._live_before(cur, self.query_insn, frameno, spi):
            return True
        for i in range(frameno, len(self.query) - 1):
            if self._live_before(self.query[i], cur.callchain[i] + 1, frameno, spi):
                return True
        return False


__all__ = ["FuncInstance", "LiveStack", "compute_postorder", "format_stack_mask", "function_postorder"]
