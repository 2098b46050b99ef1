"""Random LSM programs (``btfgen.random_lsm_program``) judged by bpfnb, against what the
kernel does with their tp_btf twins.

The kernel here refuses LSM loads (EPERM, before its verifier runs), so the comparable
part is compared: each ``lsm/<hook>`` program reads a struct argument of the hook and
walks from it; its twin reads the same struct from a tracepoint that passes it (never
NULL) and runs the same body, which the kernel loads. Both contexts are trusted (the
hooks of objects being set up or torn down, whose arguments are not, are left out), and
every exit returns 0, which every hook takes: bpfnb's LSM verdict must be the kernel's
verdict of the twin, its error line the twin's (function name and context offset put
back), and the register values the kernel prints for the twin must be those bpfnb prints
for the LSM program, trust and ids included.

``golden/lsm_generated.json`` keeps the twins' kernel answers with the SHA-256 of the
kernel BTF they were generated from. Regenerate on the kernel with root:

    BPFNB_UPDATE_GOLDEN=1 python -m pytest tests/verifier/test_lsm_generated.py -m kernel
"""

import random

import pytest

from bpfnb.btf import kernel_btf
from bpfnb.program import program
from bpfnb.verifier import verify

from . import golden
from .btfgen import lsm_targets, random_lsm_program
from .test_fentry_generated import normalise_error

NAME = "lsm_generated"
SEED = 20
COUNT = 150
REJECTS, VALUES = 84, 534  # of the stored programs: rejected ones, and printed values of the others' twins


def test_lsm_programs_get_their_twins_verdicts_errors_and_values():
    btf = kernel_btf()

    def judge(entry):
        prog = golden.program_of(entry, btf)
        twin = program(bytes.fromhex(entry["twin_insns"]), section=entry["twin_section"], kernel_btf=btf,
                       name=entry["name"])
        return verify(prog, log_level=2), normalise_error(entry["error"], twin, prog)

    got = golden.tally(golden.read_for_btf(NAME)["programs"].values(), judge)
    assert (got.verdicts, got.rejects, got.errors) == (COUNT, REJECTS, REJECTS)
    assert (got.same_states, got.total_states) == (VALUES, VALUES)


def test_generated_lsm_programs_cover_hooks_structs_and_defects():
    entries = golden.read_for_btf(NAME)["programs"].values()
    assert len({e["section"] for e in entries}) >= 30
    assert {e["struct"] for e in entries} == {"file", "inode", "linux_binprm", "sk_buff", "sock", "task_struct"}
    assert {e["defect"] for e in entries} >= {"", "beyond", "store", "ptr_arith"}


@pytest.mark.kernel
def test_golden_file_is_the_running_kernels():
    btf = kernel_btf()
    rng = random.Random(SEED)
    targets = lsm_targets(btf)
    live = {}
    for i in range(COUNT):
        prog, twin, target, defect = random_lsm_program(rng, btf, targets, name=f"lsmgen{i}")
        twin_stored = golden.stored_program(twin)
        live[f"lsmgen-{i}"] = {**golden.stored_program(prog), "twin_section": twin_stored["section"],
                               "twin_insns": twin_stored["insns"], "struct": btf.type(target.struct_id).name,
                               "defect": defect, **golden.kernel_answer(twin)}
    golden.check_running_kernels(NAME, live, seed=SEED)
