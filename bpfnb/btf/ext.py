"""``.BTF.ext``: per-section func info, line info and CO-RE relocation records.

Layout (include/uapi/linux/btf.h and libbpf's btf.h, little-endian): a
header (magic 0xeB9F, version, flags, hdr_len, then offset/length pairs of
the func-info, line-info and — when hdr_len allows — CO-RE sections, counted
from the end of the header). Each section is a ``u32`` record size followed
by blocks ``{u32 section-name offset, u32 count, records...}``. Strings live
in the object's ``.BTF`` string table. Instruction offsets here are byte
offsets into the ELF section; the ELF loader turns them into slot indices.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import BtfError
from .types import MAGIC

EXT_HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, func off/len, line off/len
CORE_HEADER = struct.Struct("<II")  # core_relo off/len (hdr_len >= 32)
BLOCK = struct.Struct("<II")  # sec_name_off, num_info
FUNC_INFO = struct.Struct("<II")  # insn_off, type_id
LINE_INFO = struct.Struct("<IIII")  # insn_off, file_name_off, line_off, line_col
CORE_RELO = struct.Struct("<IIII")  # insn_off, type_id, access_str_off, kind

# enum bpf_core_relo_kind
CORE_KINDS = {
    0: "field_byte_offset", 1: "field_byte_size", 2: "field_exists", 3: "field_signed",
    4: "field_lshift_u64", 5: "field_rshift_u64", 6: "type_id_local", 7: "type_id_target",
    8: "type_exists", 9: "type_size", 10: "enumval_exists", 11: "enumval_value", 12: "type_matches",
}


@dataclass(frozen=True)
class FuncInfoRecord:
    insn_off: int  # byte offset in the section
    type_id: int


@dataclass(frozen=True)
class LineInfoRecord:
    insn_off: int
    file: str
    line: int
    col: int
    text: str


@dataclass(frozen=True)
class CoreReloRecord:
    insn_off: int
    type_id: int  # in the object's BTF
    access: str  # "0:1:2"
    kind: str  # a CORE_KINDS value


@dataclass(frozen=True)
class BtfExt:
    """The records of a ``.BTF.ext``, per ELF section name."""

    func_info: dict[str, tuple[FuncInfoRecord, ...]]
    line_info: dict[str, tuple[LineInfoRecord, ...]]
    core_relos: dict[str, tuple[CoreReloRecord, ...]]


def parse_ext(data: bytes, btf, *, name: str = ".BTF.ext") -> BtfExt:
    """Parse ``.BTF.ext`` bytes; strings are resolved in ``btf`` (the object's ``Btf``)."""

    def fail(what: str) -> BtfError:
        return BtfError(f"{name}: malformed BTF.ext: {what}")

    if len(data) < EXT_HEADER.size:
        raise fail(f"{len(data)} bytes is shorter than the {EXT_HEADER.size}-byte header")
    magic, version, _flags, hdr_len, f_off, f_len, l_off, l_len = EXT_HEADER.unpack_from(data)
    if magic != MAGIC:
        raise fail(f"bad magic {magic:#06x} (expected {MAGIC:#06x})")
    if version != 1:
        raise fail(f"unsupported version {version}")
    if hdr_len < EXT_HEADER.size or hdr_len > len(data):
        raise fail(f"header length {hdr_len} out of range")
    c_off = c_len = 0
    if hdr_len >= EXT_HEADER.size + CORE_HEADER.size:
        c_off, c_len = CORE_HEADER.unpack_from(data, EXT_HEADER.size)

    def string(off: int, what: str) -> str:
        try:
            return btf.string(off)
        except BtfError as exc:
            raise fail(f"{what}: {exc}") from None

    def blocks(off: int, length: int, layout: struct.Struct, what: str):
        if length == 0:
            return
        start, end = hdr_len + off, hdr_len + off + length
        if end > len(data) or length < 4:
            raise fail(f"{what} section [{start}, {end}) is outside the {len(data)} bytes")
        (rec_size,) = struct.unpack_from("<I", data, start)
        if rec_size < layout.size:
            raise fail(f"{what} record size {rec_size} is smaller than {layout.size}")
        pos = start + 4
        while pos < end:
            if pos + BLOCK.size > end:
                raise fail(f"{what} block header at {pos} runs past the section")
            sec_off, count = BLOCK.unpack_from(data, pos)
            pos += BLOCK.size
            if pos + count * rec_size > end:
                raise fail(f"{what}: {count} records of {rec_size} bytes run past the section")
            section = string(sec_off, f"{what} section name")
            records = [layout.unpack_from(data, pos + k * rec_size) for k in range(count)]
            pos += count * rec_size
            yield section, records

    funcs = {sec: tuple(FuncInfoRecord(*r) for r in recs)
             for sec, recs in blocks(f_off, f_len, FUNC_INFO, "func info")}
    lines = {}
    for sec, recs in blocks(l_off, l_len, LINE_INFO, "line info"):
        lines[sec] = tuple(
            LineInfoRecord(insn, string(file_off, "line info file"), lc >> 10, lc & 0x3FF,
                           string(line_off, "line info text"))
            for insn, file_off, line_off, lc in recs)
    relos = {}
    for sec, recs in blocks(c_off, c_len, CORE_RELO, "CO-RE"):
        out = []
        for insn, type_id, access_off, kind in recs:
            if kind not in CORE_KINDS:
                raise fail(f"CO-RE relocation at byte {insn} of {sec} has unknown kind {kind}")
            out.append(CoreReloRecord(insn, type_id, string(access_off, "CO-RE access string"), CORE_KINDS[kind]))
        relos[sec] = tuple(out)
    for sec, recs in funcs.items():
        for r in recs:
            if r.insn_off % 8:
                raise fail(f"func info at byte {r.insn_off} of {sec} is not on an instruction boundary")
    return BtfExt(funcs, lines, relos)
