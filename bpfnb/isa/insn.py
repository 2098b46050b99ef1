"""The instruction: one 8-byte slot, decoded and encoded bit-exactly.

Layout (RFC 9669, little-endian): ``code:8 | dst:4 src:4 | off:16 | imm:32``.
A 64-bit immediate load (``BPF_LD | BPF_IMM | BPF_DW``) takes two slots: the
first carries the low 32 bits in ``imm``, the second (``code == 0``) the high
32 bits. Programs are sequences of slots, so indices match the kernel's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import IsaError
from . import opcodes as op

_SLOT = struct.Struct("<BBhi")
_CLASS_MASK, _OP_MASK = 0x07, 0xF0  # the fields ``cls`` and ``op`` read
_ALU_CLASSES = frozenset((op.BPF_ALU, op.BPF_ALU64))
_JMP_CLASSES = frozenset((op.BPF_JMP, op.BPF_JMP32))
_CALL, _EXIT = op.BPF_CALL, op.BPF_EXIT
_LD_IMM64, _JMP_CALL = op.BPF_LD | op.BPF_IMM | op.BPF_DW, op.BPF_JMP | op.BPF_CALL


@dataclass(frozen=True, slots=True)
class Insn:
    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    @property
    def cls(self) -> int:
        return self.code & _CLASS_MASK

    @property
    def op(self) -> int:
        """The operation field of ALU and JMP codes (``BPF_ADD``, ``BPF_JEQ``, ``BPF_CALL``...)."""
        return self.code & _OP_MASK

    @property
    def mode(self) -> int:
        """The mode field of load and store codes (``BPF_MEM``, ``BPF_ATOMIC``...)."""
        return self.code & 0xE0

    @property
    def size(self) -> int:
        """The access width in bytes of a load or store (1, 2, 4, 8)."""
        return op.SIZE_BYTES[self.code & 0x18]

    @property
    def uses_src_reg(self) -> bool:
        """ALU/JMP with a register operand (``BPF_X``), not an immediate."""
        return bool(self.code & op.BPF_X)

    # the class and call tests below read ``code`` directly: the verifier's passes over
    # every instruction call them millions of times
    @property
    def is_alu_class(self) -> bool:
        return self.code & _CLASS_MASK in _ALU_CLASSES

    @property
    def is_jmp_class(self) -> bool:
        return self.code & _CLASS_MASK in _JMP_CLASSES

    @property
    def is_call(self) -> bool:
        code = self.code
        return code & _CLASS_MASK in _JMP_CLASSES and code & _OP_MASK == _CALL

    @property
    def is_pseudo_call(self) -> bool:
        """A bpf-to-bpf call (its target is ``imm`` slots after the next)."""
        return self.is_call and self.src == op.BPF_PSEUDO_CALL

    @property
    def is_helper_call(self) -> bool:
        return self.code == _JMP_CALL and self.src == 0

    @property
    def is_exit(self) -> bool:
        code = self.code
        return code & _CLASS_MASK in _JMP_CLASSES and code & _OP_MASK == _EXIT

    @property
    def is_ld_imm64(self) -> bool:
        return self.code == _LD_IMM64

    def encode(self) -> bytes:
        return _SLOT.pack(self.code, (self.src << 4) | self.dst, self.off, self.imm)

    @classmethod
    def decode(cls, data: bytes, offset: int = 0) -> Insn:
        code, regs, off, imm = _SLOT.unpack_from(data, offset)
        return cls(code, regs & 0x0F, regs >> 4, off, imm)

    def __str__(self) -> str:
        from .disasm import format_insn

        return format_insn(self)


def decode(data: bytes, *, where: str = "") -> tuple[Insn, ...]:
    """Decode little-endian instruction bytes into one ``Insn`` per 8-byte slot."""
    if len(data) % op.INSN_SIZE:
        at = f"{where}: " if where else ""
        raise IsaError(
            f"{at}{len(data)} bytes is not a whole number of 8-byte instructions"
        )
    return tuple(Insn.decode(data, i) for i in range(0, len(data), op.INSN_SIZE))


def encode(insns) -> bytes:
    """Encode instructions back to bytes (the exact inverse of :func:`decode`)."""
    return b"".join(i.encode() for i in insns)


def imm64(insns, index: int) -> int:
    """The unsigned 64-bit immediate of the LD_IMM64 starting at ``index``."""
    lo = insns[index].imm & 0xFFFFFFFF
    hi = insns[index + 1].imm & 0xFFFFFFFF
    return (hi << 32) | lo


def ld_imm64(dst: int, value: int, src: int = 0) -> tuple[Insn, Insn]:
    """The two slots of ``dst = value`` (64-bit immediate, pseudo kind ``src``)."""
    value &= 0xFFFFFFFFFFFFFFFF
    lo = value & 0xFFFFFFFF
    hi = value >> 32
    as_s32 = lambda v: v - (1 << 32) if v & 0x80000000 else v  # noqa: E731
    return (
        Insn(op.BPF_LD | op.BPF_IMM | op.BPF_DW, dst, src, 0, as_s32(lo)),
        Insn(0, 0, 0, 0, as_s32(hi)),
    )
