"""Which opcodes the kernel knows: the check behind ``unknown opcode %02x``.

The rules follow RFC 9669's opcode table as Linux 6.18 applies it (checked
opcode by opcode against the running kernel in tests/isa/test_valid.py):
ALU and ALU64 take every operation with K or X sources except ``neg`` with
X (and ``bswap`` with X in ALU64); JMP has ``ja``, the conditional jumps,
``call``, ``exit`` and ``may_goto`` (no ``callx``); JMP32 the conditional
jumps and ``gotol``; LD the 64-bit immediate and the legacy packet loads
(B/H/W); ST/STX plain stores of every size, atomics of every size; LDX every
code but a sign-extending 64-bit load (the verifier explains the other bad
LDX forms as "reserved fields" later).
"""

from __future__ import annotations

from . import opcodes as op

_CONDITIONAL = (op.BPF_JEQ, op.BPF_JGT, op.BPF_JGE, op.BPF_JSET, op.BPF_JNE, op.BPF_JSGT, op.BPF_JSGE,
                op.BPF_JLT, op.BPF_JLE, op.BPF_JSLT, op.BPF_JSLE)
_ALU_OPS = (op.BPF_ADD, op.BPF_SUB, op.BPF_MUL, op.BPF_DIV, op.BPF_OR, op.BPF_AND, op.BPF_LSH, op.BPF_RSH,
            op.BPF_MOD, op.BPF_XOR, op.BPF_MOV, op.BPF_ARSH)


def _known() -> frozenset[int]:
    codes: set[int] = set()
    for cls in (op.BPF_ALU, op.BPF_ALU64):
        for operation in _ALU_OPS:
            codes |= {cls | operation | op.BPF_K, cls | operation | op.BPF_X}
        codes.add(cls | op.BPF_NEG | op.BPF_K)
        codes.add(cls | op.BPF_END | op.BPF_K)
    codes.add(op.BPF_ALU | op.BPF_END | op.BPF_X)  # to big-endian
    for operation in _CONDITIONAL:
        for cls in (op.BPF_JMP, op.BPF_JMP32):
            codes |= {cls | operation | op.BPF_K, cls | operation | op.BPF_X}
    codes |= {op.BPF_JMP | op.BPF_JA, op.BPF_JMP32 | op.BPF_JA, op.BPF_JMP | op.BPF_CALL,
              op.BPF_JMP | op.BPF_EXIT, op.BPF_JMP | op.BPF_JCOND}
    codes.add(op.BPF_LD | op.BPF_IMM | op.BPF_DW)
    for size in (op.BPF_B, op.BPF_H, op.BPF_W):
        codes |= {op.BPF_LD | op.BPF_ABS | size, op.BPF_LD | op.BPF_IND | size}
    codes |= {op.BPF_LDX | low for low in range(0, 0x100, 8)} - {op.BPF_LDX | op.BPF_MEMSX | op.BPF_DW}
    for size in (op.BPF_B, op.BPF_H, op.BPF_W, op.BPF_DW):
        codes |= {op.BPF_ST | op.BPF_MEM | size, op.BPF_STX | op.BPF_MEM | size,
                  op.BPF_STX | op.BPF_ATOMIC | size}
    return frozenset(codes)


KNOWN_OPCODES: frozenset[int] = _known()


def unknown_opcode(code: int) -> str | None:
    """The kernel's message for an opcode it does not know, else None."""
    return None if code in KNOWN_OPCODES else f"unknown opcode {code:02x}"
