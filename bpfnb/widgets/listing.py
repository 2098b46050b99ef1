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
# Around the current visit, this many lines are listed (a walk can have a million visits;
# the pane shows about 13: the rest is for scrolling).
WINDOW = 240
STRIDE = WINDOW // 3
LINES_KEPT = 4 * WINDOW  # lines made lately, kept for the next steps


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
    """The stream of one walk: each visit's line made when it is first listed (a walk
    can have a million visits), only its marks per step."""

    def __init__(self, walk: Walk, *, unknown=frozenset()):
        self.walk = walk
        self.unknown = unknown
        self._bodies: dict[int, str] = {}  # per instruction
        self._lines: dict[int, tuple[str, str, str]] = {}  # per visit: (before the classes, classes, after)
        self._marked: tuple[Chain, dict[int, str]] | None = None  # the last chain and its marks
        self._listed: tuple = (None, None, "")  # the last window listed unmarked: (lo, chain, html)

    def line(self, step: int) -> tuple[str, str, str]:
        """Visit ``step``'s line: the HTML before its classes, its classes, the HTML after."""
        made = self._lines.get(step)
        if made is not None:
            return made
        walk = self.walk
        insn, event, note = walk.insn_of(step), walk.event_of(step), walk.note_of(step)
        # a path's first visit is headed by the branch it took (``data-for``: the visit it heads)
        head = f'<div class="path" data-for="{step}">{html.escape(note)}</div>' if note.startswith("from ") else ""
        if event == "pruned":
            body = "safe (pruned: a state already verified here covers this one)"
        elif insn in self.unknown:
            body = "(not in the log)"
        else:
            body = self._bodies.get(insn)
            if body is None:
                body = self._bodies[insn] = operands_html(insn_text(walk.prog, insn))
        pad = walk.depth(step) * INDENT_PX
        if len(self._lines) >= LINES_KEPT:
            self._lines.clear()
        made = self._lines[step] = (
            f'{head}<div class="ln', " err" if event == "error" else "",
            f'" data-step="{step}" style="padding-left:{pad}px"><span class="no">{step}'
            f'</span><span class="pc">{insn}:</span>{body}</div>')
        return made

    def _marks(self, chain: Chain) -> dict[int, str]:
        """The class of each visit of ``chain`` (made once per chain: it may have many)."""
        if self._marked is None or self._marked[0] is not chain:
            marks = {s: " def" for s in chain.defs}
            marks.update({s: " refined" for s in chain.refined})
            marks.update({s: " use" for s in chain.uses})
            marks[chain.step] = " sel"
            self._marked = (chain, marks)
        return self._marked[1]

    def window(self, current: int) -> tuple[int, int]:
        """The visits listed around ``current``: ``WINDOW`` lines, moved by ``STRIDE``
        lines at a time with ``current`` at least ``STRIDE`` lines from either end (but at
        the walk's ends), so that stepping lists the same lines until it nears an end."""
        n = len(self.walk)
        lo = max(0, min((current // STRIDE - 1) * STRIDE, n - WINDOW))
        return lo, min(n, lo + WINDOW)

    def html(self, current: int, chain: Chain | None = None, *, mark_current: bool = True) -> str:
        """The stream's ``window`` around visit ``current``, marked ``cur`` (unless
        ``mark_current`` is False: the browser marks it, and the lines are sent only
        when the window or the chain changes); with a ``chain``, its visits marked
        (``def``/``use``/``refined``, the selected one ``sel``) and the others dimmed
        (``dim``)."""
        lo, hi = self.window(current)
        if not mark_current and self._listed[:2] == (lo, chain):
            return self._listed[2]
        text = "".join([self._earlier(lo), *self._rows(lo, hi, chain, current if mark_current else None),
                        self._later(hi)])
        if not mark_current:
            self._listed = (lo, chain, text)
        return text

    def moved(self, current: int, chain: Chain | None = None) -> tuple[str, dict | None]:
        """The stream's lines around ``current`` as ``html(current, chain,
        mark_current=False)`` lists them, and how they follow from the lines it listed
        last: None when they are new (another chain, a window apart: list them whole);
        else the window's move, ``{"from": the last window's first visit, "lo", "hi": the
        new window, "before"/"after": the lines that came in at its start/end,
        "earlier"/"later": its gaps}`` (a step across a window's edge brings ``STRIDE``
        lines, not ``WINDOW``)."""
        was_lo, was_chain, was_text = self._listed
        text = self.html(current, chain, mark_current=False)
        if was_lo is None or text is was_text or was_chain is not chain:
            return text, None
        lo, hi = self.window(current)
        was_hi = min(len(self.walk), was_lo + WINDOW)
        if hi <= was_lo or lo >= was_hi:
            return text, None
        return text, {"from": was_lo, "lo": lo, "hi": hi,
                      "before": "".join(self._rows(lo, min(hi, was_lo), chain)),
                      "after": "".join(self._rows(max(lo, was_hi), hi, chain)),
                      "earlier": self._earlier(lo), "later": self._later(hi)}

    def _rows(self, lo: int, hi: int, chain: Chain | None, current: int | None = None) -> list[str]:
        """The lines of visits ``lo`` to ``hi`` (``current``'s marked ``cur``)."""
        marks = self._marks(chain) if chain is not None else {}
        rows = []
        for step in range(lo, hi):
            before, classes, after = self.line(step)
            if step == current:
                classes += " cur"
            if chain is not None:
                classes += marks.get(step, " dim")
            rows.append(before + classes + after)
        return rows

    @staticmethod
    def _earlier(lo: int) -> str:
        return f'<div class="gap">… {lo} earlier visits</div>' if lo else ""

    def _later(self, hi: int) -> str:
        n = len(self.walk)
        return f'<div class="gap">… {n - hi} later visits</div>' if hi < n else ""


def listing_html(walk: Walk, current: int, chain: Chain | None = None, *, unknown=frozenset()) -> str:
    """The stream of ``walk`` at visit ``current`` (see ``StreamListing.html``)."""
    return StreamListing(walk, unknown=unknown).html(current, chain)
