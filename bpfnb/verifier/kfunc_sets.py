"""The kernel's kfunc id sets: which kfuncs a program type may call, with their flags.

The kernel BTF says which functions are kfuncs (the ``bpf_kfunc`` declaration tag)
and gives each one's prototype; the flags (``BTF_ID_FLAGS(func, name, KF_...)``) and
the program types a set is registered for (``register_btf_kfunc_id_set``) are not in
BTF. bpfnb keeps them here for the sets it models, as Linux 6.18 has them
(kernel/bpf/helpers.c, kernel/bpf/cpumask.c, net/netfilter/nf_conntrack_bpf.c); the
program types of each set were measured against the running kernel ("calling kernel
function X is not allowed" elsewhere). A kfunc in none of these sets has flags bpfnb
does not know, and is refused by name rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

# include/linux/btf.h
KF_ACQUIRE = 1 << 0  # returns a reference the program must release
KF_RELEASE = 1 << 1  # releases the reference its argument holds
KF_RET_NULL = 1 << 2  # may return NULL
KF_TRUSTED_ARGS = 1 << 4  # pointer arguments must be trusted or referenced
KF_SLEEPABLE = 1 << 5  # only sleepable programs may call it
KF_DESTRUCTIVE = 1 << 6
KF_RCU = 1 << 7  # pointer arguments may also be RCU-protected
KF_RCU_PROTECTED = 1 << 11  # the returned pointer is RCU-protected
KF_FASTCALL = 1 << 12

FLAG_NAMES = {KF_ACQUIRE: "KF_ACQUIRE", KF_RELEASE: "KF_RELEASE", KF_RET_NULL: "KF_RET_NULL",
              KF_TRUSTED_ARGS: "KF_TRUSTED_ARGS", KF_SLEEPABLE: "KF_SLEEPABLE", KF_DESTRUCTIVE: "KF_DESTRUCTIVE",
              KF_RCU: "KF_RCU", KF_RCU_PROTECTED: "KF_RCU_PROTECTED", KF_FASTCALL: "KF_FASTCALL"}

ALL_PROG_TYPES = None  # a set registered for BPF_PROG_TYPE_UNSPEC: every program type


@dataclass(frozen=True)
class KfuncSet:
    name: str  # the kernel's name for the set
    prog_types: tuple[str, ...] | None  # bpfnb's program type names, None: every type
    flags: dict[str, int]


# the generic set (task and cgroup references) is registered for these program types'
# hooks only (measured on 6.18: raw_tp, kprobe, socket filters, sk_skb, lwt, netfilter...
# are told "not allowed")
GENERIC_KFUNC_PROG_TYPES = ("tracing", "tracepoint", "perf_event", "lsm", "sched_cls", "xdp", "struct_ops", "syscall",
                            "cgroup_skb", "cgroup_sock", "cgroup_sock_addr", "sock_ops", "cgroup_sockopt",
                            "cgroup_sysctl", "cgroup_device")
# kernel/bpf/cpumask.c registers its set for the tracing hook (measured on 6.18: tp_btf,
# tracepoint and perf_event programs; kprobe, raw_tp, networking types "not allowed"),
# struct_ops and syscall programs
CPUMASK_PROG_TYPES = ("tracing", "tracepoint", "perf_event", "struct_ops", "syscall")
# net/netfilter/nf_conntrack_bpf.c: XDP and tc
NF_CONNTRACK_PROG_TYPES = ("xdp", "sched_cls")

ACQUIRE_RCU_OR_NULL = KF_ACQUIRE | KF_RCU | KF_RET_NULL
ACQUIRE_OR_NULL = KF_ACQUIRE | KF_RET_NULL
CT_LOOKUP = KF_ACQUIRE | KF_RET_NULL | KF_TRUSTED_ARGS

KFUNC_SETS = (
    KfuncSet("common_kfunc_set", ALL_PROG_TYPES, {
        "bpf_rcu_read_lock": 0,
        "bpf_rcu_read_unlock": 0,
        "bpf_rdonly_cast": KF_FASTCALL,
        "bpf_cast_to_kern_ctx": KF_FASTCALL,
        "bpf_copy_from_user_str": KF_SLEEPABLE,
    }),
    KfuncSet("generic_kfunc_set", GENERIC_KFUNC_PROG_TYPES, {
        "bpf_task_acquire": ACQUIRE_RCU_OR_NULL,
        "bpf_task_release": KF_RELEASE,
        "bpf_task_from_pid": ACQUIRE_OR_NULL,
        "bpf_task_from_vpid": ACQUIRE_OR_NULL,
        "bpf_cgroup_acquire": ACQUIRE_RCU_OR_NULL,
        "bpf_cgroup_release": KF_RELEASE,
        "bpf_cgroup_ancestor": ACQUIRE_RCU_OR_NULL,
        "bpf_cgroup_from_id": ACQUIRE_OR_NULL,
        "bpf_task_under_cgroup": KF_RCU,
        "bpf_task_get_cgroup1": ACQUIRE_RCU_OR_NULL,
    }),
    KfuncSet("cpumask_kfunc_set", CPUMASK_PROG_TYPES, {
        "bpf_cpumask_create": ACQUIRE_OR_NULL,
        "bpf_cpumask_release": KF_RELEASE,
        "bpf_cpumask_acquire": KF_ACQUIRE | KF_TRUSTED_ARGS,
        "bpf_cpumask_first": KF_RCU,
        "bpf_cpumask_first_zero": KF_RCU,
        "bpf_cpumask_first_and": KF_RCU,
        "bpf_cpumask_set_cpu": KF_RCU,
        "bpf_cpumask_clear_cpu": KF_RCU,
        "bpf_cpumask_test_cpu": KF_RCU,
        "bpf_cpumask_test_and_set_cpu": KF_RCU,
        "bpf_cpumask_test_and_clear_cpu": KF_RCU,
        "bpf_cpumask_setall": KF_RCU,
        "bpf_cpumask_clear": KF_RCU,
        "bpf_cpumask_and": KF_RCU,
        "bpf_cpumask_or": KF_RCU,
        "bpf_cpumask_xor": KF_RCU,
        "bpf_cpumask_equal": KF_RCU,
        "bpf_cpumask_intersects": KF_RCU,
        "bpf_cpumask_subset": KF_RCU,
        "bpf_cpumask_empty": KF_RCU,
        "bpf_cpumask_full": KF_RCU,
        "bpf_cpumask_copy": KF_RCU,
        "bpf_cpumask_any_distribute": KF_RCU,
        "bpf_cpumask_any_and_distribute": KF_RCU,
        "bpf_cpumask_weight": KF_RCU,
        "bpf_cpumask_populate": KF_RCU,
    }),
    # fs/bpf_fs_kfuncs.c: LSM programs only (its filter lets no other type through)
    KfuncSet("bpf_fs_kfunc_set_ids", ("lsm",), {
        "bpf_get_task_exe_file": KF_ACQUIRE | KF_TRUSTED_ARGS | KF_RET_NULL,
        "bpf_put_file": KF_RELEASE,
        "bpf_path_d_path": KF_TRUSTED_ARGS,
        "bpf_get_dentry_xattr": KF_SLEEPABLE | KF_TRUSTED_ARGS,
        "bpf_get_file_xattr": KF_SLEEPABLE | KF_TRUSTED_ARGS,
        "bpf_set_dentry_xattr": KF_SLEEPABLE | KF_TRUSTED_ARGS,
        "bpf_remove_dentry_xattr": KF_SLEEPABLE | KF_TRUSTED_ARGS,
    }),
    # net/core/filter.c's XDP set (measured on 6.18.44: tc is "not allowed"); its
    # bpf_dynptr_from_xdp takes a dynptr, which bpfnb does not model
    KfuncSet("bpf_kfunc_check_set_xdp", ("xdp",), {
        "bpf_xdp_pull_data": 0,
    }),
    # the lookups and allocations check their pointer arguments' trust on 6.18 (measured: a
    # context of the wrong program type is "R1 must be referenced or trusted")
    KfuncSet("nf_conntrack_kfunc_set", NF_CONNTRACK_PROG_TYPES, {
        "bpf_xdp_ct_alloc": CT_LOOKUP,
        "bpf_xdp_ct_lookup": CT_LOOKUP,
        "bpf_skb_ct_alloc": CT_LOOKUP,
        "bpf_skb_ct_lookup": CT_LOOKUP,
        "bpf_ct_insert_entry": KF_ACQUIRE | KF_RET_NULL | KF_RELEASE,
        "bpf_ct_release": KF_RELEASE,
        "bpf_ct_set_timeout": KF_TRUSTED_ARGS,
        "bpf_ct_change_timeout": KF_TRUSTED_ARGS,
        "bpf_ct_set_status": KF_TRUSTED_ARGS,
        "bpf_ct_change_status": KF_TRUSTED_ARGS,
    }),
)


# is_kfunc_pkt_changing: the kfuncs that may move the packet (their callers' packet
# pointers become numbers, as after bpf_helper_changes_pkt_data's helpers)
PKT_CHANGING_KFUNCS = frozenset({"bpf_xdp_pull_data"})


def find_kfunc_set(name: str) -> KfuncSet | None:
    """The set bpfnb knows the kfunc from, or None."""
    for kset in KFUNC_SETS:
        if name in kset.flags:
            return kset
    return None


def allowed(kset: KfuncSet, prog_type: str) -> bool:
    """``btf_kfunc_id_set_contains``: is the set registered for the program's type?"""
    return kset.prog_types is ALL_PROG_TYPES or prog_type in kset.prog_types


def flag_names(flags: int) -> str:
    return " | ".join(name for bit, name in FLAG_NAMES.items() if flags & bit) or "0"
