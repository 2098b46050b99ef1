"""The control-flow graph of a program, drawn with graphviz.

``basic_blocks`` splits a program into blocks; ``cfg_graph`` draws them (each
block a table of its instructions, with source lines from BTF line info;
branch edges labelled taken / not taken; bpf-to-bpf calls dashed).
``CfgView`` renders the SVG once and then highlights a verifier step — the
current instruction, the path walked so far, visit counts as a heat map,
pruned and rejected instructions — by injecting CSS rules that address the
ids graphviz gives blocks (``b<start>``), rows (``a_i<insn>``) and edges
(``e<from>_<to>``), so stepping never calls ``dot`` again.
"""

from __future__ import annotations

import html
import math
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


def cfg_graph(prog, *, source: bool = True, title: str | None = None) -> graphviz.Digraph:
    """The CFG of a ``Program`` as a ``graphviz.Digraph`` (no highlighting)."""
    insns = prog.insns
    blocks = basic_blocks(insns)
    g = graphviz.Digraph(name=title or prog.name)
    g.attr("graph", fontname="monospace", rankdir="TB", nodesep="0.3", ranksep="0.35")
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
                    f'<TR><TD ALIGN="LEFT" COLSPAN="2"><FONT COLOR="#6a737d">{text}</FONT></TD></TR>'
                )
            body = html.escape(_row_text(prog, insns, i))
            rows.append(
                f'<TR><TD ID="i{i}" HREF="#i{i}" TITLE="insn {i}" ALIGN="RIGHT" BGCOLOR="white">'
                f'<FONT COLOR="#6a737d">{i}:</FONT></TD>'
                f'<TD ID="t{i}" HREF="#i{i}" TITLE="insn {i}" ALIGN="LEFT" BGCOLOR="white">{body}</TD></TR>'
            )
        label = (
            '<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2" BGCOLOR="white">'
            + "".join(rows)
            + "</TABLE>>"
        )
        g.node(f"b{b.start}", label=label, id=f"b{b.start}")
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
            g.edge(f"b{b.start}", f"b{e.target}", id=f"e{last}_{e.target}", **style)
    return g


def _heat(count: int, most: int) -> str:
    """Cream → orange on a log scale of visits; no colour while nothing repeats."""
    if count <= 0 or most <= 1:
        return "white"
    t = math.log1p(count - 1) / math.log1p(most - 1)
    g = int(248 - 108 * t)
    b = int(230 - 200 * t)
    return f"#ff{g:02x}{b:02x}"


class CfgView:
    """A rendered CFG whose highlighting changes without re-running ``dot``."""

    def __init__(self, prog, *, source: bool = True):
        self.prog = prog
        self.graph = cfg_graph(prog, source=source)
        self.blocks = basic_blocks(prog.insns)
        self._block_of = {}
        for b in self.blocks:
            for i in range(b.start, b.end + 1):
                self._block_of[i] = b.start
        self.base_svg = self.graph.pipe(format="svg").decode()
        head, sep, rest = self.base_svg.partition("<g id=\"graph0\"")
        self._head, self._rest = head, sep + rest

    def block_of(self, insn: int) -> int:
        return self._block_of[insn]

    def svg(
        self,
        *,
        current: int | None = None,
        path: Iterable[int] = (),
        visits: Mapping[int, int] | None = None,
        pruned: Iterable[int] = (),
        error: int | None = None,
        taken_edges: Iterable[tuple[int, int]] = (),
    ) -> str:
        """The SVG with a step's highlighting: a ``<style>`` block, nothing re-laid."""
        rules = []
        if visits:
            most = max(visits.values(), default=0)
            for i, count in visits.items():
                colour = _heat(count, most)
                if colour != "white":
                    rules.append(f"#a_i{i} polygon,#a_t{i} polygon{{fill:{colour}}}")
        for i in sorted(set(path)):
            rules.append(f"#a_t{i} text{{font-weight:bold}}")
        blocks_on_path = {self._block_of[i] for i in set(path) if i in self._block_of}
        for b in sorted(blocks_on_path):
            rules.append(f"#b{b}>polygon{{stroke:#0969da;stroke-width:2}}")
        for a, b in taken_edges:
            rules.append(f"#e{a}_{b} path{{stroke:#0969da;stroke-width:2.5}}")
        for i in pruned:
            rules.append(f"#a_t{i} text{{fill:#8c959f;text-decoration:line-through}}")
        if error is not None:
            rules.append(f"#a_i{error} polygon,#a_t{error} polygon{{fill:#ffcecb}}")
            rules.append(f"#a_t{error} text{{fill:#a40e26;font-weight:bold}}")
        if current is not None:
            rules.append(f"#a_i{current} polygon,#a_t{current} polygon{{fill:#fff8c5}}")
            b = self._block_of.get(current)
            if b is not None:
                rules.append(f"#b{b}>polygon{{stroke:#bf8700;stroke-width:3}}")
        style = "<style>" + "".join(rules) + "</style>"
        return self._head + style + self._rest

    def _repr_svg_(self) -> str:
        return self.base_svg
