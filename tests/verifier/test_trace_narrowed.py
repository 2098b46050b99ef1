"""The trace compares, at each step, only what the instruction may have changed (its
registers, and the stack for loads and stores) when the step before it on its path
is the last one recorded; every other step compares every register and slot. The
narrowed comparison must record exactly the steps the full one does, on every kind
of program the verifier walks: if a rule starts changing more than its operands,
this test says where."""

import os
import pathlib
import random

import pytest

import bpfnb
from bpfnb.verifier import verify
from bpfnb.verifier.randprog import random_program, wide_program
from bpfnb.verifier.trace import Trace

from .programs import CASES

ROOT = pathlib.Path(__file__).resolve().parents[2]
OBJECTS = sorted((ROOT / "tests/fixtures").glob("*.bpf.o")) + sorted((ROOT / "bpfnb/data").glob("*.bpf.o"))
LOOPS = {"loops.bpf.o": ("alu_loop_1000", "stack_loop_1000")}  # the longer loops: the same steps again
SEED, GENERATED = 7, 150
# what the fixtures give at least (measured: 19 objects, 23,889 steps)
MIN_FIXTURE_OBJECTS, MIN_FIXTURE_STEPS = 19, 23_000
MIN_GENERATED_STEPS = 2_400  # the hand-written cases and generated programs (measured: 2,464)


def _steps(prog, monkeypatch, compare_all: bool) -> tuple[str, list]:
    monkeypatch.setattr(Trace, "COMPARE_ALL", compare_all)
    result = verify(prog, log_level=0, progress=False)
    return result.verdict, list(result.trace)


def _assert_same_steps(prog, monkeypatch) -> int:
    narrowed = _steps(prog, monkeypatch, False)
    full = _steps(prog, monkeypatch, True)
    assert narrowed[0] == full[0]
    differ = next((k for k, (a, b) in enumerate(zip(narrowed[1], full[1], strict=True)) if a != b), None)
    assert differ is None, f"{prog.name}: step {differ} differs: {narrowed[1][differ]} != {full[1][differ]}"
    return len(full[1])


def _programs(path: pathlib.Path) -> list:
    try:
        progs = list(bpfnb.load(path))
    except bpfnb.BpfnbError:
        return []
    keep = LOOPS.get(path.name)
    return [p for p in progs if keep is None or p.name in keep]


def test_fixture_steps_are_the_full_comparisons(monkeypatch):
    steps, verified = 0, set()
    for path in OBJECTS:
        for prog in _programs(path):
            try:
                steps += _assert_same_steps(prog, monkeypatch)
            except bpfnb.BpfnbError:  # a program of no type, or one bpfnb refuses: the same either way
                continue
            verified.add(path.name)
    assert len(verified) >= MIN_FIXTURE_OBJECTS and steps > MIN_FIXTURE_STEPS


def test_hand_written_and_generated_steps_are_the_full_comparisons(monkeypatch):
    rng = random.Random(SEED)
    progs = [CASES[name].program(name) for name in sorted(CASES)]
    progs += [random_program(rng) if k % 2 else wide_program(rng) for k in range(GENERATED)]
    steps = sum(_assert_same_steps(prog, monkeypatch) for prog in progs)
    assert steps >= MIN_GENERATED_STEPS


@pytest.mark.skipif(not os.environ.get("BPFNB_CORPUS"), reason="BPFNB_CORPUS (directories of objects) not set")
def test_corpus_steps_are_the_full_comparisons(monkeypatch):
    steps = 0
    for directory in os.environ["BPFNB_CORPUS"].split(os.pathsep):
        for path in sorted(pathlib.Path(directory).glob("*.o")) + sorted(pathlib.Path(directory).glob("*.elf")):
            for prog in _programs(path):
                try:
                    steps += _assert_same_steps(prog, monkeypatch)
                except bpfnb.BpfnbError:
                    continue
    assert steps
