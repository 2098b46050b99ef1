"""Kernel maps made from ``MapDef``s, and programs' map references turned into fds.

``create_map`` does what libbpf does before ``BPF_MAP_CREATE``: the sizes an
object leaves to its loader are filled (``prepared``), a map of maps gets its
inner map's template as ``inner_map_fd``, the map's key and value types go
along when the object's BTF is loaded (and the map is created without them if
the kernel refuses them, as libbpf retries). When the kernel still refuses,
the error says why it is likely to have done so.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
from dataclasses import replace

from ..errors import KernelError
from ..isa import Insn
from ..isa import opcodes as op
from ..program import MAP_TYPES, MapDef
from .syscall import (
    BPF_MAP_CREATE,
    BPF_MAP_FREEZE,
    BPF_MAP_LOOKUP_ELEM,
    BPF_MAP_UPDATE_ELEM,
    BPF_OBJ_GET_INFO_BY_FD,
    InfoByFdAttr,
    MapCreateAttr,
    MapElemAttr,
    MapInfo,
    bpf,
    errno_name,
)

BPF_F_RDONLY_PROG = 1 << 7
BPF_F_NUMA_NODE = 1 << 2
BPF_F_NO_PREALLOC = 1 << 0
PERF_MAX_STACK = "/proc/sys/kernel/perf_event_max_stack"
PERF_MAX_STACK_DEFAULT = 127  # the kernel's PERF_MAX_STACK_DEPTH
STACK_ENTRY_SIZE = 8  # a u64 instruction pointer
FD_SIZE = 4  # perf event arrays, maps of maps and prog arrays hold fds (u32)
# the size of a max_entries an object left for its loader to set (tools set it at
# run time, e.g. from the number of CPUs): any positive value creates the map
LOADER_MAX_ENTRIES = 1
# map types whose max_entries must be 0 (storage attached to kernel objects)
NO_MAX_ENTRIES = frozenset({"sk_storage", "inode_storage", "task_storage", "cgrp_storage",
                            "cgroup_storage", "percpu_cgroup_storage"})
NEED_BTF = NO_MAX_ENTRIES - {"cgroup_storage", "percpu_cgroup_storage"}
# maps whose values are fds or stacks: the kernel takes no key/value BTF for them
NO_BTF = frozenset({"perf_event_array", "prog_array", "cgroup_array", "stack_trace", "array_of_maps",
                    "hash_of_maps", "devmap", "devmap_hash", "cpumap", "xskmap", "sockmap", "sockhash",
                    "reuseport_sockarray", "queue", "stack", "arena", "ringbuf", "user_ringbuf"})


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
    """A map in the kernel: ``fd``, its definition, element access; closed on ``close()``.
    A map the kernel would not create (and the program does not use) has no fd
    and says why in ``refused``."""

    def __init__(self, definition: MapDef, fd: int | None, refused: str | None = None):
        self.definition = definition
        self.fd: int | None = fd
        self.refused = refused
        self.notes: list[str] = []  # what creating it filled in or left out

    @property
    def name(self) -> str:
        return self.definition.name

    def _elem(self, cmd: int, key: bytes, value: ctypes.Array | None, flags: int = 0) -> None:
        if self.fd is None:
            raise KernelError(f"map {self.name}: " + (f"not created: {self.refused}" if self.refused
                                                       else "already closed"))
        kbuf = ctypes.create_string_buffer(bytes(key), len(key))
        attr = MapElemAttr(map_fd=self.fd, key=ctypes.addressof(kbuf),
                           value=ctypes.addressof(value) if value is not None else 0, flags=flags)
        try:
            bpf(cmd, attr)
        except OSError as exc:
            what = {BPF_MAP_UPDATE_ELEM: "update", BPF_MAP_LOOKUP_ELEM: "lookup"}.get(cmd, str(cmd))
            raise KernelError(f"map {self.name}: {what} failed ({errno_name(exc.errno)}: {exc.strerror})",
                              exc.errno) from None

    @property
    def id(self) -> int:
        """The kernel's id of the map (what a map of maps holds for it)."""
        if self.fd is None:
            raise KernelError(f"map {self.name}: " + (f"not created: {self.refused}" if self.refused
                                                       else "already closed"))
        info = MapInfo()
        attr = InfoByFdAttr(bpf_fd=self.fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
        try:
            bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
        except OSError as exc:
            raise KernelError(f"map {self.name}: BPF_OBJ_GET_INFO_BY_FD failed ({errno_name(exc.errno)})",
                              exc.errno) from None
        return info.id

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


def perf_max_stack() -> int:
    """Frames a stack trace holds on this kernel (``kernel.perf_event_max_stack``)."""
    try:
        return int(open(PERF_MAX_STACK).read())
    except (OSError, ValueError):
        return PERF_MAX_STACK_DEFAULT


def prepared(definition: MapDef) -> tuple[MapDef, list[str]]:
    """The definition as a loader creates it, and what was filled in: libbpf's
    sizes for perf event arrays (4-byte keys and values, one entry per CPU),
    and the sizes tools set at run time (a stack trace's value of
    ``perf_event_max_stack`` frames, a max_entries of 0)."""
    d, notes = definition, []
    if d.type == "perf_event_array":
        d = replace(d, key_size=d.key_size or FD_SIZE, value_size=d.value_size or FD_SIZE,
                    max_entries=d.max_entries or possible_cpus())
    if d.type == "stack_trace" and d.value_size == 0:
        d = replace(d, value_size=perf_max_stack() * STACK_ENTRY_SIZE)
        notes.append(f"map {d.name}: value size 0 (left to the loader): {d.value_size} bytes, "
                     f"{perf_max_stack()} frames (kernel.perf_event_max_stack)")
    if d.pinning:
        notes.append(f"map {d.name}: pinning {d.pinning} not applied: bpfnb creates a private map, "
                     "nothing in bpffs")
    if d.max_entries == 0 and d.type not in NO_MAX_ENTRIES and d.type not in ("ringbuf", "user_ringbuf"):
        d = replace(d, max_entries=LOADER_MAX_ENTRIES)
        notes.append(f"map {d.name}: max_entries 0 (left to the loader): created with {LOADER_MAX_ENTRIES}")
    return d, notes


def _why(d: MapDef, err: int, with_btf: bool) -> str:
    """The likely reason the kernel refused ``d`` (the kernel says only an errno)."""
    if err == errno.EPERM:
        return "no permission (BPF needs root, or CAP_BPF with CAP_PERFMON/CAP_NET_ADMIN)"
    if d.type in NEED_BTF and not with_btf:
        return f"a {d.type} map needs its value's BTF, and the object's BTF was not loaded"
    if d.type in NO_MAX_ENTRIES and d.max_entries:
        return f"a {d.type} map takes max_entries 0"
    if d.type in NEED_BTF and not d.flags & BPF_F_NO_PREALLOC:
        return f"a {d.type} map needs BPF_F_NO_PREALLOC in its flags"
    if d.type == "struct_ops":
        return ("a struct_ops map needs the kernel struct it implements (btf_vmlinux_value_type_id); "
                "bpfnb does not create them")
    if d.type in ("array_of_maps", "hash_of_maps") and d.inner is None:
        return "a map of maps needs an inner map template"
    if d.type == "ringbuf" and (d.max_entries & (d.max_entries - 1) or d.max_entries % os.sysconf("SC_PAGE_SIZE")):
        return "a ringbuf's max_entries must be a power of 2 and a multiple of the page size"
    if d.type == "arena":
        return "an arena needs BPF_F_MMAPABLE and a kernel with arenas (and map_extra, its address, if given)"
    if err in (errno.ENOMEM, errno.E2BIG):
        return "too large for this machine (memory or the memlock limit)"
    if d.key_size == 0 and d.type not in ("ringbuf", "user_ringbuf", "queue", "stack", "bloom_filter", "arena"):
        return "key size 0"
    if d.value_size == 0 and d.type not in ("ringbuf", "user_ringbuf", "arena"):
        return "value size 0"
    return "an attribute this kernel does not accept for that map type"


def create_map(definition: MapDef, *, btf_fd: int | None = None) -> KernelMap:
    """Create ``definition`` in the kernel (as ``prepared`` fills it); global data
    gets its initial bytes (and ``.rodata`` is frozen, so the verifier may treat it
    as constant). With ``btf_fd`` (the object's BTF, loaded) the key and value
    types go along; a refusal with them is retried without, as libbpf does."""
    if definition.type not in MAP_TYPES:
        raise KernelError(f"map {definition.name}: unknown map type {definition.type!r}")
    d, notes = prepared(definition)
    inner = None
    if d.inner is not None:  # the template the kernel checks inner maps against
        inner = create_map(replace(d.inner, name=f"{d.name}.inner"[:15]), btf_fd=btf_fd)
    try:
        typed = btf_fd is not None and bool(d.key_type_id or d.value_type_id) and d.type not in NO_BTF
        try:
            fd = _create(d, inner, btf_fd if typed else None)
        except OSError as exc:
            if not typed or exc.errno == errno.EPERM:
                raise
            try:
                fd = _create(d, inner, None)
            except OSError:
                raise exc from None
            notes.append(f"map {d.name}: the kernel refused its BTF types ({errno_name(exc.errno)}): "
                         "created without them")
    except OSError as exc:
        raise KernelError(
            f"map {d.name}: the kernel refused to create a {d.type} map (key {d.key_size}, value "
            f"{d.value_size}, max_entries {d.max_entries}, flags {d.flags:#x}"
            + (f", inner {d.inner.type}" if d.inner else "") + f"): {errno_name(exc.errno)}: "
            f"{_why(d, exc.errno, btf_fd is not None)}", exc.errno) from None
    finally:
        if inner is not None:
            inner.close()
    kmap = KernelMap(d, fd)
    kmap.notes = notes
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


def _create(d: MapDef, inner: KernelMap | None, btf_fd: int | None) -> int:
    attr = MapCreateAttr(
        map_type=MAP_TYPES[d.type], key_size=d.key_size, value_size=d.value_size,
        max_entries=d.max_entries, map_flags=d.flags, map_extra=d.map_extra,
        inner_map_fd=inner.fd if inner is not None else 0,
        numa_node=d.numa_node if d.flags & BPF_F_NUMA_NODE else 0,
        map_name=re.sub(r"[^A-Za-z0-9_.]", "_", d.name).encode()[:15],  # the kernel's allowed characters
    )
    if btf_fd is not None:
        attr.btf_fd, attr.btf_key_type_id, attr.btf_value_type_id = btf_fd, d.key_type_id, d.value_type_id
    return bpf(BPF_MAP_CREATE, attr)


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
