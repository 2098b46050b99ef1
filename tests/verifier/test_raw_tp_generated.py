"""Random raw_tp programs (``btfgen.random_raw_tp_program``: an untyped context read at
any size, typed pointers only from ``bpf_get_current_task_btf()``, walks, helpers and
kfuncs, injected defects) judged by bpfnb and by Linux 6.18: verdicts, first error lines
and the register states the log prints.

``golden/raw_tp_generated.json`` keeps the programs and the kernel's answers with the
SHA-256 of the kernel BTF they were generated from. Regenerate on the kernel with root:

    BPFNB_UPDATE_GOLDEN=1 python -m pytest tests/verifier/test_raw_tp_generated.py -m kernel
"""

import json
import os
import random

import pytest

from bpfnb.btf import kernel_btf
from bpfnb.isa.insn import encode
from bpfnb.verifier import verify

from . import golden
from .btfgen import random_raw_tp_program
from .test_btf_generated import _btf_digest, _program, _states

NAME = "raw_tp_generated"
SEED = 18
COUNT = 150
REJECTS, STATES = 97, 634  # of the stored programs: rejected ones, and printed values of the others


def _stored():
    data = golden.read(NAME)
    if _btf_digest() != data["btf_sha256"]:
        pytest.skip(f"golden/{NAME}.json walks the BTF of kernel {data['kernel']}; this machine's is another "
                    "(or unreadable)")
    return data


def test_generated_raw_tp_programs_get_the_kernels_verdicts_errors_and_states():
    data = _stored()
    btf = kernel_btf()
    verdicts = errors = rejects = same = total = 0
    for entry in data["programs"].values():
        ours = verify(_program(entry, btf), log_level=2)
        verdicts += ours.ok == (entry["verdict"] == "accept")
        if entry["verdict"] == "reject":
            rejects += 1
            errors += ours.error == entry["error"]
        elif ours.ok:
            theirs = {tuple(s) for s in entry["states"]}
            total += len(theirs)
            same += len(theirs & {tuple(s) for s in _states(ours.log)})
    assert (verdicts, rejects, errors) == (COUNT, REJECTS, REJECTS)
    assert (same, total) == (STATES, STATES)


def test_generated_raw_tp_defects_are_rejected_with_the_kernels_reasons():
    reasons = {}
    for entry in _stored()["programs"].values():
        if entry["error"] is not None:
            reasons.setdefault(entry["defect"], set()).add(entry["error"])
    assert "R7 invalid mem access 'scalar'" in reasons["number_as_pointer"]
    assert "only read is supported" in reasons["store"]
    assert any(e.startswith("invalid bpf_context access off=96 size=") for e in reasons["ctx_off"])


@pytest.mark.kernel
def test_golden_file_is_the_running_kernels():
    from bpfnb.kernel import load

    btf = kernel_btf()
    rng = random.Random(SEED)
    live = {}
    for i in range(COUNT):
        prog, defect = random_raw_tp_program(rng, btf, name=f"rawtpgen{i}")
        with load(prog, log_level=2) as loaded:
            ok, error, log = loaded.ok, loaded.error, loaded.log
        live[f"rawtpgen-{i}"] = {"name": prog.name, "section": prog.section, "defect": defect,
                                 "insns": encode(prog.insns).hex(), "verdict": "accept" if ok else "reject",
                                 "error": None if ok else error, "states": _states(log) if ok else []}
    if golden.UPDATE:
        data = {"kernel": os.uname().release, "btf_sha256": _btf_digest(), "seed": SEED, "programs": live}
        (golden.GOLDEN / f"{NAME}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    stored = golden.read(NAME)
    if stored["kernel"] != os.uname().release:
        pytest.skip(f"golden/{NAME}.json is from kernel {stored['kernel']}, this is {os.uname().release}")
    assert stored["programs"] == live

