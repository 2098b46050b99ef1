"""The kernel's verifier log, parsed: on logs Linux printed for the fixtures."""

import pathlib

import pytest

import bpfnb
from bpfnb.kernel import load
from bpfnb.kernel.log import KernelLog, RegValue, parse_fields

ROOT = pathlib.Path(__file__).resolve().parents[2]
# loops.bpf.o's longer loops print these programs' lines again 4 and 16 times over (17 to
# 208 MB of log, 80 s of the kernel's printing); their figures are checked against the
# running kernel at log level 1 in tests/verifier/test_explored_states.py
LOOPS_AT_LEVEL_2 = ("alu_loop_1000", "stack_loop_1000")


def test_register_values():
    v = RegValue.parse("scalar(id=1,smin=smin32=0,smax=umax=smax32=umax32=10,var_off=(0x0; 0xf))")
    assert v.type == "scalar" and v.fields == {
        "id": 1, "smin": 0, "smin32": 0, "smax": 10, "umax": 10, "smax32": 10, "umax32": 10, "var_off": (0, 15)}
    assert RegValue.parse("trusted_ptr_sk_buff()").btf_type == "sk_buff"
    assert RegValue.parse("trusted_ptr_sk_buff()").type == "trusted_ptr_"
    assert RegValue.parse("ptr_or_null_sock(id=2)").type == "ptr_or_null_"
    assert RegValue.parse("map_ptr(map=events,ks=4,vs=4)").fields == {"map": "events", "ks": 4, "vs": 4}
    assert RegValue.parse("map_value_or_null(id=1,map=counts,ks=4,vs=8)").type == "map_value_or_null"
    assert RegValue.parse("P5").value == 5 and RegValue.parse("P5").precise
    assert RegValue.parse("-2").value == -2
    assert RegValue.parse("fp-16").fields == {"off": -16} and RegValue.parse("fp0").type == "fp"
    assert RegValue.parse("0000mmmm").type == "stack"
    assert RegValue.parse("pkt(r=14)").fields == {"r": 14}
    assert parse_fields("smin=-1,var_off=(0xff00; 0xff)") == {"smin": -1, "var_off": (0xFF00, 0xFF)}


@pytest.fixture(scope="module")
def tracer_log():
    with load(bpfnb.load(ROOT / "tests/fixtures/kfree_skb.bpf.o").program(), log_level=2) as loaded:
        return KernelLog(loaded.log)


@pytest.mark.kernel
def test_typed_pointers_of_the_tracer(tracer_log):
    log = tracer_log
    assert log.ok and log.processed == 50 and log.verification_time_us is not None
    skb = [ln for ln in log.lines if ln.kind in ("state", "insn") and "R1" in ln.state
           and ln.state["R1"].text == "trusted_ptr_sk_buff()"]
    assert skb, "R1=trusted_ptr_sk_buff() after reading ctx"
    dev_load = next(ln for ln in log.insn_lines() if ln.disasm == "r5 = *(u64 *)(r1 +16)")
    assert dev_load.state["R5"].text == "untrusted_ptr_net_device()"
    events = next(ln for ln in log.insn_lines() if "R2" in ln.state and ln.state["R2"].type == "map_ptr")
    assert events.state["R2"].fields == {"map": "events", "ks": 4, "vs": 4}
    assert any(ln.kind == "from" for ln in log.lines)
    assert any(ln.kind == "safe" for ln in log.lines)


@pytest.mark.kernel
def test_a_rejection_is_read_from_the_log():
    prog = bpfnb.load(ROOT / "bpfnb/data/examples/count_protocols_nocheck.bpf.o").program()
    with load(prog, log_level=2) as loaded:
        log = loaded.kernel_log
    assert log.error == "R0 invalid mem access 'map_value_or_null'"
    assert log.error_insn == 25 and log.insn_lines()[-1].disasm == "lock *(u64 *)(r0 +0) += r1"
    after_lookup = log.states_after(23)[0]["R0"]
    assert after_lookup.type == "map_value_or_null" and after_lookup.fields["map"] == "counts"


@pytest.mark.kernel
@pytest.mark.parametrize("path", sorted((ROOT / "tests/fixtures").glob("*.bpf.o")) +
                         sorted((ROOT / "bpfnb/data/examples").glob("*.bpf.o")), ids=lambda p: p.name)
def test_the_logs_verdict_is_the_syscalls(path):
    for prog in bpfnb.load(path).programs.values():
        if path.name == "loops.bpf.o" and prog.name not in LOOPS_AT_LEVEL_2:
            continue
        _check_the_logs_verdict(prog)


def _check_the_logs_verdict(prog):
    if prog.expected_attach_type == "trace_fentry" or prog.type == "lsm":
        return  # the kernel refuses fentry and LSM before its verifier runs (see test_objects.py, test_lsm.py)
    if prog.type == "unknown":
        return  # no type to load it with (see tests/elf/test_object_kinds.py)
    with load(prog, log_level=2) as loaded:
        log = KernelLog(loaded.log)
        assert log.ok == loaded.ok and log.error == loaded.error
        assert log.processed is not None and log.processed >= len(log.insn_lines()) // 2
