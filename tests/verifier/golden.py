"""The running kernel's verdicts kept as golden files, so machines without root
still compare bpfnb's verifier with Linux's.

``golden/NAME.json`` holds ``{"kernel": uname release, "programs": {name:
{"verdict", "error", "error_insn"}}}`` (``fixtures.json`` also the register and slot
values the kernel printed on instruction lines, ``"states": [[insn, name, value], ...]``).
Regenerate on a machine with root:

    BPFNB_UPDATE_GOLDEN=1 python -m pytest tests/verifier -m kernel -k golden
"""

from __future__ import annotations

import json
import os
import pathlib

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("BPFNB_UPDATE_GOLDEN") == "1"


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
