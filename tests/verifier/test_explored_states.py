"""State pruning at size: the bounded loops of tests/fixtures/loops.bpf.o walk every
iteration; the processed count and the kept states must be the kernel's (its
list per instruction, the loop heuristic and the miss/hit eviction), and the
columnar trace must give back every step exactly."""

import pathlib

import pytest

import bpfnb
from bpfnb.verifier import verify
from bpfnb.verifier.trace import SNAPSHOT_EVERY

ROOT = pathlib.Path(__file__).resolve().parents[2]
LOOPS = ROOT / "tests/fixtures/loops.bpf.o"
# the running kernel's log (Linux 6.18.44, log_level 1): processed insns,
# max_states_per_insn, total_states, peak_states
KERNEL_6_18 = {
    "alu_loop_1000": (9003, 4, 102, 102),
    "alu_loop_4000": (36003, 4, 402, 402),
    "alu_loop_16000": (144003, 4, 1602, 1602),
    "stack_loop_1000": (14020, 4, 135, 135),
    "stack_loop_4000": (56020, 4, 535, 535),
    "stack_loop_16000": (224020, 4, 2135, 2135),
}
# bytes the columnar trace keeps per step on these loops (measured: 45 and 53)
TRACE_BYTES_PER_STEP = 56


def _figures(result) -> tuple[int, int, int, int]:
    line = next(ln for ln in result.log.splitlines() if ln.startswith("processed "))
    words = line.split()
    return (result.processed, int(words[words.index("max_states_per_insn") + 1]), result.states,
            result.peak_states)


def _program(name):
    return bpfnb.load(LOOPS).program(name)


LONG = ("alu_loop_4000", "stack_loop_4000", "alu_loop_16000", "stack_loop_16000")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in LONG else n for n in KERNEL_6_18])
def test_loop_figures_are_the_kernels(name):
    # log level 0: the figures alone (level 1 also formats every step: a sixth more time)
    result = verify(_program(name), log_level=0, trace=False)
    assert result.ok
    assert _figures(result) == KERNEL_6_18[name]


@pytest.mark.kernel
@pytest.mark.parametrize("name", ["alu_loop_1000", "stack_loop_1000", "alu_loop_4000", "stack_loop_4000"])
def test_loop_figures_against_the_running_kernel(name):
    """The table above is the running kernel's (bpfnb's figures are checked against it
    above). Log level 1 keeps the log to its last lines (level 2 prints every step: 51 MB
    for stack_loop_4000); the 16000-iteration loops, 10 s more of the kernel's walk for
    the same loops again, keep the figures measured once."""
    from bpfnb.kernel import load

    with load(_program(name), log_level=1) as loaded:
        log = loaded.kernel_log
        kernel = (log.processed, log.max_states_per_insn, log.total_states, log.peak_states)
    assert loaded.ok and kernel == KERNEL_6_18[name]


def test_the_trace_reads_back_every_step():
    result = verify(_program("stack_loop_1000"), log_level=0)
    trace = result.trace
    assert len(trace) == result.processed
    walked = list(trace)
    assert [s.step for s in walked] == list(range(len(trace)))
    # random access (from a snapshot, or onwards from the last step read) gives the same steps
    for k in (0, 1, SNAPSHOT_EVERY - 1, SNAPSHOT_EVERY, 5 * SNAPSHOT_EVERY + 7, len(trace) - 1, 3, 2):
        assert trace[k] == walked[k]
    assert trace[-1] == walked[-1]
    # the array's slots hold spilled scalars after the loop, the last store in fp-72
    assert len(walked[-1].stack) == 16 and walked[-1].stack["fp-72"] == walked[-1].regs["R3"]
    assert walked[0].regs == {"R1": "ctx()", "R2": "0", "R10": "fp0"}
    assert trace.nbytes() <= TRACE_BYTES_PER_STEP * len(trace)


def test_a_trace_is_the_same_with_or_without_recording():
    prog = _program("alu_loop_1000")
    full, bare = verify(prog, log_level=2), verify(prog, log_level=2, trace=False)
    assert (full.ok, full.processed, full.states, full.peak_states) == \
        (bare.ok, bare.processed, bare.states, bare.peak_states)
    assert len(bare.trace) == 0 and len(full.trace) == full.processed
