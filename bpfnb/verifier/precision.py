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
    explored = env.explored
    if explored.checkpoints is not None:
        kept_id = explored.checkpoints[0]
        for kept in explored.at.get(insn_idx, ()):
            if id(kept) == kept_id and kept.regs[regno].type == SCALAR:
                kept.regs[regno].precise = True
