"""``JitViewer``: BPF instructions and their x86-64 code side by side, the
exception table marked, and optionally the kernel's image of the same program."""

from __future__ import annotations

import html

import ipywidgets as w


def _rows_html(result, selected: int | None, only_extable: bool) -> str:
    frame = result.frame()
    marked = {e.insn for e in result.extable}
    rows = []
    for insn, group in frame.groupby("insn", sort=False):
        if only_extable and insn not in marked:
            continue
        head = "prologue" if insn < 0 else f"{insn}: {group['bpf'].iloc[0]}"
        code = "<br>".join(f"{o:#06x} <code>{b:<20}</code> {html.escape(x)}"
                           for o, b, x in zip(group["offset"], group["bytes"], group["x86"], strict=True))
        table = "<br>".join(html.escape(t) for t in group["extable"] if t)
        style = ""
        if insn == selected:
            style = ' style="background:#d6eaff"'
        elif insn in marked:
            style = ' style="background:#fff3cd"'
        rows.append(f"<tr{style}><td><code>{html.escape(head)}</code></td><td style='text-align:left'>{code}</td>"
                    f"<td>{table}</td></tr>")
    return ('<table class="bpfnb-jit" style="font-size:12px;border-collapse:collapse">'
            f"<caption>{html.escape(str(result))}</caption><thead><tr><th>BPF</th><th>x86-64 (offset, bytes, code)"
            f"</th><th>exception table</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


class JitViewer(w.VBox):
    """``JitViewer(prog)`` (verified and translated here) or ``JitViewer(jit_result)``.

    A slider picks a BPF instruction (highlighted, with its x86 code); "PROBE_MEM only"
    keeps the loads that have an exception-table entry; ``vs_kernel=True`` adds the
    kernel's image of the same program, diffed per instruction."""

    def __init__(self, prog_or_result, *, vs_kernel: bool = False):
        from ..jit.x86_64 import JitResult, jit

        # a program is verified first (for its PROBE_MEM loads); a rejected one raises JitError
        self.result = prog_or_result if isinstance(prog_or_result, JitResult) else jit(prog_or_result)
        self.kernel = None
        if vs_kernel:
            from ..jit.x86_64.kernel import compare_with_kernel

            self.kernel = compare_with_kernel(self.result.prog)
        n = len(self.result.prog.insns)
        self.insn = w.IntSlider(value=0, min=0, max=max(n - 1, 0), description="BPF insn")
        self.only_extable = w.Checkbox(value=False, description="PROBE_MEM only")
        self.listing = w.HTML()
        self.side = w.HTML(self.kernel._repr_html_() if self.kernel else "")
        for control in (self.insn, self.only_extable):
            control.observe(self._update, "value")
        panes = [self.listing] + ([self.side] if self.kernel else [])
        super().__init__([w.HBox([self.insn, self.only_extable]), w.HBox(panes)])
        self._update()

    def _update(self, _change=None) -> None:
        self.listing.value = _rows_html(self.result, self.insn.value, self.only_extable.value)

    def selected_code(self) -> list[str]:
        """The x86 instructions of the selected BPF instruction."""
        frame = self.result.frame()
        return list(frame[frame["insn"] == self.insn.value]["x86"])

    def _repr_html_(self) -> str:
        return self.listing.value + self.side.value

    def __str__(self) -> str:
        return f"JitViewer({self.result})"
