"""Random programs walking the kernel BTF (``btfgen``), judged by bpfnb and by Linux
6.18: verdicts, first error lines and the register states the log prints.

Two generators: tp_btf programs (``random_btf_program``: typed context arguments and
the walks from them) and raw_tp programs (``random_raw_tp_program``: an untyped context
read at any size, typed pointers only from ``bpf_get_current_task_btf()``, walks,
helpers and kfuncs), both with injected defects.

``golden/btf_generated.json`` and ``golden/raw_tp_generated.json`` keep the programs
(instructions and section), the kernel's answers and the SHA-256 of the kernel BTF they
were generated from; the comparison runs wherever that BTF is readable (no root needed)
and skips, saying why, elsewhere. Regenerate on the kernel with root:

    BPFNB_UPDATE_GOLDEN=1 python -m pytest tests/verifier/test_btf_generated.py -m kernel
"""

import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bpfnb.btf import kernel_btf
from bpfnb.verifier import verify

from . import golden
from .btfgen import random_btf_program, random_raw_tp_program

COUNT = 150


@dataclass(frozen=True)
class Generated:
    seed: int
    make: Callable  # (rng, btf, name=) -> (program, defect)
    prefix: str  # program names: PREFIX<i>, golden keys PREFIX-<i>
    rejects: int  # of the stored programs: rejected ones
    states: int  # and printed values of the others


SETS = {
    "btf_generated": Generated(15, random_btf_program, "btfgen", 93, 474),
    "raw_tp_generated": Generated(18, random_raw_tp_program, "rawtpgen", 97, 634),
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_generated_programs_get_the_kernels_verdicts_errors_and_states(name):
    want = SETS[name]
    btf = golden.btf()
    got = golden.tally(golden.read_for_btf(name)["programs"].values(),
                       lambda entry: (verify(golden.program_of(entry, btf), log_level=2), entry["error"]))
    assert (got.verdicts, got.rejects, got.errors) == (COUNT, want.rejects, want.rejects)
    assert (got.same_states, got.total_states) == (want.states, want.states)


def test_generated_defects_are_rejected_with_the_kernels_reasons():
    """Each injected defect class shows up among the stored programs with its kernel message.

    Some injected defects land where the kernel accepts (e.g. an offset still inside
    the struct): those programs have no error and are left out here.
    """
    reasons = golden.defect_reasons(golden.read_for_btf("btf_generated")["programs"].values())
    assert any(e.startswith("access beyond struct task_struct at off ") for e in reasons["beyond"])
    assert "only read is supported" in reasons["store"]
    assert "func 'sched_switch' doesn't have 5-th argument" in reasons["ctx_off"]
    assert "R1 is of type task_struct but sock_common is expected" in reasons["wrong_struct"]
    assert "cannot access ptr member next with moff 0 in struct (anon) with off 0 size 1" in reasons["wrong_struct"]


def test_generated_raw_tp_defects_are_rejected_with_the_kernels_reasons():
    reasons = golden.defect_reasons(golden.read_for_btf("raw_tp_generated")["programs"].values())
    assert "R7 invalid mem access 'scalar'" in reasons["number_as_pointer"]
    assert "only read is supported" in reasons["store"]
    assert any(e.startswith("invalid bpf_context access off=96 size=") for e in reasons["ctx_off"])


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(SETS))
def test_golden_file_is_the_running_kernels(name):
    gen = SETS[name]
    btf = kernel_btf()
    rng = random.Random(gen.seed)
    live = {}
    for i in range(COUNT):
        prog, defect = gen.make(rng, btf, name=f"{gen.prefix}{i}")
        live[f"{gen.prefix}-{i}"] = {**golden.stored_program(prog), "defect": defect, **golden.kernel_answer(prog)}
    golden.check_running_kernels(name, live, seed=gen.seed)
