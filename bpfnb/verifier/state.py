"""Verifier states: registers and stack of each call frame.

A stack slot is 8 bytes with a type per byte (``STACK_INVALID`` ``?``,
``STACK_SPILL`` ``r``, ``STACK_MISC`` ``m``, ``STACK_ZERO`` ``0``) and, for
spills, the register that was stored. Printing follows the kernel's
``print_verifier_state`` (registers first, then slots nearest the frame
pointer first).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .regstate import NOT_INIT, PTR_TO_CTX, PTR_TO_STACK, Reg, format_reg
from .scalar import Scalar

MAX_BPF_STACK = 512
INVALID, SPILL, MISC, ZERO = "?", "r", "m", "0"


@dataclass
class Slot:
    types: list[str] = field(default_factory=lambda: [INVALID] * 8)
    spilled: Reg | None = None

    def copy(self) -> Slot:
        return Slot(list(self.types), self.spilled.copy() if self.spilled is not None else None)

    @property
    def is_spill(self) -> bool:
        return self.types[7] == SPILL


@dataclass
class Frame:
    """``struct bpf_func_state``: one function's registers and stack; ``subprog`` is the
    first slot of the function it runs; a callback's frame (``in_callback_fn``) returns
    to its call site; ``callback_depth`` counts the callback visits a bpf_loop call made."""

    frameno: int = 0
    callsite: int = -1
    regs: list[Reg] = field(default_factory=lambda: [Reg() for _ in range(11)])
    stack: dict[int, Slot] = field(default_factory=dict)  # spi (0 = fp-8) -> slot
    subprog: int = 0
    in_callback_fn: bool = False
    callback_depth: int = 0
    in_async_callback_fn: bool = False  # a timer's callback, walked as a program of its own
    async_entry_cnt: int = 0

    def copy(self) -> Frame:
        return Frame(self.frameno, self.callsite, [r.copy() for r in self.regs],
                     {k: v.copy() for k, v in self.stack.items()}, self.subprog, self.in_callback_fn,
                     self.callback_depth, self.in_async_callback_fn, self.async_entry_cnt)

    @property
    def allocated_slots(self) -> int:
        return max(self.stack, default=-1) + 1


@dataclass
class State:
    """``struct bpf_verifier_state``: the frames, the references held, and what
    precision backtracking needs: ``parent`` (the ``StateList`` of the state kept
    last on this path), the instructions walked since it (``first_insn_idx`` up to
    ``last_insn_idx``, the one before ``insn_idx``) and ``jmp_history``, the
    ``HistEntry`` of every jump, return and stack spill/fill among them."""

    frames: list[Frame]
    refs: tuple[tuple[int, int], ...] = ()  # acquired references: (id, insn that acquired it)
    active_rcu_lock: bool = False  # inside bpf_rcu_read_lock()/bpf_rcu_read_unlock()
    callback_unroll_depth: int = 0  # callback visits on this path (states of two visits are no loop)
    parent: object = None
    insn_idx: int = 0
    first_insn_idx: int = 0
    last_insn_idx: int = -1
    jmp_history: list = field(default_factory=list)

    def copy(self) -> State:
        return State([f.copy() for f in self.frames], self.refs, self.active_rcu_lock, self.callback_unroll_depth,
                     self.parent, self.insn_idx, self.first_insn_idx, self.last_insn_idx, list(self.jmp_history))

    def refs_text(self) -> str:
        """`` refs=2,5``: what ``print_verifier_state`` appends while references are held."""
        return f" refs={','.join(str(ref_id) for ref_id, _insn in self.refs)}" if self.refs else ""

    @property
    def frame(self) -> Frame:
        return self.frames[-1]

    @property
    def regs(self) -> list[Reg]:
        return self.frames[-1].regs


def initial_state() -> State:
    frame = Frame()
    frame.regs[1] = Reg(PTR_TO_CTX, Scalar.const(0))
    frame.regs[10] = Reg(PTR_TO_STACK, Scalar.const(0))
    return State([frame])


def format_slot(slot: Slot, frameno: int) -> str:
    if slot.is_spill and slot.spilled is not None:
        first = slot.types.index(SPILL)
        return "".join(slot.types[:first]) + format_reg(slot.spilled, frameno)
    return "".join(slot.types)


def format_frame(frame: Frame, *, regs: set[int] | None = None, slots: set[int] | None = None) -> str:
    """`` R1=ctx() R10=fp0 fp-8=mmmmmmmm``; only the scratched ``regs``/``slots``
    unless both are None (print all)."""
    parts = [f" frame{frame.frameno}:"] if frame.frameno else []
    for i, reg in enumerate(frame.regs):
        if reg.type == NOT_INIT or (regs is not None and i not in regs):
            continue
        parts.append(f" R{i}={format_reg(reg, frame.frameno)}")
    for spi in range(frame.allocated_slots):
        slot = frame.stack.get(spi)
        if slot is None or all(t == INVALID for t in slot.types):
            continue
        if slots is not None and spi not in slots:
            continue
        parts.append(f" fp{-(spi + 1) * 8}={format_slot(slot, frame.frameno)}")
    if frame.in_callback_fn:
        parts.append(" cb")
    if frame.in_async_callback_fn:
        parts.append(" async_cb")
    return "".join(parts)


__all__ = ["Frame", "MAX_BPF_STACK", "Slot", "State", "format_frame", "initial_state"]
