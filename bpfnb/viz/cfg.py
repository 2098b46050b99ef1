"""The control-flow graph of a program, drawn with graphviz.

``basic_blocks`` splits a program into blocks; ``cfg_graph`` draws them (each
block a table of its instructions, with source lines from BTF line info;
branch edges labelled taken / not taken; bpf-to-bpf calls dashed).
``CfgView`` renders the SVG once and then highlights a verifier step — the
current instruction, the path walked so far, visit counts as a heat map,
pruned and rejected instructions, a def-use chain — by injecting CSS rules
that address the ids graphviz gives blocks (``<scope>b<start>``), rows
(``a_<scope>i<insn>``, ``a_<scope>t<insn>``) and edges (``<scope>e<from>_<to>``),
so stepping never calls ``dot`` again. ``scope`` is random per view: an SVG's
``<style>`` applies to the whole page, so two views on one page (or in two open
notebooks) must never share an id.
"""

from __future__ import annotations

import html
import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import graphviz

from ..isa import Insn
from ..isa import opcodes as op
from ..isa.flow import jump_target


@dataclass(frozen=True)
class Edge:
    target: int
    kind: str  # "taken", "not taken", "goto", "next", "call"


@dataclass(frozen=True)
class Block:
    start: int
    end: int  # last slot of the block (the second slot of a final LD_IMM64)
    edges: tuple[Edge, ...]

    def slots(self, insns) -> list[int]:
        """Instruction indices in the block, LD_IMM64 second halves left out."""
        out, i = [], self.start
        while i <= self.end:
            out.append(i)
            i += 2 if insns[i].is_ld_imm64 else 1
        return out


def _flow(insn: Insn, i: int) -> tuple[str, int | None]:
    """How control leaves slot i: ("exit"|"goto"|"cond"|"call"|"next", target)."""
    if not insn.is_jmp_class:
        return "next", None
    if insn.is_exit:
        return "exit", None
    if insn.is_call:
        if insn.is_pseudo_call:
            return "call", jump_target(insn, i)
        return "next", None
    if insn.op == op.BPF_JA:
        return "goto", jump_target(insn, i)
    return "cond", jump_target(insn, i)


def basic_blocks(insns) -> list[Block]:
    """Split ``insns`` into basic blocks, in slot order."""
    n = len(insns)
    leaders = {0}
    i = 0
    while i < n:
        kind, target = _flow(insns[i], i)
        width = 2 if insns[i].is_ld_imm64 else 1
        if kind in ("goto", "cond", "exit"):
            if i + width < n:
                leaders.add(i + width)
        if kind in ("goto", "cond", "call") and target is not None and 0 <= target < n:
            leaders.add(target)
        i += width
    starts = sorted(leaders)
    blocks = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else n
        last = start
        j = start
        calls = []
        while j < stop:
            last = j
            kind, target = _flow(insns[j], j)
            if kind == "call" and target is not None:
                calls.append(Edge(target, "call"))
            j += 2 if insns[j].is_ld_imm64 else 1
        kind, target = _flow(insns[last], last)
        end = stop - 1
        edges: list[Edge] = []
        if kind == "goto":
            edges.append(Edge(target, "goto"))
        elif kind == "cond":
            edges += [Edge(target, "taken"), Edge(stop, "not taken")]
        elif kind != "exit" and stop < n:
            edges.append(Edge(stop, "next"))
        blocks.append(Block(start, end, tuple(calls + edges)))
    return blocks


def _row_text(prog, insns, i: int) -> str:
    from ..isa.disasm import format_insn

    nxt = insns[i + 1] if insns[i].is_ld_imm64 and i + 1 < len(insns) else None
    return format_insn(insns[i], nxt)


UNKNOWN_ROW = "(not in the log)"


def cfg_graph(prog, *, source: bool = True, title: str | None = None, scope: str = "") -> graphviz.Digraph:
    """The CFG of a ``Program`` as a ``graphviz.Digraph`` (no highlighting).

    Every id starts with ``scope`` (see ``CfgView``). Slots listed in
    ``prog.meta["unknown_slots"]`` (a program rebuilt from a verifier log that
    never printed them) are drawn as unknown."""
    insns = prog.insns
    unknown = set(getattr(prog, "meta", {}).get("unknown_slots", ()))
    blocks = basic_blocks(insns)
    g = graphviz.Digraph(name=title or prog.name)
    g.attr("graph", fontname="monospace", rankdir="TB", nodesep="0.3", ranksep="0.35", id=f"{scope}graph")
    g.attr("node", shape="plain", fontname="monospace", fontsize="10")
    g.attr("edge", fontname="monospace", fontsize="9")
    line_at = {li.insn: li for li in getattr(prog, "line_info", ())}
    for b in blocks:
        rows = []
        for i in b.slots(insns):
            li = line_at.get(i) if source else None
            if li is not None and li.text.strip():
                text = html.escape(f"; {li.text.strip()[:70]}")
                rows.append(
                    # in the instruction column: the number column stays as narrow as its numbers
                    f'<TR><TD></TD><TD ALIGN="LEFT"><FONT COLOR="#6a737d">{text}</FONT></TD></TR>'
                )
            body = html.escape(UNKNOWN_ROW if i in unknown else _row_text(prog, insns, i))
            # HREF makes graphviz wrap the cell in <g id="a_ID"><a>: what the CSS
            # rules address and what a click in the widget lands on
            rows.append(
                f'<TR><TD ID="{scope}i{i}" HREF="#{scope}i{i}" TITLE="insn {i}" ALIGN="RIGHT" BGCOLOR="white">'
                f'<FONT COLOR="#6a737d">{i}:</FONT></TD>'
                f'<TD ID="{scope}t{i}" HREF="#{scope}i{i}" TITLE="insn {i}" ALIGN="LEFT" BGCOLOR="white">'
                f"{body}</TD></TR>"
            )
        label = (
            '<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2" BGCOLOR="white">'
            + "".join(rows)
            + "</TABLE>>"
        )
        g.node(f"b{b.start}", label=label, id=f"{scope}b{b.start}")
    for b in blocks:
        last = b.slots(insns)[-1]
        for e in b.edges:
            if not 0 <= e.target < len(insns):
                continue
            style = {
                "taken": dict(color="#2da44e", label="taken"),
                "not taken": dict(color="#cf222e", label="not taken"),
                "call": dict(style="dashed", label="call"),
            }.get(e.kind, {})
            g.edge(f"b{b.start}", f"b{e.target}", id=f"{scope}e{last}_{e.target}", **style)
    return g


# Highlight colours, shared by the CFG's rules and its legend.
CURRENT = "#fff8c5"
CURRENT_BLOCK = "#bf8700"
ERROR_FILL, ERROR_TEXT = "#ffcecb", "#a40e26"
PATH = "#0969da"
PRUNED = "#8c959f"
CHAIN = "#ddf4ff"
# the path to a step, as classes on the CFG's elements (CfgView.path_marks): each class's
# part of the element styled, and how
ON_PATH, PATH_BLOCK, TAKEN, PRUNED_ROW = "on-path", "path-block", "taken", "pruned"
PATH_LOOKS = {
    ON_PATH: (" text", "font-weight:bold"),
    PATH_BLOCK: (">polygon", f"stroke:{PATH};stroke-width:2"),
    TAKEN: (" path", f"stroke:{PATH};stroke-width:2.5"),
    PRUNED_ROW: (" text", f"fill:{PRUNED};text-decoration:line-through"),
}
DIMMED_OPACITY = 0.3
HEAT_LOW, HEAT_HIGH = (248, 230), (140, 30)  # green/blue of #ffGGBB at 2 visits and at the most


def _heat(count: int, most: int) -> str:
    """Cream → orange on a log scale of visits; no colour while nothing repeats."""
    if count <= 0 or most <= 1:
        return "white"
    t = math.log1p(count - 1) / math.log1p(most - 1)
    g = int(HEAT_LOW[0] + (HEAT_HIGH[0] - HEAT_LOW[0]) * t)
    b = int(HEAT_LOW[1] + (HEAT_HIGH[1] - HEAT_LOW[1]) * t)
    return f"#ff{g:02x}{b:02x}"


def new_scope(kind: str = "g") -> str:
    """A page-unique id prefix (random, so two kernels never pick the same)."""
    return f"bpfnb{kind}{secrets.token_hex(4)}_"  # graphviz escapes "-" in ids


def legend_html(most_visits: int = 0) -> str:
    """What the CFG's colours mean (the heat scale ends at ``most_visits``)."""
    def swatch(fill: str, text: str, border: str = "#d0d7de") -> str:
        return (f'<span style="display:inline-flex;align-items:center;gap:3px;margin-right:10px">'
                f'<span style="display:inline-block;width:12px;height:12px;background:{fill};'
                f'border:2px solid {border}"></span>{html.escape(text)}</span>')

    items = [swatch(CURRENT, "current insn", CURRENT_BLOCK), swatch("white", "block on the path", PATH),
             swatch(ERROR_FILL, "rejected here"), swatch(CHAIN, "def-use chain")]
    if most_visits > 1:
        items += [swatch(_heat(2, most_visits), "visited twice"),
                  swatch(_heat(most_visits, most_visits), f"visited {most_visits}×")]
    items.append(f'<span style="color:{PRUNED};text-decoration:line-through">pruned</span>')
    return f'<div style="font-size:11px;line-height:18px">{"".join(items)}</div>'


class CfgView:
    """A rendered CFG whose highlighting changes without re-running ``dot``.

    Its ids carry a random ``scope`` so any number of views share a page."""

    def __init__(self, prog, *, source: bool = True, scope: str | None = None):
        self.prog = prog
        self.scope = scope or new_scope()
        self.graph = cfg_graph(prog, source=source, scope=self.scope)
        self.blocks = basic_blocks(prog.insns)
        self._block_of = {}
        for b in self.blocks:
            for i in range(b.start, b.end + 1):
                self._block_of[i] = b.start
        svg = self.graph.pipe(format="svg").decode()
        self.base_svg = svg[svg.index("<svg"):]  # inline in HTML: no XML prolog
        head, sep, rest = self.base_svg.partition(f'<g id="{self.scope}graph"')
        self._head, self._rest = head, sep + rest

    def block_of(self, insn: int) -> int:
        return self._block_of[insn]

    # ids, as graphviz writes them
    def row_id(self, insn: int) -> str:
        """The id of instruction ``insn``'s text cell (``a_<scope>t<insn>``)."""
        return f"a_{self.scope}t{insn}"

    def _cells(self, insn: int, part: str) -> str:
        return ",".join(f"#{cell} {part}" for cell in self.cell_ids(insn))

    # The browser marks the current instruction with classes rather than rules (a changed
    # style sheet costs the page a style recalculation over all its sheets per step): the
    # rows and the block below get these classes (bpfnb.widgets.panes' script sets the
    # same names); ``current_rules`` styles them, once.
    CURRENT_CLASS, CURRENT_BLOCK_CLASS = "cur", "cur-block"

    def current_rules(self) -> str:
        """Style rules, sent once, for the classes the browser sets on the current
        instruction's cells and block: the same look as ``rules(current=...)``, and
        more specific than every rule ``rules`` makes (one id, a class and two types)."""
        p, cur, block = self.scope, self.CURRENT_CLASS, self.CURRENT_BLOCK_CLASS
        return (f"#{p}graph g.{cur} polygon{{fill:{CURRENT}}}\n"
                f"#{p}graph g.{cur} text{{opacity:1}}\n"
                f"#{p}graph g.{block}>polygon{{stroke:{CURRENT_BLOCK};stroke-width:3}}\n")

    def path_marks(self, *, path: Iterable[int] = (), taken_edges: Iterable[tuple[int, int]] = (),
                   pruned: Iterable[int] = ()) -> list[tuple[str, str]]:
        """What ``rules`` draws of the path to a step, as ``(class, element id)`` pairs (a
        class of ``PATH_LOOKS``): its instructions' rows, its blocks, the edges it took
        between blocks, the instructions pruned so far. The stepper's browser marks them
        with these classes (they change as the walk goes on), ``path_rules`` styles them."""
        p = self.scope
        path = sorted(set(path))
        marks = [(ON_PATH, f"a_{p}t{i}") for i in path]
        marks += [(PATH_BLOCK, f"{p}b{b}") for b in sorted({self._block_of[i] for i in path if i in self._block_of})]
        marks += [(TAKEN, f"{p}e{a}_{b}") for a, b in taken_edges]
        marks += [(PRUNED_ROW, f"a_{p}t{i}") for i in pruned]
        return marks

    def path_rules(self) -> str:
        """Style rules, sent once, for the classes of ``path_marks``: the same look as
        ``rules``' and less specific than every rule it makes (``:where`` counts for
        nothing: an error's or a chain's rule wins, as it comes later in ``rules``), and
        than ``current_rules``."""
        graph = f":where(#{self.scope}graph)"
        return "".join(f"{graph} g.{name}{part}{{{look}}}\n" for name, (part, look) in PATH_LOOKS.items())

    def cell_ids(self, insn: int) -> list[str]:
        """The ids of instruction ``insn``'s cells (its number and its text)."""
        return [f"a_{self.scope}i{insn}", f"a_{self.scope}t{insn}"]

    def block_ids(self) -> list[str]:
        """Per instruction, the id of its basic block's group ("" for none: the second
        half of a 16-byte load)."""
        return [f"{self.scope}b{self._block_of[i]}" if i in self._block_of else ""
                for i in range(len(self.prog.insns))]

    def svg(self, **highlight) -> str:
        """The SVG with a step's highlighting (``rules``) in a ``<style>`` block, nothing re-laid."""
        return self._head + "<style>" + self.rules(**highlight) + "</style>" + self._rest

    def rules(
        self,
        *,
        current: int | None = None,
        path: Iterable[int] = (),
        visits: Mapping[int, int] | None = None,
        pruned: Iterable[int] = (),
        error: int | None = None,
        taken_edges: Iterable[tuple[int, int]] = (),
        chain: Iterable[int] = (),
    ) -> str:
        """CSS rules highlighting a step; they address only this view's ids.

        ``chain``: instructions of a def-use chain; every other row is dimmed."""
        p = self.scope
        rules = []
        if visits:
            most = max(visits.values(), default=0)
            for i, count in visits.items():
                colour = _heat(count, most)
                if colour != "white":
                    rules.append(f"{self._cells(i, 'polygon')}{{fill:{colour}}}")
        for name, element in self.path_marks(path=path, taken_edges=taken_edges, pruned=pruned):
            part, look = PATH_LOOKS[name]
            rules.append(f"#{element}{part}{{{look}}}")
        chain = sorted(set(chain))
        if chain:
            rules.append(f"#{p}graph .node text{{opacity:{DIMMED_OPACITY}}}")
            for i in chain:
                rules.append(f"{self._cells(i, 'polygon')}{{fill:{CHAIN}}}")
                rules.append(f"#{p}graph #a_{p}i{i} text,#{p}graph #a_{p}t{i} text{{opacity:1}}")
        if error is not None:
            rules.append(f"{self._cells(error, 'polygon')}{{fill:{ERROR_FILL}}}")
            rules.append(f"#a_{p}t{error} text{{fill:{ERROR_TEXT};font-weight:bold}}")
        if current is not None:
            rules.append(f"{self._cells(current, 'polygon')}{{fill:{CURRENT}}}")
            rules.append(f"#{p}graph #a_{p}i{current} text,#{p}graph #a_{p}t{current} text{{opacity:1}}")
            b = self._block_of.get(current)
            if b is not None:
                rules.append(f"#{p}b{b}>polygon{{stroke:{CURRENT_BLOCK};stroke-width:3}}")
        return "".join(rules)

    def _repr_svg_(self) -> str:
        return self.base_svg
