"""The chain of BTF types a tracing program walked: ``ctx → struct sk_buff →
struct net_device → ifindex``, each edge an instruction of the walk."""

from __future__ import annotations

import html
from dataclasses import dataclass

import ipywidgets as w

from ..isa import opcodes as op
from .walk import Walk, btf_type_of, pointer_kind, type_name


@dataclass(frozen=True)
class TypeEdge:
    """At visit ``step`` (insn ``insn``) a load through a ``source`` pointer at
    ``offset`` read ``field`` and gave a ``target`` value."""

    step: int
    insn: int
    source: str  # "ctx" or "struct sk_buff"
    offset: int
    size: int
    field: str  # "dev", "arg 0 (skb)", "+224" when the BTF cannot say
    target: str  # "struct net_device", "scalar", ...
    trust: str = ""  # a BTF pointer's kind: "trusted_ptr_", "rcu_ptr_or_null_", "untrusted_ptr_", ...

    @property
    def shown(self) -> str:
        """The target with its trust level: ``struct net_device (untrusted_ptr_)``."""
        return f"{self.target} ({self.trust})" if self.trust else self.target

    def __str__(self) -> str:
        return f"{self.source} →[{self.field}] {self.shown}"


def _field_name(prog, struct: str, offset: int, size: int) -> str:
    btf = getattr(prog, "kernel_btf", None)
    if btf is None or not struct.startswith("struct "):
        return f"+{offset}"
    try:
        type_id = btf.find(struct.removeprefix("struct "), "struct")
    except Exception:
        return f"+{offset}"
    finder = getattr(btf, "find_member", None)
    if finder is not None:
        try:
            found = finder(type_id, offset, size)
            path = getattr(found, "path", None) or getattr(found, "names", None)
            if path:
                return ".".join(path)
        except Exception:
            pass
    for m in btf.members(type_id):
        if m.bit_offset == offset * 8 and m.name:
            return m.name
    return f"+{offset}"


def _ctx_arg_name(prog, offset: int) -> str:
    index = offset // 8
    btf, attach = getattr(prog, "kernel_btf", None), getattr(prog, "attach_name", None)
    if btf is not None and attach and prog.type in ("tracing", "raw_tracepoint"):
        try:
            _, params = btf.trace_proto(attach)
            if index < len(params):  # tracepoint prototypes carry types, rarely names
                param = params[index]
                return f"arg {index} ({param.name or btf.name_of(param.type)})"
        except Exception:
            pass
    return f"arg {index}" if prog.type == "tracing" else f"+{offset}"


def type_edges(walk: Walk) -> list[TypeEdge]:
    """Every load through ctx or a BTF-typed pointer in the walk, in visit order
    (each (insn, path-independent) load once)."""
    prog = walk.prog
    seen: set[int] = set()
    edges = []
    for v in walk.visits:
        insn = prog.insns[v.insn]
        if insn.cls != op.BPF_LDX or insn.src == op.BPF_REG_FP or v.insn in seen:
            continue
        base = walk.before(v.step).get(f"R{insn.src}", "")
        struct = btf_type_of(base)
        is_ctx = base.startswith("ctx(")
        if struct is None and not is_ctx:
            continue
        seen.add(v.insn)
        size = op.SIZE_BYTES[insn.code & 0x18]
        result = v.regs.get(f"R{insn.dst}", "")
        target = btf_type_of(result) or type_name(result)
        field = _ctx_arg_name(prog, insn.off) if is_ctx else _field_name(prog, struct, insn.off, size)
        edges.append(TypeEdge(v.step, v.insn, "ctx" if is_ctx else struct, insn.off, size, field, target,
                              pointer_kind(result) or ""))
    return edges


def type_chains(walk: Walk) -> list[list[TypeEdge]]:
    """Edges joined into chains from ctx: a load whose base came from another load continues it."""
    edges = type_edges(walk)
    by_step = {e.step: e for e in edges}
    chains: list[list[TypeEdge]] = []
    extended: set[int] = set()
    for e in edges:
        links = walk.origin(e.step, _loaded_reg(walk, e), before=False)
        chain = [by_step[o.step] for o in reversed(links) if o.step in by_step]
        for c in chain[:-1]:
            extended.add(c.step)
        chains.append(chain)
    return [c for c in chains if c and c[-1].step not in extended]


def _loaded_reg(walk: Walk, edge: TypeEdge) -> str:
    return f"R{walk.prog.insns[edge.insn].dst}"


class TypeWalkView(w.VBox):
    """The type chains as rows of buttons; clicking an edge moves ``stepper`` there."""

    def __init__(self, walk: Walk, stepper=None):
        self.walk = walk
        self.stepper = stepper
        self.chains = type_chains(walk)
        rows = []
        for chain in self.chains:
            items: list[w.Widget] = [w.HTML(f"<code>{html.escape(chain[0].source)}</code>")]
            for e in chain:
                b = w.Button(description=f"→ {e.field} (insn {e.insn})", tooltip=str(e),
                             layout=w.Layout(width="auto"))
                b.on_click(lambda _, s=e.step: self.stepper.show(s) if self.stepper else None)
                items += [b, w.HTML(f"<code>{html.escape(e.shown)}</code>")]
            rows.append(w.HBox(items))
        super().__init__(rows or [w.HTML("<i>no loads through typed pointers</i>")])

    def text(self) -> str:
        """``ctx →[arg 0 (skb)] struct sk_buff (trusted_ptr_) →[dev] struct net_device
        (untrusted_ptr_) →[ifindex] scalar`` lines: each pointer with its trust level."""
        return "\n".join(
            chain[0].source + "".join(f" →[{e.field}] {e.shown}" for e in chain) for chain in self.chains)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text())}</pre>"


__all__ = ["TypeEdge", "TypeWalkView", "type_chains", "type_edges"]
