"""BPF LSM programs (``BPF_PROG_TYPE_LSM``): what Linux 6.18's kernel/bpf/bpf_lsm.c
decides about a program attached to an LSM hook, by the hook's name.

- the hooks: every ``bpf_lsm_<hook>`` function of the kernel BTF (one per
  ``LSM_HOOK`` of lsm_hook_defs.h) but the file's own functions; some hooks may
  not be attached to at all (``bpf_lsm_disabled_hooks``);
- ``bpf_lsm_verify_prog``: a GPL-compatible license, a hook that is not disabled;
- sleepable programs (``lsm.s/``) only on the hooks that may sleep
  (``sleepable_lsm_hooks``);
- the hook's arguments are trusted pointers, except on the hooks that run on
  objects being set up or torn down (``untrusted_lsm_hooks``);
- the value an ``lsm/`` program returns: 0 or 1 for the hooks returning a bool
  (``bool_lsm_hooks``), otherwise 0 or a negative errno, compared on the lower
  32 bits; nothing for a hook returning void (``bpf_lsm_get_retval_range``);
- the helpers: ``bpf_lsm_func_proto`` (its own cases, then the tracing ones).

The sets are the kernel's (a hook the running kernel's configuration does not
build is simply absent from its BTF).
"""

from __future__ import annotations

from ..isa.helpers import BpfFunc
from .helper_protos import TRAMPOLINE_HELPERS

LSM_PREFIX = "bpf_lsm_"
LSM_MAC = "lsm_mac"
LSM_CGROUP = "lsm_cgroup"
MAX_ERRNO = 4095
# bpf_lsm.c's own functions: a bpf_lsm_ name that is no hook
NOT_HOOKS = frozenset({"find_cgroup_shim", "func_proto", "get_retval_range", "has_d_inode_locked",
                       "is_sleepable_hook", "is_trusted", "verify_prog"})
DISABLED_HOOKS = frozenset({"vm_enough_memory", "inode_need_killpriv", "inode_getsecurity", "inode_listsecurity",
                            "inode_copy_up_xattr", "getselfattr", "getprocattr", "setprocattr", "key_getsecurity",
                            "audit_rule_match", "ismaclabel"})
# the hooks that may sleep (as of 6.18: the two getsecid hooks renamed in 6.13 were dropped,
# the removexattr hooks added)
SLEEPABLE_HOOKS = frozenset({
    "bpf", "bpf_map", "bpf_map_create", "bpf_map_free", "bpf_prog", "bpf_prog_load", "bpf_prog_free",
    "bpf_token_create", "bpf_token_free", "bpf_token_cmd", "bpf_token_capable", "bprm_check_security",
    "bprm_committed_creds", "bprm_committing_creds", "bprm_creds_for_exec", "bprm_creds_from_file", "capget",
    "capset", "cred_prepare", "file_ioctl", "file_lock", "file_open", "file_post_open", "file_receive",
    "inode_create", "inode_free_security", "inode_getattr", "inode_getxattr", "inode_mknod", "inode_need_killpriv",
    "inode_post_setxattr", "inode_post_removexattr", "inode_readlink", "inode_removexattr", "inode_rename",
    "inode_rmdir", "inode_setattr", "inode_setxattr", "inode_symlink", "inode_unlink", "kernel_module_request",
    "kernel_read_file", "kernfs_init_security", "path_unlink", "path_mkdir", "path_rmdir", "path_truncate",
    "path_symlink", "path_link", "path_rename", "path_chmod", "path_chown", "mmap_file", "netlink_send",
    "path_notify", "release_secctx", "sb_alloc_security", "sb_eat_lsm_opts", "sb_kern_mount", "sb_mount",
    "sb_remount", "sb_set_mnt_opts", "sb_show_options", "sb_statfs", "sb_umount", "settime",
    "inet_conn_established", "socket_accept", "socket_bind", "socket_connect", "socket_create",
    "socket_getpeername", "socket_getpeersec_dgram", "socket_getsockname", "socket_getsockopt", "socket_listen",
    "socket_post_create", "socket_recvmsg", "socket_sendmsg", "socket_shutdown", "socket_socketpair", "syslog",
    "task_alloc", "task_prctl", "task_setscheduler", "task_to_inode", "userns_create",
})
UNTRUSTED_HOOKS = frozenset({"bpf_map_free", "bpf_prog_free", "file_alloc_security", "file_free_security",
                             "sk_alloc_security", "sk_free_security", "task_free"})
BOOL_HOOKS = frozenset({"xfrm_state_pol_flow_match", "audit_rule_known", "inode_xattr_skipcap"})
# bpf_{get,set}sockopt from lsm_cgroup programs: hooks run with the socket locked, or early enough
SOCKOPT_HOOKS = frozenset({"sock_graft", "inet_csk_clone", "inet_conn_established", "socket_post_create",
                           "socket_socketpair"})

# bpf_lsm_func_proto's own cases (any LSM program), besides the tracing helpers
LSM_HELPERS = frozenset({BpfFunc.inode_storage_get, BpfFunc.inode_storage_delete, BpfFunc.sk_storage_get,
                         BpfFunc.sk_storage_delete, BpfFunc.spin_lock, BpfFunc.spin_unlock, BpfFunc.bprm_opts_set,
                         BpfFunc.ima_inode_hash, BpfFunc.ima_file_hash})
# a trampoline's (lsm/, not lsm_cgroup/): bpf_prog_has_trampoline
LSM_MAC_HELPERS = frozenset({BpfFunc.get_attach_cookie, *TRAMPOLINE_HELPERS})
# on the hooks that may sleep only, sleepable program or not (bpf_d_path_allowed,
# bpf_ima_inode_hash_allowed)
SLEEPABLE_HOOK_HELPERS = frozenset({BpfFunc.d_path, BpfFunc.ima_inode_hash, BpfFunc.ima_file_hash})
# lsm_cgroup/ only: cgroup_common_func_proto
CGROUP_HELPERS = frozenset({BpfFunc.get_local_storage, BpfFunc.get_retval, BpfFunc.set_retval})
SOCKOPT_HELPERS = frozenset({BpfFunc.setsockopt, BpfFunc.getsockopt})


def hook_name(prog) -> str:
    """The hook an LSM program attaches to (``file_open`` for ``bpf_lsm_file_open``)."""
    name = prog.attach_name or ""
    return name[len(LSM_PREFIX):] if name.startswith(LSM_PREFIX) else name


def attach_func_name(prog) -> str:
    """``prog->aux->attach_func_name``: the kernel function, ``bpf_lsm_<hook>``."""
    btf = prog.kernel_btf
    if btf is not None and prog.attach_btf_id:
        return btf.type(prog.attach_btf_id).name
    return LSM_PREFIX + hook_name(prog)


def is_hook(func_name: str) -> bool:
    """In ``bpf_lsm_hooks``: a ``bpf_lsm_`` function that is one of the hooks."""
    return func_name.startswith(LSM_PREFIX) and func_name[len(LSM_PREFIX):] not in NOT_HOOKS


def bpf_lsm_verify_prog(prog, license_ok: bool) -> str | None:
    """The kernel's message when an LSM program may not attach where it asks, else None."""
    if not license_ok:
        return "LSM programs must have a GPL compatible license"
    name = attach_func_name(prog)
    if name.startswith(LSM_PREFIX) and name[len(LSM_PREFIX):] in DISABLED_HOOKS:
        return f"attach_btf_id {prog.attach_btf_id} points to disabled hook {name}"
    if not is_hook(name):
        return f"attach_btf_id {prog.attach_btf_id} points to wrong type name {name}"
    return None


def bpf_lsm_is_sleepable_hook(prog) -> bool:
    return is_hook(attach_func_name(prog)) and hook_name(prog) in SLEEPABLE_HOOKS


def bpf_lsm_is_trusted(prog) -> bool:
    return hook_name(prog) not in UNTRUSTED_HOOKS


def hook_proto(prog):
    """``prog->aux->attach_func_proto``: the hook's FUNC_PROTO (None without kernel BTF)."""
    btf = prog.kernel_btf
    if btf is None or not prog.attach_btf_id:
        return None
    func = btf.type(prog.attach_btf_id)
    return btf.type(func.type) if func.kind == "func" else None


def hook_returns_void(prog) -> bool:
    proto = hook_proto(prog)
    return proto is not None and not proto.type


def bpf_lsm_get_retval_range(prog) -> tuple[int, int] | None:
    """What an ``lsm/`` program may return (None: a void hook, anything goes)."""
    if prog.expected_attach_type != LSM_MAC or hook_returns_void(prog):
        return None
    if hook_name(prog) in BOOL_HOOKS:
        return 0, 1
    return -MAX_ERRNO, 0


def lsm_helper_available(prog, func_id: int, tracing: frozenset[int]) -> bool:
    """``bpf_lsm_func_proto``: its own helpers, then ``tracing_prog_func_proto`` (``tracing``:
    what the kernel gives a tracing program with no trampoline)."""
    cgroup = prog.expected_attach_type == LSM_CGROUP
    if cgroup and func_id in CGROUP_HELPERS:
        return True
    if func_id in SOCKOPT_HELPERS:
        return cgroup and hook_name(prog) in SOCKOPT_HOOKS
    if func_id in LSM_HELPERS:
        return True
    if func_id in LSM_MAC_HELPERS:
        return prog.expected_attach_type == LSM_MAC
    if func_id in CGROUP_HELPERS:
        return False
    return func_id in tracing


def lsm_helper_allowed(prog, func_id: int) -> bool:
    """``bpf_func_proto.allowed`` for an LSM program: ``bpf_d_path`` and the ima hashes on the
    hooks that may sleep only ("helper call is not allowed in probe" elsewhere)."""
    return func_id not in SLEEPABLE_HOOK_HELPERS or bpf_lsm_is_sleepable_hook(prog)
