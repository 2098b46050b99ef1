"""Map definitions in an object: BTF ``.maps``, legacy ``maps``, global data.

- BTF-defined maps (``struct { __uint(type, ...); __type(key, u32); ... } m
  SEC(".maps")``): the ``.maps`` DATASEC lists one VAR per map; the VAR's
  struct encodes integers as pointers to arrays of that many elements
  (``__uint(max_entries, 8)`` → ``int (*max_entries)[8]``) and types as
  pointers to them (``__type(key, u32)`` → ``u32 *key``).
- Legacy ``maps`` section: ``struct bpf_map_def`` records (type, key size,
  value size, max entries, flags) at each symbol's offset.
- Global data (``.data``, ``.rodata*``, ``.bss``): one single-entry array map
  per section, its value the section's bytes; ``.rodata`` is read-only.
"""

from __future__ import annotations

import struct

from ..errors import ElfError
from ..program import MAP_TYPE_NAMES, MapDef

LEGACY_MAP_DEF = struct.Struct("<IIIII")  # type, key_size, value_size, max_entries, map_flags
BPF_F_RDONLY_PROG = 1 << 7
BPF_F_MMAPABLE = 1 << 10
GLOBAL_DATA_PREFIXES = (".data", ".rodata", ".bss")


def is_global_data(section: str) -> bool:
    return any(section == p or section.startswith(p + ".") for p in GLOBAL_DATA_PREFIXES)


def _map_type(value: int, where: str) -> str:
    try:
        return MAP_TYPE_NAMES[value]
    except KeyError:
        raise ElfError(f"{where}: unknown map type {value}") from None


def btf_maps(btf, *, where: str) -> list[tuple[int, MapDef]]:
    """``(offset in .maps, MapDef)`` for every VAR of the ``.maps`` DATASEC."""
    try:
        datasec = btf.type(btf.find(".maps", "datasec"))
    except Exception:
        return []
    out = []
    for info in datasec.vars:
        var = btf.type(info.type)
        struct_id = btf.resolve(var.type)
        st = btf.type(struct_id)
        if st.kind != "struct":
            raise ElfError(f"{where}: map {var.name!r} is not a struct in BTF")
        fields: dict[str, int] = {}
        types: dict[str, int] = {}
        for m in st.members:
            ptr = btf.type(btf.resolve(m.type))
            if ptr.kind != "ptr":
                raise ElfError(f"{where}: map {var.name!r} field {m.name!r} is not a pointer "
                               "(use __uint/__type from bpf_helpers.h)")
            target = btf.type(btf.resolve(ptr.type))
            if m.name in ("key", "value"):
                types[m.name] = ptr.type
            elif target.kind == "array":
                fields[m.name] = target.nelems
            else:
                types[m.name] = ptr.type  # e.g. "values" of maps-in-maps
        map_type = _map_type(fields.get("type", 0), f"{where}: map {var.name!r}")
        key_size = fields.get("key_size") or (btf.sizeof(types["key"]) if "key" in types else 0)
        value_size = fields.get("value_size") or (btf.sizeof(types["value"]) if "value" in types else 0)
        out.append((info.offset, MapDef(
            name=var.name, type=map_type, key_size=key_size, value_size=value_size,
            max_entries=fields.get("max_entries", 0), flags=fields.get("map_flags", 0),
            key_type_id=types.get("key", 0), value_type_id=types.get("value", 0),
            section=".maps", pinning=fields.get("pinning", 0),
        )))
    return out


def legacy_maps(data: bytes, symbols: list[tuple[str, int]], *, where: str) -> list[tuple[int, MapDef]]:
    """``(offset, MapDef)`` for each symbol of the legacy ``maps`` section."""
    out = []
    for name, offset in sorted(symbols, key=lambda s: s[1]):
        if offset + LEGACY_MAP_DEF.size > len(data):
            raise ElfError(f"{where}: map {name!r} at offset {offset} runs past the section")
        type_, key_size, value_size, max_entries, flags = LEGACY_MAP_DEF.unpack_from(data, offset)
        out.append((offset, MapDef(name, _map_type(type_, f"{where}: map {name!r}"), key_size,
                                   value_size, max_entries, flags, section="maps")))
    return out


def global_data_map(obj_name: str, section: str, data: bytes) -> MapDef:
    """The array map behind a global-data section, named as libbpf names it
    (the first 8 characters of the object's name, then the section)."""
    flags = BPF_F_MMAPABLE | (BPF_F_RDONLY_PROG if section.startswith(".rodata") else 0)
    prefix = obj_name.split(".")[0][:8]
    return MapDef(f"{prefix}{section}"[:15], "array", 4, len(data), 1, flags, section=section,
                  initial=bytes(data))
