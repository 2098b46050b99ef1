"""Helper prototypes: argument and return kinds of the helpers bpfnb checks.

Argument kinds are the kernel's ``enum bpf_arg_type`` values by meaning:
``map`` (ARG_CONST_MAP_PTR), ``key``/``value`` (ARG_PTR_TO_MAP_KEY/VALUE),
``uninit_mem`` + ``size``/``size_or_zero`` (ARG_PTR_TO_UNINIT_MEM and the
following ARG_CONST_SIZE[_OR_ZERO]), ``mem`` (ARG_PTR_TO_MEM | MEM_RDONLY),
``ctx``, ``any`` (ARG_ANYTHING), ``btf:sk_buff`` (ARG_PTR_TO_BTF_ID of that
struct), ``ringbuf_mem`` (ARG_PTR_TO_RINGBUF_MEM, released),
``alloc_size`` (ARG_CONST_ALLOC_SIZE_OR_ZERO). Returns: ``integer``,
``void``, ``map_value_or_null``, ``ringbuf_mem_or_null``, ``btf:task_struct``.
Which program types may call which helper is the kernel's own answer
(``helper_availability``).
"""

from __future__ import annotations

from dataclasses import dataclass


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
    6: HelperProto(("mem", "size", "any", "any", "any")),  # trace_printk
    7: HelperProto(()),  # get_prandom_u32
    8: HelperProto(()),  # get_smp_processor_id
    9: HelperProto(("ctx", "any", "mem", "size", "any")),  # skb_store_bytes
    12: HelperProto(("ctx", "map", "any"), "void"),  # tail_call
    14: HelperProto(()),  # get_current_pid_tgid
    15: HelperProto(()),  # get_current_uid_gid
    16: HelperProto(("uninit_mem", "size")),  # get_current_comm
    17: HelperProto(("ctx",)),  # get_cgroup_classid
    23: HelperProto(("any", "any")),  # redirect
    25: HelperProto(("ctx", "map", "any", "mem", "size_or_zero")),  # perf_event_output
    26: HelperProto(("ctx", "any", "uninit_mem", "size")),  # skb_load_bytes
    34: HelperProto(("ctx",)),  # get_hash_recalc
    35: HelperProto(()),  # get_current_task
    42: HelperProto(()),  # get_numa_node_id
    44: HelperProto(("ctx", "any")),  # xdp_adjust_head
    45: HelperProto(("uninit_mem", "size", "any")),  # probe_read_str
    46: HelperProto(("ctx",)),  # get_socket_cookie
    47: HelperProto(("ctx",)),  # get_socket_uid
    51: HelperProto(("map", "any", "any")),  # redirect_map
    65: HelperProto(("ctx", "any")),  # xdp_adjust_tail
    68: HelperProto(("ctx", "any", "uninit_mem", "size", "any")),  # skb_load_bytes_relative
    111: HelperProto(("btf:sk_buff", "map", "any", "mem", "size_or_zero")),  # skb_output
    112: HelperProto(("uninit_mem", "size_or_zero", "any")),  # probe_read_user
    113: HelperProto(("uninit_mem", "size_or_zero", "any")),  # probe_read_kernel
    114: HelperProto(("uninit_mem", "size_or_zero", "any")),  # probe_read_user_str
    115: HelperProto(("uninit_mem", "size_or_zero", "any")),  # probe_read_kernel_str
    118: HelperProto(()),  # jiffies64
    125: HelperProto(()),  # ktime_get_boot_ns
    130: HelperProto(("map", "mem", "size_or_zero", "any")),  # ringbuf_output
    131: HelperProto(("map", "alloc_size", "any"), "ringbuf_mem_or_null"),  # ringbuf_reserve
    132: HelperProto(("ringbuf_mem", "any"), "void"),  # ringbuf_submit
    133: HelperProto(("ringbuf_mem", "any"), "void"),  # ringbuf_discard
    134: HelperProto(("map", "any")),  # ringbuf_query
    158: HelperProto((), "btf:task_struct"),  # get_current_task_btf
    160: HelperProto(()),  # ktime_get_coarse_ns
    208: HelperProto(()),  # ktime_get_tai_ns
}
