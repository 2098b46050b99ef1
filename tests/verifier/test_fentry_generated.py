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

import json
import os
import random
import re

import pytest

from bpfnb.btf import kernel_btf
from bpfnb.isa.insn import encode
from bpfnb.program import program
from bpfnb.verifier import verify

from . import golden
from .btfgen import fentry_targets, random_fentry_program
from .test_btf_generated import _btf_digest, _states

NAME = "fentry_generated"
SEED = 17
COUNT = 150
TRUST = re.compile(r"\b(?:trusted_|rcu_|untrusted_)(?=ptr_)|or_null_|\bid=\d+,?")


def printed_states(log: str) -> set[tuple]:
    return {tuple(s) for s in _states(log)}


def normalise_states(states: set[tuple]) -> set[tuple]:
    """The printed values with trust and NULL-ness left out (``rcu_ptr_or_null_sock(id=2)``
    and ``ptr_sock()`` are both ``ptr_sock()``)."""
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


def _generated(btf) -> dict:
    rng = random.Random(SEED)
    targets = fentry_targets(btf)
    return {f"fentrygen-{i}": random_fentry_program(rng, btf, targets, name=f"fentrygen{i}") for i in range(COUNT)}


def _stored():
    data = golden.read(NAME)
    if _btf_digest() != data["btf_sha256"]:
        pytest.skip(f"golden/{NAME}.json walks the BTF of kernel {data['kernel']}; this machine's is another "
                    "(or unreadable)")
    return data


def test_fentry_programs_get_their_twins_verdicts_errors_and_values():
    data = _stored()
    btf = kernel_btf()
    verdicts = errors = rejects = found = total = 0
    for entry in data["programs"].values():
        fentry = program(bytes.fromhex(entry["insns"]), section=entry["section"], kernel_btf=btf, name=entry["name"])
        twin = program(bytes.fromhex(entry["twin_insns"]), section=entry["twin_section"], kernel_btf=btf,
                       name=entry["name"])
        ours = verify(fentry, log_level=2)
        verdicts += ours.ok == (entry["verdict"] == "accept")
        if entry["verdict"] == "reject":
            rejects += 1
            errors += ours.error == normalise_error(entry["error"], twin, fentry)
        elif ours.ok:
            theirs = normalise_states({tuple(s) for s in entry["states"]})
            total += len(theirs)
            found += len(theirs & normalise_states(printed_states(ours.log)))
    assert (verdicts, rejects, errors) == (COUNT, 78, 78)
    assert (found, total) == (625, 625)


def test_generated_fentry_programs_cover_the_argument_positions_and_defects():
    data = _stored()
    entries = data["programs"].values()
    assert {e["section"].split("/")[0] for e in entries} == {"fentry", "fexit"}
    assert len({e["arg"] for e in entries}) >= 3  # arguments after others, at their own offsets
    assert {e["defect"] for e in entries} >= {"", "beyond", "store", "ctx_off", "ptr_arith"}


@pytest.mark.kernel
def test_golden_file_is_the_running_kernels():
    from bpfnb.kernel import load

    btf = kernel_btf()
    live = {}
    for name, (fentry, twin, target, defect) in _generated(btf).items():
        with load(twin, log_level=2) as loaded:
            ok, error, log = loaded.ok, loaded.error, loaded.log
        live[name] = {"name": fentry.name, "section": fentry.section, "twin_section": twin.section,
                      "arg": target.arg, "defect": defect, "insns": encode(fentry.insns).hex(),
                      "twin_insns": encode(twin.insns).hex(), "verdict": "accept" if ok else "reject",
                      "error": None if ok else error, "states": sorted(list(s) for s in printed_states(log)) if ok
                      else []}
    if golden.UPDATE:
        data = {"kernel": os.uname().release, "btf_sha256": _btf_digest(), "seed": SEED, "programs": live}
        (golden.GOLDEN / f"{NAME}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    stored = golden.read(NAME)
    if stored["kernel"] != os.uname().release:
        pytest.skip(f"golden/{NAME}.json is from kernel {stored['kernel']}, this is {os.uname().release}")
    assert stored["programs"] == live
