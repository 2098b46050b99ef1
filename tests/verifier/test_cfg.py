"""The passes before the walk (``cfg``, ``liveness``, ``prune_points``): their one-pass
forms against the definitions they stand for, and the liveness computed only once the
walk compares states."""

from __future__ import annotations

import pathlib
import random

import pytest

import bpfnb
from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.isa.flow import all_successors, function_starts, jump_target, successors
from bpfnb.verifier.check import VerifierEnv, bpf_check
from bpfnb.verifier.liveness import call_params, compute_live_registers
from bpfnb.verifier.randprog import random_program, wide_program

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "tests/fixtures").glob("*.bpf.o"))
GENERATED = 60


def _programs():
    progs = [prog for path in FIXTURES for prog in bpfnb.load(path)]
    rng = random.Random(18)
    return progs + [random_program(rng) if k % 2 else wide_program(rng) for k in range(GENERATED)]


PROGRAMS = _programs()


def test_all_successors_are_each_slots_successors():
    compared = 0
    for prog in PROGRAMS:
        insns = prog.insns
        assert all_successors(insns) == tuple(successors(insns, i) for i in range(len(insns))), prog.name
        compared += len(insns)
    assert compared > 1000


def test_function_starts_are_the_call_and_callback_targets():
    # a call at 0 to 3, a callback's address at 1 (-> 5), exits
    insns = (Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_CALL, 0, 2),
             Insn(op.BPF_LD | op.BPF_IMM | op.BPF_DW, 1, op.BPF_PSEUDO_FUNC, 0, 3), Insn(0),
             Insn(op.BPF_JMP | op.BPF_EXIT), Insn(op.BPF_JMP | op.BPF_EXIT), Insn(op.BPF_JMP | op.BPF_EXIT))
    assert jump_target(insns[0], 0) == 3
    assert function_starts(insns) == [0, 3]
    assert function_starts(insns, callbacks=True) == [0, 3, 5]


@pytest.mark.parametrize("level", [0, 2])
def test_liveness_is_computed_when_states_are_first_compared(level):
    # r0 = 0; exit: no prune point holds a kept state, nothing is compared
    insns = [Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0), Insn(op.BPF_JMP | op.BPF_EXIT)]
    straight = bpfnb.program(b"".join(insn.encode() for insn in insns), type="socket_filter")
    env = VerifierEnv(straight, log_level=level, record_states=False)
    bpf_check(env)
    assert env.error is None
    # the log's liveness table (level 2) needs it; nothing else does here
    assert (env._liveness is not None) == (level == 2)


def test_liveness_of_a_walk_that_compares_states_is_the_programs():
    prog = next(p for p in bpfnb.load(ROOT / "tests/fixtures/xdp.bpf.o"))
    env = VerifierEnv(prog, log_level=0, record_states=False)
    bpf_check(env)
    assert env.explored.total_states > 0
    assert env._liveness is compute_live_registers(prog.insns, call_params(prog))
