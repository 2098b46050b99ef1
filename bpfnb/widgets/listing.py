"""The instruction stream of a walk as HTML: one line per visit, in the order
the verifier made them (as bpfvv shows a log), calls indented by frame,
helper calls with their parameters named, and every register and stack-slot
operand clickable (``data-step``/``data-name``) to select its def-use chain."""

from __future__ import annotations

import html
import re

from ..isa import opcodes as op
from ..isa.disasm import format_insn
from ..isa.effects import stack_slot
from ..isa.helpers import HELPER_PARAMS, helper_name
from .walk import Chain, Walk

# A stack slot through the frame pointer, or a register (rN, or wN in 32-bit ops)
OPERAND = re.compile(r"\*\((?:u|s)(?:8|16|32|64) \*\)\(r10 (?P<off>[+-]\d+)\)|\b[rw](?P<reg>\d+)\b")
INDENT_PX = 18
# Around the current visit, this many lines are listed (a level-2 walk can be long).
WINDOW = 1500


def operands_html(text: str) -> str:
    """``text`` (an instruction as the log prints it) with its operands as clickable
    spans (``data-name``; the line they are on gives the visit)."""
    out, last = [], 0
    for m in OPERAND.finditer(text):
        out.append(html.escape(text[last:m.start()]))
        name = f"R{m['reg']}" if m["reg"] is not None else stack_slot(int(m["off"]))
        out.append(f'<span class="op" data-name="{name}">{html.escape(m[0])}</span>')
        last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def insn_text(prog, insn: int) -> str:
    """The instruction as the log prints it, without ``(code)``; a helper call
    as ``r0 = name(param: r1, ...)`` with the helper's documented parameters."""
    insns = prog.insns
    i = insns[insn]
    if i.code == op.BPF_JMP | op.BPF_CALL and i.src == 0 and i.imm in HELPER_PARAMS:
        args = ", ".join(f"{name}: r{k + 1}" for k, name in enumerate(HELPER_PARAMS[i.imm]))
        return f"r0 = {helper_name(i.imm)}({args})"
    nxt = insns[insn + 1] if i.is_ld_imm64 and insn + 1 < len(insns) else None
    return format_insn(i, nxt).split(") ", 1)[1]


class StreamListing:
    """The stream of one walk: each visit's line made once, only its marks per step."""

    def __init__(self, walk: Walk, *, unknown=frozenset()):
        self.walk = walk
        bodies: dict[int, str] = {}
        self._lines: list[tuple[str, str, str]] = []  # (before the classes, classes, after)
        for v in walk.visits:
            head = f'<div class="path">{html.escape(v.note)}</div>' if v.note.startswith("from ") else ""
            if v.event == "pruned":
                body = "safe (pruned: a state already verified here covers this one)"
            elif v.insn in unknown:
                body = "(not in the log)"
            else:
                if v.insn not in bodies:
                    bodies[v.insn] = operands_html(insn_text(walk.prog, v.insn))
                body = bodies[v.insn]
            pad = walk.depth(v.step) * INDENT_PX
            self._lines.append((f'{head}<div class="ln', " err" if v.event == "error" else "",
                                f'" data-step="{v.step}" style="padding-left:{pad}px"><span class="no">{v.step}'
                                f'</span><span class="pc">{v.insn}:</span>{body}</div>'))

    def html(self, current: int, chain: Chain | None = None) -> str:
        """The stream with the current visit marked (``cur``); with a ``chain``, its
        visits marked (``def``/``use``/``refined``, the selected one ``sel``) and the
        others dimmed (``dim``). Only ``WINDOW`` lines around the current one."""
        n = len(self._lines)
        lo = max(0, min(current - WINDOW // 2, n - WINDOW))
        hi = min(n, lo + WINDOW)
        marks: dict[int, str] = {}
        if chain is not None:
            marks.update({s: " def" for s in chain.defs})
            marks.update({s: " refined" for s in chain.refined})
            marks.update({s: " use" for s in chain.uses})
            marks[chain.step] = " sel"
        rows = [f'<div class="gap">… {lo} earlier visits</div>'] if lo else []
        for step in range(lo, hi):
            before, classes, after = self._lines[step]
            if step == current:
                classes += " cur"
            if chain is not None:
                classes += marks.get(step, " dim")
            rows.append(before + classes + after)
        if hi < n:
            rows.append(f'<div class="gap">… {n - hi} later visits</div>')
        return "".join(rows)


def listing_html(walk: Walk, current: int, chain: Chain | None = None, *, unknown=frozenset()) -> str:
    """The stream of ``walk`` at visit ``current`` (see ``StreamListing.html``)."""
    return StreamListing(walk, unknown=unknown).html(current, chain)
