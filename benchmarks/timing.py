"""The one timing rule the benchmarks share: the best of a few runs."""

from __future__ import annotations

import time


def best(fn, repeat: int = 3, clock=time.perf_counter) -> float:
    """Seconds of the fastest of ``repeat`` calls of ``fn`` (wall time, or ``clock``:
    ``time.process_time`` counts only this process's CPU, steadier on a shared machine)."""
    fastest = float("inf")
    for _ in range(repeat):
        start = clock()
        fn()
        fastest = min(fastest, clock() - start)
    return fastest
