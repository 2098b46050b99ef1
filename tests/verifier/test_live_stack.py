"""The live stack analysis (``live_stack``) and the state comparison it feeds: a slot
nothing reads again stops mattering to pruning, as in Linux 6.18.

tests/fixtures/live_stack.bpf.o: ``pointer_on_one_path`` spills a pointer on one side
of a branch and never reads it after the join (the kernel prunes the other side
there: 34 instructions; with every slot compared the walk takes 46), ``callee_fills_caller``
has a subprogram write its caller's stack, ``dead_after_join`` joins two paths whose
map key differs."""

import os
import pathlib

import pytest

import bpfnb
from bpfnb.verifier import verify
from bpfnb.verifier.live_stack import LiveStack, compute_postorder, format_stack_mask
from bpfnb.verifier.prune import IdMap

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests/fixtures/live_stack.bpf.o"
# the running kernel's figures (Linux 6.18.44, log_level 2): processed insns, total_states
KERNEL_6_18 = {
    "dead_after_join": (41, 3),
    "callee_fills_caller": (39, 3),
    "pointer_on_one_path": (34, 3),
}
# Linux 6.18.44's live stack lines for pointer_on_one_path (its only update)
POINTER_LIVE_LINES = [
    "(0) frame 0 insn 26 +live -8 ",
    "(0) frame 0 insn 22 +live -8 ",
    "(0) frame 0 insn 21 +live -8,-16 ",
    "(0) frame 0 insn 13 +live -8 ",
    "(0) frame 0 insn 13 +written -16 ",
    "(0) frame 0 insn 12 +live -8 ",
    "(0) frame 0 insn 10 +live -8 ",
    "(0) frame 0 insn 8 +live -8 ",
    "(0) frame 0 insn 7 +live -8 ",
    "(0) frame 0 insn 2 +written -8 ",
    "(0) frame 0 insn 0 +written -8 ",
    "(0) live stack update done in 2 iterations",
]
LIVE_LINE_MARKS = (" +live ", " -live ", " +written ", " -written ", " live stack update done ")
# libbpf-tools programs whose walk became the kernel's with the live stack analysis
# (each walked more than the kernel before it: 243, 240, 528, 149 instructions)
CORPUS_EQUAL = {
    "klockstat.bpf.o": ("kprobe_mutex_unlock",),
    "runqslower.bpf.o": ("sched_switch", "handle_sched_switch"),
    "tcplife.bpf.o": ("inet_sock_set_state",),
    "biosnoop.bpf.o": ("block_rq_complete",),
}


def _program(name):
    return bpfnb.load(FIXTURE).program(name)


def _live_lines(log: str) -> list[str]:
    return [ln for ln in log.splitlines() if any(mark in ln for mark in LIVE_LINE_MARKS)]


@pytest.mark.parametrize("name", sorted(KERNEL_6_18))
def test_fixture_walks_are_the_kernels(name):
    result = verify(_program(name), log_level=1, trace=False)
    assert result.ok
    assert (result.processed, result.states) == KERNEL_6_18[name]


def test_live_stack_lines_are_the_kernels():
    assert _live_lines(verify(_program("pointer_on_one_path"), log_level=2).log) == POINTER_LIVE_LINES


def test_a_slot_read_after_the_join_still_counts(monkeypatch):
    """With every slot taken as live the spilled pointer blocks the prune; so the
    fixture measures the analysis."""
    monkeypatch.setattr(LiveStack, "slot_alive", lambda self, frameno, spi: True)
    assert verify(_program("pointer_on_one_path"), log_level=1, trace=False).processed == 46


def test_a_callee_writing_its_callers_stack_marks_the_callers_frame():
    log = verify(_program("callee_fills_caller"), log_level=2).log
    assert "(4,21) frame 0 insn 21 +written -8,-16 " in _live_lines(log)
    assert "(0) frame 0 insn 4 +written -8,-16 " in _live_lines(log)  # carried to the call


def test_postorder_takes_the_jump_before_the_fall_through():
    insns = _program("pointer_on_one_path").insns
    order = compute_postorder(insns, [0])[0]
    assert sorted(order) == sorted(set(order))
    assert order[-1] == 0  # the entry finishes last
    assert len(order) == sum(1 for i, insn in enumerate(insns) if not (i and insns[i - 1].is_ld_imm64))


def test_stack_masks_print_as_the_kernel_does():
    assert format_stack_mask(0b101) == "-8,-24"
    assert format_stack_mask(1 << 63) == "-512"
    assert format_stack_mask(0) == ""


def test_scalar_ids_map_one_to_one():
    idmap = IdMap(id_gen=10)
    assert idmap.check_scalar_ids(0, 7)  # an unlinked old scalar takes any current one
    assert idmap.check_scalar_ids(3, 0)  # linked in the old state, unlinked now: a fresh id
    assert not idmap.check_scalar_ids(3, 0)  # ... but a second one cannot share it
    idmap = IdMap(id_gen=10)
    assert idmap.check_ids(5, 9) and idmap.check_ids(5, 9)
    assert not idmap.check_ids(6, 9)  # 9 already stands for 5
    assert not idmap.check_ids(5, 0)


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(KERNEL_6_18))
def test_fixture_against_the_running_kernel(name):
    from bpfnb.kernel import load
    from bpfnb.verifier.agreement import printed_states

    prog = _program(name)
    with load(prog, log_level=2) as loaded:
        log = loaded.log
        processed = loaded.kernel_log.processed
    ours = verify(prog, log_level=2)
    assert ours.processed == processed
    assert _live_lines(ours.log) == _live_lines(log)
    theirs = printed_states(log)
    assert theirs <= printed_states(ours.log)


@pytest.mark.kernel
def test_corpus_programs_walk_as_the_kernel():
    from bpfnb.kernel import load
    from bpfnb.verifier.agreement import printed_states

    dirs = [pathlib.Path(d) for d in os.environ.get("BPFNB_CORPUS", "").split(os.pathsep) if d]
    found = {name: d / name for d in dirs for name in CORPUS_EQUAL if (d / name).is_file()}
    if not found:
        pytest.skip("set BPFNB_CORPUS to bcc's libbpf-tools objects (/work/scratch/corpora/libbpf-tools)")
    for obj, path in sorted(found.items()):
        for name in CORPUS_EQUAL[obj]:
            prog = bpfnb.load(path).program(name)
            with load(prog, log_level=2) as loaded:
                log = loaded.log
                processed = loaded.kernel_log.processed
            ours = verify(prog, log_level=2, trace=False)
            assert ours.processed == processed, f"{obj}:{name}"
            assert _live_lines(ours.log) == _live_lines(log), f"{obj}:{name}"
            assert printed_states(log) <= printed_states(ours.log), f"{obj}:{name}"
