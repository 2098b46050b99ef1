"""Registers and stack slots each instruction reads and writes."""

from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.isa.effects import effects, stack_slot


def test_mov_register_copies_the_value():
    e = effects(Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 1, 6))
    assert e.reads == {"r6"} and e.writes == {"r1"} and e.copies == (("r1", "r6"),)
    sign_extending = effects(Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 1, 6, 8))
    assert sign_extending.copies == ()


def test_alu_reads_both_operands_and_neg_only_its_own():
    assert effects(Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_X, 2, 3)).reads == {"r2", "r3"}
    assert effects(Insn(op.BPF_ALU | op.BPF_ADD | op.BPF_K, 2, 0, 0, 5)).reads == {"r2"}
    assert effects(Insn(op.BPF_ALU64 | op.BPF_NEG, 4)).reads == {"r4"}


def test_spill_and_fill_go_through_the_named_slot():
    spill = effects(Insn(op.BPF_STX | op.BPF_MEM | op.BPF_DW, 10, 1, -16))
    assert spill.writes == {"fp-16"} and spill.copies == (("fp-16", "r1"),)
    fill = effects(Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_DW, 3, 10, -16))
    assert fill.reads == {"r10", "fp-16"} and fill.copies == (("r3", "fp-16"),)
    narrow = effects(Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_W, 3, 10, -12))
    assert narrow.reads == {"r10", "fp-16"} and narrow.copies == ()
    assert stack_slot(-1) == "fp-8" and stack_slot(-8) == "fp-8" and stack_slot(-9) == "fp-16"


def test_helper_call_reads_its_arguments_and_clobbers_r1_to_r5():
    e = effects(Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, 1), helper_args=2)
    assert e.reads == {"r1", "r2"}
    assert e.writes == {"r0", "r1", "r2", "r3", "r4", "r5"}


def test_atomics_and_branches_and_exit():
    fetch_add = Insn(op.BPF_STX | op.BPF_ATOMIC | op.BPF_DW, 1, 2, 0, op.BPF_ADD | op.BPF_FETCH)
    assert effects(fetch_add).writes == {"r2"}
    cmpxchg = Insn(op.BPF_STX | op.BPF_ATOMIC | op.BPF_DW, 1, 2, 0, op.BPF_CMPXCHG)
    assert effects(cmpxchg).reads == {"r0", "r1", "r2"} and effects(cmpxchg).writes == {"r0"}
    assert effects(Insn(op.BPF_JMP | op.BPF_JGT | op.BPF_X, 4, 3, 2)).reads == {"r4", "r3"}
    assert effects(Insn(op.BPF_JMP | op.BPF_EXIT)).reads == {"r0"}
    assert effects(Insn(op.BPF_LD | op.BPF_IMM | op.BPF_DW, 7)).writes == {"r7"}
