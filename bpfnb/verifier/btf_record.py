"""``btf_record``: the special fields the kernel finds in a map's value type from its BTF
(``btf_parse_fields``). bpfnb looks for one kind: a ``struct bpf_timer``, which only the
timer helpers may touch."""

from __future__ import annotations

import functools

BPF_TIMER = "bpf_timer"
BPF_TIMER_SIZE = 16
BITS_PER_BYTE = 8


@functools.cache
def find_struct_field(btf, type_id: int, name: str) -> int | None:
    """The byte offset of the first ``struct name`` inside ``type_id`` (itself, or a member
    of it or of a struct it holds), or None."""
    t = btf.type(btf.resolve(type_id))
    if t.kind == "struct" and t.name == name:
        return 0
    if t.kind not in ("struct", "union"):
        return None
    for member in t.members:
        inner = find_struct_field(btf, member.type, name)
        if inner is not None:
            return member.bit_offset // BITS_PER_BYTE + inner
    return None


def map_timer_off(prog, map_def) -> int | None:
    """``map->record->timer_off``: where the map's value holds its bpf_timer (None: the map
    has no BTF, or its value no timer)."""
    btf = getattr(prog, "btf", None)
    if btf is None or map_def is None or not map_def.value_type_id:
        return None
    return find_struct_field(btf, map_def.value_type_id, BPF_TIMER)
