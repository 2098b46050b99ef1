"""ELF section names → program type, expected attach type, attach target.

The naming convention is libbpf's (its ``section_defs`` table): an exact name
(``socket``, ``xdp``) or a prefix followed by ``/`` and a target
(``kprobe/tcp_connect``, ``tp_btf/kfree_skb``). Types and attach types are
named as in ``bpfnb.program.PROG_TYPES`` / ``ATTACH_TYPES``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BtfError, ElfError


@dataclass(frozen=True)
class SectionDef:
    name: str  # "socket", or a prefix "kprobe" (matches "kprobe/...")
    type: str
    attach_type: str | None = None
    target: bool = False  # the part after "/" names the attach target
    btf_target: bool = False  # the target is resolved in the kernel BTF (attach_btf_id)


def _d(name, type, attach=None, target=False, btf=False) -> SectionDef:
    return SectionDef(name, type, attach, target, btf)


SECTION_DEFS: tuple[SectionDef, ...] = (
    _d("socket", "socket_filter"),
    _d("sk_reuseport/migrate", "sk_reuseport", "sk_reuseport_select_or_migrate"),
    _d("sk_reuseport", "sk_reuseport", "sk_reuseport_select"),
    _d("kprobe", "kprobe", target=True),
    _d("uprobe", "kprobe", target=True),
    _d("kretprobe", "kprobe", target=True),
    _d("uretprobe", "kprobe", target=True),
    _d("kprobe.multi", "kprobe", "trace_kprobe_multi", target=True),
    _d("kretprobe.multi", "kprobe", "trace_kprobe_multi", target=True),
    _d("tc", "sched_cls"),
    _d("classifier", "sched_cls"),
    _d("action", "sched_act"),
    _d("tracepoint", "tracepoint", target=True),
    _d("tp", "tracepoint", target=True),
    _d("raw_tracepoint", "raw_tracepoint", target=True),
    _d("raw_tp", "raw_tracepoint", target=True),
    _d("raw_tracepoint.w", "raw_tracepoint_writable", target=True),
    _d("raw_tp.w", "raw_tracepoint_writable", target=True),
    _d("tp_btf", "tracing", "trace_raw_tp", target=True, btf=True),
    _d("fentry", "tracing", "trace_fentry", target=True, btf=True),
    _d("fmod_ret", "tracing", "modify_return", target=True, btf=True),
    _d("fexit", "tracing", "trace_fexit", target=True, btf=True),
    _d("fentry.s", "tracing", "trace_fentry", target=True, btf=True),
    _d("fmod_ret.s", "tracing", "modify_return", target=True, btf=True),
    _d("fexit.s", "tracing", "trace_fexit", target=True, btf=True),
    _d("freplace", "ext", target=True),
    _d("lsm", "lsm", "lsm_mac", target=True, btf=True),
    _d("lsm.s", "lsm", "lsm_mac", target=True, btf=True),
    _d("lsm_cgroup", "lsm", "lsm_cgroup", target=True, btf=True),
    _d("iter", "tracing", "trace_iter", target=True, btf=True),
    _d("iter.s", "tracing", "trace_iter", target=True, btf=True),
    _d("syscall", "syscall"),
    _d("xdp.frags/devmap", "xdp", "xdp_devmap"),
    _d("xdp/devmap", "xdp", "xdp_devmap"),
    _d("xdp.frags/cpumap", "xdp", "xdp_cpumap"),
    _d("xdp/cpumap", "xdp", "xdp_cpumap"),
    _d("xdp.frags", "xdp", "xdp"),
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
    _d("cgroup/dev", "cgroup_device", "cgroup_device"),
    _d("cgroup/bind4", "cgroup_sock_addr", "cgroup_inet4_bind"),
    _d("cgroup/bind6", "cgroup_sock_addr", "cgroup_inet6_bind"),
    _d("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect"),
    _d("cgroup/connect6", "cgroup_sock_addr", "cgroup_inet6_connect"),
    _d("cgroup/sendmsg4", "cgroup_sock_addr", "cgroup_udp4_sendmsg"),
    _d("cgroup/sendmsg6", "cgroup_sock_addr", "cgroup_udp6_sendmsg"),
    _d("cgroup/recvmsg4", "cgroup_sock_addr", "cgroup_udp4_recvmsg"),
    _d("cgroup/recvmsg6", "cgroup_sock_addr", "cgroup_udp6_recvmsg"),
    _d("cgroup/getpeername4", "cgroup_sock_addr", "cgroup_inet4_getpeername"),
    _d("cgroup/getpeername6", "cgroup_sock_addr", "cgroup_inet6_getpeername"),
    _d("cgroup/getsockname4", "cgroup_sock_addr", "cgroup_inet4_getsockname"),
    _d("cgroup/getsockname6", "cgroup_sock_addr", "cgroup_inet6_getsockname"),
    _d("cgroup/sysctl", "cgroup_sysctl", "cgroup_sysctl"),
    _d("cgroup/getsockopt", "cgroup_sockopt", "cgroup_getsockopt"),
    _d("cgroup/setsockopt", "cgroup_sockopt", "cgroup_setsockopt"),
    _d("struct_ops", "struct_ops", target=True),
    _d("struct_ops.s", "struct_ops", target=True),
    _d("sk_lookup", "sk_lookup", "sk_lookup"),
    _d("netfilter", "netfilter"),
)


@dataclass(frozen=True)
class SectionKind:
    """What a program section's name means."""

    section: str
    type: str
    attach_type: str | None
    target: str | None  # "kfree_skb" for tp_btf/kfree_skb
    btf_target: bool


def classify(section: str, *, where: str = "") -> SectionKind:
    """The program type etc. of ``section``; an unknown name is an ``ElfError``."""
    for d in SECTION_DEFS:
        if section == d.name:
            return SectionKind(section, d.type, d.attach_type, None, d.btf_target)
        if section.startswith(d.name + "/") and (d.target or "/" not in d.name):
            target = section[len(d.name) + 1:] or None
            if d.target or target is None:
                return SectionKind(section, d.type, d.attach_type, target, d.btf_target)
    # some definitions take any suffix ("xdp/anything", "tc/ingress")
    head = section.split("/", 1)[0]
    for d in SECTION_DEFS:
        if head == d.name and not d.target:
            return SectionKind(section, d.type, d.attach_type, None, d.btf_target)
    at = f"{where}: " if where else ""
    raise ElfError(f"{at}section {section!r} does not name a known program type "
                   f"(known prefixes: {', '.join(sorted({d.name.split('/')[0] for d in SECTION_DEFS}))})")


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
    if kind.btf_target and kind.target and kernel_btf is None:
        from ..btf import kernel_btf as default_btf

        kernel_btf = default_btf()
    try:
        target_id = attach_btf_id(kind, kernel_btf) if kernel_btf is not None else None
    except BtfError as exc:
        raise BtfError(f"section {section}: {exc}") from None
    return {"type": kind.type, "section": kind.section, "expected_attach_type": kind.attach_type,
            "attach_name": kind.target, "attach_btf_id": target_id, "kernel_btf": kernel_btf}


def attach_btf_id(kind: SectionKind, kernel_btf) -> int | None:
    """The kernel BTF id of ``kind``'s attach target (None when the section resolves none);
    a ``BtfError`` naming the missing typedef/function when the kernel has no such target."""
    if not kind.btf_target or not kind.target:
        return None
    name, btf_kind = btf_target_name(kind)
    return kernel_btf.find(name, btf_kind)
