"""A BPF program ready to verify, run or load: the value every engine takes.

``Program`` comes from an ELF object (``bpfnb.load(...).program(name)``) or
from raw instruction bytes (``bpfnb.program(data, type="socket_filter")``).
Its instructions are relocated: map references are ``LD_IMM64`` with
``src == BPF_PSEUDO_MAP_IDX`` (``imm`` = index into ``maps``) or
``BPF_PSEUDO_MAP_IDX_VALUE`` (second slot's ``imm`` = offset into the value),
bpf-to-bpf calls are ``BPF_PSEUDO_CALL`` with a relative ``imm``, and CO-RE
offsets are already patched (each patch listed in ``core_relocs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .isa import Insn, decode

if TYPE_CHECKING:  # pragma: no cover
    from .btf import Btf

# Kernel program types, named as ``enum bpf_prog_type`` without the
# ``BPF_PROG_TYPE_`` prefix, lower-case; the value is the kernel's number.
PROG_TYPES: dict[str, int] = {
    "unspec": 0, "socket_filter": 1, "kprobe": 2, "sched_cls": 3, "sched_act": 4,
    "tracepoint": 5, "xdp": 6, "perf_event": 7, "cgroup_skb": 8, "cgroup_sock": 9,
    "lwt_in": 10, "lwt_out": 11, "lwt_xmit": 12, "sock_ops": 13, "sk_skb": 14,
    "cgroup_device": 15, "sk_msg": 16, "raw_tracepoint": 17, "cgroup_sock_addr": 18,
    "lwt_seg6local": 19, "lirc_mode2": 20, "sk_reuseport": 21, "flow_dissector": 22,
    "cgroup_sysctl": 23, "raw_tracepoint_writable": 24, "cgroup_sockopt": 25,
    "tracing": 26, "struct_ops": 27, "ext": 28, "lsm": 29, "sk_lookup": 30,
    "syscall": 31, "netfilter": 32,
}
# The type of a program whose section names none bpfnb knows: it can be shown,
# not verified, run or loaded until a type is given (``load(path, types=...)``).
UNKNOWN_TYPE = "unknown"

# ``enum bpf_attach_type`` without ``BPF_``, lower-case.
ATTACH_TYPES: dict[str, int] = {
    "cgroup_inet_ingress": 0, "cgroup_inet_egress": 1, "cgroup_inet_sock_create": 2,
    "cgroup_sock_ops": 3, "sk_skb_stream_parser": 4, "sk_skb_stream_verdict": 5,
    "cgroup_device": 6, "sk_msg_verdict": 7, "cgroup_inet4_bind": 8,
    "cgroup_inet6_bind": 9, "cgroup_inet4_connect": 10, "cgroup_inet6_connect": 11,
    "cgroup_inet4_post_bind": 12, "cgroup_inet6_post_bind": 13, "cgroup_udp4_sendmsg": 14,
    "cgroup_udp6_sendmsg": 15, "lirc_mode2": 16, "flow_dissector": 17,
    "cgroup_sysctl": 18, "cgroup_udp4_recvmsg": 19, "cgroup_udp6_recvmsg": 20,
    "cgroup_getsockopt": 21, "cgroup_setsockopt": 22, "trace_raw_tp": 23,
    "trace_fentry": 24, "trace_fexit": 25, "modify_return": 26, "lsm_mac": 27,
    "trace_iter": 28, "cgroup_inet4_getpeername": 29, "cgroup_inet6_getpeername": 30,
    "cgroup_inet4_getsockname": 31, "cgroup_inet6_getsockname": 32, "xdp_devmap": 33,
    "cgroup_inet_sock_release": 34, "xdp_cpumap": 35, "sk_lookup": 36, "xdp": 37,
    "sk_skb_verdict": 38, "sk_reuseport_select": 39, "sk_reuseport_select_or_migrate": 40,
    "perf_event": 41, "trace_kprobe_multi": 42, "lsm_cgroup": 43, "struct_ops": 44,
    "netfilter": 45, "tcx_ingress": 46, "tcx_egress": 47, "trace_uprobe_multi": 48,
    "cgroup_unix_connect": 49, "cgroup_unix_sendmsg": 50, "cgroup_unix_recvmsg": 51,
    "cgroup_unix_getpeername": 52, "cgroup_unix_getsockname": 53, "netkit_primary": 54,
    "netkit_peer": 55, "trace_kprobe_session": 56, "trace_uprobe_session": 57,
    "trace_fsession": 58, "trace_fentry_multi": 59, "trace_fexit_multi": 60,
    "trace_fsession_multi": 61,
}


# ``enum bpf_map_type`` without ``BPF_MAP_TYPE_``, lower-case.
MAP_TYPES: dict[str, int] = {
    "unspec": 0, "hash": 1, "array": 2, "prog_array": 3, "perf_event_array": 4,
    "percpu_hash": 5, "percpu_array": 6, "stack_trace": 7, "cgroup_array": 8,
    "lru_hash": 9, "lru_percpu_hash": 10, "lpm_trie": 11, "array_of_maps": 12,
    "hash_of_maps": 13, "devmap": 14, "sockmap": 15, "cpumap": 16, "xskmap": 17,
    "sockhash": 18, "cgroup_storage": 19, "reuseport_sockarray": 20,
    "percpu_cgroup_storage": 21, "queue": 22, "stack": 23, "sk_storage": 24,
    "devmap_hash": 25, "struct_ops": 26, "ringbuf": 27, "inode_storage": 28,
    "task_storage": 29, "bloom_filter": 30, "user_ringbuf": 31, "cgrp_storage": 32,
    "arena": 33, "insn_array": 34,
}
MAP_TYPE_NAMES: dict[int, str] = {v: k for k, v in MAP_TYPES.items()}


@dataclass(frozen=True)
class LineInfo:
    """Source position of the instruction at ``insn`` (slot index)."""

    insn: int
    file: str
    line: int
    col: int
    text: str


@dataclass(frozen=True)
class FuncInfo:
    """A (sub)program entry: slot index, its BTF ``FUNC`` type id and name."""

    insn: int
    type_id: int
    name: str


@dataclass(frozen=True)
class MapDef:
    """A map as the object defines it (legacy ``maps``, BTF ``.maps`` or global data).

    A map of maps has its inner map's template in ``inner``; ``init`` lists the
    slots the object fills (``__array(values, ...)`` initialisers): the name of
    a map of the object (maps of maps) or of a program (prog arrays).
    """

    name: str
    type: str  # ``enum bpf_map_type`` without ``BPF_MAP_TYPE_``, lower-case: "array", "hash", ...
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    key_type_id: int = 0  # in the object's BTF (0: none)
    value_type_id: int = 0
    section: str = ""
    initial: bytes | None = None  # global data (.data/.rodata/.bss) contents
    pinning: int = 0  # LIBBPF_PIN_BY_NAME (1) or iproute2's PIN_* values
    map_extra: int = 0  # bloom filter hashes, arena address, ...
    numa_node: int = 0
    inner: MapDef | None = None
    init: tuple[tuple[int, str], ...] = ()  # (slot, map or program name)
    id: int = 0  # iproute2's map id (struct bpf_elf_map), which "ID/KEY" tail-call sections name


@dataclass(frozen=True)
class Program:
    name: str
    insns: tuple[Insn, ...]
    type: str = "socket_filter"
    section: str = ""
    expected_attach_type: str | None = None
    attach_name: str | None = None  # "kfree_skb" for tp_btf/kfree_skb, "tcp_connect" for fentry/...
    attach_btf_id: int | None = None  # type id in ``kernel_btf``
    license: str = "GPL"
    maps: tuple[MapDef, ...] = ()
    btf: Btf | None = None  # the object's own BTF
    kernel_btf: Btf | None = None
    func_info: tuple[FuncInfo, ...] = ()
    line_info: tuple[LineInfo, ...] = ()
    core_relocs: tuple[Any, ...] = ()  # bpfnb.elf.core.CoreRelocation records
    path: str = ""  # the object file it came from, for messages
    # What loading noticed but did not refuse (a poisoned CO-RE relocation, an
    # unresolved weak extern), each naming the instruction and what it reaches.
    warnings: tuple[str, ...] = ()
    # Set by the verifier: slots whose loads are PROBE_MEM (fault-safe).
    probe_mem: frozenset[int] | None = None
    meta: dict = field(default_factory=dict, compare=False, hash=False)
    prog_flags: int = 0  # BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS (from the section name)
    type_note: str = ""  # how the type was decided when not by libbpf's naming, or why it is unknown

    def __post_init__(self):
        if self.type not in PROG_TYPES and self.type != UNKNOWN_TYPE:
            from .errors import BpfnbError

            raise BpfnbError(
                f"unknown program type {self.type!r} (known: {', '.join(sorted(PROG_TYPES))})"
            )

    @property
    def prog_type_id(self) -> int:
        self.require_type()
        return PROG_TYPES[self.type]

    def require_type(self) -> None:
        """Raise a ``BpfnbError`` saying how to give a type when it is ``unknown``."""
        if self.type == UNKNOWN_TYPE:
            from .errors import BpfnbError

            raise BpfnbError(
                f"{self.where}: program {self.name} has no known program type ({self.type_note}); "
                f"give one: bpfnb.load(path, types={{{self.name!r}: TYPE}}) or --type TYPE / --section NAME"
            )

    @property
    def where(self) -> str:
        """``file:section`` for messages."""
        parts = [p for p in (self.path, self.section or self.name) if p]
        return ":".join(parts)

    def with_probe_mem(self, slots) -> Program:
        return replace(self, probe_mem=frozenset(slots))

    def source_line(self, insn: int) -> LineInfo | None:
        """The line info in force at slot ``insn`` (the last one at or before it)."""
        best = None
        for li in self.line_info:
            if li.insn <= insn:
                best = li
            else:
                break
        return best

    def __len__(self) -> int:
        return len(self.insns)

    def __str__(self) -> str:
        from .isa.disasm import format_program

        return format_program(self.insns)


def program(
    data: bytes,
    type: str = "socket_filter",
    *,
    name: str = "prog",
    attach: str | None = None,
    kernel_btf=None,
    section: str | None = None,
    **kw,
) -> Program:
    """A program from raw little-endian 8-byte instructions.

    ``section`` (any libbpf section name) gives it the type and attach target an ELF
    section of that name would; so does ``attach`` with ``type``: ``type="tracing",
    attach="kfree_skb"`` is a ``tp_btf/kfree_skb`` program (the first libbpf section
    of that type that takes a target), its ``attach_btf_id`` from the kernel BTF.

    >>> prog = program(bytes.fromhex("b700000000000000" "9500000000000000"))
    """
    fields = {"type": type, "attach_name": attach, "kernel_btf": kernel_btf}
    if section is not None or (attach and "expected_attach_type" not in kw):
        from .elf.sections import section_fields  # section names are the ELF layer's convention

        fields = section_fields(section, type=type, attach=attach, kernel_btf=kernel_btf)
    return Program(name=name, insns=decode(data, where=name), **fields, **kw)
