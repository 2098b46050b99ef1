"""Kernel maps made from ``MapDef``s, and programs' map references turned into fds."""

from __future__ import annotations

import ctypes
import os
import re

from ..errors import KernelError
from ..isa import Insn
from ..isa import opcodes as op
from ..program import MAP_TYPES, MapDef
from .syscall import (
    BPF_MAP_CREATE,
    BPF_MAP_FREEZE,
    BPF_MAP_LOOKUP_ELEM,
    BPF_MAP_UPDATE_ELEM,
    MapCreateAttr,
    MapElemAttr,
    bpf,
    errno_name,
)

BPF_F_RDONLY_PROG = 1 << 7


def possible_cpus() -> int:
    """Number of possible CPUs (``/sys/devices/system/cpu/possible``: ``0-N``)."""
    try:
        text = open("/sys/devices/system/cpu/possible").read().strip()
    except OSError:
        return os.cpu_count() or 1
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


class KernelMap:
    """A map in the kernel: ``fd``, its definition, element access; closed on ``close()``."""

    def __init__(self, definition: MapDef, fd: int):
        self.definition = definition
        self.fd: int | None = fd

    @property
    def name(self) -> str:
        return self.definition.name

    def _elem(self, cmd: int, key: bytes, value: ctypes.Array | None, flags: int = 0) -> None:
        if self.fd is None:
            raise KernelError(f"map {self.name}: already closed")
        kbuf = ctypes.create_string_buffer(bytes(key), len(key))
        attr = MapElemAttr(map_fd=self.fd, key=ctypes.addressof(kbuf),
                           value=ctypes.addressof(value) if value is not None else 0, flags=flags)
        try:
            bpf(cmd, attr)
        except OSError as exc:
            what = {BPF_MAP_UPDATE_ELEM: "update", BPF_MAP_LOOKUP_ELEM: "lookup"}.get(cmd, str(cmd))
            raise KernelError(f"map {self.name}: {what} failed ({errno_name(exc.errno)}: {exc.strerror})",
                              exc.errno) from None

    def update(self, key: bytes, value: bytes, flags: int = 0) -> None:
        vbuf = ctypes.create_string_buffer(bytes(value), len(value))
        self._elem(BPF_MAP_UPDATE_ELEM, key, vbuf, flags)

    def lookup(self, key: bytes) -> bytes:
        size = self.definition.value_size
        if self.definition.type.startswith("percpu") or self.definition.type == "lru_percpu_hash":
            size = ((size + 7) // 8 * 8) * possible_cpus()
        vbuf = ctypes.create_string_buffer(size)
        self._elem(BPF_MAP_LOOKUP_ELEM, key, vbuf)
        return vbuf.raw

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self):
        self.close()

    def __repr__(self) -> str:
        d = self.definition
        return f"<KernelMap {d.name} {d.type} fd={self.fd} key={d.key_size} value={d.value_size} max={d.max_entries}>"


def create_map(definition: MapDef) -> KernelMap:
    """Create ``definition`` in the kernel; global data gets its initial bytes (and
    ``.rodata`` is frozen, so the verifier may treat it as constant)."""
    try:
        map_type = MAP_TYPES[definition.type]
    except KeyError:
        raise KernelError(f"map {definition.name}: unknown map type {definition.type!r}") from None
    max_entries = definition.max_entries
    if definition.type == "perf_event_array" and max_entries == 0:
        max_entries = possible_cpus()
    attr = MapCreateAttr(
        map_type=map_type, key_size=definition.key_size, value_size=definition.value_size,
        max_entries=max_entries, map_flags=definition.flags,
        map_name=re.sub(r"[^A-Za-z0-9_.]", "_", definition.name).encode()[:15],  # the kernel's allowed characters
    )
    try:
        fd = bpf(BPF_MAP_CREATE, attr)
    except OSError as exc:
        raise KernelError(
            f"map {definition.name}: the kernel refused to create a {definition.type} map "
            f"(key {definition.key_size}, value {definition.value_size}, max_entries {max_entries}, "
            f"flags {definition.flags:#x}): {errno_name(exc.errno)}: {exc.strerror}", exc.errno) from None
    kmap = KernelMap(definition, fd)
    if definition.initial is not None:
        kmap.update(b"\0\0\0\0", definition.initial)
        if definition.flags & BPF_F_RDONLY_PROG:
            try:
                bpf(BPF_MAP_FREEZE, MapElemAttr(map_fd=fd))
            except OSError as exc:
                kmap.close()
                raise KernelError(f"map {definition.name}: freeze failed ({errno_name(exc.errno)})",
                                  exc.errno) from None
    return kmap


def with_map_fds(insns, fds: list[int]) -> tuple[Insn, ...]:
    """Map references by index (``BPF_PSEUDO_MAP_IDX[_VALUE]``) rewritten to the
    kernel's fd forms (``BPF_PSEUDO_MAP_FD`` / ``BPF_PSEUDO_MAP_VALUE``)."""
    out = list(insns)
    for i, insn in enumerate(out):
        if not insn.is_ld_imm64:
            continue
        if insn.src == op.BPF_PSEUDO_MAP_IDX:
            out[i] = Insn(insn.code, insn.dst, op.BPF_PSEUDO_MAP_FD, insn.off, fds[insn.imm])
        elif insn.src == op.BPF_PSEUDO_MAP_IDX_VALUE:
            out[i] = Insn(insn.code, insn.dst, op.BPF_PSEUDO_MAP_VALUE, insn.off, fds[insn.imm])
    return tuple(out)
