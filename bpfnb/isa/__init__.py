"""The BPF instruction set (RFC 9669): instructions, disassembly, assembly."""

from . import opcodes
from .insn import Insn, decode, encode, imm64, ld_imm64

__all__ = ["Insn", "decode", "encode", "imm64", "ld_imm64", "opcodes"]
