"""Running a JIT image natively: mappings, the fault handler, the ctypes call.

The VM's memory (one arena whose addresses are ``BASE + offset``) is mirrored
at exactly ``BASE`` in this process, so every address the program sees (ctx,
packet, maps, synthetic kernel objects, its stack) is a real address and an
"unmapped" kernel pointer really faults. The arena is copied in before a run
and back after it.
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import threading

import numpy as np

from ...errors import JitError
from ...vm.memory import BASE, READ, WRITE
from . import runtime
from .encode import GREG

PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0, 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MAP_NORESERVE, MAP_FIXED_NOREPLACE = 0x4000, 0x100000
SA_SIGINFO, SA_ONSTACK = 4, 0x08000000
SS_DISABLE = 2
ALTSTACK_SIZE = 64 * 1024  # the handler's own stack: a fault from a program that ran out of stack still lands

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


class _Sigaction(ctypes.Structure):
    """glibc's ``struct sigaction`` on x86-64."""

    _fields_ = [("handler", ctypes.c_void_p), ("mask", ctypes.c_uint64 * 16), ("flags", ctypes.c_int),
                ("restorer", ctypes.c_void_p)]


_libc.sigaction.argtypes = [ctypes.c_int, ctypes.POINTER(_Sigaction), ctypes.POINTER(_Sigaction)]

ENTRY = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64)


_libc.syscall.restype = ctypes.c_long
SYS_RT_SIGACTION = 13


def _kernel_action(handler: int) -> bytes:
    """The kernel-level ``struct sigaction`` (handler, flags, restorer, mask) that installs
    ``handler`` with SA_SIGINFO as libc would, restorer included: installed once through
    libc, read back with ``rt_sigaction``, the previous action put back."""
    ours, old = _Sigaction(handler=handler, flags=SA_SIGINFO | SA_ONSTACK), _Sigaction()
    kernel = ctypes.create_string_buffer(runtime.KSIGACTION)
    if _libc.sigaction(signal.SIGSEGV, ctypes.byref(ours), ctypes.byref(old)):
        raise JitError(f"sigaction failed: {mmap_error(ctypes.get_errno())}")
    try:
        if _libc.syscall(ctypes.c_long(SYS_RT_SIGACTION), ctypes.c_long(signal.SIGSEGV), None, kernel,
                         ctypes.c_long(8)):
            raise JitError(f"rt_sigaction failed: {mmap_error(ctypes.get_errno())}")
    finally:
        _libc.sigaction(signal.SIGSEGV, ctypes.byref(old), None)
    return kernel.raw


class _StackT(ctypes.Structure):
    _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]


_libc.sigaltstack.argtypes = [ctypes.POINTER(_StackT), ctypes.POINTER(_StackT)]
_altstacks = threading.local()


def _ensure_altstack() -> None:
    """An alternate signal stack for this thread (kept if it has one), so the fault handler
    runs even when the program's fault is its stack."""
    if getattr(_altstacks, "ready", False):
        return
    current = _StackT()
    _libc.sigaltstack(None, ctypes.byref(current))
    if current.flags & SS_DISABLE:
        memory = ctypes.create_string_buffer(ALTSTACK_SIZE)
        stack = _StackT(ctypes.cast(memory, ctypes.c_void_p), 0, ALTSTACK_SIZE)
        if _libc.sigaltstack(ctypes.byref(stack), None):
            raise JitError(f"sigaltstack failed: {mmap_error(ctypes.get_errno())}")
        _altstacks.memory = memory  # lives as long as the thread
    _altstacks.ready = True


def supported() -> str | None:
    """Why native runs are impossible here, or None."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"native JIT runs need an x86-64 host (this one is {platform.machine()}); use engine='unicorn'"
    if platform.system() != "Linux":
        return "native JIT runs need Linux (signals and mmap as Linux has them); use engine='unicorn'"
    return None


def _mmap(addr: int, size: int, prot: int, flags: int) -> int:
    got = _libc.mmap(addr or None, size, prot, flags, -1, 0)
    if got in (None, ctypes.c_void_p(-1).value):
        err = ctypes.get_errno()
        raise JitError(f"mmap of {size} bytes at {addr:#x} failed: {mmap_error(err)}")
    return got


def mmap_error(err: int) -> str:
    import os

    return f"{os.strerror(err)} (errno {err})"


class ArenaWindow:
    """The VM arena's mirror at ``BASE`` (one per process, grown on demand).

    The mirror is a memfd mapped twice: at ``BASE`` with each page's protection from
    the region table (``Memory.page_perms``: guard pages and unused pages PROT_NONE,
    read-only regions PROT_READ), which is what the program touches; and once more,
    read-write, where this process copies the arena in and out and the helpers run
    (``view``), so nothing but the program ever meets a guard page. Around the
    mirror, ``RESERVE_BELOW`` and ``RESERVE_ABOVE`` bytes of address space are
    reserved PROT_NONE, so a wild offset from a region faults instead of landing in
    this process's memory."""

    RESERVE_BELOW = 64 << 20
    RESERVE_ABOVE = 16 << 30
    RESERVE_HANDLES = 1 << 20
    size = 0
    fd = -1
    alias = 0
    reserved = False
    perms: np.ndarray = np.zeros(0, dtype=np.uint8)  # the protection each mirror page has now
    applied: tuple = ()  # (memory token, version) whose page map is applied

    @classmethod
    def _reserve(cls) -> None:
        if cls.reserved:
            return
        flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE
        got = _libc.mmap(BASE, cls.RESERVE_ABOVE, PROT_NONE, flags, -1, 0)
        if got != BASE:
            if got not in (None, ctypes.c_void_p(-1).value):
                _libc.munmap(got, cls.RESERVE_ABOVE)
            raise JitError(f"the VM's address window at {BASE:#x} is taken in this process; "
                           "native JIT runs need it (use engine='unicorn')")
        below = BASE - cls.RESERVE_BELOW
        got = _libc.mmap(below, cls.RESERVE_BELOW, PROT_NONE, flags, -1, 0)
        if got not in (None, ctypes.c_void_p(-1).value) and got != below:
            _libc.munmap(got, cls.RESERVE_BELOW)  # something lives below BASE: leave it be
        from ...vm.interp import MAP_HANDLE

        # map handles are no addresses: what a program reads through one must fault
        got = _libc.mmap(MAP_HANDLE, cls.RESERVE_HANDLES, PROT_NONE, flags, -1, 0)
        if got not in (None, ctypes.c_void_p(-1).value) and got != MAP_HANDLE:
            _libc.munmap(got, cls.RESERVE_HANDLES)
        cls.reserved = True

    @classmethod
    def ensure(cls, size: int) -> np.ndarray:
        """The read-write view of a mirror of at least ``size`` bytes."""
        size = (size + runtime.PAGE - 1) // runtime.PAGE * runtime.PAGE
        if size > cls.RESERVE_ABOVE:
            raise JitError(f"the VM's memory ({size:,} bytes) exceeds the native window "
                           f"({cls.RESERVE_ABOVE:,} bytes)")
        if size > cls.size:
            cls._reserve()
            if cls.fd < 0:
                cls.fd = os.memfd_create("bpfnb-arena", os.MFD_CLOEXEC)
            if cls.alias:
                _libc.munmap(cls.alias, cls.size)
                cls.alias = 0
            os.ftruncate(cls.fd, size)
            # over our own reservation: MAP_FIXED replaces only what _reserve mapped
            got = _libc.mmap(BASE, size, PROT_NONE, MAP_SHARED | MAP_FIXED, cls.fd, 0)
            if got != BASE:
                raise JitError(f"mmap of the VM's window at {BASE:#x} failed: {mmap_error(ctypes.get_errno())}")
            cls.alias = _mmap_fd(size, cls.fd)
            cls.size = size
            cls.perms = np.zeros(size // runtime.PAGE, dtype=np.uint8)
            cls.applied = ()
        return np.ctypeslib.as_array((ctypes.c_uint8 * cls.size).from_address(cls.alias))

    @classmethod
    def protect(cls, memory) -> None:
        """Give the mirror's pages at ``BASE`` the protections of ``memory``'s regions
        (only the pages whose protection changes are touched)."""
        key = (memory.token, memory.version)
        if cls.applied == key:
            return
        want = np.zeros_like(cls.perms)
        region_perms = memory.page_perms()
        want[: len(region_perms)] = _PROT[region_perms]
        changed = np.flatnonzero(want != cls.perms)
        if changed.size:
            # runs of consecutive changed pages with the same new protection
            breaks = np.flatnonzero((np.diff(changed) != 1) | (want[changed[1:]] != want[changed[:-1]])) + 1
            for run in np.split(changed, breaks):
                first, count = int(run[0]), len(run)
                if _libc.mprotect(BASE + first * runtime.PAGE, count * runtime.PAGE, int(want[first])):
                    raise JitError(f"mprotect of the VM's window failed: {mmap_error(ctypes.get_errno())}")
            cls.perms = want
        cls.applied = key


# a region's READ/WRITE bits -> mmap protection (x86 pages cannot be write-only)
_PROT = np.zeros((READ | WRITE) + 1, dtype=np.uint8)
_PROT[READ], _PROT[WRITE], _PROT[READ | WRITE] = PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE


def _mmap_fd(size: int, fd: int) -> int:
    got = _libc.mmap(None, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
    if got in (None, ctypes.c_void_p(-1).value):
        raise JitError(f"mmap of {size} bytes of the VM's window failed: {mmap_error(ctypes.get_errno())}")
    return got


class NativeImage:
    """A JIT image mapped executable with its stubs; ``call(r1, r2, stack_top, repeat)`` runs it."""

    def __init__(self, image: bytes, extable, helper_ids, dispatcher: int):
        """``dispatcher``: the address of the compiled ``dispatch(r1..r5, helper, context)``."""
        why = supported()
        if why:
            raise JitError(why)
        stubs, self.layout = runtime.build(image, helper_ids, extable_len=len(extable))
        lay = self.layout
        self.base = _mmap(0, lay.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        ctypes.memmove(self.base, stubs, len(stubs))
        ctypes.memmove(self.base + lay.image, image, len(image))
        page = runtime.data_page(self.base, lay, len(image), extable, GREG, dispatcher,
                                 _kernel_action(self.base + lay.handler))
        ctypes.memmove(self.base + lay.data, page, len(page))
        if _libc.mprotect(self.base, lay.data, PROT_READ | PROT_EXEC):
            raise JitError(f"mprotect(RX) failed: {mmap_error(ctypes.get_errno())}")
        self._entry = ENTRY(self.base + lay.entry)
        # the data page's 8-byte slots, read and written without a ctypes call each
        words = runtime.data_size(len(extable)) // 8
        self._words = np.ctypeslib.as_array((ctypes.c_uint64 * words).from_address(self.base + lay.data))

    def _data(self, offset: int) -> int:
        return int(self._words[offset // 8])

    def _set(self, offset: int, value: int) -> None:
        self._words[offset // 8] = value

    def call(self, ctx: int, r2: int, stack_top: int, repeat: int = 1, context: int = 0,
             stack_bounds: tuple[int, int] = (0, 0), regions: bytes = b"") -> tuple[int, int, tuple[int, int, int] | None]:
        """(r0, PROBE_MEM faults recovered, (fault offset in image, address, signal) of an
        unrecoverable fault), after ``repeat`` runs (the stub installs the fault handler
        around them and puts the previous actions back itself; an unrecoverable fault
        ends them); ``context``: what helper thunks pass the dispatcher as its 7th argument;
        ``stack_bounds``: the program's stack, where any fault is the program's; ``regions``:
        the region table the region checks walk (``execution.region_table``)."""
        _ensure_altstack()
        ctypes.memmove(self.base + self.layout.data + self.layout.regions, regions, len(regions))
        self._set(runtime.REGION_COUNT, len(regions) // runtime.REGION_ENTRY)
        self._set(runtime.STACK_LOW, stack_bounds[0])
        self._set(runtime.STACK_HIGH, stack_bounds[1])
        self._set(runtime.PROBE_FAULTS, 0)
        self._set(runtime.CONTEXT, context)
        self._set(runtime.FAULTED, 0)
        r0 = self._entry(ctx, r2, stack_top, max(repeat, 1))
        fault = None
        if self._data(runtime.FAULTED):
            fault = (self._data(runtime.FAULT_RIP) - self.base - self.layout.image,
                     self._data(runtime.FAULT_ADDR), self._data(runtime.FAULT_SIGNO))
        return r0, self._data(runtime.PROBE_FAULTS), fault

    def close(self) -> None:
        if self.base:
            _libc.munmap(self.base, self.layout.size)
            self.base = 0

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
