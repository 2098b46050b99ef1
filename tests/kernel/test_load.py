"""Loading into the running kernel: verdicts, error lines and the growing log."""

import pytest

from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.kernel import load
from bpfnb.program import Program

EXIT = Insn(op.BPF_JMP | op.BPF_EXIT)
MOV0 = Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 0)


@pytest.mark.kernel
def test_accepts_a_trivial_program_and_hands_out_an_fd():
    with load(Program("ok", (MOV0, EXIT))) as loaded:
        assert loaded.ok and loaded.error is None
        assert loaded.fd is not None and loaded.fd > 2
        assert "processed 2 insns" in loaded.log
    assert loaded.fd is None


@pytest.mark.kernel
@pytest.mark.parametrize("log_level", [0, 1, 2])
def test_rejection_reads_r0_not_initialised(log_level):
    loaded = load(Program("bad", (EXIT,)), log_level=log_level)
    assert not loaded.ok
    if log_level:
        assert loaded.error == "R0 !read_ok"
        # level 2 adds the subprogram table and liveness before the walk
        first = "func#0 @0" if log_level == 2 else "0: R1=ctx() R10=fp0"
        assert loaded.log.startswith(first)
    else:
        assert loaded.log == ""


@pytest.mark.kernel
def test_log_grows_past_the_first_buffer():
    # 20000 register moves log about 70 bytes each at level 2: past 64 KiB
    body = tuple(Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 1 + i % 9, 0, 0, i) for i in range(20000))
    with load(Program("long", (*body, MOV0, EXIT)), log_level=2) as loaded:
        assert loaded.ok
        assert len(loaded.log) > 1 << 16
        assert "processed 20002 insns" in loaded.log
