"""Random tp_btf programs walking the kernel BTF (``btfgen``), judged by bpfnb and by
Linux 6.18: verdicts, first error lines and the register states the log prints.

``golden/btf_generated.json`` keeps the programs (instructions and section), the
kernel's answers and the SHA-256 of the kernel BTF they were generated from; the
comparison runs wherever that BTF is readable (no root needed) and skips, saying
why, elsewhere. Regenerate on the kernel with root:

    BPFNB_UPDATE_GOLDEN=1 python -m pytest tests/verifier/test_btf_generated.py -m kernel
"""

import hashlib
import json
import os
import random

import pytest

from bpfnb.btf import kernel_btf
from bpfnb.btf.btf import LIVE_VMLINUX
from bpfnb.isa.insn import encode
from bpfnb.kernel.log import KernelLog
from bpfnb.program import program
from bpfnb.verifier import verify

from . import golden
from .btfgen import random_btf_program

NAME = "btf_generated"
SEED = 15
COUNT = 150


def _states(log: str) -> list[list]:
    """(insn, register/slot, printed value) on instruction lines; precision marks ignored."""
    out = set()
    for line in KernelLog(log).lines:
        if line.kind == "insn":
            for name, value in line.state.items():
                out.add((line.insn, name, value.text[1:] if value.precise else value.text))
    return sorted([list(s) for s in out])


def _btf_digest() -> str | None:
    try:
        with open(LIVE_VMLINUX, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _generated(btf) -> dict:
    rng = random.Random(SEED)
    progs = {}
    for i in range(COUNT):
        prog, defect = random_btf_program(rng, btf, name=f"btfgen{i}")
        progs[f"btfgen-{i}"] = (prog, defect)
    return progs


def _stored():
    path = golden.GOLDEN / f"{NAME}.json"
    data = json.loads(path.read_text())
    if _btf_digest() != data["btf_sha256"]:
        pytest.skip(f"golden/{NAME}.json walks the BTF of kernel {data['kernel']}; "
                    f"{LIVE_VMLINUX} here is another (or unreadable)")
    return data


def _program(entry, btf):
    return program(bytes.fromhex(entry["insns"]), section=entry["section"], kernel_btf=btf, name=entry["name"])


def test_generated_btf_walks_get_the_kernels_verdicts_errors_and_states():
    data = _stored()
    btf = kernel_btf()
    verdicts = errors = rejects = same_states = total_states = 0
    for entry in data["programs"].values():
        ours = verify(_program(entry, btf), log_level=2)
        verdicts += ours.ok == (entry["verdict"] == "accept")
        if entry["verdict"] == "reject":
            rejects += 1
            errors += ours.error == entry["error"]
        elif ours.ok:
            theirs = {tuple(s) for s in entry["states"]}
            total_states += len(theirs)
            same_states += len(theirs & {tuple(s) for s in _states(ours.log)})
    assert (verdicts, rejects, errors) == (COUNT, 93, 93)
    assert (same_states, total_states) == (474, 474)


def test_generated_defects_are_rejected_with_the_kernels_reasons():
    """Each injected defect class shows up among the stored programs with its kernel message.

    Some injected defects land where the kernel accepts (e.g. an offset still inside
    the struct): those programs have no error and are left out here.
    """
    data = _stored()
    reasons = {}
    for entry in data["programs"].values():
        if entry["error"] is not None:
            reasons.setdefault(entry["defect"], set()).add(entry["error"])
    assert any(e.startswith("access beyond struct task_struct at off ") for e in reasons["beyond"])
    assert "only read is supported" in reasons["store"]
    assert "func 'sched_switch' doesn't have 5-th argument" in reasons["ctx_off"]
    assert "R1 is of type task_struct but sock_common is expected" in reasons["wrong_struct"]
    assert "cannot access ptr member next with moff 0 in struct (anon) with off 0 size 1" in reasons["wrong_struct"]


@pytest.mark.kernel
def test_golden_file_is_the_running_kernels():
    from bpfnb.kernel import load

    btf = kernel_btf()
    live = {}
    for name, (prog, defect) in _generated(btf).items():
        with load(prog, log_level=2) as loaded:
            ok, error, log = loaded.ok, loaded.error, loaded.log
        live[name] = {"name": prog.name, "section": prog.section, "defect": defect,
                      "insns": encode(prog.insns).hex(),
                      "verdict": "accept" if ok else "reject", "error": None if ok else error,
                      "states": _states(log) if ok else []}
    if golden.UPDATE:
        data = {"kernel": os.uname().release, "btf_sha256": _btf_digest(), "seed": SEED, "programs": live}
        (golden.GOLDEN / f"{NAME}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    stored = json.loads((golden.GOLDEN / f"{NAME}.json").read_text())
    if stored["kernel"] != os.uname().release:
        pytest.skip(f"golden/{NAME}.json is from kernel {stored['kernel']}, this is {os.uname().release}")
    assert stored["programs"] == live
