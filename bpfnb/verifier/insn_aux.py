"""What the verifier learns from a program's instructions alone, before the walk (the
kernel's ``env->insn_aux_data`` and ``subprog_info`` as ``check_subprogs``,
``check_cfg``, ``compute_live_registers`` and ``mark_prune_point`` fill them): none
of it depends on the walk, so it is computed once per instruction tuple and kept
for the next verification of the same program (a notebook verifies a program again
with another log level or a trace; the fixed cost of these passes dominates the
verification of a small program).

Kept by the tuple's identity (a tuple cannot change), for the last
``KEPT_PROGRAMS`` programs; a list of instructions is never kept.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict

KEPT_PROGRAMS = 64


class InsnsCache:
    """Values computed from an instruction tuple, by the tuple's identity."""

    def __init__(self):
        # oldest first; an OrderedDict drops its oldest in constant time (a dict emptied from
        # the front makes ``next(iter(d))`` skip every deleted entry: 0.1 ms a put after a
        # few hundred programs)
        self._values: OrderedDict[int, tuple[tuple, object]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, insns, default=None):
        kept = self._values.get(id(insns))
        return kept[1] if kept is not None and kept[0] is insns else default

    def put(self, insns, value) -> None:
        if type(insns) is not tuple:
            return
        with self._lock:
            self._values.pop(id(insns), None)
            while len(self._values) >= KEPT_PROGRAMS:
                self._values.popitem(last=False)
            # the tuple is kept with its value: its id cannot name another tuple meanwhile
            self._values[id(insns)] = (insns, value)


def per_insns(compute):
    """``compute(insns)``, kept per instruction tuple (its value must not be changed by
    the caller)."""
    cache = InsnsCache()
    missing = object()

    @functools.wraps(compute)
    def cached(insns):
        value = cache.get(insns, missing)
        if value is missing:
            value = compute(insns)
            cache.put(insns, value)
        return value

    cached.cache = cache
    return cached


__all__ = ["KEPT_PROGRAMS", "InsnsCache", "per_insns"]
