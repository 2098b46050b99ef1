"""``check_map_func_compatibility``: which helpers a map of each type may be passed
to, and which map types each helper takes (both directions must agree).

Map types are ``bpfnb.program.MAP_TYPES`` names; helpers are ``BpfFunc`` names.
"""

from __future__ import annotations

from ..isa.helpers import BpfFunc, helper_name
from ..program import MAP_TYPES
from .log import Reject

_SOCK_MAP_FUNCS = ("sk_select_reuseport", "map_lookup_elem", "map_update_elem", "map_delete_elem")

# a map of this type goes only to these helpers (types not listed: any helper)
MAP_TYPE_FUNCS: dict[str, tuple[str, ...]] = {
    "prog_array": ("tail_call",),
    "perf_event_array": ("perf_event_read", "perf_event_output", "skb_output", "perf_event_read_value",
                         "xdp_output"),
    "ringbuf": ("ringbuf_output", "ringbuf_reserve", "ringbuf_query", "ringbuf_reserve_dynptr",
                "ringbuf_submit_dynptr", "ringbuf_discard_dynptr"),
    "user_ringbuf": ("user_ringbuf_drain",),
    "stack_trace": ("get_stackid",),
    "cgroup_array": ("skb_under_cgroup", "current_task_under_cgroup"),
    "cgroup_storage": ("get_local_storage",),
    "percpu_cgroup_storage": ("get_local_storage",),
    "devmap": ("redirect_map", "map_lookup_elem"),
    "devmap_hash": ("redirect_map", "map_lookup_elem"),
    "cpumap": ("redirect_map",),
    "xskmap": ("redirect_map", "map_lookup_elem"),
    "array_of_maps": ("map_lookup_elem",),
    "hash_of_maps": ("map_lookup_elem",),
    "sockmap": ("sk_redirect_map", "sock_map_update", "msg_redirect_map") + _SOCK_MAP_FUNCS,
    "sockhash": ("sk_redirect_hash", "sock_hash_update", "msg_redirect_hash") + _SOCK_MAP_FUNCS,
    "reuseport_sockarray": ("sk_select_reuseport",),
    "queue": ("map_peek_elem", "map_pop_elem", "map_push_elem"),
    "stack": ("map_peek_elem", "map_pop_elem", "map_push_elem"),
    "sk_storage": ("sk_storage_get", "sk_storage_delete", "kptr_xchg"),
    "inode_storage": ("inode_storage_get", "inode_storage_delete", "kptr_xchg"),
    "task_storage": ("task_storage_get", "task_storage_delete", "kptr_xchg"),
    "cgrp_storage": ("cgrp_storage_get", "cgrp_storage_delete", "kptr_xchg"),
    "bloom_filter": ("map_peek_elem", "map_push_elem"),
}

# this helper takes only maps of these types (helpers not listed: any map)
FUNC_MAP_TYPES: dict[str, tuple[str, ...]] = {
    "tail_call": ("prog_array",),
    **{f: ("perf_event_array",) for f in ("perf_event_read", "perf_event_output", "perf_event_read_value",
                                           "skb_output", "xdp_output")},
    **{f: ("ringbuf",) for f in ("ringbuf_output", "ringbuf_reserve", "ringbuf_query", "ringbuf_reserve_dynptr",
                                  "ringbuf_submit_dynptr", "ringbuf_discard_dynptr")},
    "user_ringbuf_drain": ("user_ringbuf",),
    "get_stackid": ("stack_trace",),
    "current_task_under_cgroup": ("cgroup_array",),
    "skb_under_cgroup": ("cgroup_array",),
    "redirect_map": ("devmap", "devmap_hash", "cpumap", "xskmap"),
    **{f: ("sockmap",) for f in ("sk_redirect_map", "msg_redirect_map", "sock_map_update")},
    **{f: ("sockhash",) for f in ("sk_redirect_hash", "msg_redirect_hash", "sock_hash_update")},
    "get_local_storage": ("cgroup_storage", "percpu_cgroup_storage"),
    "sk_select_reuseport": ("reuseport_sockarray", "sockmap", "sockhash"),
    "map_pop_elem": ("queue", "stack"),
    "map_peek_elem": ("queue", "stack", "bloom_filter"),
    "map_push_elem": ("queue", "stack", "bloom_filter"),
    "map_lookup_percpu_elem": ("percpu_array", "percpu_hash", "lru_percpu_hash"),
    **{f: ("sk_storage",) for f in ("sk_storage_get", "sk_storage_delete")},
    **{f: ("inode_storage",) for f in ("inode_storage_get", "inode_storage_delete")},
    **{f: ("task_storage",) for f in ("task_storage_get", "task_storage_delete")},
    **{f: ("cgrp_storage",) for f in ("cgrp_storage_get", "cgrp_storage_delete")},
}


def check_map_func_compatibility(map_def, func_id: int) -> None:
    if map_def is None:
        return
    func = BpfFunc(func_id).name if func_id in BpfFunc._value2member_map_ else ""
    allowed_funcs = MAP_TYPE_FUNCS.get(map_def.type)
    allowed_maps = FUNC_MAP_TYPES.get(func)
    if (allowed_funcs is not None and func not in allowed_funcs) or (
            allowed_maps is not None and map_def.type not in allowed_maps):
        raise Reject(f"cannot pass map_type {MAP_TYPES.get(map_def.type, 0)} into func "
                     f"{helper_name(func_id)}#{func_id}")
