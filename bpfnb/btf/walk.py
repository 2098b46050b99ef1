"""Field walks: which member an access at (offset, size) of a struct reads.

This is what the verifier does for a load through a BTF pointer
(``btf_struct_walk``): descend through nested and anonymous structs and
unions and into arrays until the access lands on one member, and say how
it lands — exactly on it, inside it, on a bitfield, in padding, or past
the end of the struct.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BtfError


@dataclass(frozen=True)
class MemberAccess:
    """Where an access lands: ``path`` of member names (``("dev",)``,
    ``("__sk_common", "skc_dport")``, array indices as ``"[3]"``), the final
    member's type, the access's offset within it, and ``how``:
    ``exact`` / ``inside`` / ``bitfield`` / ``padding`` / ``beyond``."""

    path: tuple[str, ...]
    type_id: int
    offset: int  # bytes from the start of the final member
    how: str
    struct: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return self.path

    def __str__(self) -> str:
        return f"{self.struct}.{'.'.join(self.path) or '?'} ({self.how}, +{self.offset})"


def find_member(btf, struct_id: int, offset: int, size: int) -> MemberAccess:
    """The member an access of ``size`` bytes at byte ``offset`` of the struct reads."""
    root = btf.resolve(struct_id)
    top = btf.type(root)
    if top.kind not in ("struct", "union"):
        raise BtfError(f"{btf.name}: {btf.name_of(struct_id)} is not a struct or union")
    label = btf.name_of(root)
    if offset < 0 or offset + size > (top.size or 0):
        return MemberAccess((), root, offset, "beyond", label)
    found = _walk(btf, root, offset, size, (), ())
    if found is None:
        return MemberAccess((), root, offset, "padding", label)
    path, type_id, inner, how = found
    return MemberAccess(path, type_id, inner, how, label)


def _walk(btf, type_id: int, offset: int, size: int, path: tuple[str, ...], within: tuple[int, ...]):
    """``within``: the struct/union/array types the walk is inside; one of them again is a
    loop (malformed BTF), refused rather than followed."""
    resolved = btf.resolve(type_id)
    if resolved in within:
        raise BtfError(f"{btf.name}: malformed BTF: {btf.name_of(resolved)} (type {resolved}) contains itself")
    within = (*within, resolved)
    t = btf.type(resolved)
    if t.kind == "array":
        elem = t.elem_type
        elem_size = btf.sizeof(elem)
        if elem_size == 0:
            return None
        index, inner = divmod(offset, elem_size)
        if t.nelems and index >= t.nelems:
            return None
        if inner + size > elem_size:
            return path, type_id, offset, "inside"
        return _walk(btf, elem, inner, size, (*path[:-1], f"{path[-1]}[{index}]") if path else (f"[{index}]",),
                     within)
    if t.kind not in ("struct", "union"):
        if offset == 0 and size == btf.sizeof(type_id):
            return path, type_id, 0, "exact"
        return path, type_id, offset, "inside"
    best = None
    for m in t.members:
        start_bit = m.bit_offset
        if m.bitfield_size:
            lo, hi = start_bit // 8, (start_bit + m.bitfield_size + 7) // 8
            if lo <= offset < hi:
                candidate = ((*path, m.name), m.type, offset - lo, "bitfield")
                best = best or candidate
            continue
        start = start_bit // 8
        msize = btf.sizeof(m.type)
        if not start <= offset < start + max(msize, 1) or msize == 0:
            continue
        inner_path = (*path, m.name) if m.name else path
        inner = btf.type(btf.resolve(m.type))
        if inner.kind in ("struct", "union", "array"):
            found = _walk(btf, m.type, offset - start, size, inner_path, within)
            if found is not None and found[3] in ("exact", "inside") and (best is None or best[3] != "exact"):
                if found[3] == "exact":
                    return found
                best = best if best is not None and best[3] == "exact" else found
            continue
        if offset == start and size == msize:
            return inner_path, m.type, 0, "exact"
        if best is None:
            best = (inner_path, m.type, offset - start, "inside")
    return best
