"""The running kernel's verdicts kept as golden files, so machines without root
still compare bpfnb's verifier with Linux's.

``golden/NAME.json`` holds ``{"kernel": uname release, "programs": {name:
{"verdict", "error", "error_insn"}}}`` (``fixtures.json`` also the register and slot
values the kernel printed on instruction lines, ``"states": [[insn, name, value], ...]``;
``logs.json`` the whole log-level-2 log of a few fixtures, line by line, with what differs
from load to load taken out: the map addresses of ``ld_imm64`` and the verification time,
as ``bpfnb.logtext.comparable_lines`` blanks them).
The generated-program files (``btf_generated``, ``raw_tp_generated``,
``fentry_generated``) also keep the programs themselves and the SHA-256 of the kernel
BTF they were generated from; ``tally`` compares bpfnb with them.

That kernel's BTF is kept beside them (``vmlinux.btf.xz``, ``kernel.json``: ``make
golden-btf``): bpfnb verifies the programs against it (``btf()``, ``load()``), so the
comparisons hold on any machine; the kernel-marked tests, which ask the running kernel,
skip where it is another (``require_kernel()``). Regenerate on a machine with root:

    BPFNB_UPDATE_GOLDEN=1 python -m pytest tests/verifier -m kernel
    make golden-btf
"""

from __future__ import annotations

import functools
import hashlib
import json
import lzma
import os
import pathlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("BPFNB_UPDATE_GOLDEN") == "1"
# the kernel the golden files are of: its release and its BTF's SHA-256, and its BTF
KERNEL = json.loads((GOLDEN / "kernel.json").read_text())
BTF_FILE = GOLDEN / "vmlinux.btf.xz"


@functools.cache
def btf():
    """The BTF of the kernel the golden files are of."""
    from bpfnb.btf import Btf

    return Btf.from_bytes(lzma.decompress(BTF_FILE.read_bytes()), name=f"{BTF_FILE} ({KERNEL['kernel']})")


def load(path):
    """The object at ``path`` loaded against the golden files' kernel BTF."""
    import bpfnb

    return bpfnb.load(path, kernel_btf=btf())


def require_kernel() -> None:
    """Skip unless the running kernel is the one the golden files are of (a kernel-marked
    test that builds its programs from ``btf()``, or compares with the golden files)."""
    if os.uname().release != KERNEL["kernel"] or btf_digest() != KERNEL["btf_sha256"]:
        pytest.skip(f"the golden files are of kernel {KERNEL['kernel']}, this is {os.uname().release}")


def comparable_log_lines(log: str) -> list[str]:
    """A log's lines without what changes from one load to the next (the map addresses
    and the column after them, the verification time: ``bpfnb.logtext.comparable_lines``)."""
    from bpfnb.logtext import comparable_lines

    return comparable_lines(log)


def kernel_log_lines(prog) -> list[str]:
    from bpfnb.kernel import load

    with load(prog, log_level=2) as loaded:
        return comparable_log_lines(loaded.log)


def kernel_judgement(prog) -> dict:
    from bpfnb.kernel import load
    from bpfnb.kernel.log import KernelLog
    from bpfnb.verifier.agreement import error_line

    with load(prog, log_level=1) as loaded:
        if loaded.ok:
            return {"verdict": "accept", "error": None, "error_insn": None}
        return {"verdict": "reject", "error": error_line(loaded.error), "error_insn": KernelLog(loaded.log).error_insn}


def kernel_judgement_with_states(prog) -> dict:
    """The kernel's verdict, error line and printed states (log level 2)."""
    from bpfnb.kernel import load
    from bpfnb.kernel.log import KernelLog
    from bpfnb.verifier.agreement import error_line, printed_states

    with load(prog, log_level=2) as loaded:
        ok, error, log = loaded.ok, error_line(loaded.error), loaded.log
    return {"verdict": "accept" if ok else "reject", "error": None if ok else error,
            "error_insn": None if ok else KernelLog(log).error_insn,
            "states": sorted([list(s) for s in printed_states(log)])}


def our_judgement(prog) -> dict:
    from bpfnb.verifier import verify

    result = verify(prog, log_level=1, trace=False)
    return {"verdict": result.verdict, "error": result.error, "error_insn": result.error_insn}


def read(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def write(name: str, programs: dict[str, dict]) -> None:
    GOLDEN.mkdir(exist_ok=True)
    data = {"kernel": os.uname().release, "programs": programs}
    (GOLDEN / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def btf_digest() -> str | None:
    """SHA-256 of this machine's kernel BTF (None where it is unreadable)."""
    from bpfnb.btf import LIVE_VMLINUX

    try:
        with open(LIVE_VMLINUX, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def read_for_btf(name: str) -> dict:
    """A generated-program golden file, whose programs were generated from ``btf()``."""
    data = read(name)
    assert data["btf_sha256"] == KERNEL["btf_sha256"], f"golden/{name}.json is not of {BTF_FILE}: make golden-btf"
    return data


def write_generated(name: str, seed: int, programs: dict[str, dict]) -> None:
    data = {"kernel": os.uname().release, "btf_sha256": btf_digest(), "seed": seed, "programs": programs}
    (GOLDEN / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def check_running_kernels(name: str, live: dict[str, dict], seed: int | None = None) -> None:
    """``golden/NAME.json`` is what the running kernel said (``live``); rewritten first
    under BPFNB_UPDATE_GOLDEN=1 (``seed`` given: a generated-program file)."""
    if UPDATE:
        if seed is None:
            write(name, live)
        else:
            write_generated(name, seed, live)
    stored = read(name)
    if stored["kernel"] != os.uname().release:
        pytest.skip(f"golden/{name}.json is from kernel {stored['kernel']}, this is {os.uname().release}")
    assert stored["kernel"] == KERNEL["kernel"], f"golden/{name}.json is not of {BTF_FILE}'s kernel: make golden-btf"
    assert stored["programs"] == live


def fixture_agreement(progs: dict, expected: dict[str, dict]) -> tuple[int, int]:
    """Checks each program's verdict, error and error instruction against the golden
    ``expected`` and returns (states of the kernel's log bpfnb printed too, all of them)."""
    from bpfnb.verifier import verify
    from bpfnb.verifier.agreement import printed_states

    same = total = 0
    for name, prog in progs.items():
        ours = verify(prog, log_level=2)
        want = expected[name]
        assert (ours.verdict, ours.error, ours.error_insn) == (want["verdict"], want["error"], want["error_insn"]), name
        theirs = {tuple(s) for s in want["states"]}
        same += len(theirs & printed_states(ours.log))
        total += len(theirs)
    return same, total


def program_of(entry: dict, btf):
    """The stored program of a generated-program entry."""
    from bpfnb.program import program

    return program(bytes.fromhex(entry["insns"]), section=entry["section"], kernel_btf=btf, name=entry["name"])


def stored_program(prog) -> dict:
    """A program as a generated-program file keeps it (``program_of`` reads it back)."""
    from bpfnb.isa.insn import encode

    return {"name": prog.name, "section": prog.section, "insns": encode(prog.insns).hex()}


def kernel_answer(prog) -> dict:
    """The running kernel's verdict, first error line and printed states (log level 2)."""
    from bpfnb.kernel import load
    from bpfnb.verifier.agreement import printed_states

    with load(prog, log_level=2) as loaded:
        ok, error, log = loaded.ok, loaded.error, loaded.log
    return {"verdict": "accept" if ok else "reject", "error": None if ok else error,
            "states": sorted(list(s) for s in printed_states(log)) if ok else []}


@dataclass
class Tally:
    """bpfnb against a generated-program golden file: verdicts alike, the kernel's
    rejects and the error lines alike among them, printed values alike / printed by the
    kernel for the accepted programs."""

    verdicts: int = 0
    rejects: int = 0
    errors: int = 0
    same_states: int = 0
    total_states: int = 0


def _unchanged(states: set[tuple]) -> set[tuple]:
    return states


def tally(entries: Iterable[dict], judge: Callable[[dict], tuple[object, str | None]],
          normalise: Callable[[set[tuple]], set[tuple]] = _unchanged) -> Tally:
    """Verify each stored program once: ``judge(entry)`` gives bpfnb's result (at log
    level 2) and the error line it must print; states are compared after ``normalise``."""
    from bpfnb.verifier.agreement import printed_states

    out = Tally()
    for entry in entries:
        ours, want_error = judge(entry)
        out.verdicts += ours.ok == (entry["verdict"] == "accept")
        if entry["verdict"] == "reject":
            out.rejects += 1
            out.errors += ours.error == want_error
        elif ours.ok:
            theirs = normalise({tuple(s) for s in entry["states"]})
            out.total_states += len(theirs)
            out.same_states += len(theirs & normalise(printed_states(ours.log)))
    return out


def defect_reasons(entries: Iterable[dict]) -> dict[str, set[str]]:
    """The kernel's error lines by injected defect class (programs it accepted left out)."""
    reasons: dict[str, set[str]] = {}
    for entry in entries:
        if entry["error"] is not None:
            reasons.setdefault(entry["defect"], set()).add(entry["error"])
    return reasons
