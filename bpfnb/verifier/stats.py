"""``stats``: verification figures per program over many objects, as veristat does."""

from __future__ import annotations

import os
import sys

import pandas as pd

from ..errors import BpfnbError
from .verify import verify

COLUMNS = ["file", "program", "verdict", "error", "insns", "processed", "states", "peak_states",
           "stack_depth", "time_us"]


def _progress(done: int, total: int) -> None:
    if total >= 10 and sys.stderr.isatty():
        width = 30
        filled = width * done // total
        print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="", file=sys.stderr)
        if done == total:
            print(file=sys.stderr)


def stats(objs_or_paths, *, vs_kernel: bool = False, progress=_progress) -> pd.DataFrame:
    """One row per program: verdict, instructions, processed instructions, states,
    peak states, stack depth, time; with ``vs_kernel`` the kernel's verdict,
    processed count and time beside (``kernel_*`` columns)."""
    from ..elf import load

    items = list(objs_or_paths)
    rows = []
    for k, item in enumerate(items):
        try:
            obj = load(item) if isinstance(item, (str, os.PathLike)) else item
        except BpfnbError as exc:
            rows.append({"file": str(item), "program": None, "verdict": "error", "error": str(exc)})
            progress(k + 1, len(items))
            continue
        for prog in obj:
            result = verify(prog, log_level=0, trace=False)
            row = {"file": os.path.basename(obj.path), "program": prog.name, "verdict": result.verdict,
                   "error": result.error, "insns": len(prog.insns), "processed": result.processed,
                   "states": result.states, "peak_states": result.peak_states,
                   "stack_depth": result.stack_depth, "time_us": result.time_us}
            if vs_kernel:
                row.update(_kernel_row(prog))
            rows.append(row)
        progress(k + 1, len(items))
    frame = pd.DataFrame(rows)
    ordered = [c for c in COLUMNS if c in frame.columns] + [c for c in frame.columns if c not in COLUMNS]
    return frame[ordered]


def _kernel_row(prog) -> dict:
    from ..kernel import available, load
    from ..kernel.log import KernelLog

    reason = available()
    if reason:
        return {"kernel_verdict": None, "kernel_note": reason}
    try:
        with load(prog, log_level=1) as loaded:
            log = KernelLog(loaded.log)
            return {"kernel_verdict": "accept" if loaded.ok else "reject", "kernel_error": loaded.error,
                    "kernel_processed": log.processed, "kernel_time_us": log.verification_time_us}
    except BpfnbError as exc:
        return {"kernel_verdict": "refused", "kernel_error": str(exc)}
