"""Parsing BTF and looking types up in it.

Loading indexes where each type record starts (one pass over the type
section) and decodes a type only when asked for it; the name index is built
on the first lookup by name. This keeps a 5 MB ``/sys/kernel/btf/vmlinux``
quick to open.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterator

from ..errors import BtfError
from . import types as t
from .types import BtfType, EnumValue, Member, Param, VarSecInfo

LIVE_VMLINUX = "/sys/kernel/btf/vmlinux"
MAX_RESOLVE_DEPTH = 32


class Btf:
    """A parsed BTF blob: ``btf.type(id)``, ``btf.find(name, kind)`` …"""

    def __init__(self, data: bytes, *, name: str = "", base: Btf | None = None):
        self.name = name or "BTF"
        self.base = base
        self._data = memoryview(bytes(data))
        self._parse_header()
        self._first_id = len(base) if base is not None else 1
        self._offsets = self._index_types()
        self._cache: dict[int, BtfType] = {}
        self._names: dict[str, list[int]] | None = None

    # -- loading ---------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes, *, base: Btf | None = None, name: str = "") -> Btf:
        return cls(data, base=base, name=name)

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, base: Btf | None = None) -> Btf:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise BtfError(f"{path}: cannot read BTF: {exc.strerror}") from exc
        return cls(data, base=base, name=str(path))

    def _fail(self, what: str) -> BtfError:
        return BtfError(f"{self.name}: malformed BTF: {what}")

    def _parse_header(self) -> None:
        d = self._data
        if len(d) < t.HEADER.size:
            raise self._fail(f"{len(d)} bytes is shorter than the {t.HEADER.size}-byte header")
        magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = (
            t.HEADER.unpack_from(d, 0)
        )
        if magic != t.MAGIC:
            raise self._fail(f"bad magic 0x{magic:04x} (expected 0x{t.MAGIC:04x})")
        if version != 1:
            raise self._fail(f"unsupported version {version}")
        if hdr_len < t.HEADER.size or hdr_len > len(d):
            raise self._fail(f"header length {hdr_len} out of range")
        for label, off, length in (("type", type_off, type_len), ("string", str_off, str_len)):
            if hdr_len + off + length > len(d):
                raise self._fail(
                    f"{label} section [{off}, {off + length}) runs past the end ({len(d) - hdr_len} bytes)"
                )
        if type_off % 4:
            raise self._fail(f"type section offset {type_off} is not 4-byte aligned")
        self._type_start = hdr_len + type_off
        self._type_end = self._type_start + type_len
        self._strings = bytes(d[hdr_len + str_off : hdr_len + str_off + str_len])
        if str_len and self._strings[-1] != 0:
            raise self._fail("string section does not end with NUL")

    def _index_types(self) -> list[int]:
        d = self._data
        pos, end = self._type_start, self._type_end
        offsets = []
        unpack = t.TYPE.unpack_from
        while pos < end:
            if pos + 12 > end:
                raise self._fail(f"type {self._first_id + len(offsets)} truncated at byte {pos}")
            info = unpack(d, pos)[1]
            kind = (info >> 24) & 0x1F
            if kind not in t.KINDS or kind == 0:
                raise self._fail(f"type {self._first_id + len(offsets)} has unknown kind {kind}")
            offsets.append(pos)
            pos += 12 + t.extra_size(kind, info & 0xFFFF)
        if pos != end:
            raise self._fail(f"last type runs past the type section by {pos - end} bytes")
        return offsets

    # -- raw form (for loading into the kernel) ---------------------------
    @property
    def raw(self) -> bytes:
        """The BTF bytes this object was parsed from."""
        return bytes(self._data)

    def record_offset(self, type_id: int) -> int:
        """Byte offset of type ``type_id``'s record in ``raw``."""
        k = type_id - self._first_id
        if not 0 <= k < len(self._offsets):
            raise BtfError(f"{self.name}: type id {type_id} out of range")
        return self._offsets[k]

    def string_offset(self, text: str) -> int:
        """The offset of ``text`` in the string section (``BtfError`` when absent)."""
        if not hasattr(self, "_string_index"):
            index: dict[str, int] = {}
            pos = 0
            for piece in self._strings.split(b"\0"):
                index.setdefault(piece.decode("utf-8", "replace"), pos)
                pos += len(piece) + 1
            self._string_index = index
        try:
            return self._string_index[text]
        except KeyError:
            raise BtfError(f"{self.name}: string {text[:40]!r} is not in the string section") from None

    # -- access ----------------------------------------------------------
    def __len__(self) -> int:
        """The number of type ids, counting ``void`` (and the base's types)."""
        return self._first_id + len(self._offsets)

    def __iter__(self) -> Iterator[BtfType]:
        for i in range(len(self)):
            yield self.type(i)

    def string(self, off: int) -> str:
        if self.base is not None:
            base_len = len(self.base._strings)
            if off < base_len:
                return self.base.string(off)
            off -= base_len
        if off >= len(self._strings):
            raise self._fail(f"string offset {off} past the string section ({len(self._strings)})")
        end = self._strings.index(b"\0", off)
        return self._strings[off:end].decode("utf-8", "replace")

    def type(self, type_id: int) -> BtfType:
        if type_id == 0:
            return t.VOID
        if self.base is not None and type_id < self._first_id:
            return self.base.type(type_id)
        cached = self._cache.get(type_id)
        if cached is not None:
            return cached
        k = type_id - self._first_id
        if not 0 <= k < len(self._offsets):
            raise BtfError(f"{self.name}: type id {type_id} out of range (1..{len(self) - 1})")
        parsed = self._decode(type_id, self._offsets[k])
        self._cache[type_id] = parsed
        return parsed

    def _ref(self, type_id: int, owner: int) -> int:
        if type_id >= len(self):
            raise self._fail(f"type {owner} refers to type {type_id}, past the last id {len(self) - 1}")
        return type_id

    def _decode(self, type_id: int, pos: int) -> BtfType:
        d = self._data
        name_off, info, size_or_type = t.TYPE.unpack_from(d, pos)
        kind_no = (info >> 24) & 0x1F
        kind = t.KINDS[kind_no]
        vlen = info & 0xFFFF
        kflag = bool(info >> 31)
        name = self.string(name_off)
        extra = pos + 12
        base = dict(id=type_id, kind=kind, name=name, kflag=kflag)
        if kind == "int":
            enc = t.U32.unpack_from(d, extra)[0]
            encoding = (enc >> 24) & 0x0F
            return BtfType(**base, size=size_or_type, int_bits=enc & 0xFF,
                           int_offset=(enc >> 16) & 0xFF, int_signed=bool(encoding & 1),
                           int_char=bool(encoding & 2), int_bool=bool(encoding & 4))
        if kind in ("ptr", "typedef", "volatile", "const", "restrict", "type_tag", "fwd"):
            ref = 0 if kind == "fwd" else self._ref(size_or_type, type_id)
            return BtfType(**base, type=ref)
        if kind == "array":
            elem, index, nelems = t.ARRAY.unpack_from(d, extra)
            return BtfType(**base, elem_type=self._ref(elem, type_id),
                           index_type=self._ref(index, type_id), nelems=nelems)
        if kind in ("struct", "union"):
            members = []
            for i in range(vlen):
                m_name, m_type, m_off = t.MEMBER.unpack_from(d, extra + 12 * i)
                bits = (m_off >> 24) if kflag else 0
                bit_off = (m_off & 0xFFFFFF) if kflag else m_off
                members.append(Member(self.string(m_name), self._ref(m_type, type_id), bit_off, bits))
            return BtfType(**base, size=size_or_type, members=tuple(members))
        if kind == "enum":
            values = []
            for i in range(vlen):
                v_name, val = t.ENUM.unpack_from(d, extra + 8 * i)
                values.append(EnumValue(self.string(v_name), val if kflag else val & 0xFFFFFFFF))
            return BtfType(**base, size=size_or_type, values=tuple(values))
        if kind == "enum64":
            values = []
            for i in range(vlen):
                v_name, lo, hi = t.ENUM64.unpack_from(d, extra + 12 * i)
                val = (hi << 32) | lo
                if kflag and val >> 63:
                    val -= 1 << 64
                values.append(EnumValue(self.string(v_name), val))
            return BtfType(**base, size=size_or_type, values=tuple(values))
        if kind == "func":
            return BtfType(**base, type=self._ref(size_or_type, type_id), linkage=vlen)
        if kind == "func_proto":
            params = []
            for i in range(vlen):
                p_name, p_type = t.PARAM.unpack_from(d, extra + 8 * i)
                params.append(Param(self.string(p_name), self._ref(p_type, type_id)))
            return BtfType(**base, type=self._ref(size_or_type, type_id), params=tuple(params))
        if kind == "var":
            return BtfType(**base, type=self._ref(size_or_type, type_id),
                           linkage=t.U32.unpack_from(d, extra)[0])
        if kind == "datasec":
            secinfo = tuple(VarSecInfo(*t.VARSECINFO.unpack_from(d, extra + 12 * i)) for i in range(vlen))
            return BtfType(**base, size=size_or_type, vars=secinfo)
        if kind == "float":
            return BtfType(**base, size=size_or_type)
        if kind == "decl_tag":
            idx = struct.unpack_from("<i", d, extra)[0]
            return BtfType(**base, type=self._ref(size_or_type, type_id), component_idx=idx)
        raise self._fail(f"type {type_id} has unknown kind {kind_no}")

    # -- lookup ----------------------------------------------------------
    def _name_index(self) -> dict[str, list[int]]:
        if self._names is None:
            names: dict[str, list[int]] = {}
            d = self._data
            for k, pos in enumerate(self._offsets):
                name_off = t.U32.unpack_from(d, pos)[0]
                if name_off:
                    names.setdefault(self.string(name_off), []).append(self._first_id + k)
            self._names = names
        return self._names

    def find_all(self, name: str, kind: str | None = None) -> list[int]:
        found = list(self.base.find_all(name, kind)) if self.base is not None else []
        for type_id in self._name_index().get(name, ()):
            if kind is None or self.type(type_id).kind == kind:
                found.append(type_id)
        return found

    def find(self, name: str, kind: str | None = None) -> int:
        """The id of the first type called ``name`` (of ``kind``); ``BtfError`` if none."""
        found = self.find_all(name, kind)
        if not found:
            what = f"{kind} {name!r}" if kind else repr(name)
            raise BtfError(f"{self.name}: no type {what}")
        return found[0]

    def resolve(self, type_id: int) -> int:
        """Through typedefs and modifiers to the underlying type's id."""
        for _ in range(MAX_RESOLVE_DEPTH):
            ty = self.type(type_id)
            if ty.kind != "typedef" and ty.kind not in t.MODIFIERS:
                return type_id
            type_id = ty.type
        raise self._fail(f"type chain from {type_id} is a loop or deeper than {MAX_RESOLVE_DEPTH}")

    def strip_modifiers(self, type_id: int) -> int:
        """Through const/volatile/restrict/type_tag, keeping typedefs."""
        for _ in range(MAX_RESOLVE_DEPTH):
            ty = self.type(type_id)
            if ty.kind not in t.MODIFIERS:
                return type_id
            type_id = ty.type
        raise self._fail(f"modifier chain from {type_id} is a loop")

    def sizeof(self, type_id: int, _depth: int = 0) -> int:
        """Size in bytes, as the kernel's ``btf_resolve_size``."""
        if _depth > MAX_RESOLVE_DEPTH:
            raise self._fail(f"array of type {type_id} nests deeper than {MAX_RESOLVE_DEPTH} (a loop?)")
        for _ in range(MAX_RESOLVE_DEPTH):
            ty = self.type(self.resolve(type_id))
            if ty.kind in ("int", "struct", "union", "enum", "enum64", "float", "datasec"):
                return ty.size or 0
            if ty.kind == "ptr":
                return 8
            if ty.kind == "array":
                return ty.nelems * self.sizeof(ty.elem_type, _depth + 1)
            raise BtfError(f"{self.name}: {self.name_of(type_id)} has no size")
        raise self._fail(f"size of type {type_id} does not resolve")

    def name_of(self, type_id: int, _depth: int = 0) -> str:
        """A readable C name: ``struct sk_buff``, ``u32``, ``char *``, ``int[4]``."""
        if _depth > MAX_RESOLVE_DEPTH:
            return "..."
        ty = self.type(type_id)
        if ty.kind == "void":
            return "void"
        if ty.kind in ("struct", "union", "enum", "enum64"):
            word = "enum" if ty.kind == "enum64" else ty.kind
            return f"{word} {ty.name or '(anon)'}"
        if ty.kind == "fwd":
            return f"{'union' if ty.kflag else 'struct'} {ty.name}"
        if ty.kind == "ptr":
            return f"{self.name_of(ty.type, _depth + 1)} *"
        if ty.kind == "array":
            return f"{self.name_of(ty.elem_type, _depth + 1)}[{ty.nelems}]"
        if ty.kind in ("const", "volatile", "restrict"):
            return f"{ty.kind} {self.name_of(ty.type, _depth + 1)}"
        if ty.kind == "type_tag":
            return self.name_of(ty.type, _depth + 1)
        if ty.kind == "func_proto":
            return f"{self.name_of(ty.type, _depth + 1)} (*)(...)"
        return ty.name or f"({ty.kind})"

    def members(self, type_id: int) -> tuple[Member, ...]:
        ty = self.type(self.resolve(type_id))
        if ty.kind not in ("struct", "union"):
            raise BtfError(f"{self.name}: {self.name_of(type_id)} is not a struct or union")
        return ty.members

    def find_member(self, struct_id: int, offset: int, size: int):
        """Where an access of ``size`` bytes at ``offset`` lands (``bpfnb.btf.walk.MemberAccess``)."""
        from .walk import find_member

        return find_member(self, struct_id, offset, size)

    def c_decl(self, type_id: int) -> str:
        """The C definition of a type, as ``bpftool btf dump ... format c`` prints it."""
        from .cdecl import c_decl

        return c_decl(self, type_id)

    def trace_proto(self, tracepoint: str) -> tuple[int, tuple[Param, ...]]:
        """``btf_trace_<tp>``'s typedef id and its arguments after the hidden ``void *``."""
        name = f"btf_trace_{tracepoint}"
        typedef = self.find(name, "typedef")
        ptr = self.type(typedef)
        proto = self.type(self.type(ptr.type).type) if self.type(ptr.type).kind == "ptr" else None
        if proto is None or proto.kind != "func_proto" or not proto.params:
            raise BtfError(f"{self.name}: {name} is not a pointer to a function prototype")
        return typedef, proto.params[1:]

    def __repr__(self) -> str:
        return f"<Btf {self.name}: {len(self) - 1} types>"


@functools.cache
def _load_file(path: str) -> Btf:
    return Btf.from_file(path)


BUNDLED = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "vmlinux-bundled.btf")


def bundled_btf() -> Btf:
    """The small kernel BTF shipped with bpfnb (``make bundled-btf``): sk_buff,
    net_device, sock, the drop-reason enum and skb tracepoint prototypes, with
    the offsets of the kernel it was made from."""
    return _load_file(BUNDLED)


def kernel_btf(path: str | None = None) -> Btf:
    """The kernel's BTF: ``path``, else the live vmlinux when readable, else the bundled one (cached)."""
    if path is not None:
        return _load_file(str(path))
    if os.access(LIVE_VMLINUX, os.R_OK):
        return _load_file(LIVE_VMLINUX)
    if os.path.exists(BUNDLED):
        return bundled_btf()
    raise BtfError(f"{LIVE_VMLINUX} is not readable and the bundled BTF ({BUNDLED}) is missing")
