"""Calls and returns: ``check_helper_call`` (availability, each argument through
``check_func_arg``, the return value, references acquired and released),
``check_func_call`` (bpf-to-bpf calls, static and global functions; ``setup_func_entry``),
callbacks (``push_callback_call`` for bpf_loop and bpf_for_each_map_elem, whose
callback is visited until the states at the call converge; ``push_async_cb`` for a
timer's callback, walked on its own), ``prepare_func_exit`` and ``check_return_code``
(exits), and ``record_func_key`` (tail calls whose target is constant)."""

from __future__ import annotations

from dataclasses import dataclass

from ..elf.sections import BPF_F_SLEEPABLE
from ..isa import Insn
from ..isa import opcodes as op
from ..isa.helpers import HELPER_NAMES, BpfFunc, helper_name
from .btf_access import btf_struct_ids_match
from .btf_record import map_timer_off
from .func_args import ARG_ANYTHING, ARG_PTR_TO_CTX, btf_prepare_func_args
from .helper_availability import AVAILABLE
from .helper_protos import (
    CHANGES_PKT_DATA,
    MIGHT_SLEEP,
    helper_allowed,
    helper_proto,
    trampoline_helper,
)
from .kfuncs import check_kfunc_call, check_reference_leak
from .log import Reject
from .lsm import (
    LSM_CGROUP,
    bpf_lsm_get_retval_range,
    hook_returns_void,
    lsm_helper_allowed,
    lsm_helper_available,
)
from .map_func_compat import check_map_func_compatibility
from .mem import (
    BPF_F_RDONLY_PROG,
    check_ctx_pointer_unmodified,
    check_map_access,
    check_packet_access,
    check_ptr_alignment,
    stack_frame,
)
from .precision import BacktrackState, mark_chain_precision, mark_chain_precision_batch
from .regstate import (
    CONST_PTR_TO_MAP,
    PACKET_TYPES,
    PTR_TO_BTF_ID,
    PTR_TO_CTX,
    PTR_TO_FUNC,
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
    SOCK_TYPES,
    Reg,
    scalar_reg,
)
from .scalar import S64_MAX, S64_MIN, Scalar
from .state import INVALID, MAX_BPF_STACK, MISC, SPILL, ZERO, Frame, Slot, State, format_frame
from .tnum import s64

MAX_CALL_FRAMES = 8
CALLER_SAVED = range(1, 6)
BPF_REG_FP = 10
MAX_ERRNO = 4095
# a size argument this large or more is "unbounded"
BPF_MAX_VAR_SIZ = 1 << 29
BPF_REG_SIZE = 8
PROG_ARRAY = "prog_array"
UNMODELLED = "unmodelled:"
# argument kinds that also take NULL
NULLABLE = {"mem_or_null": "mem", "value_or_null": "value", "sock_common_or_null": "sock_common",
            "stack_or_null": "stack"}
SOCK_COMMON = "sock_common"
SOCK_COMMON_RELEASE = "sock_common_release"  # ARG_PTR_TO_BTF_ID_SOCK_COMMON | OBJ_RELEASE
SOCK_COMMON_PTR = "sock_common_ptr"  # ARG_PTR_TO_SOCK_COMMON
SOCK_PTR_EXPECTED = "sock_common, sock, tcp_sock, xdp_sock"
# the helpers whose result holds a new reference (is_acquire_function), or the reference of
# their socket argument (is_ptr_cast_function)
ACQUIRE_FUNCS = (BpfFunc.sk_lookup_tcp, BpfFunc.sk_lookup_udp, BpfFunc.skc_lookup_tcp, BpfFunc.ringbuf_reserve)
PTR_CAST_FUNCS = (BpfFunc.tcp_sock, BpfFunc.sk_fullsock, BpfFunc.skc_to_tcp_sock, BpfFunc.skc_to_tcp6_sock,
                  BpfFunc.skc_to_udp6_sock, BpfFunc.skc_to_tcp_timewait_sock, BpfFunc.skc_to_tcp_request_sock)
# socket returns (RET_PTR_TO_SOCKET_OR_NULL and the like): their register type
SOCKET_RETURNS = {"sock_or_null": PTR_TO_SOCKET, "tcp_sock_or_null": PTR_TO_TCP_SOCK,
                  "sock_common_or_null": PTR_TO_SOCK_COMMON}
FIXED_U64 = "fixed_u64"
# helpers returning a length at most their buffer's size, or -errno (do_refine_retval_range)
STR_HELPERS = (BpfFunc.probe_read_str, BpfFunc.probe_read_user_str, BpfFunc.probe_read_kernel_str,
               BpfFunc.get_stack, BpfFunc.get_task_stack)
ARRAY_MAPS = ("array", "percpu_array")
SOCK_MAPS = ("sockmap", "sockhash")
BTF_ID_EXPECTED = "ptr_, trusted_ptr_, rcu_ptr_"
SOCK_COMMON_EXPECTED = "sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_"
HELPER_MEM_EXPECTED = "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_"


@dataclass
class CallArgMeta:
    """``struct bpf_call_arg_meta``: what the arguments of one helper call told."""

    func_id: int
    map: object = None  # the map argument's definition
    const_key: int | None = None  # the key's value, when the stack holds a known constant
    alloc_size: int = 0
    size_max: int | None = None  # the largest value of the last size argument
    release_ref: int = 0  # the reference an argument gives back (ringbuf submit/discard)
    subprogno: int = 0  # the callback an ARG_PTR_TO_FUNC argument names
    ref_obj_id: int = 0  # the reference an argument holds (a cast of it holds the same)


def check_helper_call(env, state: State, insn: Insn, i: int) -> int:
    func_id = insn.imm
    name = helper_name(func_id)
    if func_id not in HELPER_NAMES or func_id <= 0:
        raise Reject(f"invalid func unknown#{func_id}")
    prog = env.prog
    if not helper_available(prog, func_id):
        raise Reject(f"program of this type cannot use helper {name}#{func_id}")
    proto = helper_proto(env.prog.type, func_id)
    if proto is None:
        raise Reject(f"bpfnb does not model helper {name}#{func_id}")
    if not (lsm_helper_allowed(prog, func_id) if prog.type == "lsm" else helper_allowed(prog, func_id)):
        raise Reject("helper call is not allowed in probe")
    sleepable = bool(prog.prog_flags & BPF_F_SLEEPABLE)
    if func_id in MIGHT_SLEEP:
        if not sleepable:
            raise Reject("helper call might sleep in a non-sleepable prog")
        if state.active_rcu_lock:
            raise Reject(f"sleepable helper {name}#{func_id} in rcu_read_lock region")
    if func_id == BpfFunc.set_retval and prog.type == "lsm" and prog.expected_attach_type == LSM_CGROUP \
            and hook_returns_void(prog):
        raise Reject("BPF_LSM_CGROUP that attach to void LSM hooks can't modify return value!")
    meta = CallArgMeta(func_id)
    for k, kind in enumerate(proto.args):
        check_func_arg(env, state, k + 1, kind, meta)
    record_func_map(meta)
    check_map_func_compatibility(meta.map, func_id)
    if meta.release_ref:
        release_reference(state, meta.release_ref)
    r0 = helper_return(env, proto, meta)
    if func_id in PTR_CAST_FUNCS:
        r0.ref_obj_id = meta.ref_obj_id
    elif is_acquire_function(func_id, meta.map):  # acquire_reference_state: R0's id is the reference's
        r0.id = r0.ref_obj_id = env.new_id()
        state.refs = (*state.refs, (r0.id, i))
    if func_id == BpfFunc.tail_call:
        record_func_key(env, state, i)
    if func_id == BpfFunc.for_each_map_elem:
        push_callback_call(env, state, i, meta.subprogno, set_map_elem_callback_state)
    elif func_id == BpfFunc.timer_set_callback:
        push_async_cb(env, state, i, meta)
    elif func_id == BpfFunc.loop:
        check_bpf_loop(env, state, i, meta.subprogno)
    for r in CALLER_SAVED:
        state.regs[r] = Reg()
        env.log.scratch_regs.add(r)
    state.regs[0] = r0
    env.log.scratch_regs.add(0)
    # a tail call that fails changes nothing (6.18.44 checks the one that succeeds at the caller)
    if func_id in CHANGES_PKT_DATA and func_id != BpfFunc.tail_call:
        clear_all_pkt_pointers(state)
    env.record(state, i, "call", f"{name}#{func_id}")
    if func_id == BpfFunc.tail_call and len(state.frames) > 1:
        # the tail call that succeeds in a static function: the called program's int comes
        # back to this function's caller
        return hidden_subprog_exit(env, state, i, scalar_reg(Scalar.unknown()), moves_packet=True)
    return i + 1


def helper_available(prog, func_id: int) -> bool:
    """``get_func_proto`` of the program's type gives the helper (the kernel's own answer per
    type, ``helper_availability``; an LSM program's from ``bpf_lsm_func_proto``)."""
    if prog.type == "lsm":
        return lsm_helper_available(prog, func_id, AVAILABLE["tracing"])
    allowed = AVAILABLE.get(f"{prog.type}:{prog.expected_attach_type}", AVAILABLE.get(prog.type))
    return allowed is None or func_id in allowed or trampoline_helper(prog, func_id)


def clear_all_pkt_pointers(state: State) -> None:
    """Every packet pointer of every frame, in a register or spilled, becomes a number
    (``mark_reg_invalid``: root may keep it as an unknown scalar); a spill stays a spill."""
    for frame in state.frames:
        for k, reg in enumerate(frame.regs):
            if reg.type in PACKET_TYPES:
                frame.regs[k] = scalar_reg()
        for slot in frame.stack.values():
            if slot.is_spill and slot.spilled is not None and slot.spilled.type in PACKET_TYPES:
                slot.spilled = scalar_reg()


# the helpers that change a map's contents (refused for maps the program may only read)
MAP_WRITERS = (BpfFunc.map_delete_elem, BpfFunc.map_update_elem, BpfFunc.map_push_elem, BpfFunc.map_pop_elem)


def is_acquire_function(func_id: int, map_def) -> bool:
    """The helpers whose result holds a reference: socket lookups, a ring buffer reservation,
    and a lookup in a map of sockets."""
    return func_id in ACQUIRE_FUNCS or (func_id == BpfFunc.map_lookup_elem and map_def is not None
                                        and map_def.type in SOCK_MAPS)


def record_func_map(meta: CallArgMeta) -> None:
    if meta.map is not None and meta.map.flags & BPF_F_RDONLY_PROG and meta.func_id in MAP_WRITERS:
        raise Reject("write into map forbidden")


def release_reference(state: State, ref_obj_id: int) -> None:
    """The reference goes, and every copy of a released pointer becomes a plain number (root
    may keep the address)."""
    state.refs = tuple(r for r in state.refs if r[0] != ref_obj_id)
    for frame in state.frames:
        for k, reg in enumerate(frame.regs):
            if reg.ref_obj_id == ref_obj_id:
                frame.regs[k] = scalar_reg()
        for slot in frame.stack.values():
            if slot.spilled is not None and slot.spilled.ref_obj_id == ref_obj_id:
                slot.spilled = scalar_reg()


def record_func_key(env, state: State, i: int) -> None:
    """A tail call's map and key, remembered while every visit agrees (the kernel's
    ``map_key_state``: such a call becomes a direct, patchable jump)."""
    m, key = state.regs[2].map, state.regs[3]
    const = key.type == SCALAR and key.s.var_off.is_const and m is not None \
        and key.s.var_off.value < m.max_entries
    seen = (m, key.s.var_off.value) if const else None
    if const:  # the call may become a direct jump: the key's value matters
        mark_chain_precision(env, state, 3)
    if i not in env.tail_call_keys:
        env.tail_call_keys[i] = seen
    elif env.tail_call_keys[i] != seen:
        env.tail_call_keys[i] = None


def helper_return(env, proto, meta: CallArgMeta) -> Reg:
    """R0 after the call, from the prototype's return kind and what the arguments told."""
    if proto.ret == "void":  # nothing comes back: R0 may not be read (bpf_tail_call when it falls through)
        return Reg()
    if proto.ret.startswith(UNMODELLED):
        raise Reject(f"bpfnb does not model what {helper_name(meta.func_id)}#{meta.func_id} returns "
                     f"({proto.ret[len(UNMODELLED):]})")
    if proto.ret == "map_value":  # a map's own storage, always there
        return Reg(PTR_TO_MAP_VALUE, Scalar.const(0), map=meta.map)
    if proto.ret == "map_value_or_null":
        m = meta.map
        if m is not None and m.type in ARRAY_MAPS and meta.const_key is not None and meta.const_key < m.max_entries:
            return Reg(PTR_TO_MAP_VALUE, Scalar.const(0), map=m)  # an array slot that exists: never NULL
        # an xskmap's or sockmap's value is a socket once the NULL check passes (mark_ptr_or_null_reg)
        return Reg(PTR_TO_MAP_VALUE, Scalar.const(0), map=m, maybe_null=True, id=env.new_id())
    if proto.ret in SOCKET_RETURNS:
        return Reg(SOCKET_RETURNS[proto.ret], Scalar.const(0), maybe_null=True, id=env.new_id())
    if proto.ret == "ringbuf_mem_or_null":  # its reference is the caller's to acquire (is_acquire_function)
        return Reg(PTR_TO_MEM, Scalar.const(0), maybe_null=True, ringbuf=True, id=env.new_id(),
                   mem_size=meta.alloc_size)
    if meta.func_id in STR_HELPERS and meta.size_max is not None:  # [-MAX_ERRNO, size]
        s = Scalar.unknown()
        s.smin, s.smax, s.s32_min, s.s32_max = -MAX_ERRNO, meta.size_max, -MAX_ERRNO, meta.size_max
        return scalar_reg(s.sync())
    if meta.func_id == BpfFunc.get_smp_processor_id:  # [0, nr_cpu_ids - 1]
        from ..kernel.maps import possible_cpus

        s = Scalar.unknown()
        s.umax = s.u32_max = possible_cpus() - 1
        return scalar_reg(s.sync())
    if proto.ret.startswith("btf:"):
        btf = env.prog.kernel_btf
        return Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=btf, btf_id=btf.find(proto.ret[4:], "struct"), trusted=True)
    if proto.ret.startswith("btf_or_null:"):  # RET_PTR_TO_BTF_ID_OR_NULL: neither trusted nor untrusted
        btf = env.prog.kernel_btf
        return Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=btf, btf_id=btf.find(proto.ret[12:], "struct"),
                   maybe_null=True, id=env.new_id())
    return scalar_reg()


def format_type(reg: Reg) -> str:
    return reg.type_name()


def check_func_arg(env, state: State, regno: int, kind: str, meta: CallArgMeta) -> None:
    """One argument register against its prototype kind (``enum bpf_arg_type``)."""
    regs = state.regs
    if kind.startswith(UNMODELLED):
        raise Reject(f"bpfnb does not model {kind[len(UNMODELLED):]} arguments (R{regno} of "
                     f"{helper_name(meta.func_id)}#{meta.func_id})")
    reg = env.read_reg(state, regno)
    if kind == "any":
        return
    if reg.ref_obj_id and kind != "ringbuf_mem":
        meta.ref_obj_id = reg.ref_obj_id
    if kind in NULLABLE:
        if reg.type == SCALAR and reg.s.var_off.equals_const(0):  # NULL: nothing to check
            mark_chain_precision(env, state, regno)
            return
        kind = NULLABLE[kind]
    if kind == "map":
        if reg.type != CONST_PTR_TO_MAP:
            raise Reject(f"R{regno} type={format_type(reg)} expected=map_ptr")
        if meta.map is not None and meta.map is not reg.map:  # bpf_timer_init: the timer's own map
            raise Reject(f"timer pointer in R1 map_uid=0 doesn't match map pointer in R{regno} map_uid=0")
        meta.map = reg.map
        if meta.func_id == BpfFunc.tail_call and reg.map.type != PROG_ARRAY:
            # Linux 6.18 prints this without a newline: the next log line runs on
            raise Reject("expected prog array map for tail call", continues=True)
    elif kind in ("key", "value"):
        if meta.map is None:
            raise Reject(f"invalid map_ptr to access map->{kind}")
        size = meta.map.key_size if kind == "key" else meta.map.value_size
        check_helper_mem_access(env, state, regno, reg, size, write=False)
        if kind == "key" and meta.map.type in ARRAY_MAPS:  # can_elide_value_nullness
            meta.const_key = get_constant_map_key(env, state, reg, size)
    elif kind in ("uninit_mem", "mem", "rw_mem"):
        size_reg = regs[regno + 1] if regno + 1 <= 5 else None
        size = size_reg.s.umax if size_reg is not None and size_reg.type == SCALAR else 0
        # check_mem_size_reg: a size not known exactly gives up raw mode, so the memory is
        # checked (and on the stack read) up to the largest size, and clobbered unscratched
        raw_mode = kind == "uninit_mem" and (size_reg is None or size_reg.s.var_off.is_const)
        check_helper_mem_access(env, state, regno, reg, size, write=(kind != "mem"), raw_mode=raw_mode,
                                reads=not raw_mode)
    elif kind in ("size", "size_or_zero", "alloc_size"):
        if reg.type != SCALAR:
            raise Reject(f"R{regno} type={format_type(reg)} expected=scalar")
        if kind == "size" and reg.s.umin == 0 and reg.s.umax == 0:
            raise Reject(f"R{regno} invalid zero-sized read: u64=[0,0]")
        if reg.s.smin < 0:
            raise Reject(f"R{regno} min value is negative, either use unsigned or 'var &= const'")
        if reg.s.umax >= BPF_MAX_VAR_SIZ:
            raise Reject(f"R{regno} unbounded memory access, use 'var &= const' or 'if (var < const)'")
        if kind == "alloc_size":
            meta.alloc_size = reg.s.umax
        meta.size_max = reg.s.umax
        mark_chain_precision(env, state, regno)  # the access was checked with its bounds
    elif kind in (SOCK_COMMON, SOCK_COMMON_RELEASE):
        # ARG_PTR_TO_BTF_ID_SOCK_COMMON: a socket pointer, or struct sock_common (or one starting with it)
        socket = reg.type in SOCK_TYPES and not reg.maybe_null
        if not socket and (reg.type != PTR_TO_BTF_ID or reg.untrusted or reg.maybe_null or reg.rcu):
            raise Reject(f"R{regno} type={format_type(reg)} expected={SOCK_COMMON_EXPECTED}")
        if not socket:
            check_btf_id_arg(env, regno, reg, SOCK_COMMON)
        if kind == SOCK_COMMON_RELEASE:  # OBJ_RELEASE: the argument gives its reference back
            if not reg.ref_obj_id:
                raise Reject(f"R{regno} must be referenced when passed to release function")
            meta.release_ref = reg.ref_obj_id
    elif kind == SOCK_COMMON_PTR:  # ARG_PTR_TO_SOCK_COMMON
        if reg.type not in SOCK_TYPES or reg.maybe_null:
            raise Reject(f"R{regno} type={format_type(reg)} expected={SOCK_PTR_EXPECTED}")
    elif kind == "ctx":
        if reg.type != PTR_TO_CTX:
            raise Reject(f"R{regno} type={format_type(reg)} expected=ctx")
    elif kind == "timer":
        if reg.type != PTR_TO_MAP_VALUE or reg.maybe_null:
            raise Reject(f"R{regno} type={format_type(reg)} expected=map_value")
        process_timer_func(env, regno, reg, meta)
    elif kind == "func":
        if reg.type != PTR_TO_FUNC:
            raise Reject(f"R{regno} type={format_type(reg)} expected=func")
        meta.subprogno = reg.subprogno
    elif kind == "stack":
        if reg.type != PTR_TO_STACK:
            raise Reject(f"R{regno} type={format_type(reg)} expected=fp")
    elif kind.startswith("btf:"):
        if reg.type != PTR_TO_BTF_ID or reg.untrusted or reg.maybe_null:
            raise Reject(f"R{regno} type={format_type(reg)} expected={BTF_ID_EXPECTED}")
        check_btf_id_arg(env, regno, reg, kind[4:])
    elif kind == FIXED_U64:  # ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT | MEM_WRITE | MEM_ALIGNED, 8 bytes
        check_helper_mem_access(env, state, regno, reg, BPF_REG_SIZE, write=True)
        check_ptr_alignment(reg, 0, BPF_REG_SIZE, True)
    elif kind == "ringbuf_mem":
        if reg.type != PTR_TO_MEM or reg.maybe_null or not reg.ringbuf:
            raise Reject(f"R{regno} type={format_type(reg)} expected=ringbuf_mem")
        meta.release_ref = reg.ref_obj_id


def process_timer_func(env, regno: int, reg: Reg, meta: CallArgMeta) -> None:
    """An ARG_PTR_TO_TIMER: the struct bpf_timer of a map value, at its constant offset."""
    m = reg.map
    if not reg.s.var_off.is_const:
        raise Reject(f"R{regno} doesn't have constant offset. bpf_timer has to be at the constant offset")
    if not m.value_type_id or getattr(env.prog, "btf", None) is None:
        raise Reject(f"map '{m.name}' has to have BTF in order to use bpf_timer")
    timer_off = map_timer_off(env.prog, m)
    if timer_off is None:
        raise Reject(f"map '{m.name}' has no valid bpf_timer")
    at = s64(reg.s.var_off.value) + reg.off
    if at != timer_off:
        raise Reject(f"off {at} doesn't point to 'struct bpf_timer' that is at {timer_off}")
    meta.map = m


def check_btf_id_arg(env, regno: int, reg: Reg, wanted: str) -> None:
    """``check_reg_type``'s struct match for a BTF-typed argument: the pointer's struct, or
    one found by walking first members (``btf_struct_ids_match``); the walk's complaint, if
    any, comes first in the log."""
    btf = reg.btf
    found, complaint = btf_struct_ids_match(btf, reg.btf_id, reg.off, btf.find(wanted, "struct"))
    if not found:
        got = btf.type(reg.btf_id).name
        lines = [complaint] if complaint else []
        raise Reject("\n".join([*lines, f"R{regno} is of type {got} but {wanted} is expected"]))


def check_helper_mem_access(env, state: State, regno: int, reg: Reg, size: int, *, write: bool,
                            raw_mode: bool = True, reads: bool | None = None) -> None:
    """Memory a helper (or kfunc) reads or writes. A helper's uninitialized-memory argument
    (``raw_mode``) is written byte by byte as stores are (``check_mem_access``: the slots
    show as scratched); other writes clobber the stack in ``check_stack_range_initialized``,
    which marks nothing for the log. ``reads``: the helper also reads the memory (by
    default when it does not write it; ``ARG_PTR_TO_MEM | MEM_WRITE`` does both)."""
    if reads is None:
        reads = not write
    t = reg.type
    if t == PTR_TO_STACK:
        base = reg.off + s64(reg.s.value) if reg.s.var_off.is_const else reg.off
        if base < -MAX_BPF_STACK or base + size > 0:
            raise Reject(f"invalid {'write to' if write else 'read from'} stack R{regno} off={base} size={size}")
        frame = stack_frame(state, reg)
        if reads:  # check_stack_range_initialized: every slot the helper may read is read
            lo, hi = (base, base + size) if reg.s.var_off.is_const else \
                (reg.s.smin + reg.off, reg.s.smax + reg.off + size)
            read = 0
            for addr in range(lo, hi):
                read |= 1 << ((-addr - 1) // BPF_REG_SIZE)
            if read:
                env.live_stack.mark_read(state, frame.frameno, env.insn_idx, read)
        for addr in range(base, base + size):
            spi = (-addr - 1) // BPF_REG_SIZE
            slot = frame.stack.setdefault(spi, Slot())
            if write:
                if raw_mode:
                    env.log.scratch_slots.add(spi)
                if slot.is_spill:  # a byte written over a spill scrubs the whole slot (check_stack_write)
                    slot.types = [MISC if x != INVALID else x for x in slot.types]
                    slot.spilled = None
                slot.types[(-addr - 1) % BPF_REG_SIZE] = MISC
        env.update_stack_depth(-base, frame)  # bytes a helper writes count, as grow_stack_state does
        return
    if t == PTR_TO_MAP_VALUE and not reg.maybe_null:
        check_map_access(regno, reg, reg.off, max(size, 1), write, timer_off=map_timer_off(env.prog, reg.map))
        return
    if t in (PTR_TO_PACKET, PTR_TO_PACKET_META):  # its two lines, as a load's (check_packet_access)
        check_packet_access(regno, reg, reg.off, size, zero_size_ok=True)
        return
    if t == PTR_TO_MEM and not reg.maybe_null:
        return
    raise Reject(f"R{regno} type={format_type(reg)} expected={HELPER_MEM_EXPECTED}")


def get_constant_map_key(env, state: State, reg: Reg, size: int) -> int | None:
    """The key's value when the stack holds it as a known constant: zeroed bytes, or
    a spilled constant of the key's size (then relied on: the slot becomes precise)."""
    if reg.type != PTR_TO_STACK or not reg.s.var_off.is_const:
        return None
    slot_index = -(reg.off + s64(reg.s.value)) - 1
    spi, off = slot_index // BPF_REG_SIZE, slot_index % BPF_REG_SIZE
    frame = state.frames[reg.frameno] if reg.frameno < len(state.frames) else state.frame
    slot = frame.stack.get(spi, Slot())
    if _run_of(slot.types, off, ZERO) >= size:
        return 0
    spilled = slot.spilled
    if not slot.is_spill or spilled is None or spilled.type != SCALAR:
        return None
    if _run_of(slot.types, off, SPILL) != size or not spilled.s.var_off.is_const:
        return None
    bt = BacktrackState(len(state.frames) - 1)
    bt.set_slot(frame.frameno, spi)
    mark_chain_precision_batch(env, state, bt)
    return spilled.s.value


def _run_of(types: list[str], off: int, kind: str) -> int:
    """How many bytes from ``off`` towards the slot's start are ``kind``."""
    n = 0
    while off - n >= 0 and types[off - n] == kind:
        n += 1
    return n


def check_func_call(env, state: State, insn: Insn, i: int) -> int:
    target = i + insn.imm + 1
    if len(state.frames) >= MAX_CALL_FRAMES:
        raise Reject(f"the call stack of {len(state.frames)} frames is too deep")
    caller = state.frame
    subprogs = env.subprogs
    if subprogs.is_global(target):
        env.called_globals.add(target)  # verified on its own after the main program
        env.log.verbose(f"Func#{subprogs.index(target)} ('{subprogs.name(target)}') is global and assumed valid.")
        if target in env.changes_pkt_data:  # it may have moved the packet
            clear_all_pkt_pointers(state)
        clear_caller_saved_regs(caller)
        caller.regs[0] = scalar_reg()
        env.log.scratch_regs.add(0)
        env.record(state, i, "call", f"global function {subprogs.name(target)}")
        return i + 1
    btf_check_subprog_call(env, caller, target)
    callee = setup_func_entry(state, i, target)
    for r in CALLER_SAVED:  # set_callee_state: the arguments
        callee.regs[r] = caller.regs[r].copy()
    clear_caller_saved_regs(caller)
    env.live_stack.reset_callchain()
    if env.log.level >= 2:
        env.log.verbose("caller:")
        env.log.verbose(format_frame(caller))
        env.log.verbose("callee:")
        env.log.verbose(format_frame(callee))
    env.record(state, i, "call", f"call to insn {target}")
    env.log.scratch_regs = set(CALLER_SAVED) | {BPF_REG_FP}
    env.log.scratch_slots = set()
    return target


def clear_caller_saved_regs(caller: Frame) -> None:
    """R0-R5 of the caller are not readable after a call (the callee's R0 comes back
    into the caller's on return)."""
    caller.regs[0] = Reg()
    for r in CALLER_SAVED:
        caller.regs[r] = Reg()


def setup_func_entry(state: State, callsite: int, subprog: int) -> Frame:
    """A new innermost frame for the function at ``subprog`` called from ``callsite``: only
    its frame pointer set (the arguments are the caller's to give)."""
    if len(state.frames) >= MAX_CALL_FRAMES:
        raise Reject(f"the call stack of {len(state.frames) + 1} frames is too deep")
    frameno = len(state.frames)
    callee = Frame(frameno=frameno, callsite=callsite, subprog=subprog)
    callee.regs[BPF_REG_FP] = Reg(PTR_TO_STACK, Scalar.const(0), frameno=frameno)
    state.frames.append(callee)
    return callee


# -- callbacks: helpers that call a function of the program -------------------------------
CALLBACK_RET_RANGE = (0, 1)  # what a callback of bpf_loop and the like returns (continue or stop)
# map types whose elements bpf_for_each_map_elem can walk (``map_for_each_callback``)
FOR_EACH_MAP_TYPES = ("array", "percpu_array", "hash", "percpu_hash", "lru_hash", "lru_percpu_hash")
# bpf_loop inlined (flags 0, one callback): three 8-byte slots more for its counters
BPF_LOOP_INLINE_SLOTS = 3


def push_callback_call(env, state: State, i: int, subprogno: int, set_callee_state) -> None:
    """Queue a visit of the callback, in a new frame whose arguments ``set_callee_state``
    gives, from a copy of the state at the call: when the callback returns, the walk
    comes back to the call and may queue another visit (``prepare_func_exit``)."""
    target = env.subprogs.starts[subprogno]
    btf_check_subprog_call(env, state.frame, target)
    callback_state = state.copy()
    caller = callback_state.frame
    callee = setup_func_entry(callback_state, i, target)
    callee.in_callback_fn = True
    set_callee_state(env, caller, callee)
    callback_state.callback_unroll_depth += 1
    caller.callback_depth += 1
    state.frame.callback_depth = 0
    env.push_stack(callback_state, target, i)
    env.log.mark_verifier_state_scratched()  # init_func_state: the next print shows every register and slot


def push_async_cb(env, state: State, i: int, meta: CallArgMeta) -> None:
    """A timer's callback runs later, on its own: a walk of it starts afresh (one frame,
    ``callback_fn(map, key, value)``: ``set_timer_callback_state``) and must return 0."""
    target = env.subprogs.starts[meta.subprogno]
    btf_check_subprog_call(env, state.frame, target)
    callee = Frame(subprog=target, in_async_callback_fn=True, async_entry_cnt=state.frame.async_entry_cnt + 1)
    callee.regs[BPF_REG_FP] = Reg(PTR_TO_STACK, Scalar.const(0))
    m = meta.map
    callee.regs[1] = Reg(CONST_PTR_TO_MAP, Scalar.const(0), map=m)
    callee.regs[2] = Reg(PTR_TO_MAP_KEY, Scalar.const(0), map=m)
    callee.regs[3] = Reg(PTR_TO_MAP_VALUE, Scalar.const(0), map=m, id=env.new_id())
    env.push_stack(State([callee]), target, i, async_cb=True)
    env.log.mark_verifier_state_scratched()  # init_func_state: the next print shows every register and slot


def set_loop_callback_state(env, caller: Frame, callee: Frame) -> None:
    """``callback_fn(u32 index, void *callback_ctx)`` of ``bpf_loop(nr_loops, callback_fn,
    callback_ctx, flags)``."""
    callee.regs[1] = scalar_reg()
    callee.regs[2] = caller.regs[3].copy()


def set_map_elem_callback_state(env, caller: Frame, callee: Frame) -> None:
    """``callback_fn(map, key, value, callback_ctx)`` of ``bpf_for_each_map_elem(map,
    callback_fn, callback_ctx, flags)``."""
    m = caller.regs[1].map
    if m.type not in FOR_EACH_MAP_TYPES:
        raise Reject("callback function not allowed for map")
    callee.regs[1] = caller.regs[1].copy()
    callee.regs[2] = Reg(PTR_TO_MAP_KEY, Scalar.const(0), map=m)
    callee.regs[3] = Reg(PTR_TO_MAP_VALUE, Scalar.const(0), map=m, id=env.new_id())  # 6.18 numbers it
    callee.regs[4] = caller.regs[3].copy()


def check_bpf_loop(env, state: State, i: int, subprogno: int) -> None:
    """Visit the callback again while this call made fewer visits than R1 may ask for."""
    update_loop_inline_state(env, state, i, subprogno)
    mark_chain_precision(env, state, 1)
    frame = state.frame
    if frame.callback_depth < state.regs[1].s.umax:
        push_callback_call(env, state, i, subprogno, set_loop_callback_state)
    else:
        frame.callback_depth = 0
        if env.log.level >= 2:
            env.log.verbose(f"frame{len(state.frames) - 1} bpf_loop iteration limit reached")


def update_loop_inline_state(env, state: State, i: int, subprogno: int) -> None:
    """A bpf_loop call is inlined when, on every visit, its flags are 0 and its callback the same."""
    flags = state.regs[4]
    zero = flags.type == SCALAR and flags.s.var_off.equals_const(0)
    if zero:
        mark_chain_precision(env, state, 4)
    fit, seen = env.loop_inline_state.get(i, (True, subprogno))
    env.loop_inline_state[i] = (fit and zero and seen == subprogno, subprogno)


def optimize_bpf_loop(env) -> None:
    """The stack an inlined bpf_loop call adds to its function (after the walk, before the
    figures are printed, as the kernel's rewrite does)."""
    grown = {env.subprogs.of(i) for i, (fit, _) in env.loop_inline_state.items() if fit}
    for sub in grown:
        depth = env.sub_stack_depth.get(sub, 0)
        env.sub_stack_depth[sub] = (depth + BPF_REG_SIZE - 1) // BPF_REG_SIZE * BPF_REG_SIZE \
            + BPF_LOOP_INLINE_SLOTS * BPF_REG_SIZE


def check_callback_return(env, state: State, i: int, r0: Reg) -> None:
    """A callback returns a scalar in ``CALLBACK_RET_RANGE``."""
    if r0.type != SCALAR:
        raise Reject("R0 not a scalar value")
    mark_chain_precision(env, state, 0)
    lo, hi = CALLBACK_RET_RANGE
    if r0.s.smin < lo or r0.s.smax > hi:
        raise Reject(verbose_invalid_scalar(r0, CALLBACK_RET_RANGE, "At callback return", "R0"))


def verbose_invalid_scalar(reg: Reg, wanted: tuple[int, int], where: str, name: str) -> str:
    """``At callback return the register R0 has smin=2 smax=2 should have been in [0, 1]``."""
    has = ""
    if reg.s.smin > S64_MIN:
        has += f" smin={reg.s.smin}"
    if reg.s.smax < S64_MAX:
        has += f" smax={reg.s.smax}"
    lo, hi = wanted
    return f"{where} the register {name} has{has or ' unknown scalar value'} should have been in [{lo}, {hi}]"


# The kernel widens the scalars no decision depended on, which it learns by backtracking
# every decision to the values it came from (mark_chain_precision). Off while bpfnb's
# precision was one step deep (widening then forgot values the kernel keeps); on since
# precision backtracks through the jump history and the kept states as the kernel's does:
# the callback fixtures' logs, processed counts and states equal the kernel's with it.
WIDEN_IMPRECISE_SCALARS = True


def widen_imprecise_scalars(env, state: State, insn_idx: int) -> None:
    """Back at a callback's call site: a scalar that changed since the state kept there on
    this path, and whose value decided nothing, becomes unknown (so visits converge)."""
    callsites = [f.callsite for f in state.frames]
    prev = env.explored.checkpoints
    while prev is not None and not (prev.insn_idx == insn_idx and
                                    [f.callsite for f in prev.state.frames] == callsites):
        prev = prev.parent
    if prev is None:
        return
    for fold, fcur in zip(prev.state.frames, state.frames, strict=True):
        pairs = list(zip(fold.regs, fcur.regs, strict=True))
        for spi, slot in fold.stack.items():
            cur_slot = fcur.stack.get(spi)
            if slot.is_spill and slot.spilled is not None and cur_slot is not None and cur_slot.is_spill \
                    and cur_slot.spilled is not None:
                pairs.append((slot.spilled, cur_slot.spilled))
        for old, cur in pairs:
            if old.type != SCALAR or cur.type != SCALAR or old.precise or cur.precise:
                continue
            if old.s != cur.s or old.id != cur.id or old.off != cur.off:
                cur.s, cur.id, cur.off = Scalar.unknown(), 0, 0


def btf_check_subprog_call(env, caller, target: int) -> None:
    """The kernel compares a static function's arguments with its BTF prototype
    (``btf_check_func_arg_match``) and says so when they do not match (verification
    goes on); a prototype it cannot use or a mismatch makes the function's BTF
    unreliable, and later calls are not compared again."""
    if env.subprogs.proto(target) is None or target in env.unreliable_subprogs:
        return
    args = btf_prepare_func_args(env, target)
    if args is None:
        env.unreliable_subprogs.add(target)
        return
    for k, arg in enumerate(args):
        regno = k + 1
        reg = caller.regs[regno]
        if arg.type == ARG_ANYTHING and reg.type != SCALAR:
            env.log.verbose(f"R{regno} is not a scalar")
        elif arg.type == ARG_PTR_TO_CTX and not _ctx_arg_matches(env, reg, regno, k):
            pass
        else:
            continue
        env.unreliable_subprogs.add(target)
        return


def _ctx_arg_matches(env, reg: Reg, regno: int, k: int) -> bool:
    """``check_func_arg_reg_off`` for a context argument (its offsets, when it is the
    context: other kinds here are checked only for their type), then its type."""
    if reg.type == PTR_TO_CTX:
        try:
            check_ctx_pointer_unmodified(reg, regno)
        except Reject as exc:
            env.log.verbose(str(exc))
            return False
    if reg.type != PTR_TO_CTX:
        env.log.verbose(f"arg#{k} expects pointer to ctx")
        return False
    return True


def check_exit(env, state: State, i: int) -> int | None:
    """``BPF_EXIT``: back to the caller (``prepare_func_exit``) or the program's end
    (``check_return_code``); the next instruction, or None when the path ended."""
    if len(state.frames) > 1:  # R0 goes back as it is, even unset (the caller may not read it)
        env.log.scratch_regs.add(0)
        env.live_stack.update(state)
        return prepare_func_exit(env, state, i, state.regs[0])
    check_reference_leak(state)
    if env.validating_subprog or state.frame.in_async_callback_fn or not attach_func_returns_void(env.prog):
        check_return_code(env, state, env.read_reg(state, 0), state.frame)
    env.record(state, i, "exit")
    return None


def attach_func_proto(prog):
    """``prog->aux->attach_func_proto`` of a struct_ops program: the prototype of the
    kernel struct's member it implements (None when the kernel BTF does not say)."""
    btf = prog.kernel_btf
    if prog.type != "struct_ops" or btf is None or not prog.attach_btf_id:
        return None
    member = next((m for m in btf.type(prog.attach_btf_id).members if m.name == prog.attach_name), None)
    if member is None:
        return None
    ptr = btf.type(btf.resolve(member.type))
    proto = btf.type(btf.resolve(ptr.type)) if ptr.kind == "ptr" else None
    return proto if proto is not None and proto.kind == "func_proto" else None


def attach_func_returns_void(prog) -> bool:
    """A struct_ops member or an LSM hook (``lsm/``, not ``lsm_cgroup/``) returning void: the
    program's exit reads no R0 (``check_return_code``)."""
    if prog.type == "lsm":
        return prog.expected_attach_type != LSM_CGROUP and hook_returns_void(prog)
    proto = attach_func_proto(prog)
    return proto is not None and not proto.type


def hidden_subprog_exit(env, state: State, i: int, r0: Reg, *, moves_packet: bool = False) -> int:
    """A legacy packet load or a tail call inside a static function (6.18.44): the load that
    fails returns 0 from the function at once (``bpf_gen_ld_abs``'s hidden exit), the tail call
    that succeeds runs a program whose exit returns its int to the function's caller
    (``moves_packet``: that program may have moved the packet, so every packet pointer
    becomes a number, ``clear_all_pkt_pointers``). The path on at ``i + 1`` is explored
    later ("from i to i+1"); this one returns to the caller now, printing no "from" line:
    the registers the instruction scratched are the caller's state printed next."""
    env.push_stack(state.copy(), i + 1, i)
    if moves_packet:
        clear_all_pkt_pointers(state)
    state.regs[0] = r0
    env.log.scratch_regs.add(0)
    env.live_stack.update(state)
    return prepare_func_exit(env, state, i, r0, hidden=True)


def prepare_func_exit(env, state: State, i: int, r0: Reg, *, hidden: bool = False) -> int:
    """Back to the caller; ``hidden``: from an instruction that is no exit
    (``hidden_subprog_exit``), whose scratched registers stay to be printed."""
    if r0.type == PTR_TO_STACK:
        # the kernel is conservative: even a caller's stack pointer may not go back
        raise Reject("cannot return stack pointer to the caller")
    in_callback_fn = state.frame.in_callback_fn
    if in_callback_fn:
        check_callback_return(env, state, i, r0)
    callee = state.frames.pop()
    caller = state.frame
    # a callback goes back to the helper call, which may visit it again
    ret = callee.callsite if in_callback_fn else callee.callsite + 1
    log = env.log
    if log.level >= 2:
        log.verbose("returning from callee:")
        log.verbose(format_frame(callee))
        log.verbose(f"to caller at {ret}:")
    if not in_callback_fn:  # the callback's R0 went to the helper
        for r in CALLER_SAVED:
            caller.regs[r] = Reg()
        caller.regs[0] = r0.copy()
    if log.level >= 2:
        log.verbose(format_frame(caller))
    if in_callback_fn and WIDEN_IMPRECISE_SCALARS:
        widen_imprecise_scalars(env, state, ret)
    env.record(state, i, "return", f"to caller at {ret}")
    if not hidden:
        log.mark_verifier_state_clean()
        env.force_print_state = True
    return ret


BINARY_VERDICT = (0, 1)
# the value a program of each type must return, where the kernel enforces one
RETVAL_RANGES = {"cgroup_skb": BINARY_VERDICT, "cgroup_sock": BINARY_VERDICT, "sock_ops": BINARY_VERDICT,
                 "cgroup_device": BINARY_VERDICT, "cgroup_sysctl": BINARY_VERDICT, "cgroup_sockopt": BINARY_VERDICT,
                 "sk_lookup": BINARY_VERDICT, "netfilter": BINARY_VERDICT, "cgroup_sock_addr": BINARY_VERDICT}
ATTACH_RETVAL_RANGES = {
    "cgroup_inet_egress": (0, 3), "cgroup_inet4_bind": (0, 3), "cgroup_inet6_bind": (0, 3),
    **{a: (1, 1) for a in ("cgroup_udp4_recvmsg", "cgroup_udp6_recvmsg", "cgroup_unix_recvmsg",
                           "cgroup_inet4_getpeername", "cgroup_inet6_getpeername", "cgroup_unix_getpeername",
                           "cgroup_inet4_getsockname", "cgroup_inet6_getsockname", "cgroup_unix_getsockname")},
    "trace_fentry": (0, 0), "trace_fexit": (0, 0), "trace_iter": BINARY_VERDICT,
}


# an lsm_cgroup/ program on a void hook must leave the return value alone: return 1
LSM_CGROUP_VOID_RETVAL = (1, 1)
LSM_CGROUP_VOID_NOTE = "Note, BPF_LSM_CGROUP that attach to void LSM hooks can't modify return value!"


def retval_range(prog) -> tuple[int, int] | None:
    """What ``check_return_code`` enforces for this program, or None."""
    attach = prog.expected_attach_type or ""
    if prog.type == "lsm":
        if attach == LSM_CGROUP:
            return LSM_CGROUP_VOID_RETVAL if hook_returns_void(prog) else BINARY_VERDICT
        return bpf_lsm_get_retval_range(prog)
    if prog.type == "tracing":
        return ATTACH_RETVAL_RANGES.get(attach) if attach in ("trace_fentry", "trace_fexit", "trace_iter") else None
    if prog.type in ("cgroup_skb", "cgroup_sock_addr") and attach in ATTACH_RETVAL_RANGES:
        return ATTACH_RETVAL_RANGES[attach]
    return RETVAL_RANGES.get(prog.type)


ASYNC_CB_RET_RANGE = (0, 0)  # a timer's callback returns 0


def check_return_code(env, state: State, r0: Reg, frame: Frame | None = None) -> None:
    if frame is not None and frame.in_async_callback_fn:
        enforce_retval(env, state, r0, ASYNC_CB_RET_RANGE, "At async callback return")
        return
    if env.validating_subprog:
        if r0.type != SCALAR:
            raise Reject(f"At subprogram exit the register R0 is not a scalar value ({r0.type_name()})")
        return
    prog = env.prog
    wanted = retval_range(prog)
    if wanted is None:
        return
    # an lsm/ program's value is the hook's int: its lower 32 bits are compared
    return_32bit = prog.type == "lsm" and prog.expected_attach_type != LSM_CGROUP
    note = LSM_CGROUP_VOID_NOTE if prog.type == "lsm" and wanted == LSM_CGROUP_VOID_RETVAL \
        and hook_returns_void(prog) else None
    enforce_retval(env, state, r0, wanted, "At program exit", return_32bit=return_32bit, note=note)


def enforce_retval(env, state: State, r0: Reg, wanted: tuple[int, int], where: str, *,
                   return_32bit: bool = False, note: str | None = None) -> None:
    """R0 at an exit: a scalar, precise, inside ``wanted`` (``retval_range_within``: its 32-bit
    bounds with ``return_32bit``); ``note``: a line the kernel adds when it is not."""
    if r0.type != SCALAR:
        raise Reject(f"{where} the register R0 is not a known value ({r0.type_name()})")
    mark_chain_precision(env, state, 0)
    lo, hi = wanted
    low, high = (r0.s.s32_min, r0.s.s32_max) if return_32bit else (r0.s.smin, r0.s.smax)
    if low < lo or high > hi:
        message = verbose_invalid_scalar(r0, wanted, where, "R0")
        raise Reject(f"{message}\n{note}" if note else message)


def check_call(env, state: State, insn: Insn, i: int) -> int:
    if insn.src == op.BPF_PSEUDO_CALL:
        return check_func_call(env, state, insn, i)
    if insn.src == op.BPF_PSEUDO_KFUNC_CALL:
        return check_kfunc_call(env, state, insn, i)
    return check_helper_call(env, state, insn, i)
