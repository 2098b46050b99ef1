"""BPF → x86-64 translation, pass by pass until the image stops changing.

Each BPF function (the main program and every bpf-to-bpf callee) is its own
machine function with Linux's prologue (a 5-byte and a 3-byte nop where the
kernel patches trampolines and tail-call counts, ``push rbp; mov rbp, rsp``,
the stack, then the callee-saved registers the function uses) and epilogue.
``addrs[k]`` is the end offset of instruction ``k`` inside its function;
jumps are ``addrs[target] - addrs[here]`` read during the pass, exactly as
``do_jit`` does, so forward jumps use the previous pass's layout. The first
pass assumes 64 bytes per instruction; every pass can only shrink a jump
(near → short), and the loop stops when the image length is unchanged.

Where bytes go (``Target``) is separate from how they are chosen: helper
calls, other functions and the epilogue's return are resolved by the target,
so the same translation produces the kernel's image (absolute kernel
addresses) or ours (everything inside one position-independent image).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import JitError
from ...isa import opcodes as op
from ...isa.flow import function_starts, jump_offset, jump_target
from .encode import (
    AUX,
    AX,
    CALLEE_SAVED,
    NOP3,
    NOP5,
    R9,
    add_1mod,
    add_1reg,
    add_2mod,
    add_2reg,
    hexreg,
    is_ereg,
    is_ereg_8l,
    is_imm8,
    mem_suffix,
    mov_imm32,
    mov_imm64,
    mov_reg,
    nops,
    reg_number,
    rex_1,
    rex_2,
    s8,
    s16,
    s32,
    vex3,
)
from .runtime import CHECK_READ, CHECK_WRITE

MAX_PASSES = 20
TAIL_CALL = 12  # the helper id of bpf_tail_call
MAX_TAIL_CALL_CNT = 33
TAIL_CALL_OFFSET = 12  # a tail call enters past nop5, the 3-byte slot, push rbp and mov rbp, rsp
ADDR_PERCPU = -1  # off of a 64-bit register move that the verifier made per-CPU
PADDING_PASSES = MAX_PASSES - 5

ALU_RR = {op.BPF_ADD: 0x01, op.BPF_SUB: 0x29, op.BPF_AND: 0x21, op.BPF_OR: 0x09, op.BPF_XOR: 0x31}
ALU_RI = {op.BPF_ADD: 0xC0, op.BPF_SUB: 0xE8, op.BPF_AND: 0xE0, op.BPF_OR: 0xC8, op.BPF_XOR: 0xF0}
ALU_AX = {op.BPF_ADD: 0x05, op.BPF_SUB: 0x2D, op.BPF_AND: 0x25, op.BPF_OR: 0x0D, op.BPF_XOR: 0x35}
SHIFT = {op.BPF_LSH: 0xE0, op.BPF_RSH: 0xE8, op.BPF_ARSH: 0xF8}
SHIFTX_PP = {op.BPF_LSH: 1, op.BPF_ARSH: 2, op.BPF_RSH: 3}  # shlx 66, sarx F3, shrx F2
JCC = {op.BPF_JEQ: 0x74, op.BPF_JNE: 0x75, op.BPF_JSET: 0x75, op.BPF_JGT: 0x77, op.BPF_JLT: 0x72,
       op.BPF_JGE: 0x73, op.BPF_JLE: 0x76, op.BPF_JSGT: 0x7F, op.BPF_JSLT: 0x7C, op.BPF_JSGE: 0x7D,
       op.BPF_JSLE: 0x7E}
SIZE_BYTES = {op.BPF_B: 1, op.BPF_H: 2, op.BPF_W: 4, op.BPF_DW: 8}
PUSH = {6: b"\x53", 7: b"\x41\x55", 8: b"\x41\x56", 9: b"\x41\x57"}
POP = {6: b"\x5b", 7: b"\x41\x5d", 8: b"\x41\x5e", 9: b"\x41\x5f"}


@dataclass(frozen=True)
class ExtableEntry:
    """A PROBE_MEM load: the load's offset in the image, where execution resumes
    after a fault (the next instruction), and the BPF register zeroed."""

    insn: int
    code_offset: int
    fixup_offset: int
    dst_reg: int

    def __str__(self) -> str:
        return (f"insn {self.insn}: load at +{self.code_offset:#x} -> zero r{self.dst_reg}, "
                f"resume at +{self.fixup_offset:#x}")


@dataclass(frozen=True)
class ProbeGuard:
    """The address window a PROBE_MEM load may touch (``low < addr < high``): the
    load's address minus ``high``, unsigned, must exceed ``low - high``; loads
    outside read 0 without touching memory. The kernel's window is kernel space,
    from the end of user space (TASK_SIZE_MAX + a guard page) to the vsyscall page."""

    low: int
    high: int


KERNEL_GUARD = ProbeGuard(low=0x7FFFFFFFF000 + 0x1000, high=0xFFFFFFFFFF600000)


@dataclass
class Target:
    """Where the image's outside references land.

    ``function_address(k)`` and ``helper_address(id)`` are absolute addresses
    given the image's ``base``; ``return_thunk`` replaces ``ret`` with a
    ``jmp`` (the kernel's retbleed return thunk) when set."""

    base: int = 0
    helper_address: object = None  # callable(helper id, image layout) -> absolute address
    return_thunk: int | None = None
    guard: ProbeGuard = KERNEL_GUARD
    bmi2: bool = True
    function_bases: tuple[int, ...] | None = None  # absolute start of each function, if not contiguous
    map_value: object = None  # callable(kind, imm, next imm) -> 64-bit value for pseudo ld_imm64
    # kernel-only: the address of the per-CPU ``this_cpu_off`` (for the verifier's per-CPU
    # address moves) and, for a program on a private stack, the per-CPU stack pointer
    this_cpu_off: int | None = None
    private_stack: int | None = None
    # tail calls: where the prog array's size and slots and a program's code pointer are
    # (``TailCallLayout``), and the retpoline thunk the kernel jumps through (None: ``jmp rcx``)
    tail_calls: object = None
    indirect_thunk: int | None = None
    # a direct tail call's target: callable(map index, key) -> the stream's program number or None
    # (None: the slot is empty, the jump stays unpatched as in a freshly loaded kernel image)
    tail_call_target: object = None
    # ours, not the kernel's: ``xor eax, eax`` where a tail call falls through, so r0 after a
    # missed bpf_tail_call is 0 as in the interpreter (the kernel leaves whatever rax held)
    zero_r0_after_tail_call: bool = False
    # ours, for programs no verifier accepted: callable(size, need) -> the address of a stub that
    # checks [r11, r11 + size) against the run's region table (runtime's region checks), called
    # before every load and store; None: the kernel's image, guarded per page only
    region_check: object = None


@dataclass(frozen=True)
class TailCallLayout:
    """Offsets a tail call reads: the prog array's ``max_entries`` and first slot
    (``struct bpf_array``), and a program's code pointer (``struct bpf_prog.bpf_func``)."""

    max_entries: int
    ptrs: int
    bpf_func: int
    array_size: int = 0  # bytes of the array before its slots
    prog_size: int = 0


@dataclass
class Layout:
    """The image as the last pass laid it out."""

    function_starts: list[int] = field(default_factory=list)
    function_lens: list[int] = field(default_factory=list)
    insn_offsets: list[int] = field(default_factory=list)  # image offset where each BPF insn's code starts
    insn_ends: list[int] = field(default_factory=list)
    extable: list[ExtableEntry] = field(default_factory=list)
    code_len: int = 0


def _on_private_stack(insns) -> tuple:
    """The frame pointer r10 replaced by r9, which points into a per-CPU stack."""
    from dataclasses import replace

    out = []
    for insn in insns:
        if 10 in (insn.dst, insn.src) and not insn.is_ld_imm64:
            insn = replace(insn, dst=R9 if insn.dst == 10 else insn.dst, src=R9 if insn.src == 10 else insn.src)
        out.append(insn)
    return tuple(out)


def functions_of(insns) -> list[int]:
    """Start slot of every BPF function: 0, each bpf-to-bpf call target and each callback."""
    return function_starts(insns, callbacks=True)


class Compiler:
    """One translation of ``insns`` for ``target``; ``run()`` converges and returns the image."""

    def __init__(self, insns, *, probe_mem=frozenset(), stack_depths=None, target: Target | None = None,
                 where: str = "program", entries=(0,), direct_tail_calls=None):
        """``entries``: where each program of the stream starts (a program and its
        tail-call targets are translated into one image)."""
        self.target = target or Target()
        self.insns = tuple(insns) if self.target.private_stack is None else _on_private_stack(insns)
        self.probe_mem = frozenset(probe_mem)
        self.where = where
        self.starts = sorted(set(functions_of(self.insns)) | set(entries))
        self.entries = frozenset(entries)
        self.entry_list = list(entries)
        self.direct_tail_calls = dict(direct_tail_calls or {})
        self.bounds = list(zip(self.starts, self.starts[1:] + [len(self.insns)], strict=False))
        depths = list(stack_depths) if stack_depths is not None else [512] * len(self.starts)
        if len(depths) < len(self.starts):
            depths += [512] * (len(self.starts) - len(depths))
        self.stack_depths = [(d + 7) // 8 * 8 for d in depths]
        self.callee_saved = [self._callee_saved(lo, hi) for lo, hi in self.bounds]
        self.first_exit = [next((i for i in range(lo, hi) if self.insns[i].code == op.BPF_JMP | op.BPF_EXIT), -1)
                           for lo, hi in self.bounds]
        self.tail_call_reachable = self._tail_call_reachable()
        self.passes = 0
        self.pass_lens: list[int] = []
        n = len(self.insns)
        # addrs[k] for each function: index 0 = end of prologue, k+1 = end of local insn k
        self.addrs = [[64 * (j + 1) for j in range(hi - lo + 1)] for lo, hi in self.bounds]
        self.cleanup = [64 * (hi - lo + 1) for lo, hi in self.bounds]
        self.function_starts = [0] * len(self.starts)
        self.prev_len: list[int] = [0] * n
        self.padding = False

    # -- the passes -------------------------------------------------------------------------------
    def run(self) -> tuple[bytes, Layout]:
        old = None
        image, layout = b"", Layout()
        for self.passes in range(1, MAX_PASSES + 6):
            self.padding = self.passes > PADDING_PASSES
            image, layout = self._pass()
            self.pass_lens.append(len(image))
            if len(image) == old:
                return image, layout
            old = len(image)
        raise JitError(f"{self.where}: the image did not converge in {self.passes} passes")

    def _pass(self) -> tuple[bytes, Layout]:
        out = bytearray()
        layout = Layout()
        offsets = [0] * len(self.insns)
        ends = [0] * len(self.insns)
        for f, (lo, hi) in enumerate(self.bounds):
            start = len(out)
            self.function_starts[f] = start
            layout.function_starts.append(start)
            body = bytearray(self._prologue(f))
            addrs = self.addrs[f]
            addrs[0] = len(body)
            for i in range(lo, hi):
                if i > lo and self.insns[i - 1].is_ld_imm64:
                    offsets[i] = ends[i] = start + len(body)
                    addrs[i - lo + 1] = len(body)
                    continue
                here = len(body)
                code, extable = self._insn(f, i, here)
                if self.padding and len(code) < self.prev_len[i]:
                    code += nops(self.prev_len[i] - len(code))
                self.prev_len[i] = len(code)
                body += code
                offsets[i] = start + here
                ends[i] = start + len(body)
                addrs[i - lo + 1] = len(body)
                for rel, length, dst in extable:
                    at = start + here + rel
                    layout.extable.append(ExtableEntry(i, at, at + length, dst))
            if self.first_exit[f] < 0:  # no exit at all (only unverified code): still a way out
                self.cleanup[f] = len(body)
                body += self._epilogue(f, len(body))
            out += body
            layout.function_lens.append(len(body))
        layout.insn_offsets, layout.insn_ends, layout.code_len = offsets, ends, len(out)
        return bytes(out), layout

    # -- prologue and epilogue ----------------------------------------------------------------------
    def _callee_saved(self, lo: int, hi: int) -> tuple[int, ...]:
        used = set()
        for insn in self.insns[lo:hi]:
            used.add(insn.dst)
            if not insn.is_ld_imm64 and insn.code != op.BPF_JMP | op.BPF_CALL:  # there src is a pseudo kind
                used.add(insn.src)
        return tuple(r for r in CALLEE_SAVED if r in used)

    def _tail_call_reachable(self) -> list[bool]:
        """Per function: does it tail call, or call (through other functions) one that does?
        Such functions keep the tail-call counter's pointer on their stack."""
        calls = [set() for _ in self.starts]
        reach = [False] * len(self.starts)
        for f, (lo, hi) in enumerate(self.bounds):
            for i in range(lo, hi):
                insn = self.insns[i]
                if insn.code == op.BPF_JMP | op.BPF_CALL:
                    if insn.is_pseudo_call and jump_target(insn, i) in self.starts:
                        calls[f].add(self.starts.index(jump_target(insn, i)))
                    elif insn.src == 0 and insn.imm == TAIL_CALL:
                        reach[f] = True
        changed = True
        while changed:
            changed = False
            for f in range(len(self.starts)):
                if not reach[f] and any(reach[g] for g in calls[f]):
                    reach[f] = changed = True
        return reach

    def _frame_depth(self, f: int) -> int:
        """The stack below rbp that the function allocates (none on a private stack)."""
        return 0 if self.target.private_stack is not None else self.stack_depths[f]

    def _tcc_ptr(self, f: int) -> bytes:
        """``mov rax, [rbp - (depth + 16)]``: the tail-call counter's pointer."""
        return b"\x48\x8b\x85" + s32(-(self._frame_depth(f) + 16))

    def _prologue(self, f: int) -> bytes:
        reachable = self.tail_call_reachable[f]
        entry = self.starts[f] in self.entries
        # an entry that tail calls starts its counter at 0; the same 3 bytes are a nop elsewhere,
        # and a tail call lands right after ``mov rbp, rsp`` (TAIL_CALL_OFFSET)
        code = NOP5 + (b"\x48\x31\xc0" if reachable and entry else NOP3) + b"\x55" + b"\x48\x89\xe5"
        private = self.target.private_stack
        if self.stack_depths[f] and private is None:
            code += b"\x48\x81\xec" + s32(self.stack_depths[f])
        if reachable and entry:
            # rax is the count (first entry, or a tail call from an entry) or, above the limit, a
            # pointer to it (a tail call made inside a function); either way two slots: the count
            # and a pointer to wherever the count lives
            code += b"\x48\x83\xf8" + bytes([MAX_TAIL_CALL_CNT]) + b"\x77\x06\x50\x48\x89\xe0\xeb\x01\x50\x50"
        elif reachable:
            code += b"\x50\x50"  # rax is the caller's pointer to the count
        for r in self.callee_saved[f]:
            code += PUSH[r]
        if private is not None:  # r9 = this CPU's copy of the stack's top
            code += mov_imm64(R9, private + self.stack_depths[f]) + self._this_cpu_add(R9)
        return code

    def _this_cpu_add(self, reg: int) -> bytes:
        """``add reg, gs:[this_cpu_off]``: a per-CPU offset made this CPU's address."""
        if self.target.this_cpu_off is None:
            raise JitError(f"{self.where}: per-CPU addresses need the kernel's this_cpu_off")
        return (b"\x65" + bytes([add_2mod(0x48, 0, reg), 0x03, 0x04 | (hexreg(reg) << 3), 0x25])
                + s32(self.target.this_cpu_off - (1 << 64)))

    def _epilogue(self, f: int, at: int) -> bytes:
        code = b"".join(POP[r] for r in reversed(self.callee_saved[f])) + b"\xc9"
        thunk = self.target.return_thunk
        if thunk is None:
            return code + b"\xc3"
        here = self._function_base(f) + at + len(code) + 5
        return code + b"\xe9" + s32(thunk - here)

    def _function_base(self, f: int) -> int:
        if self.target.function_bases is not None:
            return self.target.function_bases[f]
        return self.target.base + self.function_starts[f]

    # -- one instruction ------------------------------------------------------------------------------
    def _insn(self, f: int, i: int, here: int) -> tuple[bytes, list]:
        insn = self.insns[i]
        check = self._region_check(f, i, insn, here)
        if check:
            code, extable = self._access(f, i, insn, here + len(check))
            return check + code, [(rel + len(check), length, dst) for rel, length, dst in extable]
        return self._access(f, i, insn, here)

    def _region_check(self, f: int, i: int, insn, here: int) -> bytes:
        """``lea r11, [base + off]; call check`` before a load or store of an image with region
        checks (PROBE_MEM loads excepted: the exception table answers for those)."""
        cls = insn.code & 0x07
        if self.target.region_check is None or cls not in (op.BPF_LDX, op.BPF_ST, op.BPF_STX):
            return b""
        mode = insn.code & 0xE0
        if cls == op.BPF_LDX and (mode in (op.BPF_PROBE_MEM, op.BPF_PROBE_MEMSX) or i in self.probe_mem):
            return b""
        base = insn.src if cls == op.BPF_LDX else insn.dst
        size = SIZE_BYTES[insn.code & 0x18]
        need = CHECK_READ if cls == op.BPF_LDX else CHECK_WRITE
        lea = bytes([add_2mod(0x48, base, AUX), 0x8D]) + mem_suffix(base, AUX, insn.off)
        after = self._function_base(f) + here + len(lea) + 5
        return lea + b"\xe8" + s32(self.target.region_check(size, need) - after)

    def _access(self, f: int, i: int, insn, here: int) -> tuple[bytes, list]:
        cls = insn.code & 0x07
        try:
            if cls in (op.BPF_ALU, op.BPF_ALU64):
                return self._alu(insn, cls == op.BPF_ALU64), []
            if cls == op.BPF_LDX:
                return self._ldx(i, insn)
            if cls == op.BPF_ST:
                return self._st(insn), []
            if cls == op.BPF_STX:
                return self._stx(insn), []
            if cls == op.BPF_LD:
                return self._ld(i, insn), []
            return self._jmp(f, i, insn, here), []
        except KeyError:
            raise JitError(f"{self.where}: insn {i}: opcode {insn.code:#04x} has no x86-64 translation") from None

    def _fail(self, i: int, why: str) -> JitError:
        return JitError(f"{self.where}: insn {i} ({self.insns[i]}): {why}")

    # ALU / ALU64
    def _alu(self, insn, is64: bool) -> bytes:
        operation, x, d, s, imm = insn.code & 0xF0, insn.code & op.BPF_X, insn.dst, insn.src, insn.imm
        if operation == op.BPF_MOV:
            if not x:
                return mov_imm32(d, imm & 0xFFFFFFFF, is64)
            if insn.off in (8, 16, 32):
                return self._movsx(d, s, insn.off, is64)
            if insn.off == ADDR_PERCPU and is64:  # the verifier's inlined per-CPU lookups
                return mov_reg(d, s, True) + self._this_cpu_add(d)
            return mov_reg(d, s, is64)
        if operation in ALU_RR:
            if x:
                return rex_2(d, s, is64) + bytes([ALU_RR[operation], add_2reg(0xC0, d, s)])
            if is_imm8(imm):
                return rex_1(d, is64) + bytes([0x83, add_1reg(ALU_RI[operation], d)]) + s8(imm)
            if d == 0:
                return rex_1(d, is64) + bytes([ALU_AX[operation]]) + s32(imm)
            return rex_1(d, is64) + bytes([0x81, add_1reg(ALU_RI[operation], d)]) + s32(imm)
        if operation == op.BPF_NEG:
            return rex_1(d, is64) + bytes([0xF7, add_1reg(0xD8, d)])
        if operation == op.BPF_MUL:
            if x:
                return rex_2(s, d, is64) + bytes([0x0F, 0xAF, add_2reg(0xC0, s, d)])
            if is_imm8(imm):
                return rex_2(d, d, is64) + bytes([0x6B, add_2reg(0xC0, d, d)]) + s8(imm)
            return rex_2(d, d, is64) + bytes([0x69, add_2reg(0xC0, d, d)]) + s32(imm)
        if operation in (op.BPF_DIV, op.BPF_MOD):
            return self._div(insn, is64)
        if operation in SHIFT:
            if not x:
                if imm == 1:
                    return rex_1(d, is64) + bytes([0xD1, add_1reg(SHIFT[operation], d)])
                return rex_1(d, is64) + bytes([0xC1, add_1reg(SHIFT[operation], d)]) + s8(imm)
            return self._shift_reg(operation, d, s, is64)
        if operation == op.BPF_END:
            return self._end(insn, is64)
        raise KeyError(operation)

    @staticmethod
    def _movsx(d: int, s: int, width: int, is64: bool) -> bytes:
        if width == 32:
            return bytes([add_2mod(0x48, s, d), 0x63, add_2reg(0xC0, s, d)])
        opcode = 0xBE if width == 8 else 0xBF
        if is64:
            prefix = bytes([add_2mod(0x48, s, d)])
        elif is_ereg(d) or is_ereg(s) or (width == 8 and is_ereg_8l(s)):
            prefix = bytes([add_2mod(0x40, s, d)])
        else:
            prefix = b""
        return prefix + bytes([0x0F, opcode, add_2reg(0xC0, s, d)])

    @staticmethod
    def _div(insn, is64: bool) -> bytes:
        """rax:rdx are the dividend and results, so both are saved around the divide;
        a constant divisor goes through r11."""
        d, src = insn.dst, insn.src
        code = b""
        if d != 0:
            code += b"\x50"  # push rax
        if d != 3:
            code += b"\x52"  # push rdx
        if not insn.code & op.BPF_X:
            code += bytes([0x49, 0xC7, 0xC3]) + s32(insn.imm)  # mov r11, imm32
            src = AUX
        if src in (0, 3):
            code += mov_reg(AUX, src, is64)
            src = AUX
        if d != 0:
            code += mov_reg(0, d, is64)
        if insn.off == 0:
            code += b"\x31\xd2" + rex_1(src, is64) + bytes([0xF7, add_1reg(0xF0, src)])  # xor edx,edx; div
        else:
            code += (b"\x48\x99" if is64 else b"\x99") + rex_1(src, is64) + bytes([0xF7, add_1reg(0xF8, src)])
        if insn.code & 0xF0 == op.BPF_MOD:
            if d != 3:
                code += mov_reg(d, 3, is64)
        elif d != 0:
            code += mov_reg(d, 0, is64)
        if d != 3:
            code += b"\x5a"
        if d != 0:
            code += b"\x58"
        return code

    def _shift_reg(self, operation: int, d: int, s: int, is64: bool) -> bytes:
        if self.target.bmi2 and s != 4:
            # shlx/shrx/sarx dst, dst, src: count in VEX.vvvv, no rcx juggling
            r = is_ereg(d)
            return vex3(r, False, r, 2, is64, reg_number(s), False, SHIFTX_PP[operation]) + \
                bytes([0xF7, add_2reg(0xC0, d, d)])
        code = b""
        dst = d
        if d == 4:
            code += mov_reg(AUX, d, True)
            dst = AUX
        if s != 4:
            code += b"\x51" + mov_reg(4, s, True)  # push rcx; mov rcx, src
        code += rex_1(dst, is64) + bytes([0xD3, add_1reg(SHIFT[operation], dst)])
        if s != 4:
            code += b"\x59"  # pop rcx
        if d == 4:
            code += mov_reg(d, AUX, True)
        return code

    @staticmethod
    def _end(insn, is64: bool) -> bytes:
        d, width = insn.dst, insn.imm
        to_le = not is64 and not insn.code & op.BPF_X
        movzx16 = (b"\x45\x0f\xb7" if is_ereg(d) else b"\x0f\xb7") + bytes([add_2reg(0xC0, d, d)])
        if to_le:
            if width == 16:
                return movzx16
            if width == 32:
                return (b"\x45" if is_ereg(d) else b"") + bytes([0x89, add_2reg(0xC0, d, d)])
            if width == 64:
                return b""
        else:
            if width == 16:
                return b"\x66" + (b"\x41" if is_ereg(d) else b"") + bytes([0xC1, add_1reg(0xC8, d), 8]) + movzx16
            if width == 32:
                return (b"\x41\x0f" if is_ereg(d) else b"\x0f") + bytes([add_1reg(0xC8, d)])
            if width == 64:
                return bytes([add_1mod(0x48, d), 0x0F, add_1reg(0xC8, d)])
        raise KeyError(width)

    # loads and stores
    @staticmethod
    def _load(size: int, sx: bool, d: int, s: int, off: int) -> bytes:
        if sx:
            opcode = {op.BPF_B: b"\x0f\xbe", op.BPF_H: b"\x0f\xbf", op.BPF_W: b"\x63"}[size]
            prefix = bytes([add_2mod(0x48, s, d)])
        elif size == op.BPF_W:
            opcode = b"\x8b"
            prefix = bytes([add_2mod(0x40, s, d)]) if is_ereg(d) or is_ereg(s) else b""
        else:
            opcode = {op.BPF_B: b"\x0f\xb6", op.BPF_H: b"\x0f\xb7", op.BPF_DW: b"\x8b"}[size]
            prefix = bytes([add_2mod(0x48, s, d)])
        return prefix + opcode + mem_suffix(s, d, off)

    def _ldx(self, i: int, insn) -> tuple[bytes, list]:
        mode, size = insn.code & 0xE0, insn.code & 0x18
        sx = mode in (op.BPF_MEMSX, op.BPF_PROBE_MEMSX)
        load = self._load(size, sx, insn.dst, insn.src, insn.off)
        if mode not in (op.BPF_PROBE_MEM, op.BPF_PROBE_MEMSX) and i not in self.probe_mem:
            if mode not in (op.BPF_MEM, op.BPF_MEMSX):
                raise KeyError(mode)
            return load, []
        # PROBE_MEM: only addresses in the guard window are touched, the rest read 0;
        # a fault in the window is caught through the exception table entry.
        guard = self.target.guard
        code = mov_imm64(AX, guard.high)
        code += mov_reg(AUX, insn.src, True)
        if insn.off:
            code += bytes([add_1mod(0x48, AUX), 0x81, add_1reg(0xC0, AUX)]) + s32(insn.off)
        code += rex_2(AUX, AX, True) + bytes([0x29, add_2reg(0xC0, AUX, AX)])  # sub r11, r10
        code += mov_imm64(AX, (guard.low - guard.high) & 0xFFFFFFFFFFFFFFFF)
        code += rex_2(AUX, AX, True) + bytes([0x39, add_2reg(0xC0, AUX, AX)])  # cmp r11, r10
        zero = mov_imm32(insn.dst, 0, False)
        code += bytes([0x77, len(zero) + 2]) + zero + bytes([0xEB, len(load)])
        return code + load, [(len(code), len(load), insn.dst)]

    @staticmethod
    def _st(insn) -> bytes:
        size, d, imm = insn.code & 0x18, insn.dst, insn.imm
        if insn.code & 0xE0 != op.BPF_MEM:
            raise KeyError(insn.code)
        if size == op.BPF_B:
            head, tail = (bytes([add_1mod(0x40, d)]) if is_ereg(d) else b"") + b"\xc6", s8(imm)
        elif size == op.BPF_H:
            head, tail = b"\x66" + (bytes([add_1mod(0x40, d)]) if is_ereg(d) else b"") + b"\xc7", s16(imm)
        elif size == op.BPF_W:
            head, tail = (bytes([add_1mod(0x40, d)]) if is_ereg(d) else b"") + b"\xc7", s32(imm)
        else:
            head, tail = bytes([add_1mod(0x48, d), 0xC7]), s32(imm)
        off = insn.off
        modrm = (bytes([add_1reg(0x40, d)]) + s8(off)) if is_imm8(off) else (bytes([add_1reg(0x80, d)]) + s32(off))
        return head + modrm + tail

    def _stx(self, insn) -> bytes:
        size, d, s = insn.code & 0x18, insn.dst, insn.src
        mode = insn.code & 0xE0
        if mode == op.BPF_ATOMIC:
            return self._atomic(insn)
        if mode != op.BPF_MEM:
            raise KeyError(mode)
        if size == op.BPF_B:
            prefix = bytes([add_2mod(0x40, d, s)]) if is_ereg(d) or is_ereg_8l(s) else b""
            return prefix + b"\x88" + mem_suffix(d, s, insn.off)
        if size == op.BPF_DW:
            return bytes([add_2mod(0x48, d, s), 0x89]) + mem_suffix(d, s, insn.off)
        prefix = b"\x66" if size == op.BPF_H else b""
        if is_ereg(d) or is_ereg(s):
            prefix += bytes([add_2mod(0x40, d, s)])
        return prefix + b"\x89" + mem_suffix(d, s, insn.off)

    def _atomic(self, insn) -> bytes:
        size, d, s, off, what = insn.code & 0x18, insn.dst, insn.src, insn.off, insn.imm
        if size not in (op.BPF_W, op.BPF_DW):
            raise KeyError(size)
        is64 = size == op.BPF_DW
        base = what & ~op.BPF_FETCH
        if what in (op.BPF_ADD, op.BPF_AND, op.BPF_OR, op.BPF_XOR):
            return b"\xf0" + rex_2(d, s, is64) + bytes([ALU_RR[what]]) + mem_suffix(d, s, off)
        if what == op.BPF_ADD | op.BPF_FETCH:
            return b"\xf0" + rex_2(d, s, is64) + b"\x0f\xc1" + mem_suffix(d, s, off)  # lock xadd
        if what == op.BPF_XCHG:
            return rex_2(d, s, is64) + b"\x87" + mem_suffix(d, s, off)
        if what == op.BPF_CMPXCHG:
            code = b"\xf0" + rex_2(d, s, is64) + b"\x0f\xb1" + mem_suffix(d, s, off)
            return code if is64 else code + b"\x89\xc0"  # r0 is the zero-extended old value
        if base in (op.BPF_AND, op.BPF_OR, op.BPF_XOR) and what & op.BPF_FETCH:
            # no x86 instruction fetches and ands/ors/xors: a cmpxchg loop
            src, dst = (AX if s == 0 else s), (AX if d == 0 else d)
            code = mov_reg(AX, 0, True)  # rax is cmpxchg's comparand: keep r0 in r10
            loop = self._load(size, False, 0, dst, off)
            loop += mov_reg(AUX, 0, is64)
            loop += rex_2(AUX, src, is64) + bytes([ALU_RR[base], add_2reg(0xC0, AUX, src)])
            loop += b"\xf0" + rex_2(dst, AUX, is64) + b"\x0f\xb1" + mem_suffix(dst, AUX, off)
            loop += bytes([0x75, (-(len(loop) + 2)) & 0xFF])
            return code + loop + mov_reg(src, 0, is64) + mov_reg(0, AX, True)
        raise KeyError(what)

    def _ld(self, i: int, insn) -> bytes:
        if not insn.is_ld_imm64:
            raise self._fail(i, "legacy packet loads (LD_ABS/LD_IND) are rewritten by the kernel's verifier "
                                "before its JIT; bpfnb's JIT does not translate them")
        nxt = self.insns[i + 1]
        value = ((nxt.imm & 0xFFFFFFFF) << 32) | (insn.imm & 0xFFFFFFFF)
        if insn.src:
            if self.target.map_value is None:
                raise self._fail(i, f"64-bit load of pseudo kind {insn.src} needs the run's map addresses")
            value = self.target.map_value(insn.src, insn.imm, nxt.imm)
        return mov_imm64(insn.dst, value)

    # jumps, calls, exit
    def _jmp(self, f: int, i: int, insn, here: int) -> bytes:
        lo = self.bounds[f][0]
        k = i - lo + 1  # this insn's index in addrs
        addrs = self.addrs[f]
        cls, operation = insn.code & 0x07, insn.code & 0xF0
        is64 = cls == op.BPF_JMP
        if operation == op.BPF_EXIT:
            # as do_jit: the first exit of the function carries the epilogue, the others jump to it
            if i != self.first_exit[f]:
                return self._jump(0xEB, self.cleanup[f] - addrs[k])
            self.cleanup[f] = here
            return self._epilogue(f, here)
        if operation == op.BPF_CALL:
            return self._call(f, i, insn, here)
        if operation == op.BPF_JA:
            off = jump_offset(insn)
            delta = -2 if off == -1 else addrs[k + off] - addrs[k]
            if delta == 0:
                return b""
            return self._jump(0xEB, delta)
        if operation == op.BPF_JCOND:
            raise self._fail(i, "may_goto is rewritten by the kernel's verifier (a stack counter) before its JIT")
        d, s, imm = insn.dst, insn.src, insn.imm
        if insn.code & op.BPF_X:
            opcode = 0x85 if operation == op.BPF_JSET else 0x39
            code = rex_2(d, s, is64) + bytes([opcode, add_2reg(0xC0, d, s)])
        elif operation == op.BPF_JSET:
            code = rex_1(d, is64) + bytes([0xF7, add_1reg(0xC0, d)]) + s32(imm)
        elif imm == 0:
            code = rex_2(d, d, is64) + bytes([0x85, add_2reg(0xC0, d, d)])  # test: one byte shorter
        elif is_imm8(imm):
            code = rex_1(d, is64) + bytes([0x83, add_1reg(0xF8, d)]) + s8(imm)
        else:
            code = rex_1(d, is64) + bytes([0x81, add_1reg(0xF8, d)]) + s32(imm)
        delta = addrs[k + jump_offset(insn)] - addrs[k]
        jcc = JCC[operation]
        if is_imm8(delta):
            return code + bytes([jcc]) + s8(delta)
        return code + bytes([0x0F, jcc + 0x10]) + s32(delta)

    @staticmethod
    def _jump(short: int, delta: int) -> bytes:
        if is_imm8(delta):
            return bytes([short]) + s8(delta)
        return b"\xe9" + s32(delta)

    def _call(self, f: int, i: int, insn, here: int) -> bytes:
        if insn.src == 0 and insn.imm == TAIL_CALL:
            if i in self.direct_tail_calls:
                code = self._direct_tail_call(f, i, here, *self.direct_tail_calls[i])
            else:
                code = self._tail_call(f, i, here)
            return code + (b"\x31\xc0" if self.target.zero_r0_after_tail_call else b"")
        head = b""
        if insn.src == op.BPF_PSEUDO_CALL and self.tail_call_reachable[f]:
            head = self._tcc_ptr(f)  # the callee keeps counting with the same counter
        if self.target.private_stack is None:
            return head + self._direct_call(f, i, insn, here + len(head))
        # r9 (the private frame pointer) is caller-saved: kept across the call
        return head + b"\x41\x51" + self._direct_call(f, i, insn, here + len(head) + 2) + b"\x41\x59"

    def _direct_tail_call(self, f: int, i: int, here: int, map_index: int, key: int) -> bytes:
        """A tail call through a constant slot: a patchable jump, as the kernel emits it
        (``jmp out`` over the unwinding while the slot is empty; once filled, that jump is
        a nop and the final nop a ``jmp`` into the target past its prologue's first part)."""
        depth = self._frame_depth(f)
        unwind = (b"\x48\x83\x00\x01" + b"".join(POP[r] for r in reversed(self.callee_saved[f])) + b"\x58\x58"
                  + (b"\x48\x81\xc4" + s32(depth) if depth else b""))
        k = self.target.tail_call_target(map_index, key) if self.target.tail_call_target else None
        head = self._tcc_ptr(f) + b"\x48\x83\x38" + bytes([MAX_TAIL_CALL_CNT]) + b"\x73" + s8(5 + len(unwind) + 5)
        if k is None:
            return head + b"\xe9" + s32(len(unwind) + 5) + unwind + NOP5
        callee = self.starts.index(self.entry_list[k])
        after = self._function_base(f) + here + len(head) + 5 + len(unwind) + 5
        return head + NOP5 + unwind + b"\xe9" + s32(self._function_base(callee) + TAIL_CALL_OFFSET - after)

    def _tail_call(self, f: int, i: int, here: int) -> bytes:
        """``bpf_tail_call(ctx, array, index)`` (r1, r2 = rsi, r3 = rdx): out of range, over
        the limit or an empty slot go on with the next instruction; otherwise count, unwind this
        function's frame down to rbp and jump into the target past its prologue's first part."""
        layout = self.target.tail_calls
        if layout is None:
            raise self._fail(i, "tail calls need the prog array's layout (Target.tail_calls)")
        depth = self._frame_depth(f)
        jump = b"\xff\xe1"  # jmp rcx
        tail = (b"\x48\x83\x00\x01"  # add qword [rax], 1
                + b"".join(POP[r] for r in reversed(self.callee_saved[f]))
                + b"\x58\x58"  # the counter's two slots
                + (b"\x48\x81\xc4" + s32(depth) if depth else b"")
                + b"\x48\x8b\x49" + s8(layout.bpf_func)  # mov rcx, [rcx + bpf_func]
                + b"\x48\x83\xc1" + s8(TAIL_CALL_OFFSET))  # add rcx, TAIL_CALL_OFFSET
        if self.target.indirect_thunk is not None:
            jump = b"\xe9"  # rel32 filled below, once the instruction's address is known
        head_size = 2 + 3 + 2 + 7 + 4 + 2 + 8 + 3 + 2
        if jump == b"\xe9":
            jump += s32(self.target.indirect_thunk - (self._function_base(f) + here + head_size + len(tail) + 5))
        body = tail + jump
        after_checks = len(body)
        # mov edx, edx; cmp [rsi + max_entries], edx; jbe out
        code = b"\x89\xd2" + b"\x39\x56" + s8(layout.max_entries)
        code += b"\x76" + s8(7 + 4 + 2 + 8 + 3 + 2 + after_checks)
        code += self._tcc_ptr(f) + b"\x48\x83\x38" + bytes([MAX_TAIL_CALL_CNT])  # cmp qword [rax], limit
        code += b"\x73" + s8(8 + 3 + 2 + after_checks)
        code += b"\x48\x8b\x8c\xd6" + s32(layout.ptrs)  # mov rcx, [rsi + rdx*8 + ptrs]
        code += b"\x48\x85\xc9" + b"\x74" + s8(after_checks)  # test rcx, rcx; je out
        return code + body

    def _direct_call(self, f: int, i: int, insn, here: int) -> bytes:
        after = self._function_base(f) + here + 5
        if insn.src == op.BPF_PSEUDO_CALL:
            callee = self.starts.index(jump_target(insn, i))
            return b"\xe8" + s32(self._function_base(callee) - after)
        if insn.src == op.BPF_PSEUDO_KFUNC_CALL:
            raise self._fail(i, "kfunc calls need kernel functions; bpfnb's JIT has none")
        if self.target.helper_address is None:
            raise self._fail(i, "helper calls need a target that places helpers")
        return b"\xe8" + s32(self.target.helper_address(insn.imm) - after)
