"""Random tp_btf programs walking the kernel BTF (``btfgen``), judged by bpfnb and by
Linux 6.18: verdicts, first error lines and the register states the log prints.

``golden/btf_generated.json`` keeps the programs (instructions and section), the
kernel's answers and the SHA-256 of the kernel BTF they were generated from; the
comparison runs wherever that BTF is readable (no root needed) and skips, saying
why, elsewhere. Regenerate on the kernel with root:

    BPFNB_UPDATE_GOLDEN=1 python -m pytest tests/verifier/test_btf_generated.py -m kernel
"""

import random

import pytest

from bpfnb.btf import kernel_btf
from bpfnb.verifier import verify

from . import golden
from .btfgen import random_btf_program

NAME = "btf_generated"
SEED = 15
COUNT = 150
REJECTS, STATES = 93, 474  # of the stored programs: rejected ones, and printed values of the others


def test_generated_btf_walks_get_the_kernels_verdicts_errors_and_states():
    btf = kernel_btf()
    got = golden.tally(golden.read_for_btf(NAME)["programs"].values(),
                       lambda entry: (verify(golden.program_of(entry, btf), log_level=2), entry["error"]))
    assert (got.verdicts, got.rejects, got.errors) == (COUNT, REJECTS, REJECTS)
    assert (got.same_states, got.total_states) == (STATES, STATES)


def test_generated_defects_are_rejected_with_the_kernels_reasons():
    """Each injected defect class shows up among the stored programs with its kernel message.

    Some injected defects land where the kernel accepts (e.g. an offset still inside
    the struct): those programs have no error and are left out here.
    """
    reasons = golden.defect_reasons(golden.read_for_btf(NAME)["programs"].values())
    assert any(e.startswith("access beyond struct task_struct at off ") for e in reasons["beyond"])
    assert "only read is supported" in reasons["store"]
    assert "func 'sched_switch' doesn't have 5-th argument" in reasons["ctx_off"]
    assert "R1 is of type task_struct but sock_common is expected" in reasons["wrong_struct"]
    assert "cannot access ptr member next with moff 0 in struct (anon) with off 0 size 1" in reasons["wrong_struct"]


@pytest.mark.kernel
def test_golden_file_is_the_running_kernels():
    btf = kernel_btf()
    rng = random.Random(SEED)
    live = {}
    for i in range(COUNT):
        prog, defect = random_btf_program(rng, btf, name=f"btfgen{i}")
        live[f"btfgen-{i}"] = {**golden.stored_program(prog), "defect": defect, **golden.kernel_answer(prog)}
    golden.check_running_kernels(NAME, live, seed=SEED)
