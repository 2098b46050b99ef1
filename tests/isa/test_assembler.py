"""The assembler of the conformance dialect: every form the uBPF and bpf_conformance
vectors use, encoded as RFC 9669 says, and bad text refused naming the line."""

import pytest

from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.isa.assembler import assemble, raw_words

STX_ATOMIC_DW = op.BPF_STX | op.BPF_ATOMIC | op.BPF_DW  # 0xdb
STX_ATOMIC_W = op.BPF_STX | op.BPF_ATOMIC | op.BPF_W  # 0xc3


@pytest.mark.parametrize(("text", "insn"), [
    ("sdiv32 %r1, %r2", Insn(op.BPF_ALU | op.BPF_DIV | op.BPF_X, 1, 2, 1, 0)),
    ("smod %r1, 3", Insn(op.BPF_ALU64 | op.BPF_MOD | op.BPF_K, 1, 0, 1, 3)),
    ("ldxsh %r0, [%r1+2]", Insn(op.BPF_LDX | op.BPF_MEMSX | op.BPF_H, 0, 1, 2, 0)),
    ("stdw [%r10-512], 456", Insn(op.BPF_ST | op.BPF_MEM | op.BPF_DW, 10, 0, -512, 456)),
    ("jslt32 %r1, -1, +3", Insn(op.BPF_JMP32 | op.BPF_JSLT | op.BPF_K, 1, 0, 3, -1)),
    ("be16 %r3", Insn(op.BPF_ALU | op.BPF_END | op.BPF_TO_BE, 3, 0, 0, 16)),
    ("le64 %r3", Insn(op.BPF_ALU | op.BPF_END | op.BPF_TO_LE, 3, 0, 0, 64)),
    ("ldabsh 12", Insn(op.BPF_LD | op.BPF_ABS | op.BPF_H, 0, 0, 0, 12)),
    ("mov32 %r0, 0x80000000", Insn(op.BPF_ALU | op.BPF_MOV | op.BPF_K, 0, 0, 0, -(1 << 31))),
    ("mov %r0, 0xffffffff", Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, -1)),
    ("mov %r0, -2147483648", Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, -(1 << 31))),
    ("mov %r0, 010", Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 10)),  # decimal, as the suite reads it
    # RFC 9669 cpu v4: the unconditional byte swap is ALU64 | END (0xd7), bswap and swap alike
    ("bswap16 %r0", Insn(0xD7, 0, 0, 0, 16)),
    ("bswap32 %r1", Insn(0xD7, 1, 0, 0, 32)),
    ("swap64 %r2", Insn(0xD7, 2, 0, 0, 64)),
    # sign-extending moves: off = the source width, class = the destination's
    ("movsx832 %r0, %r1", Insn(0xBC, 0, 1, 8, 0)),
    ("movsx1632 %r0, %r1", Insn(0xBC, 0, 1, 16, 0)),
    ("movsx864 %r0, %r1", Insn(0xBF, 0, 1, 8, 0)),
    ("movsx1664 %r0, %r1", Insn(0xBF, 0, 1, 16, 0)),
    ("movsx3264 %r0, %r1", Insn(0xBF, 0, 1, 32, 0)),
    # atomics: imm is the operation, BPF_FETCH for the fetching forms
    ("lock add [%r10-8], %r1", Insn(STX_ATOMIC_DW, 10, 1, -8, op.BPF_ADD)),
    ("lock add32 [%r10-4], %r1", Insn(STX_ATOMIC_W, 10, 1, -4, op.BPF_ADD)),
    ("lock and [%r10-8], %r1", Insn(STX_ATOMIC_DW, 10, 1, -8, op.BPF_AND)),
    ("lock or32 [%r2+16], %r3", Insn(STX_ATOMIC_W, 2, 3, 16, op.BPF_OR)),
    ("lock xor [%r10-8], %r1", Insn(STX_ATOMIC_DW, 10, 1, -8, op.BPF_XOR)),
    ("lock fetch add [%r10-8], %r1", Insn(STX_ATOMIC_DW, 10, 1, -8, op.BPF_ADD | op.BPF_FETCH)),
    ("lock fetch and32 [%r10-8], %r1", Insn(STX_ATOMIC_W, 10, 1, -8, 0x51)),
    ("lock fetch or [%r10-8], %r1", Insn(STX_ATOMIC_DW, 10, 1, -8, 0x41)),
    ("lock fetch xor32 [%r10-8], %r1", Insn(STX_ATOMIC_W, 10, 1, -8, 0xA1)),
    ("lock xchg [%r10-8], %r1", Insn(STX_ATOMIC_DW, 10, 1, -8, 0xE1)),
    ("lock xchg32 [%r10-8], %r1", Insn(STX_ATOMIC_W, 10, 1, -8, 0xE1)),
    ("lock cmpxchg [%r10-8], %r1", Insn(STX_ATOMIC_DW, 10, 1, -8, 0xF1)),
    ("lock cmpxchg32 [%r10-8], %r1", Insn(STX_ATOMIC_W, 10, 1, -8, 0xF1)),
    # calls: a helper by id, callx (the register in dst), a kfunc (src 2)
    ("call 5", Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, 5)),
    ("call helper 0x6", Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, 6)),
    ("call %r2", Insn(0x8D, 2, 0, 0, 0)),
    ("call helper %r3", Insn(0x8D, 3, 0, 0, 0)),
    ("call runtime 7", Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_KFUNC_CALL, 0, 7)),
    ("call local -1", Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_CALL, 0, -1)),
    ("ja32 +5", Insn(op.BPF_JMP32 | op.BPF_JA, 0, 0, 0, 5)),
])
def test_forms(text, insn):
    assert assemble(text) == (insn,)


def test_labels_and_local_calls():
    insns = assemble("mov %r1, 1\ncall local f  # comment\nexit\nf:\nsub %r2, 1\njne %r2, 0, f\nexit")
    assert insns[1] == Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_CALL, 0, 1)
    assert insns[4] == Insn(op.BPF_JMP | op.BPF_JNE | op.BPF_K, 2, 0, -2, 0)


def test_the_first_exit_is_a_label():
    insns = assemble("jne %r0, 0, exit\nlddw %r0, 1\nexit\nmov %r0, 2\nexit")
    assert insns[0].off == 2  # over the two slots of lddw to the first exit (slot 3)
    # a label the program defines itself wins
    insns = assemble("ja exit\nexit\nexit:\nmov %r0, 2\nexit")
    assert insns[0].off == 1


def test_labels_named_like_mnemonics_and_ja32_to_a_label():
    insns = assemble("ja32 add\nmov %r0, 1\nadd:\nadd %r0, 1\nja mov\nmov: exit")
    assert insns[0] == Insn(op.BPF_JMP32 | op.BPF_JA, 0, 0, 0, 1)  # the offset lives in imm
    assert insns[2] == Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 0, 0, 0, 1)
    assert insns[3] == Insn(op.BPF_JMP | op.BPF_JA, 0, 0, 0, 0)
    assert insns[4] == Insn(op.BPF_JMP | op.BPF_EXIT)


def test_lddw_takes_64_bits_in_hex_and_negative_decimals():
    hi, lo = assemble("lddw %r1, 0xfedcba9876543210")
    assert (lo.imm & 0xFFFFFFFF, hi.imm & 0xFFFFFFFF) == (0xFEDCBA98, 0x76543210)
    hi, lo = assemble("lddw %r1, -2")
    assert (hi.imm, lo.imm) == (-2, -1)


@pytest.mark.parametrize(("text", "words"), [
    ("bogus %r1", "line 1: unknown instruction 'bogus'"),
    ("ldxq %r0, %r1", "line 1: unknown instruction 'ldxq'"),
    ("mov %r1", "line 1: mov takes 2 operand"),
    ("lddw %r0", "line 1: lddw takes 2 operand"),
    ("ja nowhere", "line 1: unknown label 'nowhere'"),
    ("ldxw %r1, %r2", "not a memory operand"),
    ("ldxb %r0, [%r1+0x10000]", "offset 65536 does not fit in 16 bits"),
    ("mov %r16, 1", "not a register"),
    ("or %r0, %r50", "not a register"),
    ("\n\nmov %r1, 0x1ffffffff", "line 3: immediate 0x1ffffffff does not fit in 32 bits"),
    ("mov32 %r0, 0x100000000", "immediate 0x100000000 does not fit in 32 bits"),
    ("mov32 %r0, 2147483648", "immediate 2147483648 does not fit in 32 bits"),
    ("lock", "lock takes an operation"),
    ("lock or [%r10-8]", "lock or takes 2 operands, got 1"),
    ("lock nand [%r10-8], %r1", "unknown atomic operation 'nand'"),
    ("call", "call takes a target"),
    ("call far 3", "unknown call mode 'far'"),
    ("bswap24 %r0", "unknown instruction 'bswap24'"),
    ("a:\na:\nexit", "line 2: label 'a' defined twice"),
])
def test_errors_name_the_line(text, words):
    with pytest.raises(Exception, match=words.replace("(", r"\(").replace(")", r"\)")) as info:
        assemble(text)
    assert type(info.value).__name__ == "IsaError"


def test_every_vector_assembles_and_its_raw_section_is_what_it_encodes(conformance_dir):
    from bpfnb.conformance import vectors

    all_vectors = vectors(conformance_dir)
    assembled = [v for v in all_vectors if v.asm is not None and not any(" @ " in k for k in v.sections)]
    assert len(assembled) >= 378  # 313 bpf_conformance + 65 uBPF, measured
    for v in assembled:
        assert v.insns(), v.path
    pairs = [v for v in assembled if v.raw is not None]
    assert len(pairs) >= 7
    for v in pairs:
        assert raw_words(assemble(v.asm)) == list(v.raw), v.path


def test_tabs_separate_like_spaces():
    assert assemble("mov\t%r0,\t1\nl1:\tja\tl1\nexit") == (
        Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 1), Insn(op.BPF_JMP | op.BPF_JA, 0, 0, -1, 0),
        Insn(op.BPF_JMP | op.BPF_EXIT))
