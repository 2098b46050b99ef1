"""Assembler for the uBPF / bpf_conformance ``.data`` dialect.

One instruction per line, ``#`` starts a comment, ``name:`` defines a label::

    mov %r0, 0x12345678          ALU64 (``mov32`` etc.: ALU32)
    sdiv %r1, %r2 / smod32 ...   signed division (off = 1)
    neg %r1  /  le16 %r1  /  be64 %r1
    ldxw %r1, [%r2+4]            loads; ldxs{b,h,w}: sign-extending (MEMSX)
    stw [%r1-8], 0x33            stores of an immediate
    stxdw [%r10-8], %r1          stores of a register
    lddw %r0, 0x1122334455667788 64-bit immediate (two slots)
    ldabsh 12 / ldindb %r1, 0    legacy packet loads
    jeq %r1, 0x33, +1            jumps: an offset or a label (``j...32``: JMP32)
    call 1 / call local label    helper / bpf-to-bpf call
    exit

Written from the dialect as the vectors in ``../shared/conformance`` use it.
"""

from __future__ import annotations

import re

from ..errors import IsaError
from . import opcodes as op
from .insn import Insn, ld_imm64

ALU_OPS = {
    "add": op.BPF_ADD, "sub": op.BPF_SUB, "mul": op.BPF_MUL, "div": op.BPF_DIV, "or": op.BPF_OR,
    "and": op.BPF_AND, "lsh": op.BPF_LSH, "rsh": op.BPF_RSH, "mod": op.BPF_MOD, "xor": op.BPF_XOR,
    "mov": op.BPF_MOV, "arsh": op.BPF_ARSH, "sdiv": op.BPF_DIV, "smod": op.BPF_MOD,
}
JMP_OPS = {
    "jeq": op.BPF_JEQ, "jgt": op.BPF_JGT, "jge": op.BPF_JGE, "jset": op.BPF_JSET, "jne": op.BPF_JNE,
    "jsgt": op.BPF_JSGT, "jsge": op.BPF_JSGE, "jlt": op.BPF_JLT, "jle": op.BPF_JLE,
    "jslt": op.BPF_JSLT, "jsle": op.BPF_JSLE,
}
SIZES = {"b": op.BPF_B, "h": op.BPF_H, "w": op.BPF_W, "dw": op.BPF_DW}
LABEL = re.compile(r"^([A-Za-z_.$][\w.$]*):$")
MEM = re.compile(r"^\[\s*%r(\d+)\s*(?:([+-])\s*(\w+))?\s*\]$")


class _Line:
    def __init__(self, number: int, text: str):
        self.number = number
        self.text = text

    def fail(self, why: str) -> IsaError:
        return IsaError(f"line {self.number}: {why}: {self.text!r}")


def _int(text: str, line: _Line) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise line.fail(f"{text!r} is not a number") from None


def _reg(text: str, line: _Line) -> int:
    m = re.fullmatch(r"%r(\d+)", text.strip())
    if not m or int(m[1]) > 15:  # the field holds 0..15; r11+ are for the loader to refuse
        raise line.fail(f"{text!r} is not a register %r0..%r15")
    return int(m[1])


def _s32(value: int, line: _Line) -> int:
    if not -(1 << 31) <= value < (1 << 32):
        raise line.fail(f"immediate {value} does not fit in 32 bits")
    return value - (1 << 32) if value >= (1 << 31) else value


def _s16(value: int, line: _Line) -> int:
    if not -(1 << 15) <= value < (1 << 16):
        raise line.fail(f"offset {value} does not fit in 16 bits")
    return value - (1 << 16) if value >= (1 << 15) else value


def _mem(text: str, line: _Line) -> tuple[int, int]:
    m = MEM.match(text.strip())
    if not m:
        raise line.fail(f"{text!r} is not a memory operand [%rN+off]")
    off = _int(m[3], line) if m[3] else 0
    return int(m[1]), _s16(-off if m[2] == "-" else off, line)


def _operands(rest: str) -> list[str]:
    return [p.strip() for p in rest.split(",")] if rest.strip() else []


def assemble(text: str) -> tuple[Insn, ...]:
    """Instructions of ``text``; errors name the line."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        code = raw.split("#", 1)[0].strip()
        if code:
            lines.append(_Line(number, code))
    # first pass: slot of every label
    labels: dict[str, int] = {}
    slot = 0
    for line in lines:
        m = LABEL.match(line.text)
        if m:
            if m[1] in labels:
                raise line.fail(f"label {m[1]!r} defined twice")
            labels[m[1]] = slot
            continue
        slot += 2 if line.text.split()[0] == "lddw" else 1
    out: list[Insn] = []
    for line in lines:
        if LABEL.match(line.text):
            continue
        out.extend(_one(line, len(out), labels))
    return tuple(out)


def _target(text: str, here: int, labels: dict[str, int], line: _Line) -> int:
    """A jump offset: ``+N``/``-N`` as written, or a label relative to the next slot."""
    text = text.strip()
    if text in labels:
        return labels[text] - (here + 1)
    if re.fullmatch(r"[+-]?(?:0x[0-9a-fA-F]+|\d+)", text):
        return int(text, 0)
    raise line.fail(f"unknown label {text!r}")


def _one(line: _Line, here: int, labels: dict[str, int]) -> list[Insn]:
    mnemonic, _, rest = line.text.partition(" ")
    args = _operands(rest)

    def want(n: int) -> None:
        if len(args) != n:
            raise line.fail(f"{mnemonic} takes {n} operand(s), got {len(args)}")

    if mnemonic == "exit":
        want(0)
        return [Insn(op.BPF_JMP | op.BPF_EXIT)]
    if mnemonic == "call":
        parts = rest.split()
        if parts and parts[0] == "local":
            if len(parts) != 2:
                raise line.fail("call local takes a label")
            return [Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_CALL, 0,
                         _target(parts[1], here, labels, line))]
        want(1)
        return [Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, _s32(_int(args[0], line), line))]
    if mnemonic == "ja":
        want(1)
        return [Insn(op.BPF_JMP | op.BPF_JA, 0, 0, _s16(_target(args[0], here, labels, line), line), 0)]
    if mnemonic == "lddw":
        want(2)
        return list(ld_imm64(_reg(args[0], line), _int(args[1], line)))
    m = re.fullmatch(r"(le|be)(16|32|64)", mnemonic)
    if m:
        want(1)
        source = op.BPF_TO_LE if m[1] == "le" else op.BPF_TO_BE
        return [Insn(op.BPF_ALU | op.BPF_END | source, _reg(args[0], line), 0, 0, int(m[2]))]
    m = re.fullmatch(r"(neg)(32)?", mnemonic)
    if m:
        want(1)
        cls = op.BPF_ALU if m[2] else op.BPF_ALU64
        return [Insn(cls | op.BPF_NEG, _reg(args[0], line))]
    m = re.fullmatch(r"(\w+?)(32)?", mnemonic)
    if m and m[1] in ALU_OPS:
        want(2)
        cls = op.BPF_ALU if m[2] else op.BPF_ALU64
        signed = 1 if m[1] in ("sdiv", "smod") else 0
        dst = _reg(args[0], line)
        if args[1].startswith("%"):
            return [Insn(cls | ALU_OPS[m[1]] | op.BPF_X, dst, _reg(args[1], line), signed, 0)]
        return [Insn(cls | ALU_OPS[m[1]] | op.BPF_K, dst, 0, signed, _s32(_int(args[1], line), line))]
    m = re.fullmatch(r"(j\w+?)(32)?", mnemonic)
    if m and m[1] in JMP_OPS:
        want(3)
        cls = op.BPF_JMP32 if m[2] else op.BPF_JMP
        dst = _reg(args[0], line)
        off = _s16(_target(args[2], here, labels, line), line)
        if args[1].startswith("%"):
            return [Insn(cls | JMP_OPS[m[1]] | op.BPF_X, dst, _reg(args[1], line), off, 0)]
        return [Insn(cls | JMP_OPS[m[1]] | op.BPF_K, dst, 0, off, _s32(_int(args[1], line), line))]
    m = re.fullmatch(r"ldx(s?)(b|h|w|dw)", mnemonic)
    if m:
        want(2)
        src, off = _mem(args[1], line)
        mode = op.BPF_MEMSX if m[1] else op.BPF_MEM
        return [Insn(op.BPF_LDX | mode | SIZES[m[2]], _reg(args[0], line), src, off, 0)]
    m = re.fullmatch(r"st(x?)(b|h|w|dw)", mnemonic)
    if m:
        want(2)
        dst, off = _mem(args[0], line)
        if m[1]:
            return [Insn(op.BPF_STX | op.BPF_MEM | SIZES[m[2]], dst, _reg(args[1], line), off, 0)]
        return [Insn(op.BPF_ST | op.BPF_MEM | SIZES[m[2]], dst, 0, off, _s32(_int(args[1], line), line))]
    m = re.fullmatch(r"ld(abs|ind)(b|h|w|dw)", mnemonic)
    if m:
        if m[1] == "abs":
            want(1)
            return [Insn(op.BPF_LD | op.BPF_ABS | SIZES[m[2]], 0, 0, 0, _s32(_int(args[0], line), line))]
        want(2)
        return [Insn(op.BPF_LD | op.BPF_IND | SIZES[m[2]], 0, _reg(args[0], line), 0,
                     _s32(_int(args[1], line), line))]
    raise line.fail(f"unknown instruction {mnemonic!r}")


def raw_words(insns) -> list[int]:
    """Each instruction as the 64-bit little-endian word the vectors' ``-- raw`` lists."""
    return [int.from_bytes(i.encode(), "little") for i in insns]
