"""Running a JIT image under the Unicorn emulator (any host, no signals).

The same bytes as a native run: the stubs, the image and the data page are
mapped at ``CODE_BASE``; the VM's arena is mapped at ``BASE`` straight from a
page-rounded copy of it (no copying per access), so helpers called through the
dispatcher read and write what the emulated code sees. The dispatcher slot of
the data page points at a one-byte ``ret`` page: reaching it runs the helper
in Python and returns. A fault is handled as the kernel does — if the faulting
instruction is in the exception table, its register is zeroed and execution
resumes at the fixup; otherwise the run ends with a ``JitError`` naming the
BPF instruction.
"""

from __future__ import annotations

import signal
import struct
import time

import numpy as np

from ...errors import JitError
from ...vm.memory import BASE, READ, WRITE
from . import execution, runtime
from .encode import GREG, NAMES

CODE_BASE = 0x6000_0000_0000  # stubs | image | data (below 1 << 47, clear of the arena and MAP_HANDLE)
HOOK_PAGE = 0x6100_0000_0000  # one `ret`: the helper dispatcher
HOST_STACK = 0x6200_0000_0000  # the "host" stack entry() starts on
HOST_STACK_SIZE = 64 * 1024
RETURN_SENTINEL = 0x6300_0000_0000  # entry() returns here: the run is over
STATUS_PAGE = 0x6400_0000_0000  # the run's context as the helper thunks read it: its status word
TIMEOUT_S = 10.0


def _round(size: int) -> int:
    return (size + runtime.PAGE - 1) // runtime.PAGE * runtime.PAGE


def _uc_registers():
    from unicorn import x86_const

    return {reg: getattr(x86_const, f"UC_X86_REG_{name.upper()}") for reg, name in NAMES.items() if reg in GREG}


def image_base(result) -> int:
    """Where the image's code starts in the emulator's address space."""
    return CODE_BASE + runtime.build(result.image, result.helper_ids, extable_len=len(result.extable))[1].image


def run_emulated(result, ctx_addr: int, r2: int, stack_top: int):
    """Run ``result`` (a ``JitResult``) on its VM's memory under Unicorn; the VM's
    ``RunResult``. The emulator is made once per image and kept (``result._emulator``):
    one per run would leave its allocations fragmenting this process's heap
    (~14 KB of resident memory per run)."""
    if result._emulator is None:
        result._emulator = Emulator(result)
    return result._emulator.run(ctx_addr, r2, stack_top)


class _RunState:
    """What the hooks need of the current run (they hold this, not the emulator)."""

    def __init__(self):
        self.session = None
        self.fault: dict = {}


class Emulator:
    """One Unicorn instance for one image: the code, the dispatcher's page and the host
    stack are mapped once; each run maps the VM's region pages afresh (guard pages
    unmapped) and starts from ``entry`` with every register zeroed."""

    def __init__(self, result):
        try:
            from unicorn import (
                UC_ARCH_X86,
                UC_HOOK_CODE,
                UC_HOOK_INSN,
                UC_HOOK_INTR,
                UC_HOOK_MEM_FETCH_UNMAPPED,
                UC_HOOK_MEM_PROT,
                UC_HOOK_MEM_READ_UNMAPPED,
                UC_HOOK_MEM_WRITE_UNMAPPED,
                UC_MODE_64,
                UC_PROT_ALL,
                UC_PROT_READ,
                UC_PROT_WRITE,
                Uc,
            )
            from unicorn import x86_const as x86
        except ImportError as exc:  # pragma: no cover - unicorn is a dependency
            raise JitError(f"engine='unicorn' needs the unicorn package: {exc}") from None

        self.result = result
        self.x86 = x86
        self.uc_prot = {READ: UC_PROT_READ, WRITE: UC_PROT_READ | UC_PROT_WRITE,
                        READ | WRITE: UC_PROT_READ | UC_PROT_WRITE}
        uc = self.uc = Uc(UC_ARCH_X86, UC_MODE_64)
        uc.ctl_set_cpu_model(x86.UC_CPU_X86_HASWELL)  # BMI2's shlx/sarx/shrx, as a native image may use
        extable = result.extable
        stubs, lay = runtime.build(result.image, result.helper_ids, extable_len=len(extable))
        self.lay = lay
        uc.mem_map(CODE_BASE, lay.size, UC_PROT_ALL)
        uc.mem_write(CODE_BASE, stubs)
        uc.mem_write(CODE_BASE + lay.image, result.image)
        uc.mem_write(CODE_BASE + lay.data, runtime.data_page(CODE_BASE, lay, len(result.image), extable, GREG,
                                                             HOOK_PAGE))
        uc.mem_map(HOOK_PAGE, runtime.PAGE, UC_PROT_ALL)
        uc.mem_write(HOOK_PAGE, b"\xc3")
        uc.mem_map(HOST_STACK, HOST_STACK_SIZE, UC_PROT_READ | UC_PROT_WRITE)
        uc.mem_map(STATUS_PAGE, runtime.PAGE, UC_PROT_READ | UC_PROT_WRITE)
        from .dispatch import STATUS

        status_word = STATUS_PAGE + 8 * STATUS
        self.regs = _uc_registers()
        self.fixups = {CODE_BASE + lay.image + e.code_offset: e for e in extable}
        self.mapped: list[tuple[int, int]] = []
        self.window = None
        state = self.state = _RunState()
        args = [x86.UC_X86_REG_RDI, x86.UC_X86_REG_RSI, x86.UC_X86_REG_RDX, x86.UC_X86_REG_RCX, x86.UC_X86_REG_R8,
                x86.UC_X86_REG_R9]

        def dispatch(uc, address, size, _):
            values = [uc.reg_read(r) for r in args]
            uc.reg_write(x86.UC_X86_REG_RAX, state.session.dispatch(*values) & 0xFFFF_FFFF_FFFF_FFFF)
            if state.session.error:  # the thunk sees it and ends the run, as natively
                uc.mem_write(status_word, struct.pack("<Q", 1))

        def bad_access(uc, access, address, size, value, _):
            state.fault.setdefault("addr", address)
            state.fault.setdefault("signo", signal.SIGSEGV)
            return False

        def interrupt(uc, intno, _):
            state.fault.setdefault("addr", 0)
            state.fault["signo"] = {0: signal.SIGFPE, 6: signal.SIGILL}.get(intno, signal.SIGTRAP)
            uc.emu_stop()

        uc.hook_add(UC_HOOK_CODE, dispatch, begin=HOOK_PAGE, end=HOOK_PAGE)
        uc.hook_add(UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED | UC_HOOK_MEM_FETCH_UNMAPPED
                    | UC_HOOK_MEM_PROT, bad_access)
        uc.hook_add(UC_HOOK_INTR, interrupt)
        # entry() installs the native fault handler with rt_sigaction: nothing to do here
        uc.hook_add(UC_HOOK_INSN, lambda uc, _: uc.reg_write(x86.UC_X86_REG_RAX, 0), None, 1, 0,
                    x86.UC_X86_INS_SYSCALL)

    def _map_regions(self, vm) -> np.ndarray:
        """A page-rounded copy of the arena, its region pages mapped with their permissions
        (the last run's unmapped first); the copy stays alive while mapped."""
        uc = self.uc
        for addr, size in self.mapped:
            uc.mem_unmap(addr, size)
        self.mapped = []
        arena = vm.memory.arena
        window = np.zeros(_round(len(arena)), dtype=np.uint8)
        window[: len(arena)] = arena
        for first, count, perm in _runs(vm.memory.page_perms()):
            at, size = BASE + first * runtime.PAGE, count * runtime.PAGE
            uc.mem_map_ptr(at, size, self.uc_prot[perm], window.ctypes.data + first * runtime.PAGE)
            self.mapped.append((at, size))
        self.window = window
        return window

    def run(self, ctx_addr: int, r2: int, stack_top: int):
        from unicorn import UcError

        result, uc, x86, lay = self.result, self.uc, self.x86, self.lay
        vm = result.vm
        arena = vm.memory.arena
        window = self._map_regions(vm)
        session = self.state.session = execution.Session(vm, window[: len(arena)])
        fault = self.state.fault
        for reg in self.regs.values():  # no register carries over from the last run
            uc.reg_write(reg, 0)
        rsp = HOST_STACK + HOST_STACK_SIZE - 64
        uc.mem_write(rsp, struct.pack("<Q", RETURN_SENTINEL))
        uc.reg_write(x86.UC_X86_REG_RSP, rsp)
        uc.reg_write(x86.UC_X86_REG_RDI, ctx_addr)
        uc.reg_write(x86.UC_X86_REG_RSI, r2 & 0xFFFF_FFFF_FFFF_FFFF)
        uc.reg_write(x86.UC_X86_REG_RDX, stack_top)
        uc.reg_write(x86.UC_X86_REG_RCX, 1)  # one run per emulation
        regions = execution.region_table(result)
        data = CODE_BASE + lay.data
        uc.mem_write(data + lay.regions, regions)
        uc.mem_write(data + runtime.REGION_COUNT, struct.pack("<Q", len(regions) // runtime.REGION_ENTRY))
        uc.mem_write(data + runtime.FAULTED, struct.pack("<Q", 0))
        uc.mem_write(data + runtime.CONTEXT, struct.pack("<Q", STATUS_PAGE))
        uc.mem_write(STATUS_PAGE, bytes(runtime.PAGE))

        probe_faults = 0
        pc = CODE_BASE + lay.entry
        start = time.perf_counter()
        deadline = start + TIMEOUT_S
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise JitError(f"{_where(result)}: no exit after {TIMEOUT_S:.0f} s under Unicorn")
            fault.clear()
            try:
                uc.emu_start(pc, RETURN_SENTINEL, timeout=int(left * 1_000_000))
            except UcError as exc:
                rip = uc.reg_read(x86.UC_X86_REG_RIP)
                entry = self.fixups.get(rip)
                if entry is not None and fault.get("signo") == signal.SIGSEGV:
                    uc.reg_write(self.regs[entry.dst_reg], 0)  # the kernel's ex_handler_bpf
                    pc = CODE_BASE + lay.image + entry.fixup_offset
                    probe_faults += 1
                    continue
                raise JitError(_unrecoverable(result, lay, rip, fault, exc)) from None
            rip = uc.reg_read(x86.UC_X86_REG_RIP)
            if fault:
                raise JitError(_unrecoverable(result, lay, rip, fault, None))
            if rip != RETURN_SENTINEL:
                raise JitError(f"{_where(result)}: no exit after {TIMEOUT_S:.0f} s under Unicorn")
            faulted, fault_rip, fault_addr, signo = (
                struct.unpack_from("<Q", uc.mem_read(data + slot, 8))[0]
                for slot in (runtime.FAULTED, runtime.FAULT_RIP, runtime.FAULT_ADDR, runtime.FAULT_SIGNO))
            if faulted:  # a region check's fault: recorded by the stubs, as in a native run
                raise JitError(result._fault_message(fault_rip - CODE_BASE - lay.image, fault_addr, signo))
            break
        seconds = time.perf_counter() - start
        execution.check_slack(vm, window, result)
        execution.check_frame_linkage(vm, window, stack_top, CODE_BASE + lay.returns_to)
        arena[:] = window[: len(arena)]
        return execution.result(vm, session, uc.reg_read(x86.UC_X86_REG_RAX), probe_faults, seconds)


def _runs(perms: np.ndarray):
    """(first page, page count, permission) of each run of mapped pages with one permission."""
    if not len(perms):
        return []
    edges = np.flatnonzero(np.diff(perms)) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [len(perms)]))
    return [(int(a), int(b - a), int(perms[a])) for a, b in zip(starts, ends, strict=True) if perms[a]]


def _where(result) -> str:
    return result.prog.where or result.prog.name


def _unrecoverable(result, lay, rip: int, fault: dict, exc) -> str:
    offset = rip - CODE_BASE - lay.image
    if 0 <= offset < len(result.image):
        return result._fault_message(offset, fault.get("addr", 0), fault.get("signo", signal.SIGSEGV))
    return f"{_where(result)}: Unicorn stopped at {rip:#x}, outside the image ({exc or fault})"
