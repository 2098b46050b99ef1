"""The kernel's perf rings: ``perf_event_open`` per CPU for a perf event array."""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
import platform
import select

from ..errors import KernelError
from ..kernel.maps import KernelMap, possible_cpus
from ..kernel.syscall import errno_name
from .layout import (
    PERF_COUNT_SW_BPF_OUTPUT,
    PERF_EVENT_IOC_DISABLE,
    PERF_EVENT_IOC_ENABLE,
    PERF_FLAG_FD_CLOEXEC,
    PERF_SAMPLE_RAW,
    PERF_TYPE_SOFTWARE,
)
from .ring import Records, read_ring

SYS_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241}.get(platform.machine())
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class PerfEventAttr(ctypes.Structure):
    """``struct perf_event_attr`` (PERF_ATTR_SIZE_VER8, 136 bytes); ``flags`` holds the bitfield word."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),  # disabled:1, inherit:1, ... (bit 0 = disabled)
        ("wakeup_events", ctypes.c_uint32),
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
        ("config2", ctypes.c_uint64),
        ("branch_sample_type", ctypes.c_uint64),
        ("sample_regs_user", ctypes.c_uint64),
        ("sample_stack_user", ctypes.c_uint32),
        ("clockid", ctypes.c_int32),
        ("sample_regs_intr", ctypes.c_uint64),
        ("aux_watermark", ctypes.c_uint32),
        ("sample_max_stack", ctypes.c_uint16),
        ("_reserved_2", ctypes.c_uint16),
        ("aux_sample_size", ctypes.c_uint32),
        ("_reserved_3", ctypes.c_uint32),
        ("sig_data", ctypes.c_uint64),
        ("config3", ctypes.c_uint64),
    ]


def perf_event_open(cpu: int) -> int:
    """A BPF-output software event on ``cpu``, every sample a wake-up."""
    if SYS_PERF_EVENT_OPEN is None:
        raise KernelError(f"perf_event_open: unsupported machine {platform.machine()}")
    attr = PerfEventAttr(type=PERF_TYPE_SOFTWARE, size=ctypes.sizeof(PerfEventAttr),
                         config=PERF_COUNT_SW_BPF_OUTPUT, sample_period=1, sample_type=PERF_SAMPLE_RAW,
                         wakeup_events=1)
    fd = _libc.syscall(SYS_PERF_EVENT_OPEN, ctypes.byref(attr), -1, cpu, -1, PERF_FLAG_FD_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise KernelError(f"perf_event_open(cpu {cpu}) failed ({errno_name(err)}: {os.strerror(err)})", err)
    return fd


class PerfBuffer:
    """One ring per CPU behind a perf event array map; ``read()`` drains them all.

    Used as a context manager; ``close()`` disables the events, unmaps the
    rings and closes the fds.
    """

    def __init__(self, events: KernelMap, *, pages: int = 64):
        if events.definition.type != "perf_event_array":
            raise KernelError(f"map {events.name} is a {events.definition.type}, not a perf_event_array")
        if pages <= 0 or pages & (pages - 1):
            raise KernelError(f"perf buffer: {pages} pages is not a power of two")
        self.events = events
        self.rings: list[tuple[int, int, mmap.mmap]] = []  # (cpu, fd, ring)
        size = mmap.PAGESIZE * (1 + pages)
        try:
            for cpu in range(possible_cpus()):
                if not os.path.exists(f"/sys/devices/system/cpu/cpu{cpu}/online") and cpu > 0 \
                        and not os.path.exists(f"/sys/devices/system/cpu/cpu{cpu}"):
                    continue
                fd = perf_event_open(cpu)
                try:
                    ring = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
                except OSError as exc:
                    os.close(fd)
                    raise KernelError(f"mmap of the perf ring of cpu {cpu} failed: {exc.strerror}",
                                      exc.errno) from None
                self.rings.append((cpu, fd, ring))
                events.update(cpu.to_bytes(4, "little"), fd.to_bytes(4, "little"))
                fcntl.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)
        except BaseException:
            self.close()
            raise
        self.lost = 0

    def poll(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a ring to have data."""
        poller = select.poll()
        for _, fd, _ in self.rings:
            poller.register(fd, select.POLLIN)
        return bool(poller.poll(int(timeout * 1000)))

    def read(self) -> list[tuple[int, bytes]]:
        """Every sample waiting in every ring, as ``(cpu, raw bytes)``; lost counts add to ``lost``."""
        out: list[tuple[int, bytes]] = []
        for cpu, _, ring in self.rings:
            records: Records = read_ring(ring)
            out.extend((cpu, raw) for raw in records.samples)
            self.lost += records.lost
        return out

    def close(self) -> None:
        for _, fd, ring in self.rings:
            try:
                fcntl.ioctl(fd, PERF_EVENT_IOC_DISABLE, 0)
            except OSError:
                pass
            ring.close()
            os.close(fd)
        self.rings = []

    def __enter__(self) -> PerfBuffer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()
