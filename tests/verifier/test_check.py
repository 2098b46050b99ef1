"""The walk itself: internal errors are not verdicts, and the timing the log prints."""

import re
import time

import pytest

from bpfnb.errors import InternalError
from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.program import Program
from bpfnb.verifier import check, verify

MOV_R0_0 = Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 0)
ADD_R0_1 = Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 0, 0, 0, 1)
EXIT = Insn(op.BPF_JMP | op.BPF_EXIT)
READ_R2 = Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 0, 2)


def test_a_python_exception_inside_the_verifier_is_an_internal_error_naming_the_insn(monkeypatch):
    def broken(env, state, insn):
        if insn.op == op.BPF_ADD:
            raise KeyError("boom")

    monkeypatch.setattr(check, "check_alu_op", broken)
    with pytest.raises(InternalError) as info:
        verify(Program("internal", (MOV_R0_0, ADD_R0_1, EXIT)))
    assert info.value.insn == 1
    assert str(info.value) == "bpfnb internal error at insn 1: KeyError: 'boom'"


@pytest.mark.parametrize("level", [1, 2])
@pytest.mark.parametrize("insns", [(MOV_R0_0, EXIT), (READ_R2, EXIT)], ids=["accept", "reject"])
def test_verification_time_is_this_runs_and_matches_the_log(insns, level):
    before = time.perf_counter()
    result = verify(Program("timed", insns), log_level=level)
    wall_us = (time.perf_counter() - before) * 1e6
    printed = int(re.search(r"verification time (\d+) usec", result.log)[1])
    assert printed == result.time_us
    # a duration inside this call, not a clock reading (a start time overwritten once gave ~7e8)
    assert 0 <= result.time_us <= wall_us


def test_the_liveness_table_widens_its_index_past_999_as_the_kernels():
    """The kernel prints ``"%3d: "`` after a four-space indent (checked on Katran's
    balancer_ingress on Linux 6.18: ``    998:`` then ``    1000:``)."""
    insns = (MOV_R0_0,) * 1000 + (ADD_R0_1, EXIT)
    lines = verify(Program("long", insns), log_level=2).log.splitlines()
    assert "      0: 0......... (b7) r0 = 0" not in lines  # r0 is not live before its first write
    assert "      0: .......... (b7) r0 = 0" in lines
    assert "    999: .......... (b7) r0 = 0" in lines
    assert "    1000: 0......... (07) r0 += 1" in lines
