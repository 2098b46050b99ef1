"""CO-RE: relocating field offsets, sizes and type facts against a target BTF.

A ``.BTF.ext`` CO-RE record says: instruction N encodes a fact about the
object's own view of a kernel type (``sk_buff.len`` is at byte 112), reached
by an access string (``0:1`` = element 0, member #1). Relocation follows
libbpf's ``relo_core.c`` (the rules are learned from it; the code is ours):

- the access string becomes a *spec*: the raw indices, and the accessors
  that mean something — the root element, each *named* member and each array
  index; anonymous structs/unions on the way only add their offset;
- candidates are the target types of a compatible kind whose essential name
  (``sk_buff`` for ``sk_buff___old``) is the local one's;
- each candidate is matched accessor by accessor: a named member is searched
  by name through the target's anonymous members, so
  ``sock.__sk_common.skc_num`` finds ``skc_num`` wherever the target nests it;
- the instruction's value is checked against the local fact (except where
  libbpf does not: bitfield offsets/sizes/left shifts, type ids) and replaced
  by the target's; a load of a field whose size changed is resized when that
  is safe (pointers, unsigned integers), poisoned otherwise;
- a relocation no candidate satisfies is *poisoned*: the instruction becomes
  ``call 0xbad2310``, which the verifier rejects only if it is reached. bpfnb
  also reports it as a warning naming the access.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BtfError, RelocationError
from ..isa import Insn, imm64, ld_imm64
from ..isa import opcodes as op

POISON_HELPER = 0xBAD2310  # libbpf's marker: "call unknown#195896080"
SPEC_MAX_LEN = 64  # BPF_CORE_SPEC_MAX_LEN: deepest access string libbpf accepts
COMPAT_MAX_DEPTH = 32  # how deep type comparisons recurse before giving up (libbpf's bound)
U64_MASK = (1 << 64) - 1
S16_MAX = (1 << 15) - 1
FLAVOR_SEP = "___"

FIELD_KINDS = ("field_byte_offset", "field_byte_size", "field_exists", "field_signed",
               "field_lshift_u64", "field_rshift_u64")
TYPE_KINDS = ("type_id_local", "type_id_target", "type_exists", "type_size", "type_matches")
ENUM_KINDS = ("enumval_exists", "enumval_value")
# libbpf's short names, used in its debug output and in our spec text
KIND_LABELS = {
    "field_byte_offset": "byte_off", "field_byte_size": "byte_sz", "field_exists": "field_exists",
    "field_signed": "signed", "field_lshift_u64": "lshift_u64", "field_rshift_u64": "rshift_u64",
    "type_id_local": "local_type_id", "type_id_target": "target_type_id", "type_exists": "type_exists",
    "type_matches": "type_matches", "type_size": "type_size", "enumval_exists": "enumval_exists",
    "enumval_value": "enumval_value",
}
COMPOSITE = ("struct", "union")
ENUMS = ("enum", "enum64")
LOAD_STORE_SIZES = {1: op.BPF_B, 2: op.BPF_H, 4: op.BPF_W, 8: op.BPF_DW}
SIZE_BYTES = {v: k for k, v in LOAD_STORE_SIZES.items()}
SIZE_MASK = 0x18


@dataclass(frozen=True)
class CoreRelocation:
    """One applied relocation: where, what it means, the value before and after.

    ``spec`` is the access as C writes it (``sock.__sk_common.skc_num``: anonymous
    members are not named); ``local_spec``/``target_spec`` the same in libbpf's
    notation (``[13] struct sock.__sk_common.skc_num (0:0:2:1:1 @ offset 14)``)
    in the object's BTF and the target's.
    ``func``/``func_insn`` place the instruction in its function as libbpf counts
    (``prog 'tcp_v4_connect_ret': relo #1: patched insn #21``); ``relo`` is the
    record's number in its section."""

    insn: int
    kind: str
    local_type: str  # "struct sk_buff"
    access: str  # "0:1"
    spec: str
    target_type: int  # id in the target BTF (0: none found)
    old_value: int
    new_value: int
    poisoned: bool = False
    local_spec: str = ""
    target_spec: str = ""
    mem_size: tuple[int, int] | None = None  # (old, new) bytes of a resized load/store
    func: str = ""
    func_insn: int = -1
    relo: int = -1
    reason: str = ""  # why it was poisoned

    @property
    def warning(self) -> str | None:
        """What bpfnb reports for a poisoned relocation (None otherwise)."""
        if not self.poisoned:
            return None
        where = f"{self.func} insn {self.func_insn}" if self.func else f"insn {self.insn}"
        return (f"CO-RE {KIND_LABELS[self.kind]} {self.spec}: {self.reason or 'no match in the target BTF'}; "
                f"{where} poisoned (call {POISON_HELPER:#x}): the program is rejected if it reaches it")

    def __str__(self) -> str:
        if self.poisoned:
            return f"insn {self.insn}: {self.kind} {self.spec}: {self.reason or 'no match in the target BTF'} (poisoned)"
        sized = f" (size {self.mem_size[0]} -> {self.mem_size[1]})" if self.mem_size else ""
        return f"insn {self.insn}: {self.kind} {self.spec}: {self.old_value} -> {self.new_value}{sized}"


# -- specs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Accessor:
    """A step that means something: the root element, a named member or an array index.

    ``type_id`` is the enclosing struct/union for a member, the element type for an
    index; ``name`` is None for indices (an enumerator's name for enum relocations)."""

    type_id: int
    idx: int
    name: str | None = None


@dataclass
class Spec:
    """An access resolved in one BTF: libbpf's ``bpf_core_spec``."""

    btf: object
    root_type_id: int
    kind: str
    raw: list[int] = field(default_factory=list)
    accessors: list[Accessor] = field(default_factory=list)
    bit_offset: int = 0

    @property
    def path(self) -> str:
        """The access as C would write it: ``sock.__sk_common.skc_num``, ``task_struct.comm[3]``,
        ``struct sk_buff`` (type relocations), ``enum e::VALUE`` (enumerator relocations)."""
        root = self.btf.type(self.root_type_id)
        if self.kind in TYPE_KINDS:
            return self.btf.name_of(self.root_type_id)
        if self.kind in ENUM_KINDS:
            return f"{self.btf.name_of(self.btf.resolve(self.root_type_id))}::{self.accessors[0].name}"
        text = essential_name(root.name) or "(anon)"
        for i, acc in enumerate(self.accessors):
            if acc.name:
                text += f".{acc.name}"
            elif i > 0 or acc.idx > 0:
                text += f"[{acc.idx}]"
        return text

    def __str__(self) -> str:
        root = self.btf.type(self.root_type_id)
        text = f"[{self.root_type_id}] {root.kind} {root.name or '<anon>'}"
        if self.kind in TYPE_KINDS:
            return text
        if self.kind in ENUM_KINDS:
            enum = self.btf.type(self.btf.resolve(self.root_type_id))
            value = enum.values[self.raw[0]]
            return f"{text}::{value.name} = {value.value}"
        for i, acc in enumerate(self.accessors):
            if acc.name:
                text += f".{acc.name}"
            elif i > 0 or acc.idx > 0:
                text += f"[{acc.idx}]"
        at = f"{self.bit_offset // 8}" + (f".{self.bit_offset % 8}" if self.bit_offset % 8 else "")
        return f"{text} ({':'.join(map(str, self.raw))} @ offset {at})"


def essential_name(name: str) -> str:
    """``sk_buff`` for ``sk_buff___v5_10``: the name before the last flavour suffix
    (``___`` between a non-underscore and a non-underscore)."""
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1:i + 4] == FLAVOR_SEP and name[i + 4] != "_":
            return name[:i + 1]
    return name


def _skip(btf, type_id: int) -> tuple[int, object]:
    resolved = btf.resolve(type_id)
    return resolved, btf.type(resolved)


def _is_flex_array(btf, prev: Accessor | None, array) -> bool:
    """A zero-length array that is the last member of its struct."""
    if prev is None or not prev.name or array.nelems > 0:
        return False
    return prev.idx == len(btf.type(prev.type_id).members) - 1


def parse_spec(btf, type_id: int, access: str, kind: str) -> Spec:
    """The local spec of a relocation (``bpf_core_parse_spec``); ``ValueError`` when malformed."""
    spec = Spec(btf, type_id, kind)
    if kind in TYPE_KINDS:
        if access != "0":
            raise ValueError(f"type relocation with access {access!r} (expected '0')")
        return spec
    if not access or access.startswith(":"):
        raise ValueError(f"empty access string {access!r}")
    try:
        spec.raw = [int(x) for x in access.split(":")]
    except ValueError:
        raise ValueError(f"access string {access!r} is not numbers separated by ':'") from None
    if any(x < 0 for x in spec.raw) or len(spec.raw) > SPEC_MAX_LEN:
        raise ValueError(f"access string {access!r} out of range")
    cur, t = _skip(btf, type_id)
    spec.accessors.append(Accessor(cur, spec.raw[0]))
    if kind in ENUM_KINDS:
        if t.kind not in ENUMS or len(spec.raw) > 1 or spec.raw[0] >= len(t.values):
            raise ValueError(f"enumerator #{spec.raw[0]} of {btf.name_of(type_id)}")
        spec.accessors[0] = Accessor(cur, spec.raw[0], t.values[spec.raw[0]].name)
        return spec
    spec.bit_offset = spec.raw[0] * btf.sizeof(cur) * 8
    for index in spec.raw[1:]:
        cur, t = _skip(btf, cur)
        if t.kind in COMPOSITE:
            if index >= len(t.members):
                raise ValueError(f"member #{index} of {btf.name_of(cur)} (it has {len(t.members)})")
            m = t.members[index]
            spec.bit_offset += m.bit_offset
            if m.name:
                spec.accessors.append(Accessor(cur, index, m.name))
            cur = m.type
        elif t.kind == "array":
            prev = spec.accessors[-1] if spec.accessors else None
            elem, _ = _skip(btf, t.elem_type)
            if not _is_flex_array(btf, prev, t) and index >= t.nelems:
                raise ValueError(f"index {index} of {btf.name_of(cur)}")
            spec.accessors.append(Accessor(elem, index))
            spec.bit_offset += index * btf.sizeof(elem) * 8
            cur = elem
        else:
            raise ValueError(f"index {index} into {t.kind} {btf.name_of(cur)}")
    return spec


# -- compatibility -------------------------------------------------------------------


def _kinds_compat(a, b) -> bool:
    return a.kind == b.kind or (a.kind in ENUMS and b.kind in ENUMS)


def _int_plain(t) -> bool:
    """Not one of the deprecated bitfield-like integers (BTF_INT_OFFSET != 0)."""
    return t.int_offset == 0


def fields_are_compat(local_btf, local_id: int, targ_btf, targ_id: int) -> bool:
    """Can a field of this local type be relocated to one of the target type?"""
    for _ in range(COMPAT_MAX_DEPTH):
        local_id, lt = _skip(local_btf, local_id)
        targ_id, tt = _skip(targ_btf, targ_id)
        if lt.kind in COMPOSITE and tt.kind in COMPOSITE:
            return True
        if not _kinds_compat(lt, tt):
            return False
        if lt.kind in ("ptr", "float"):
            return True
        if lt.kind in ("fwd", *ENUMS):
            a, b = essential_name(lt.name), essential_name(tt.name)
            return not a or not b or a == b
        if lt.kind == "int":
            return _int_plain(lt) and _int_plain(tt)
        if lt.kind != "array":
            return False
        local_id, targ_id = lt.elem_type, tt.elem_type
    return False


def types_are_compat(local_btf, local_id: int, targ_btf, targ_id: int, level: int = COMPAT_MAX_DEPTH) -> bool:
    """``bpf_core_types_are_compat``: kinds agree all the way down (names are not compared)."""
    if not _kinds_compat(local_btf.type(local_id), targ_btf.type(targ_id)):
        return False
    for _ in range(COMPAT_MAX_DEPTH):
        local_id, lt = _skip(local_btf, local_id)
        targ_id, tt = _skip(targ_btf, targ_id)
        if not _kinds_compat(lt, tt):
            return False
        if lt.kind in ("void", "fwd", *COMPOSITE, *ENUMS):
            return True
        if lt.kind == "int":
            return _int_plain(lt) and _int_plain(tt)
        if lt.kind == "ptr":
            local_id, targ_id = lt.type, tt.type
        elif lt.kind == "array":
            local_id, targ_id = lt.elem_type, tt.elem_type
        elif lt.kind == "func_proto":
            if len(lt.params) != len(tt.params) or (lt.params and level <= 0):
                return False
            for lp, tp in zip(lt.params, tt.params, strict=True):
                if not types_are_compat(local_btf, local_btf.resolve(lp.type), targ_btf,
                                        targ_btf.resolve(tp.type), level - 1):
                    return False
            local_id, targ_id = lt.type, tt.type
        else:
            return False
    return False


def _names_match(local_name: str, targ_name: str) -> bool:
    if not targ_name:
        return not local_name
    return essential_name(local_name) == essential_name(targ_name)


def types_match(local_btf, local_id: int, targ_btf, targ_id: int, behind_ptr: bool = False,
                level: int = COMPAT_MAX_DEPTH) -> bool:
    """``bpf_core_types_match``: the stricter "same shape" test of ``bpf_core_type_matches``."""
    if level <= 0:
        return False
    for _ in range(COMPAT_MAX_DEPTH):
        local_id, lt = _skip(local_btf, local_id)
        targ_id, tt = _skip(targ_btf, targ_id)
        if not _names_match(lt.name, tt.name):
            return False
        k = lt.kind
        if k == "void":
            return tt.kind == "void"
        if k == "fwd":
            if tt.kind == "fwd":
                return lt.kflag == tt.kflag
            return behind_ptr and (tt.kind == "union") == lt.kflag and tt.kind in COMPOSITE
        if k in ENUMS:
            return tt.kind in ENUMS and _enums_match(lt, tt)
        if k in COMPOSITE:
            if behind_ptr:
                return tt.kind == k or (tt.kind == "fwd" and (k == "union") == tt.kflag)
            return tt.kind == k and _composites_match(local_btf, lt, targ_btf, tt, behind_ptr, level)
        if k == "int":
            return tt.kind == "int" and lt.size == tt.size and lt.int_signed == tt.int_signed
        if k == "ptr":
            if tt.kind != "ptr":
                return False
            behind_ptr = True
            local_id, targ_id = lt.type, tt.type
        elif k == "array":
            if tt.kind != "array" or lt.nelems != tt.nelems:
                return False
            local_id, targ_id = lt.elem_type, tt.elem_type
        elif k == "func_proto":
            if tt.kind != "func_proto" or len(lt.params) != len(tt.params):
                return False
            for lp, tp in zip(lt.params, tt.params, strict=True):
                if not types_match(local_btf, lp.type, targ_btf, tp.type, behind_ptr, level - 1):
                    return False
            local_id, targ_id = lt.type, tt.type
        else:
            return False
    return False


def _enums_match(lt, tt) -> bool:
    if lt.size != tt.size:
        return False
    return all(any(_names_match(v.name, w.name) for w in tt.values) for v in lt.values)


def _composites_match(local_btf, lt, targ_btf, tt, behind_ptr: bool, level: int) -> bool:
    if len(lt.members) > len(tt.members):
        return False
    for lm in lt.members:
        if not any(_names_match(lm.name, tm.name)
                   and types_match(local_btf, lm.type, targ_btf, tm.type, behind_ptr, level - 1)
                   for tm in tt.members):
            return False
    return True


# -- candidates and matching ------------------------------------------------------------


def _essential_index(btf) -> dict[str, list[int]]:
    """Essential name → type ids, built once per target BTF."""
    index = getattr(btf, "_core_essential_index", None)
    if index is None:
        index = {}
        for name, ids in btf._name_index().items():
            index.setdefault(essential_name(name), []).extend(ids)
        for ids in index.values():
            ids.sort()
        btf._core_essential_index = index
    return index


def candidates(local_btf, local_id: int, target_btf) -> list[int]:
    """Target types a relocation of ``local_id`` may resolve to, in id order (libbpf's
    ``bpf_core_add_cands`` over vmlinux): same kind (any enum for an enum), same
    essential name."""
    lt = local_btf.type(local_id)
    name = essential_name(lt.name)
    if not name:
        return []
    return [i for i in _essential_index(target_btf).get(name, ())
            if _kinds_compat(target_btf.type(i), lt)]


def _match_member(local_btf, acc: Accessor, targ_btf, targ_id: int, spec: Spec) -> tuple[int, int] | None:
    """Find local member ``acc`` by name in target struct ``targ_id`` (through anonymous
    members, depth first); extends ``spec``; (matched 1/0, next type id)."""
    lt = local_btf.type(acc.type_id)
    local_member = lt.members[acc.idx]
    targ_id, tt = _skip(targ_btf, targ_id)
    if tt.kind not in COMPOSITE:
        return None
    for i, m in enumerate(tt.members):
        if len(spec.raw) == SPEC_MAX_LEN:
            raise ValueError("access nests deeper than libbpf allows")
        spec.bit_offset += m.bit_offset
        spec.raw.append(i)
        if not m.name:
            found = _match_member(local_btf, acc, targ_btf, m.type, spec)
            if found is not None:
                return found
        elif m.name == local_member.name:
            if not fields_are_compat(local_btf, local_member.type, targ_btf, m.type):
                return None  # a same-named member of another kind: no match (libbpf stops here)
            spec.accessors.append(Accessor(targ_id, i, m.name))
            return 1, m.type
        spec.bit_offset -= m.bit_offset
        spec.raw.pop()
    return None


def spec_match(local: Spec, targ_btf, targ_id: int) -> Spec | None:
    """The target spec of candidate ``targ_id``, or None when it does not match."""
    spec = Spec(targ_btf, targ_id, local.kind)
    if local.kind in TYPE_KINDS:
        ok = (types_match(local.btf, local.root_type_id, targ_btf, targ_id) if local.kind == "type_matches"
              else types_are_compat(local.btf, local.root_type_id, targ_btf, targ_id))
        return spec if ok else None
    if local.kind in ENUM_KINDS:
        targ_id, tt = _skip(targ_btf, targ_id)
        if tt.kind not in ENUMS:
            return None
        want = essential_name(local.accessors[0].name)
        for i, v in enumerate(tt.values):
            if essential_name(v.name) == want:
                spec.accessors.append(Accessor(targ_id, i, v.name))
                spec.raw.append(i)
                return spec
        return None
    for i, acc in enumerate(local.accessors):
        targ_id, tt = _skip(targ_btf, targ_id)
        if acc.name:
            found = _match_member(local.btf, acc, targ_btf, targ_id, spec)
            if found is None:
                return None
            targ_id = found[1]
            continue
        if i > 0:
            if tt.kind != "array":
                return None
            prev = spec.accessors[-1] if spec.accessors else None
            if not _is_flex_array(targ_btf, prev, tt) and acc.idx >= tt.nelems:
                return None
            targ_id, _ = _skip(targ_btf, tt.elem_type)
        if len(spec.raw) == SPEC_MAX_LEN:
            raise ValueError("access nests deeper than libbpf allows")
        spec.accessors.append(Accessor(targ_id, acc.idx))
        spec.raw.append(acc.idx)
        spec.bit_offset += acc.idx * targ_btf.sizeof(targ_id) * 8
    return spec


# -- values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldFact:
    value: int
    size: int = 0  # bytes a load/store of the field moves (0: not adjustable)
    type_id: int = 0  # the field's type, for size adjustments
    validate: bool = True


class _Poison(Exception):
    """The relocation has no value in this spec: poison the instruction."""


def field_fact(spec: Spec | None, kind: str) -> FieldFact:
    """``bpf_core_calc_field_relo``: the value of a field relocation in one spec."""
    if kind == "field_exists":
        return FieldFact(int(spec is not None))
    if spec is None:
        raise _Poison
    btf = spec.btf
    acc = spec.accessors[-1]
    if acc.name is None:  # an array element (or the root)
        size = btf.sizeof(acc.type_id)
        if kind == "field_byte_offset":
            return FieldFact(spec.bit_offset // 8, size, acc.type_id)
        if kind == "field_byte_size":
            return FieldFact(size)
        raise ValueError(f"{kind} cannot be applied to an array element")
    parent = btf.type(acc.type_id)
    member = parent.members[acc.idx]
    field_id, mt = _skip(btf, member.type)
    bit_off, bit_sz = spec.bit_offset, member.bitfield_size
    if bit_sz:
        byte_sz = mt.size
        byte_off = bit_off // 8 // byte_sz * byte_sz
        # the smallest aligned load that holds every bit of the field
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
            if byte_sz >= 8:
                raise ValueError(f"bitfield at bit {bit_off} ({bit_sz} bits) cannot be read with a 64-bit load")
            byte_sz *= 2
            byte_off = bit_off // 8 // byte_sz * byte_sz
    else:
        byte_sz = btf.sizeof(field_id)
        byte_off = bit_off // 8
        bit_sz = byte_sz * 8
    # libbpf may disagree with the compiler on how to load a bitfield, so the
    # instruction's original value is only checked where nothing is ambiguous
    validate = not member.bitfield_size
    if kind == "field_byte_offset":
        return FieldFact(byte_off, 0 if member.bitfield_size else byte_sz,
                         0 if member.bitfield_size else field_id, validate)
    if kind == "field_byte_size":
        return FieldFact(byte_sz, validate=validate)
    if kind == "field_signed":
        signed = (mt.kind in ENUMS and mt.kflag) or (mt.kind == "int" and mt.int_signed)
        return FieldFact(int(signed))
    if kind == "field_lshift_u64":
        return FieldFact(64 - (bit_off + bit_sz - byte_off * 8), validate=validate)
    if kind == "field_rshift_u64":
        return FieldFact(64 - bit_sz)
    raise ValueError(f"unknown field relocation {kind}")


def type_fact(spec: Spec | None, kind: str) -> tuple[int, bool]:
    """(value, validate) of a type relocation: zero when the type is absent."""
    if spec is None:
        return 0, True
    if kind == "type_id_target":
        return spec.root_type_id, False  # ids change when objects are linked
    if kind in ("type_exists", "type_matches"):
        return 1, True
    if kind == "type_size":
        return spec.btf.sizeof(spec.root_type_id), True
    raise ValueError(f"unknown type relocation {kind}")


def enum_fact(spec: Spec | None, kind: str) -> int:
    if kind == "enumval_exists":
        return int(spec is not None)
    if spec is None:
        raise _Poison
    acc = spec.accessors[0]
    return spec.btf.type(acc.type_id).values[acc.idx].value & U64_MASK


@dataclass(frozen=True)
class Resolution:
    """``bpf_core_relo_res``: what to check and what to write."""

    orig: int
    new: int
    poison: bool = False
    validate: bool = True
    orig_size: int = 0
    new_size: int = 0
    size_unsafe: bool = False  # the field's size changed and reading it resized would be wrong
    local_spec: Spec | None = None
    target_spec: Spec | None = None
    target_id: int = 0


def _calc(local: Spec, target: Spec | None) -> Resolution:
    """``bpf_core_calc_relo`` for one candidate (or none)."""
    kind = local.kind
    if kind in FIELD_KINDS:
        orig = field_fact(local, kind)
        try:
            new = field_fact(target, kind)
        except _Poison:
            return Resolution(orig.value, 0, poison=True, validate=orig.validate)
        unsafe = False
        if orig.size != new.size:
            lt = local.btf.type(orig.type_id)
            tt = target.btf.type(new.type_id)
            both_ptr = lt.kind == "ptr" and tt.kind == "ptr"
            both_unsigned = lt.kind == "int" and tt.kind == "int" and not lt.int_signed and not tt.int_signed
            unsafe = not (both_ptr or both_unsigned)
        return Resolution(orig.value, new.value, validate=orig.validate, orig_size=orig.size,
                          new_size=new.size, size_unsafe=unsafe)
    if kind in TYPE_KINDS:
        orig, validate = type_fact(local, kind)
        return Resolution(orig, type_fact(target, kind)[0], validate=validate)
    orig = enum_fact(local, kind)
    try:
        return Resolution(orig, enum_fact(target, kind))
    except _Poison:
        return Resolution(orig, 0, poison=True)


def resolve(local_btf, target_btf, type_id: int, access: str, kind: str) -> Resolution:
    """``bpf_core_calc_relo_insn``: the local spec, every matching candidate, one result.

    ``ValueError`` for what libbpf refuses to load: a malformed access, an anonymous
    root type, candidates that disagree."""
    local = parse_spec(local_btf, type_id, access, kind)
    if kind == "type_id_local":
        return Resolution(type_id, type_id, validate=False, local_spec=local)
    if not local_btf.type(type_id).name:
        raise ValueError(f"{KIND_LABELS[kind]} relocation of an anonymous type is not supported")
    chosen: Resolution | None = None
    for cand in candidates(local_btf, type_id, target_btf):
        spec = spec_match(local, target_btf, cand)
        if spec is None:
            continue
        res = _calc(local, spec)
        if chosen is None:
            chosen = Resolution(**{**res.__dict__, "local_spec": local, "target_spec": spec, "target_id": cand})
        elif spec.bit_offset != chosen.target_spec.bit_offset:
            raise ValueError(f"field offset ambiguity: {spec.bit_offset // 8} != "
                             f"{chosen.target_spec.bit_offset // 8} ({chosen.target_spec} and {spec})")
        elif res.poison != chosen.poison or res.new != chosen.new:
            raise ValueError(f"relocation decision ambiguity: {chosen.new} != {res.new} "
                             f"({chosen.target_spec} and {spec})")
    if chosen is None:
        res = _calc(local, None)
        chosen = Resolution(**{**res.__dict__, "local_spec": local})
    return chosen


# -- patching -------------------------------------------------------------------------


def _poison(insns: list[Insn], index: int) -> None:
    call = Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, POISON_HELPER)
    if insns[index].is_ld_imm64:
        insns[index + 1] = call  # not a dangling second half ("unknown opcode 00")
    insns[index] = call


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >> 31 else value


def apply(insns: list[Insn], index: int, local_btf, target_btf, type_id: int, access: str, kind: str,
          *, where: str, func: str = "", func_insn: int = -1, relo: int = -1) -> CoreRelocation:
    """Relocate ``insns[index]`` in place as libbpf does; returns the record of what changed.

    ``RelocationError`` (naming ``where`` and the instruction) when libbpf would refuse
    the object; a poisoned relocation is not an error (see ``CoreRelocation.warning``)."""
    at = f"{where}: insn {index}" + (f" ({func} insn {func_insn})" if func else "")
    try:
        res = resolve(local_btf, target_btf, type_id, access, kind)
    except (ValueError, IndexError, BtfError) as exc:
        raise RelocationError(f"{at}: CO-RE {KIND_LABELS.get(kind, kind)} relocation of "
                              f"{local_btf.name_of(type_id)} access {access!r}: {exc}") from None
    spec = res.local_spec.path
    target_spec = str(res.target_spec) if res.target_spec is not None else ""
    insn = insns[index]
    old = _insn_value(insns, index)
    record = dict(insn=index, kind=kind, local_type=local_btf.name_of(type_id), access=access, spec=spec,
                  target_type=res.target_id, old_value=old, local_spec=str(res.local_spec), target_spec=target_spec, func=func,
                  func_insn=func_insn, relo=relo)
    if res.poison:
        _poison(insns, index)
        return CoreRelocation(**record, new_value=old, poisoned=True)
    cls = insn.cls
    new = res.new
    sized = None
    if cls in (op.BPF_ALU, op.BPF_ALU64):
        if insn.code & op.BPF_X:
            raise RelocationError(f"{at}: CO-RE {kind} on a register-source ALU instruction")
        if res.validate and insn.imm & U64_MASK != res.orig & U64_MASK:
            raise RelocationError(f"{at}: unexpected ALU value: got {insn.imm}, expected {res.orig} "
                                  f"({spec}) -> {new}")
        insns[index] = Insn(insn.code, insn.dst, insn.src, insn.off, _signed32(new))
    elif cls in (op.BPF_LDX, op.BPF_ST, op.BPF_STX):
        if res.validate and (insn.off & U64_MASK) != res.orig & U64_MASK:
            raise RelocationError(f"{at}: unexpected load/store offset: got {insn.off}, expected {res.orig} "
                                  f"({spec}) -> {new}")
        if new > S16_MAX:
            raise RelocationError(f"{at}: offset {new} of {target_spec} does not fit in 16 bits")
        if res.size_unsafe:
            _poison(insns, index)
            return CoreRelocation(**record, new_value=old, poisoned=True,
                                  reason=f"the field is {res.orig_size} bytes here and {res.new_size} in the "
                                         "target, and is neither a pointer nor unsigned")
        code = insn.code
        if res.new_size != res.orig_size:
            have = SIZE_BYTES[code & SIZE_MASK]
            if have != res.orig_size:
                raise RelocationError(f"{at}: unexpected memory size: got {have}, expected {res.orig_size} ({spec})")
            if res.new_size not in LOAD_STORE_SIZES:
                raise RelocationError(f"{at}: {target_spec} is {res.new_size} bytes: no load/store of that size")
            code = (code & ~SIZE_MASK) | LOAD_STORE_SIZES[res.new_size]
            sized = (res.orig_size, res.new_size)
        insns[index] = Insn(code, insn.dst, insn.src, new, insn.imm)
    elif insn.is_ld_imm64:
        second = insns[index + 1]
        if insn.src or insn.off or second.code or second.dst or second.src or second.off:
            raise RelocationError(f"{at}: CO-RE {kind} on a 64-bit load of unexpected form")
        if res.validate and old & U64_MASK != res.orig & U64_MASK:
            raise RelocationError(f"{at}: unexpected 64-bit value: got {old}, expected {res.orig} ({spec}) -> {new}")
        insns[index], insns[index + 1] = ld_imm64(insn.dst, new & U64_MASK, insn.src)
    else:
        raise RelocationError(f"{at}: CO-RE {kind} on an instruction that holds no value "
                              f"(opcode {insn.code:#04x})")
    return CoreRelocation(**record, new_value=new, mem_size=sized)


def _insn_value(insns, i: int) -> int:
    insn = insns[i]
    if insn.is_ld_imm64:
        return imm64(insns, i)
    if insn.cls in (op.BPF_LDX, op.BPF_ST, op.BPF_STX):
        return insn.off
    return insn.imm


__all__ = ["CoreRelocation", "Resolution", "Spec", "apply", "candidates", "essential_name",
           "parse_spec", "resolve", "spec_match", "types_are_compat", "types_match"]
