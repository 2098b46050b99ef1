"""Map definitions in an object: BTF ``.maps``, legacy ``maps``, global data.

- BTF-defined maps (``struct { __uint(type, ...); __type(key, u32); ... } m
  SEC(".maps")``): the ``.maps`` DATASEC lists one VAR per map; the VAR's
  struct encodes integers as pointers to arrays of that many elements
  (``__uint(max_entries, 8)`` → ``int (*max_entries)[8]``), 64-bit ones as an
  enum whose one value is the number (``__ulong(map_extra, ...)``), and types
  as pointers to them (``__type(key, u32)`` → ``u32 *key``). Maps of maps and
  prog arrays declare their values with ``__array(values, T)``, an array of
  pointers: to the inner map's definition (a struct of the same kind) or to a
  function prototype (prog arrays). Initialisers of that array are
  relocations of ``.maps`` against the inner maps or programs.
- Legacy ``maps`` section: ``struct bpf_map_def`` records, all of one size
  (the section's size over its map symbols). The first five fields are
  libbpf's (type, key size, value size, max entries, flags); samples/bpf's
  28-byte records add (inner map index, numa node), iproute2's 36-byte
  ``bpf_elf_map`` adds (id, pinning, inner id, inner index).
- Global data (``.data``, ``.rodata*``, ``.bss``, ``.data.*``): one
  single-entry array map per section, its value the section's bytes;
  ``.rodata`` is read-only.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, replace

from ..errors import ElfError
from ..program import MAP_TYPE_NAMES, MapDef

U32 = struct.Struct("<I")
POINTER_SIZE = 8  # a slot of a BTF map's `values` array
BPF_F_RDONLY_PROG = 1 << 7
BPF_F_MMAPABLE = 1 << 10
GLOBAL_DATA_PREFIXES = (".data", ".rodata", ".bss")
MAPS_OF_MAPS = ("array_of_maps", "hash_of_maps")
FD_VALUE_SIZE = 4  # maps of maps and prog arrays hold fds

# legacy definitions: the u32 fields of each known record size, in order
LIBBPF_FIELDS = ("type", "key_size", "value_size", "max_entries", "map_flags")
LEGACY_LAYOUTS = {
    16: LIBBPF_FIELDS[:4],  # before map_flags existed
    20: LIBBPF_FIELDS,  # libbpf's struct bpf_map_def
    28: LIBBPF_FIELDS + ("inner_map_idx", "numa_node"),  # samples/bpf's bpf_load.h
    36: LIBBPF_FIELDS + ("id", "pinning", "inner_id", "inner_idx"),  # iproute2's struct bpf_elf_map
}
MIN_LEGACY_DEF = 16


def is_global_data(section: str) -> bool:
    return any(section == p or section.startswith(p + ".") for p in GLOBAL_DATA_PREFIXES)


def _map_type(value: int, where: str) -> str:
    try:
        return MAP_TYPE_NAMES[value]
    except KeyError:
        raise ElfError(f"{where}: unknown map type {value}") from None


@dataclass(frozen=True)
class BtfMap:
    """A map of ``.maps`` and where its ``values`` initialisers sit (byte offset
    of the ``values`` member in its struct, or None without one)."""

    definition: MapDef
    values_offset: int | None = None
    values_are_programs: bool = False


def _btf_map_def(btf, struct_id: int, name: str, *, where: str, inner: bool = False) -> BtfMap:
    st = btf.type(struct_id)
    if st.kind != "struct":
        raise ElfError(f"{where}: map {name!r} is not a struct in BTF")
    fields: dict[str, int] = {}
    types: dict[str, int] = {}
    inner_def: MapDef | None = None
    values_offset = None
    programs = False
    for m in st.members:
        t = btf.type(btf.resolve(m.type))
        if t.kind == "enum" or t.kind == "enum64":  # __ulong(name, value)
            if len(t.values) != 1:
                raise ElfError(f"{where}: map {name!r} field {m.name!r}: an enum of {len(t.values)} values "
                               "(use __ulong from bpf_helpers.h)")
            fields[m.name] = t.values[0].value
            continue
        if m.name == "values" and t.kind == "array":  # __array(values, T)
            if inner:
                raise ElfError(f"{where}: map {name!r}: the inner map of a map of maps has its own `values`")
            elem = btf.type(btf.resolve(t.elem_type))
            if elem.kind != "ptr":
                raise ElfError(f"{where}: map {name!r} field 'values' is not an array of pointers "
                               "(use __array from bpf_helpers.h)")
            values_offset = m.bit_offset // 8
            target_id = btf.resolve(elem.type)
            target = btf.type(target_id)
            if target.kind == "func_proto":
                programs = True
            elif target.kind == "struct":
                inner_def = _btf_map_def(btf, target_id, f"{name}.inner", where=where, inner=True).definition
            else:
                raise ElfError(f"{where}: map {name!r}: `values` points to a {target.kind}, "
                               "neither a map definition (maps of maps) nor a function (prog arrays)")
            continue
        if t.kind != "ptr":
            raise ElfError(f"{where}: map {name!r} field {m.name!r} is not a pointer "
                           "(use __uint/__type from bpf_helpers.h)")
        target = btf.type(btf.resolve(t.type))
        if m.name in ("key", "value"):
            types[m.name] = t.type
        elif target.kind == "array":
            fields[m.name] = target.nelems
        else:
            types[m.name] = t.type
    map_type = _map_type(fields.get("type", 0), f"{where}: map {name!r}")
    key_size = fields.get("key_size") or (btf.sizeof(types["key"]) if "key" in types else 0)
    value_size = fields.get("value_size") or (btf.sizeof(types["value"]) if "value" in types else 0)
    if values_offset is not None:
        if map_type not in MAPS_OF_MAPS and map_type != "prog_array":
            raise ElfError(f"{where}: map {name!r}: `values` initialisers in a {map_type} map "
                           "(only maps of maps and prog arrays take them)")
        if map_type in MAPS_OF_MAPS and inner_def is None:
            raise ElfError(f"{where}: map {name!r}: a map of maps whose `values` are not map definitions")
        value_size = value_size or FD_VALUE_SIZE
    definition = MapDef(
        name=name, type=map_type, key_size=key_size, value_size=value_size,
        max_entries=fields.get("max_entries", 0), flags=fields.get("map_flags", 0),
        key_type_id=types.get("key", 0), value_type_id=types.get("value", 0),
        section=".maps", pinning=fields.get("pinning", 0), map_extra=fields.get("map_extra", 0),
        numa_node=fields.get("numa_node", 0), inner=inner_def,
    )
    return BtfMap(definition, values_offset, programs)


def btf_maps(btf, *, where: str) -> list[tuple[str, BtfMap | ElfError]]:
    """``(name, BtfMap)`` for every VAR of the ``.maps`` DATASEC, or ``(name,
    ElfError)`` for one whose definition cannot be read (the others still are)."""
    try:
        datasec = btf.type(btf.find(".maps", "datasec"))
    except Exception:
        return []
    out: list[tuple[str, BtfMap | ElfError]] = []
    for info in datasec.vars:
        var = btf.type(info.type)
        try:
            out.append((var.name, _btf_map_def(btf, btf.resolve(var.type), var.name, where=where)))
        except ElfError as exc:
            out.append((var.name, exc))
    return out


def with_init(definition: MapDef, init: dict[int, str], *, where: str) -> MapDef:
    """``definition`` with its ``values`` initialisers (slot → map or program name)."""
    if not init:
        return definition
    top = max(init)
    if definition.max_entries and top >= definition.max_entries:
        raise ElfError(f"{where}: map {definition.name!r}: initialiser for slot {top} past "
                       f"max_entries {definition.max_entries}")
    return replace(definition, init=tuple(sorted(init.items())))


def legacy_maps(data: bytes, symbols: list[tuple[str, int, int]], *, where: str) -> list[tuple[int, MapDef]]:
    """``(offset, MapDef)`` for each ``(name, offset, size)`` symbol of the legacy
    ``maps`` section. The records are of one size: the symbols' when they give it
    (a linked object keeps dead weak records between them), else the section's
    size over the number of maps, as libbpf takes it."""
    symbols = sorted(symbols, key=lambda s: s[1])
    if not symbols:
        return []
    sizes = {sym_size for _, _, sym_size in symbols}
    size = sizes.pop() if len(sizes) == 1 and 0 not in sizes else len(data) // len(symbols)
    if size < MIN_LEGACY_DEF or size % U32.size or (size * len(symbols) > len(data)):
        raise ElfError(f"{where}: {len(symbols)} maps of {size} bytes in {len(data)}: not struct "
                       f"bpf_map_def records (at least {MIN_LEGACY_DEF} bytes, a multiple of 4)")
    names = LEGACY_LAYOUTS.get(size, LIBBPF_FIELDS)  # unknown larger records: libbpf's fields lead
    raw: list[tuple[int, str, dict[str, int]]] = []
    for name, offset, _ in symbols:
        if offset % U32.size or offset + size > len(data):
            raise ElfError(f"{where}: map {name!r} at offset {offset} is not a {size}-byte record "
                           "inside the section")
        values = [U32.unpack_from(data, offset + 4 * k)[0] for k in range(len(names))]
        raw.append((offset, name, dict(zip(names, values, strict=True))))
    defs = []
    for offset, name, f in raw:
        here = f"{where}: map {name!r}"
        defs.append((offset, MapDef(name, _map_type(f["type"], here), f["key_size"], f["value_size"],
                                    f["max_entries"], f.get("map_flags", 0), section="maps",
                                    pinning=f.get("pinning", 0), numa_node=f.get("numa_node", 0),
                                    id=f.get("id", 0))))
    # maps of maps name their inner template: by index (samples/bpf) or by id (iproute2)
    by_id = {f["id"]: k for k, (_, _, f) in enumerate(raw) if f.get("id")}
    out = []
    for k, (offset, d) in enumerate(defs):
        f = raw[k][2]
        if d.type in MAPS_OF_MAPS:
            if "inner_id" in f:
                ref = by_id.get(f["inner_id"])
            elif "inner_map_idx" in f:
                ref = f["inner_map_idx"] if f["inner_map_idx"] < len(defs) else None
            else:
                ref = None
            if ref is None or ref == k:
                raise ElfError(f"{where}: map {d.name!r}: a map of maps without an inner map template "
                               f"(record of {size} bytes)")
            d = replace(d, inner=defs[ref][1])
        out.append((offset, d))
    return out


MAP_NAME_MAX = 15  # BPF_OBJ_NAME_LEN less the terminating NUL
MAP_NAME_REFUSED = re.compile(r"[^A-Za-z0-9_.]")  # what bpf_obj_name_cpy refuses in a map name


def global_data_map(obj_name: str, section: str, data: bytes) -> MapDef:
    """The array map behind a global-data section, named as libbpf names it: as
    much of the object's name (up to its first dot) as fits before the section's
    (``drops.rodata``, ``loa.rodata.test``)."""
    flags = BPF_F_MMAPABLE | (BPF_F_RDONLY_PROG if section.startswith(".rodata") else 0)
    stem = obj_name.split(".")[0]
    prefix = stem[:max(MAP_NAME_MAX - len(section), 0)]
    # libbpf then turns every character the kernel refuses in a name into "_"
    name = MAP_NAME_REFUSED.sub("_", f"{prefix}{section}"[:MAP_NAME_MAX])
    return MapDef(name, "array", 4, len(data), 1, flags, section=section, initial=bytes(data))
