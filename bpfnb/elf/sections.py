"""ELF section names → program type, expected attach type, attach target.

The naming convention is libbpf's (its ``section_defs`` table, libbpf 1.x): an
exact name (``socket``, ``xdp``, ``tc/ingress``) or, for the definitions that
take one, the name alone or followed by ``/`` and a target
(``kprobe/tcp_connect``, ``tp_btf/kfree_skb``, ``usdt/…``).

Objects written for older loaders use names libbpf 1.x no longer reads; bpfnb
reads them as those loaders did and says so in ``SectionKind.note``:

- libbpf < 1.0 matched the target-less names as prefixes: ``xdp1``,
  ``xdp_prog``, ``socket1``, ``cgroup/sock1``, ``classifier/ingress``;
- iproute2's tail-call slots ``__section_tail(ID, KEY)`` are sections named
  ``ID/KEY`` (``2/7``): a program of whatever type the program calling it has
  (the loader takes it from the object's other programs).

Any other name gives type ``unknown`` with the reason: the object still loads
and the type can be given (``bpfnb.load(path, types={...})``, ``--type``).
Types and attach types are named as in ``bpfnb.program.PROG_TYPES`` /
``ATTACH_TYPES``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BtfError, ElfError
from ..program import PROG_TYPES, UNKNOWN_TYPE

# prog_flags of BPF_PROG_LOAD the section implies (include/uapi/linux/bpf.h)
BPF_F_SLEEPABLE = 1 << 4
BPF_F_XDP_HAS_FRAGS = 1 << 5

TAIL_CALL_SLOT = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class SectionDef:
    name: str  # "socket", or "kprobe" (matching "kprobe" and "kprobe/...")
    type: str
    attach_type: str | None = None
    target: bool = False  # libbpf's "+": the part after "/" names the attach target
    btf_target: bool = False  # the target is resolved in the kernel BTF (attach_btf_id)
    prog_flags: int = 0


def _d(name, type, attach=None, target=False, btf=False, flags=0) -> SectionDef:
    return SectionDef(name, type, attach, target, btf, flags)


_S = BPF_F_SLEEPABLE
_FRAGS = BPF_F_XDP_HAS_FRAGS

SECTION_DEFS: tuple[SectionDef, ...] = (
    _d("socket", "socket_filter"),
    _d("sk_reuseport/migrate", "sk_reuseport", "sk_reuseport_select_or_migrate"),
    _d("sk_reuseport", "sk_reuseport", "sk_reuseport_select"),
    _d("kprobe", "kprobe", target=True),
    _d("uprobe", "kprobe", target=True),
    _d("uprobe.s", "kprobe", target=True, flags=_S),
    _d("kretprobe", "kprobe", target=True),
    _d("uretprobe", "kprobe", target=True),
    _d("uretprobe.s", "kprobe", target=True, flags=_S),
    _d("kprobe.multi", "kprobe", "trace_kprobe_multi", target=True),
    _d("kretprobe.multi", "kprobe", "trace_kprobe_multi", target=True),
    _d("kprobe.session", "kprobe", "trace_kprobe_session", target=True),
    _d("uprobe.multi", "kprobe", "trace_uprobe_multi", target=True),
    _d("uretprobe.multi", "kprobe", "trace_uprobe_multi", target=True),
    _d("uprobe.session", "kprobe", "trace_uprobe_session", target=True),
    _d("uprobe.multi.s", "kprobe", "trace_uprobe_multi", target=True, flags=_S),
    _d("uretprobe.multi.s", "kprobe", "trace_uprobe_multi", target=True, flags=_S),
    _d("uprobe.session.s", "kprobe", "trace_uprobe_session", target=True, flags=_S),
    _d("ksyscall", "kprobe", target=True),
    _d("kretsyscall", "kprobe", target=True),
    _d("usdt", "kprobe", target=True),
    _d("usdt.s", "kprobe", target=True, flags=_S),
    _d("tc/ingress", "sched_cls", "tcx_ingress"),  # libbpf: an alias of tcx
    _d("tc/egress", "sched_cls", "tcx_egress"),
    _d("tcx/ingress", "sched_cls", "tcx_ingress"),
    _d("tcx/egress", "sched_cls", "tcx_egress"),
    _d("tc", "sched_cls"),
    _d("classifier", "sched_cls"),
    _d("action", "sched_act"),
    _d("netkit/primary", "sched_cls", "netkit_primary"),
    _d("netkit/peer", "sched_cls", "netkit_peer"),
    _d("tracepoint", "tracepoint", target=True),
    _d("tp", "tracepoint", target=True),
    _d("tracepoint.s", "tracepoint", target=True, flags=_S),
    _d("tp.s", "tracepoint", target=True, flags=_S),
    _d("raw_tracepoint", "raw_tracepoint", target=True),
    _d("raw_tp", "raw_tracepoint", target=True),
    _d("raw_tracepoint.s", "raw_tracepoint", target=True, flags=_S),
    _d("raw_tp.s", "raw_tracepoint", target=True, flags=_S),
    _d("raw_tracepoint.w", "raw_tracepoint_writable", target=True),
    _d("raw_tp.w", "raw_tracepoint_writable", target=True),
    _d("tp_btf", "tracing", "trace_raw_tp", target=True, btf=True),
    _d("tp_btf.s", "tracing", "trace_raw_tp", target=True, btf=True, flags=_S),
    _d("fentry", "tracing", "trace_fentry", target=True, btf=True),
    _d("fmod_ret", "tracing", "modify_return", target=True, btf=True),
    _d("fexit", "tracing", "trace_fexit", target=True, btf=True),
    _d("fentry.s", "tracing", "trace_fentry", target=True, btf=True, flags=_S),
    _d("fmod_ret.s", "tracing", "modify_return", target=True, btf=True, flags=_S),
    _d("fexit.s", "tracing", "trace_fexit", target=True, btf=True, flags=_S),
    _d("fsession", "tracing", "trace_fsession", target=True, btf=True),
    _d("fsession.s", "tracing", "trace_fsession", target=True, btf=True, flags=_S),
    _d("fentry.multi", "tracing", "trace_fentry_multi", target=True),
    _d("fexit.multi", "tracing", "trace_fexit_multi", target=True),
    _d("fsession.multi", "tracing", "trace_fsession_multi", target=True),
    _d("fentry.multi.s", "tracing", "trace_fentry_multi", target=True, flags=_S),
    _d("fexit.multi.s", "tracing", "trace_fexit_multi", target=True, flags=_S),
    _d("fsession.multi.s", "tracing", "trace_fsession_multi", target=True, flags=_S),
    _d("freplace", "ext", target=True),  # the target is in another program's BTF
    _d("lsm", "lsm", "lsm_mac", target=True, btf=True),
    _d("lsm.s", "lsm", "lsm_mac", target=True, btf=True, flags=_S),
    _d("lsm_cgroup", "lsm", "lsm_cgroup", target=True, btf=True),
    _d("iter", "tracing", "trace_iter", target=True, btf=True),
    _d("iter.s", "tracing", "trace_iter", target=True, btf=True, flags=_S),
    _d("syscall", "syscall", flags=_S),
    _d("xdp.frags/devmap", "xdp", "xdp_devmap", flags=_FRAGS),
    _d("xdp/devmap", "xdp", "xdp_devmap"),
    _d("xdp.frags/cpumap", "xdp", "xdp_cpumap", flags=_FRAGS),
    _d("xdp/cpumap", "xdp", "xdp_cpumap"),
    _d("xdp.frags", "xdp", "xdp", flags=_FRAGS),
    _d("xdp", "xdp", "xdp"),
    _d("perf_event", "perf_event"),
    _d("lwt_in", "lwt_in"),
    _d("lwt_out", "lwt_out"),
    _d("lwt_xmit", "lwt_xmit"),
    _d("lwt_seg6local", "lwt_seg6local"),
    _d("sockops", "sock_ops", "cgroup_sock_ops"),
    _d("sk_skb/stream_parser", "sk_skb", "sk_skb_stream_parser"),
    _d("sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict"),
    _d("sk_skb/verdict", "sk_skb", "sk_skb_verdict"),
    _d("sk_skb", "sk_skb"),
    _d("sk_msg", "sk_msg", "sk_msg_verdict"),
    _d("lirc_mode2", "lirc_mode2", "lirc_mode2"),
    _d("flow_dissector", "flow_dissector", "flow_dissector"),
    _d("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress"),
    _d("cgroup_skb/egress", "cgroup_skb", "cgroup_inet_egress"),
    _d("cgroup/skb", "cgroup_skb"),
    _d("cgroup/sock_create", "cgroup_sock", "cgroup_inet_sock_create"),
    _d("cgroup/sock_release", "cgroup_sock", "cgroup_inet_sock_release"),
    _d("cgroup/sock", "cgroup_sock", "cgroup_inet_sock_create"),
    _d("cgroup/post_bind4", "cgroup_sock", "cgroup_inet4_post_bind"),
    _d("cgroup/post_bind6", "cgroup_sock", "cgroup_inet6_post_bind"),
    _d("cgroup/bind4", "cgroup_sock_addr", "cgroup_inet4_bind"),
    _d("cgroup/bind6", "cgroup_sock_addr", "cgroup_inet6_bind"),
    _d("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect"),
    _d("cgroup/connect6", "cgroup_sock_addr", "cgroup_inet6_connect"),
    _d("cgroup/connect_unix", "cgroup_sock_addr", "cgroup_unix_connect"),
    _d("cgroup/sendmsg4", "cgroup_sock_addr", "cgroup_udp4_sendmsg"),
    _d("cgroup/sendmsg6", "cgroup_sock_addr", "cgroup_udp6_sendmsg"),
    _d("cgroup/sendmsg_unix", "cgroup_sock_addr", "cgroup_unix_sendmsg"),
    _d("cgroup/recvmsg4", "cgroup_sock_addr", "cgroup_udp4_recvmsg"),
    _d("cgroup/recvmsg6", "cgroup_sock_addr", "cgroup_udp6_recvmsg"),
    _d("cgroup/recvmsg_unix", "cgroup_sock_addr", "cgroup_unix_recvmsg"),
    _d("cgroup/getpeername4", "cgroup_sock_addr", "cgroup_inet4_getpeername"),
    _d("cgroup/getpeername6", "cgroup_sock_addr", "cgroup_inet6_getpeername"),
    _d("cgroup/getpeername_unix", "cgroup_sock_addr", "cgroup_unix_getpeername"),
    _d("cgroup/getsockname4", "cgroup_sock_addr", "cgroup_inet4_getsockname"),
    _d("cgroup/getsockname6", "cgroup_sock_addr", "cgroup_inet6_getsockname"),
    _d("cgroup/getsockname_unix", "cgroup_sock_addr", "cgroup_unix_getsockname"),
    _d("cgroup/sysctl", "cgroup_sysctl", "cgroup_sysctl"),
    _d("cgroup/getsockopt", "cgroup_sockopt", "cgroup_getsockopt"),
    _d("cgroup/setsockopt", "cgroup_sockopt", "cgroup_setsockopt"),
    _d("cgroup/dev", "cgroup_device", "cgroup_device"),
    _d("struct_ops", "struct_ops", target=True),
    _d("struct_ops.s", "struct_ops", target=True, flags=_S),
    _d("sk_lookup", "sk_lookup", "sk_lookup"),
    _d("netfilter", "netfilter", "netfilter"),
)

# the target-less names, longest first: libbpf < 1.0 matched them as prefixes
# (a name followed by a number or a separator: "xdp1", "xdp_prog", "cgroup/sock1", not "tcp_x")
_LEGACY_SUFFIX_START = frozenset("0123456789_-./")
_LEGACY_PREFIXES = tuple(sorted((d for d in SECTION_DEFS if not d.target), key=lambda d: -len(d.name)))


@dataclass(frozen=True)
class SectionKind:
    """What a program section's name means."""

    section: str
    type: str  # a PROG_TYPES name, or "unknown" (then ``note`` says why)
    attach_type: str | None = None
    target: str | None = None  # "kfree_skb" for tp_btf/kfree_skb
    btf_target: bool = False
    prog_flags: int = 0  # BPF_F_SLEEPABLE for ".s" sections, BPF_F_XDP_HAS_FRAGS for xdp.frags
    note: str = ""  # how a name libbpf 1.x does not read was read, or why the type is unknown
    tail_call: tuple[int, int] | None = None  # (map id, key) of an iproute2 "ID/KEY" section

    @property
    def known(self) -> bool:
        return self.type != UNKNOWN_TYPE


def _kind(section: str, d: SectionDef, target: str | None = None, note: str = "") -> SectionKind:
    return SectionKind(section, d.type, d.attach_type, target, d.btf_target, d.prog_flags, note)


def classify(section: str) -> SectionKind:
    """The program type etc. of ``section``; type ``unknown`` (with the reason in
    ``note``) when the name follows no convention bpfnb knows."""
    for d in SECTION_DEFS:
        if section == d.name:
            return _kind(section, d)
        if d.target and section.startswith(d.name + "/"):
            return _kind(section, d, section[len(d.name) + 1:] or None)
    if m := TAIL_CALL_SLOT.fullmatch(section):
        return SectionKind(section, UNKNOWN_TYPE, tail_call=(int(m[1]), int(m[2])),
                           note=f"tail-call slot {m[2]} of prog array {m[1]} (iproute2's "
                                f"__section_tail({m[1]}, {m[2]})): its type is its caller's")
    for d in _LEGACY_PREFIXES:
        if section.startswith(d.name) and section[len(d.name)] in _LEGACY_SUFFIX_START:
            return _kind(section, d, note=f"legacy name: libbpf < 1.0 read {section!r} as {d.name!r}")
    return SectionKind(section, UNKNOWN_TYPE, note=f"section {section!r} names no program type libbpf knows")


def given(section: str, type_or_section: str) -> SectionKind:
    """The kind of a program whose type the user gave: a program type name
    (``"xdp"``, ``"sched_cls"``) or a section name to read it as
    (``"tp_btf/kfree_skb"``). A value that is neither is ``None``."""
    if type_or_section in PROG_TYPES:
        # the attach type a plain section of that type implies, if one does
        d = next((d for d in SECTION_DEFS if d.type == type_or_section and not d.target and "/" not in d.name),
                 None)
        return SectionKind(section, type_or_section, d.attach_type if d else None,
                           note=f"type {type_or_section!r} given")
    kind = classify(type_or_section)
    if not kind.known or kind.tail_call:
        return None
    return SectionKind(section, kind.type, kind.attach_type, kind.target, kind.btf_target, kind.prog_flags,
                       note=f"read as section {type_or_section!r} (given)")


def btf_target_name(kind: SectionKind) -> tuple[str, str]:
    """(kernel BTF name, kind) of the attach target: ``btf_trace_kfree_skb`` typedef,
    a FUNC for fentry/fexit/fmod_ret, ``bpf_lsm_<hook>`` for lsm, ``bpf_iter_<name>``."""
    target = kind.target or ""
    if kind.attach_type == "trace_raw_tp":
        return f"btf_trace_{target}", "typedef"
    if kind.type == "lsm":
        return f"bpf_lsm_{target}", "func"
    if kind.attach_type == "trace_iter":
        return f"bpf_iter_{target}", "func"
    return target, "func"


def section_of(type: str, attach: str) -> str:
    """The section name libbpf would read as a ``type`` program attached to ``attach``:
    the first definition of that type taking a target (``tracing`` + ``kfree_skb`` →
    ``tp_btf/kfree_skb``, ``raw_tracepoint`` → ``raw_tp/...``, ``lsm`` → ``lsm/...``)."""
    for d in SECTION_DEFS:
        if d.type == type and d.target:
            return f"{d.name}/{attach}"
    raise ElfError(f"programs of type {type!r} take no attach target (got {attach!r})")


def section_fields(section: str | None, *, type: str, attach: str | None, kernel_btf=None) -> dict:
    """The ``Program`` fields an ELF section would give a program: ``section`` (any
    libbpf name), or ``type`` + ``attach`` read as ``section_of(type, attach)``. The
    attach target is looked up in ``kernel_btf`` (default: the kernel's) when the
    section names a BTF target; a ``BtfError`` says which one is missing."""
    if section is None:
        section = section_of(type, attach)
    kind = classify(section)
    if not kind.known or kind.tail_call:
        raise ElfError(f"section {section!r}: {kind.note}" if not kind.tail_call else
                       f"section {section!r}: a tail-call slot has no type of its own; give a program type")
    if kind.btf_target and kind.target and kernel_btf is None:
        from ..btf import kernel_btf as default_btf

        kernel_btf = default_btf()
    try:
        target_id = attach_btf_id(kind, kernel_btf) if kernel_btf is not None else None
    except BtfError as exc:
        raise BtfError(f"section {section}: {exc}") from None
    return {"type": kind.type, "section": kind.section, "expected_attach_type": kind.attach_type,
            "attach_name": kind.target, "attach_btf_id": target_id, "kernel_btf": kernel_btf,
            "prog_flags": kind.prog_flags}


def attach_btf_id(kind: SectionKind, kernel_btf) -> int | None:
    """The kernel BTF id of ``kind``'s attach target (None when the section resolves none);
    a ``BtfError`` naming the missing typedef/function when the kernel has no such target."""
    if not kind.btf_target or not kind.target:
        return None
    name, btf_kind = btf_target_name(kind)
    return kernel_btf.find(name, btf_kind)
