"""Precision: a scalar whose value decided something (a branch, a pointer
offset, a helper's size) is marked precise, so pruning compares its range
(the kernel's ``mark_chain_precision``; here a one-step version of its
backtracking)."""

from __future__ import annotations

from .regstate import SCALAR
from .state import State


def mark_chain_precision(env, state: State, regno: int, insn_idx: int) -> None:
    """The value in ``regno`` decided something: it and, in the state kept at this
    same instruction on the current path, the register it came from are precise."""
    reg = state.regs[regno]
    if reg.type != SCALAR:
        return
    reg.precise = True
    kept = env.explored.checkpoints
    if kept is not None and kept.insn_idx == insn_idx and kept.state.regs[regno].type == SCALAR:
        kept.state.regs[regno].precise = True
