"""Walks replayed from the kernel's level-2 log (live, and from a saved text)."""

import pytest

from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.logtext import split_state
from bpfnb.program import Program
from bpfnb.widgets.adapters import walk_from_kernel, walk_from_log

from .test_stepper import INSNS


def test_split_state_keeps_spaces_inside_parentheses_and_drops_write_marks():
    state = split_state("R0_w=scalar(smin=0,var_off=(0x0; 0xff)) R1=ctx() R10=fp0 fp-8_w=mmmmmmmm")
    assert state == {"R0": "scalar(smin=0,var_off=(0x0; 0xff))", "R1": "ctx()", "R10": "fp0",
                     "fp-8": "mmmmmmmm"}


@pytest.mark.kernel
def test_the_kernels_walk_of_two_paths():
    walk = walk_from_kernel(Program("two_paths", INSNS))
    assert walk.source == "kernel" and walk.error is None
    assert [v.insn for v in walk.visits] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert walk.history(7) == [0, 1, 2, 3, 6, 7]
    assert walk.visits[6].note == "from 3 to 6"
    assert walk.before(6)["R0"].startswith("scalar(id=1,smin=umin=umin32=11")
    assert walk.visits[6].regs["R0"] == "0"
    assert walk.visits[4].stack["fp-8"].startswith("scalar(id=1,")
    # provenance in the kernel's walk: r1 at exit was filled from the spilled r0
    assert [(o.insn, o.how) for o in walk.origin(5, "R1")] == [
        (4, "filled from fp-8"), (2, "spilled from R0"), (1, "loaded from the context at +0")]


@pytest.mark.kernel
def test_a_helper_call_clobbers_the_argument_registers():
    insns = (Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 2, 0, 0, 7),
             Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, 7),  # bpf_get_prandom_u32
             Insn(op.BPF_JMP | op.BPF_EXIT))
    walk = walk_from_kernel(Program("clobber", insns))
    assert "R2" in walk.visits[0].regs and "R2" not in walk.visits[1].regs
    assert "R1" not in walk.visits[1].regs and walk.visits[1].regs["R0"].startswith("scalar(")


@pytest.mark.kernel
def test_a_rejection_ends_the_walk_with_the_error():
    insns = (Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 5),
             Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_DW, 0, 0, 0), Insn(op.BPF_JMP | op.BPF_EXIT))
    walk = walk_from_kernel(Program("bad", insns))
    assert walk.error == "R0 invalid mem access 'scalar'"
    assert walk.error_step == 1 and walk.visits[1].event == "error"


def test_pruned_paths_are_visits_marked_safe():
    log = ("0: R1=ctx() R10=fp0\n"
           "0: (b7) r0 = 0                        ; R0=0\n"
           "1: (25) if r0 > 0x5 goto pc+1         ; R0=0\n"
           "2: (95) exit\n"
           "from 1 to 3: R0=0 R1=ctx() R10=fp0\n"
           "3: safe\n"
           "processed 4 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0\n")
    insns = (Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K), Insn(op.BPF_JMP | op.BPF_JGT | op.BPF_K, 0, 0, 1, 5),
             Insn(op.BPF_JMP | op.BPF_EXIT), Insn(op.BPF_JMP | op.BPF_EXIT))
    walk = walk_from_log(Program("p", insns), log, ok=True)
    assert [(v.insn, v.prev, v.event) for v in walk.visits] == [
        (0, None, None), (1, 0, "branch"), (2, 1, "exit"), (3, 1, "pruned")]
    assert walk.error is None


@pytest.mark.kernel
def test_a_state_printed_before_the_next_insn_belongs_to_the_previous_visit():
    import bpfnb
    from bpfnb import examples

    walk = walk_from_kernel(bpfnb.load(examples.path("typecast_ok")).program())
    # "0: (79) r1 = *(u64 *)(r1 +0)" has no state; "1: R1=trusted_ptr_sk_buff()" follows
    assert walk.visits[0].regs["R1"] == "trusted_ptr_sk_buff()"
    assert walk.visits[0].regs["R10"] == "fp0"  # merged, not replaced
    assert walk.visits[1].regs["R1"] == "untrusted_ptr_net_device()"
