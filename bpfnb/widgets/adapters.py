"""Walks from verifier output: the kernel's log (level 2), and bpfnb's verifier.

The kernel's level-2 log prints, per processed instruction, the registers
and stack slots it touched (``0: (bf) r6 = r1 ; R1=ctx() R6=ctx()``), full
states where a path starts (``from 3 to 6: R0=... R10=fp0``) and pruning
(``7: safe``). Replaying those lines gives the same ``Walk`` our verifier
records, so the stepper shows either and compares them.
"""

from __future__ import annotations

from dataclasses import replace

from ..isa import opcodes as op
from ..isa.effects import effects
from ..isa.flow import is_cond_jump, jump_target
from ..logtext import error_block
from .walk import Visit, Walk


def _split(state: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    regs = {k: v for k, v in state.items() if k.startswith("R")}
    stack = {k: v for k, v in state.items() if k.startswith("fp")}
    return regs, stack


def walk_from_log(prog, log: str, *, ok: bool | None = None, source: str = "kernel") -> Walk:
    """Replay a level-2 verifier log of ``prog`` into a ``Walk``."""
    from ..kernel.log import KernelLog

    visits: list[Visit] = []
    state: dict[str, str] = {}
    prev: int | None = None
    pushed: list[tuple[int, int, int]] = []  # (branch insn, target, visit) awaiting "from X to Y"
    note = ""
    entry: dict[str, str] | None = None
    for line in KernelLog(log).lines:
        texts = {name: value.text for name, value in line.state.items()}
        if line.kind == "from":
            src, dst = line.insn, line.target
            found = next((k for k in range(len(pushed) - 1, -1, -1) if pushed[k][:2] == (src, dst)), None)
            prev = pushed.pop(found)[2] if found is not None else None
            state = dict(texts)
            entry = dict(state)
            note = f"from {src} to {dst}"
        elif line.kind == "insn":
            insn = line.insn
            if not 0 <= insn < len(prog.insns):
                continue
            for gone in (x.upper() for x in effects(prog.insns[insn]).registers_written):
                if gone not in texts:
                    state.pop(gone, None)  # clobbered (a call's r1-r5): not initialised any more
            state.update(texts)
            regs, stack = _split(state)
            entry_regs, entry_stack = _split(entry) if entry is not None else (None, None)
            visits.append(Visit(len(visits), insn, prev, regs, stack, _event(prog.insns[insn]), note,
                                entry_regs, entry_stack))
            entry = None
            if is_cond_jump(prog.insns[insn]):
                pushed.append((insn, jump_target(prog.insns[insn], insn), len(visits) - 1))
            prev, note = len(visits) - 1, ""
        elif line.kind == "state":
            # "N: R1=... " lists the registers the kernel marked as touched, not
            # all of them: merge (only "from X to Y:" lines carry a whole state)
            state.update(texts)
            if entry is not None:
                entry = dict(state)  # "from X to Y: ..." then "Y: ...": the path's start
            elif visits and prev == len(visits) - 1:
                # the state after the previous visit, printed before the next
                # instruction (the kernel does so when the insn line had none)
                regs, stack = _split(state)
                visits[-1] = replace(visits[-1], regs=regs, stack=stack)
        elif line.kind == "safe":
            if line.target is not None:  # "from X to Y: safe": the branch at X's other side
                found = next((k for k in range(len(pushed) - 1, -1, -1)
                              if pushed[k][:2] == (line.target, line.insn)), None)
                prev = pushed.pop(found)[2] if found is not None else None
            regs, stack = _split(state)
            visits.append(Visit(len(visits), line.insn, prev, regs, stack, "pruned",
                                "safe: the state is within one already verified here", regs, stack))
            prev, note, entry = None, "", None
    block = error_block(log)
    rejected = (ok is False) or (ok is None and bool(block))
    if rejected and visits:
        visits[-1] = replace(visits[-1], event="error")
    return Walk(prog, visits, error=block if rejected else None, source=source)


def _event(insn) -> str | None:
    code = insn.code
    if code & 0x07 in (op.BPF_JMP, op.BPF_JMP32):
        kind = code & 0xF0
        if kind == op.BPF_EXIT:
            return "exit"
        if kind not in (op.BPF_JA, op.BPF_CALL):
            return "branch"
    return None


def walk_from_kernel(prog) -> Walk:
    """Load ``prog`` into the running kernel with a level-2 log and replay it."""
    from ..kernel import load

    with load(prog, log_level=2) as loaded:
        return walk_from_log(prog, loaded.log, ok=loaded.ok)


def walk_from_result(result) -> Walk:
    """The walk bpfnb's verifier recorded (``bpfnb.verify(prog).trace``)."""
    # a visit is the verifier's Step; the trace builds each when it is read
    return Walk(result.program, result.trace, error=None if result.ok else result.error, source="bpfnb")
