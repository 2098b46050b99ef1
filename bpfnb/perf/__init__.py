"""Perf rings: the kernel's layout, one reader for real and simulated rings."""

from .ring import Records, SimRing, read_ring

__all__ = ["PerfBuffer", "Records", "SimRing", "read_ring"]


def __getattr__(name: str):
    if name == "PerfBuffer":  # the live side needs the kernel bridge
        from .live import PerfBuffer

        return PerfBuffer
    raise AttributeError(name)
