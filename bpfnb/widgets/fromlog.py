"""A program rebuilt from a verifier log alone, so a pasted log can be stepped
without its object (as bpfvv does).

The log prints each instruction it walked as ``N: (code) text``; at level 2
on recent kernels the ``Live regs before insn:`` table lists every
instruction of the program the same way. The opcode byte is printed, so the
other fields are found by asking bpfnb's own disassembler which fields print
exactly that text (one definition of the syntax: ``bpfnb.isa.disasm``).
``; text @ file.c:12`` lines become the program's source lines. Slots the log
never printed are recorded in ``meta["unknown_slots"]``.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import re

from ..errors import BpfnbError
from ..isa import Insn, ld_imm64
from ..isa import opcodes as op
from ..isa.disasm import format_insn
from ..program import LineInfo, Program

INSN = re.compile(r"^\s*(?P<insn>\d+): (?:[.0-9]{10} )?\((?P<code>[0-9a-f]{2})\) (?P<text>.*?)(?:\s+; .*)?$")
SOURCE = re.compile(r"^; (?P<text>.*?) @ (?P<file>\S+):(?P<line>\d+)$")
REGISTER = re.compile(r"\b[rw](\d+)\b")
NUMBER = re.compile(r"(?:(?<=pc)[+-]|(?<![\w])[+-]?)(?:0x[0-9a-f]+|\d+)")  # "pc-55" is -55
U32 = 1 << 32
# fields that only some encodings use: sdiv/smod (off 1), movsx (8/16/32), byte swaps (16/32/64)
ALU_OFFSETS = (0, 1, 8, 16, 32)
SWAP_WIDTHS = (16, 32, 64)
ATOMIC_OPS = (op.BPF_ADD, op.BPF_OR, op.BPF_AND, op.BPF_XOR)
ATOMIC_IMMS = (*ATOMIC_OPS, *(a | op.BPF_FETCH for a in ATOMIC_OPS), op.BPF_XCHG, op.BPF_CMPXCHG)
PLACEHOLDER = Insn(op.BPF_JMP | op.BPF_JA)  # a slot the log never printed


def read_log(text_or_path) -> str:
    """The log's text: ``text_or_path`` is the text itself or a file's path."""
    if isinstance(text_or_path, os.PathLike) or (
            isinstance(text_or_path, str) and "\n" not in text_or_path and len(text_or_path) < 4096
            and not INSN.match(text_or_path)):
        path = pathlib.Path(text_or_path)
        if not path.is_file():
            raise BpfnbError(f"{path}: no such verifier log file")
        return path.read_text(errors="replace")
    if isinstance(text_or_path, bytes):
        return text_or_path.decode(errors="replace")
    return str(text_or_path)


def _signed32(value: int) -> int:
    value &= U32 - 1
    return value - U32 if value >= U32 >> 1 else value


def _candidates(code: int, text: str):
    """Values to try for dst, src, off and imm, zero first where a field may be unused
    (the kernel's encoders leave unused fields zero)."""
    regs = list(dict.fromkeys(int(r) for r in REGISTER.findall(text)))
    nums = list(dict.fromkeys(int(n, 0) for n in NUMBER.findall(text)))
    imms = list(dict.fromkeys([0, *(_signed32(n) for n in nums)]))
    offs = list(dict.fromkeys([0, *(n for n in nums if -(1 << 15) <= n < (1 << 15))]))
    cls = code & 0x07
    if cls in (op.BPF_ALU, op.BPF_ALU64):
        return regs or [0], [0, *regs], ALU_OFFSETS, [*imms, *SWAP_WIDTHS]
    if cls == op.BPF_LDX:
        return regs, regs, offs, [0]
    if cls == op.BPF_ST:
        return regs, [0], offs, imms
    if cls == op.BPF_STX:
        return regs, regs, offs, [0, *ATOMIC_IMMS]
    # jumps and calls
    return [*regs, 0], [0, *regs, op.BPF_PSEUDO_CALL, op.BPF_PSEUDO_KFUNC_CALL], offs, imms


def decode_line(code: int, text: str) -> tuple[Insn, ...]:
    """The instruction (two slots for a 64-bit immediate) the log printed as ``(code) text``."""
    if code == op.BPF_LD | op.BPF_IMM | op.BPF_DW:
        dst = REGISTER.search(text)
        value = NUMBER.findall(text.split("=", 1)[-1])
        return ld_imm64(int(dst[1]) if dst else 0, int(value[0], 0) & ((1 << 64) - 1) if value else 0)
    wanted = f"({code:02x}) {text}"
    for dst, src, off, imm in itertools.product(*_candidates(code, text)):
        insn = Insn(code, dst, src, off, imm)
        if format_insn(insn) == wanted:
            return (insn,)
    if code == op.BPF_JMP | op.BPF_CALL:  # a kfunc or a helper this kernel names differently
        number = re.search(r"#(-?\d+)|pc([+-]\d+)", text)
        if number and number[2] is not None:
            return (Insn(code, 0, op.BPF_PSEUDO_CALL, 0, int(number[2])),)
        return (Insn(code, 0, op.BPF_PSEUDO_KFUNC_CALL if number else 0, 0, int(number[1]) if number else 0),)
    raise BpfnbError(f"verifier log: cannot read instruction ({code:02x}) {text!r}")


def program_from_log(text: str, *, name: str = "log", type: str = "socket_filter") -> Program:
    """The instructions (and source lines) a verifier log printed, as a ``Program``."""
    slots: dict[int, Insn] = {}
    lines: dict[int, LineInfo] = {}
    source: LineInfo | None = None
    for raw in text.splitlines():
        if m := SOURCE.match(raw):
            source = LineInfo(-1, m["file"], int(m["line"]), 0, m["text"])
            continue
        m = INSN.match(raw)
        if not m:
            continue
        index = int(m["insn"])
        if source is not None:
            lines.setdefault(index, LineInfo(index, source.file, source.line, 0, source.text))
            source = None
        if index in slots:
            continue
        try:
            decoded = decode_line(int(m["code"], 16), m["text"].rstrip())
        except BpfnbError as exc:
            raise BpfnbError(f"{exc} (log line {raw.strip()!r})") from None
        for k, insn in enumerate(decoded):
            slots[index + k] = insn
    if not slots:
        raise BpfnbError("no verifier-log instruction lines (\"N: (code) text\") in the text")
    count = max(slots) + 1
    unknown = frozenset(i for i in range(count) if i not in slots)
    insns = tuple(slots.get(i, PLACEHOLDER) for i in range(count))
    return Program(name, insns, type=type, line_info=tuple(lines[i] for i in sorted(lines)),
                   meta={"unknown_slots": unknown, "from_log": True})
