"""``JitViewer``: BPF instructions and their x86-64 code side by side, the
exception table marked, and optionally the kernel's image of the same program
(disassembled with capstone, aligned instruction by instruction). One slider
selects a BPF instruction in both panes; each BPF instruction is one line."""

from __future__ import annotations

import html
import re

import ipywidgets as w

from ..viz.cfg import new_scope

SELECTED, PROBE_MEM, DIFFERS = "#d6eaff", "#fff3cd", "#fde2e1"
MASKED_IMMEDIATE = "‹map›"  # a map address the kernel's dump hides: not compared, not shown


def _css(scope: str) -> str:
    s = f".{scope}"
    return (f"<style>{s} table{{font-size:12px;border-collapse:collapse}}"
            f"{s} td,{s} th{{vertical-align:top;text-align:left;padding:1px 6px;border-bottom:1px solid #eee}}"
            f"{s} td:first-child code{{white-space:nowrap}}"
            f"{s} code{{padding:0;background:none}}"
            f"{s} .x86{{font-family:monospace;white-space:nowrap;line-height:16px}}</style>")


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
            style = f' style="background:{SELECTED}"'
        elif insn in marked:
            style = f' style="background:{PROBE_MEM}"'
        rows.append(f"<tr{style}><td><code>{html.escape(head)}</code></td><td class='x86'>{code}</td>"
                    f"<td>{table}</td></tr>")
    return ('<table class="bpfnb-jit">'
            f"<caption>{html.escape(str(result))}</caption><thead><tr><th>BPF</th><th>x86-64 (offset, bytes, code)"
            f"</th><th>exception table</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _relative(ins) -> bool:
    """A direct jump or call (its operand a target address)."""
    return (ins.mnemonic.startswith("j") or ins.mnemonic == "call") and re.fullmatch(r"0x[0-9a-f]+|\d+", ins.op_str)


def _x86_lines(chunks: tuple[bytes, ...], masked: bool) -> list[str]:
    """Each x86 instruction (one chunk of bytes) disassembled; a masked map
    address shown the same way on both sides."""
    import capstone

    from ..jit.x86_64.kernel import _key  # the comparison's own masking rule

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    lines = []
    for raw in chunks:
        ins = next(md.disasm(raw, 0), None)
        text = f"{ins.mnemonic} {ins.op_str}".strip() if ins is not None else "(bad)"
        if ins is not None and _relative(ins):
            # each instruction is disassembled alone: a branch's target as a distance
            text = f"{ins.mnemonic} .{int(ins.op_str, 0) - ins.size:+#x}"
        shown = raw.hex()
        if masked and _key(raw) != raw:
            text = f"{text.rsplit(',', 1)[0]}, {MASKED_IMMEDIATE}"
            shown = _key(raw).hex() + " ‹8 bytes›"
        lines.append(f"<code>{shown:<20}</code> {html.escape(text)}")
    return lines


def kernel_rows_html(comparison, selected: int | None) -> str:
    """The kernel's image beside ours, per BPF instruction of the xlated program."""
    rows = []
    for r in comparison.rows:
        style = ""
        if r.insn == selected:
            style = f' style="background:{SELECTED}"'
        elif not r.equal:
            style = f' style="background:{DIFFERS}"'
        mark = ("=" if r.equal else "≠") + (" (map address masked)" if r.masked else "")
        # the map's address changes at every load: masked in the text as in the bytes
        bpf = re.sub(r"= 0x[0-9a-f]+$", f"= {MASKED_IMMEDIATE}", r.bpf) if r.masked else r.bpf
        rows.append(f"<tr{style}><td><code>{r.insn}: {html.escape(bpf)}</code></td>"
                    f"<td class='x86'>{'<br>'.join(_x86_lines(r.ours, r.masked))}</td>"
                    f"<td class='x86'>{'<br>'.join(_x86_lines(r.kernel, r.masked))}</td><td>{mark}</td></tr>")
    return (f'<table class="bpfnb-jit-kernel"><caption>{html.escape(str(comparison))}</caption>'
            "<thead><tr><th>BPF (as the kernel loaded it)</th><th>bpfnb</th><th>kernel (capstone)</th>"
            f"<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


class JitViewer(w.VBox):
    """``JitViewer(prog)`` (verified and translated here) or ``JitViewer(jit_result)``.

    A slider picks a BPF instruction (highlighted in every pane, with its x86 code;
    the second slot of a 64-bit load selects its instruction); "PROBE_MEM only"
    keeps the loads that have an exception-table entry; ``vs_kernel=True`` adds
    the kernel's image of the same program, disassembled and aligned per BPF
    instruction, differences marked."""

    def __init__(self, prog_or_result, *, vs_kernel: bool = False):
        from ..jit.x86_64 import JitResult, jit

        # a program is verified first (for its PROBE_MEM loads); a rejected one raises JitError
        self.result = prog_or_result if isinstance(prog_or_result, JitResult) else jit(prog_or_result)
        self.kernel = None
        if vs_kernel:
            from ..jit.x86_64.kernel import compare_with_kernel

            self.kernel = compare_with_kernel(self.result.prog)
        self.scope = new_scope("j")
        n = len(self.result.prog.insns)
        self.insn = w.IntSlider(value=0, min=0, max=max(n - 1, 0), description="BPF insn",
                                layout=w.Layout(width="420px"))
        self.only_extable = w.Checkbox(value=False, description="PROBE_MEM only")
        self.listing = w.HTML()
        self.side = w.HTML()
        for control in (self.insn, self.only_extable):
            control.observe(self._update, "value")
        # one above the other: side by side, neither fits a 1280-px notebook
        pane = w.Layout(overflow="auto", max_height="420px" if self.kernel else "560px", width="100%")
        panes = [w.Box([self.listing], layout=pane)]
        if self.kernel:
            panes.append(w.Box([self.side], layout=pane))
        super().__init__([w.HTML(_css(self.scope)), w.HBox([self.insn, self.only_extable]), *panes],
                         layout=w.Layout(width="100%"))
        self.add_class(self.scope)
        self._update()

    @property
    def selected(self) -> int:
        """The selected BPF instruction (a 64-bit load's second slot selects the load)."""
        i = self.insn.value
        insns = self.result.prog.insns
        return i - 1 if i > 0 and insns[i - 1].is_ld_imm64 else i

    def _update(self, _change=None) -> None:
        self.listing.value = _rows_html(self.result, self.selected, self.only_extable.value)
        if self.kernel:
            self.side.value = kernel_rows_html(self.kernel, self.selected)

    def selected_code(self) -> list[str]:
        """The x86 instructions of the selected BPF instruction."""
        frame = self.result.frame()
        return list(frame[frame["insn"] == self.selected]["x86"])

    def _repr_html_(self) -> str:
        return f'<div class="{self.scope}">{_css(self.scope)}{self.listing.value}{self.side.value}</div>'

    def __str__(self) -> str:
        return f"JitViewer({self.result})"
