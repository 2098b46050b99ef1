"""The kernel's verdict on a program, in the shape ``bpfnb verify --json`` prints."""

from __future__ import annotations

from ..errors import KernelError


def kernel_verdict(prog, *, log_level: int = 1) -> dict:
    """``{"verdict", "error", "error_insn", "processed_insns"}`` from the running
    kernel, or ``{"unavailable": reason}`` where it cannot be asked."""
    from . import available, load
    from .log import KernelLog

    reason = available()
    if reason:
        return {"unavailable": reason}
    try:
        with load(prog, log_level=log_level or 1) as loaded:
            log = KernelLog(loaded.log)
            return {
                "verdict": "accept" if loaded.ok else "reject",
                "error": loaded.error,
                "error_insn": log.error_insn if not loaded.ok else None,
                "processed_insns": log.processed,
            }
    except KernelError as exc:  # refused before the verifier (EPERM for fentry here)
        return {"verdict": "reject", "error": str(exc), "error_insn": None, "processed_insns": None,
                "errno": exc.errno}
