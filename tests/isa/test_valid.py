"""Known opcodes, opcode by opcode against the running kernel, and decode/encode round trips."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpfnb.isa import Insn, decode, encode
from bpfnb.isa.valid import KNOWN_OPCODES, unknown_opcode
from bpfnb.program import Program


@pytest.mark.kernel
def test_every_opcode_is_known_exactly_when_the_kernel_knows_it():
    from bpfnb.kernel import load

    mismatches = []
    for code in range(256):
        second = (Insn(0),) if code == 0x18 else ()
        loaded = load(Program("op", (Insn(code), *second, Insn(0xB7), Insn(0x95))), log_level=1)
        kernel_says_unknown = loaded.error == f"unknown opcode {code:02x}"
        if kernel_says_unknown != (unknown_opcode(code) is not None):
            mismatches.append((f"{code:02x}", loaded.error))
    assert mismatches == []


def test_the_table():
    assert len(KNOWN_OPCODES) == 152
    assert unknown_opcode(0x8D) == "unknown opcode 8d"  # callx: not in 6.18
    assert unknown_opcode(0x06) is None  # gotol
    assert unknown_opcode(0xE5) is None  # may_goto
    assert unknown_opcode(0x99) == "unknown opcode 99"


@given(st.integers(0, 255), st.integers(0, 15), st.integers(0, 15),
       st.integers(-(1 << 15), (1 << 15) - 1), st.integers(-(1 << 31), (1 << 31) - 1))
def test_decode_encode_round_trip(code, dst, src, off, imm):
    insn = Insn(code, dst, src, off, imm)
    assert decode(encode([insn])) == (insn,)
    assert encode(decode(insn.encode())) == insn.encode()
