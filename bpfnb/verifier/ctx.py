"""Context access per program type: which (offset, size) a program may read
or write in its ``ctx``, and what the load yields.

Rules follow the kernel's ``is_valid_access`` callbacks (net/core/filter.c,
kernel/trace/bpf_trace.c, kernel/bpf/btf.c's ``btf_ctx_access``) for the
program types bpfnb verifies. ``access`` returns the register kind a load
produces (``scalar``, ``pkt``, ``pkt_end``, ``pkt_meta``, or a BTF pointer)
or None when the access is invalid; ``log`` lines the kernel prints on the
way (``func 'kfree_skb' arg0 has btf_id 873 type STRUCT 'sk_buff'``) come back
too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import lsm

# struct __sk_buff (include/uapi/linux/bpf.h): name -> (offset, size)
SK_BUFF_FIELDS = {
    "len": (0, 4), "pkt_type": (4, 4), "mark": (8, 4), "queue_mapping": (12, 4), "protocol": (16, 4),
    "vlan_present": (20, 4), "vlan_tci": (24, 4), "vlan_proto": (28, 4), "priority": (32, 4),
    "ingress_ifindex": (36, 4), "ifindex": (40, 4), "tc_index": (44, 4), "cb": (48, 20), "hash": (68, 4),
    "tc_classid": (72, 4), "data": (76, 4), "data_end": (80, 4), "napi_id": (84, 4), "family": (88, 4),
    "remote_ip4": (92, 4), "local_ip4": (96, 4), "remote_ip6": (100, 16), "local_ip6": (116, 16),
    "remote_port": (132, 4), "local_port": (136, 4), "data_meta": (140, 4), "flow_keys": (144, 8),
    "tstamp": (152, 8), "wire_len": (160, 4), "gso_segs": (164, 4), "sk": (168, 8), "gso_size": (176, 4),
    "tstamp_type": (180, 1), "hwtstamp": (184, 8),
}
SK_BUFF_SIZE = 192
XDP_MD_FIELDS = {"data": 0, "data_end": 4, "data_meta": 8, "ingress_ifindex": 12, "rx_queue_index": 16,
                 "egress_ifindex": 20}
XDP_MD_SIZE = 24
PT_REGS_SIZE = 168
# struct bpf_perf_event_data: the registers, then two u64 fields
PERF_EVENT_FIELDS = {"sample_period": PT_REGS_SIZE, "addr": PT_REGS_SIZE + 8}
PERF_EVENT_DATA_SIZE = PT_REGS_SIZE + 16
U64_SIZE = 8
MAX_BPF_FUNC_ARGS = 12


U32_SIZE = 4  # the default size of a context field: a __u32
U16_SIZE = 2

# struct bpf_sock (include/uapi/linux/bpf.h): a socket as cgroup/sock programs see their
# context and every program the sockets it gets (PTR_TO_SOCKET): name -> (offset, size)
BPF_SOCK_FIELDS = {
    "bound_dev_if": (0, 4), "family": (4, 4), "type": (8, 4), "protocol": (12, 4), "mark": (16, 4),
    "priority": (20, 4), "src_ip4": (24, 4), "src_ip6": (28, 16), "src_port": (44, 4), "dst_port": (48, 2),
    "dst_ip4": (52, 4), "dst_ip6": (56, 16), "state": (72, 4), "rx_queue_mapping": (76, 4),
}
BPF_SOCK_SIZE = 80
# read narrowly (1, 2 or 4 bytes) anywhere inside (other fields: 4 bytes at their start only)
BPF_SOCK_NARROW_RANGES = ("src_ip4", "src_ip6", "dst_ip4", "dst_ip6")
BPF_SOCK_NARROW_AT_START = ("state", "family", "type", "protocol", "src_port", "rx_queue_mapping")
# the fields of struct sock_common a PTR_TO_SOCK_COMMON cannot reach (bpf_sock_common_is_valid_access)
BPF_SOCK_NOT_COMMON = ("type", "protocol", "mark", "priority")
# cgroup/sock: the fields only some attach types may touch (__sock_filter_check_attach_type)
SOCK_FILTER_FULL_ACCESS = {"bound_dev_if": ("cgroup_inet_sock_create", "cgroup_inet_sock_release"),
                           "mark": ("cgroup_inet_sock_create", "cgroup_inet_sock_release"),
                           "priority": ("cgroup_inet_sock_create", "cgroup_inet_sock_release")}
SOCK_FILTER_READ_ONLY = {"src_ip4": ("cgroup_inet4_post_bind",), "src_ip6": ("cgroup_inet6_post_bind",),
                         "src_port": ("cgroup_inet4_post_bind", "cgroup_inet6_post_bind")}
# struct bpf_xdp_sock: queue_id only
BPF_XDP_SOCK_SIZE = 4
# struct bpf_tcp_sock: __u32 fields but two __u64 counters, up to icsk_retransmits
BPF_TCP_SOCK_U64 = (80, 88)  # bytes_received, bytes_acked
BPF_TCP_SOCK_SIZE = 112

# struct bpf_sock_addr: name -> (offset, size)
BPF_SOCK_ADDR_FIELDS = {
    "user_family": (0, 4), "user_ip4": (4, 4), "user_ip6": (8, 16), "user_port": (24, 4), "family": (28, 4),
    "type": (32, 4), "protocol": (36, 4), "msg_src_ip4": (40, 4), "msg_src_ip6": (44, 16), "sk": (64, 8),
}
BPF_SOCK_ADDR_SIZE = 72
# the address fields only programs of some attach types may touch (their address family)
SOCK_ADDR_FAMILY_FIELDS = {
    "user_ip4": ("cgroup_inet4_bind", "cgroup_inet4_connect", "cgroup_inet4_getpeername", "cgroup_inet4_getsockname",
                 "cgroup_udp4_sendmsg", "cgroup_udp4_recvmsg"),
    "user_ip6": ("cgroup_inet6_bind", "cgroup_inet6_connect", "cgroup_inet6_getpeername", "cgroup_inet6_getsockname",
                 "cgroup_udp6_sendmsg", "cgroup_udp6_recvmsg"),
    "msg_src_ip4": ("cgroup_udp4_sendmsg",),
    "msg_src_ip6": ("cgroup_udp6_sendmsg",),
}
SOCK_ADDR_WRITABLE = ("user_ip4", "user_ip6", "msg_src_ip4", "msg_src_ip6", "user_port")
SOCK_ADDR_WIDE = ("user_ip6", "msg_src_ip6")  # also read and written 8 bytes at a time
SOCK_ADDR_READ_ONLY = ("user_family", "family", "type", "protocol")

# struct bpf_sock_ops: name -> (offset, size)
BPF_SOCK_OPS_FIELDS = {
    "op": (0, 4), "reply": (4, 16), "family": (20, 4), "remote_ip4": (24, 4), "local_ip4": (28, 4),
    "remote_ip6": (32, 16), "local_ip6": (48, 16), "remote_port": (64, 4), "local_port": (68, 4),
    "is_fullsock": (72, 4), "snd_cwnd": (76, 4), "srtt_us": (80, 4), "bpf_sock_ops_cb_flags": (84, 4),
    "state": (88, 4), "rtt_min": (92, 4), "snd_ssthresh": (96, 4), "rcv_nxt": (100, 4), "snd_nxt": (104, 4),
    "snd_una": (108, 4), "mss_cache": (112, 4), "ecn_flags": (116, 4), "rate_delivered": (120, 4),
    "rate_interval_us": (124, 4), "packets_out": (128, 4), "retrans_out": (132, 4), "total_retrans": (136, 4),
    "segs_in": (140, 4), "data_segs_in": (144, 4), "segs_out": (148, 4), "data_segs_out": (152, 4),
    "lost_out": (156, 4), "sacked_out": (160, 4), "sk_txhash": (164, 4), "bytes_received": (168, 8),
    "bytes_acked": (176, 8), "sk": (184, 8), "skb_data": (192, 8), "skb_data_end": (200, 8), "skb_len": (208, 4),
    "skb_tcp_flags": (212, 4), "skb_hwtstamp": (216, 8),
}
BPF_SOCK_OPS_SIZE = 224
SOCK_OPS_WRITABLE = ("reply", "sk_txhash")  # 4 bytes at their start
SOCK_OPS_U64 = ("bytes_received", "bytes_acked", "skb_hwtstamp")
SOCK_OPS_POINTERS = {"sk": "sock_or_null", "skb_data": "pkt", "skb_data_end": "pkt_end"}


@dataclass
class CtxAccess:
    kind: str | None  # None: invalid; "scalar", "pkt", "pkt_end", "pkt_meta", "btf", a socket's kind
    btf_id: int = 0
    trusted: bool = False
    maybe_null: bool = False
    is_retval: bool = False  # an lsm/ program's read of the previous program's return value
    log: list[str] = field(default_factory=list)


def _field_at(off: int, fields: dict[str, tuple[int, int]] = SK_BUFF_FIELDS) -> str | None:
    for name, (start, size) in fields.items():
        if start <= off < start + size:
            return name
    return None


def _narrow_ok(off: int, size: int, size_default: int = 4) -> bool:
    return size <= size_default and size & (size - 1) == 0 and (off % size_default) + size <= size_default


def _sk_buff(prog_type: str, off: int, size: int, write: bool) -> CtxAccess:
    if off < 0 or off >= SK_BUFF_SIZE or off % size:
        return CtxAccess(None)
    name = _field_at(off)
    if name is None:
        return CtxAccess(None)
    tc = prog_type in ("sched_cls", "sched_act")
    if prog_type == "socket_filter":
        if name in ("tc_classid", "data", "data_meta", "data_end", "family", "remote_ip4", "local_ip4",
                    "remote_ip6", "local_ip6", "remote_port", "local_port", "tstamp", "wire_len", "hwtstamp"):
            return CtxAccess(None)
        if write and name != "cb":
            return CtxAccess(None)
    elif tc:
        if name in ("family", "remote_ip4", "local_ip4", "remote_ip6", "local_ip6", "remote_port", "local_port"):
            return CtxAccess(None)
        if write and name not in ("mark", "tc_index", "priority", "cb", "tc_classid", "queue_mapping", "tstamp"):
            return CtxAccess(None)
    elif prog_type == "cgroup_skb":
        if name in ("tc_classid", "data_meta", "flow_keys", "wire_len"):
            return CtxAccess(None)
        if write and name not in ("mark", "priority", "cb"):
            return CtxAccess(None)
    if name == "cb":
        return CtxAccess("scalar") if off + size <= 68 else CtxAccess(None)
    if name in ("remote_ip6", "local_ip6", "remote_ip4", "local_ip4", "data", "data_meta", "data_end"):
        if size != 4:
            return CtxAccess(None)
        kinds = {"data": "pkt", "data_end": "pkt_end", "data_meta": "pkt_meta"}
        return CtxAccess(kinds.get(name, "scalar"))
    if name == "flow_keys" or name == "tstamp_type":
        return CtxAccess(None)
    if name in ("hwtstamp", "tstamp"):
        return CtxAccess("scalar") if size == 8 and not (write and name == "hwtstamp") else CtxAccess(None)
    if name == "sk":
        return CtxAccess(None) if write or size != U64_SIZE else CtxAccess("sock_common_or_null")
    if write:
        return CtxAccess("scalar") if size == 4 else CtxAccess(None)
    return CtxAccess("scalar") if _narrow_ok(off, size) else CtxAccess(None)


def _xdp(off: int, size: int, write: bool) -> CtxAccess:
    if write or off < 0 or off >= XDP_MD_SIZE or off % size or size != 4:
        return CtxAccess(None)
    return CtxAccess({0: "pkt", 4: "pkt_end", 8: "pkt_meta"}.get(off, "scalar"))


# Tracepoint arguments Linux 6.18 knows may be NULL (kernel/bpf/btf.c, raw_tp_null_args): a
# tp_btf program gets them as *_or_null_ pointers. Arguments that may hold an ERR_PTR become
# scalars. The core-kernel and networking entries; drivers and filesystems beyond these are
# not listed (their arguments load as non-NULL here).
TP_NULLABLE_ARGS = {
    "sched_pi_setprio": (1,), "sched_stick_numa": (2,), "sched_swap_numa": (2,),
    "fib_table_lookup": (2,), "qdisc_dequeue": (3,), "kfree_skb": (3,), "neigh_update": (1,),
    "tcp_send_reset": (0, 1), "tcp_sendmsg_locked": (2,),
    "mm_page_alloc": (0,), "mm_page_pcpu_drain": (0,), "mm_page_alloc_zone_locked": (0,),
    "mm_khugepaged_scan_pmd": (1,), "mm_collapse_huge_page_isolate": (0,), "mm_khugepaged_scan_file": (1,),
    "mm_khugepaged_collapse_file": (1,), "writeback_dirty_folio": (1,), "folio_wait_writeback": (1,),
    "posix_lock_inode": (1,), "fcntl_setlk": (1,), "locks_remove_posix": (1,), "flock_lock_inode": (1,),
    "break_lease_noblock": (1,), "break_lease_block": (1,), "break_lease_unblock": (1,),
    "generic_delete_lease": (1,), "time_out_leases": (1,), "device_pm_callback_start": (1,),
    "tmigr_update_events": (0,), "xs_stream_read_data": (0,), "xprt_reserve_cong": (1,),
    "xprt_release_cong": (1,), "xprt_get_cong": (1,), "xprt_put_cong": (1,), "netfs_failure": (1,),
    "cachefiles_lookup": (0,), "hugetlbfs_alloc_inode": (1,), "mr_integ_alloc": (3,),
}
TP_ERR_PTR_ARGS = {"cachefiles_lookup": (2,)}


def _arg_slot(btf, type_id: int) -> int:
    """Bytes an argument takes in a tracing context: 8 for a pointer, else its size rounded up to 8."""
    t = btf.type(btf.resolve(type_id))
    if t.kind == "ptr":
        return U64_SIZE
    return -(-btf.sizeof(type_id) // U64_SIZE) * U64_SIZE if type_id else 0


def _ctx_arg_idx(slots: list[int], ret_slot: int, off: int) -> int:
    """``btf_ctx_arg_idx``: the argument (of the whole prototype) the context offset falls in;
    past them the return value's slot (index ``len(slots)``), past that ``len(slots) + 1``.
    A tracepoint's hidden ``__data`` counts, so its index is the visible argument's."""
    end = 0
    for i, slot in enumerate(slots):
        end += slot
        if off < end:
            return i
    return len(slots) if off < end + ret_slot else len(slots) + 1


def btf_type_str(btf, type_id: int) -> str:
    """The kernel's ``btf_type_str``: the kind in capitals, ``UNKN`` for void."""
    return btf.type(type_id).kind.upper() if type_id else "UNKN"


# program kinds whose BTF arguments the kernel trusts (``prog_args_trusted``): a
# tp_btf program's and an iterator's; fentry/fexit/fmod_ret get plain ``ptr_``
TRUSTED_ARGS_ATTACH = ("trace_raw_tp", "trace_iter")
# attach types whose context has the traced function's return value after its arguments
# (an LSM program's: the value the programs before it on the hook returned)
RETVAL_ATTACH = ("trace_fexit", "modify_return", lsm.LSM_MAC, lsm.LSM_CGROUP)
NULLABLE_SUFFIX = "__nullable"


def _attach_proto(prog):
    """The prototype a tracing program's context follows: (arguments as ``btf_ctx_arg_idx``
    counts them, the visible arguments, the return type id)."""
    btf = prog.kernel_btf
    if prog.type == "lsm":
        proto = lsm.hook_proto(prog)
        return [_arg_slot(btf, p.type) for p in proto.params], proto.params, proto.type
    if prog.expected_attach_type == "trace_raw_tp":
        _typedef, params = btf.trace_proto(prog.attach_name)  # without the hidden 'void *__data'
        return [U64_SIZE] + [_arg_slot(btf, p.type) for p in params], params, 0
    # fentry/fexit/fmod_ret: the function's own prototype
    func = btf.type(prog.attach_btf_id or btf.find(prog.attach_name, "func"))
    proto = btf.type(func.type)
    return [_arg_slot(btf, p.type) for p in proto.params], proto.params, proto.type


def _btf_ctx(prog, off: int, size: int, write: bool) -> CtxAccess:
    """``tracing_prog_is_valid_access`` and ``btf_ctx_access`` for tp_btf, fentry, fexit
    and fmod_ret programs, ``btf_ctx_access`` alone for LSM programs (Linux 6.18: a
    pointer argument is read 8 bytes wide; a pointer to anything but a struct, void or an
    integer is refused; after an LSM hook's arguments, the return value so far)."""
    btf = prog.kernel_btf
    if btf is None or not prog.attach_name:
        return CtxAccess(None)
    name = lsm.attach_func_name(prog) if prog.type == "lsm" else prog.attach_name
    # tracing_prog_is_valid_access first: inside the argument array, a read, aligned to its size
    # (an LSM program's is_valid_access is btf_ctx_access alone)
    if prog.type == "tracing" and (write or off < 0 or off >= MAX_BPF_FUNC_ARGS * U64_SIZE or off % size):
        return CtxAccess(None)
    if off % U64_SIZE:
        return CtxAccess(None, log=[f"func '{name}' offset {off} is not multiple of 8"])
    try:
        slots, params, ret_type = _attach_proto(prog)
    except Exception:
        return CtxAccess(None)
    arg = _ctx_arg_idx(slots, _arg_slot(btf, ret_type), off)
    nr_args = len(params)
    if arg > nr_args or (arg == nr_args and prog.expected_attach_type not in RETVAL_ATTACH):
        return CtxAccess(None, log=[f"func '{name}' doesn't have {arg + 1}-th argument"])
    is_retval = arg == nr_args and prog.expected_attach_type == lsm.LSM_MAC
    if arg == nr_args:  # the return value (fexit, fmod_ret, lsm)
        type_id = ret_type
        if prog.expected_attach_type == "modify_return":
            ret = btf.resolve(ret_type)
            if not _small_int(btf, ret):
                return CtxAccess(None, log=[f"ret type {btf_type_str(btf, ret)} not allowed for fmod_ret"])
    else:
        type_id = params[arg].type
    resolved = btf.resolve(type_id)
    t = btf.type(resolved)
    if _small_int(btf, resolved) or t.kind in ("enum", "enum64", "struct", "union"):
        return CtxAccess("scalar", is_retval=is_retval)
    if t.kind != "ptr":
        return CtxAccess(None, log=[f"func '{name}' arg{arg} '{t.name if resolved else ''}' has type "
                                    f"{btf_type_str(btf, resolved)}. Only pointer access is allowed"])
    if size != U64_SIZE:
        return CtxAccess(None, log=[f"func '{name}' size {size} must be 8"])
    target = btf.resolve(t.type)
    tt = btf.type(target)
    if not target or tt.kind == "int":  # is_void_or_int_ptr: a plain number to the verifier
        return CtxAccess("scalar")
    raw_tp = prog.expected_attach_type == "trace_raw_tp"
    maybe_null = arg < nr_args and params[arg].name.endswith(NULLABLE_SUFFIX)
    maybe_null |= raw_tp and arg in TP_NULLABLE_ARGS.get(name, ())
    if tt.kind not in ("struct", "union"):
        return CtxAccess(None, log=[f"func '{name}' arg{arg} type {btf_type_str(btf, target)} is not a struct"])
    kind = "STRUCT" if tt.kind == "struct" else "UNION"
    log = [f"func '{name}' arg{arg} has btf_id {target} type {kind} '{tt.name}'"]
    if raw_tp and arg in TP_ERR_PTR_ARGS.get(name, ()):
        return CtxAccess("scalar", log=[*log, f"marking pointer arg{arg} as scalar as it may encode error"])
    return CtxAccess("btf", btf_id=target, trusted=prog_args_trusted(prog), log=log, maybe_null=maybe_null)


def prog_args_trusted(prog) -> bool:
    """The kernel trusts the BTF arguments of a tp_btf program, an iterator and an LSM
    program (but on the hooks of objects being set up or torn down)."""
    if prog.type == "lsm":
        return lsm.bpf_lsm_is_trusted(prog)
    return prog.expected_attach_type in TRUSTED_ARGS_ATTACH


def _small_int(btf, type_id: int) -> bool:
    """``btf_type_is_small_int``: an integer of at most 8 bytes."""
    t = btf.type(type_id)
    return bool(type_id) and t.kind == "int" and t.size <= U64_SIZE


def _perf_event(off: int, size: int, write: bool) -> CtxAccess:
    """``pe_prog_is_valid_access``: read only; the registers whole, the u64 fields narrowly."""
    if write or off < 0 or off >= PERF_EVENT_DATA_SIZE or off % size:
        return CtxAccess(None)
    if off >= PT_REGS_SIZE:  # sample_period, addr
        return CtxAccess("scalar" if _narrow_ok(off, size, U64_SIZE) else None)
    return CtxAccess("scalar" if size == U64_SIZE else None)


def bpf_sock_is_valid_access(off: int, size: int) -> bool:
    """A read of ``struct bpf_sock`` (any program's socket pointer, a cgroup/sock context):
    4 bytes at a field's start, narrower where the kernel rewrites a narrow load."""
    if off < 0 or off >= BPF_SOCK_SIZE or off % size:
        return False
    name = _field_at(off, BPF_SOCK_FIELDS)
    start = BPF_SOCK_FIELDS[name][0] if name is not None else off
    if name in BPF_SOCK_NARROW_RANGES or (name in BPF_SOCK_NARROW_AT_START and off == start):
        return _narrow_ok(off, size)
    if name == "dst_port":  # a __be16: 2 bytes or narrower, or the whole word
        return size == U32_SIZE or size <= U16_SIZE
    if name is None:  # the padding after dst_port
        return False
    return size == U32_SIZE and off == start


def bpf_sock_common_is_valid_access(off: int, size: int) -> bool:
    name = _field_at(off, BPF_SOCK_FIELDS)
    return name not in BPF_SOCK_NOT_COMMON and bpf_sock_is_valid_access(off, size)


def bpf_xdp_sock_is_valid_access(off: int, size: int) -> bool:
    return 0 <= off < BPF_XDP_SOCK_SIZE and not off % size and size == U32_SIZE


def sock_access(kind: str, off: int, size: int) -> bool:
    """What ``check_sock_access`` lets a program read through a socket pointer of ``kind``."""
    if kind == "sock":
        return bpf_sock_is_valid_access(off, size)
    if kind == "sock_common":
        return bpf_sock_common_is_valid_access(off, size)
    if kind == "xdp_sock":
        return bpf_xdp_sock_is_valid_access(off, size)
    if kind == "tcp_sock":
        return bpf_tcp_sock_is_valid_access(off, size)
    return False


def bpf_tcp_sock_is_valid_access(off: int, size: int) -> bool:
    if off < 0 or off >= BPF_TCP_SOCK_SIZE or off % size:
        return False
    return size == (U64_SIZE if off in BPF_TCP_SOCK_U64 else U32_SIZE)


def _sock_filter(prog, off: int, size: int, write: bool) -> CtxAccess:
    """``sock_filter_is_valid_access``: cgroup/sock programs (read: ``bpf_sock``; some
    fields only for some attach types, three writable when a socket is created)."""
    if not bpf_sock_is_valid_access(off, size):
        return CtxAccess(None)
    name = _field_at(off, BPF_SOCK_FIELDS)
    attach = prog.expected_attach_type or ""
    if name in SOCK_FILTER_FULL_ACCESS:
        return CtxAccess("scalar" if attach in SOCK_FILTER_FULL_ACCESS[name] else None)
    if name in SOCK_FILTER_READ_ONLY and attach not in SOCK_FILTER_READ_ONLY[name]:
        return CtxAccess(None)
    return CtxAccess(None if write else "scalar")


def _sock_addr(prog, off: int, size: int, write: bool) -> CtxAccess:
    """``sock_addr_is_valid_access``: cgroup/connect4 and the like (addresses of the attach
    type's family only; addresses and the port readable narrowly and writable)."""
    if off < 0 or off >= BPF_SOCK_ADDR_SIZE or off % size:
        return CtxAccess(None)
    name = _field_at(off, BPF_SOCK_ADDR_FIELDS)
    attach = prog.expected_attach_type or ""
    if name in SOCK_ADDR_FAMILY_FIELDS and attach not in SOCK_ADDR_FAMILY_FIELDS[name]:
        return CtxAccess(None)
    if name in SOCK_ADDR_WRITABLE:
        start, field_size = BPF_SOCK_ADDR_FIELDS[name]
        if name in SOCK_ADDR_WIDE and size == U64_SIZE and off + size <= start + field_size and not off % U64_SIZE:
            return CtxAccess("scalar")
        ok = size == U32_SIZE if write else _narrow_ok(off, size)
        return CtxAccess("scalar" if ok else None)
    if name == "sk":
        return CtxAccess(None) if write or size != U64_SIZE else CtxAccess("sock")
    if name in SOCK_ADDR_READ_ONLY:
        return CtxAccess(None) if write or size != U32_SIZE else CtxAccess("scalar")
    return CtxAccess(None)


def _sock_ops(off: int, size: int, write: bool) -> CtxAccess:
    """``sock_ops_is_valid_access``: 4-byte fields (``reply`` and ``sk_txhash`` writable),
    8-byte counters, the socket (``sock_or_null``) and the TCP header's packet pointers."""
    if off < 0 or off >= BPF_SOCK_OPS_SIZE or off % size:
        return CtxAccess(None)
    name = _field_at(off, BPF_SOCK_OPS_FIELDS)
    start = BPF_SOCK_OPS_FIELDS[name][0]
    if write:
        return CtxAccess("scalar" if name in SOCK_OPS_WRITABLE and off == start and size == U32_SIZE else None)
    if name in SOCK_OPS_U64 or name in SOCK_OPS_POINTERS:
        return CtxAccess(None) if size != U64_SIZE else CtxAccess(SOCK_OPS_POINTERS.get(name, "scalar"))
    if name == "skb_tcp_flags" and off == start:
        return CtxAccess("scalar" if _narrow_ok(off, size) else None)
    return CtxAccess("scalar" if size == U32_SIZE else None)


def ctx_access(prog, off: int, size: int, write: bool) -> CtxAccess:
    """What ``size`` bytes at ``off`` of the program's context give (or None: invalid)."""
    t = prog.type
    if t in ("socket_filter", "sched_cls", "sched_act", "cgroup_skb"):
        return _sk_buff(t, off, size, write)
    if t == "xdp":
        return _xdp(off, size, write)
    if t in ("tracing", "lsm"):
        return _btf_ctx(prog, off, size, write)
    if t in ("raw_tracepoint", "raw_tracepoint_writable"):  # raw_tp_prog_is_valid_access: any aligned read
        ok = not write and 0 <= off < MAX_BPF_FUNC_ARGS * U64_SIZE and off % size == 0
        return CtxAccess("scalar" if ok else None)
    if t == "kprobe":
        ok = not write and 0 <= off < PT_REGS_SIZE and off % size == 0 and size in (1, 2, 4, 8)
        return CtxAccess("scalar" if ok else None)
    if t == "perf_event":
        return _perf_event(off, size, write)
    if t == "tracepoint":
        ok = not write and 0 <= off < 4096 and off % size == 0
        return CtxAccess("scalar" if ok else None)
    if t == "sock_ops":
        return _sock_ops(off, size, write)
    if t == "cgroup_sock":
        return _sock_filter(prog, off, size, write)
    if t == "cgroup_sock_addr":
        return _sock_addr(prog, off, size, write)
    return CtxAccess(None)
