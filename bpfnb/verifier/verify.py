"""``verify(prog)``: bpfnb's verdict on a program, its log and its trace."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from ..isa.flow import jump_offset
from .cfg import Subprogs, check_ldimm64_targets, check_subprogs
from .check import VerifierEnv, bpf_check
from .log import Reject
from .trace import Trace

SELF_JUMP = -1  # a jump to itself: an infinite loop


@dataclass
class VerifierResult:
    """The verdict (``ok``, ``error``, ``error_insn``), the figures, the log text
    in the kernel's format, the ``trace`` of every step, and ``program`` with
    the loads through BTF pointers marked PROBE_MEM."""

    ok: bool
    error: str | None
    error_insn: int | None
    processed: int
    log: str
    trace: Trace
    program: object
    states: int = 0
    peak_states: int = 0
    stack_depth: int = 0
    time_us: int = 0
    probe_mem: frozenset[int] = field(default_factory=frozenset)
    stack_depths: tuple[int, ...] = ()  # per function (main program first), as the log's "stack depth"
    # tail calls whose prog array and key are the same constants on every path: insn -> (map index, key)
    direct_tail_calls: dict = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return "accept" if self.ok else "reject"

    def __str__(self) -> str:
        if self.ok:
            return f"{self.program.name}: accepted ({self.processed} insns processed, {self.states} states)"
        return f"{self.program.name}: rejected at insn {self.error_insn}: {self.error}"

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#a40e26"
        return (f'<div><b style="color:{colour}">{html.escape(str(self))}</b>'
                f"<details><summary>log</summary><pre>{html.escape(self.log)}</pre></details></div>")


def verify(prog, *, log_level: int = 2, limit: int | None = None, trace: bool = True,
           prune: bool = True) -> VerifierResult:
    """Verify ``prog`` as Linux would (root, this kernel's rules). ``trace=False``
    skips recording every state (the verdict, log and facts are the same; faster);
    ``prune=False`` walks every path to its end (slow: for testing pruning)."""
    if hasattr(prog, "require_type"):
        prog.require_type()  # a program of unknown type: say how to give one
    env = VerifierEnv(prog, log_level=log_level, record_states=trace, prune=prune,
                      **({"limit": limit} if limit else {}))
    bpf_check(env)
    ok = env.error is None
    probe = frozenset(env.probe_mem)
    return VerifierResult(
        ok=ok, error=env.error, error_insn=None if ok else env.insn_idx,
        processed=env.insn_processed, log=env.log.text(), trace=env.trace,
        program=prog.with_probe_mem(probe) if hasattr(prog, "with_probe_mem") else prog,
        states=env.explored.total_states, peak_states=env.explored.peak_states, stack_depth=env.stack_depth,
        time_us=env.time_us, probe_mem=probe, stack_depths=tuple(env.stack_depths()),
        direct_tail_calls=_direct_tail_calls(prog, env.tail_call_keys),
    )


def _direct_tail_calls(prog, keys: dict) -> dict:
    maps = list(getattr(prog, "maps", ()))
    out = {}
    for i, seen in keys.items():
        if seen is not None:
            index = next((k for k, m in enumerate(maps) if m is seen[0] or m == seen[0]), None)
            if index is not None:
                out[i] = (index, seen[1])
    return out


def check_structure(prog) -> str | None:
    """The load-time checks that need no types (the kernel's ``check_subprogs`` and
    ``check_cfg``: jump targets inside their function, each function ending in exit
    or jmp; unreachable code is left to the verifier, it cannot hurt a run), plus a
    jump to itself, which the kernel's exploration finds as an infinite loop. The
    message, or None."""
    try:
        check_subprogs(prog.insns, Subprogs(prog), Reject)
        check_ldimm64_targets(prog.insns, Reject)
    except Reject as exc:
        return str(exc)
    for i, insn in enumerate(prog.insns):
        if insn.is_jmp_class and not (insn.is_call or insn.is_exit) and jump_offset(insn) == SELF_JUMP:
            return f"infinite loop detected at insn {i}"
    return None
