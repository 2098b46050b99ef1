"""Helper prototypes: argument and return kinds of the helpers bpfnb checks.

Argument kinds are the kernel's ``enum bpf_arg_type`` values by meaning:
``map`` (ARG_CONST_MAP_PTR), ``key``/``value`` (ARG_PTR_TO_MAP_KEY/VALUE),
``uninit_mem`` + ``size``/``size_or_zero`` (ARG_PTR_TO_UNINIT_MEM and the
following ARG_CONST_SIZE[_OR_ZERO]), ``mem`` (ARG_PTR_TO_MEM | MEM_RDONLY), ``rw_mem``
(ARG_PTR_TO_MEM | MEM_WRITE: read, then written over: spills on the stack scrubbed),
``ctx``, ``any`` (ARG_ANYTHING), ``btf:sk_buff`` (ARG_PTR_TO_BTF_ID of that
struct), ``sock_common`` (ARG_PTR_TO_BTF_ID_SOCK_COMMON; ``sock_common_release`` with
OBJ_RELEASE), ``sock_common_ptr`` (ARG_PTR_TO_SOCK_COMMON), ``ringbuf_mem`` (ARG_PTR_TO_RINGBUF_MEM, released),
``alloc_size`` (ARG_CONST_ALLOC_SIZE_OR_ZERO), ``func`` (ARG_PTR_TO_FUNC: a callback),
``fixed_u64`` (ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT | MEM_WRITE | MEM_ALIGNED of 8 bytes),
``stack_or_null`` (ARG_PTR_TO_STACK_OR_NULL), ``timer`` (ARG_PTR_TO_TIMER). Returns: ``integer``,
``void``, ``map_value_or_null``, ``ringbuf_mem_or_null``, ``sock_or_null``, ``tcp_sock_or_null``,
``sock_common_or_null``, ``btf:task_struct``,
``btf_or_null:tcp_sock`` (RET_PTR_TO_BTF_ID_OR_NULL).
Which program types may call which helper is the kernel's own answer
(``helper_availability``). Read from the ``bpf_func_proto`` declarations of
Linux 6.12/6.18 (kernel/bpf/helpers.c, kernel/trace/bpf_trace.c, net/core/filter.c
and others); ``mem_or_null``/``value_or_null`` also take NULL; a kind bpfnb does not
check yet is ``unmodelled:<the kernel's name>``, and a call that needs one is
refused naming it, as is a helper missing here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..isa.helpers import BpfFunc


@dataclass(frozen=True)
class HelperProto:
    args: tuple[str, ...]
    ret: str = "integer"


PROTOS: dict[int, HelperProto] = {
    1: HelperProto(("map", "key"), "map_value_or_null"),  # map_lookup_elem
    2: HelperProto(("map", "key", "value", "any")),  # map_update_elem
    3: HelperProto(("map", "key")),  # map_delete_elem
    4: HelperProto(("uninit_mem", "size_or_zero", "any")),  # probe_read
    5: HelperProto(()),  # ktime_get_ns
    6: HelperProto(("mem", "size")),  # trace_printk: up to three more arguments, never checked
    7: HelperProto(()),  # get_prandom_u32
    8: HelperProto(()),  # get_smp_processor_id
    9: HelperProto(("ctx", "any", "mem", "size", "any")),  # skb_store_bytes
    10: HelperProto(("ctx", "any", "any", "any", "any")),  # l3_csum_replace
    11: HelperProto(("ctx", "any", "any", "any", "any")),  # l4_csum_replace
    12: HelperProto(("ctx", "map", "any"), "void"),  # tail_call
    13: HelperProto(("ctx", "any", "any")),  # clone_redirect
    14: HelperProto(()),  # get_current_pid_tgid
    15: HelperProto(()),  # get_current_uid_gid
    16: HelperProto(("uninit_mem", "size")),  # get_current_comm
    17: HelperProto(("ctx",)),  # get_cgroup_classid
    18: HelperProto(("ctx", "any", "any")),  # skb_vlan_push
    19: HelperProto(("ctx",)),  # skb_vlan_pop
    20: HelperProto(("ctx", "uninit_mem", "size", "any")),  # skb_get_tunnel_key
    21: HelperProto(("ctx", "mem", "size", "any")),  # skb_set_tunnel_key
    22: HelperProto(("map", "any")),  # perf_event_read
    23: HelperProto(("any", "any")),  # redirect
    24: HelperProto(("ctx",)),  # get_route_realm
    25: HelperProto(("ctx", "map", "any", "mem", "size_or_zero")),  # perf_event_output
    26: HelperProto(("ctx", "any", "uninit_mem", "size")),  # skb_load_bytes
    27: HelperProto(("ctx", "map", "any")),  # get_stackid
    28: HelperProto(("mem_or_null", "size_or_zero", "mem_or_null", "size_or_zero", "any")),  # csum_diff
    29: HelperProto(("ctx", "uninit_mem", "size")),  # skb_get_tunnel_opt
    30: HelperProto(("ctx", "mem", "size")),  # skb_set_tunnel_opt
    31: HelperProto(("ctx", "any", "any")),  # skb_change_proto
    32: HelperProto(("ctx", "any")),  # skb_change_type
    33: HelperProto(("ctx", "map", "any")),  # skb_under_cgroup
    34: HelperProto(("ctx",)),  # get_hash_recalc
    35: HelperProto(()),  # get_current_task
    37: HelperProto(("map", "any")),  # current_task_under_cgroup
    38: HelperProto(("ctx", "any", "any")),  # skb_change_tail
    39: HelperProto(("ctx", "any")),  # skb_pull_data
    40: HelperProto(("ctx", "any")),  # csum_update
    41: HelperProto(("ctx",)),  # set_hash_invalid
    42: HelperProto(()),  # get_numa_node_id
    43: HelperProto(("ctx", "any", "any")),  # skb_change_head
    44: HelperProto(("ctx", "any")),  # xdp_adjust_head
    45: HelperProto(("uninit_mem", "size", "any")),  # probe_read_str
    46: HelperProto(("ctx",)),  # get_socket_cookie
    47: HelperProto(("ctx",)),  # get_socket_uid
    48: HelperProto(("ctx", "any")),  # set_hash
    49: HelperProto(("ctx", "any", "any", "mem", "size")),  # setsockopt (sock_ops, sock_addr)
    50: HelperProto(("ctx", "any", "any", "any")),  # skb_adjust_room
    51: HelperProto(("map", "any", "any")),  # redirect_map
    54: HelperProto(("ctx", "any")),  # xdp_adjust_meta
    57: HelperProto(("ctx", "any", "any", "uninit_mem", "size")),  # getsockopt (sock_ops, sock_addr)
    59: HelperProto(("ctx", "any")),  # sock_ops_cb_flags_set
    64: HelperProto(("ctx", "mem", "size")),  # bind
    55: HelperProto(("map", "any", "uninit_mem", "size")),  # perf_event_read_value
    65: HelperProto(("ctx", "any")),  # xdp_adjust_tail
    66: HelperProto(("ctx", "any", "uninit_mem", "size", "any")),  # skb_get_xfrm_state
    67: HelperProto(("ctx", "uninit_mem", "size_or_zero", "any")),  # get_stack
    68: HelperProto(("ctx", "any", "uninit_mem", "size", "any")),  # skb_load_bytes_relative
    69: HelperProto(("ctx", "rw_mem", "size", "any")),  # fib_lookup (its parameters are filled in)
    79: HelperProto(("ctx",)),  # skb_cgroup_id
    80: HelperProto(()),  # get_current_cgroup_id
    81: HelperProto(("map", "any"), "map_value"),  # get_local_storage
    83: HelperProto(("ctx", "any")),  # skb_ancestor_cgroup_id
    84: HelperProto(("ctx", "mem", "size_or_zero", "any", "any"), "sock_or_null"),  # sk_lookup_tcp (acquires)
    85: HelperProto(("ctx", "mem", "size_or_zero", "any", "any"), "sock_or_null"),  # sk_lookup_udp (acquires)
    86: HelperProto(("sock_common_release",)),  # sk_release
    87: HelperProto(("map", "value", "any")),  # map_push_elem
    88: HelperProto(("map", "value")),  # map_pop_elem
    89: HelperProto(("map", "value")),  # map_peek_elem
    93: HelperProto(("unmodelled:ARG_PTR_TO_SPIN_LOCK",), "void"),  # spin_lock
    94: HelperProto(("unmodelled:ARG_PTR_TO_SPIN_LOCK",), "void"),  # spin_unlock
    95: HelperProto(("sock_common_ptr",), "sock_or_null"),  # sk_fullsock
    96: HelperProto(("sock_common_ptr",), "tcp_sock_or_null"),  # tcp_sock
    97: HelperProto(("ctx",)),  # skb_ecn_set_ce
    98: HelperProto(("sock_common_ptr",), "sock_or_null"),  # get_listener_sock
    99: HelperProto(("ctx", "mem", "size_or_zero", "any", "any"), "sock_common_or_null"),  # skc_lookup_tcp (acquires)
    100: HelperProto(("unmodelled:ARG_PTR_TO_BTF_ID_SOCK_COMMON", "mem", "size", "mem", "size")),  # tcp_check_syncookie
    105: HelperProto(("mem", "size", "any", "unmodelled:ARG_PTR_TO_FIXED_SIZE_MEM")),  # strtol
    106: HelperProto(("mem", "size", "any", "unmodelled:ARG_PTR_TO_FIXED_SIZE_MEM")),  # strtoul
    107: HelperProto(("map", "unmodelled:ARG_PTR_TO_BTF_ID_SOCK_COMMON", "value_or_null", "any"),
                     "map_value_or_null"),  # sk_storage_get
    108: HelperProto(("map", "unmodelled:ARG_PTR_TO_BTF_ID_SOCK_COMMON")),  # sk_storage_delete
    109: HelperProto(("any",)),  # send_signal
    110: HelperProto(("unmodelled:ARG_PTR_TO_BTF_ID_SOCK_COMMON", "mem", "size", "mem", "size")),  # tcp_gen_syncookie
    111: HelperProto(("btf:sk_buff", "map", "any", "mem", "size_or_zero")),  # skb_output
    112: HelperProto(("uninit_mem", "size_or_zero", "any")),  # probe_read_user
    113: HelperProto(("uninit_mem", "size_or_zero", "any")),  # probe_read_kernel
    114: HelperProto(("uninit_mem", "size_or_zero", "any")),  # probe_read_user_str
    115: HelperProto(("uninit_mem", "size_or_zero", "any")),  # probe_read_kernel_str
    117: HelperProto(("any",)),  # send_signal_thread
    118: HelperProto(()),  # jiffies64
    120: HelperProto(("any", "any", "uninit_mem", "size")),  # get_ns_current_pid_tgid
    121: HelperProto(("btf:xdp_buff", "map", "any", "mem", "size_or_zero")),  # xdp_output
    123: HelperProto(("any",)),  # get_current_ancestor_cgroup_id
    124: HelperProto(("ctx", "sock_common", "any")),  # sk_assign (tc: no NULL)
    125: HelperProto(()),  # ktime_get_boot_ns
    128: HelperProto(("unmodelled:ARG_PTR_TO_BTF_ID_SOCK_COMMON",)),  # sk_cgroup_id
    129: HelperProto(("unmodelled:ARG_PTR_TO_BTF_ID_SOCK_COMMON", "any")),  # sk_ancestor_cgroup_id
    130: HelperProto(("map", "mem", "size_or_zero", "any")),  # ringbuf_output
    131: HelperProto(("map", "alloc_size", "any"), "ringbuf_mem_or_null"),  # ringbuf_reserve
    132: HelperProto(("ringbuf_mem", "any"), "void"),  # ringbuf_submit
    133: HelperProto(("ringbuf_mem", "any"), "void"),  # ringbuf_discard
    134: HelperProto(("map", "any")),  # ringbuf_query
    135: HelperProto(("ctx", "any")),  # csum_level
    136: HelperProto(("sock_common",), "btf_or_null:tcp6_sock"),  # skc_to_tcp6_sock
    137: HelperProto(("sock_common",), "btf_or_null:tcp_sock"),  # skc_to_tcp_sock
    138: HelperProto(("sock_common",), "btf_or_null:tcp_timewait_sock"),  # skc_to_tcp_timewait_sock
    139: HelperProto(("sock_common",), "btf_or_null:tcp_request_sock"),  # skc_to_tcp_request_sock
    140: HelperProto(("sock_common",), "btf_or_null:udp6_sock"),  # skc_to_udp6_sock
    141: HelperProto(("btf:task_struct", "uninit_mem", "size_or_zero", "any")),  # get_task_stack
    147: HelperProto(("btf:path", "mem", "size_or_zero")),  # d_path (see helper_allowed)
    148: HelperProto(("uninit_mem", "size_or_zero", "any")),  # copy_from_user
    149: HelperProto(("mem", "size", "mem", "size", "any")),  # snprintf_btf
    151: HelperProto(("ctx",)),  # skb_cgroup_classid
    152: HelperProto(("any", "mem_or_null", "size_or_zero", "any")),  # redirect_neigh
    155: HelperProto(("any", "any")),  # redirect_peer
    158: HelperProto((), "btf:task_struct"),  # get_current_task_btf
    159: HelperProto(("btf:linux_binprm", "any")),  # bprm_opts_set (lsm)
    160: HelperProto(()),  # ktime_get_coarse_ns
    161: HelperProto(("btf:inode", "uninit_mem", "size")),  # ima_inode_hash (lsm, sleepable hooks)
    164: HelperProto(("map", "func", "stack_or_null", "any")),  # for_each_map_elem
    169: HelperProto(("timer", "map", "any")),  # timer_init
    170: HelperProto(("timer", "func")),  # timer_set_callback
    171: HelperProto(("timer", "any", "any")),  # timer_start
    172: HelperProto(("timer",)),  # timer_cancel
    173: HelperProto(("ctx",)),  # get_func_ip
    174: HelperProto(("ctx",)),  # get_attach_cookie
    176: HelperProto(("uninit_mem", "size_or_zero")),  # get_branch_snapshot
    177: HelperProto(("mem", "size", "mem_or_null", "size_or_zero")),  # trace_vprintk
    178: HelperProto(("sock_common",), "btf_or_null:unix_sock"),  # skc_to_unix_sock
    181: HelperProto(("any", "func", "stack_or_null", "any")),  # loop
    186: HelperProto(()),  # get_retval (cgroup programs, lsm_cgroup)
    187: HelperProto(("any",)),  # set_retval (cgroup programs, lsm_cgroup)
    188: HelperProto(("ctx",)),  # xdp_get_buff_len
    189: HelperProto(("ctx", "any", "uninit_mem", "size")),  # xdp_load_bytes
    190: HelperProto(("ctx", "any", "mem", "size")),  # xdp_store_bytes
    183: HelperProto(("ctx", "any", "fixed_u64")),  # get_func_arg (trampoline programs: see trampoline_helper)
    184: HelperProto(("ctx", "fixed_u64")),  # get_func_ret
    185: HelperProto(("ctx",)),  # get_func_arg_cnt
    191: HelperProto(("uninit_mem", "size_or_zero", "any", "btf:task_struct")),  # copy_from_user_task
    192: HelperProto(("ctx", "any", "any")),  # skb_set_tstamp
    193: HelperProto(("btf:file", "uninit_mem", "size")),  # ima_file_hash (lsm, sleepable hooks)
    195: HelperProto(("map", "key", "any"), "map_value_or_null"),  # map_lookup_percpu_elem
    208: HelperProto(()),  # ktime_get_tai_ns
}

# where a program type gets another prototype for the same helper id (the kernel's
# ``*_func_proto`` switches): tracing programs pass BTF socket pointers, not a context
TYPE_PROTOS: dict[tuple[str, int], HelperProto] = {
    ("tracing", 46): HelperProto(("sock_common_or_null",)),  # get_socket_cookie (bpf_get_socket_ptr_cookie)
    # lsm_cgroup: bpf_sk_setsockopt / bpf_sk_getsockopt on the hook's socket
    ("lsm", 49): HelperProto(("sock_common", "any", "any", "mem", "size")),
    ("lsm", 57): HelperProto(("sock_common", "any", "any", "uninit_mem", "size")),
}


# kernel/trace/bpf_trace.c's btf_allowlist_d_path: the functions whose fentry/fexit
# programs may call bpf_d_path (an iterator always may); anything else "is not allowed in probe"
D_PATH_ALLOWLIST = ("security_file_permission", "security_inode_getattr", "security_file_open",
                    "security_path_truncate", "vfs_truncate", "vfs_fallocate", "dentry_open", "vfs_getattr",
                    "filp_close")
TRAMPOLINE_ATTACH = ("trace_fentry", "trace_fexit", "modify_return")


# helpers whose bpf_func_proto says might_sleep: a non-sleepable program may not call them
MIGHT_SLEEP = (BpfFunc.copy_from_user, BpfFunc.copy_from_user_task, BpfFunc.ima_inode_hash, BpfFunc.ima_file_hash)


# helpers only a program behind a BPF trampoline gets (bpf_prog_has_trampoline)
TRAMPOLINE_HELPERS = (BpfFunc.get_func_arg, BpfFunc.get_func_ret, BpfFunc.get_func_arg_cnt)


def trampoline_helper(prog, func_id: int) -> bool:
    """A fentry/fexit/fmod_ret program may call the helpers that read its trampoline's frame."""
    return func_id in TRAMPOLINE_HELPERS and prog.type == "tracing" and prog.expected_attach_type in TRAMPOLINE_ATTACH


def helper_allowed(prog, func_id: int) -> bool:
    """``bpf_func_proto.allowed``: helpers that also depend on where the program attaches
    (an LSM program's: ``lsm.lsm_helper_allowed``)."""
    if func_id != BpfFunc.d_path:
        return True
    attach = prog.expected_attach_type
    if attach == "trace_iter":
        return True
    return attach in TRAMPOLINE_ATTACH and prog.attach_name in D_PATH_ALLOWLIST


def helper_proto(prog_type: str, func_id: int) -> HelperProto | None:
    """The prototype a program of ``prog_type`` gets for helper ``func_id``, or None."""
    return TYPE_PROTOS.get((prog_type, func_id)) or PROTOS.get(func_id)


# bpf_helper_changes_pkt_data: the helpers that may move or resize the packet (a tail call
# among them: the program it runs may)
CHANGES_PKT_DATA = frozenset(BpfFunc[name] for name in (
    "clone_redirect", "l3_csum_replace", "l4_csum_replace", "lwt_push_encap", "lwt_seg6_action",
    "lwt_seg6_adjust_srh", "lwt_seg6_store_bytes", "msg_pop_data", "msg_pull_data", "msg_push_data",
    "skb_adjust_room", "skb_change_head", "skb_change_proto", "skb_change_tail", "skb_pull_data",
    "skb_store_bytes", "skb_vlan_pop", "skb_vlan_push", "store_hdr_opt", "xdp_adjust_head",
    "xdp_adjust_meta", "xdp_adjust_tail", "tail_call"))
