"""C declarations of BTF types, in the style of ``bpftool btf dump ... format c``."""

from __future__ import annotations

from ..errors import BtfError

INDENT = "\t"
MAX_DECL_DEPTH = 64  # types nested inside one declaration (bpftool's deepest on vmlinux is ~10)


def _enter(btf, type_id: int, path: tuple[int, ...]) -> tuple[int, ...]:
    """``path`` + ``type_id``, refusing a type that contains itself (malformed BTF can
    loop: a pointer to itself, an anonymous struct holding itself) or a runaway depth."""
    if type_id in path:
        raise BtfError(f"{btf.name}: malformed BTF: type {type_id} contains itself "
                       f"({' -> '.join(map(str, (*path[path.index(type_id):], type_id)))})")
    if len(path) >= MAX_DECL_DEPTH:
        raise BtfError(f"{btf.name}: malformed BTF: type {path[0]} nests deeper than {MAX_DECL_DEPTH}")
    return (*path, type_id)


def _base(btf, type_id: int) -> str:
    t = btf.type(type_id)
    if t.kind == "void":
        return "void"
    if t.kind in ("struct", "union"):
        return f"{t.kind} {t.name}" if t.name else t.kind
    if t.kind in ("enum", "enum64"):
        return f"enum {t.name}" if t.name else "enum"
    if t.kind == "fwd":
        return f"{'union' if t.kflag else 'struct'} {t.name}"
    return t.name


def declarator(btf, type_id: int, name: str, *, depth: int = 1, path: tuple[int, ...] = ()) -> str:
    """``type name`` as C writes it (``char cb[48]``, ``void (*fn)(struct sk_buff *)``);
    anonymous struct/union types are written out inline. ``path``: the types being
    declared around this one (a loop among them is malformed BTF)."""
    path = _enter(btf, type_id, path)
    t = btf.type(type_id)
    kind = t.kind
    if kind == "ptr":
        inner = btf.type(btf.strip_modifiers(t.type))
        wrapped = f"(*{name})" if inner.kind in ("func_proto", "array") else f"*{name}"
        return declarator(btf, t.type, wrapped, depth=depth, path=path)
    if kind == "array":
        target = f"({name})" if name.startswith("*") else name
        return declarator(btf, t.elem_type, f"{target}[{t.nelems}]", depth=depth, path=path)
    if kind == "func_proto":
        params = ", ".join(declarator(btf, p.type, p.name, depth=depth, path=path).strip() if p.type else "..."
                           for p in t.params) or "void"
        return declarator(btf, t.type, f"{name}({params})", depth=depth, path=path)
    if kind in ("const", "volatile", "restrict"):
        target = btf.type(t.type)
        if target.kind == "ptr":
            return declarator(btf, t.type, f" {kind} {name}".rstrip(), depth=depth, path=path)
        return f"{kind} {declarator(btf, t.type, name, depth=depth, path=path)}"
    if kind == "type_tag":
        return declarator(btf, t.type, name, depth=depth, path=path)
    if kind in ("struct", "union") and not t.name:
        body = _body(btf, t, depth, path)
        return f"{kind} {{\n{body}{INDENT * (depth - 1)}}}" + (f" {name}" if name else "")
    if kind in ("enum", "enum64") and not t.name:
        return f"{_enum(btf, t, depth)}" + (f" {name}" if name else "")
    base = _base(btf, type_id)
    if not name:
        return base
    return f"{base} {name}" if not name.startswith("*") else f"{base} {name}"


def _body(btf, t, depth: int, path: tuple[int, ...] = ()) -> str:
    lines = []
    for m in t.members:
        text = declarator(btf, m.type, m.name, depth=depth + 1, path=path)
        if m.bitfield_size:
            text += f": {m.bitfield_size}"
        lines.append(f"{INDENT * depth}{text};\n")
    return "".join(lines)


def _enum(btf, t, depth: int) -> str:
    head = f"enum {t.name} {{" if t.name else "enum {"
    items = "".join(f"{INDENT * depth}{v.name} = {v.value},\n" for v in t.values)
    return f"{head}\n{items}{INDENT * (depth - 1)}}}"


def c_decl(btf, type_id: int) -> str:
    """The C definition of a named struct, union, enum or typedef."""
    t = btf.type(type_id)
    if t.kind in ("struct", "union"):
        return f"{t.kind} {t.name} {{\n{_body(btf, t, 1)}}};"
    if t.kind in ("enum", "enum64"):
        return _enum(btf, t, 1) + ";"
    if t.kind == "typedef":
        return f"typedef {declarator(btf, t.type, t.name)};"
    if t.kind == "func":
        return f"{declarator(btf, t.type, t.name)};"
    raise BtfError(f"{btf.name}: no C definition for {t.kind} {t.name or type_id}")
