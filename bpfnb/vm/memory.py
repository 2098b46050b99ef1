"""The VM's memory: regions in one arena, at virtual addresses, with permissions.

Every region (stack frames, ctx, packet, map values, global data, synthetic
kernel objects) lives in one numpy ``arena`` at ``BASE + offset``; the
interpreter checks every access against the region table, so an address
outside every region — NULL, a made-up pointer, a deliberately unmapped one —
is a fault it can name. ``KernelObjects`` lays out real kernel structs by
their BTF offsets, pointers included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import VmError

BASE = 0x10000000  # no region below: NULL and small integers fault
READ, WRITE = 1, 2
UNMAPPED = 0xDEAD0000  # an address no region covers: the arena would need 3.5 GB to reach it


@dataclass(frozen=True)
class Region:
    name: str
    base: int
    size: int
    perm: int
    kind: str  # "stack", "ctx", "packet", "map", "global", "kernel", "mem"


class Memory:
    """Regions in one growable arena; ``add`` returns the region's address."""

    def __init__(self, capacity: int = 1 << 16):
        self.arena = np.zeros(capacity, dtype=np.uint8)
        self.used = 0
        self.regions: list[Region] = []

    def add(self, name: str, data: bytes | int, *, perm: int = READ | WRITE, kind: str = "mem") -> int:
        size = data if isinstance(data, int) else len(data)
        start = (self.used + 15) & ~15
        end = start + max(size, 1)
        if end > len(self.arena):
            grown = np.zeros(max(end * 2, len(self.arena) * 2), dtype=np.uint8)
            grown[: self.used] = self.arena[: self.used]
            self.arena = grown
        if not isinstance(data, int):
            self.arena[start:start + size] = np.frombuffer(bytes(data), dtype=np.uint8)
        self.used = end
        region = Region(name, BASE + start, size, perm, kind)
        self.regions.append(region)
        return region.base

    def mark(self) -> tuple[int, int]:
        """Where the regions end now: ``release(mark)`` frees everything added after it."""
        return len(self.regions), self.used

    def release(self, mark: tuple[int, int]) -> None:
        """Forget the regions added since ``mark`` (a run's ctx and packet); their bytes
        are zeroed, as a new region's must be."""
        count, used = mark
        del self.regions[count:]
        self.arena[used:self.used] = 0
        self.used = used

    def added_since(self, mark: tuple[int, int], kind: str) -> list[Region]:
        return [r for r in self.regions[mark[0]:] if r.kind == kind]

    def find(self, addr: int, size: int = 1) -> Region | None:
        for r in self.regions:
            if r.base <= addr and addr + size <= r.base + r.size:
                return r
        return None

    def offset(self, addr: int, size: int = 1) -> int:
        if self.find(addr, size) is None:
            raise VmError(f"address {addr:#x} (+{size}) is in no region")
        return addr - BASE

    def read(self, addr: int, size: int) -> bytes:
        off = self.offset(addr, size)
        return self.arena[off:off + size].tobytes()

    def write(self, addr: int, data: bytes) -> None:
        off = self.offset(addr, len(data))
        self.arena[off:off + len(data)] = np.frombuffer(data, dtype=np.uint8)

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(base, size, perm) arrays for the interpreter."""
        return (np.array([r.base for r in self.regions], dtype=np.int64),
                np.array([r.size for r in self.regions], dtype=np.int64),
                np.array([r.perm for r in self.regions], dtype=np.int64))

    def __repr__(self) -> str:
        return f"<Memory {len(self.regions)} regions, {self.used} bytes>"


class KernelObject:
    """A synthetic kernel struct in VM memory: ``addr`` and its BTF type."""

    def __init__(self, objects: KernelObjects, type_id: int, addr: int):
        self.objects, self.type_id, self.addr = objects, type_id, addr

    def __int__(self) -> int:
        return self.addr

    def __repr__(self) -> str:
        return f"<{self.objects.btf.name_of(self.type_id)} at {self.addr:#x}>"


class KernelObjects:
    """Kernel structs laid out by a BTF: ``new("struct sk_buff", len=74, dev=dev)``.

    Field values: an int (written at the member's size), bytes (copied into an
    array member, or given their own region when the member is a pointer), a
    ``KernelObject`` (its address), ``None`` (NULL) or ``UNMAPPED`` (a pointer
    no region covers, so a PROBE_MEM load through it faults). Dotted names
    reach nested members (``"__sk_common.skc_dport"``).
    """

    def __init__(self, btf, memory: Memory | None = None):
        self.btf = btf
        self.memory = memory or Memory()

    def new(self, type_name: str, **fields) -> KernelObject:
        kind, _, name = type_name.partition(" ")
        type_id = self.btf.find(name or kind, kind if name else None)
        size = self.btf.sizeof(type_id)
        addr = self.memory.add(type_name, size, perm=READ | WRITE, kind="kernel")
        obj = KernelObject(self, type_id, addr)
        for key, value in fields.items():
            self.set(obj, key, value)
        return obj

    def _member(self, type_id: int, dotted: str):
        offset, current = 0, type_id
        member = None
        for part in dotted.split("."):
            found = None
            for m, base in _members_flat(self.btf, current):
                if m.name == part:
                    found = (m, base)
                    break
            if found is None:
                raise VmError(f"{self.btf.name_of(current)} has no member {part!r}")
            member, base = found
            offset += base + member.bit_offset // 8
            current = member.type
        return member, offset

    def set(self, obj: KernelObject, field: str, value) -> None:
        member, offset = self._member(obj.type_id, field)
        btf = self.btf
        t = btf.type(btf.resolve(member.type))
        addr = obj.addr + offset
        if t.kind == "ptr":
            if isinstance(value, (bytes, bytearray)):
                value = self.memory.add(f"{field} bytes", bytes(value), kind="mem")
            target = 0 if value is None else int(value)
            self.memory.write(addr, target.to_bytes(8, "little"))
        elif t.kind == "array" and isinstance(value, (bytes, bytearray, str)):
            data = value.encode() if isinstance(value, str) else bytes(value)
            size = btf.sizeof(member.type)
            self.memory.write(addr, data[:size].ljust(size, b"\0"))
        else:
            size = btf.sizeof(member.type)
            self.memory.write(addr, (int(value) & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))


def _members_flat(btf, type_id: int, base: int = 0):
    """Members of a struct, with anonymous struct/union members opened in place."""
    for m in btf.members(type_id):
        if not m.name:
            inner = btf.type(btf.resolve(m.type))
            if inner.kind in ("struct", "union"):
                yield from _members_flat(btf, m.type, base + m.bit_offset // 8)
                continue
        yield m, base
