"""Random raw_tp programs (``btfgen.random_raw_tp_program``: an untyped context read at
any size, typed pointers only from ``bpf_get_current_task_btf()``, walks, helpers and
kfuncs, injected defects) judged by bpfnb and by Linux 6.18: verdicts, first error lines
and the register states the log prints.

``golden/raw_tp_generated.json`` keeps the programs and the kernel's answers with the
SHA-256 of the kernel BTF they were generated from. Regenerate on the kernel with root:

    BPFNB_UPDATE_GOLDEN=1 python -m pytest tests/verifier/test_raw_tp_generated.py -m kernel
"""

import random

import pytest

from bpfnb.btf import kernel_btf
from bpfnb.verifier import verify

from . import golden
from .btfgen import random_raw_tp_program

NAME = "raw_tp_generated"
SEED = 18
COUNT = 150
REJECTS, STATES = 97, 634  # of the stored programs: rejected ones, and printed values of the others


def test_generated_raw_tp_programs_get_the_kernels_verdicts_errors_and_states():
    btf = kernel_btf()
    got = golden.tally(golden.read_for_btf(NAME)["programs"].values(),
                       lambda entry: (verify(golden.program_of(entry, btf), log_level=2), entry["error"]))
    assert (got.verdicts, got.rejects, got.errors) == (COUNT, REJECTS, REJECTS)
    assert (got.same_states, got.total_states) == (STATES, STATES)


def test_generated_raw_tp_defects_are_rejected_with_the_kernels_reasons():
    reasons = golden.defect_reasons(golden.read_for_btf(NAME)["programs"].values())
    assert "R7 invalid mem access 'scalar'" in reasons["number_as_pointer"]
    assert "only read is supported" in reasons["store"]
    assert any(e.startswith("invalid bpf_context access off=96 size=") for e in reasons["ctx_off"])


@pytest.mark.kernel
def test_golden_file_is_the_running_kernels():
    btf = kernel_btf()
    rng = random.Random(SEED)
    live = {}
    for i in range(COUNT):
        prog, defect = random_raw_tp_program(rng, btf, name=f"rawtpgen{i}")
        live[f"rawtpgen-{i}"] = {**golden.stored_program(prog), "defect": defect, **golden.kernel_answer(prog)}
    golden.check_running_kernels(NAME, live, seed=SEED)
