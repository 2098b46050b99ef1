"""Random fentry/fexit programs (``btfgen.random_fentry_program``) judged by bpfnb,
against what the kernel does with their tp_btf twins.

The kernel here refuses fentry loads (EPERM), so the comparable part is compared: each
fentry program reads a struct argument of a kernel function and walks from it with every
pointer NULL-checked before use; its twin reads the same struct from a tracepoint that
passes it (never NULL) and runs the same body, which the kernel loads. Trust is what
differs (a fentry argument is a plain ``ptr_``, a tp_btf one ``trusted_ptr_``; what walks
from them is ``ptr_``, or ``trusted_``/``rcu_``/``untrusted_``); with every pointer
checked the verdict does not depend on it. So bpfnb's fentry verdict must be the
kernel's verdict of the twin, its error line the twin's (function name and context
offset put back), and the register values the kernel prints for the twin, trust and
NULL-ness left out, must be among those bpfnb prints for the fentry program.

``golden/fentry_generated.json`` keeps the twins' kernel answers with the SHA-256 of the
kernel BTF they were generated from. Regenerate on the kernel with root:

    BPFNB_UPDATE_GOLDEN=1 python -m pytest tests/verifier/test_fentry_generated.py -m kernel
"""

import random
import re

import pytest

from bpfnb.btf import kernel_btf
from bpfnb.program import program
from bpfnb.verifier import verify

from . import golden
from .btfgen import fentry_targets, random_fentry_program

NAME = "fentry_generated"
SEED = 17
COUNT = 150
REJECTS, VALUES = 84, 575  # of the stored programs: rejected ones, and printed values of the others' twins
TRUST = re.compile(r"\b(?:trusted_|rcu_|untrusted_)(?=ptr_)|or_null_|\bid=\d+,?|(?<=ref_obj_id=)\d+")


def normalise_states(states: set[tuple]) -> set[tuple]:
    """The printed values with trust, NULL-ness and the numbers of ids left out
    (``rcu_ptr_or_null_sock(id=2)`` and ``ptr_sock()`` are both ``ptr_sock()``; a
    reference's id is one more in the twin when a field it read first, a trusted
    pointer's nullable one, took an id the fentry program's untrusted read did not)."""
    return {(insn, name, TRUST.sub("", value).replace(",)", ")")) for insn, name, value in states}


def normalise_error(error: str | None, twin, fentry) -> str | None:
    """The twin's error line as the fentry program's: its function name and context offset."""
    if error is None:
        return None
    error = error.replace(f"func '{twin.attach_name}'", f"func '{fentry.attach_name}'")
    twin_off, fentry_off = _ctx_offset(twin), _ctx_offset(fentry)
    return error.replace(f"offset {twin_off} ", f"offset {fentry_off} ").replace(f"off={twin_off} ",
                                                                                  f"off={fentry_off} ")


def _ctx_offset(prog) -> int:
    """The offset of the program's one context read (``r7 = *(u64 *)(r6 + off)``)."""
    return next(i.off for i in prog.insns if i.src == 6 and i.dst == 7)


def test_fentry_programs_get_their_twins_verdicts_errors_and_values():
    btf = golden.btf()

    def judge(entry):
        fentry = golden.program_of(entry, btf)
        twin = program(bytes.fromhex(entry["twin_insns"]), section=entry["twin_section"], kernel_btf=btf,
                       name=entry["name"])
        return verify(fentry, log_level=2), normalise_error(entry["error"], twin, fentry)

    got = golden.tally(golden.read_for_btf(NAME)["programs"].values(), judge, normalise_states)
    assert (got.verdicts, got.rejects, got.errors) == (COUNT, REJECTS, REJECTS)
    assert (got.same_states, got.total_states) == (VALUES, VALUES)


def test_generated_fentry_programs_cover_the_argument_positions_and_defects():
    entries = golden.read_for_btf(NAME)["programs"].values()
    assert {e["section"].split("/")[0] for e in entries} == {"fentry", "fexit"}
    assert len({e["arg"] for e in entries}) >= 3  # arguments after others, at their own offsets
    assert {e["defect"] for e in entries} >= {"", "beyond", "store", "ctx_off", "ptr_arith"}


@pytest.mark.kernel
def test_golden_file_is_the_running_kernels():
    btf = kernel_btf()
    rng = random.Random(SEED)
    targets = fentry_targets(btf)
    live = {}
    for i in range(COUNT):
        fentry, twin, target, defect = random_fentry_program(rng, btf, targets, name=f"fentrygen{i}")
        twin_stored = golden.stored_program(twin)
        live[f"fentrygen-{i}"] = {**golden.stored_program(fentry), "twin_section": twin_stored["section"],
                                  "twin_insns": twin_stored["insns"], "arg": target.arg, "defect": defect,
                                  **golden.kernel_answer(twin)}
    golden.check_running_kernels(NAME, live, seed=SEED)
