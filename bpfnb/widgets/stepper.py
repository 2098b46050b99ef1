"""``VerifierStepper``: step through the verifier's walk of a program.

One visit at a time: the source line, the instruction (a helper call with its
parameters named), a register table (type, BTF type of typed pointers, old →
new value, read/written marks, the kernel's value beside), the stack slots,
the error and its explanation; the instruction stream with the current line
(calls indented by frame); the CFG with the current block, the path walked so
far, the visit heat map, a legend and the error. Clicking a register or
stack-slot operand (or a row of the register table) selects its def-use chain:
its lines stay lit in the stream and the CFG, the others are dimmed, and the
chain buttons (or ``n``/``p``) jump along it.

``VerifierStepper(prog)`` walks bpfnb's verifier; ``VerifierStepper.from_log``
steps through a kernel verifier log, with or without the object.
"""

from __future__ import annotations

import asyncio
import bisect
import html

import ipywidgets as w

from ..errors import KernelError
from ..explain import explain
from ..isa import opcodes as op
from ..isa.disasm import format_insn
from ..isa.helpers import HELPER_PARAMS, helper_name
from ..viz.cfg import CfgView, legend_html, new_scope
from .listing import StreamListing
from .panes import GOTO_CLASS, VISIT_CLASS, StepperPanes
from .walk import CHAIN_REACH, Chain, Walk, btf_type_of, type_name

# Colours of the state panel and the stream (the CFG's are in bpfnb.viz.cfg).
CHANGED, DIFFERS, DEF, USE = "#fff8c5", "#ffebe9", "#ddf4ff", "#dafbe1"
# The browser holds this many visits each side of the current one and of the walk's ends,
# made ahead: stepping paints them at once (bpfnb.widgets.panes).
AHEAD = 20
# ... and the targets of the jumps with the visits each side of them: the next visits of
# the current instruction one after the other, the selected chain's visits each way, the
# error. A jump to a visit not held (the slider, the instruction box) waits for Python.
AGAIN_AHEAD = 4
CHAIN_AHEAD = 3
NEAR = 2
# The visits each side of the current one sent before the jumps' targets (the rest after).
FIRST_AHEAD = 3
# Visits made ahead per turn of the kernel's event loop: a click waits for one batch at most.
AHEAD_BATCH = 4
# The stream's lines follow the steps the browser made by itself this long after the
# first of them, once for all (each update is work for the browser while it steps) ...
FOLLOW_S = 0.1
# ... the slider and the instruction box once the steps paused this long (longer than
# the browser's SHOWN_MS, so that steps one after another, a key held down, move neither:
# over a million visits the slider would not show them, and each move is a frame's work).
CONTROLS_QUIET_S = 0.15
# After a visit Python painted (a jump the browser did not hold), the visits ahead but the
# first batch wait this long: sent at once, they reach the browser before it painted the
# visit, and delay it.
PAINT_FIRST_S = 0.05


def _css(scope: str) -> str:
    """The style rules of the state pane and the stream, under ``scope``."""
    s = f".{scope}"
    return f"""
{s} .step table{{border-collapse:collapse;font-family:monospace;font-size:12px;table-layout:fixed;width:100%}}
{s} .step td,{s} .step th{{padding:1px 6px;text-align:left;border-bottom:1px solid #eee;vertical-align:top;
  overflow-wrap:anywhere}}
{s} .step tr[data-name]{{cursor:pointer}}
{s} .step tr[data-name]:hover td{{background:#f6f8fa}}
{s} .step tr.changed td{{background:{CHANGED}}}
{s} .step tr.differs td{{background:{DIFFERS}}}
{s} .step tr.picked td{{outline:1px solid #0969da}}
{s} .step .mark{{color:#0969da;font-weight:bold}}
{s} .step .btf{{color:#8250df}}
{s} .step .src{{color:#6a737d;overflow-wrap:anywhere}}
{s} .step .err{{color:#a40e26;font-weight:bold;white-space:pre-wrap;overflow-wrap:anywhere}}
{s} .step pre{{white-space:pre-wrap;overflow-wrap:anywhere;margin:4px 0}}
{s} .step .call{{font-family:monospace;font-size:12px;overflow-wrap:anywhere}}
{s} .ln{{font-family:monospace;font-size:12px;white-space:pre;cursor:pointer;line-height:17px;
  content-visibility:auto;contain-intrinsic-size:auto 17px}}
{s} .ln:hover{{background:#f6f8fa}}
{s} .ln.cur{{background:{CHANGED};font-weight:bold}}
{s} .ln.dim{{opacity:.35}}
{s} .ln.def,{s} .ln.refined{{background:{DEF}}}
{s} .ln.use{{background:{USE}}}
{s} .ln.sel{{background:{DEF};box-shadow:inset 3px 0 #0969da}}
{s} .ln.err{{color:#a40e26}}
{s} .ln .no{{color:#8c959f;display:inline-block;width:4.5em}}
{s} .ln .pc{{color:#6a737d;display:inline-block;width:4em}}
{s} .ln .op{{border-bottom:1px dotted #0969da}}
{s} .ln .op.picked{{outline:1px solid #0969da}}
{s} .path,{s} .gap{{color:#6a737d;font:italic 11px monospace}}
"""


def _esc(text) -> str:
    return html.escape("" if text is None else str(text))


def _type_cell(text: str) -> str:
    """The register's type, and under it the BTF type a typed pointer points to."""
    btf = btf_type_of(text)
    return _esc(type_name(text)) + (f'<br><span class="btf">{_esc(btf)}</span>' if btf else "")


class VerifierStepper(w.VBox):
    """Steps through a ``Walk`` (ours, from ``bpfnb.verify``; or the kernel's).

    ``VerifierStepper(prog)`` verifies ``prog`` with bpfnb's verifier,
    ``VerifierStepper(bpfnb.verify(prog))`` steps through a verification made before;
    ``vs_kernel=True`` also loads it into the running kernel and shows the
    kernel's state for the same visit beside ours, differences marked.

    Keys, while the stepper has focus (never while typing in its boxes):
    → ↓ next, ← ↑ back, Home/End, ``e`` the error, ``v`` the next visit of the
    same instruction, ``b`` the other side of a branch, ``n``/``p`` along the
    selected chain, Esc clears it.
    """

    def __init__(self, prog_or_walk, *, vs_kernel: bool = False, kernel_walk: Walk | None = None,
                 cfg: bool = True):
        walk = prog_or_walk if isinstance(prog_or_walk, Walk) else _walk_of(prog_or_walk)
        self.kernel_refusal: str | None = None  # the kernel would not load it at all: no verdict
        if kernel_walk is None and vs_kernel:
            try:
                kernel_walk = _kernel_walk_of(walk.prog)
            except KernelError as exc:  # fentry here (EPERM), a map it cannot create...
                self.kernel_refusal = str(exc)
        self.walk = walk
        self.kernel = kernel_walk
        self.prog = walk.prog
        self.step = 0
        self.chain: Chain | None = None
        self._chain_cfg: tuple[Chain | None, list[int]] = (None, [])  # the chain and its instructions
        self.scope = new_scope("s")
        self.cfg = CfgView(self.prog, scope=self.scope) if cfg else None
        self._unknown = frozenset(getattr(self.prog, "meta", {}).get("unknown_slots", ()))
        self.stream = StreamListing(walk, unknown=self._unknown)
        self._syncing = False
        self._gen = 0  # the chain generation the visits sent ahead were made for
        self._ahead: dict[int, dict] = {}  # the visits the browser holds (none until a view says ready)
        self._browser = False  # a view has started: send visits ahead
        self._typing: set[str] = set()  # the controls a person is typing into ("slider", "box"): left as typed
        n = len(walk)

        self.first = w.Button(description="|◀", tooltip="first visit (Home)", layout=w.Layout(width="40px"))
        self.back = w.Button(description="◀ back", tooltip="previous visit (←)", layout=w.Layout(width="80px"))
        self.next = w.Button(description="next ▶", tooltip="next visit (→)", layout=w.Layout(width="80px"))
        self.to_error = w.Button(description="to error", tooltip="jump to the rejection (e)",
                                 disabled=walk.error_step is None, layout=w.Layout(width="80px"),
                                 button_style="danger" if walk.error_step is not None else "")
        self.again = w.Button(description="next visit of insn", tooltip="same instruction, next visit (v)",
                              layout=w.Layout(width="140px"))
        self.slider = w.IntSlider(value=0, min=0, max=max(n - 1, 0), description="visit",
                                  continuous_update=False, layout=w.Layout(width="300px"))
        self.goto = w.BoundedIntText(value=0, min=0, max=max(len(self.prog.insns) - 1, 0),
                                     description="insn", tooltip="type an instruction number, then Enter",
                                     layout=w.Layout(width="130px"), style={"description_width": "32px"})
        lines = sorted({(li.line, li.text.strip()) for li in getattr(self.prog, "line_info", ()) if li.text})
        self.source = w.Dropdown(options=[("source line…", 0)] + [(f"{n}: {t[:60]}", n) for n, t in lines],
                                 value=0, description="", layout=w.Layout(width="300px"),
                                 disabled=not lines)
        self.chain_info = w.HTML()
        self.chain_back = w.Button(description="◀ chain", tooltip="previous visit of the chain (p)",
                                   layout=w.Layout(width="80px"), disabled=True)
        self.chain_next = w.Button(description="chain ▶", tooltip="next visit of the chain (n)",
                                   layout=w.Layout(width="80px"), disabled=True)
        self.chain_clear = w.Button(description="clear", tooltip="forget the chain (Esc)",
                                    layout=w.Layout(width="60px"), disabled=True)
        for button, name in ((self.first, "first"), (self.back, "back"), (self.next, "next"),
                             (self.again, "again"), (self.to_error, "error"), (self.chain_next, "chain-next"),
                             (self.chain_back, "chain-back")):
            button.add_class(f"bpfnb-{name}")  # the panes move on these without Python (see panes.py)
        self.panes = StepperPanes(self._message, scope=self.scope, last=max(n - 1, 0),
                                  css=_css(self.scope) + (self.cfg.path_rules() + self.cfg.current_rules() if self.cfg else ""),
                                  cfg=self.cfg.base_svg if self.cfg else "",
                                  cfg_blocks=self.cfg.block_ids() if self.cfg else [],
                                  legend=legend_html(max(walk.visit_counts().values(), default=0))
                                  if self.cfg else "",
                                  error_step=walk.error_step if walk.error_step is not None else -1)
        self._more_ahead = False  # a turn of the event loop will send the next batch
        self._following = False  # a turn of the event loop will follow the browser's last step
        self._controls_due = False  # ... and the controls, once the steps pause
        self._last_shown = 0.0  # when the browser last said it painted a visit (the event loop's clock)
        self._showing = False  # a turn of the event loop will follow the visit Python painted

        self.first.on_click(lambda _: self.show(0))
        self.back.on_click(lambda _: self.show(self.step - 1))
        self.next.on_click(lambda _: self.show(self.step + 1))
        self.to_error.on_click(lambda _: self.show(walk.error_step))
        self.again.on_click(lambda _: self.next_visit())
        self.chain_back.on_click(lambda _: self.along_chain(-1))
        self.chain_next.on_click(lambda _: self.along_chain(+1))
        self.chain_clear.on_click(lambda _: self.select(None))
        self.slider.observe(lambda c: self.show(c["new"]) if c["new"] != self.step else None, "value")
        self.goto.add_class(GOTO_CLASS)  # the panes jump from the visits they hold (see panes.py)
        self.slider.add_class(VISIT_CLASS)
        self.goto.observe(lambda c: None if self._syncing else self.jump_to_insn(c["new"]), "value")
        self.source.observe(lambda c: self.jump_to_line(c["new"]) if c["new"] else None, "value")

        row = w.Layout(flex_flow="row wrap", align_items="center")
        controls = w.HBox([self.first, self.back, self.next, self.to_error, self.again, self.slider,
                           self.goto, self.source], layout=row)
        chain_row = w.HBox([self.chain_back, self.chain_next, self.chain_clear, self.chain_info], layout=row)
        super().__init__([controls, chain_row, self.panes], layout=w.Layout(width="100%"))
        self.add_class("bpfnb-stepper")
        self.add_class(self.scope)
        if n:
            self.show(0)

    @classmethod
    def from_log(cls, text_or_path, prog=None, **kwargs) -> VerifierStepper:
        """Step through a kernel verifier log (level 1 or 2), pasted as text or
        read from a file, as bpfvv does.

        Without ``prog`` the instructions are rebuilt from the log's lines
        (slots it never printed show as unknown); with the object's program,
        its source lines, BTF names and full CFG are added."""
        from .adapters import walk_from_log
        from .fromlog import program_from_log, read_log

        text = read_log(text_or_path)
        if prog is None:
            prog = program_from_log(text)
        return cls(walk_from_log(prog, text, source="log"), **kwargs)

    # -- navigation ---------------------------------------------------------------
    def show(self, step: int | None) -> None:
        """Show visit ``step`` (clamped to the walk)."""
        if step is None or not len(self.walk):
            return
        step = max(0, min(step, len(self.walk) - 1))
        self.step = step
        self._paint_visit()  # the visit's panes first, alone: what a person waits for
        loop = _running_loop()
        if loop is None:
            self._after_show()
        elif not self._showing:  # the rest once that message is out (for the latest visit shown)
            self._showing = True
            loop.call_soon(self._after_show)

    def _after_show(self) -> None:
        """What follows a visit Python painted: the stream's lines, the chain's buttons,
        the controls, then the visits ahead (the nearest now, the others once the browser
        painted this one)."""
        self._showing = False
        self._list_stream()
        self._paint_chain()
        self._follow(self.step)
        self._send_ahead(then=PAINT_FIRST_S)

    def _follow(self, step: int) -> None:
        """The controls follow visit ``step``: the slider, the instruction box (but one a
        person is typing into: ipywidgets would set it under the keys), the buttons."""
        self.step = step
        if self.slider.value != step and "slider" not in self._typing:
            self.slider.value = step
        visit = self.walk.visits[step]
        self._syncing = True
        try:
            if "box" not in self._typing:
                self.goto.value = visit.insn
        finally:
            self._syncing = False
        off = self._buttons_off(step)
        self.back.disabled, self.next.disabled, self.again.disabled = off
        self.panes.buttons_off = off  # the browser sets the same on the page, whatever their models say

    def _buttons_off(self, step: int) -> list[bool]:
        """Back, next and "next visit of insn" disabled at visit ``step``."""
        return [step == 0, step == len(self.walk) - 1, self.walk.next_visit(step) is None]

    def _visit_panes(self, step: int) -> dict:
        """What the panes show at visit ``step`` (but the stream's lines): the state pane,
        the instruction, the CFG's rules and its path's marks."""
        style, marks = self._cfg_look(step)
        return {"state": self.panel_html(step), "insn": self.walk.insn_of(step), "cfg_style": style,
                "cfg_marks": marks}

    def _cfg_look(self, step: int) -> tuple[str, list[str]]:
        """The CFG's rules at visit ``step`` as the browser holds them, and the classes it
        sets on the CFG's elements (``"class id"``): the current instruction and the path to
        it are marked with classes (``CfgView.current_rules``, ``CfgView.path_marks``), the
        rules hold the rest (the visits' heat, a chain, the error), so that steps leave the
        style sheet as it is (a style sheet set again costs the page a style recalculation
        over all its sheets; a class, the elements it marks)."""
        if self.cfg is None:
            return "", []
        highlight = self._highlight(step)
        path = {"path": highlight.pop("path"), "taken_edges": highlight.pop("taken_edges"),
                "pruned": highlight.pop("pruned")}
        return (self.cfg.rules(**{**highlight, "current": None}),
                [f"{name} {element}" for name, element in self.cfg.path_marks(**path)])

    def _paint_visit(self) -> None:
        """The current visit's state pane, its line, the CFG's highlighting and the buttons
        the browser disables (Python's own follow on the next turn), in one message."""
        step = self.step
        visit = self._visit_panes(step)
        with self.panes.hold_sync():
            self.panes.state = visit["state"]
            self.panes.listing_current = step
            self.panes.buttons_off = self._buttons_off(step)
            if self.cfg is not None:
                self.panes.cfg_style = visit["cfg_style"]
                self.panes.cfg_marks = visit["cfg_marks"]
                self.panes.cfg_follow = self.cfg.row_id(visit["insn"])

    def _paint(self) -> None:
        """The current visit's panes, the stream's lines and the chain's buttons."""
        self._paint_visit()
        self._list_stream()
        self._paint_chain()

    def _list_stream(self) -> None:
        """The stream's lines around the current visit, sent when they change: those that
        came into the window when it moved along, else the window whole."""
        self.panes.show_lines(*self.stream.moved(self.step, self.chain))

    def _paint_chain(self) -> None:
        chain = self.chain
        for b in (self.chain_back, self.chain_next, self.chain_clear):
            b.disabled = chain is None
        self.chain_info.value = self.chain_html() if chain is not None else (
            "<i>click a register or stack-slot operand (or a register row) to follow its def-use chain</i>")

    def jump_to_insn(self, insn: int) -> None:
        """The first visit of instruction ``insn`` at or after the current one (else the first)."""
        walk = self.walk
        found = walk.visit_from(insn, self.step)
        if found is None:
            found = walk.visit_from(insn, 0)
        if found == self.step:  # there (the browser painted it from the visits it holds)
            return
        # never visited (dead code, or past the error): keep the box on the current insn
        self.show(self.step if found is None else found)

    def jump_to_line(self, line: int) -> None:
        """The first visit, at or after the current one (else the first), of an instruction
        compiled from source line ``line``."""
        source_line = getattr(self.prog, "source_line", None)
        if source_line is None:
            return
        insns = {i for i in range(len(self.prog.insns))
                 if (li := source_line(i)) is not None and li.line == line}
        visits = self.walk.visits_of_any(insns)
        if visits:
            later = [s for s in visits if s >= self.step]
            self.show(later[0] if later else visits[0])

    def next_visit(self) -> None:
        self.show(self.walk.next_visit(self.step))

    def follow_branch(self) -> None:
        """Jump to where the branch at the current visit continues on its other path."""
        children = self.walk.children(self.step)
        if len(children) > 1:
            self.show(children[-1])

    # -- def-use chains -------------------------------------------------------------
    def select(self, name: str | None, step: int | None = None) -> Chain | None:
        """Select the def-use chain of register/slot ``name`` after visit ``step``
        (default: the current one); ``None`` clears it."""
        self.chain = None if name is None else self.walk.chain(self.step if step is None else step, name)
        self._gen += 1  # every visit sent ahead shows the chain before: made again
        self._ahead = {}
        self.panes.chain_steps = list(self.chain.steps) if self.chain is not None else []
        self._paint()
        self._send_ahead()
        return self.chain

    def _wanted(self) -> list[int]:
        """The visits the browser should hold, those it needs soonest first: each side of
        the current one, the jumps' targets and each side of them, the walk's ends."""
        walk, step = self.walk, self.step
        last = len(walk) - 1

        def around(centre: int, reach: int) -> list[int]:
            return sorted(range(max(0, centre - reach), min(last, centre + reach) + 1), key=lambda k: abs(k - centre))

        targets = []
        again = step
        for _ in range(AGAIN_AHEAD):
            again = walk.next_visit(again)
            if again is None:
                break
            targets.append(again)
        if self.chain is not None:
            steps = self.chain.steps
            at = bisect.bisect_right(steps, step)
            targets += steps[at:at + CHAIN_AHEAD] + steps[max(0, bisect.bisect_left(steps, step) - CHAIN_AHEAD):at]
        if walk.error_step is not None:
            targets.append(walk.error_step)
        wanted = dict.fromkeys(around(step, FIRST_AHEAD))
        for target in targets:
            wanted.update(dict.fromkeys(around(target, NEAR)))
        wanted.update(dict.fromkeys(around(step, AHEAD)))
        for end in (0, last):  # Home/End then a step
            wanted.update(dict.fromkeys(around(end, AHEAD)))
        return list(wanted)

    def _send_ahead(self, then: float = 0.0) -> None:
        """Send the browser the visits it should hold and does not yet (and say which it
        may forget): a step or jump to one of them is painted without a round trip. A
        batch at a time, the most needed first, each in its own turn of the kernel's
        event loop, so that a click that came meanwhile is answered before the rest
        (the next batch ``then`` seconds later)."""
        self._more_ahead = False
        if not self._browser:
            return
        wanted = self._wanted()
        keep = set(wanted)
        new = [k for k in wanted if k not in self._ahead]
        drop = sorted(set(self._ahead) - keep)
        loop = _running_loop()
        batch = new[:AHEAD_BATCH] if loop is not None else new
        if not batch and not drop:
            return
        made = {k: self._ahead_visit(k) for k in batch}
        self._ahead = {k: v for k, v in self._ahead.items() if k in keep} | made
        self.panes.send_ahead(self._gen, made, drop)
        if len(batch) < len(new):
            self._more_ahead = True
            loop.call_later(then, self._send_ahead_later)

    def _send_ahead_later(self) -> None:
        if self._more_ahead:
            self._send_ahead()

    def _ahead_visit(self, step: int) -> dict:
        """A visit as the browser holds it: its panes and where "next visit of insn" leads."""
        return {**self._visit_panes(step), "again": self.walk.next_visit(step)}

    def _shown(self, step: int, gen: int) -> None:
        """The browser painted visit ``step`` from the visits sent ahead (and set the
        panes' traits itself): the controls, the stream's lines and the visits ahead
        follow, on the next turn of the event loop (several steps the browser made
        meanwhile are followed once, to the last)."""
        if gen != self._gen:  # made for another chain: painted again
            self.show(step)
            return
        # forgotten here since (the browser hears it later): made again, the same
        held = self._ahead.get(step) or self._ahead_visit(step)
        self.step = step
        self.panes.painted(step, held, self.cfg.row_id(held["insn"]) if self.cfg is not None else "")
        loop = _running_loop()
        if loop is None:
            self._follow_shown()
            self._follow(step)
            return
        if not self._more_ahead:  # the visits that came into reach: on the next turn
            self._more_ahead = True
            loop.call_soon(self._send_ahead_later)
        if not self._following:  # the stream: once for the steps made meanwhile
            self._following = True
            loop.call_later(FOLLOW_S, self._follow_shown)
        self._last_shown = loop.time()
        if not self._controls_due:
            self._controls_due = True
            loop.call_later(CONTROLS_QUIET_S, self._follow_controls)

    def _follow_shown(self) -> None:
        self._following = False
        self._list_stream()
        self._paint_chain()
        self._send_ahead()

    def _follow_controls(self) -> None:
        """The slider and the instruction box follow the browser's steps once they paused."""
        loop = _running_loop()
        quiet = loop.time() - self._last_shown if loop is not None else CONTROLS_QUIET_S
        if quiet < CONTROLS_QUIET_S:  # steps still coming
            loop.call_later(CONTROLS_QUIET_S - quiet, self._follow_controls)
            return
        self._controls_due = False
        self._follow(self.step)

    def along_chain(self, direction: int) -> None:
        """Move to the next (``+1``) or previous (``-1``) visit of the selected chain."""
        if self.chain is None:
            return
        steps = self.chain.steps
        later = [s for s in steps if (s - self.step) * direction > 0]
        if later:
            self.show(later[0] if direction > 0 else later[-1])

    def chain_html(self) -> str:
        c = self.chain
        assert c is not None
        insns = self.prog.insns

        def where(s: int) -> str:
            return f"{s} (insn {self.walk.visits[s].insn})"

        parts = [f"<b>{_esc(c.name)}</b> after visit {where(c.step)}: "
                 f"{len(c.defs)} def(s) {', '.join(where(s) for s in c.defs[:6])}"
                 + ("…" if len(c.defs) > 6 else "")]
        if c.refined:
            parts.append(f"narrowed at {', '.join(where(s) for s in c.refined[:4])}")
        parts.append(f"{len(c.uses)} later use(s)")
        if c.truncated:
            parts.append(f"followed {CHAIN_REACH:,} visits each way (the walk goes on)")
        if c.entry:
            parts.append(f"from the entry: {', '.join(map(_esc, c.entry))}")
        origin = self.walk.origin(c.step, c.name, before=False)
        first = origin[-1] if origin else None
        if first is not None and first.step >= 0:
            parts.append(f"made at insn {first.insn} <code>{_esc(format_insn(insns[first.insn]))}</code>")
        return '<span style="font-size:12px">' + " · ".join(parts) + "</span>"

    def _message(self, message: dict) -> None:
        """A click or key from the browser (see ``bpfnb.widgets.panes``)."""
        kind = message.get("kind")
        if kind == "shown":
            self._shown(int(message["step"]), int(message["gen"]))
        elif kind == "typing":  # focus came into (left) the slider's readout or the instruction box
            control = message["control"]
            if message["on"]:
                self._typing.add(control)
            else:
                self._typing.discard(control)
                self._follow(self.step)
        elif kind == "ready":  # a view (new, or the notebook reopened) holds nothing yet
            self._browser = True
            self._ahead = {}
            self._typing = set()
            self._send_ahead()
        elif kind == "operand":
            self.select(message["name"], int(message["step"]))
        elif kind == "step":
            self.show(int(message["step"]))
        elif kind == "insn":
            self.jump_to_insn(int(message["insn"]))
        elif kind == "key":
            self.press(message["key"])

    def press(self, key: str) -> None:
        """What a key does (the browser sends only these keys, and only when the
        stepper has focus and no text box does)."""
        actions = {
            "ArrowRight": lambda: self.show(self.step + 1), "ArrowDown": lambda: self.show(self.step + 1),
            "ArrowLeft": lambda: self.show(self.step - 1), "ArrowUp": lambda: self.show(self.step - 1),
            "Home": lambda: self.show(0), "End": lambda: self.show(len(self.walk) - 1),
            "e": lambda: self.show(self.walk.error_step), "v": self.next_visit, "b": self.follow_branch,
            "n": lambda: self.along_chain(+1), "p": lambda: self.along_chain(-1),
            "Escape": lambda: self.select(None),
        }
        actions.get(key, lambda: None)()

    # -- rendering ----------------------------------------------------------------
    def call_html(self, step: int) -> str:
        """A helper call with its arguments named (by the helper's prototype) and their values."""
        insn = self.prog.insns[self.walk.visits[step].insn]
        if insn.code != op.BPF_JMP | op.BPF_CALL or insn.src != 0 or insn.imm not in HELPER_PARAMS:
            return ""
        before = self.walk.before(step)
        args = ", ".join(f"<b>{name}</b>=R{k + 1} {_esc(before.get(f'R{k + 1}', '?'))}"
                         for k, name in enumerate(HELPER_PARAMS[insn.imm]))
        return f'<div class="call">{_esc(helper_name(insn.imm))}({args})</div>'

    def registers_html(self, step: int) -> str:
        walk = self.walk
        visit = walk.visits[step]
        before, after = walk.before(step), dict(visit.regs)
        reads, writes = walk.effects_at(step)
        theirs = self._kernel_regs(step)
        picked = self.chain.name if self.chain is not None and self.chain.step == step else None
        rows = []
        for name in sorted(set(before) | set(after), key=lambda r: int(r[1:])):
            old, new = before.get(name), after.get(name)
            value = _esc(new) if old == new else f"{_esc(old) or '—'} → <b>{_esc(new) or '—'}</b>"
            text = new if new is not None else old
            marks = ("r" if name in reads else "") + ("w" if name in writes else "")
            classes = []
            if old != new:
                classes.append("changed")
            if name == picked:
                classes.append("picked")
            kernel_cell = ""
            if theirs is not None:
                k = theirs.get(name)
                if k is not None and k != new:
                    classes.append("differs")
                kernel_cell = f"<td>{_esc(k) if k is not None else ''}</td>"
            rows.append(
                f'<tr class="{" ".join(classes)}" data-name="{name}" data-step="{step}" '
                f'title="click: the def-use chain of {name}"><td>{name}</td><td class="mark">{marks}</td>'
                f"<td>{_type_cell(text or '')}</td><td>{value}</td>{kernel_cell}</tr>"
            )
        kernel = theirs is not None
        cols = ('<colgroup><col style="width:34px"><col style="width:30px"><col style="width:25%">'
                f'<col>{"<col style=width:30%>" if kernel else ""}</colgroup>')
        return (f"<table>{cols}<tr><th>reg</th><th>r/w</th><th>type / BTF type</th><th>value</th>"
                f"{'<th>kernel</th>' if kernel else ''}</tr>{''.join(rows)}</table>")

    def stack_html(self, step: int) -> str:
        stack = dict(self.walk.visits[step].stack)
        if not stack:
            return ""
        old = self.walk.stack_before(step)
        rows = "".join(
            f'<tr class="{"changed" if old.get(k) != v else ""}" data-name="{_esc(k)}" data-step="{step}">'
            f"<td>{_esc(k)}</td><td>{_esc(v)}</td></tr>"
            for k, v in sorted(stack.items(), key=lambda kv: -int(kv[0][2:] or 0)))
        return (f'<table><colgroup><col style="width:64px"><col></colgroup>'
                f"<tr><th>slot</th><th>contents</th></tr>{rows}</table>")

    def panel_html(self, step: int) -> str:
        walk, prog = self.walk, self.prog
        visit = walk.visits[step]
        insns = prog.insns
        nxt = insns[visit.insn + 1] if insns[visit.insn].is_ld_imm64 and visit.insn + 1 < len(insns) else None
        line = prog.source_line(visit.insn) if hasattr(prog, "source_line") else None
        src = f'<div class="src">; {_esc(line.text.strip())} @ {_esc(line.file.rsplit("/", 1)[-1])}:{line.line}</div>' \
            if line is not None and line.text else ""
        frame = walk.depth(step)
        head = (f"<div>visit <b>{step}</b> of {len(walk)} · insn <b>{visit.insn}</b>"
                + (f" · frame {frame}" if frame else "")
                + f" · path from {_esc(walk.path_start(step))} · {self._verdict()}</div>")
        # the error has its own block below (its note is the same message)
        note = "" if visit.event == "error" or not (visit.event or visit.note) else \
            f"<div><i>{_esc(visit.event or '')} {_esc(visit.note)}</i></div>"
        text = "(not in the log)" if visit.insn in self._unknown else format_insn(insns[visit.insn], nxt)
        insn = f"<pre>{visit.insn}: {_esc(text)}</pre>" + self.call_html(step)
        error = ""
        if visit.event == "error" and walk.error:
            why = explain(walk.error)
            error = f'<div class="err">{_esc(walk.error)}</div>' + (why._repr_html_() if why else "")
        return (f'<div class="step">{head}{src}{insn}{note}{error}'
                f"{self.registers_html(step)}{self.stack_html(step)}</div>")

    def _highlight(self, step: int) -> dict:
        walk = self.walk
        path, edges = self._path_on_cfg(step)
        pruned = walk.pruned_until(step)
        error_step = walk.error_step
        chain = self._chain_insns() if self.chain is not None else ()
        return dict(current=walk.visits[step].insn, path=path, visits=walk.visit_counts(), pruned=pruned,
                    error=walk.visits[error_step].insn if error_step is not None else None,
                    taken_edges=edges, chain=chain)

    def _chain_insns(self) -> list[int]:
        """The instructions of the selected chain's visits (once per chain)."""
        chain = self.chain
        if self._chain_cfg[0] is not chain:
            self._chain_cfg = (chain, self.walk.insns_of(chain.steps))
        return self._chain_cfg[1]

    def graph_svg(self, step: int) -> str:
        """The CFG as an SVG with visit ``step``'s highlighting."""
        return self.cfg.svg(**self._highlight(step))

    def _path_on_cfg(self, step: int) -> tuple[list[int], list[tuple[int, int]]]:
        """The instructions of the path to ``step`` and the edges it took between blocks
        (each once; read from the trace's columns when the walk has them)."""
        walk, block = self.walk, self.cfg.block_of
        if walk.columns is None:
            history = walk.history(step)
            path = [walk.visits[s].insn for s in history]
            edges = [(walk.visits[a].insn, walk.visits[b].insn) for a, b in zip(history, history[1:], strict=False)
                     if block(walk.visits[a].insn) != block(walk.visits[b].insn)]
            return path, edges
        import numpy as np

        on_path, pairs = walk.path_pairs(step)
        blocks = getattr(self, "_blocks", None)
        if blocks is None:
            blocks = self._blocks = np.array([_block_or_none(block, i) for i in range(len(self.prog.insns))])
        count = len(self.prog.insns)
        a, b = pairs // count, pairs % count
        crossing = blocks[a] != blocks[b]
        return on_path.tolist(), list(zip(a[crossing].tolist(), b[crossing].tolist(), strict=True))

    def origin_html(self, name: str, step: int | None = None) -> str:
        step = self.step if step is None else step
        rows = []
        for link in self.walk.origin(step, name):
            if link.step < 0:
                rows.append(f"<li>{_esc(link.name)}: at program entry ({_esc(self.walk.entry.get(link.name, ''))})</li>")
                continue
            insn = self.prog.insns[link.insn]
            rows.append(f"<li>visit {link.step}, insn {link.insn}: <code>{_esc(format_insn(insn))}</code> "
                        f"— {_esc(link.how)}</li>")
        return f"<div><b>{_esc(name)}</b> came from:<ol>{''.join(rows)}</ol></div>"

    def _verdict(self) -> str:
        refusal = f" · the kernel refused to load it: {_esc(self.kernel_refusal)}" if self.kernel_refusal else ""
        if self.walk.error:
            return f'<span class="err">rejected</span> ({self.walk.source}){refusal}'
        return f"accepted ({self.walk.source}){refusal}"

    def _kernel_regs(self, step: int) -> dict[str, str] | None:
        """The kernel's registers after the same visit (the n-th visit of this insn)."""
        if self.kernel is None:
            return None
        insn = self.walk.visits[step].insn
        nth = self.walk.visits_of(insn).index(step)
        theirs = self.kernel.visits_of(insn)
        return dict(self.kernel.visits[theirs[nth]].regs) if nth < len(theirs) else {}

    def _repr_html_(self) -> str:
        p = self.panes
        graph = (f'<div style="flex:1;min-width:0;overflow:auto;max-height:600px">{p.legend}'
                 f"{self.graph_svg(self.step)}</div>" if self.cfg else "")
        return (f'<div class="{self.scope}" style="display:flex;gap:12px"><style>{p.css}</style>'
                f'<div style="flex:1;min-width:0">{p.state}</div>'
                f'<div style="flex:1;min-width:0;max-height:600px;overflow:auto">'
                f"{self.stream.html(self.step, self.chain)}</div>{graph}</div>")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The kernel's event loop when called from it (a comm message), else None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _block_or_none(block_of, insn: int) -> int:
    try:
        return block_of(insn)
    except KeyError:  # the second half of a 16-byte load: in no block
        return -1


def _walk_of(prog_or_result) -> Walk:
    from ..verifier import verify  # the verifier publishes its walk
    from ..verifier.verify import VerifierResult
    from .adapters import walk_from_result

    if isinstance(prog_or_result, VerifierResult):
        return walk_from_result(prog_or_result)
    # the walk reads the trace, not the log: no log to format
    return walk_from_result(verify(prog_or_result, log_level=0))


def _kernel_walk_of(prog) -> Walk | None:
    from .adapters import walk_from_kernel

    return walk_from_kernel(prog)


__all__ = ["VerifierStepper"]
