"""Calls of kernel functions (``BPF_PSEUDO_KFUNC_CALL``): ``check_kfunc_call``.

The instruction's ``imm`` is the kfunc's ``FUNC`` id in the kernel BTF. bpfnb
models the kfuncs below with their 6.18 flags; any other kfunc is a rejection
naming it:

- ``bpf_rcu_read_lock``/``bpf_rcu_read_unlock``: the RCU read section (no
  nesting, no unmatched unlock, no exit inside it); at the unlock, pointers
  that were RCU-protected become untrusted (``clear_rcu``).
- ``bpf_task_acquire``, ``bpf_cgroup_acquire`` (KF_ACQUIRE | KF_RCU | KF_RET_NULL): a
  trusted or RCU ``task_struct``/``cgroup`` in, a referenced ``ptr_or_null_<struct>`` out.
- ``bpf_task_from_pid(pid)``, ``bpf_task_from_vpid(vpid)``, ``bpf_cgroup_from_id(id)``
  (KF_ACQUIRE | KF_RET_NULL): a scalar in, a referenced ``ptr_or_null_<struct>`` out.
- ``bpf_task_release``, ``bpf_cgroup_release`` (KF_RELEASE): the reference goes; every
  copy of the pointer is invalidated (``release_reference``).
- ``bpf_rdonly_cast(obj, btf_id)``: an ``untrusted_ptr_<struct>`` of a constant type.
- ``bpf_cast_to_kern_ctx(ctx)``: the context as the kernel struct behind it.

At the program's exit a reference still held is "Unreleased reference"
(``check_reference_leak``).
"""

from __future__ import annotations

from ..isa import opcodes as op
from .log import Reject
from .precision import mark_chain_precision
from .regstate import PTR_TO_BTF_ID, PTR_TO_CTX, SCALAR, Reg
from .scalar import Scalar

CALLER_SAVED = range(1, 6)
KERN_CTX = {"socket_filter": "sk_buff", "sched_cls": "sk_buff", "sched_act": "sk_buff",
            "cgroup_skb": "sk_buff", "xdp": "xdp_buff"}
KERN_CTX_TRACING = "u64"  # a tracing program's context is an array of u64 arguments
TASK_STRUCT = "task_struct"
KFUNC_DECL_TAG = "bpf_kfunc"
CGROUP = "cgroup"
# KF_ACQUIRE | KF_RCU | KF_RET_NULL, KF_ACQUIRE | KF_RET_NULL from a number, KF_RELEASE: the struct each takes
ACQUIRE = {"bpf_task_acquire": TASK_STRUCT, "bpf_cgroup_acquire": CGROUP}
FROM_ID = {"bpf_task_from_pid": TASK_STRUCT, "bpf_task_from_vpid": TASK_STRUCT, "bpf_cgroup_from_id": CGROUP}
RELEASE = {"bpf_task_release": TASK_STRUCT, "bpf_cgroup_release": CGROUP}
# the kernel's generic kfunc set (task and cgroup references) is registered for these
# program types' hooks only (measured on 6.18: raw_tp, kprobe, socket filters, sk_skb,
# lwt, netfilter... are told "not allowed"); the common set (RCU, casts) for every type
GENERIC_KFUNC_PROG_TYPES = ("tracing", "tracepoint", "perf_event", "lsm", "sched_cls", "xdp", "struct_ops", "syscall",
                            "cgroup_skb", "cgroup_sock", "cgroup_sock_addr", "sock_ops", "cgroup_sockopt",
                            "cgroup_sysctl", "cgroup_device")
MODELLED = ("bpf_rcu_read_lock", "bpf_rcu_read_unlock", *ACQUIRE, *FROM_ID, *RELEASE, "bpf_rdonly_cast",
            "bpf_cast_to_kern_ctx")


def kfunc_name(env, insn) -> str:
    btf = env.prog.kernel_btf
    if btf is None:
        raise Reject("calling kernel functions needs the kernel BTF (pass kernel_btf)")
    try:
        t = btf.type(insn.imm)
    except Exception:
        t = None
    if t is None or t.kind != "func":
        raise Reject(f"kernel btf_id {insn.imm} is not a function")
    return t.name


def is_kfunc(btf, func_id: int) -> bool:
    """Is the function a kfunc at all? The kernel BTF tags every function of its kfunc id
    sets with the ``bpf_kfunc`` declaration tag; calling any other kernel function is
    "not allowed". (Which program types may call which kfunc the tags do not say.)"""
    return any(btf.type(tag).type == func_id for tag in btf.find_all(KFUNC_DECL_TAG, "decl_tag"))


def kfunc_call_name(env, insn):
    """For ``format_insn``: how the log names a kfunc call (``bpf_task_acquire#65817``),
    None for every other instruction."""
    if insn.code != (op.BPF_JMP | op.BPF_CALL) or insn.src != op.BPF_PSEUDO_KFUNC_CALL:
        return None
    btf = env.prog.kernel_btf
    try:
        name = btf.type(insn.imm).name if btf is not None else "kernel-function"
    except Exception:
        name = "kernel-function"
    return lambda call: f"{name}#{call.imm}"


def check_kfunc_call(env, state, insn, i: int) -> int:
    name = kfunc_name(env, insn)
    generic = name in ACQUIRE or name in FROM_ID or name in RELEASE
    if not is_kfunc(env.prog.kernel_btf, insn.imm) or (generic and env.prog.type not in GENERIC_KFUNC_PROG_TYPES):
        raise Reject(f"calling kernel function {name} is not allowed")
    if name not in MODELLED:
        raise Reject(f"bpfnb does not model kfunc {name}#{insn.imm} (insn {i})")
    btf = env.prog.kernel_btf
    regs = state.regs
    r0 = Reg()
    if name == "bpf_rcu_read_lock":
        if state.active_rcu_lock:
            raise Reject(f"nested rcu read lock (kernel function {name})")
        state.active_rcu_lock = True
    elif name == "bpf_rcu_read_unlock":
        if not state.active_rcu_lock:
            raise Reject(f"unmatched rcu read unlock (kernel function {name})")
        state.active_rcu_lock = False
        for frame in state.frames:  # clear_rcu: what RCU protected is no longer trusted
            for reg in list(frame.regs) + [s.spilled for s in frame.stack.values() if s.spilled is not None]:
                if reg.type == PTR_TO_BTF_ID and reg.rcu:
                    reg.rcu, reg.untrusted = False, True
    elif name in ACQUIRE:
        arg = _btf_arg(env, state, 1, name, ACQUIRE[name], rcu_ok=True)
        r0 = _acquired(env, state, i, arg.btf, arg.btf_id)
    elif name in FROM_ID:
        number = env.read_reg(state, 1)
        if number.type != SCALAR:
            raise Reject(f"arg#0 is {number.type_name()} but expected scalar")
        r0 = _acquired(env, state, i, btf, btf.find(FROM_ID[name], "struct"))
    elif name in RELEASE:
        reg = env.read_reg(state, 1)
        if reg.type != PTR_TO_BTF_ID or not reg.ref_obj_id:
            raise Reject(f"release kernel function {name} expects refcounted PTR_TO_BTF_ID")
        _btf_arg(env, state, 1, name, RELEASE[name], rcu_ok=True)
        release_reference(state, reg.ref_obj_id)
    elif name == "bpf_rdonly_cast":
        env.read_reg(state, 1)
        k = env.read_reg(state, 2)
        if k.type != SCALAR or not k.s.var_off.is_const:
            raise Reject("R2 must be a known constant")
        mark_chain_precision(env, state, 2)
        target = btf.type(k.s.var_off.value) if 0 < k.s.var_off.value < len(btf) else None
        if target is None or target.kind != "struct":
            raise Reject(f"bpfnb does not model bpf_rdonly_cast to a non-struct (btf_id {k.s.var_off.value})")
        r0 = Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=btf, btf_id=k.s.var_off.value, untrusted=True)
    elif name == "bpf_cast_to_kern_ctx":
        ctx = env.read_reg(state, 1)
        if ctx.type != PTR_TO_CTX:
            raise Reject(f"arg#0 expected pointer to ctx, but got {ctx.type_name()}")
        struct = KERN_CTX.get(env.prog.type)
        if struct is None:
            type_id = btf.find(KERN_CTX_TRACING, "typedef") if env.prog.type == "tracing" else 0
            raise Reject(f"kern ctx type id {type_id} is not a struct")
        r0 = Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=btf, btf_id=btf.find(struct, "struct"), trusted=True)
    for r in CALLER_SAVED:
        regs[r] = Reg()
        env.log.scratch_regs.add(r)
    regs[0] = r0
    env.log.scratch_regs.add(0)
    env.record(state, i, "call", name)
    return i + 1


def _acquired(env, state, i: int, btf, btf_id: int) -> Reg:
    """A KF_ACQUIRE | KF_RET_NULL return: ``ptr_or_null_<struct>(id=N,ref_obj_id=N)``, N held."""
    env.new_id()  # KF_RET_NULL takes an id first; acquire_reference the next
    ref_id = env.new_id()
    state.refs = (*state.refs, (ref_id, i))
    return Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=btf, btf_id=btf_id, maybe_null=True, id=ref_id,
               ref_obj_id=ref_id)


def _btf_arg(env, state, regno: int, func: str, struct: str, *, rcu_ok: bool) -> Reg:
    """A ``KF_TRUSTED_ARGS`` (or, with ``rcu_ok``, ``KF_RCU``) struct pointer argument."""
    reg = env.read_reg(state, regno)
    arg = regno - 1
    if reg.type != PTR_TO_BTF_ID:
        raise Reject(f"arg#{arg} expected pointer to btf or socket")
    if reg.maybe_null:
        raise Reject(f"Possibly NULL pointer passed to trusted arg{arg}")
    if reg.untrusted or not (reg.trusted or reg.ref_obj_id or (rcu_ok and reg.rcu)):
        raise Reject(f"R{regno} must be referenced or trusted" if not rcu_ok
                     else f"R{regno} must be a rcu pointer")
    got = reg.btf.type(reg.btf_id).name
    if got != struct:
        raise Reject(f"kernel function {func} args#{arg} expected pointer to STRUCT {struct} but R{regno} "
                     f"has a pointer to STRUCT {got}")
    return reg


def release_reference(state, ref_obj_id: int) -> None:
    """The reference goes; every copy of the pointer is invalidated (calls.release_reference)."""
    from .calls import release_reference as release  # calls imports this module

    release(state, ref_obj_id)


def check_reference_leak(state) -> None:
    """At the program's exit: nothing acquired may still be held, no RCU section open."""
    if state.active_rcu_lock:
        raise Reject("BPF_EXIT instruction in main prog cannot be used inside bpf_rcu_read_lock-ed region")
    if state.refs:
        ref_id, insn = state.refs[0]
        raise Reject(f"Unreleased reference id={ref_id} alloc_insn={insn}\n"
                     "BPF_EXIT instruction in main prog would lead to reference leak")
