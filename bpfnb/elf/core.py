"""CO-RE: relocating field offsets, sizes and type facts against a target BTF.

A ``.BTF.ext`` CO-RE record says: instruction N encodes a fact about the
object's own view of a kernel type (``sk_buff.len`` is at byte 112), reached
by an access string (``0:1`` = first element, member #1). Relocation finds
the same field by *name* in the target kernel's BTF — candidates are types
of the same kind whose "essential" name matches (``sk_buff___old`` →
``sk_buff``), anonymous struct/union members searched through — and rewrites
the instruction with the target's fact. Rules learned from libbpf's
relo_core.c; the code is ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import RelocationError
from ..isa import Insn, imm64, ld_imm64
from ..isa import opcodes as op

POISON_HELPER = 0xBAD2310  # libbpf's marker: "call unknown#195896080"
EXISTENCE_KINDS = {"field_exists", "type_exists", "type_matches", "enumval_exists"}
FIELD_KINDS = {"field_byte_offset", "field_byte_size", "field_exists", "field_signed",
               "field_lshift_u64", "field_rshift_u64"}
TYPE_KINDS = {"type_id_local", "type_id_target", "type_exists", "type_size", "type_matches"}
ENUM_KINDS = {"enumval_exists", "enumval_value"}


@dataclass(frozen=True)
class CoreRelocation:
    """One applied relocation: where, what it means, the value before and after."""

    insn: int
    kind: str
    local_type: str  # "struct sk_buff"
    access: str  # "0:1"
    spec: str  # "sk_buff.len" (local names)
    target_type: int  # id in the target BTF (0: none found)
    old_value: int
    new_value: int
    poisoned: bool = False

    def __str__(self) -> str:
        if self.poisoned:
            return f"insn {self.insn}: {self.kind} {self.spec}: no match in the target BTF (poisoned)"
        return f"insn {self.insn}: {self.kind} {self.spec}: {self.old_value} -> {self.new_value}"


@dataclass(frozen=True)
class _Field:
    """The end of an access walk: bit offset from the root, the member, its type."""

    bit_offset: int
    type_id: int
    bitfield_size: int
    names: tuple[str, ...]


def essential_name(name: str) -> str:
    """``sk_buff`` for ``sk_buff___v5_10`` (libbpf's flavour suffix)."""
    cut = name.find("___")
    return name[:cut] if cut > 0 else name


def _local_walk(btf, root: int, access: list[int]) -> tuple[_Field, list[str]]:
    """Walk the local type by indices; returns the field and the member names used."""
    type_id = btf.resolve(root)
    bit = access[0] * 8 * btf.sizeof(type_id)
    names: list[str] = []
    spec = []
    bitfield = 0
    for index in access[1:]:
        t = btf.type(btf.resolve(type_id))
        if t.kind in ("struct", "union"):
            if not 0 <= index < len(t.members):
                raise IndexError(f"member #{index} of {t.kind} {t.name or '(anon)'}")
            m = t.members[index]
            bit += m.bit_offset
            bitfield = m.bitfield_size
            type_id = m.type
            names.append(m.name)
            spec.append(m.name or f"<anon#{index}>")
        elif t.kind == "array":
            bit += index * 8 * btf.sizeof(t.elem_type)
            type_id = t.elem_type
            bitfield = 0
            names.append(f"[{index}]")
            spec.append(f"[{index}]")
        else:
            raise IndexError(f"cannot index into {t.kind}")
    return _Field(bit, type_id, bitfield, tuple(names)), spec


def _find_member(btf, struct_id: int, name: str) -> tuple[int, int, int] | None:
    """(bit offset, type id, bitfield size) of member ``name``, through anonymous members."""
    t = btf.type(btf.resolve(struct_id))
    for m in t.members:
        if m.name == name:
            return m.bit_offset, m.type, m.bitfield_size
        if not m.name:
            inner = btf.type(btf.resolve(m.type))
            if inner.kind in ("struct", "union"):
                found = _find_member(btf, m.type, name)
                if found is not None:
                    return m.bit_offset + found[0], found[1], found[2]
    return None


def _compatible(local_btf, local_id: int, target_btf, target_id: int) -> bool:
    a = local_btf.type(local_btf.resolve(local_id))
    b = target_btf.type(target_btf.resolve(target_id))
    norm = {"enum64": "enum", "fwd": "struct"}
    ka, kb = norm.get(a.kind, a.kind), norm.get(b.kind, b.kind)
    if {ka, kb} <= {"enum", "int"}:
        return True
    if ka != kb:
        return False
    if ka == "array":
        return _compatible(local_btf, a.elem_type, target_btf, b.elem_type)
    return True


def _target_walk(local_btf, names, local_ids, target_btf, target_root: int, first: int):
    type_id = target_btf.resolve(target_root)
    bit = first * 8 * target_btf.sizeof(type_id)
    bitfield = 0
    for name, local_id in zip(names, local_ids, strict=True):
        t = target_btf.type(target_btf.resolve(type_id))
        if name.startswith("["):
            if t.kind != "array":
                return None
            index = int(name[1:-1])
            if t.nelems and index >= t.nelems:
                return None
            bit += index * 8 * target_btf.sizeof(t.elem_type)
            type_id, bitfield = t.elem_type, 0
            continue
        if t.kind not in ("struct", "union"):
            return None
        found = _find_member(target_btf, type_id, name)
        if found is None:
            return None
        bit += found[0]
        type_id, bitfield = found[1], found[2]
        if not _compatible(local_btf, local_id, target_btf, type_id):
            return None
    return _Field(bit, type_id, bitfield, tuple(names))


def _candidates(local_btf, local_id: int, target_btf) -> list[int]:
    t = local_btf.type(local_btf.resolve(local_id))
    name = essential_name(t.name)
    if not name:
        return []
    kinds = {"struct": ("struct", "union"), "union": ("union", "struct"), "enum": ("enum", "enum64"),
             "enum64": ("enum", "enum64")}.get(t.kind, (t.kind,))
    found = []
    for kind in kinds:
        for cand in target_btf.find_all(name, kind) if hasattr(target_btf, "find_all") else []:
            if essential_name(target_btf.type(cand).name) == name:
                found.append(cand)
    return found


def _field_facts(btf, field: _Field) -> dict[str, int]:
    size = btf.sizeof(field.type_id)
    if field.bitfield_size:
        byte_size = size
        byte_off = (field.bit_offset // 8) // byte_size * byte_size
        bit_in_load = field.bit_offset - byte_off * 8
        lshift = 64 - (bit_in_load + field.bitfield_size)
        rshift = 64 - field.bitfield_size
    else:
        byte_size = size
        byte_off = field.bit_offset // 8
        lshift = 64 - byte_size * 8
        rshift = 64 - byte_size * 8
    t = btf.type(btf.resolve(field.type_id))
    signed = int(t.kind == "int" and t.int_signed) or int(
        t.kind in ("enum", "enum64") and any(v.value < 0 for v in t.values))
    return {"field_byte_offset": byte_off, "field_byte_size": byte_size, "field_exists": 1,
            "field_signed": signed, "field_lshift_u64": lshift, "field_rshift_u64": rshift}


def compute(local_btf, target_btf, type_id: int, access: str, kind: str):
    """(spec text, local value, target value or None when nothing matches, target type id)."""
    root = local_btf.type(local_btf.resolve(type_id))
    indices = [int(x) for x in access.split(":")] if access else [0]
    if kind in FIELD_KINDS:
        field, spec = _local_walk(local_btf, type_id, indices)
        local = _field_facts(local_btf, field)[kind]
        text = ".".join([essential_name(root.name) or "(anon)", *spec]).replace(".[", "[")
        ids = []
        t_id = type_id
        for idx in indices[1:]:
            t = local_btf.type(local_btf.resolve(t_id))
            t_id = t.members[idx].type if t.kind in ("struct", "union") else t.elem_type
            ids.append(t_id)
        for cand in _candidates(local_btf, type_id, target_btf):
            target = _target_walk(local_btf, field.names, ids, target_btf, cand, indices[0])
            if target is not None:
                return text, local, _field_facts(target_btf, target)[kind], cand
        return text, local, None, 0
    if kind in TYPE_KINDS:
        text = f"{root.kind} {root.name}"
        local = {"type_id_local": type_id, "type_id_target": type_id, "type_exists": 1,
                 "type_size": local_btf.sizeof(type_id) if root.kind not in ("func_proto", "fwd") else 0,
                 "type_matches": 1}[kind]
        if kind == "type_id_local":
            return text, local, type_id, type_id
        cands = _candidates(local_btf, type_id, target_btf)
        if not cands:
            return text, local, None, 0
        cand = cands[0]
        value = {"type_id_target": cand, "type_exists": 1, "type_matches": 1,
                 "type_size": target_btf.sizeof(cand)}[kind]
        return text, local, value, cand
    if kind in ENUM_KINDS:
        enumerator = root.values[indices[0]]
        text = f"enum {root.name}::{enumerator.name}"
        local = 1 if kind == "enumval_exists" else enumerator.value
        for cand in _candidates(local_btf, type_id, target_btf):
            for v in target_btf.type(cand).values:
                if v.name == enumerator.name:
                    return text, local, (1 if kind == "enumval_exists" else v.value), cand
        return text, local, None, 0
    raise RelocationError(f"unknown CO-RE relocation kind {kind!r}")


def _insn_value(insns, i: int) -> int:
    insn = insns[i]
    if insn.is_ld_imm64:
        return imm64(insns, i)
    if insn.cls in (op.BPF_LDX, op.BPF_ST, op.BPF_STX):
        return insn.off
    return insn.imm


def apply(insns: list[Insn], index: int, local_btf, target_btf, type_id: int, access: str, kind: str,
          *, where: str) -> CoreRelocation:
    """Relocate ``insns[index]`` in place; returns the record of what changed."""
    try:
        spec, local, target, target_id = compute(local_btf, target_btf, type_id, access, kind)
    except (IndexError, KeyError) as exc:
        raise RelocationError(f"{where}: insn {index}: CO-RE access {access!r} on type {type_id}: {exc}") from None
    insn = insns[index]
    old = _insn_value(insns, index)
    local_type = local_btf.name_of(type_id)
    if target is None and kind in EXISTENCE_KINDS:
        target = 0
    if target is None:
        # like libbpf: the instruction becomes a call the verifier refuses, so
        # an unreached relocation is harmless and a reached one says so
        insns[index] = Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, POISON_HELPER)
        if insn.is_ld_imm64:
            insns[index + 1] = Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, POISON_HELPER)
        return CoreRelocation(index, kind, local_type, access, spec, 0, old, old, poisoned=True)
    if insn.is_ld_imm64:
        insns[index], insns[index + 1] = ld_imm64(insn.dst, target, insn.src)
    elif insn.cls in (op.BPF_LDX, op.BPF_ST, op.BPF_STX):
        if kind != "field_byte_offset":
            raise RelocationError(f"{where}: insn {index}: {kind} cannot patch a memory access")
        if not -(1 << 15) <= target < (1 << 15):
            raise RelocationError(f"{where}: insn {index}: offset {target} of {spec} does not fit in 16 bits")
        insns[index] = Insn(insn.code, insn.dst, insn.src, target, insn.imm)
    elif insn.cls in (op.BPF_ALU, op.BPF_ALU64) and not insn.code & op.BPF_X:
        insns[index] = Insn(insn.code, insn.dst, insn.src, insn.off, target)
    else:
        raise RelocationError(f"{where}: insn {index}: CO-RE {kind} on an instruction that holds no value "
                              f"(opcode {insn.code:#04x})")
    if old != local and not insn.is_ld_imm64:
        raise RelocationError(f"{where}: insn {index}: expected {local} ({spec}) in the instruction, found {old}")
    return CoreRelocation(index, kind, local_type, access, spec, target_id, old, target)


__all__ = ["CoreRelocation", "apply", "compute", "essential_name"]
