"""Assembler for the conformance ``.data`` dialect (uBPF's and bpf_conformance's).

One instruction per line, ``#`` starts a comment, ``name:`` defines a label::

    mov %r0, 0x12345678          ALU64 (``mov32`` etc.: ALU32)
    sdiv %r1, %r2 / smod32 ...   signed division (off = 1)
    movsx832 %r0, %r1            sign-extending move: from 8/16/32 bits, into 32/64 (off = width)
    neg %r1  /  le16 %r1  /  be64 %r1
    bswap16 %r1 / swap64 %r1     unconditional byte swap (ALU64 | END, RFC 9669 cpu v4)
    ldxw %r1, [%r2+4]            loads; ldxs{b,h,w}: sign-extending (MEMSX)
    stw [%r1-8], 0x33            stores of an immediate
    stxdw [%r10-8], %r1          stores of a register
    lock add [%r10-8], %r1       atomics: add/and/or/xor (``lock fetch ...``: with BPF_FETCH),
    lock cmpxchg32 [%r1], %r2    xchg, cmpxchg; ``32`` suffix: 32-bit
    lddw %r0, 0x1122334455667788 64-bit immediate (two slots)
    ldabsh 12 / ldindb %r1, 0    legacy packet loads
    jeq %r1, 0x33, +1            jumps: an offset or a label (``j...32``: JMP32)
    ja32 label                   ``gotol``: JMP32 | JA, the offset in imm
    call 1 / call helper 1       helper call
    call %r2 / call helper %r2   ``callx`` (JMP | CALL | X, the register in dst)
    call local label             bpf-to-bpf call
    call runtime 7               kfunc call (src = 2)
    exit

As in bpf_conformance, the first ``exit`` is also a label named ``exit``
(``jne %r0, 0, exit``) unless the program defines that label itself; a label
may be named like a mnemonic. A jump target is a label, or an offset written
with its sign (``+1``, ``-3``). Immediates are 32-bit: hexadecimal from 0 to
0xffffffff, decimal as signed. Decimal numbers may have leading zeros.

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
SIGNED_ALU = ("sdiv", "smod")  # off = 1 selects the signed form
# movsx<from><into>: the class of <into>, off = <from> bits
MOVSX = {
    "movsx832": (op.BPF_ALU, 8), "movsx1632": (op.BPF_ALU, 16),
    "movsx864": (op.BPF_ALU64, 8), "movsx1664": (op.BPF_ALU64, 16), "movsx3264": (op.BPF_ALU64, 32),
}
JMP_OPS = {
    "jeq": op.BPF_JEQ, "jgt": op.BPF_JGT, "jge": op.BPF_JGE, "jset": op.BPF_JSET, "jne": op.BPF_JNE,
    "jsgt": op.BPF_JSGT, "jsge": op.BPF_JSGE, "jlt": op.BPF_JLT, "jle": op.BPF_JLE,
    "jslt": op.BPF_JSLT, "jsle": op.BPF_JSLE,
}
ATOMIC_OPS = {
    "add": op.BPF_ADD, "and": op.BPF_AND, "or": op.BPF_OR, "xor": op.BPF_XOR,
    "xchg": op.BPF_XCHG, "cmpxchg": op.BPF_CMPXCHG,
}
ALWAYS_FETCH = ("xchg", "cmpxchg")  # their imm carries BPF_FETCH already
SIZES = {"b": op.BPF_B, "h": op.BPF_H, "w": op.BPF_W, "dw": op.BPF_DW}
BYTE_SWAP_WIDTHS = (16, 32, 64)
# bswap/swap: RFC 9669's unconditional byte swap, ALU64 | END with the TO_LE source bit
BSWAP = op.BPF_ALU64 | op.BPF_END | op.BPF_TO_LE
CALL_HELPER, CALL_LOCAL, CALL_RUNTIME = "helper", "local", "runtime"
EXIT_LABEL = "exit"  # the first exit's implicit label
MAX_REG = 15  # the 4-bit field; r11+ are for the loader to refuse
U32_MAX = (1 << 32) - 1
S32 = (-(1 << 31), (1 << 31) - 1)
S16 = (-(1 << 15), (1 << 15) - 1)
U16_MAX = (1 << 16) - 1

LABEL = re.compile(r"^(\S+):$")
MEM = re.compile(r"^\[\s*%r(\d+)\s*(?:([+-])\s*(\w+))?\s*\]$")
OFFSET = re.compile(r"[+-](?:0[xX][0-9a-fA-F]+|\d+)")


class _Line:
    def __init__(self, number: int, text: str):
        self.number = number
        self.text = text

    def fail(self, why: str) -> IsaError:
        return IsaError(f"line {self.number}: {why}: {self.text!r}")


def _int(text: str, line: _Line) -> int:
    """A number: hexadecimal with ``0x`` (after an optional sign), else decimal."""
    body = text.lstrip("+-")
    try:
        return int(text, 16) if body[:2].lower() == "0x" else int(text, 10)
    except ValueError:
        raise line.fail(f"{text!r} is not a number") from None


def _is_hex(text: str) -> bool:
    return text.lstrip("+-")[:2].lower() == "0x"


def _imm32(text: str, line: _Line) -> int:
    """A 32-bit immediate as the ``imm`` field holds it (signed)."""
    value = _int(text, line)
    fits = 0 <= value <= U32_MAX if _is_hex(text) else S32[0] <= value <= S32[1]
    if not fits:
        raise line.fail(f"immediate {text} does not fit in 32 bits")
    return value - (1 << 32) if value > S32[1] else value


def _s16(value: int, line: _Line, what: str = "offset") -> int:
    if not S16[0] <= value <= U16_MAX:
        raise line.fail(f"{what} {value} does not fit in 16 bits")
    return value - (1 << 16) if value > S16[1] else value


def _reg(text: str, line: _Line) -> int:
    m = re.fullmatch(r"%r(\d+)", text.strip())
    if not m or int(m[1]) > MAX_REG:
        raise line.fail(f"{text!r} is not a register %r0..%r{MAX_REG}")
    return int(m[1])


def _mem(text: str, line: _Line) -> tuple[int, int]:
    m = MEM.match(text.strip())
    if not m:
        raise line.fail(f"{text!r} is not a memory operand [%rN+off]")
    off = _int(m[3], line) if m[3] else 0
    return int(m[1]), _s16(-off if m[2] == "-" else off, line)


def _operands(rest: str) -> list[str]:
    return [p.strip() for p in rest.split(",")] if rest.strip() else []


def _split(text: str) -> tuple[str | None, str]:
    """A line's label (``name:`` as its first word) and the instruction after it."""
    first, *rest = text.split(None, 1)
    m = LABEL.match(first)
    return (m[1], rest[0].strip() if rest else "") if m else (None, text)


def _slots(code: str) -> int:
    return 2 if code.split()[0] == "lddw" else 1


def assemble(text: str) -> tuple[Insn, ...]:
    """Instructions of ``text``; errors name the line."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        code = raw.split("#", 1)[0].strip()
        if code:
            lines.append(_Line(number, code))
    # first pass: slot of every label, and of the first exit
    labels: dict[str, int] = {}
    first_exit = None
    slot = 0
    for line in lines:
        label, code = _split(line.text)
        if label is not None:
            if label in labels:
                raise line.fail(f"label {label!r} defined twice")
            labels[label] = slot
        if code:
            if first_exit is None and code.split()[0] == "exit":
                first_exit = slot
            slot += _slots(code)
    if first_exit is not None:
        labels.setdefault(EXIT_LABEL, first_exit)
    out: list[Insn] = []
    for line in lines:
        _, code = _split(line.text)
        if code:
            out.extend(_one(_Line(line.number, code), len(out), labels))
    return tuple(out)


def _target(text: str, here: int, labels: dict[str, int], line: _Line) -> int:
    """A jump offset: ``+N``/``-N`` as written, or a label relative to the next slot."""
    text = text.strip()
    if text in labels:
        return labels[text] - (here + 1)
    if OFFSET.fullmatch(text) or re.fullmatch(r"\d+", text):  # bare digits: uBPF's older vectors
        return _int(text, line)
    raise line.fail(f"unknown label {text!r}")


def _call(line: _Line, here: int, labels: dict[str, int]) -> Insn:
    words = line.text.split()[1:]
    if len(words) == 1:
        words = [CALL_HELPER, *words]
    if len(words) != 2:
        raise line.fail("call takes a target: N, %rN, helper N, local LABEL or runtime N")
    mode, target = words
    call = op.BPF_JMP | op.BPF_CALL
    if mode == CALL_HELPER and target.startswith("%"):
        return Insn(call | op.BPF_X, _reg(target, line))
    if mode == CALL_HELPER:
        return Insn(call | op.BPF_K, 0, 0, 0, _imm32(target, line))
    if mode == CALL_LOCAL:
        return Insn(call, 0, op.BPF_PSEUDO_CALL, 0, _imm32(str(_target(target, here, labels, line)), line))
    if mode == CALL_RUNTIME:
        return Insn(call, 0, op.BPF_PSEUDO_KFUNC_CALL, 0, _imm32(target, line))
    raise line.fail(f"unknown call mode {mode!r} (helper, local or runtime)")


def _atomic(line: _Line, rest: str) -> Insn:
    """``lock [fetch] OP[32] [%rD+off], %rS``."""
    words = rest.split(None, 2)
    fetch = bool(words) and words[0] == "fetch"
    if fetch:
        words = words[1:]
    if not words:
        raise line.fail("lock takes an operation: add, and, or, xor, xchg or cmpxchg")
    name = words[0]
    wide = not name.endswith("32")
    base = name if wide else name[:-2]
    if base not in ATOMIC_OPS:
        raise line.fail(f"unknown atomic operation {name!r}")
    args = _operands(" ".join(words[1:]))
    if len(args) != 2:
        raise line.fail(f"lock {name} takes 2 operands, got {len(args)}")
    dst, off = _mem(args[0], line)
    imm = ATOMIC_OPS[base] | (op.BPF_FETCH if fetch or base in ALWAYS_FETCH else 0)
    size = op.BPF_DW if wide else op.BPF_W
    return Insn(op.BPF_STX | op.BPF_ATOMIC | size, dst, _reg(args[1], line), off, imm)


def _one(line: _Line, here: int, labels: dict[str, int]) -> list[Insn]:
    mnemonic, *more = line.text.split(None, 1)
    rest = more[0] if more else ""
    args = _operands(rest)

    def want(n: int) -> None:
        if len(args) != n:
            raise line.fail(f"{mnemonic} takes {n} operand(s), got {len(args)}")

    if mnemonic == "exit":
        want(0)
        return [Insn(op.BPF_JMP | op.BPF_EXIT)]
    if mnemonic == "call":
        return [_call(line, here, labels)]
    if mnemonic == "lock":
        return [_atomic(line, rest)]
    if mnemonic == "ja":
        want(1)
        return [Insn(op.BPF_JMP | op.BPF_JA, 0, 0, _s16(_target(args[0], here, labels, line), line), 0)]
    if mnemonic == "ja32":
        want(1)
        return [Insn(op.BPF_JMP32 | op.BPF_JA, 0, 0, 0, _imm32(str(_target(args[0], here, labels, line)), line))]
    if mnemonic == "lddw":
        want(2)
        value = _int(args[1], line)
        if not -(1 << 63) <= value < (1 << 64):
            raise line.fail(f"immediate {args[1]} does not fit in 64 bits")
        return list(ld_imm64(_reg(args[0], line), value))
    m = re.fullmatch(r"(le|be|bswap|swap)(\d+)", mnemonic)
    if m and int(m[2]) in BYTE_SWAP_WIDTHS:
        want(1)
        code = {"le": op.BPF_ALU | op.BPF_END | op.BPF_TO_LE,
                "be": op.BPF_ALU | op.BPF_END | op.BPF_TO_BE}.get(m[1], BSWAP)
        return [Insn(code, _reg(args[0], line), 0, 0, int(m[2]))]
    m = re.fullmatch(r"(neg)(32)?", mnemonic)
    if m:
        want(1)
        cls = op.BPF_ALU if m[2] else op.BPF_ALU64
        return [Insn(cls | op.BPF_NEG, _reg(args[0], line))]
    if mnemonic in MOVSX:
        want(2)
        cls, width = MOVSX[mnemonic]
        return [Insn(cls | op.BPF_MOV | op.BPF_X, _reg(args[0], line), _reg(args[1], line), width, 0)]
    m = re.fullmatch(r"(\w+?)(32)?", mnemonic)
    if m and m[1] in ALU_OPS:
        want(2)
        cls = op.BPF_ALU if m[2] else op.BPF_ALU64
        signed = 1 if m[1] in SIGNED_ALU else 0
        dst = _reg(args[0], line)
        if args[1].startswith("%"):
            return [Insn(cls | ALU_OPS[m[1]] | op.BPF_X, dst, _reg(args[1], line), signed, 0)]
        return [Insn(cls | ALU_OPS[m[1]] | op.BPF_K, dst, 0, signed, _imm32(args[1], line))]
    m = re.fullmatch(r"(j\w+?)(32)?", mnemonic)
    if m and m[1] in JMP_OPS:
        want(3)
        cls = op.BPF_JMP32 if m[2] else op.BPF_JMP
        dst = _reg(args[0], line)
        off = _s16(_target(args[2], here, labels, line), line)
        if args[1].startswith("%"):
            return [Insn(cls | JMP_OPS[m[1]] | op.BPF_X, dst, _reg(args[1], line), off, 0)]
        return [Insn(cls | JMP_OPS[m[1]] | op.BPF_K, dst, 0, off, _imm32(args[1], line))]
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
        return [Insn(op.BPF_ST | op.BPF_MEM | SIZES[m[2]], dst, 0, off, _imm32(args[1], line))]
    m = re.fullmatch(r"ld(abs|ind)(b|h|w|dw)", mnemonic)
    if m:
        if m[1] == "abs":
            want(1)
            return [Insn(op.BPF_LD | op.BPF_ABS | SIZES[m[2]], 0, 0, 0, _imm32(args[0], line))]
        want(2)
        return [Insn(op.BPF_LD | op.BPF_IND | SIZES[m[2]], 0, _reg(args[0], line), 0, _imm32(args[1], line))]
    raise line.fail(f"unknown instruction {mnemonic!r}")


def raw_words(insns) -> list[int]:
    """Each instruction as the 64-bit little-endian word the vectors' ``-- raw`` lists."""
    return [int.from_bytes(i.encode(), "little") for i in insns]
