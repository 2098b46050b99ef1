"""Precision: a scalar whose exact value decided something (a branch, a pointer
offset, a helper's size argument, a return code) is marked precise, so pruning
compares its range; every register and stack slot it was computed from, back to
where it became a constant, is marked precise too (the kernel's
``mark_chain_precision``).

The walk records, per state, a jump history (``push_jmp_history``: every jump
target and return point reached, every spill and fill of a register, the
scalars linked by an id at a conditional jump). ``__mark_chain_precision``
walks backwards from the current instruction through that history
(``backtrack_insn`` turns "r3 must be precise after this instruction" into
what must be precise before it), then on through the chain of kept states
(``parent``), marking each kept state on the way. The current state is never
marked: only kept states are compared. When the history cannot say where a
value came from, every scalar of the kept states becomes precise
(``mark_all_scalars_precise``)."""

from __future__ import annotations

from typing import NamedTuple

from ..isa import opcodes as op
from ..isa.disasm import format_insn
from ..isa.helpers import BpfFunc
from .regstate import SCALAR
from .state import State, format_frame

MAX_CALL_FRAMES = 8
BPF_REG_FP = 10
BPF_REG_0 = 0
ARG_REGS = range(1, 6)
# struct bpf_jmp_history_entry's flags: the frame and slot of a spill or fill
# (INSN_F_FRAMENO_MASK, INSN_F_SPI_MASK/_SHIFT, INSN_F_STACK_ACCESS), and a
# conditional jump comparing a stack pointer (INSN_F_DST_REG_STACK/_SRC_REG_STACK)
INSN_F_FRAMENO_MASK, INSN_F_SPI_MASK, INSN_F_SPI_SHIFT = 0x7, 0x3F, 3
INSN_F_STACK_ACCESS = 1 << 9
INSN_F_DST_REG_STACK = 1 << 10
INSN_F_SRC_REG_STACK = 1 << 11
# a jump history longer than this makes is_state_visited keep the state
MAX_JMP_HISTORY_BEFORE_CHECKPOINT = 40
CLASS_MASK, OP_MASK = 0x07, 0xF0
ALU_CLASSES, JMP_CLASSES = (op.BPF_ALU, op.BPF_ALU64), (op.BPF_JMP, op.BPF_JMP32)
SYNC_CALLBACK_HELPERS = (BpfFunc.loop, BpfFunc.for_each_map_elem, BpfFunc.find_vma, BpfFunc.user_ringbuf_drain)


class LinkedReg(NamedTuple):
    """``struct linked_reg``: a register (``is_reg``) or a spilled slot sharing an id."""

    frameno: int
    index: int  # register number or stack slot
    is_reg: bool


class HistEntry(NamedTuple):
    """``struct bpf_jmp_history_entry``: ``idx`` was reached from ``prev_idx``."""

    idx: int
    prev_idx: int
    flags: int = 0
    linked_regs: tuple[LinkedReg, ...] = ()


class NotSupported(Exception):
    """``-ENOTSUPP`` from ``backtrack_insn``: fall back to forcing everything precise."""


class VerifierBug(Exception):
    """What the kernel reports as ``verifier bug``: backtracking found a state it
    cannot have (a bug in bpfnb's walk, never a verdict on the program)."""


def insn_stack_access_flags(frameno: int, spi: int) -> int:
    return INSN_F_STACK_ACCESS | (spi << INSN_F_SPI_SHIFT) | frameno


def push_jmp_history(env, state: State, flags: int = 0, linked_regs: tuple[LinkedReg, ...] = ()) -> None:
    """Record that the current instruction was reached (from ``env.prev_insn_idx``);
    a second record for the same instruction merges its flags into the first."""
    if not env.prune:
        return  # nothing is kept, nothing to backtrack into
    if env.cur_hist_ent:
        last = state.jmp_history[-1]
        state.jmp_history[-1] = last._replace(flags=last.flags | flags, linked_regs=linked_regs or last.linked_regs)
        return
    state.jmp_history.append(HistEntry(state.insn_idx, state.last_insn_idx, flags, linked_regs))
    env.cur_hist_ent = True


def get_prev_insn_idx(st: State, i: int, history: int) -> tuple[int | None, int]:
    """The instruction walked before ``i`` (None: the first of this state) and the
    history entries left."""
    if i == st.first_insn_idx:
        if history == 0:
            return None, history
        if history == 1 and st.jmp_history[0].idx == i:
            return None, history
    if history and st.jmp_history[history - 1].idx == i:
        return st.jmp_history[history - 1].prev_idx, history - 1
    return i - 1, history


class BacktrackState:
    """``struct backtrack_state``: per frame, the registers and stack slots that must
    be precise before the instruction being backtracked."""

    def __init__(self, frame: int):
        self.frame = frame
        self.reg_masks = [0] * MAX_CALL_FRAMES
        self.stack_masks = [0] * MAX_CALL_FRAMES

    def empty(self) -> bool:
        reg_masks, stack_masks = self.reg_masks, self.stack_masks
        for i in range(self.frame + 1):  # a loop, not any(): asked after every instruction backtracked
            if reg_masks[i] or stack_masks[i]:
                return False
        return True

    def reset(self) -> None:
        self.reg_masks = [0] * MAX_CALL_FRAMES
        self.stack_masks = [0] * MAX_CALL_FRAMES

    def set_reg(self, reg: int, frame: int | None = None) -> None:
        self.reg_masks[self.frame if frame is None else frame] |= 1 << reg

    def clear_reg(self, reg: int, frame: int | None = None) -> None:
        self.reg_masks[self.frame if frame is None else frame] &= ~(1 << reg)

    def is_reg_set(self, reg: int, frame: int | None = None) -> bool:
        return bool(self.reg_masks[self.frame if frame is None else frame] & (1 << reg))

    def set_slot(self, frame: int, spi: int) -> None:
        self.stack_masks[frame] |= 1 << spi

    def clear_slot(self, frame: int, spi: int) -> None:
        self.stack_masks[frame] &= ~(1 << spi)

    def is_slot_set(self, frame: int, spi: int) -> bool:
        return bool(self.stack_masks[frame] & (1 << spi))

    @property
    def reg_mask(self) -> int:
        return self.reg_masks[self.frame]

    @property
    def stack_mask(self) -> int:
        return self.stack_masks[self.frame]

    def subprog_enter(self) -> None:
        if self.frame == MAX_CALL_FRAMES - 1:
            raise VerifierBug(f"subprog enter from frame {self.frame}")
        self.frame += 1

    def subprog_exit(self) -> None:
        if self.frame == 0:
            raise VerifierBug("subprog exit from frame 0")
        self.frame -= 1


def _bits(mask: int):
    i = 0
    while mask:
        if mask & 1:
            yield i
        mask >>= 1
        i += 1


def fmt_reg_mask(mask: int) -> str:
    return ",".join(f"r{i}" for i in _bits(mask))


def fmt_stack_mask(mask: int) -> str:
    return ",".join(str(-(i + 1) * 8) for i in _bits(mask))


def bt_sync_linked_regs(bt: BacktrackState, hist: HistEntry | None) -> None:
    """One of the scalars linked at this jump must be precise: all of them must."""
    if hist is None or not hist.linked_regs:
        return
    if not any(bt.is_reg_set(e.index, e.frameno) if e.is_reg else bt.is_slot_set(e.frameno, e.index)
               for e in hist.linked_regs):
        return
    for e in hist.linked_regs:
        if e.is_reg:
            bt.set_reg(e.index, e.frameno)
        else:
            bt.set_slot(e.frameno, e.index)


def is_sync_callback_calling_insn(insn) -> bool:
    return insn.is_helper_call and insn.imm in SYNC_CALLBACK_HELPERS


def is_hidden_exit(idx: int, subseq_idx: int) -> bool:
    """A legacy packet load or a tail call the walk left its function by
    (``hidden_subprog_exit``): backwards, the walk goes into that function as at an exit,
    the caller's registers staying asked for in its frame."""
    return subseq_idx not in (-1, idx + 1)


def backtrack_insn(env, idx: int, subseq_idx: int, hist: HistEntry | None, bt: BacktrackState) -> None:
    """What must be precise before ``idx``, given what must be after it (``subseq_idx``
    is the instruction walked after it)."""
    insns = env.insns
    insn = insns[idx]
    code = insn.code
    if code == 0:  # the second half of a 64-bit immediate load
        return
    cls, opcode = code & CLASS_MASK, code & OP_MASK  # read once: this runs for every instruction backtracked
    dreg, sreg = insn.dst, insn.src
    if env.log.level >= 2:
        nxt = insns[idx + 1] if insn.is_ld_imm64 and idx + 1 < len(insns) else None
        env.log.verbose(f"mark_precise: frame{bt.frame}: regs={fmt_reg_mask(bt.reg_mask)} "
                        f"stack={fmt_stack_mask(bt.stack_mask)} before {idx}: {format_insn(insn, nxt)}")
    if hist is not None:
        bt_sync_linked_regs(bt, hist)
    if cls in ALU_CLASSES:
        if not bt.reg_masks[bt.frame] >> dreg & 1:  # is_reg_set(dreg)
            return
        if opcode in (op.BPF_END, op.BPF_NEG):
            return
        if opcode == op.BPF_MOV:
            bt.clear_reg(dreg)
            if code & op.BPF_X and sreg != BPF_REG_FP:
                bt.set_reg(sreg)
        elif code & op.BPF_X and sreg != BPF_REG_FP:
            bt.set_reg(sreg)
    elif cls == op.BPF_LDX:
        if not bt.is_reg_set(dreg):
            return
        bt.clear_reg(dreg)
        if hist is None or not hist.flags & INSN_F_STACK_ACCESS:
            return  # loaded from memory other than a spill: its precision ends here
        bt.set_slot(hist.flags & INSN_F_FRAMENO_MASK, (hist.flags >> INSN_F_SPI_SHIFT) & INSN_F_SPI_MASK)
    elif cls in (op.BPF_STX, op.BPF_ST):
        if bt.is_reg_set(dreg):
            raise NotSupported  # a scalar used as the address: pointer subtraction
        if hist is None or not hist.flags & INSN_F_STACK_ACCESS:
            return
        fr, spi = hist.flags & INSN_F_FRAMENO_MASK, (hist.flags >> INSN_F_SPI_SHIFT) & INSN_F_SPI_MASK
        if not bt.is_slot_set(fr, spi):
            return
        bt.clear_slot(fr, spi)
        if cls == op.BPF_STX:
            bt.set_reg(sreg)
    elif cls in JMP_CLASSES:
        _backtrack_jmp(env, insn, idx, subseq_idx, hist, bt)
    elif cls == op.BPF_LD:
        legacy = insn.mode in (op.BPF_IND, op.BPF_ABS)
        if not bt.is_reg_set(dreg):
            if legacy and is_hidden_exit(idx, subseq_idx):
                bt.subprog_enter()
            return
        bt.clear_reg(dreg)
        if legacy:
            raise NotSupported
    if hist is not None:
        bt_sync_linked_regs(bt, hist)


def _backtrack_jmp(env, insn, idx: int, subseq_idx: int, hist: HistEntry | None, bt: BacktrackState) -> None:
    args_mask = sum(1 << r for r in ARG_REGS)
    if insn.is_pseudo_call:
        target = idx + insn.imm + 1
        if env.subprogs.is_global(target):
            if bt.reg_mask & args_mask:
                raise VerifierBug(f"global subprog unexpected regs {bt.reg_mask:x}")
            bt.clear_reg(BPF_REG_0)  # a global function always sets r0
            return
        # the call of a static function: backtracking leaves it for its caller
        if bt.reg_mask & ~args_mask:
            raise VerifierBug(f"static subprog unexpected regs {bt.reg_mask:x}")
        if bt.stack_mask:
            raise VerifierBug(f"static subprog leftover stack slots {bt.stack_mask:x}")
        for r in ARG_REGS:
            if bt.is_reg_set(r):
                bt.clear_reg(r)
                bt.set_reg(r, bt.frame - 1)
        bt.subprog_exit()
    elif is_sync_callback_calling_insn(insn) and idx != subseq_idx - 1:
        # the return from a callback into the helper that called it
        if bt.reg_mask & ~args_mask:
            raise VerifierBug(f"callback unexpected regs {bt.reg_mask:x}")
        if bt.stack_mask:
            raise VerifierBug(f"callback leftover stack slots {bt.stack_mask:x}")
        for r in ARG_REGS:
            bt.clear_reg(r)
        bt.subprog_exit()
    elif insn.op == op.BPF_CALL:
        if insn.src == op.BPF_PSEUDO_KFUNC_CALL and insn.imm == 0:
            raise NotSupported
        bt.clear_reg(BPF_REG_0)  # a helper sets r0
        if bt.reg_mask & args_mask:
            raise VerifierBug(f"backtracking call unexpected regs {bt.reg_mask:x}")
        if insn.src == 0 and insn.imm == BpfFunc.tail_call and is_hidden_exit(idx, subseq_idx):
            bt.subprog_enter()
    elif insn.op == op.BPF_EXIT:
        # backwards into the function that returned to subseq_idx. A function returns
        # to the instruction after its call: its caller's r1-r5 were found before the
        # call already, and r0 goes back into it. A callback returns to the helper
        # that called it: r0 is the helper's business, and the caller's r1-r5 (the
        # helper's arguments, bpf_loop's count, its callback's context) stay asked for
        # in the caller's frame while the walk goes on through the callback's body
        # back to the helper call, then on before it in the caller. That is the rule of
        # the running 6.18.44 (and of Debian's 6.12 sources); the upstream tree clears
        # r1-r5 here instead (when calls_callback(subseq_idx)) and stops sooner.
        from_subprog_call = subseq_idx >= 1 and env.insns[subseq_idx - 1].is_pseudo_call
        if from_subprog_call and bt.reg_mask & args_mask:
            raise VerifierBug(f"backtracking exit unexpected regs {bt.reg_mask:x}")
        r0_precise = from_subprog_call and bt.is_reg_set(BPF_REG_0)
        bt.clear_reg(BPF_REG_0)
        bt.subprog_enter()
        if r0_precise:
            bt.set_reg(BPF_REG_0)
    elif insn.uses_src_reg:
        if not bt.is_reg_set(insn.dst) and not bt.is_reg_set(insn.src):
            return
        # dst <cond> src: both are needed, whichever was asked for
        flags = hist.flags if hist is not None else 0
        if not flags & INSN_F_SRC_REG_STACK:
            bt.set_reg(insn.src)
        if not flags & INSN_F_DST_REG_STACK:
            bt.set_reg(insn.dst)


def _kept_states(state: State):
    sl = state.parent
    while sl is not None:
        yield sl.state
        sl = sl.state.parent


def mark_all_scalars_precise(env, starting_state: State) -> None:
    """The big hammer: every scalar of every state kept on this path becomes precise."""
    log = env.log
    if log.level >= 2:
        log.verbose(f"mark_precise: frame{len(starting_state.frames) - 1}: falling back to forcing all scalars precise")
    for st in _kept_states(starting_state):
        for i, func in enumerate(st.frames):
            for j in range(BPF_REG_FP):
                reg = func.regs[j]
                if reg.type != SCALAR or reg.precise:
                    continue
                reg.precise = True
                if log.level >= 2:
                    log.verbose(f"force_precise: frame{i}: forcing r{j} to be precise")
            for spi in range(func.allocated_slots):
                slot = func.stack.get(spi)
                if slot is None or not slot.is_spill or slot.spilled is None:
                    continue
                reg = slot.spilled
                if reg.type != SCALAR or reg.precise:
                    continue
                reg.precise = True
                if log.level >= 2:
                    log.verbose(f"force_precise: frame{i}: forcing fp{-(spi + 1) * 8} to be precise")


def mark_all_scalars_imprecise(state: State) -> None:
    """Forget the precision a state inherited (before it is kept: only its
    descendants' needs should make it precise)."""
    for func in state.frames:
        for reg in func.regs[:BPF_REG_FP]:
            if reg.type == SCALAR:
                reg.precise = False
        for slot in func.stack.values():
            if slot.is_spill and slot.spilled is not None and slot.spilled.type == SCALAR:
                slot.spilled.precise = False


def __mark_chain_precision(env, starting_state: State, regno: int, bt: BacktrackState | None = None) -> bool:
    """Backtrack from the current instruction of ``starting_state`` with ``regno``
    (or, when it is -1, what ``bt`` already asks for) needing precision. True when
    a kept state gained a mark."""
    st = starting_state
    if bt is None:
        bt = BacktrackState(len(st.frames) - 1)
    log = env.log
    first_idx, last_idx, subseq_idx = st.first_insn_idx, st.insn_idx, -1
    skip_first = True
    changed = False
    if regno >= 0:
        if st.frames[bt.frame].regs[regno].type != SCALAR:
            raise VerifierBug("backtracking misuse")
        bt.set_reg(regno)
    if bt.empty():
        return False
    try:
        while True:
            if log.level >= 2:
                log.verbose(f"mark_precise: frame{bt.frame}: last_idx {last_idx} first_idx {first_idx} "
                            f"subseq_idx {subseq_idx} ")
            if last_idx < 0:
                return changed | _mark_global_func_args(env, st, bt)
            history = len(st.jmp_history)
            i = last_idx
            while True:
                if skip_first:
                    skip_first = False
                else:
                    hist = st.jmp_history[history - 1] if history and st.jmp_history[history - 1].idx == i else None
                    backtrack_insn(env, i, subseq_idx, hist, bt)
                if bt.empty():
                    return changed  # found where every value asked for was set
                subseq_idx = i
                i, history = get_prev_insn_idx(st, i, history)
                if i is None:
                    break
                if i >= len(env.insns):
                    raise VerifierBug(f"backtracking idx {i}")
            parent = st.parent
            if parent is None:
                break
            st = parent.state
            changed |= _mark_parent(env, st, bt)
            if bt.empty():
                return changed
            subseq_idx = first_idx
            last_idx, first_idx = st.last_insn_idx, st.first_insn_idx
    except NotSupported:
        mark_all_scalars_precise(env, starting_state)
        bt.reset()
        return changed
    if not bt.empty():  # something was missed (a stack access through another register)
        mark_all_scalars_precise(env, starting_state)
        bt.reset()
    return changed


def _mark_global_func_args(env, st: State, bt: BacktrackState) -> bool:
    """Backtracking reached the entry of a global function verified on its own:
    only its arguments may be asked for."""
    if len(st.frames) == 1 and env.validating_subprog and not bt.stack_mask and not bt.reg_mask & ~sum(
            1 << r for r in ARG_REGS):
        changed = False
        for i in _bits(bt.reg_mask):
            reg = st.frames[0].regs[i]
            bt.clear_reg(i)
            if reg.type == SCALAR:
                reg.precise = True
                changed = True
        return changed
    raise VerifierBug(f"backtracking func entry reg_mask {bt.reg_mask:x} stack_mask {bt.stack_mask:x}")


def _mark_parent(env, st: State, bt: BacktrackState) -> bool:
    """Mark in the kept state ``st`` what ``bt`` asks for; what is already precise
    there (or not a scalar) needs no further backtracking."""
    changed = False
    for fr in range(bt.frame, -1, -1):
        func = st.frames[fr]
        for i in _bits(bt.reg_masks[fr]):
            reg = func.regs[i]
            if reg.type != SCALAR or reg.precise:
                bt.clear_reg(i, fr)
            else:
                reg.precise = changed = True
        for spi in _bits(bt.stack_masks[fr]):
            slot = func.stack.get(spi)
            if slot is None or not slot.is_spill or slot.spilled is None or slot.spilled.type != SCALAR:
                bt.clear_slot(fr, spi)
            elif slot.spilled.precise:
                bt.clear_slot(fr, spi)
            else:
                slot.spilled.precise = changed = True
        if env.log.level >= 2:
            env.log.verbose(f"mark_precise: frame{fr}: parent state regs={fmt_reg_mask(bt.reg_masks[fr])} "
                            f"stack={fmt_stack_mask(bt.stack_masks[fr])}: {format_frame(func)}{st.refs_text()}")
    return changed


def mark_chain_precision(env, state: State, regno: int) -> None:
    """The value in ``regno`` decided something: the kept states on this path get it
    (and what it was computed from) precise (nothing to do when nothing is kept)."""
    if env.prune:
        __mark_chain_precision(env, state, regno)


def mark_chain_precision_batch(env, state: State, bt: BacktrackState) -> None:
    """Backtrack what ``bt`` already asks for (registers and slots of any frame)."""
    if env.prune:
        __mark_chain_precision(env, state, -1, bt)


def propagate_precision(env, old: State, cur: State) -> bool:
    """``cur`` was pruned against ``old``: what was precise in ``old`` must be in the
    states kept on ``cur``'s path too."""
    bt = BacktrackState(len(cur.frames) - 1)
    log = env.log
    for fr in range(len(old.frames) - 1, -1, -1):
        func = old.frames[fr]
        names = []
        for i in range(BPF_REG_FP):
            reg = func.regs[i]
            if reg.type == SCALAR and reg.precise:
                bt.set_reg(i, fr)
                names.append(f"r{i}")
        for spi in range(func.allocated_slots):
            slot = func.stack.get(spi)
            if slot is None or not slot.is_spill or slot.spilled is None:
                continue
            if slot.spilled.type == SCALAR and slot.spilled.precise:
                bt.set_slot(fr, spi)
                names.append(f"fp{(-spi - 1) * 8}")
        if names and log.level >= 2:
            log.verbose(f"frame {fr}: propagating {','.join(names)}")
    return __mark_chain_precision(env, cur, -1, bt)


__all__ = ["BacktrackState", "HistEntry", "LinkedReg", "mark_chain_precision_batch", "mark_all_scalars_imprecise", "mark_all_scalars_precise",
           "mark_chain_precision", "propagate_precision", "push_jmp_history"]
