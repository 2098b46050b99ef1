"""Opcode fields of RFC 9669 as named constants.

An opcode byte is ``class | ...``: for ALU/JMP classes ``op | source | class``,
for load/store classes ``mode | size | class``. Engines use these names, never
the numbers.
"""

from __future__ import annotations

# Instruction classes (low 3 bits).
BPF_LD = 0x00
BPF_LDX = 0x01
BPF_ST = 0x02
BPF_STX = 0x03
BPF_ALU = 0x04
BPF_JMP = 0x05
BPF_JMP32 = 0x06
BPF_ALU64 = 0x07

# Source operand (bit 3) for ALU and JMP classes.
BPF_K = 0x00
BPF_X = 0x08
# For BPF_END (byte swap): BPF_TO_LE is K, BPF_TO_BE is X.
BPF_TO_LE = 0x00
BPF_TO_BE = 0x08

# ALU operations (high 4 bits).
BPF_ADD = 0x00
BPF_SUB = 0x10
BPF_MUL = 0x20
BPF_DIV = 0x30
BPF_OR = 0x40
BPF_AND = 0x50
BPF_LSH = 0x60
BPF_RSH = 0x70
BPF_NEG = 0x80
BPF_MOD = 0x90
BPF_XOR = 0xA0
BPF_MOV = 0xB0
BPF_ARSH = 0xC0
BPF_END = 0xD0

# Jump operations (high 4 bits).
BPF_JA = 0x00
BPF_JEQ = 0x10
BPF_JGT = 0x20
BPF_JGE = 0x30
BPF_JSET = 0x40
BPF_JNE = 0x50
BPF_JSGT = 0x60
BPF_JSGE = 0x70
BPF_CALL = 0x80
BPF_EXIT = 0x90
BPF_JLT = 0xA0
BPF_JLE = 0xB0
BPF_JSLT = 0xC0
BPF_JSLE = 0xD0
BPF_JCOND = 0xE0  # may_goto (src = BPF_MAY_GOTO)

# Load/store size (bits 3-4).
BPF_W = 0x00
BPF_H = 0x08
BPF_B = 0x10
BPF_DW = 0x18

# Load/store mode (high 3 bits).
BPF_IMM = 0x00
BPF_ABS = 0x20
BPF_IND = 0x40
BPF_MEM = 0x60
BPF_MEMSX = 0x80
BPF_ATOMIC = 0xC0
# Kernel-internal modes the verifier rewrites loads to (never in an object).
BPF_PROBE_MEM = 0x20
BPF_PROBE_MEMSX = 0x40

# Atomic operations (imm of BPF_ATOMIC).
BPF_FETCH = 0x01
BPF_XCHG = 0xE0 | BPF_FETCH
BPF_CMPXCHG = 0xF0 | BPF_FETCH
# load-acquire and store-release (Linux 6.15): atomic modes of no ALU op
BPF_LOAD_ACQ = 0x100
BPF_STORE_REL = 0x110

# src_reg of BPF_LD | BPF_IMM | BPF_DW (64-bit immediate pseudo kinds).
BPF_PSEUDO_MAP_FD = 1
BPF_PSEUDO_MAP_VALUE = 2
BPF_PSEUDO_BTF_ID = 3
BPF_PSEUDO_FUNC = 4
BPF_PSEUDO_MAP_IDX = 5
BPF_PSEUDO_MAP_IDX_VALUE = 6

# src_reg of BPF_JMP | BPF_CALL.
BPF_PSEUDO_CALL = 1
BPF_PSEUDO_KFUNC_CALL = 2

# src_reg of BPF_JMP | BPF_JCOND.
BPF_MAY_GOTO = 0

# Register numbers.
BPF_REG_0 = 0
BPF_REG_1 = 1
BPF_REG_2 = 2
BPF_REG_3 = 3
BPF_REG_4 = 4
BPF_REG_5 = 5
BPF_REG_6 = 6
BPF_REG_7 = 7
BPF_REG_8 = 8
BPF_REG_9 = 9
BPF_REG_FP = 10
MAX_BPF_REG = 11

INSN_SIZE = 8
MAX_BPF_STACK = 512

SIZE_BYTES = {BPF_W: 4, BPF_H: 2, BPF_B: 1, BPF_DW: 8}


def insn_class(code: int) -> int:
    return code & 0x07


def alu_op(code: int) -> int:
    return code & 0xF0


def jmp_op(code: int) -> int:
    return code & 0xF0


def source(code: int) -> int:
    return code & 0x08


def mem_size(code: int) -> int:
    return code & 0x18


def mem_mode(code: int) -> int:
    return code & 0xE0
