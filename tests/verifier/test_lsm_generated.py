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

Sleepable programs (``lsm.s/``) walk differently (an RCU-protected member is untrusted
outside ``bpf_rcu_read_lock``), which no tp_btf program does; their twins are sleepable
task iterators (``iter.s/task``: the same body reading the task from the iterator's
context, NULL-checked first in both; half of them inside ``bpf_rcu_read_lock()``). The
iterator's task may be NULL, so it spends one id and its load's line differs: ids in the
twin's answers are one less here, and the states of the context load itself are left out;
everything else must be equal.

``golden/lsm_generated.json`` and ``golden/lsm_sleepable_generated.json`` keep the twins'
kernel answers with the SHA-256 of the kernel BTF they were generated from. Regenerate on
the kernel with root:

    BPFNB_UPDATE_GOLDEN=1 python -m pytest tests/verifier/test_lsm_generated.py -m kernel
"""

import random
import re

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


SLEEPABLE_NAME, SLEEPABLE_SEED = "lsm_sleepable_generated", 21
SLEEPABLE_REJECTS, SLEEPABLE_VALUES = 75, 685
CTX_LOAD_INSN = 1  # r7 = *(u64 *)(r6 + off): the argument's load
ID = re.compile(r"\b(id|ref_obj_id)=(\d+)")


def one_id_less(text: str | None) -> str | None:
    """The iterator twin's ids as the LSM program's (its maybe-NULL task took one more)."""
    return ID.sub(lambda m: f"{m[1]}={int(m[2]) - 1}", text) if text else text


def _past_ctx_load(states: set[tuple]) -> set[tuple]:
    return {(insn, name, one_id_less(value)) for insn, name, value in states if insn != CTX_LOAD_INSN}


def _without_ctx_load(states: set[tuple]) -> set[tuple]:
    return {s for s in states if s[0] != CTX_LOAD_INSN}


def _judge(btf, error_of):
    """``golden.tally``'s judge: bpfnb's result for the stored LSM program and the error line
    its twin's answer makes of it (``error_of(error, twin, prog)``)."""
    def judge(entry):
        prog = golden.program_of(entry, btf)
        twin = program(bytes.fromhex(entry["twin_insns"]), section=entry["twin_section"], kernel_btf=btf,
                       name=entry["name"])
        return verify(prog, log_level=2), error_of(entry["error"], twin, prog)

    return judge


def test_lsm_programs_get_their_twins_verdicts_errors_and_values():
    btf = golden.btf()
    got = golden.tally(golden.read_for_btf(NAME)["programs"].values(), _judge(btf, normalise_error))
    assert (got.verdicts, got.rejects, got.errors) == (COUNT, REJECTS, REJECTS)
    assert (got.same_states, got.total_states) == (VALUES, VALUES)


def test_sleepable_lsm_programs_get_their_iterator_twins_verdicts_errors_and_values():
    btf = golden.btf()
    entries = golden.read_for_btf(SLEEPABLE_NAME)["programs"].values()
    theirs = [{**e, "states": sorted(_past_ctx_load({tuple(s) for s in e["states"]}))} for e in entries]
    got = golden.tally(theirs, _judge(btf, lambda error, twin, prog: one_id_less(normalise_error(error, twin, prog))),
                       _without_ctx_load)
    assert (got.verdicts, got.rejects, got.errors) == (COUNT, SLEEPABLE_REJECTS, SLEEPABLE_REJECTS)
    assert (got.same_states, got.total_states) == (SLEEPABLE_VALUES, SLEEPABLE_VALUES)


def test_generated_lsm_programs_cover_hooks_structs_and_defects():
    entries = golden.read_for_btf(NAME)["programs"].values()
    assert len({e["section"] for e in entries}) >= 30
    assert {e["struct"] for e in entries} == {"file", "inode", "linux_binprm", "sk_buff", "sock", "task_struct"}
    assert {e["defect"] for e in entries} >= {"", "beyond", "store", "ptr_arith"}


def _live(btf, seed: int, sleepable: bool) -> dict:
    """The generated programs and their twins' answers from the running kernel."""
    rng = random.Random(seed)
    targets = lsm_targets(btf, sleepable=sleepable)
    stem = "lsmsgen" if sleepable else "lsmgen"
    live = {}
    for i in range(COUNT):
        prog, twin, target, defect = random_lsm_program(rng, btf, targets, sleepable=sleepable, name=f"{stem}{i}")
        twin_stored = golden.stored_program(twin)
        live[f"{stem}-{i}"] = {
            **golden.stored_program(prog), "twin_section": twin_stored["section"], "twin_insns": twin_stored["insns"],
            "struct": btf.type(target.struct_id).name, "defect": defect, **golden.kernel_answer(twin)}
    return live


@pytest.mark.kernel
def test_golden_file_is_the_running_kernels():
    golden.check_running_kernels(NAME, _live(kernel_btf(), SEED, sleepable=False), seed=SEED)


@pytest.mark.kernel
def test_sleepable_golden_file_is_the_running_kernels():
    golden.check_running_kernels(SLEEPABLE_NAME, _live(kernel_btf(), SLEEPABLE_SEED, sleepable=True),
                                 seed=SLEEPABLE_SEED)
