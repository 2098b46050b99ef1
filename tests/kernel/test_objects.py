"""Objects loaded with bpfnb.load go into the kernel with their maps; the
kernel's verdicts are the ones libbpf/bpftool get (tests/examples)."""

import pathlib

import pytest

import bpfnb
from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.kernel import load
from bpfnb.kernel.program import BPF_LOG_STATS
from bpfnb.program import Program

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "bpfnb/data/examples"


@pytest.mark.kernel
@pytest.mark.parametrize(("path", "error"), [
    (EXAMPLES / "count_protocols.bpf.o", None),
    (EXAMPLES / "count_protocols_nocheck.bpf.o", "R0 invalid mem access 'map_value_or_null'"),
    (EXAMPLES / "typecast_ok.bpf.o", None),
    (EXAMPLES / "typecast.bpf.o", "R1 invalid mem access 'scalar'"),
    (ROOT / "bpfnb/data/drops.bpf.o", None),
])
def test_objects_load_with_their_maps(path, error):
    prog = bpfnb.load(path).program()
    with load(prog, log_level=2) as loaded:
        assert loaded.error == error
        assert [m.name for m in loaded.maps] == [m.name for m in prog.maps]
        if error is None:
            assert all(m.fd is not None for m in loaded.maps)
    assert all(m.fd is None for m in loaded.maps)


@pytest.mark.kernel
def test_global_data_is_in_the_map_and_rodata_is_frozen():
    prog = bpfnb.load(ROOT / "bpfnb/data/drops.bpf.o").program()
    with load(prog, log_level=1) as loaded:
        rodata = loaded.map("drops.rodata")
        assert rodata.lookup(b"\0" * 4) == prog.maps[1].initial
        with pytest.raises(bpfnb.errors.KernelError, match="update failed"):
            rodata.update(b"\0" * 4, b"\1" * 20)  # frozen: user space may not write either


@pytest.mark.kernel
@pytest.mark.slow
def test_a_program_too_large_to_verify_is_a_rejection_not_an_exception():
    body = (Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_W, 0, 1, 0), Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 0, 0, 0, 1),
            Insn(op.BPF_JMP | op.BPF_JGT | op.BPF_K, 0, 0, -2, 0), Insn(op.BPF_JMP | op.BPF_EXIT))
    # the statistics level alone: the error and the figures without the 1M steps (at level 1
    # a 118 MB log, 9 s more; a log that outgrows its buffer: tests/kernel/test_log.py's loops)
    loaded = load(Program("big", body), log_level=BPF_LOG_STATS)
    assert not loaded.ok and loaded.error == "BPF program is too large. Processed 1000001 insn"
    assert loaded.kernel_log.processed == 1_000_001


FIXTURES = ROOT / "tests/fixtures"


@pytest.mark.kernel
@pytest.mark.parametrize("name", ["bpf2bpf", "globals", "kfree_skb", "raw_tp", "socket_filter", "xdp"])
def test_every_fixture_is_accepted_by_the_kernel(name):
    prog = bpfnb.load(FIXTURES / f"{name}.bpf.o").program()
    with load(prog, log_level=1) as loaded:
        assert loaded.ok, loaded.error


@pytest.mark.kernel
def test_fentry_is_refused_with_a_reason():
    prog = bpfnb.load(FIXTURES / "fentry.bpf.o").program()
    assert prog.attach_btf_id == prog.kernel_btf.find("tcp_connect", "func")
    with pytest.raises(bpfnb.errors.KernelError, match=r"fentry/tcp_connect: .*fentry/fexit/fmod_ret programs are "
                                                       r"not permitted on this kernel \(EPERM"):
        load(prog)
