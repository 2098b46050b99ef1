"""The machine code around a JIT image when it runs in a user process.

The kernel calls a BPF image from its own stack, reaches helpers by direct
``call`` and recovers from a fault in a PROBE_MEM load through its exception
table (``ex_handler_bpf``: zero the destination register, resume after the
load). In a process, the same needs a few stubs, laid out in front of the
image in one mapping so every ``call rel32`` reaches:

- ``entry(r1, r2, stack_top, runs)``: saves the host's callee-saved registers and
  stack pointer, switches to a stack inside the VM's memory (so stack pointers
  handed to helpers are VM addresses), calls the program ``runs`` times, switches back;
- one thunk per helper id: back on the host stack (16-byte aligned), calls the
  dispatcher with the five BPF arguments, the helper id as a sixth and the run's
  context (the data page's ``CONTEXT`` word) as a seventh, on the stack; when the
  context's status word says the helper failed, the run ends there (``fault_exit``),
  as the interpreter's does;
- around each run, ``entry`` installs the handler for SIGSEGV/SIGBUS/SIGFPE/SIGILL with
  ``rt_sigaction`` itself (the kernel-level action prepared once from libc's) and puts
  the previous actions back afterwards, so a call costs a few system calls;
- the handler: looks the faulting RIP up in the exception table;
  found: zero the register in the saved context and set RIP to the fixup (the
  kernel's mechanism); inside the image, or anywhere while the stack pointer is
  on the program's stack (a jump to a corrupted return address), but not in the
  table: record the fault and resume at ``fault_exit``, which unwinds to the
  host and returns; anything else (a helper, this process): hand the signal to
  the previous handler (or the default action);
- the region checks (images of unverified programs only): ``call check_N_r|w`` with
  the address in r11 before each load and store; the stub walks the run's region table
  (the data page's copy of ``Memory.tables``, the interpreter's) and, when no region
  holds the N bytes with the permission, records a fault at the caller's instruction
  and leaves through ``fault_exit``: exactly the interpreter's check, where guard pages
  work per page;
- data (read-write, its own pages): the saved host stack pointer, the dispatcher
  address, the fault record, counters, the exception table and the region table.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .encode import s32

PAGE = 4096
# data page layout
HOST_RSP, DISPATCH, FAULTED, FAULT_RIP, FAULT_ADDR, PROBE_FAULTS, FAULT_SIGNO = 0, 8, 16, 24, 32, 40, 48
IMAGE_START, IMAGE_END, EXTABLE_COUNT, CONTEXT = 64, 72, 80, 88
ZERO_SIGACTION = 96  # 32 zero bytes: a kernel sigaction with SIG_DFL
ARG_R1, ARG_R2, ARG_STACK, RUNS_LEFT = 144, 152, 160, 168  # entry()'s arguments, kept for each run
STACK_LOW, STACK_HIGH = 128, 136  # the program's stack (in the VM's memory): a fault with rsp there is its own
REGION_COUNT = 176  # entries of the region table (after the exception table): (base, size, perm), 8 bytes each
REGION_ENTRY = 24
MAX_REGIONS = 1024  # the region table's capacity: a checked run with more regions is refused
REGION_CHECK = 0  # FAULT_SIGNO of a fault found by a region check (no signal was taken)
CHECK_SIZES = (1, 2, 4, 8)
CHECK_READ, CHECK_WRITE = 1, 2  # the region permission bits a load / a store needs (vm.memory's READ, WRITE)
OLD_HANDLERS = 256  # the previous handler of each signal number (8 bytes each, 32 signals)
OUR_ACTION = 512  # the kernel's struct sigaction for our handler (handler, flags, restorer, mask)
SAVED_ACTIONS = 544  # the actions ours replaced during a run, one per entry of SIGNALS
KSIGACTION = 32
SIGNALS = (11, 7, 8, 4)  # SIGSEGV, SIGBUS, SIGFPE, SIGILL: what a run takes over
EXTABLE = 1024  # entries of (fault rip, fixup rip, gregs index), 8 bytes each
EXTABLE_ENTRY = 24
UC_GREGS, REG_RSP, REG_RIP = 40, 15, 16
SYS_RT_SIGACTION = 13


@dataclass(frozen=True)
class StubLayout:
    """Offsets inside the mapping (stubs first, then the image, then the data page)."""

    entry: int
    returns_to: int  # where the program's ``ret`` lands in entry(): the return address above its frame
    fault_exit: int
    handler: int
    thunks: dict
    checks: dict  # (size, CHECK_READ | CHECK_WRITE) -> the region-check stub's offset
    regions: int  # the region table's offset in the data area
    image: int
    data: int
    size: int


class _Asm:
    """A tiny assembler for the stubs: bytes plus RIP-relative references to data."""

    def __init__(self, origin: int):
        self.origin = origin
        self.code = bytearray()
        self.fixups: list[tuple[int, int]] = []  # (position of disp32, data offset)
        self.labels: dict[str, int] = {}
        self.jumps: list[tuple[int, str]] = []  # (position of rel8, label)
        self.near: list[tuple[int, str]] = []  # (position of rel32, label)

    def emit(self, data: bytes) -> None:
        self.code += data

    def rip_data(self, prefix: bytes, data_offset: int, suffix: bytes = b"") -> None:
        """An instruction whose ModRM is RIP-relative with disp32 to a data slot."""
        self.code += prefix
        self.fixups.append((len(self.code), data_offset, len(suffix)))
        self.code += b"\0\0\0\0" + suffix

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def jcc8(self, opcode: int, name: str) -> None:
        self.code += bytes([opcode, 0])
        self.jumps.append((len(self.code) - 1, name))

    def jmp32(self, name: str) -> None:
        self.code += b"\xe9\0\0\0\0"
        self.near.append((len(self.code) - 4, name))

    def jcc32(self, opcode: int, name: str) -> None:
        """A conditional near jump (``0f opcode+0x10 rel32``; ``opcode`` the short form's)."""
        self.code += bytes([0x0F, opcode + 0x10]) + b"\0\0\0\0"
        self.near.append((len(self.code) - 4, name))

    def rt_sigaction(self, signo: int, act: int | None, old: int | None) -> None:
        """``rt_sigaction(signo, data + act, data + old, 8)`` (None: NULL); clobbers
        rax, rcx, rdx, rsi, rdi, r10, r11."""
        self.emit(b"\xbf" + s32(signo))  # mov edi, signo
        if act is None:
            self.emit(b"\x31\xf6")  # xor esi, esi
        else:
            self.rip_data(b"\x48\x8d\x35", act)  # lea rsi, [act]
        if old is None:
            self.emit(b"\x31\xd2")  # xor edx, edx
        else:
            self.rip_data(b"\x48\x8d\x15", old)  # lea rdx, [old]
        self.emit(b"\x41\xba\x08\x00\x00\x00\xb8" + s32(SYS_RT_SIGACTION) + b"\x0f\x05")

    def finish(self, data_at: int, extra_labels: dict | None = None) -> bytes:
        for pos, label in self.jumps:
            delta = self.labels[label] - (pos + 1)
            assert -128 <= delta <= 127, label
            self.code[pos] = delta & 0xFF
        for pos, label in self.near:
            self.code[pos:pos + 4] = s32(self.labels[label] - (pos + 4))
        for pos, offset, tail in self.fixups:
            rip = self.origin + pos + 4 + tail
            self.code[pos:pos + 4] = s32(data_at + offset - rip)
        return bytes(self.code)


# xor ebp, ebp; eax; edx; ecx; ebx; r8d-r15d: every register but r1 (rdi), r2 (rsi) and the stack
ZERO_OTHERS = (b"\x31\xed\x31\xc0\x31\xd2\x31\xc9\x31\xdb\x45\x31\xc0\x45\x31\xc9\x45\x31\xd2\x45\x31\xdb"
               b"\x45\x31\xe4\x45\x31\xed\x45\x31\xf6\x45\x31\xff")
POP_HOST = b"\x41\x5f\x41\x5e\x41\x5d\x41\x5c\x5d\x5b"  # pop r15, r14, r13, r12, rbp, rbx


def regions_offset(extable_len: int) -> int:
    """Where the region table starts in the data area (after the exception table)."""
    return EXTABLE + EXTABLE_ENTRY * extable_len


def data_size(extable_len: int) -> int:
    """Bytes of the data area for an exception table of ``extable_len`` entries and a
    region table of ``MAX_REGIONS`` (whole pages)."""
    return (regions_offset(extable_len) + REGION_ENTRY * MAX_REGIONS + PAGE - 1) // PAGE * PAGE


def _region_checks(a: _Asm, regions: int) -> dict:
    """One stub per (size, permission): r11 is the address; every register but r11 and
    the flags kept. In a region: ``ret``; in none (or without the permission): the fault
    is recorded at the caller's instruction (its return address) and the run ends."""
    checks = {}
    for size in CHECK_SIZES:
        for need in (CHECK_READ, CHECK_WRITE):
            k = f"{size}{need}"
            checks[(size, need)] = len(a.code)
            a.emit(b"\x50\x51\x52\x56")  # push rax, rcx, rdx, rsi
            a.rip_data(b"\x48\x8d\x0d", regions)  # lea rcx, [regions]
            a.rip_data(b"\x48\x8b\x35", REGION_COUNT)  # mov rsi, [region count]
            a.label(f"walk{k}")
            a.emit(b"\x48\x85\xf6")  # test rsi, rsi
            a.jcc8(0x74, f"none{k}")
            a.emit(b"\x4c\x89\xd8\x48\x2b\x01")  # mov rax, r11; sub rax, [rcx]   (offset in the region)
            a.jcc8(0x72, f"next{k}")
            a.emit(b"\x48\x8b\x51\x08\x48\x29\xc2")  # mov rdx, [rcx + 8]; sub rdx, rax   (bytes left)
            a.jcc8(0x72, f"next{k}")
            a.emit(b"\x48\x83\xfa" + bytes([size]))  # cmp rdx, size
            a.jcc8(0x72, f"next{k}")
            a.emit(b"\xf6\x41\x10" + bytes([need]))  # test byte [rcx + 16], need
            a.jcc8(0x74, f"none{k}")
            a.emit(b"\x5e\x5a\x59\x58\xc3")  # pop rsi, rdx, rcx, rax; ret
            a.label(f"next{k}")
            a.emit(b"\x48\x83\xc1" + bytes([REGION_ENTRY]))  # add rcx, 24
            a.emit(b"\x48\xff\xce")  # dec rsi
            a.jcc8(0xEB, f"walk{k}")
            a.label(f"none{k}")
            a.jmp32("region_fault")
    a.label("region_fault")
    a.emit(b"\x48\x8b\x44\x24\x20")  # mov rax, [rsp + 32]   (the return address: the instruction)
    a.rip_data(b"\x48\x89\x05", FAULT_RIP)  # mov [fault_rip], rax
    a.rip_data(b"\x4c\x89\x1d", FAULT_ADDR)  # mov [fault_addr], r11
    a.rip_data(b"\x48\xc7\x05", FAULT_SIGNO, s32(REGION_CHECK))
    a.rip_data(b"\x48\xc7\x05", FAULTED, s32(1))
    a.jmp32("fault_exit")
    return checks


def build(image: bytes, helper_ids, main_offset: int = 0, extable_len: int = 0) -> tuple[bytes, StubLayout]:
    """The stub area for ``image`` (helpers ``helper_ids``); returns (stubs, layout).

    The mapping is ``stubs | image | data page``: stubs are built knowing where
    the image and the data will be."""
    # the context's status word (imported here: dispatch compiles on import)
    from .dispatch import STATUS as CONTEXT_STATUS

    helper_ids = sorted(set(helper_ids))
    thunk_size = 80
    check_size = 72  # one region-check stub, and the shared fault path once
    stub_size = 640 + (len(CHECK_SIZES) * 2 + 1) * check_size + len(helper_ids) * thunk_size + 128
    stub_size = (stub_size + 15) & ~15
    image_at = stub_size
    data_at = (image_at + len(image) + PAGE - 1) // PAGE * PAGE
    a = _Asm(0)
    # entry(r1, r2, stack_top)
    a.label("entry")
    a.emit(b"\x53\x55\x41\x54\x41\x55\x41\x56\x41\x57")  # push rbx, rbp, r12–r15
    a.rip_data(b"\x48\x89\x25", HOST_RSP)  # mov [host_rsp], rsp
    # r1, r2, the stack top and the run count wait in the data page: no register carries a
    # host value into the program (an unverified one reading r6 must not get a host pointer)
    a.rip_data(b"\x48\x89\x3d", ARG_R1)  # mov [arg_r1], rdi
    a.rip_data(b"\x48\x89\x35", ARG_R2)  # mov [arg_r2], rsi
    a.rip_data(b"\x48\x89\x15", ARG_STACK)  # mov [arg_stack], rdx
    a.rip_data(b"\x48\x89\x0d", RUNS_LEFT)  # mov [runs_left], rcx
    for k, signo in enumerate(SIGNALS):  # our handler in, the previous actions kept
        a.rt_sigaction(signo, OUR_ACTION, SAVED_ACTIONS + KSIGACTION * k)
        a.rip_data(b"\x48\x8b\x05", SAVED_ACTIONS + KSIGACTION * k)  # mov rax, [saved handler]
        a.rip_data(b"\x48\x89\x05", OLD_HANDLERS + 8 * signo)  # mov [old handlers + 8 * signo], rax
    a.label("again")  # the program, r15 times (its epilogue gives back r12-r15)
    a.rip_data(b"\x48\xc7\x05", PROBE_FAULTS, s32(0))  # mov qword [probe_faults], 0   (the last run's, as Vm)
    a.rip_data(b"\x48\x8b\x3d", ARG_R1)  # mov rdi, [arg_r1]
    a.rip_data(b"\x48\x8b\x35", ARG_R2)  # mov rsi, [arg_r2]
    a.rip_data(b"\x48\x8b\x25", ARG_STACK)  # mov rsp, [arg_stack]
    a.emit(ZERO_OTHERS)
    call_at = len(a.code)
    a.emit(b"\xe8" + s32(image_at + main_offset - (call_at + 5)))
    a.rip_data(b"\x48\x8b\x25", HOST_RSP)  # mov rsp, [host_rsp]
    a.rip_data(b"\x48\xff\x0d", RUNS_LEFT)  # dec qword [runs_left]
    a.jcc8(0x75, "again")
    a.label("restore")
    a.emit(b"\x49\x89\xc4")  # mov r12, rax   (r0)
    for k, signo in enumerate(SIGNALS):
        a.rt_sigaction(signo, SAVED_ACTIONS + KSIGACTION * k, None)
    a.emit(b"\x4c\x89\xe0")  # mov rax, r12
    a.emit(POP_HOST + b"\xc3")
    # fault_exit: the handler sends a fault it cannot fix here
    a.label("fault_exit")
    a.rip_data(b"\x48\x8b\x25", HOST_RSP)
    a.emit(b"\x31\xc0")  # xor eax, eax
    a.jmp32("restore")
    # the signal handler (rdi = signo, rsi = siginfo, rdx = ucontext)
    a.label("handler")
    a.emit(b"\x48\x8b\x82" + s32(UC_GREGS + 8 * REG_RIP))  # mov rax, [rdx + rip]
    a.rip_data(b"\x48\x8d\x0d", EXTABLE)  # lea rcx, [extable]
    a.rip_data(b"\x4c\x8b\x05", EXTABLE_COUNT)  # mov r8, [count]
    a.label("loop")
    a.emit(b"\x4d\x85\xc0")  # test r8, r8
    a.jcc8(0x74, "notfound")
    a.emit(b"\x48\x3b\x01")  # cmp rax, [rcx]
    a.jcc8(0x74, "found")
    a.emit(b"\x48\x83\xc1" + bytes([EXTABLE_ENTRY]))  # add rcx, 24
    a.emit(b"\x49\xff\xc8")  # dec r8
    a.jcc8(0xEB, "loop")
    a.label("found")
    a.emit(b"\x4c\x8b\x49\x10")  # mov r9, [rcx + 16]   (gregs index)
    a.emit(b"\x4a\xc7\x44\xca" + bytes([UC_GREGS]) + b"\0\0\0\0")  # mov qword [rdx + 40 + r9*8], 0
    a.emit(b"\x4c\x8b\x49\x08")  # mov r9, [rcx + 8]   (fixup)
    a.emit(b"\x4c\x89\x8a" + s32(UC_GREGS + 8 * REG_RIP))  # mov [rdx + rip], r9
    a.rip_data(b"\xf0\x48\xff\x05", PROBE_FAULTS)  # lock inc qword [probe_faults]
    a.emit(b"\xc3")
    a.label("notfound")
    a.rip_data(b"\x48\x3b\x05", IMAGE_START)  # cmp rax, [image_start]
    a.jcc8(0x72, "onstack")
    a.rip_data(b"\x48\x3b\x05", IMAGE_END)  # cmp rax, [image_end]
    a.jcc8(0x72, "record")
    a.label("onstack")  # outside the image: the program's all the same if it runs on its stack
    a.emit(b"\x4c\x8b\x8a" + s32(UC_GREGS + 8 * REG_RSP))  # mov r9, [rdx + rsp]
    a.rip_data(b"\x4c\x3b\x0d", STACK_LOW)  # cmp r9, [stack_low]
    a.jcc8(0x72, "foreign")
    a.rip_data(b"\x4c\x3b\x0d", STACK_HIGH)  # cmp r9, [stack_high]
    a.jcc8(0x73, "foreign")
    a.label("record")
    a.rip_data(b"\x48\x89\x05", FAULT_RIP)  # mov [fault_rip], rax
    a.emit(b"\x4c\x8b\x4e\x10")  # mov r9, [rsi + 16]   (si_addr)
    a.rip_data(b"\x4c\x89\x0d", FAULT_ADDR)
    a.rip_data(b"\x48\x89\x3d", FAULT_SIGNO)  # mov [fault_signo], rdi
    a.rip_data(b"\x48\xc7\x05", FAULTED, s32(1))  # mov qword [faulted], 1
    here = len(a.code)
    a.emit(b"\x4c\x8d\x0d" + s32(a.labels["fault_exit"] - (here + 7)))  # lea r9, [fault_exit]
    a.emit(b"\x4c\x89\x8a" + s32(UC_GREGS + 8 * REG_RIP))
    a.emit(b"\xc3")
    a.label("foreign")
    a.rip_data(b"\x4c\x8d\x0d", OLD_HANDLERS)  # lea r9, [old handlers]
    a.emit(b"\x4d\x8b\x0c\xf9")  # mov r9, [r9 + rdi*8]
    a.emit(b"\x49\x83\xf9\x01")  # cmp r9, 1   (SIG_DFL / SIG_IGN)
    a.jcc8(0x76, "default")
    a.emit(b"\x41\xff\xe1")  # jmp r9
    a.label("default")
    a.rip_data(b"\x48\x8d\x35", ZERO_SIGACTION)  # lea rsi, [zero sigaction]
    a.emit(b"\x31\xd2\x41\xba\x08\x00\x00\x00\xb8" + s32(SYS_RT_SIGACTION) + b"\x0f\x05\xc3")
    regions = regions_offset(extable_len)
    checks = _region_checks(a, regions)
    # helper thunks
    thunks = {}
    for helper in helper_ids:
        while len(a.code) % 16:
            a.emit(b"\xcc")
        thunks[helper] = len(a.code)
        a.emit(b"\x55\x48\x89\xe5")  # push rbp; mov rbp, rsp
        a.rip_data(b"\x48\x8b\x25", HOST_RSP)  # mov rsp, [host_rsp]
        a.emit(b"\x48\x83\xe4\xf0")  # and rsp, -16
        a.emit(b"\x48\x83\xec\x08")  # sub rsp, 8   (the call stays 16-byte aligned)
        a.rip_data(b"\xff\x35", CONTEXT)  # push qword [context]   (the 7th argument)
        a.emit(b"\x41\xb9" + s32(helper))  # mov r9d, id
        a.rip_data(b"\xff\x15", DISPATCH)  # call [dispatch]
        a.rip_data(b"\x48\x8b\x0d", CONTEXT)  # mov rcx, [context]
        a.emit(b"\x48\x83\xb9" + s32(8 * CONTEXT_STATUS) + b"\x00")  # cmp qword [rcx + status], 0
        a.jcc32(0x75, "fault_exit")  # jne: the helper failed, the run is over
        a.emit(b"\x48\x89\xec\x5d\xc3")  # mov rsp, rbp; pop rbp; ret
    if len(a.code) > stub_size:
        raise AssertionError("stub area overflow")
    a.code += b"\xcc" * (stub_size - len(a.code))
    stubs = a.finish(data_at)
    layout = StubLayout(entry=a.labels["entry"], fault_exit=a.labels["fault_exit"], handler=a.labels["handler"],
                        returns_to=call_at + 5, checks=checks, regions=regions,
                        thunks=thunks, image=image_at, data=data_at, size=data_at + data_size(extable_len))
    return stubs, layout


def data_page(base: int, layout: StubLayout, image_len: int, extable, gregs: dict, dispatcher: int,
              our_action: bytes = bytes(KSIGACTION)) -> bytes:
    """The initial data page for a mapping at ``base``; ``our_action``: the kernel-level
    sigaction that installs the handler (native runs)."""
    page = bytearray(data_size(len(extable)))
    page[OUR_ACTION:OUR_ACTION + KSIGACTION] = our_action
    struct.pack_into("<Q", page, DISPATCH, dispatcher)
    struct.pack_into("<Q", page, IMAGE_START, base + layout.image)
    struct.pack_into("<Q", page, IMAGE_END, base + layout.image + image_len)
    struct.pack_into("<Q", page, EXTABLE_COUNT, len(extable))
    for k, e in enumerate(extable):
        struct.pack_into("<QQQ", page, EXTABLE + EXTABLE_ENTRY * k, base + layout.image + e.code_offset,
                         base + layout.image + e.fixup_offset, gregs[e.dst_reg])
    return bytes(page)
