"""bpfnb's verifier against the kernel's verdicts and error lines kept in golden
files (hand-written programs by rule family, generated programs), and the golden
files against the running kernel where there is one."""

import pathlib
import random

import pytest

from bpfnb.verifier.randprog import random_program, wide_program

from . import golden
from .programs import CASES

RANDOM_SEED, RANDOM_COUNT = 4242, 300
WIDE_SEED, WIDE_COUNT = 1, 2000
# measured against Linux 6.18: the error lines of the wide generator's programs that still differ
WIDE_ERRORS_DIFFERING = 7


def _random_programs() -> dict:
    rng = random.Random(RANDOM_SEED)
    return {f"random-{k}": random_program(rng) for k in range(RANDOM_COUNT)}


def _wide_programs() -> dict:
    rng = random.Random(WIDE_SEED)
    return {f"wide-{k}": wide_program(rng) for k in range(WIDE_COUNT)}


SETS = {
    "cases": lambda: {name: case.program(name) for name, case in CASES.items()},
    "random": _random_programs,
    "wide": _wide_programs,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_written_programs_get_the_kernels_verdict_and_error(name):
    expected = golden.read("cases")["programs"][name]
    assert golden.our_judgement(CASES[name].program(name)) == expected


def _judged(which: str) -> tuple[dict, dict, list[str]]:
    """bpfnb's judgements of a generated set, the kernel's stored ones, and the names of
    the programs the kernel rejects; every verdict must already be the kernel's."""
    expected = golden.read(which)["programs"]
    ours = {name: golden.our_judgement(prog) for name, prog in SETS[which]().items()}
    assert sum(ours[n]["verdict"] == expected[n]["verdict"] for n in ours) == len(ours) == len(expected)
    return ours, expected, [n for n in ours if expected[n]["verdict"] == "reject"]


def test_generated_programs_get_the_kernels_verdicts_and_error_lines():
    ours, expected, rejects = _judged("random")
    errors = sum(ours[n] == expected[n] for n in rejects)
    assert len(rejects) == 172 and errors == len(rejects)


def test_wide_generated_programs_get_the_kernels_verdicts_and_error_lines():
    ours, expected, rejects = _judged("wide")
    errors = sum(ours[n]["error"] == expected[n]["error"] for n in rejects)
    assert len(rejects) - errors <= WIDE_ERRORS_DIFFERING


ROOT = pathlib.Path(__file__).resolve().parents[2]
# fixtures whose programs' kernel verdicts, error lines and printed states are kept
STATE_FIXTURES = ("sock_contexts", "callbacks", "map_in_map", "static_programs", "struct_ops", "byte_swap")
# measured against Linux 6.18: printed register/slot values of those programs bpfnb prints alike
FIXTURE_STATES_SAME, FIXTURE_STATES_TOTAL = 636, 636


def _fixture_programs() -> dict:
    return {f"{name}/{prog.name}": prog for name in STATE_FIXTURES
            for prog in golden.load(ROOT / "tests" / "fixtures" / f"{name}.bpf.o")}


def test_fixture_programs_get_the_kernels_verdicts_errors_and_states():
    same, total = golden.fixture_agreement(_fixture_programs(), golden.read("fixtures")["programs"])
    assert total == FIXTURE_STATES_TOTAL and same >= FIXTURE_STATES_SAME


@pytest.mark.kernel
def test_fixture_golden_file_is_the_running_kernels():
    golden.require_kernel()
    live = {name: golden.kernel_judgement_with_states(prog) for name, prog in _fixture_programs().items()}
    golden.check_running_kernels("fixtures", live)


@pytest.mark.kernel
@pytest.mark.parametrize("which", sorted(SETS))
def test_golden_files_are_the_running_kernels(which):
    progs = SETS[which]()
    live = {name: golden.kernel_judgement(prog) for name, prog in progs.items()}
    golden.check_running_kernels(which, live)


# fixtures whose whole kernel log (level 2) is kept: source lines, calls of static
# functions (their BTF prototypes checked once), the liveness table (subprog_args); one
# program per family of log lines bpfnb once printed otherwise (log_lines: atomics,
# btf_prepare_func_args of the main program, SCC numbers and enter/exit lines, dead
# functions in "stack depth", helpers the type may not call, xskmap values, a helper's
# write over a spill, precision backtracked through a callback's exit and body);
# kfunc memory arguments checked twice (kfuncs); static functions left by a legacy packet
# load or a tail call, and a helper's memory of a size not known exactly (subprog_exits);
# global functions that may move the packet (global_pkt)
LOG_FIXTURES = ("subprog_args", "log_lines", "kfuncs", "subprog_exits", "global_pkt")


def _log_fixture_programs() -> dict:
    return {f"{name}/{prog.name}": prog for name in LOG_FIXTURES
            for prog in golden.load(ROOT / "tests" / "fixtures" / f"{name}.bpf.o")}


@pytest.mark.parametrize("name", sorted(_log_fixture_programs()))
def test_fixture_logs_are_the_kernels_line_by_line(name):
    from bpfnb.verifier import verify

    expected = golden.read("logs")["programs"][name]
    assert golden.comparable_log_lines(verify(_log_fixture_programs()[name], log_level=2).log) == expected


@pytest.mark.kernel
def test_log_golden_file_is_the_running_kernels():
    golden.require_kernel()
    live = {name: golden.kernel_log_lines(prog) for name, prog in _log_fixture_programs().items()}
    golden.check_running_kernels("logs", live)
