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


@dataclass
class CtxAccess:
    kind: str | None  # None: invalid; "scalar", "pkt", "pkt_end", "pkt_meta", "btf"
    btf_id: int = 0
    trusted: bool = False
    maybe_null: bool = False
    log: list[str] = field(default_factory=list)


def _field_at(off: int) -> str | None:
    for name, (start, size) in SK_BUFF_FIELDS.items():
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
        return CtxAccess(None)  # PTR_TO_SOCK_COMMON_OR_NULL: not modelled
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
    return -(-btf.sizeof(type_id) // U64_SIZE) * U64_SIZE


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


def _btf_ctx(prog, off: int, size: int, write: bool) -> CtxAccess:
    """``btf_ctx_access`` for tp_btf (and fentry-style) programs."""
    btf = prog.kernel_btf
    if btf is None or not prog.attach_name:
        return CtxAccess(None)
    name = prog.attach_name
    # tracing_prog_is_valid_access first: inside the argument array, a read, aligned to its size
    if write or off < 0 or off >= MAX_BPF_FUNC_ARGS * U64_SIZE or off % size:
        return CtxAccess(None)
    if off % U64_SIZE:
        return CtxAccess(None, log=[f"func '{name}' offset {off} is not multiple of 8"])
    try:
        if prog.expected_attach_type == "trace_raw_tp":
            _typedef, params = btf.trace_proto(name)  # without the hidden 'void *__data'
            slots = [U64_SIZE] + [_arg_slot(btf, p.type) for p in params]
            ret_slot = 0  # btf_trace_<tp> returns void
        else:  # fentry/fexit/fmod_ret/lsm: the function's own prototype
            func = btf.type(prog.attach_btf_id or btf.find(name, "func"))
            proto = btf.type(func.type)
            params = proto.params
            slots = [_arg_slot(btf, p.type) for p in params]
            ret_slot = _arg_slot(btf, proto.type) if proto.type else 0
    except Exception:
        return CtxAccess(None)
    arg = _ctx_arg_idx(slots, ret_slot, off)
    if arg >= len(params):
        return CtxAccess(None, log=[f"func '{name}' doesn't have {arg + 1}-th argument"])
    type_id = btf.strip_modifiers(params[arg].type)
    t = btf.type(btf.resolve(type_id))
    if t.kind != "ptr":
        return CtxAccess("scalar")
    target = btf.resolve(t.type)
    tt = btf.type(target)
    if tt.kind not in ("struct", "union"):
        return CtxAccess("scalar")  # void * and pointers to non-structs are plain numbers
    if size != 8:
        return CtxAccess(None)
    kind = "STRUCT" if tt.kind == "struct" else "UNION"
    log = [f"func '{name}' arg{arg} has btf_id {target} type {kind} '{tt.name}'"]
    raw_tp = prog.expected_attach_type == "trace_raw_tp"
    if raw_tp and arg in TP_ERR_PTR_ARGS.get(name, ()):
        return CtxAccess("scalar", log=[*log, f"marking pointer arg{arg} as scalar as it may encode error"])
    return CtxAccess("btf", btf_id=target, trusted=True, log=log,
                     maybe_null=raw_tp and arg in TP_NULLABLE_ARGS.get(name, ()))


def _perf_event(off: int, size: int, write: bool) -> CtxAccess:
    """``pe_prog_is_valid_access``: read only; the registers whole, the u64 fields narrowly."""
    if write or off < 0 or off >= PERF_EVENT_DATA_SIZE or off % size:
        return CtxAccess(None)
    if off >= PT_REGS_SIZE:  # sample_period, addr
        return CtxAccess("scalar" if _narrow_ok(off, size, U64_SIZE) else None)
    return CtxAccess("scalar" if size == U64_SIZE else None)


def ctx_access(prog, off: int, size: int, write: bool) -> CtxAccess:
    """What ``size`` bytes at ``off`` of the program's context give (or None: invalid)."""
    t = prog.type
    if t in ("socket_filter", "sched_cls", "sched_act", "cgroup_skb"):
        return _sk_buff(t, off, size, write)
    if t == "xdp":
        return _xdp(off, size, write)
    if t == "tracing":
        return _btf_ctx(prog, off, size, write)
    if t in ("raw_tracepoint", "raw_tracepoint_writable"):
        ok = not write and 0 <= off < MAX_BPF_FUNC_ARGS * 8 and off % size == 0 and size == 8
        return CtxAccess("scalar" if ok else None)
    if t == "kprobe":
        ok = not write and 0 <= off < PT_REGS_SIZE and off % size == 0 and size in (1, 2, 4, 8)
        return CtxAccess("scalar" if ok else None)
    if t == "perf_event":
        return _perf_event(off, size, write)
    if t == "tracepoint":
        ok = not write and 0 <= off < 4096 and off % size == 0
        return CtxAccess("scalar" if ok else None)
    return CtxAccess(None)
