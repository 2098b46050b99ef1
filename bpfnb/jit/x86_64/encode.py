"""x86-64 encoding: the BPF → x86 register map and the REX/ModRM/VEX byte rules.

The map is Linux's (``arch/x86/net/bpf_jit_comp.c``): BPF's argument
registers r1–r5 are the System V argument registers, so a helper call is a
plain ``call``; r6–r9 are callee-saved; r10, the read-only frame pointer, is
``rbp``. Two scratch registers exist for the JIT itself: ``AX`` (r10) for the
verifier's blinding/rewrites and ``AUX`` (r11) for division and shifts.
"""

from __future__ import annotations

# Pseudo BPF register numbers for the JIT's own registers.
AX, AUX, R9, R12 = 11, 12, 13, 14

# BPF register → (low 3 bits of the x86 register number, needs REX extension bit)
X86 = {
    0: (0, False),   # rax
    1: (7, False),   # rdi
    2: (6, False),   # rsi
    3: (2, False),   # rdx
    4: (1, False),   # rcx
    5: (0, True),    # r8
    6: (3, False),   # rbx
    7: (5, True),    # r13
    8: (6, True),    # r14
    9: (7, True),    # r15
    10: (5, False),  # rbp
    AX: (2, True),   # r10
    AUX: (3, True),  # r11
    R9: (1, True),   # r9
    R12: (4, True),  # r12
}
NAMES = {0: "rax", 1: "rdi", 2: "rsi", 3: "rdx", 4: "rcx", 5: "r8", 6: "rbx", 7: "r13", 8: "r14",
         9: "r15", 10: "rbp", AX: "r10", AUX: "r11", R9: "r9", R12: "r12"}
# ucontext gregs index (glibc REG_*) of each BPF register's x86 register
GREG = {0: 13, 1: 8, 2: 9, 3: 12, 4: 14, 5: 0, 6: 11, 7: 5, 8: 6, 9: 7, 10: 10, AX: 2, AUX: 3}
CALLEE_SAVED = (6, 7, 8, 9)  # pushed in this order when the program uses them


def hexreg(reg: int) -> int:
    return X86[reg][0]


def is_ereg(reg: int) -> bool:
    return X86[reg][1]


def is_ereg_8l(reg: int) -> bool:
    """Registers whose low byte needs a REX prefix (sil, dil, bpl and r8–r15)."""
    return is_ereg(reg) or reg in (1, 2, 10)


def is_imm8(value: int) -> bool:
    return -128 <= value <= 127


def is_simm32(value: int) -> bool:
    return -(1 << 31) <= value < (1 << 31)


def is_uimm32(value: int) -> bool:
    return 0 <= value < (1 << 32)


def add_1mod(byte: int, reg: int) -> int:
    """REX with B set when ``reg`` is r8–r15."""
    return byte | 1 if is_ereg(reg) else byte


def add_2mod(byte: int, rm: int, reg: int) -> int:
    """REX with B for the ModRM ``rm`` register and R for the ``reg`` register."""
    if is_ereg(rm):
        byte |= 1
    if is_ereg(reg):
        byte |= 4
    return byte


def add_1reg(byte: int, reg: int) -> int:
    return byte + hexreg(reg)


def add_2reg(byte: int, rm: int, reg: int) -> int:
    """ModRM (or a +r opcode) with ``rm`` in the low bits and ``reg`` in bits 3–5."""
    return byte + hexreg(rm) + (hexreg(reg) << 3)


def rex_2(rm: int, reg: int, is64: bool) -> bytes:
    """REX.W for 64-bit operations, else a bare REX only when an operand needs it."""
    if is64:
        return bytes([add_2mod(0x48, rm, reg)])
    if is_ereg(rm) or is_ereg(reg):
        return bytes([add_2mod(0x40, rm, reg)])
    return b""


def rex_1(reg: int, is64: bool) -> bytes:
    if is64:
        return bytes([add_1mod(0x48, reg)])
    if is_ereg(reg):
        return bytes([add_1mod(0x40, reg)])
    return b""


def s8(value: int) -> bytes:
    return (value & 0xFF).to_bytes(1, "little")


def s16(value: int) -> bytes:
    return (value & 0xFFFF).to_bytes(2, "little")


def s32(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "little")


def u64(value: int) -> bytes:
    return (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")


def vex3(r: bool, x: bool, b: bool, mmmmm: int, w: bool, vvvv: int, l256: bool, pp: int) -> bytes:
    """The three-byte VEX prefix (BMI2's shlx/shrx/sarx)."""
    byte1 = ((not r) << 7) | ((not x) << 6) | ((not b) << 5) | mmmmm
    byte2 = (w << 7) | ((~vvvv & 0xF) << 3) | (l256 << 2) | pp
    return bytes([0xC4, byte1, byte2])


def reg_number(reg: int) -> int:
    """The full 4-bit x86 register number (for VEX.vvvv)."""
    low, ext = X86[reg]
    return low | (8 if ext else 0)


def mov_reg(dst: int, src: int, is64: bool) -> bytes:
    """``mov dst, src``; a 64-bit move to itself is dropped, a 32-bit one kept (it zero-extends)."""
    if is64:
        if dst == src:
            return b""
        return bytes([add_2mod(0x48, dst, src), 0x89, add_2reg(0xC0, dst, src)])
    return rex_2(dst, src, False) + bytes([0x89, add_2reg(0xC0, dst, src)])


def mov_imm32(dst: int, imm: int, sign_extend: bool) -> bytes:
    """``dst = imm``: sign-extending ``mov r64, imm32`` for negatives (64-bit),
    ``xor r32, r32`` for zero, else ``mov r32, imm32``."""
    imm = imm - (1 << 32) if imm >= (1 << 31) else imm
    if sign_extend and imm < 0:
        return bytes([add_1mod(0x48, dst), 0xC7, add_1reg(0xC0, dst)]) + s32(imm)
    if imm == 0:
        prefix = bytes([add_2mod(0x40, dst, dst)]) if is_ereg(dst) else b""
        return prefix + bytes([0x31, add_2reg(0xC0, dst, dst)])
    prefix = bytes([add_1mod(0x40, dst)]) if is_ereg(dst) else b""
    return prefix + bytes([add_1reg(0xB8, dst)]) + s32(imm)


def mov_imm64(dst: int, value: int) -> bytes:
    """``dst = value``: the shortest of the 32-bit forms, else ``movabs``."""
    value &= 0xFFFFFFFFFFFFFFFF
    if is_uimm32(value):
        return mov_imm32(dst, value, False)
    signed = value - (1 << 64) if value >> 63 else value
    if is_simm32(signed):
        return mov_imm32(dst, signed & 0xFFFFFFFF, True)
    return bytes([add_1mod(0x48, dst), add_1reg(0xB8, dst)]) + u64(value)


def mem_suffix(base: int, reg: int, off: int) -> bytes:
    """ModRM for ``[base + off]`` with ``reg`` in the reg field: always a displacement
    (disp8 when it fits, even 0, so rbp and r13 need no special case)."""
    if is_imm8(off):
        return bytes([add_2reg(0x40, base, reg)]) + s8(off)
    return bytes([add_2reg(0x80, base, reg)]) + s32(off)


NOP5 = bytes.fromhex("0f1f440000")
NOP3 = bytes.fromhex("0f1f00")
NOPS = {1: b"\x90", 2: b"\x66\x90", 3: NOP3, 4: bytes.fromhex("0f1f4000"), 5: NOP5,
        6: bytes.fromhex("660f1f440000"), 7: bytes.fromhex("0f1f8000000000"),
        8: bytes.fromhex("0f1f840000000000")}


def nops(n: int) -> bytes:
    out = b""
    while n > 0:
        k = min(n, 8)
        out += NOPS[k]
        n -= k
    return out
