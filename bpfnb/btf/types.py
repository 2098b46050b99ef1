"""BTF type records as frozen values, and the on-disk layouts they come from."""

from __future__ import annotations

import struct
from dataclasses import dataclass

# The layouts of the BTF format (include/uapi/linux/btf.h), little-endian.
HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type_off/len, str_off/len
TYPE = struct.Struct("<III")  # name_off, info, size_or_type
ARRAY = struct.Struct("<III")  # type, index_type, nelems
MEMBER = struct.Struct("<III")  # name_off, type, offset
ENUM = struct.Struct("<Ii")  # name_off, val
ENUM64 = struct.Struct("<III")  # name_off, val_lo32, val_hi32
PARAM = struct.Struct("<II")  # name_off, type
VARSECINFO = struct.Struct("<III")  # type, offset, size
U32 = struct.Struct("<I")
MAGIC = 0xEB9F

KINDS = {
    0: "void", 1: "int", 2: "ptr", 3: "array", 4: "struct", 5: "union", 6: "enum",
    7: "fwd", 8: "typedef", 9: "volatile", 10: "const", 11: "restrict", 12: "func",
    13: "func_proto", 14: "var", 15: "datasec", 16: "float", 17: "decl_tag",
    18: "type_tag", 19: "enum64",
}
MODIFIERS = frozenset({"volatile", "const", "restrict", "type_tag"})


def extra_size(kind: int, vlen: int) -> int:
    """Bytes that follow the common record for this kind."""
    if kind in (1, 14, 17):
        return 4
    if kind == 3:
        return 12
    if kind in (4, 5, 19, 15):
        return 12 * vlen
    if kind in (6, 13):
        return 8 * vlen
    return 0


@dataclass(frozen=True)
class Member:
    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0


@dataclass(frozen=True)
class EnumValue:
    name: str
    value: int


@dataclass(frozen=True)
class Param:
    name: str
    type: int


@dataclass(frozen=True)
class VarSecInfo:
    type: int
    offset: int
    size: int


@dataclass(frozen=True)
class BtfType:
    id: int
    kind: str
    name: str = ""
    size: int | None = None  # int, struct, union, enum, datasec, float
    type: int = 0  # referenced type: ptr, typedef, modifiers, func, var, func_proto (return)
    kflag: bool = False
    members: tuple[Member, ...] = ()
    values: tuple[EnumValue, ...] = ()
    params: tuple[Param, ...] = ()
    vars: tuple[VarSecInfo, ...] = ()
    elem_type: int = 0  # array
    index_type: int = 0
    nelems: int = 0
    int_bits: int = 0
    int_offset: int = 0
    int_signed: bool = False
    int_char: bool = False
    int_bool: bool = False
    linkage: int = 0  # func, var
    component_idx: int = -1  # decl_tag

    @property
    def vlen(self) -> int:
        return len(self.members) or len(self.values) or len(self.params) or len(self.vars)

    def __str__(self) -> str:
        name = f" '{self.name}'" if self.name else " '(anon)'"
        return f"[{self.id}] {self.kind.upper()}{name}"


VOID = BtfType(0, "void")
