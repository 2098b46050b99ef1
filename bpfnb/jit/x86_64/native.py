"""Running a JIT image natively: mappings, the fault handler, the ctypes call.

The VM's memory (one arena whose addresses are ``BASE + offset``) is mirrored
at exactly ``BASE`` in this process, so every address the program sees (ctx,
packet, maps, synthetic kernel objects, its stack) is a real address and an
"unmapped" kernel pointer really faults. The arena is copied in before a run
and back after it.
"""

from __future__ import annotations

import ctypes
import platform
import signal

import numpy as np

from ...errors import JitError
from ...vm.memory import BASE
from . import runtime
from .encode import GREG

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE = 0x02, 0x20, 0x100000
SA_SIGINFO = 4

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
    ours, old = _Sigaction(handler=handler, flags=SA_SIGINFO), _Sigaction()
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
    """The VM arena's mirror at ``BASE`` (one per process, grown on demand)."""

    size = 0

    @classmethod
    def ensure(cls, size: int) -> np.ndarray:
        size = (size + runtime.PAGE - 1) // runtime.PAGE * runtime.PAGE
        if size > cls.size:
            if cls.size:
                _libc.munmap(BASE, cls.size)
                cls.size = 0
            got = _mmap(BASE, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE)
            if got != BASE:
                _libc.munmap(got, size)
                raise JitError(f"the VM's address window at {BASE:#x} is taken in this process; "
                               "native JIT runs need it (use engine='unicorn')")
            cls.size = size
        return np.ctypeslib.as_array((ctypes.c_uint8 * cls.size).from_address(BASE))


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

    def call(self, ctx: int, r2: int, stack_top: int, repeat: int = 1,
             context: int = 0) -> tuple[int, int, tuple[int, int, int] | None]:
        """(r0, PROBE_MEM faults recovered, (fault offset in image, address, signal) of an
        unrecoverable fault), after ``repeat`` runs (the stub installs the fault handler
        around them and puts the previous actions back itself; an unrecoverable fault
        ends them); ``context``: what helper thunks pass the dispatcher as its 7th argument."""
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
