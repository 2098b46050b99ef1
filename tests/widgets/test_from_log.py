"""A kernel verifier log stepped without its object (as bpfvv does), and with it."""

import pathlib

import pytest

from bpfnb.errors import BpfnbError
from bpfnb.widgets.fromlog import decode_line, program_from_log
from bpfnb.widgets.stepper import VerifierStepper

LOGS = pathlib.Path(__file__).parent / "logs"
LEVEL1 = pathlib.Path(__file__).parents[2] / "bpfnb" / "data" / "logs" / "count_protocols_nocheck.level1.log"
LEVEL2 = LOGS / "count_protocols_nocheck.level2.log"
ERROR = "R0 invalid mem access 'map_value_or_null'"


def _object_program():
    import bpfnb
    from bpfnb import examples

    return bpfnb.load(examples.path("count_protocols_nocheck")).program()


@pytest.mark.parametrize("log", [LEVEL1, LEVEL2], ids=["level1", "level2"])
def test_a_log_alone_rebuilds_the_program_it_walked(log):
    prog = program_from_log(log.read_text())
    ours = _object_program()
    assert len(prog.insns) == 26 if log is LEVEL1 else 28  # level 1 stops at the error (insn 25)
    for i, insn in enumerate(prog.insns):
        if ours.insns[i].is_ld_imm64 or ours.insns[i - 1].is_ld_imm64:
            continue  # the kernel printed the map's address, not the object's index
        assert insn == ours.insns[i], i
    assert [li.line for li in prog.line_info] == [16, 18, 19, 21, 22, 23, 28]


@pytest.mark.parametrize("log", [LEVEL1, LEVEL2], ids=["level1", "level2"])
def test_a_pasted_log_steps_to_its_error(log):
    s = VerifierStepper.from_log(log.read_text())
    assert s.walk.error.startswith(ERROR) and s.walk.source == "log"
    s.to_error.click()
    visit = s.walk.visits[s.step]
    assert visit.insn == 25 and "lock *(u64 *)(r0 +0) += r1" in s.panes.state
    assert "map_value_or_null(id=1,map=counts,ks=4,vs=8)" in s.panes.state
    assert "__sync_fetch_and_add(count, 1);" in s.panes.state  # the log's own source lines
    chain = s.select("R0")
    assert [s.walk.visits[k].insn for k in chain.defs] == [23, 21, 20, 19]  # lookup(map, &key)


def test_a_log_file_with_the_object_adds_btf_and_source():
    s = VerifierStepper.from_log(LEVEL2, _object_program())
    assert s.prog.btf is not None and s.walk.error.startswith(ERROR)
    s.show(s.walk.error_step)
    assert "count_protocols.bpf.c:28" in s.panes.state


def test_slots_the_log_never_printed_are_unknown():
    text = "0: R1=ctx() R10=fp0\n0: (b7) r0 = 0                    ; R0=0\n2: (95) exit\n"
    prog = program_from_log(text)
    assert prog.meta["unknown_slots"] == {1}
    s = VerifierStepper.from_log(text)
    assert "(not in the log)" in s.panes.cfg and len(s.walk) == 2


def test_decoding_finds_the_fields_the_text_prints():
    (jump,) = decode_line(0x55, "if r1 != 0x60 goto pc-55")
    assert (jump.dst, jump.off, jump.imm) == (1, -55, 0x60)
    (store,) = decode_line(0x7B, "*(u64 *)(r10 -24) = r2")
    assert (store.dst, store.src, store.off) == (10, 2, -24)
    (call,) = decode_line(0x85, "call bpf_probe_read_user#112")
    assert call.imm == 112 and call.src == 0


def test_text_without_instructions_is_refused_with_the_reason():
    with pytest.raises(BpfnbError, match="no verifier-log instruction lines"):
        program_from_log("processed 0 insns\n")
    with pytest.raises(BpfnbError, match="no such verifier log file"):
        VerifierStepper.from_log("/nonexistent/verifier.log")
