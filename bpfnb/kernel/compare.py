"""The kernel's verdict on a program, in the shape ``bpfnb verify --json`` prints."""

from __future__ import annotations

from ..errors import KernelError
from ..logtext import error_line
from .syscall import errno_name


def _refusal_hint(prog) -> str:
    if prog.type == "struct_ops":
        return (": a struct_ops program loads against the kernel struct it implements, and the kernel BTF has "
                "none for it (the object's notes name the struct)")
    return ""


def kernel_verdict(prog, *, log_level: int = 1) -> dict:
    """``{"verdict": "accept"|"reject", "error", "error_insn", "processed_insns"}``
    when the kernel's verifier ran; ``{"verdict": "refused", "reason", "errno"}``
    when the kernel would not load the program at all (EPERM for fentry here, a
    map it cannot create: not a verifier rejection); ``{"unavailable": reason}``
    where the kernel cannot be asked. ``notes`` lists what the bridge filled in
    (sizes left to the loader, maps the program does not use and the kernel refused)."""
    from . import available, load
    from .log import KernelLog

    reason = available()
    if reason:
        return {"unavailable": reason}
    try:
        with load(prog, log_level=log_level or 1) as loaded:
            log = KernelLog(loaded.log)
            if not loaded.ok and error_line(loaded.log) is None:
                return {"verdict": "refused", "errno": errno_name(loaded.errno),
                        "reason": f"{prog.where or prog.name}: the kernel refused the program before verifying "
                                  f"an instruction ({errno_name(loaded.errno)}, no message)"
                                  + _refusal_hint(prog)}
            record = {
                "verdict": "accept" if loaded.ok else "reject",
                "error": loaded.error,
                "error_insn": log.error_insn if not loaded.ok else None,
                "processed_insns": log.processed,
            }
            if loaded.notes:
                record["notes"] = list(loaded.notes)
            return record
    except KernelError as exc:
        return {"verdict": "refused", "reason": str(exc),
                "errno": errno_name(exc.errno) if exc.errno else None}
