"""The VM's memory: regions in one arena, at virtual addresses, with permissions.

Every region (stack frames, ctx, packet, map values, global data, synthetic
kernel objects) lives in one numpy ``arena`` at ``BASE + offset``; the
interpreter checks every access against the region table, so an address
outside every region — NULL, a made-up pointer, a deliberately unmapped one —
is a fault it can name. ``KernelObjects`` lays out real kernel structs by
their BTF offsets, pointers included.

The region table is the one definition of what a program may touch, for every
engine. Each region has pages of its own, ends exactly at a page boundary (a
packet) or within 7 bytes of one (the rest, kept 8-byte aligned), and has a
guard page before it, so the JIT's engines can map the region pages
(``page_perms``) and leave the rest unmapped: an access past a region's end
faults in hardware, as the interpreter's check does. What the pages cannot
catch (the slack in front of a region on its first page) is zero by
construction and checked after a run (``slack_writes``).

The arena is bounded by a memory budget (``bpfnb.limits``): a region that
would exceed it is refused, naming the region and its size, before anything
is allocated.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .. import limits
from ..errors import VmError

BASE = 0x10000000  # no region below: NULL and small integers fault
READ, WRITE = 1, 2
PAGE = 4096  # the granularity of the engines' guard pages
GUARD = PAGE  # unmapped bytes in front of every region
ALIGN = 8  # a region's start, except a packet's (which ends exactly at its page's end)
_tokens = itertools.count(1)
UNMAPPED = 0xDEAD0000  # an address no region covers: the arena would need 3.5 GB to reach it


@dataclass(frozen=True)
class Region:
    name: str
    base: int
    size: int
    perm: int
    kind: str  # "stack", "ctx", "packet", "map", "global", "kernel", "mem", "jit" (the JIT's own structures)
    trailer: int = 0  # bytes after the region on its last page that are no one's memory (the stack's frame linkage)


class Memory:
    """Regions in one growable arena; ``add`` returns the region's address.

    ``budget``: the most bytes the arena may grow to (default ``limits.memory_budget()``)."""

    def __init__(self, capacity: int = 1 << 16, *, budget: int | None = None):
        self.budget = limits.memory_budget() if budget is None else budget
        self.arena = np.zeros(capacity, dtype=np.uint8)
        self.used = 0
        self.regions: list[Region] = []
        self.token = next(_tokens)
        self.version = 0  # changes whenever the region table does (engines cache their page maps on it)

    def add(self, name: str, data: bytes | int, *, perm: int = READ | WRITE, kind: str = "mem",
            trailer: int = 0) -> int:
        """``trailer``: bytes kept between the region's end and its page's end (mapped, but
        no one's memory: the stack keeps its frame linkage there)."""
        size = data if isinstance(data, int) else len(data)
        if size < 0:
            raise VmError(f"region {name!r}: negative size {size}")
        pages = max((size + trailer + PAGE - 1) // PAGE, 1)
        end = self.used + GUARD + pages * PAGE
        limits.check_size(f"region {name!r}", end, self.budget, VmError)
        start = end - trailer - size if kind == "packet" else (end - trailer - size) & ~(ALIGN - 1)
        if end > len(self.arena):
            grown = np.zeros(min(max(end * 2, len(self.arena) * 2), max(self.budget, end)), dtype=np.uint8)
            grown[: self.used] = self.arena[: self.used]
            self.arena = grown
        if not isinstance(data, int):
            self.arena[start:start + size] = np.frombuffer(bytes(data), dtype=np.uint8)
        self.used = end
        region = Region(name, BASE + start, size, perm, kind, trailer)
        self.regions.append(region)
        self.version += 1
        return region.base

    def mark(self) -> tuple[int, int]:
        """Where the regions end now: ``release(mark)`` frees everything added after it."""
        return len(self.regions), self.used

    def release(self, mark: tuple[int, int]) -> None:
        """Forget the regions added since ``mark`` (a run's ctx and packet); their bytes
        are zeroed, as a new region's must be."""
        count, used = mark
        if count == len(self.regions) and used == self.used:
            return
        del self.regions[count:]
        self.arena[used:self.used] = 0
        self.used = used
        self.version += 1

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

    def page_perms(self) -> np.ndarray:
        """The permission of each arena page up to ``used`` (READ/WRITE bits; 0: a guard
        page, which the JIT's engines leave unmapped)."""
        perms = np.zeros(self.used // PAGE, dtype=np.uint8)
        for r in self.regions:
            first = (r.base - BASE) // PAGE
            last = max((r.base - BASE + r.size + r.trailer + PAGE - 1) // PAGE, first + 1)
            perms[first:last] = r.perm
        return perms

    def slack_writes(self, view: np.ndarray) -> tuple[int, Region] | None:
        """In ``view`` (a copy of the arena after a run): the first non-zero byte on a
        region's pages but outside the region — a write no guard page could catch —
        as (address, the region whose page it is on), or None."""
        for r in self.regions:
            off = r.base - BASE
            head = off - off // PAGE * PAGE
            tail_end = max((off + r.size + r.trailer + PAGE - 1) // PAGE * PAGE, off // PAGE * PAGE + PAGE)
            for lo, hi in ((off - head, off), (off + r.size + r.trailer, tail_end)):
                if hi > lo:
                    hit = np.flatnonzero(view[lo:hi])
                    if hit.size:
                        return BASE + lo + int(hit[0]), r
        return None

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


def _members_flat(btf, type_id: int, base: int = 0, within: tuple[int, ...] = ()):
    """Members of a struct, with anonymous struct/union members opened in place (an
    anonymous member that contains its own struct is malformed BTF: refused)."""
    from ..errors import BtfError

    resolved = btf.resolve(type_id)
    if resolved in within:
        raise BtfError(f"{btf.name}: malformed BTF: {btf.name_of(resolved)} (type {resolved}) contains itself")
    for m in btf.members(type_id):
        if not m.name:
            inner = btf.type(btf.resolve(m.type))
            if inner.kind in ("struct", "union"):
                yield from _members_flat(btf, m.type, base + m.bit_offset // 8, (*within, resolved))
                continue
        yield m, base
