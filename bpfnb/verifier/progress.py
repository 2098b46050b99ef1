"""Progress of a long verification: a bar (tqdm: ipywidgets in a notebook, text in a
terminal) that appears once a walk has run for a while, and a clean stop on Ctrl-C
(the bar closed, a ``KeyboardInterrupt`` saying where the walk was)."""

from __future__ import annotations

import time

# the walk looks at the clock every this many processed instructions
CHECK_EVERY = 4096
# without an explicit choice, a bar appears once the walk has run this long
SHOW_AFTER_S = 1.0


class WalkProgress:
    """``show``: True (a bar from the start), False (never) or None (after SHOW_AFTER_S)."""

    def __init__(self, name: str, show: bool | None = None):
        self.name = name
        self.show = show
        self.started = time.perf_counter()
        self.bar = None
        self.shown = 0

    def update(self, processed: int) -> None:
        if self.bar is None:
            if self.show is False or (self.show is None and time.perf_counter() - self.started < SHOW_AFTER_S):
                return
            from tqdm.auto import tqdm

            self.bar = tqdm(desc=f"verifying {self.name}", unit=" insns", unit_scale=True, leave=False)
        self.bar.update(processed - self.shown)
        self.shown = processed

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def interrupted(name: str, insn: int | None, processed: int) -> KeyboardInterrupt:
    where = f" at insn {insn}" if insn is not None else ""
    return KeyboardInterrupt(f"verification of {name} interrupted{where} after {processed} processed instructions")
