"""The running kernel beside ours: program load and its verifier log."""

from __future__ import annotations

import os
import platform

from .program import KernelProgram, load


def __getattr__(name: str):
    if name in ("attach", "Link"):
        from . import links

        return getattr(links, name)
    if name in ("KernelLog", "RegValue"):
        from . import log

        return getattr(log, name)
    raise AttributeError(name)

VMLINUX = "/sys/kernel/btf/vmlinux"


def available() -> str | None:
    """``None`` when the kernel can be used here, else the reason it cannot."""
    if platform.system() != "Linux":
        return f"not Linux ({platform.system()})"
    if os.geteuid() != 0:
        return "not root: loading BPF programs needs root (or CAP_BPF + CAP_PERFMON)"
    if not os.path.exists(VMLINUX):
        return f"no kernel BTF at {VMLINUX}"
    from ..isa import Insn
    from ..isa import opcodes as op
    from ..program import Program

    probe = Program("bpfnb_probe", (
        Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 0), Insn(op.BPF_JMP | op.BPF_EXIT)))
    try:
        with load(probe, log_level=0) as loaded:
            if not loaded.ok:
                return f"the kernel rejected a trivial program: {loaded.error}"
    except Exception as exc:  # any refusal means: not usable here
        return f"bpf() is not usable: {exc}"
    return None


__all__ = ["KernelLog", "KernelProgram", "Link", "RegValue", "attach", "available", "load"]
