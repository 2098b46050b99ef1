"""Calls of kernel functions (``BPF_PSEUDO_KFUNC_CALL``): ``check_kfunc_call``.

The instruction's ``imm`` is the kfunc's ``FUNC`` id in the kernel BTF. Its
arguments are checked from that BTF prototype, as the kernel's ``check_kfunc_args``
does, with the flags of the id set bpfnb knows it from (``kfunc_sets``):

- a scalar parameter takes a scalar (``__k``: a known constant, made precise);
  ``__ign`` parameters are not checked;
- a pointer parameter, by ``get_kfunc_ptr_arg_type``: the program's context type
  (``struct __sk_buff *`` in tc) wants the context; a struct pointer given a
  ``PTR_TO_BTF_ID`` (or a socket) is matched by struct (``btf_struct_ids_match``,
  walking first members unless the call acquires or releases), trusted or RCU as
  ``KF_TRUSTED_ARGS``/``KF_RCU``/``KF_RELEASE`` ask; a pointer followed by a
  ``__sz`` (``__szk``) scalar is a memory and size pair (``__opt``: NULL allowed);
  any other pointer is memory of the pointee's size, which must be a scalar or a
  struct of scalars. NULL only where the parameter is ``__nullable``.
- ``KF_RELEASE``: the referenced argument's reference goes (``release_reference``);
  ``KF_ACQUIRE``: the returned pointer holds a new reference; ``KF_RET_NULL``: it
  may be NULL; ``KF_SLEEPABLE``: sleepable programs only.
- the return: a scalar, nothing (R0 unreadable), ``void *`` (a scalar), a struct
  pointer (``PTR_TO_BTF_ID``, ``rcu_`` for ``KF_RCU_PROTECTED``), or memory of the
  pointee's size (read-only).

``bpf_rcu_read_lock``/``bpf_rcu_read_unlock`` open and close the RCU read section
(no nesting, no unmatched unlock, no exit inside it; at the unlock RCU-protected
pointers become untrusted); ``bpf_rdonly_cast`` and ``bpf_cast_to_kern_ctx`` return
the types the kernel gives them. A kfunc bpfnb knows no flags for, or whose
arguments are of a kind it does not model (dynptrs, iterators, lists, trees,
callbacks, ...), is refused with a message starting "bpfnb does not model".
At the program's exit a reference still held is "Unreleased reference"
(``check_reference_leak``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..elf.sections import BPF_F_SLEEPABLE
from ..isa import opcodes as op
from .kfunc_sets import (
    KF_ACQUIRE,
    KF_RCU,
    KF_RCU_PROTECTED,
    KF_RELEASE,
    KF_RET_NULL,
    KF_SLEEPABLE,
    KF_TRUSTED_ARGS,
    PKT_CHANGING_KFUNCS,
    allowed,
    find_kfunc_set,
)
from .log import Reject
from .precision import mark_chain_precision
from .regstate import (
    PTR_TO_BTF_ID,
    PTR_TO_CTX,
    PTR_TO_MAP_KEY,
    PTR_TO_MAP_VALUE,
    PTR_TO_MEM,
    PTR_TO_PACKET,
    PTR_TO_PACKET_META,
    PTR_TO_SOCK_COMMON,
    PTR_TO_SOCKET,
    PTR_TO_STACK,
    PTR_TO_TCP_SOCK,
    SCALAR,
    Reg,
)
from .scalar import Scalar

CALLER_SAVED = range(1, 6)
MAX_BPF_FUNC_REG_ARGS = 5
BPF_MAX_VAR_SIZ = 1 << 29
MAX_SCALAR_STRUCT_DEPTH = 4  # __btf_type_is_scalar_struct's nesting limit
KFUNC_DECL_TAG = "bpf_kfunc"
KERN_CTX = {"socket_filter": "sk_buff", "sched_cls": "sk_buff", "sched_act": "sk_buff",
            "cgroup_skb": "sk_buff", "xdp": "xdp_buff"}
KERN_CTX_TRACING = "u64"  # a tracing program's context is an array of u64 arguments
# the context struct each program type's C code names (bpf_ctx_convert's user side);
# types without one (tracing, lsm, struct_ops, syscall) take no context argument by type
PROG_CTX_STRUCT = {
    "socket_filter": "__sk_buff", "sched_cls": "__sk_buff", "sched_act": "__sk_buff", "cgroup_skb": "__sk_buff",
    "lwt_in": "__sk_buff", "lwt_out": "__sk_buff", "lwt_xmit": "__sk_buff", "lwt_seg6local": "__sk_buff",
    "sk_skb": "__sk_buff", "flow_dissector": "__sk_buff", "xdp": "xdp_md", "sock_ops": "bpf_sock_ops",
    "cgroup_sock": "bpf_sock", "cgroup_sock_addr": "bpf_sock_addr", "sk_msg": "sk_msg_md",
    "cgroup_sysctl": "bpf_sysctl", "cgroup_sockopt": "bpf_sockopt", "sk_lookup": "bpf_sk_lookup",
    "perf_event": "bpf_perf_event_data", "raw_tracepoint": "bpf_raw_tracepoint_args", "kprobe": "pt_regs",
    "sk_reuseport": "sk_reuseport_md", "cgroup_device": "bpf_cgroup_dev_ctx",
}
# a projection: a kfunc taking the C-side context accepts the kernel struct behind it
PROJECTIONS = {"__sk_buff": "sk_buff", "xdp_md": "xdp_buff"}
CTX_STRUCTS = frozenset(PROG_CTX_STRUCT.values()) | frozenset(PROJECTIONS.values())
# reg2btf_ids: socket pointers stand for these kernel structs
REG2BTF = {PTR_TO_SOCKET: "sock", PTR_TO_SOCK_COMMON: "sock_common", PTR_TO_TCP_SOCK: "tcp_sock"}
# what check_helper_mem_access takes as memory (every other register: "expected=fp")
MEM_REG_TYPES = (PTR_TO_STACK, PTR_TO_MAP_VALUE, PTR_TO_MAP_KEY, PTR_TO_PACKET, PTR_TO_PACKET_META, PTR_TO_MEM)
VOID_KIND_STR = "UNKNOWN"

# parameter name suffixes (kernel/bpf/verifier.c is_kfunc_arg_*)
SUFFIX_IGNORE, SUFFIX_CONST, SUFFIX_SIZE, SUFFIX_CONST_SIZE = "__ign", "__k", "__sz", "__szk"
SUFFIX_OPTIONAL, SUFFIX_NULLABLE = "__opt", "__nullable"
# argument kinds bpfnb does not model: by parameter suffix, and by the struct pointed to
UNMODELLED_SUFFIXES = ("__alloc", "__refcounted_kptr", "__uninit", "__str", "__map", "__irq_flag", "__prog",
                       "__aux")
UNMODELLED_STRUCTS = ("bpf_dynptr", "bpf_list_head", "bpf_list_node", "bpf_rb_root", "bpf_rb_node", "bpf_wq",
                      "bpf_timer", "bpf_task_work", "bpf_res_spin_lock", "bpf_prog_aux")
UNMODELLED_STRUCT_PREFIX = "bpf_iter_"


@dataclass
class KfuncCallArgMeta:
    """``bpf_kfunc_call_arg_meta``: what the arguments told the call."""

    name: str
    func_id: int
    flags: int
    proto: object  # the kernel BTF's FUNC_PROTO
    ref_obj_id: int = 0
    release_regno: int = 0
    arg_constant: int | None = None


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


def add_kfunc_calls(env) -> None:
    """``add_subprog_and_kfunc``'s kfunc half, before any walk: every kfunc call must name
    a ``FUNC`` of the kernel BTF, reachable or not (measured on 6.18: "kernel btf_id 1 is
    not a function" for a call in dead code, before "unreachable insn")."""
    call = op.BPF_JMP | op.BPF_CALL
    for insn in env.insns:
        if insn.code == call and insn.src == op.BPF_PSEUDO_KFUNC_CALL:
            kfunc_name(env, insn)


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


def fetch_kfunc_meta(env, insn, i: int) -> KfuncCallArgMeta:
    """The kfunc, its prototype and flags; "not allowed" when the program's type may
    not call it (or it is no kfunc), a bpfnb refusal when bpfnb does not know its flags."""
    name = kfunc_name(env, insn)
    btf = env.prog.kernel_btf
    kset = find_kfunc_set(name)
    if not is_kfunc(btf, insn.imm) or (kset is not None and not allowed(kset, env.prog.type)):
        raise Reject(f"calling kernel function {name} is not allowed")
    if kset is None:
        raise Reject(f"bpfnb does not model kfunc {name}#{insn.imm} (insn {i}): its flags are not in "
                     "bpfnb's table of kfunc sets")
    proto = btf.type(btf.type(insn.imm).type)
    return KfuncCallArgMeta(name, insn.imm, kset.flags[name], proto)


def check_kfunc_call(env, state, insn, i: int) -> int:
    meta = fetch_kfunc_meta(env, insn, i)
    name = meta.name
    sleepable = bool(meta.flags & KF_SLEEPABLE)
    if sleepable and not env.prog.prog_flags & BPF_F_SLEEPABLE:
        raise Reject(f"program must be sleepable to call sleepable kfunc {name}")
    check_kfunc_args(env, state, meta, i)
    if state.active_rcu_lock:
        if name == "bpf_rcu_read_lock":
            raise Reject(f"nested rcu read lock (kernel function {name})")
        if name == "bpf_rcu_read_unlock":
            state.active_rcu_lock = False
            clear_rcu(state)
        elif sleepable:
            raise Reject(f"kernel func {name} is sleepable within rcu_read_lock region")
    elif name == "bpf_rcu_read_lock":
        state.active_rcu_lock = True
    elif name == "bpf_rcu_read_unlock":
        raise Reject(f"unmatched rcu read unlock (kernel function {name})")
    if meta.release_regno:
        release_reference(state, meta.ref_obj_id)
    if name in PKT_CHANGING_KFUNCS:
        from .calls import clear_all_pkt_pointers  # calls imports this module

        clear_all_pkt_pointers(state)
    for r in CALLER_SAVED:
        state.regs[r] = Reg()
        env.log.scratch_regs.add(r)
    state.regs[0] = kfunc_return(env, state, meta, i)
    env.log.scratch_regs.add(0)
    env.record(state, i, "call", name)
    return i + 1


def clear_rcu(state) -> None:
    """At ``bpf_rcu_read_unlock``: what RCU protected is no longer trusted."""
    for frame in state.frames:
        for reg in list(frame.regs) + [s.spilled for s in frame.stack.values() if s.spilled is not None]:
            if reg.type == PTR_TO_BTF_ID and reg.rcu:
                reg.rcu, reg.untrusted = False, True


# -- arguments ---------------------------------------------------------------------------

def _suffix(btf, param, suffix: str) -> bool:
    return param.name.endswith(suffix) and len(param.name) > len(suffix)


def _is_scalar_type(btf, type_id: int) -> bool:
    """``btf_type_is_scalar``: an integer, an enum or a float."""
    return btf.type(btf.resolve(type_id)).kind in ("int", "enum", "enum64", "float")


def _is_mem_size(btf, param, reg: Reg, suffix: str) -> bool:
    """``is_kfunc_arg_mem_size``: a scalar ``__sz`` (``__szk``) parameter given a scalar."""
    return _is_scalar_type(btf, param.type) and reg.type == SCALAR and _suffix(btf, param, suffix)


class TooDeep(Exception):
    """``__btf_type_is_scalar_struct`` gave up: the kernel logs it, then the argument's error."""


def _is_scalar_struct(btf, type_id: int, depth: int = 0) -> bool:
    """``__btf_type_is_scalar_struct``: a struct made of scalars (arrays of them, nested
    structs, four levels deep at most)."""
    t = btf.type(type_id)
    if t.kind not in ("struct", "union"):
        return False
    if depth == MAX_SCALAR_STRUCT_DEPTH:
        raise TooDeep
    for m in t.members:
        mid = btf.resolve(m.type)
        mt = btf.type(mid)
        if mt.kind in ("struct", "union"):
            if not _is_scalar_struct(btf, mid, depth + 1):
                return False
            continue
        if mt.kind == "array":
            if not mt.nelems or not _is_scalar_type(btf, mt.elem_type):
                return False
            continue
        if not _is_scalar_type(btf, mid):
            return False
    return True


def _type_str(t) -> str:
    """``btf_type_str``: the kind as the kernel prints it (void is kind 0, "UNKNOWN")."""
    return VOID_KIND_STR if t.kind == "void" else t.kind.upper()


def _unmodelled_arg(meta: KfuncCallArgMeta, param, btf, ref_t, argno: int) -> str | None:
    if any(param.name.endswith(s) for s in UNMODELLED_SUFFIXES):
        return f"a {param.name!r} argument"
    if ref_t.kind in ("struct", "union") and (ref_t.name in UNMODELLED_STRUCTS
                                              or ref_t.name.startswith(UNMODELLED_STRUCT_PREFIX)):
        return f"a struct {ref_t.name} argument"
    if ref_t.kind == "func_proto":
        return "a callback argument"
    return None


def check_kfunc_args(env, state, meta: KfuncCallArgMeta, insn_idx: int) -> None:
    btf = env.prog.kernel_btf
    params = meta.proto.params
    if len(params) > MAX_BPF_FUNC_REG_ARGS:
        raise Reject(f"Function {meta.name} has {len(params)} > {MAX_BPF_FUNC_REG_ARGS} args")
    regs = state.regs
    release = bool(meta.flags & KF_RELEASE)
    i = 0
    while i < len(params):
        param, regno = params[i], i + 1
        t_id = btf.strip_modifiers(param.type)
        if _suffix(btf, param, SUFFIX_IGNORE):
            i += 1
            continue
        reg = env.read_reg(state, regno)
        if _is_scalar_type(btf, t_id):
            if reg.type != SCALAR:
                raise Reject(f"R{regno} is not a scalar")
            if _suffix(btf, param, SUFFIX_CONST):
                if not reg.s.var_off.is_const:
                    raise Reject(f"R{regno} must be a known constant")
                mark_chain_precision(env, state, regno)
                meta.arg_constant = reg.s.var_off.value
            i += 1
            continue
        t = btf.type(btf.resolve(t_id))
        if t.kind != "ptr":
            raise Reject(f"Unrecognized arg#{i} type {_type_str(t)}")
        is_null = reg.type == SCALAR and reg.s.var_off.equals_const(0)
        if (is_null or reg.maybe_null) and not _suffix(btf, param, SUFFIX_NULLABLE):
            raise Reject(f"Possibly NULL pointer passed to trusted arg{i}")
        if reg.ref_obj_id:
            meta.ref_obj_id = reg.ref_obj_id
            if release:
                meta.release_regno = regno
        ref_id = btf.resolve(t.type)
        ref_t = btf.type(ref_id)
        unmodelled = _unmodelled_arg(meta, param, btf, ref_t, i)
        if unmodelled is not None:
            raise Reject(f"bpfnb does not model kfunc {meta.name}#{meta.func_id} (insn {insn_idx}): "
                         f"arg#{i} is {unmodelled}")
        kind = get_kfunc_ptr_arg_type(env, meta, params, i, regs, ref_t)
        if kind == "null":
            i += 1
            continue
        if kind == "btf_id" and (meta.flags & (KF_TRUSTED_ARGS | KF_RCU) or release) and not is_trusted_reg(reg):
            if not meta.flags & KF_RCU:
                raise Reject(f"R{regno} must be referenced or trusted")
            if not reg.rcu:
                raise Reject(f"R{regno} must be a rcu pointer")
        # measured on 6.18: a KF_TRUSTED_ARGS (or release) kfunc wants trusted memory too
        # ("R1 must be referenced or trusted" for a stack buffer); a KF_RCU one does not
        if kind == "mem" and (meta.flags & KF_TRUSTED_ARGS or release) and not is_trusted_reg(reg):
            raise Reject(f"R{regno} must be referenced or trusted")
        check_func_arg_reg_off(reg, regno, release and bool(reg.ref_obj_id))
        if kind == "ctx":
            if reg.type != PTR_TO_CTX:
                raise Reject(f"arg#{i} expected pointer to ctx, but got {reg.type_name()}")
        elif kind == "btf_id":
            if (reg.type != PTR_TO_BTF_ID or (_has_unsafe_modifiers(reg) and not reg.rcu)) \
                    and reg.type not in REG2BTF:
                trusted = "trusted_" if reg.trusted else ""
                raise Reject(f"arg#{i} is {reg.type_name()} expected {trusted}{reg.type} or socket")
            process_kf_arg_ptr_to_btf_id(env, meta, reg, ref_id, i, strict=release and bool(reg.ref_obj_id))
        elif kind == "mem":
            size = btf.sizeof(ref_id)
            check_mem_reg(env, state, regno, reg, size)
        elif kind == "mem_size":
            size_reg = regs[regno + 1]
            if not (is_null and _suffix(btf, param, SUFFIX_OPTIONAL)):
                try:
                    check_kfunc_mem_size_reg(env, state, regno + 1, size_reg)
                except Reject as exc:
                    raise Reject(f"{exc}\narg#{i} arg#{i + 1} memory, len pair leads to invalid memory access") \
                        from None
            if _is_mem_size(btf, params[i + 1], size_reg, SUFFIX_CONST_SIZE):
                if not size_reg.s.var_off.is_const:
                    raise Reject(f"R{regno + 1} must be a known constant")
                meta.arg_constant = size_reg.s.var_off.value
            i += 1  # the size was this argument's
        i += 1
    if release and not meta.release_regno:
        raise Reject(f"release kernel function {meta.name} expects refcounted PTR_TO_BTF_ID")


def get_kfunc_ptr_arg_type(env, meta: KfuncCallArgMeta, params, argno: int, regs, ref_t) -> str:
    """What the BTF makes of a pointer parameter: ``ctx``, ``null``, ``btf_id``, ``mem``
    or ``mem_size``."""
    btf = env.prog.kernel_btf
    if meta.name == "bpf_cast_to_kern_ctx":
        return "ctx"
    reg = regs[argno + 1]
    nxt = params[argno + 1] if argno + 1 < len(params) else None
    next_reg = regs[argno + 2] if nxt is not None else None
    mem_size = nxt is not None and \
        (_is_mem_size(btf, nxt, next_reg, SUFFIX_SIZE) or _is_mem_size(btf, nxt, next_reg, SUFFIX_CONST_SIZE))
    if _is_prog_ctx_type(env.prog.type, ref_t):
        return "ctx"
    is_null = reg.type == SCALAR and reg.s.var_off.equals_const(0)
    if _suffix(btf, params[argno], SUFFIX_NULLABLE) and is_null and not mem_size:
        return "null"
    # a context register for another program type's context struct (an XDP context for
    # a struct __sk_buff): the kernel takes it as a BTF pointer (measured on 6.18: "R1
    # must be referenced or trusted"); for any other struct, as memory
    other_ctx = reg.type == PTR_TO_CTX and ref_t.kind == "struct" and ref_t.name in CTX_STRUCTS
    if reg.type == PTR_TO_BTF_ID or reg.type in REG2BTF or other_ctx:
        if ref_t.kind not in ("struct", "union"):
            name = ref_t.name if ref_t.kind != "void" else ""
            raise Reject(f"kernel function {meta.name} args#{argno} pointer type {_type_str(ref_t)} {name} "
                         "is not supported")
        return "btf_id"
    ref_id = ref_t.id
    try:
        scalar_struct, too_deep = _is_scalar_struct(btf, ref_id), []
    except TooDeep:
        scalar_struct, too_deep = False, ["max struct nesting depth exceeded"]
    if not _is_scalar_type(btf, ref_id) and not scalar_struct and (not mem_size or ref_t.kind != "void"):
        name = ref_t.name if ref_t.kind != "void" else ""
        raise Reject("\n".join([*too_deep, f"arg#{argno} pointer type {_type_str(ref_t)} {name} must point to "
                                 f"{'void, ' if mem_size else ''}scalar, or struct with scalar"]))
    return "mem_size" if mem_size else "mem"


def _is_prog_ctx_type(prog_type: str, ref_t) -> bool:
    """``btf_is_prog_ctx_type``: the parameter points to the program type's context
    struct (or the kernel struct it projects)."""
    ctx = PROG_CTX_STRUCT.get(prog_type)
    if ctx is None or ref_t.kind != "struct":
        return False
    return ref_t.name == ctx or PROJECTIONS.get(ctx) == ref_t.name


def is_trusted_reg(reg: Reg) -> bool:
    """``is_trusted_reg``: referenced, a socket, or trusted with no unsafe flag."""
    if reg.ref_obj_id:
        return True
    if reg.type in REG2BTF:
        return not _has_unsafe_modifiers(reg)
    return reg.trusted and not _has_unsafe_modifiers(reg)


def _has_unsafe_modifiers(reg: Reg) -> bool:
    """``bpf_type_has_unsafe_modifiers``: any flag besides the trusted ones."""
    return reg.untrusted or reg.rcu or reg.maybe_null or reg.rdonly


def check_func_arg_reg_off(reg: Reg, regno: int, releasing: bool) -> None:
    """``check_func_arg_reg_off`` for a kfunc argument: memory pointers may be offset,
    a BTF pointer by a constant (not when released), anything else not at all."""
    if releasing and reg.off:
        raise Reject(f"R{regno} must have zero offset when passed to release func or trusted arg to kfunc")
    if reg.type in MEM_REG_TYPES or reg.type == SCALAR:
        return
    fixed_ok = reg.type == PTR_TO_BTF_ID and not reg.untrusted and not reg.maybe_null and not releasing
    if not fixed_ok and reg.off:
        raise Reject(f"dereference of modified {reg.type_name()} ptr R{regno} off={reg.off} disallowed")
    if not reg.s.var_off.is_const or reg.s.var_off.value:
        raise Reject(f"variable {reg.type_name()} access var_off={reg.s.var_off} disallowed")


def process_kf_arg_ptr_to_btf_id(env, meta: KfuncCallArgMeta, reg: Reg, ref_id: int, argno: int,
                                 *, strict: bool) -> None:
    """The struct the pointer points to must be the parameter's (or start with it, the
    walk through first members, unless a reference is released: then exactly it)."""
    from .btf_access import btf_struct_ids_match

    btf = env.prog.kernel_btf
    ref_t = btf.type(ref_id)
    if reg.type == PTR_TO_BTF_ID:
        reg_btf, reg_id = reg.btf, reg.btf.resolve(reg.btf_id)
    elif reg.type in REG2BTF:
        reg_btf, reg_id = btf, btf.find(REG2BTF[reg.type], "struct")
    else:
        # a context as a BTF pointer: never reached on 6.18 (the trust check refuses it first)
        raise Reject(f"arg#{argno} is {reg.type_name()} expected ptr_ or socket")
    reg_t = reg_btf.type(reg_id)
    if strict:
        same, complaint = reg.off == 0 and reg_btf is btf and reg_id == ref_id, None
    else:
        same, complaint = btf_struct_ids_match(reg_btf, reg_id, reg.off, ref_id)
    projection = PROJECTIONS.get(ref_t.name) == reg_t.name
    if not same and not projection:
        lines = [complaint] if complaint else []  # the walk's complaint comes first
        raise Reject("\n".join(lines) + ("\n" if lines else "") + f"kernel function {meta.name} args#{argno} expected pointer to {_type_str(ref_t)} "
                     f"{ref_t.name} but R{argno + 1} has a pointer to {_type_str(reg_t)} {reg_t.name}")


def check_mem_reg(env, state, regno: int, reg: Reg, size: int) -> None:
    """``check_mem_reg``: memory of ``size`` bytes the kfunc may read and write."""
    if reg.type == SCALAR and reg.s.var_off.equals_const(0):
        return
    kfunc_mem_access(env, state, regno, reg, size)


def kfunc_mem_access(env, state, regno: int, reg: Reg, size: int, writes=(False, True)) -> None:
    """``check_helper_mem_access`` for reading, then writing (``writes``), as a kfunc's memory."""
    from .calls import check_helper_mem_access

    if reg.type == PTR_TO_CTX and size:
        # measured on 6.18: a context as a kfunc's memory is checked as a context access of
        # its last byte ("func 'task_newtask' offset 31 is not multiple of 8")
        from .mem import check_ctx_access

        check_ctx_access(env, regno, reg, size - 1, 1, False)
        return
    if reg.type not in MEM_REG_TYPES:
        if size == 0 and reg.type == SCALAR and reg.s.var_off.equals_const(0):
            return
        raise Reject(f"R{regno} type={reg.type_name()} expected={PTR_TO_STACK}")
    mem = reg
    if reg.maybe_null:  # checked as if not NULL; the register itself stays as it is
        mem = reg.copy()
        mem.maybe_null = False
    for write in writes:
        check_helper_mem_access(env, state, regno, mem, size, write=write, raw_mode=False)


def check_kfunc_mem_size_reg(env, state, regno: int, size_reg: Reg) -> None:
    """``check_kfunc_mem_size_reg``: the size argument bounds the memory before it (zero
    allowed), checked as ``check_mem_size_reg`` checks it for reading and again for writing
    (each ends marking the size precise: the log shows the backtracking twice)."""
    for write in (False, True):
        if size_reg.s.smin < 0:
            raise Reject(f"R{regno} min value is negative, either use unsigned or 'var &= const'")
        if size_reg.s.umax >= BPF_MAX_VAR_SIZ:
            raise Reject(f"R{regno} unbounded memory access, use 'var &= const' or 'if (var < const)'")
        kfunc_mem_access(env, state, regno - 1, state.regs[regno - 1], size_reg.s.umax, writes=(write,))
        mark_chain_precision(env, state, regno)


# -- the return ----------------------------------------------------------------------------

def kfunc_return(env, state, meta: KfuncCallArgMeta, i: int) -> Reg:
    btf = env.prog.kernel_btf
    if meta.name == "bpf_rdonly_cast":
        return _rdonly_cast(btf, meta)
    if meta.name == "bpf_cast_to_kern_ctx":
        return _kern_ctx(env, btf)
    ret_id = btf.strip_modifiers(meta.proto.type)
    ret = btf.type(btf.resolve(ret_id)) if ret_id else None
    if meta.flags & KF_ACQUIRE and (ret is None or ret.kind != "ptr"
                                    or btf.type(btf.resolve(ret.type)).kind != "struct"):
        raise Reject("acquire kernel function does not return PTR_TO_BTF_ID")
    if ret is None or ret.kind == "void":
        return Reg()  # nothing comes back: R0 may not be read
    if ret.kind != "ptr":
        return Reg(SCALAR, Scalar.unknown())
    target_id = btf.resolve(ret.type)
    target = btf.type(target_id)
    if target.kind == "void":  # a 'void *' is a number to the program
        return Reg(SCALAR, Scalar.unknown())
    if target.kind != "struct":
        try:
            size = btf.sizeof(target_id)
        except Exception:
            size = 0
        if not size:
            raise Reject(f"kernel function {meta.name} returns pointer type {_type_str(target)} {target.name} "
                         "is not supported")
        r0 = Reg(PTR_TO_MEM, Scalar.const(0), mem_size=size, rdonly=True, ref_obj_id=meta.ref_obj_id)
    else:
        r0 = Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=btf, btf_id=target_id,
                 rcu=bool(meta.flags & KF_RCU_PROTECTED))
    if meta.flags & KF_RET_NULL:
        r0.maybe_null = True
        r0.id = env.new_id()
    if meta.flags & KF_ACQUIRE:
        ref_id = env.new_id()
        state.refs = (*state.refs, (ref_id, i))
        if meta.flags & KF_RET_NULL:
            r0.id = ref_id
        r0.ref_obj_id = ref_id
    return r0


def _rdonly_cast(btf, meta: KfuncCallArgMeta) -> Reg:
    type_id = meta.arg_constant
    target = btf.type(type_id) if type_id is not None and 0 < type_id < len(btf) else None
    if target is None or target.kind != "struct":
        raise Reject(f"bpfnb does not model bpf_rdonly_cast to a non-struct (btf_id {type_id})")
    return Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=btf, btf_id=type_id, untrusted=True)


def _kern_ctx(env, btf) -> Reg:
    struct = KERN_CTX.get(env.prog.type)
    if struct is None:
        type_id = btf.find(KERN_CTX_TRACING, "typedef") if env.prog.type == "tracing" else 0
        raise Reject(f"kern ctx type id {type_id} is not a struct")
    return Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=btf, btf_id=btf.find(struct, "struct"), trusted=True)


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
