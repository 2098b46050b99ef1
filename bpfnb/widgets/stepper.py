"""``VerifierStepper``: step through the verifier's walk of a program.

One visit at a time: the source line, the instruction, a register table
(type, BTF type of typed pointers, old → new value, read/written marks), the
stack slots, the CFG with the current block, the path walked so far, the
visit heat map and the error; the provenance of a register; the kernel's
state beside ours (``vs_kernel``); the explanation at the error.
"""

from __future__ import annotations

import html

import ipywidgets as w

from ..explain import explain
from ..isa.disasm import format_insn
from ..isa.effects import effects
from ..viz.cfg import CfgView
from .walk import Walk, btf_type_of, type_name

CSS = """
<style>
.bpfnb-step table{border-collapse:collapse;font-family:monospace;font-size:12px}
.bpfnb-step td,.bpfnb-step th{padding:1px 8px;text-align:left;border-bottom:1px solid #eee}
.bpfnb-step tr.changed td{background:#fff8c5}
.bpfnb-step tr.differs td{background:#ffebe9}
.bpfnb-step .mark{color:#0969da;font-weight:bold}
.bpfnb-step .src{color:#6a737d}
.bpfnb-step .err{color:#a40e26;font-weight:bold}
</style>
"""


def _esc(text) -> str:
    return html.escape("" if text is None else str(text))


class VerifierStepper(w.VBox):
    """Steps through a ``Walk`` (ours, from ``bpfnb.verify``; or the kernel's).

    ``VerifierStepper(prog)`` verifies ``prog`` with bpfnb's verifier;
    ``vs_kernel=True`` also loads it into the running kernel and shows the
    kernel's state for the same visit beside ours, differences marked.
    """

    def __init__(self, prog_or_walk, *, vs_kernel: bool = False, kernel_walk: Walk | None = None,
                 cfg: bool = True):
        walk = prog_or_walk if isinstance(prog_or_walk, Walk) else _walk_of(prog_or_walk)
        if kernel_walk is None and vs_kernel:
            kernel_walk = _kernel_walk_of(walk.prog)
        self.walk = walk
        self.kernel = kernel_walk
        self.prog = walk.prog
        self.step = 0
        self.cfg = CfgView(self.prog) if cfg else None
        n = len(walk)

        self.first = w.Button(description="|◀", tooltip="first visit", layout=w.Layout(width="40px"))
        self.back = w.Button(description="◀ back", tooltip="previous visit (←)", layout=w.Layout(width="80px"))
        self.next = w.Button(description="next ▶", tooltip="next visit (→)", layout=w.Layout(width="80px"))
        self.to_error = w.Button(description="to error", tooltip="jump to the rejection (e)",
                                 disabled=walk.error_step is None,
                                 button_style="danger" if walk.error_step is not None else "")
        self.again = w.Button(description="next visit of insn", tooltip="same instruction, next visit (v)")
        self.slider = w.IntSlider(value=0, min=0, max=max(n - 1, 0), description="visit",
                                  continuous_update=False, layout=w.Layout(width="360px"))
        self.goto = w.BoundedIntText(value=0, min=0, max=max(len(self.prog.insns) - 1, 0),
                                     description="insn", layout=w.Layout(width="140px"))
        self.register = w.Dropdown(options=["—"], description="origin of", layout=w.Layout(width="180px"))
        lines = sorted({(li.line, li.text.strip()) for li in getattr(self.prog, "line_info", ()) if li.text})
        self.source = w.Dropdown(options=[("source line…", 0)] + [(f"{n}: {t[:60]}", n) for n, t in lines],
                                 value=0, description="", layout=w.Layout(width="360px"),
                                 disabled=not lines)
        self.info = w.HTML()
        self.graph = w.HTML()
        self.origin_box = w.VBox()

        self.first.on_click(lambda _: self.show(0))
        self.back.on_click(lambda _: self.show(self.step - 1))
        self.next.on_click(lambda _: self.show(self.step + 1))
        self.to_error.on_click(lambda _: self.show(walk.error_step))
        self.again.on_click(lambda _: self.next_visit())
        self.slider.observe(lambda c: self.show(c["new"]), "value")
        self.goto.observe(lambda c: self.jump_to_insn(c["new"]), "value")
        self.register.observe(lambda c: self._show_origin(c["new"]), "value")
        self.source.observe(lambda c: self.jump_to_line(c["new"]) if c["new"] else None, "value")

        controls = w.HBox([self.first, self.back, self.next, self.to_error, self.again, self.slider, self.goto])
        left = w.VBox([self.info, w.HBox([self.register, self.source]), self.origin_box],
                      layout=w.Layout(width="52%"))
        right = w.Box([self.graph], layout=w.Layout(width="48%", overflow="auto", max_height="700px"))
        super().__init__([controls, w.HBox([left, right])])
        self.add_class("bpfnb-stepper")
        self._keys()
        if n:
            self.show(0)

    # -- navigation ---------------------------------------------------------------
    def show(self, step: int | None) -> None:
        """Show visit ``step`` (clamped to the walk)."""
        if step is None or not len(self.walk):
            return
        step = max(0, min(step, len(self.walk) - 1))
        self.step = step
        if self.slider.value != step:
            self.slider.value = step
        visit = self.walk.visits[step]
        self.back.disabled = step == 0
        self.next.disabled = step == len(self.walk) - 1
        self.again.disabled = self.walk.next_visit(step) is None
        names = sorted(set(self.walk.before(step)) | set(visit.regs), key=lambda r: int(r[1:]))
        self.register.options = ["—", *names]
        self.register.value = "—"
        self.origin_box.children = ()
        self.info.value = self.panel_html(step)
        if self.cfg is not None:
            self.graph.value = self.graph_svg(step)

    def jump_to_insn(self, insn: int) -> None:
        """The first visit of instruction ``insn`` at or after the current one (else the first)."""
        visits = self.walk.visits_of(insn)
        if visits:
            later = [s for s in visits if s >= self.step]
            self.show(later[0] if later else visits[0])

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

    def call_html(self, step: int) -> str:
        """A helper call with its arguments named (by the helper's prototype) and their values."""
        from ..isa import opcodes as op
        from ..isa.helpers import HELPER_PARAMS, helper_name

        insn = self.prog.insns[self.walk.visits[step].insn]
        if insn.code != op.BPF_JMP | op.BPF_CALL or insn.src != 0 or insn.imm not in HELPER_PARAMS:
            return ""
        before = self.walk.before(step)
        args = ", ".join(f"<b>{name}</b>=R{k + 1} {_esc(before.get(f'R{k + 1}', '?'))}"
                         for k, name in enumerate(HELPER_PARAMS[insn.imm]))
        return f'<div class="call">{_esc(helper_name(insn.imm))}({args})</div>'

    def next_visit(self) -> None:
        self.show(self.walk.next_visit(self.step))

    def follow_branch(self) -> None:
        """Jump to where the branch at the current visit continues on its other path."""
        children = self.walk.children(self.step)
        if len(children) > 1:
            self.show(children[-1])

    # -- rendering ----------------------------------------------------------------
    def registers_html(self, step: int) -> str:
        walk = self.walk
        visit = walk.visits[step]
        before, after = walk.before(step), dict(visit.regs)
        fx = effects(self.prog.insns[visit.insn])
        reads = {r.upper() for r in fx.registers_read}
        writes = {r.upper() for r in fx.registers_written}
        theirs = self._kernel_regs(step)
        rows = []
        for name in sorted(set(before) | set(after), key=lambda r: int(r[1:])):
            old, new = before.get(name), after.get(name)
            value = _esc(new) if old == new else f"{_esc(old) or '—'} → <b>{_esc(new) or '—'}</b>"
            text = new if new is not None else old
            marks = ("r" if name in reads else "") + ("w" if name in writes else "")
            classes = []
            if old != new:
                classes.append("changed")
            kernel_cell = ""
            if theirs is not None:
                k = theirs.get(name)
                if k is not None and k != new:
                    classes.append("differs")
                kernel_cell = f"<td>{_esc(k) if k is not None else ''}</td>"
            rows.append(
                f'<tr class="{" ".join(classes)}"><td>{name}</td><td class="mark">{marks}</td>'
                f"<td>{_esc(type_name(text or ''))}</td><td>{_esc(btf_type_of(text or '') or '')}</td>"
                f"<td>{value}</td>{kernel_cell}</tr>"
            )
        kernel_head = "<th>kernel</th>" if theirs is not None else ""
        return ("<table><tr><th>reg</th><th>r/w</th><th>type</th><th>BTF type</th><th>value</th>"
                f"{kernel_head}</tr>{''.join(rows)}</table>")

    def stack_html(self, step: int) -> str:
        stack = dict(self.walk.visits[step].stack)
        if not stack:
            return ""
        old = self.walk.stack_before(step)
        rows = "".join(
            f'<tr class="{"changed" if old.get(k) != v else ""}"><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>'
            for k, v in sorted(stack.items(), key=lambda kv: -int(kv[0][2:] or 0)))
        return f"<table><tr><th>slot</th><th>contents</th></tr>{rows}</table>"

    def panel_html(self, step: int) -> str:
        walk, prog = self.walk, self.prog
        visit = walk.visits[step]
        insns = prog.insns
        nxt = insns[visit.insn + 1] if insns[visit.insn].is_ld_imm64 else None
        line = prog.source_line(visit.insn) if hasattr(prog, "source_line") else None
        src = f'<div class="src">; {_esc(line.text.strip())} @ {_esc(line.file.rsplit("/", 1)[-1])}:{line.line}</div>' \
            if line is not None and line.text else ""
        head = (f"<div>visit <b>{step}</b> of {len(walk)} · insn <b>{visit.insn}</b> · path from "
                f"{_esc(walk.path_start(step))} · {self._verdict()}</div>")
        note = f"<div><i>{_esc(visit.event or '')} {_esc(visit.note)}</i></div>" if visit.event or visit.note else ""
        insn = f"<pre>{visit.insn}: {_esc(format_insn(insns[visit.insn], nxt))}</pre>" + self.call_html(step)
        error = ""
        if visit.event == "error" and walk.error:
            why = explain(walk.error)
            error = f'<div class="err">{_esc(walk.error)}</div>' + (why._repr_html_() if why else "")
        return (f'{CSS}<div class="bpfnb-step">{head}{src}{insn}{note}{self.registers_html(step)}'
                f"{self.stack_html(step)}{error}</div>")

    def graph_svg(self, step: int) -> str:
        walk = self.walk
        path, edges = self._path_on_cfg(step)
        pruned = walk.pruned_until(step)
        error_step = walk.error_step
        return self.cfg.svg(
            current=walk.visits[step].insn, path=path, visits=walk.visit_counts(), pruned=pruned,
            error=walk.visits[error_step].insn if error_step is not None else None,
            taken_edges=edges,
        )

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

        insns = walk.columns["insn"][walk.history_steps(step)]
        blocks = getattr(self, "_blocks", None)
        if blocks is None:
            blocks = self._blocks = np.array([_block_or_none(block, i) for i in range(len(self.prog.insns))])
        crossing = blocks[insns[:-1]] != blocks[insns[1:]]
        count = len(self.prog.insns)
        # each edge once: a pair coded as one integer, so the sort is one-dimensional
        codes = np.unique(insns[:-1][crossing].astype(np.int64) * count + insns[1:][crossing])
        on_path = np.flatnonzero(np.bincount(insns, minlength=count))
        return on_path.tolist(), [(int(c // count), int(c % count)) for c in codes]

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

    def _show_origin(self, name: str) -> None:
        if name == "—":
            self.origin_box.children = ()
            return
        links = self.walk.origin(self.step, name)
        buttons = []
        for link in links:
            if link.step >= 0:
                b = w.Button(description=f"go to visit {link.step} (insn {link.insn})",
                             layout=w.Layout(width="auto"))
                b.on_click(lambda _, s=link.step: self.show(s))
                buttons.append(b)
        self.origin_box.children = (w.HTML(self.origin_html(name)), w.HBox(buttons))

    def _verdict(self) -> str:
        if self.walk.error:
            return f'<span class="err">rejected</span> ({self.walk.source})'
        return f"accepted ({self.walk.source})"

    def _kernel_regs(self, step: int) -> dict[str, str] | None:
        """The kernel's registers after the same visit (the n-th visit of this insn)."""
        if self.kernel is None:
            return None
        insn = self.walk.visits[step].insn
        nth = self.walk.visits_of(insn).index(step)
        theirs = self.kernel.visits_of(insn)
        return dict(self.kernel.visits[theirs[nth]].regs) if nth < len(theirs) else {}

    def _keys(self) -> None:
        try:
            from ipyevents import Event
        except ImportError:  # keyboard stepping needs ipyevents; buttons still work
            return
        self._events = Event(source=self, watched_events=["keydown"], prevent_default_action=True)
        actions = {"ArrowRight": lambda: self.show(self.step + 1), "ArrowLeft": lambda: self.show(self.step - 1),
                   "e": lambda: self.show(self.walk.error_step), "v": self.next_visit,
                   "b": self.follow_branch}
        self._events.on_dom_event(lambda event: actions.get(event.get("key"), lambda: None)())

    def _repr_html_(self) -> str:
        graph = f'<div style="flex:1;overflow:auto">{self.graph.value}</div>' if self.cfg else ""
        return f'<div style="display:flex;gap:12px"><div style="flex:1">{self.info.value}</div>{graph}</div>'


def _block_or_none(block_of, insn: int) -> int:
    try:
        return block_of(insn)
    except KeyError:  # the second half of a 16-byte load: in no block
        return -1


def _walk_of(prog) -> Walk:
    from ..verifier import verify  # the verifier publishes its walk
    from .adapters import walk_from_result

    return walk_from_result(verify(prog, log_level=2))


def _kernel_walk_of(prog) -> Walk | None:
    from .adapters import walk_from_kernel

    return walk_from_kernel(prog)
