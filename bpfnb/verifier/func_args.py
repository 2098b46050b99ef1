"""``btf_prepare_func_args`` (kernel/bpf/btf.c): what each argument of a function of
the program is, read from its BTF prototype and its ``arg:`` decl tags, with the
messages the kernel logs on the way.

The kernel prepares the main program's arguments once before its walk (a prototype
that is not one context argument only makes its BTF unreliable, with those
messages), and a static function's at each call until they are found unusable
(silently, but for the messages a tag or an unnamed struct gives).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

MAX_BPF_FUNC_REG_ARGS = 5
BTF_SCALAR_KINDS = ("int", "enum", "enum64")
# argument kinds (the kernel's ARG_* of a subprogram argument)
ARG_ANYTHING, ARG_PTR_TO_CTX = "anything", "ptr_to_ctx"
ARG_PTR_TO_MEM, ARG_PTR_TO_DYNPTR = "ptr_to_mem", "ptr_to_dynptr"
ARG_PTR_TO_BTF_ID, ARG_PTR_TO_ARENA = "ptr_to_btf_id", "ptr_to_arena"
# the 'arg:' decl tags of a global function's parameters
ARG_TAG_PREFIX = "arg:"
ARG_TAG_CTX, ARG_TAG_NONNULL, ARG_TAG_TRUSTED = "ctx", "nonnull", "trusted"
ARG_TAG_UNTRUSTED, ARG_TAG_NULLABLE, ARG_TAG_ARENA = "untrusted", "nullable", "arena"
ARG_TAGS = (ARG_TAG_CTX, ARG_TAG_NONNULL, ARG_TAG_TRUSTED, ARG_TAG_UNTRUSTED, ARG_TAG_NULLABLE, ARG_TAG_ARENA)
DYNPTR_STRUCT = "bpf_dynptr"
EINVAL = 22
# kinds ``btf_resolve_size`` gives a size to (modifiers and arrays are walked through)
SIZED_KINDS = ("int", "struct", "union", "enum", "enum64", "float", "ptr")
MODIFIER_KINDS = ("typedef", "volatile", "const", "restrict", "type_tag")
MAX_RESOLVE_DEPTH = 32
VOID_KIND_STR = "UNKNOWN"  # btf_kind_str of kind 0, void

# the context struct of each program type (include/linux/bpf_types.h) as a BPF program
# names it, and the kernel struct it projects where the kernel accepts that name too
_SKB_CTX = ("__sk_buff", "sk_buff")
PROG_CTX_STRUCTS = {
    **dict.fromkeys(("socket_filter", "sched_cls", "sched_act", "cgroup_skb", "lwt_in", "lwt_out", "lwt_xmit",
                     "lwt_seg6local", "sk_skb", "flow_dissector"), _SKB_CTX),
    "xdp": ("xdp_md", "xdp_buff"),
    "cgroup_sock": ("bpf_sock",),
    "cgroup_sock_addr": ("bpf_sock_addr",),
    "sock_ops": ("bpf_sock_ops",),
    "sk_msg": ("sk_msg_md",),
    "sk_lookup": ("bpf_sk_lookup",),
    "sk_reuseport": ("sk_reuseport_md",),
    "perf_event": ("bpf_perf_event_data",),
    "raw_tracepoint": ("bpf_raw_tracepoint_args",),
    "raw_tracepoint_writable": ("bpf_raw_tracepoint_args",),
    "cgroup_sysctl": ("bpf_sysctl",),
    "cgroup_sockopt": ("bpf_sockopt",),
    "cgroup_device": ("bpf_cgroup_dev_ctx",),
    "kprobe": ("pt_regs",),
}
KPROBE_TYPES = ("kprobe",)
KPROBE_CTX_TYPEDEF = "bpf_user_pt_regs_t"


@dataclass(frozen=True)
class SubprogArg:
    """``struct bpf_subprog_arg_info``: an argument's kind and what goes with it."""

    type: str
    nullable: bool = False
    untrusted: bool = False
    mem_size: int = 0
    btf_id: int = 0  # the pointed-to type in the program's BTF (trusted/untrusted)


def btf_type_str(t) -> str:
    """``btf_type_str``: the kind as the kernel prints it."""
    return VOID_KIND_STR if t.kind == "void" else t.kind.upper()


def skip_modifiers(btf, type_id: int):
    t = btf.type(type_id)
    for _ in range(MAX_RESOLVE_DEPTH):
        if t.kind not in MODIFIER_KINDS:
            break
        t = btf.type(t.type)
    return t


def btf_resolve_size(btf, t) -> int | None:
    """The size of ``t`` as ``btf_resolve_size`` finds it (through modifiers and arrays),
    or None where the kernel fails with -EINVAL (void, a forward declaration, a function)."""
    nelems = 1
    for _ in range(MAX_RESOLVE_DEPTH):
        if t.kind in SIZED_KINDS:
            return nelems * (8 if t.kind == "ptr" else (t.size or 0))
        if t.kind in MODIFIER_KINDS:
            t = btf.type(t.type)
        elif t.kind == "array":
            nelems *= t.nelems
            t = btf.type(t.elem_type)
        else:
            return None
    return None


_ARG_TAGS_BY_BTF: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def arg_tags(btf, func_id: int, arg: int) -> list[str]:
    """The ``arg:`` decl tags of parameter ``arg`` of the function ``func_id``, in BTF
    order (``btf_find_next_decl_tag``); the BTF's decl tags are indexed once."""
    index = _ARG_TAGS_BY_BTF.get(btf)
    if index is None:
        index = {}
        for type_id in range(1, len(btf)):
            t = btf.type(type_id)
            if t.kind == "decl_tag" and t.name.startswith(ARG_TAG_PREFIX):
                index.setdefault((t.type, t.component_idx), []).append(t.name[len(ARG_TAG_PREFIX):])
        _ARG_TAGS_BY_BTF[btf] = index
    return index.get((func_id, arg), [])


def btf_is_prog_ctx_type(log, prog_type: str, btf, ptr, arg: int) -> bool:
    """Whether the pointer type ``ptr`` points to the program type's context as programs
    name it (or the kernel struct it is a projection of; for kprobes also the
    ``bpf_user_pt_regs_t`` typedef). A struct without a name is said so."""
    target = btf.type(ptr.type) if ptr.type else btf.type(0)
    if prog_type in KPROBE_TYPES:
        for _ in range(MAX_RESOLVE_DEPTH):
            if target.kind not in MODIFIER_KINDS or target.kind == "typedef":
                break
            target = btf.type(target.type)
        if target.kind == "typedef" and target.name == KPROBE_CTX_TYPEDEF:
            return True
    target = skip_modifiers(btf, ptr.type) if ptr.type else btf.type(0)
    if target.kind != "struct":
        return False
    if not target.name:
        log.verbose(f"arg#{arg} struct doesn't have a name")
        return False
    return target.name in PROG_CTX_STRUCTS.get(prog_type, ())


def btf_prepare_func_args(env, start: int) -> list[SubprogArg] | None:
    """The arguments of the function at ``start``, or None where its prototype cannot be
    used (said in the log as the kernel says it; a static function's mostly silently)."""
    subprogs, btf, log = env.subprogs, env.prog.btf, env.log
    fi, _ = subprogs.func_info(start)
    if fi is None or btf is None:
        return None
    is_global = subprogs.is_global(start)
    name = subprogs.name(start)
    proto = subprogs.proto(start)
    if len(proto.params) > MAX_BPF_FUNC_REG_ARGS:
        if is_global:
            log.verbose(f"Global function {name}() with {len(proto.params)} > {MAX_BPF_FUNC_REG_ARGS} args. "
                        "Buggy compiler.")
        return None
    ret = skip_modifiers(btf, proto.type) if proto.type else btf.type(0)
    if ret.kind not in BTF_SCALAR_KINDS:
        if is_global:
            log.verbose(f"Global function {name}() doesn't return scalar. Only those are supported.")
        return None
    args = []
    for i, param in enumerate(proto.params):
        arg = _prepare_arg(env, btf, fi.type_id, i, param, is_global, name)
        if arg is None:
            return None
        args.append(arg)
    return args


def _prepare_arg(env, btf, func_id: int, i: int, param, is_global: bool, name: str) -> SubprogArg | None:
    log = env.log
    tags: set[str] = set()
    for tag in arg_tags(btf, func_id, i):
        if not is_global:
            log.verbose(f"arg#{i} type tag is not supported in static functions")
            return None
        if tag not in ARG_TAGS:
            log.verbose(f"arg#{i} has unsupported set of tags")
            return None
        tags.add(tag)
    t = skip_modifiers(btf, param.type)
    if t.kind == "ptr":
        if ARG_TAG_CTX in tags or btf_is_prog_ctx_type(log, env.prog.type, btf, t, i):
            if tags - {ARG_TAG_CTX}:
                log.verbose(f"arg#{i} has invalid combination of tags")
                return None
            return SubprogArg(ARG_PTR_TO_CTX)
        ref = skip_modifiers(btf, t.type) if t.type else btf.type(0)
        if ref.kind == "struct" and ref.name == DYNPTR_STRUCT:
            if tags:
                log.verbose(f"arg#{i} has invalid combination of tags")
                return None
            return SubprogArg(ARG_PTR_TO_DYNPTR)
        if ARG_TAG_TRUSTED in tags:
            if ARG_TAG_NONNULL in tags:
                log.verbose(f"arg#{i} has invalid combination of tags")
                return None
            return SubprogArg(ARG_PTR_TO_BTF_ID, nullable=ARG_TAG_NULLABLE in tags, btf_id=t.type)
        if ARG_TAG_UNTRUSTED in tags:
            if tags - {ARG_TAG_UNTRUSTED}:
                log.verbose(f"arg#{i} untrusted cannot be combined with any other tags")
                return None
            if ref.kind == "void" or ref.kind in BTF_SCALAR_KINDS or ref.kind == "float":
                return SubprogArg(ARG_PTR_TO_MEM, untrusted=True)
            return SubprogArg(ARG_PTR_TO_BTF_ID, untrusted=True, btf_id=t.type)
        if ARG_TAG_ARENA in tags:
            if tags - {ARG_TAG_ARENA}:
                log.verbose(f"arg#{i} arena cannot be combined with any other tags")
                return None
            return SubprogArg(ARG_PTR_TO_ARENA)
        if is_global:  # generic user data pointer
            if ARG_TAG_NULLABLE in tags:
                log.verbose(f"arg#{i} has invalid combination of tags")
                return None
            size = btf_resolve_size(btf, ref)
            if size is None:
                log.verbose(f"arg#{i} reference type('{btf_type_str(ref)} {ref.name or ''}') size cannot be "
                            f"determined: -{EINVAL}")
                return None
            return SubprogArg(ARG_PTR_TO_MEM, nullable=ARG_TAG_NONNULL not in tags, mem_size=size)
    if tags:
        log.verbose(f"arg#{i} has pointer tag, but is not a pointer type")
        return None
    if t.kind in BTF_SCALAR_KINDS:
        return SubprogArg(ARG_ANYTHING)
    if is_global:
        log.verbose(f"Arg#{i} type {btf_type_str(t)} in {name}() is not supported yet.")
    return None
