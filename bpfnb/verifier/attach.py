"""The attach target of a tracing program: ``check_attach_btf_id`` and
``bpf_check_attach_target`` for fentry/fexit/fmod_ret, which Linux 6.18 runs
before it walks a single instruction.

- the target is a kernel function (``attach_btf_id``) whose prototype a
  trampoline can call (``btf_distill_func_proto``: at most 12 arguments, each
  a pointer, integer, enum or struct of at most 16 bytes, no struct returned,
  no variadic arguments);
- it has an address (``/proc/kallsyms``);
- a sleepable program (``fentry.s/``…) and fmod_ret need a target the kernel
  lets them change: fmod_ret a ``security_*`` function or one on the kernel's
  error-injection list, a sleepable program one on that list (the list is in
  debugfs; where it cannot be read bpfnb says so in the log and goes on);
- the kernel's deny lists: functions no tracing program may attach to
  (``btf_id_deny``) and ``__noreturn`` functions fexit/fmod_ret may not
  (``noreturn_deny``).

An LSM program's hook (``bpf_lsm_<hook>``) goes through the same trampoline checks,
then ``lsm.bpf_lsm_verify_prog``; ``lsm.s/`` only on the hooks that may sleep.

tp_btf (``trace_raw_tp``) and iterator targets are checked where the section
name is read (``bpfnb.elf.sections``).
"""

from __future__ import annotations

import functools

from ..elf.sections import BPF_F_SLEEPABLE
from . import lsm
from .log import Reject

MAX_BPF_FUNC_ARGS = 12
MAX_STRUCT_ARG_SIZE = 16  # btf_distill_func_proto: no struct argument above 16 bytes
POINTER_SIZE = 8
SECURITY_PREFIX = "security_"
TRAMPOLINE_ATTACH = ("trace_fentry", "trace_fexit", "modify_return")
RETURN_ATTACH = ("trace_fexit", "modify_return")
ERROR_INJECTION_LIST = "/sys/kernel/debug/error_injection/list"
# kernel/bpf/verifier.c's btf_id_deny (each entry only where the kernel's configuration
# builds the function: an entry the kernel BTF does not have cannot be attached to anyway)
BTF_ID_DENY = ("migrate_disable", "migrate_enable", "rcu_read_unlock_strict", "preempt_count_add",
               "preempt_count_sub", "__rcu_read_lock", "__rcu_read_unlock")
# noreturn_deny: fexit/fmod_ret never see these return
NORETURN_DENY = ("__ia32_sys_exit", "__ia32_sys_exit_group", "__kunit_abort", "kunit_try_catch_throw",
                 "__module_put_and_kthread_exit", "__x64_sys_exit", "__x64_sys_exit_group", "do_exit",
                 "do_group_exit", "kthread_complete_and_exit", "kthread_exit", "make_task_dead")
# error-injectable functions that may still run in atomic context (btf_non_sleepable_error_inject)
NON_SLEEPABLE_ERROR_INJECT = ("__filemap_add_folio", "should_fail_alloc_page", "should_failslab")


# license_is_gpl_compatible
GPL_COMPATIBLE_LICENSES = ("GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL",
                           "Dual MPL/GPL")


def check_struct_ops_btf_id(env) -> None:
    """A struct_ops program needs a GPL-compatible license and the kernel struct it implements
    a member of. Without one the kernel refuses it with ENOTSUPP and says nothing (its log
    ends with ``processed 0 insns``: no instruction is verified); bpfnb says why."""
    prog = env.prog
    if prog.license not in GPL_COMPATIBLE_LICENSES:
        raise Reject("struct ops programs must have a GPL compatible license")
    if not prog.attach_btf_id:
        raise Reject(f"bpfnb: struct_ops program {prog.name} implements no member of a struct the kernel BTF "
                     "has (the kernel refuses it with ENOTSUPP before verifying it)")


def check_attach_btf_id(env) -> None:
    """Reject a fentry/fexit/fmod_ret or LSM program whose target the kernel would refuse (and
    a struct_ops program without its struct: ``check_struct_ops_btf_id``; a sleepable flag
    where no sleeping is allowed)."""
    prog = env.prog
    if prog.prog_flags & BPF_F_SLEEPABLE and not can_be_sleepable(prog):
        raise Reject("Only fentry/fexit/fmod_ret, lsm, iter, uprobe, and struct_ops programs can be sleepable")
    if prog.type == "struct_ops":
        check_struct_ops_btf_id(env)
        return
    if prog.type == "lsm":
        check_lsm_attach_target(env)
        return
    if prog.type != "tracing" or prog.expected_attach_type not in TRAMPOLINE_ATTACH:
        return
    # libbpf would not even load one without a target: tools name a placeholder and set the
    # target at run time
    where = f"no function '{prog.attach_name}'" if prog.attach_name else "no attach target"
    name = trampoline_target(prog, f"the kernel BTF has {where} for {prog.section or prog.name}; give the "
                                   "program a target with --section "
                                   f"{prog.section.split('/')[0] if prog.section else 'fentry'}/<function>")
    if prog.prog_flags & BPF_F_SLEEPABLE:
        if name in NON_SLEEPABLE_ERROR_INJECT or _error_injectable(env, name, "sleepable") is False:
            raise Reject(f"{name} is not sleepable")
    elif prog.expected_attach_type == "modify_return" and not name.startswith(SECURITY_PREFIX):
        if _error_injectable(env, name, "modifiable") is False:
            raise Reject(f"{name}() is not modifiable")
    if name in BTF_ID_DENY:
        raise Reject(f"Attaching tracing programs to function '{name}' is rejected.")
    if prog.expected_attach_type in RETURN_ATTACH and name in NORETURN_DENY:
        raise Reject(f"Attaching fexit/fmod_ret to __noreturn function '{name}' is rejected.")


def can_be_sleepable(prog) -> bool:
    """The program kinds a sleepable flag is allowed on."""
    if prog.type == "tracing":
        return prog.expected_attach_type in (*TRAMPOLINE_ATTACH, "trace_iter")
    if prog.type == "lsm":
        return prog.expected_attach_type != lsm.LSM_CGROUP
    return prog.type in ("kprobe", "struct_ops", "syscall")


def check_lsm_attach_target(env) -> None:
    """``bpf_check_attach_target`` for an LSM program (its hook's ``bpf_lsm_<hook>`` function:
    a prototype a trampoline can call, an address, a hook that may sleep for ``lsm.s/``),
    then ``bpf_lsm_verify_prog``."""
    prog = env.prog
    where = f"no function 'bpf_lsm_{lsm.hook_name(prog)}'" if prog.attach_name else "no attach target"
    name = trampoline_target(prog, f"the kernel BTF has {where} for {prog.section or prog.name}; give the "
                                   "program a hook with --section lsm/<hook>")
    if prog.prog_flags & BPF_F_SLEEPABLE and not lsm.bpf_lsm_is_sleepable_hook(prog):
        raise Reject(f"{name} is not sleepable")
    message = lsm.bpf_lsm_verify_prog(prog, prog.license in GPL_COMPATIBLE_LICENSES)
    if message is not None:
        raise Reject(message)


def trampoline_target(prog, missing: str) -> str:
    """What ``bpf_check_attach_target`` asks of every function a trampoline calls: a BTF id
    (``missing``: bpfnb's word when there is none), a FUNC, a prototype the trampoline takes,
    an address. The function's name."""
    btf = prog.kernel_btf
    if not prog.attach_btf_id or btf is None:
        raise Reject(f"Tracing programs must provide btf_id\nbpfnb: {missing}")
    func = btf.type(prog.attach_btf_id)
    if func.kind != "func":
        raise Reject(f"attach_btf_id {prog.attach_btf_id} is not a function")
    btf_distill_func_proto(btf, btf.type(func.type), func.name)
    if not _has_address(func.name):
        raise Reject(f"The address of function {func.name} cannot be found")
    return func.name


def btf_distill_func_proto(btf, proto, name: str) -> None:
    """The trampoline's model of the target's prototype; what it cannot call is refused."""
    params = proto.params
    if len(params) > MAX_BPF_FUNC_ARGS:
        raise Reject(f"The function {name} has {len(params)} arguments. Too many.")
    size, kind = _type_size(btf, proto.type)
    if size < 0 or kind in ("struct", "union"):
        raise Reject(f"The function {name} return type {_kind_str(kind)} is unsupported.")
    for i, param in enumerate(params):
        if i == len(params) - 1 and param.type == 0:
            raise Reject(f"The function {name} with variable args is unsupported.")
        size, kind = _type_size(btf, param.type)
        if size < 0 or size > MAX_STRUCT_ARG_SIZE:
            raise Reject(f"The function {name} arg{i} type {_kind_str(kind)} is unsupported.")
        if size == 0:
            raise Reject(f"The function {name} has malformed void argument.")


def _type_size(btf, type_id: int) -> tuple[int, str]:
    """``__get_type_size``: bytes of a pointer, integer, enum or struct (-1 for anything else)."""
    if not type_id:
        return 0, "void"
    resolved = btf.resolve(type_id)
    t = btf.type(resolved)
    if t.kind == "ptr":
        return POINTER_SIZE, t.kind
    if t.kind in ("int", "enum", "enum64", "struct", "union"):
        return t.size, t.kind
    return -1, t.kind


def _kind_str(kind: str) -> str:
    return "UNKN" if kind == "void" else kind.upper()


def _has_address(name: str) -> bool:
    """``kallsyms_lookup_name``; True where /proc/kallsyms cannot be read (nothing to say)."""
    symbols = _kernel_symbols()
    return symbols is None or name in symbols


@functools.cache
def _kernel_symbols() -> frozenset[str] | None:
    """The names in /proc/kallsyms, read once a process (the kernel's own functions do not change)."""
    from ..elf.externs import KALLSYMS, _kallsyms

    try:
        with open(KALLSYMS) as f:
            return frozenset(_kallsyms(f.read()))
    except OSError:
        return None


def _error_injectable(env, name: str, what: str) -> bool | None:
    """Is ``name`` on the kernel's error-injection list? None when the list cannot be read
    (debugfs not mounted): the log says bpfnb could not tell and the walk goes on."""
    try:
        with open(ERROR_INJECTION_LIST) as f:
            listed = {line.split()[0] for line in f if line.strip()}
    except OSError:
        env.log.verbose(f"bpfnb: cannot tell whether {name} is {what}: the kernel's error-injection list "
                        f"({ERROR_INJECTION_LIST}) cannot be read; verifying as if it were")
        return None
    return name in listed
