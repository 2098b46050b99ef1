"""The record of one verification: every visited instruction with its state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Step:
    """The verifier's visit ``step`` of instruction ``insn``, on the path whose
    previous visit was ``prev``; ``regs``/``stack`` are the state after the
    instruction, as the log prints them (``R1 -> "ctx()"``, ``fp-8 -> "mmmmmmmm"``).
    The same type describes a walk replayed from the kernel's log (the stepper's
    ``Visit``)."""

    step: int
    insn: int
    prev: int | None
    regs: Mapping[str, str]
    stack: Mapping[str, str] = field(default_factory=dict)
    event: str | None = None  # "branch", "exit", "pruned", "error", "call", "return"
    note: str = ""  # e.g. "from 9 to 12", "always taken", "safe: ..."
    # the state this visit started from, when it is not the previous visit's
    # (a path pushed at a branch starts with that branch side's state)
    entry_regs: Mapping[str, str] | None = None
    entry_stack: Mapping[str, str] | None = None
    frame: int = 0  # the call frame the instruction ran in


@dataclass
class Trace:
    """Steps in the order the verifier made them, over every explored path."""

    steps: list[Step] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)

    def frame(self):
        """One row per step: step, insn, prev, event, and a column per register/slot."""
        import pandas as pd

        rows = []
        for s in self.steps:
            row = {"step": s.step, "insn": s.insn, "prev": s.prev, "event": s.event, "frame": s.frame}
            row.update(s.regs)
            row.update(s.stack)
            rows.append(row)
        frame = pd.DataFrame(rows)
        regs = sorted((c for c in frame.columns if c.startswith("R")), key=lambda c: int(c[1:]))
        slots = sorted((c for c in frame.columns if c.startswith("fp")), key=lambda c: -int(c[2:]))
        return frame[[c for c in ("step", "insn", "prev", "event", "frame") if c in frame.columns] + regs + slots]
