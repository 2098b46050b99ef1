"""Memory instructions: ``check_mem_access`` and the checks per pointer kind
(``check_stack_read``/``check_stack_write``, ``check_map_access``,
``check_packet_access``, ``check_ctx_access``, ``check_mem_region_access``),
the loads and stores that use them (``check_load_mem``, ``check_store_reg``,
``check_atomic``), 64-bit immediate loads (``check_ld_imm``) and the legacy
packet loads (``check_ld_abs``)."""

from __future__ import annotations

from ..isa import Insn
from ..isa import opcodes as op
from ..isa.flow import pseudo_func_target
from .alu import BITS_PER_BYTE, coerce_reg_to_size_sx
from .btf_access import check_pseudo_btf_id, check_ptr_to_btf_access
from .btf_record import BPF_TIMER, BPF_TIMER_SIZE, map_timer_off
from .ctx import ctx_access, sock_access
from .log import Reject
from .lsm import bpf_lsm_get_retval_range
from .precision import insn_stack_access_flags, mark_chain_precision, push_jmp_history
from .regstate import (
    CONST_PTR_TO_MAP,
    PTR_TO_BTF_ID,
    PTR_TO_CTX,
    PTR_TO_FUNC,
    PTR_TO_MAP_KEY,
    PTR_TO_MAP_VALUE,
    PTR_TO_MEM,
    PTR_TO_PACKET,
    PTR_TO_PACKET_END,
    PTR_TO_PACKET_META,
    PTR_TO_SOCK_COMMON,
    PTR_TO_SOCKET,
    PTR_TO_STACK,
    SCALAR,
    SOCK_TYPES,
    Reg,
    const_reg,
    scalar_reg,
)
from .scalar import Scalar
from .state import INVALID, MAX_BPF_STACK, MISC, SPILL, ZERO, Slot, State
from .tnum import U64, Tnum, s64

BPF_F_RDONLY_PROG = 1 << 7
BPF_F_WRONLY_PROG = 1 << 8
NET_IP_ALIGN = 2  # the kernel checks packet alignment as if an IP header were 2 bytes in
BPF_MAX_VAR_OFF = 1 << 29
S64_MIN = -(1 << 63)
POINTER_DESC = {PTR_TO_MAP_KEY: "key ", PTR_TO_MAP_VALUE: "value ", PTR_TO_CTX: "context ", PTR_TO_STACK: "stack "}
# the program types that may write into the packet (``may_access_direct_pkt_data``)
PKT_WRITERS = ("sched_cls", "sched_act", "xdp", "lwt_xmit", "sk_skb", "sk_msg")
BPF_REG_SIZE = 8


def _fits_s32(value: int) -> bool:
    return -(1 << 31) <= value < (1 << 31)
CTX_REG = 6  # legacy packet loads read the skb from r6
CALLER_SAVED = range(1, 6)
CTX_KIND = {"pkt": PTR_TO_PACKET, "pkt_end": PTR_TO_PACKET_END, "pkt_meta": PTR_TO_PACKET_META}
CTX_SOCK_KIND = {"sock": (PTR_TO_SOCKET, False), "sock_or_null": (PTR_TO_SOCKET, True),
                 "sock_common_or_null": (PTR_TO_SOCK_COMMON, True)}


def check_load_mem(env, state: State, insn: Insn, i: int) -> None:
    """``BPF_LDX``: the source must be readable, the destination writable (reserved
    fields were checked before the walk)."""
    base = env.read_reg(state, insn.src)
    env.check_reg_write(insn.dst)
    result = check_mem_access(env, state, insn.src, base, insn.off, insn.size, write=False, insn_idx=i,
                              is_ldsx=insn.mode == op.BPF_MEMSX)
    env.write_reg(state, insn.dst, result)


def check_store_reg(env, state: State, insn: Insn, i: int) -> None:
    """``BPF_STX``: the value, then the pointer."""
    src = env.read_reg(state, insn.src)
    base = env.read_reg(state, insn.dst)
    check_mem_access(env, state, insn.dst, base, insn.off, insn.size, write=True, value=src, insn_idx=i,
                     value_regno=insn.src)


def check_st_mem(env, state: State, insn: Insn, i: int) -> None:
    """``BPF_ST``: an immediate stored through a pointer."""
    base = env.read_reg(state, insn.dst)
    value = const_reg(insn.imm)
    check_mem_access(env, state, insn.dst, base, insn.off, insn.size, write=True, value=value, insn_idx=i, st=True)


ATOMIC_OPS = (op.BPF_ADD, op.BPF_AND, op.BPF_OR, op.BPF_XOR)
ATOMIC_SIZES = (4, 8)


def check_atomic(env, state: State, insn: Insn, i: int) -> None:
    if insn.imm not in ATOMIC_OPS and insn.imm not in tuple(o | op.BPF_FETCH for o in ATOMIC_OPS) + (
            op.BPF_XCHG, op.BPF_CMPXCHG):
        raise Reject(f"BPF_ATOMIC uses invalid atomic opcode {insn.imm & 0xFF:02x}")
    if insn.size not in ATOMIC_SIZES:
        raise Reject("invalid atomic operand size")
    env.read_reg(state, insn.src)
    base = env.read_reg(state, insn.dst)
    if insn.imm == op.BPF_CMPXCHG:
        env.read_reg(state, 0)
    if base.type in (PTR_TO_CTX, PTR_TO_PACKET, PTR_TO_PACKET_META):
        raise Reject(f"BPF_ATOMIC stores into R{insn.dst} {base.type_name()} is not allowed")
    load_reg = -1
    if insn.imm & op.BPF_FETCH:
        load_reg = 0 if insn.imm == op.BPF_CMPXCHG else insn.src
        env.check_reg_write(load_reg)
    check_mem_access(env, state, insn.dst, base, insn.off, insn.size, write=False, insn_idx=i, strict=True)
    if load_reg >= 0:
        loaded = check_mem_access(env, state, insn.dst, base, insn.off, insn.size, write=False, insn_idx=i,
                                  strict=True)
        env.write_reg(state, load_reg, loaded if loaded.type == SCALAR else scalar_reg())
    check_mem_access(env, state, insn.dst, base, insn.off, insn.size, write=True, value=None, insn_idx=i,
                     strict=True)


def check_ptr_alignment(reg: Reg, off: int, size: int, strict: bool) -> None:
    """Stack accesses are always aligned; others only where asked (atomics). Packet
    pointers count the two bytes ``NET_IP_ALIGN`` puts before an IP header."""
    if reg.type in (PTR_TO_PACKET, PTR_TO_PACKET_META):
        if not strict or size == 1:
            return
        at = reg.s.var_off.add(Tnum.const((NET_IP_ALIGN + reg.off + off) & U64))
        if not at.is_aligned(size):
            raise Reject(f"misaligned packet access off {NET_IP_ALIGN}+{str(reg.s.var_off)}+{reg.off}+"
                         f"{off} size {size}")
        return
    desc = POINTER_DESC.get(reg.type, "")
    if reg.type == PTR_TO_STACK:
        strict = True  # spill tracking relies on aligned stack accesses
    if not strict or size == 1:
        return
    at = reg.s.var_off.add(Tnum.const((reg.off + off) & U64))
    if not at.is_aligned(size):
        raise Reject(f"misaligned {desc}access off {str(reg.s.var_off)}+{reg.off}+{off} size {size}")


def check_mem_access(env, state: State, regno: int, base: Reg, off: int, size: int, *, write: bool,
                     insn_idx: int, value: Reg | None = None, value_regno: int = -1, st: bool = False,
                     strict: bool = False, is_ldsx: bool = False) -> Reg:
    """The register a load produces (or the stored value), the checks in the kernel's order."""
    check_ptr_alignment(base, off, size, strict)
    off += base.off  # for the access checks the pointer's fixed offset is part of the offset
    t = base.type
    if base.maybe_null or t == SCALAR:
        raise Reject(f"R{regno} invalid mem access '{base.type_name()}'")
    if t == PTR_TO_MAP_VALUE:
        result = check_map_access(regno, base, off, size, write, is_ldsx, timer_off=map_timer_off(env.prog, base.map))
    elif t == PTR_TO_MAP_KEY:  # a for_each_map_elem callback's key
        if write:
            raise Reject(f"write to change key R{regno} not allowed")
        check_mem_region_access(regno, base, off, size, base.map.key_size)
        result = scalar_reg()
    elif t == PTR_TO_MEM:
        if write and base.rdonly:
            raise Reject(f"R{regno} cannot write into {base.type_name()}")
        if base.rdonly and base.untrusted:  # memory behind a walked pointer: no bounds, PROBE_MEM loads
            env.probe_mem.add(insn_idx)
        else:
            check_mem_region_access(regno, base, off, size, base.mem_size)
        result = scalar_reg()
    elif t == PTR_TO_CTX:
        result = check_ctx_access(env, regno, base, off, size, write)
    elif t == PTR_TO_STACK:
        check_stack_access_within_bounds(env, state, regno, base, off, size, write)
        if write:
            return check_stack_write(env, state, regno, base, off, size, value, st, value_regno)
        result = check_stack_read(env, state, regno, base, off, size)
    elif t in (PTR_TO_PACKET, PTR_TO_PACKET_META):
        if write and env.prog.type not in PKT_WRITERS:
            raise Reject("cannot write into packet")
        check_packet_access(regno, base, off, size)
        result = scalar_reg()
    elif t == CONST_PTR_TO_MAP:
        result = check_ptr_to_map_access(env, regno, base, off, size, write, insn_idx)
    elif t in SOCK_TYPES:
        if write:
            raise Reject(f"R{regno} cannot write into {base.type_name()}")
        check_sock_access(regno, base, off, size)
        result = scalar_reg()
    elif t == PTR_TO_BTF_ID:
        if write:
            raise Reject("only read is supported")
        result = check_ptr_to_btf_access(env, regno, base, off - base.off, size, insn_idx)
    else:
        raise Reject(f"R{regno} invalid mem access '{base.type_name()}'")
    if write:
        return value if value is not None else scalar_reg()
    if result.type == SCALAR and size < BPF_REG_SIZE:
        if is_ldsx:
            result.s = coerce_reg_to_size_sx(result.s, size)
        else:
            result.s.coerce_to_size(size)
    return result


# the kernel struct behind a map of each type (``map->ops->map_btf_id``), which a program
# may read through a map pointer
MAP_BTF_STRUCTS = {
    **dict.fromkeys(("array", "percpu_array", "prog_array", "perf_event_array", "cgroup_array", "array_of_maps"),
                    "bpf_array"),
    **dict.fromkeys(("hash", "percpu_hash", "lru_hash", "lru_percpu_hash", "hash_of_maps"), "bpf_htab"),
    "ringbuf": "bpf_ringbuf_map", "stack_trace": "bpf_stack_map", "lpm_trie": "lpm_trie",
    "queue": "bpf_queue_stack", "stack": "bpf_queue_stack", "bloom_filter": "bpf_bloom_filter",
    "devmap": "bpf_dtab", "devmap_hash": "bpf_dtab", "cpumap": "bpf_cpu_map", "xskmap": "xsk_map",
    "sockmap": "bpf_stab", "sockhash": "bpf_shtab", "sk_storage": "bpf_local_storage_map",
    "task_storage": "bpf_local_storage_map", "inode_storage": "bpf_local_storage_map",
    "cgrp_storage": "bpf_local_storage_map",
}


def check_ptr_to_map_access(env, regno: int, base: Reg, off: int, size: int, write: bool, insn_idx: int) -> Reg:
    """A read through a map pointer: the fields of the kernel's struct for that map type,
    walked as a BTF pointer's (root may read them)."""
    from ..btf import kernel_btf
    from ..program import MAP_TYPES

    struct = MAP_BTF_STRUCTS.get(base.map.type)
    if struct is None:
        raise Reject(f"map_ptr access not supported for map type {MAP_TYPES.get(base.map.type, 0)}")
    if off < 0:
        raise Reject(f"R{regno} is {struct} invalid negative access: off={off}")
    if write:
        raise Reject(f"only read from {struct} is supported")
    btf = env.prog.kernel_btf or kernel_btf()  # the kernel's own BTF, whatever the program was given
    as_btf = Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=btf, btf_id=btf.find(struct, "struct"))
    probe_mem = set(env.probe_mem)
    result = check_ptr_to_btf_access(env, regno, as_btf, off, size, insn_idx)
    env.probe_mem = probe_mem  # a plain load: the map's struct is always there
    return result


def check_sock_access(regno: int, base: Reg, off: int, size: int) -> None:
    """A read through a socket pointer: the fields of its ``struct bpf_sock`` view."""
    if base.s.smin < 0:
        raise Reject(f"R{regno} min value is negative, either use unsigned index or do a if (index >=0) check.")
    if not sock_access(base.type, off, size):
        raise Reject(f"R{regno} invalid {base.type_name()} access off={off} size={size}")


def check_ctx_pointer_unmodified(base: Reg, regno: int) -> None:
    """``check_ptr_off_reg``: only the pointer as the program got it."""
    if base.off < 0:
        raise Reject(f"negative offset {base.type_name()} ptr R{regno} off={base.off} disallowed")
    if base.off:
        raise Reject(f"dereference of modified {base.type_name()} ptr R{regno} off={base.off} disallowed")
    if not base.s.var_off.equals_const(0):
        raise Reject(f"variable {base.type_name()} access var_off={base.s.var_off} disallowed")


def check_ctx_access(env, regno: int, base: Reg, off: int, size: int, write: bool) -> Reg:
    """``check_ptr_off_reg``, then the program type's rule."""
    check_ctx_pointer_unmodified(base, regno)
    access = ctx_access(env.prog, off, size, write)
    for line in access.log:
        env.log.verbose(line)
    if access.kind is None:
        raise Reject(f"invalid bpf_context access off={off} size={size}")
    if access.is_retval and not write:
        return lsm_retval_reg(env.prog)
    if write or access.kind == "scalar":
        return scalar_reg()
    if access.kind in CTX_KIND:
        return Reg(CTX_KIND[access.kind], Scalar.const(0))
    if access.kind in CTX_SOCK_KIND:  # a socket the context points to (maybe none)
        kind, maybe_null = CTX_SOCK_KIND[access.kind]
        return Reg(kind, Scalar.const(0), maybe_null=maybe_null, id=env.new_id() if maybe_null else 0)
    return Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=env.prog.kernel_btf, btf_id=access.btf_id,
               trusted=access.trusted, maybe_null=access.maybe_null, id=env.new_id() if access.maybe_null else 0)


def lsm_retval_reg(prog) -> Reg:
    """An ``lsm/`` program's read of the return value so far: a number inside the hook's
    return range, as ``__mark_reg_s32_range`` bounds it (both 32- and 64-bit signed bounds)."""
    reg = scalar_reg()
    wanted = bpf_lsm_get_retval_range(prog)
    if wanted is not None:
        lo, hi = wanted
        s = reg.s
        s.s32_min, s.s32_max = max(s.s32_min, lo), min(s.s32_max, hi)
        s.smin, s.smax = max(s.smin, lo), min(s.smax, hi)
        s.sync()
    return reg


def _check_mem_bounds(regno: int, reg: Reg, off: int, size: int, mem_size: int, zero_size_ok: bool = False) -> None:
    """``__check_mem_access``: [off, off + size) inside [0, mem_size)."""
    if off >= 0 and (size > 0 or (size == 0 and zero_size_ok)) and off + size <= mem_size:
        return
    if reg.type == PTR_TO_MAP_KEY:
        raise Reject(f"invalid access to map key, key_size={mem_size} off={off} size={size}")
    if reg.type == PTR_TO_MAP_VALUE:
        raise Reject(f"invalid access to map value, value_size={mem_size} off={off} size={size}")
    if reg.type in (PTR_TO_PACKET, PTR_TO_PACKET_META, PTR_TO_PACKET_END):
        raise Reject(f"invalid access to packet, off={off} size={size}, R{regno}(id={reg.id},off={off},r={mem_size})")
    raise Reject(f"invalid access to memory, mem_size={mem_size} off={off} size={size}")


def _also(exc: Reject, line: str) -> Reject:
    """The kernel prints a second line after the first message."""
    return Reject(f"{exc}\n{line}")


def check_mem_region_access(regno: int, reg: Reg, off: int, size: int, mem_size: int,
                            zero_size_ok: bool = False) -> None:
    """A region that the pointer's variable part moves within: its lowest and highest
    positions must both be inside."""
    smin = reg.s.smin
    if smin < 0 and (smin == S64_MIN or not _fits_s32(off + smin) or smin + off < 0):
        raise Reject(f"R{regno} min value is negative, either use unsigned index or do a if (index >=0) check.")
    try:
        _check_mem_bounds(regno, reg, smin + off, size, mem_size, zero_size_ok)
    except Reject as exc:
        raise _also(exc, f"R{regno} min value is outside of the allowed memory range") from None
    if reg.s.umax >= BPF_MAX_VAR_OFF:
        raise Reject(f"R{regno} unbounded memory access, make sure to bounds check any such access")
    try:
        _check_mem_bounds(regno, reg, reg.s.umax + off, size, mem_size, zero_size_ok)
    except Reject as exc:
        raise _also(exc, f"R{regno} max value is outside of the allowed memory range") from None


def check_packet_access(regno: int, base: Reg, off: int, size: int, zero_size_ok: bool = False) -> None:
    """The range proven by a comparison with the packet's end is measured from the
    pointer's variable part: only the fixed offset is checked against it."""
    if base.s.smin < 0:
        raise Reject(f"R{regno} min value is negative, either use unsigned index or do a if (index >=0) check.")
    if base.range < 0:
        raise Reject(f"R{regno} offset is outside of the packet")
    try:
        _check_mem_bounds(regno, base, off, size, base.range, zero_size_ok)
    except Reject as exc:
        raise _also(exc, f"R{regno} offset is outside of the packet") from None


def check_map_access(regno: int, base: Reg, off: int, size: int, write: bool, is_ldsx: bool = False,
                     zero_size_ok: bool = False, timer_off: int | None = None) -> Reg:
    """``check_map_access_type`` then the value's region, which may not touch the value's
    bpf_timer (at ``timer_off``); a read-only map's contents are known."""
    m = base.map
    total = off + s64(base.s.value) if base.s.var_off.is_const else off
    if write and m.flags & BPF_F_RDONLY_PROG:
        raise Reject(f"write into map forbidden, value_size={m.value_size} off={total} size={size}")
    if not write and m.flags & BPF_F_WRONLY_PROG:
        raise Reject(f"read from map forbidden, value_size={m.value_size} off={total} size={size}")
    check_mem_region_access(regno, base, off, size, m.value_size, zero_size_ok)
    if timer_off is not None and base.s.smin + off < timer_off + BPF_TIMER_SIZE \
            and timer_off < base.s.umax + off + size:
        raise Reject(f"{BPF_TIMER} cannot be accessed directly by load/store")
    if not write and base.s.var_off.is_const and m.flags & BPF_F_RDONLY_PROG and m.initial is not None:
        value = int.from_bytes(m.initial[total:total + size], "little", signed=is_ldsx)
        return const_reg(value)
    return scalar_reg()


def stack_frame(state: State, reg: Reg):
    """The frame a stack pointer points into."""
    return state.frames[reg.frameno] if reg.frameno < len(state.frames) else state.frame


def check_stack_access_within_bounds(env, state: State, regno: int, base: Reg, off: int, size: int, write: bool,
                                     helper: bool = False) -> None:
    what = " indirect access to" if helper else (" write to" if write else " read from")
    s = base.s
    if s.var_off.is_const:
        min_off = s64(s.var_off.value) + off
        max_off = min_off + size
    else:
        if s.smax >= BPF_MAX_VAR_OFF or s.smin <= -BPF_MAX_VAR_OFF:
            raise Reject(f"invalid unbounded variable-offset{what} stack R{regno}")
        min_off = s.smin + off
        max_off = s.smax + off + size
    # writes and, as root, reads of stack never written may reach the whole frame
    if min_off < -MAX_BPF_STACK or min_off > -1 or max_off > 0 or size < 0:
        if s.var_off.is_const:
            raise Reject(f"invalid{what} stack R{regno} off={off} size={size}")
        raise Reject(f"invalid variable-offset{what} stack R{regno} var_off={str(s.var_off)} "
                     f"off={off} size={size}")
    env.update_stack_depth(-min_off, stack_frame(state, base))


def _stack_var_off_access(env, state: State, frame, base: Reg, off: int, size: int, write: bool) -> Reg:
    """Every byte a variable-offset stack access may touch (a read reads every slot
    of the range; a write never counts as writing a slot whole)."""
    lo, hi = off + base.s.smin, off + base.s.smax
    if not write:
        read = 0
        for addr in range(lo, hi + size):
            read |= 1 << ((-addr - 1) // BPF_REG_SIZE)
        env.live_stack.mark_read(state, frame.frameno, env.insn_idx, read)
    for addr in range(lo, hi + size):
        spi = (-addr - 1) // BPF_REG_SIZE
        slot = frame.stack.setdefault(spi, Slot())
        if write:
            slot.types[(-addr - 1) % BPF_REG_SIZE] = MISC
            slot.spilled = None
        env.log.scratch_slots.add(spi)
    return scalar_reg()


def check_stack_write(env, state: State, regno: int, base: Reg, off: int, size: int, value: Reg | None,
                      st: bool, value_regno: int = -1) -> Reg:
    """``check_stack_write_fixed_off``: a scalar or immediate at an aligned offset, or a
    pointer, is spilled (and the jump history records the slot); anything else makes
    the bytes misc, or zero when a known zero is written."""
    frame = stack_frame(state, base)
    if not base.s.var_off.is_const:
        return _stack_var_off_access(env, state, frame, base, off, size, True)
    total = off + s64(base.s.value)
    slot_index = -total - 1
    spi = slot_index // BPF_REG_SIZE
    env.log.scratch_slots.add(spi)
    slot = frame.stack.setdefault(spi, Slot())
    aligned = total % BPF_REG_SIZE == 0
    if aligned and size == BPF_REG_SIZE:  # only a whole slot written ends what was live in it
        env.live_stack.mark_write(frame.frameno, 1 << spi)
    spilled_reg = True
    if value is not None and value.type == SCALAR and aligned and not st:
        fits = value.s.umax.bit_length() <= BITS_PER_BYTE * size  # get_reg_width
        if fits:  # the spilled copy stays linked to the register
            env.assign_scalar_id_before_mov(value)
        spilled = value.copy()
        if not fits:  # a narrowing spill breaks the link
            spilled.id = 0
        save_register_state(slot, spilled, size)
    elif value is not None and st and aligned:
        save_register_state(slot, value.copy(), size)
    elif value is not None and value.is_pointer:
        if size != BPF_REG_SIZE:
            raise Reject("invalid size of register spill")
        if frame is not state.frame and value.type == PTR_TO_STACK:
            raise Reject("cannot spill pointers to stack into stack frame of the caller")
        save_register_state(slot, value.copy(), size)
    else:
        spilled_reg = False
        zero = value is not None and value.type == SCALAR and value.s.var_off.equals_const(0)
        if zero and not st and value_regno >= 0:
            # the zero bytes stand for the register's value: it must stay exactly zero
            mark_chain_precision(env, state, value_regno)
        kind = ZERO if zero else MISC
        if slot.is_spill:  # a plain write over a spill scrubs the whole slot
            slot.types = [MISC if t != INVALID else t for t in slot.types]
        slot.spilled = None
        for k in range(size):
            slot.types[(slot_index - k) % BPF_REG_SIZE] = kind
    if spilled_reg:
        push_jmp_history(env, state, insn_stack_access_flags(frame.frameno, spi))
    return value if value is not None else scalar_reg()


def check_stack_read(env, state: State, regno: int, base: Reg, off: int, size: int) -> Reg:
    """``check_stack_read_fixed_off``: a spilled register comes back (whole, or narrowed
    from its low bytes), and the jump history records the slot it was filled from;
    other bytes read as zero when all are, else as an unknown scalar."""
    frame = stack_frame(state, base)
    if not base.s.var_off.is_const:
        return _stack_var_off_access(env, state, frame, base, off, size, False)
    total = off + s64(base.s.value)
    slot_index = -total - 1
    spi = slot_index // BPF_REG_SIZE
    env.log.scratch_slots.add(spi)
    env.live_stack.mark_read(state, frame.frameno, env.insn_idx, 1 << spi)
    slot = frame.stack.setdefault(spi, Slot())
    kinds = [slot.types[(slot_index - k) % BPF_REG_SIZE] for k in range(size)]
    if not (slot.is_spill and slot.spilled is not None):
        return const_reg(0) if all(k == ZERO for k in kinds) else scalar_reg()
    spilled = slot.spilled
    spill_size = 1
    while spill_size < BPF_REG_SIZE and slot.types[BPF_REG_SIZE - 1 - spill_size] == SPILL:
        spill_size += 1
    result = None
    if size == BPF_REG_SIZE and spill_size == BPF_REG_SIZE:
        result = spilled.copy()
    elif spilled.type != SCALAR:
        raise Reject("invalid size of register fill")
    elif size <= spill_size and total % BPF_REG_SIZE == 0:  # bpf_stack_narrow_access_ok
        result = spilled.copy()
        if spilled.s.umax.bit_length() > size * 8:
            result.id = 0  # a narrowing fill breaks the link
    elif kinds.count(SPILL) == size and spilled.s.var_off.equals_const(0):
        result = const_reg(0)
    else:
        return const_reg(0) if kinds.count(ZERO) == size else scalar_reg()
    push_jmp_history(env, state, insn_stack_access_flags(frame.frameno, spi))
    return result


def save_register_state(slot: Slot, reg: Reg, size: int) -> None:
    slot.spilled = reg
    for k in range(BPF_REG_SIZE, BPF_REG_SIZE - size, -1):
        slot.types[k - 1] = SPILL
    for k in range(BPF_REG_SIZE - size, 0, -1):
        if slot.types[k - 1] not in (ZERO, INVALID):
            slot.types[k - 1] = MISC


def check_ld_imm(env, state: State, insn: Insn, i: int) -> None:
    if insn.size != BPF_REG_SIZE:
        raise Reject("invalid BPF_LD_IMM insn")
    if insn.off:
        raise Reject("BPF_LD_IMM64 uses reserved fields")
    env.check_reg_write(insn.dst)
    second = env.insns[i + 1]
    if insn.src == 0:
        value = (insn.imm & 0xFFFFFFFF) | ((second.imm & 0xFFFFFFFF) << 32)
        env.write_reg(state, insn.dst, const_reg(value))
        return
    maps = getattr(env.prog, "maps", ())
    if insn.src in (op.BPF_PSEUDO_MAP_IDX, op.BPF_PSEUDO_MAP_IDX_VALUE, op.BPF_PSEUDO_MAP_FD,
                    op.BPF_PSEUDO_MAP_VALUE):
        definition = maps[insn.imm]
        if insn.src in (op.BPF_PSEUDO_MAP_IDX, op.BPF_PSEUDO_MAP_FD):
            reg = Reg(CONST_PTR_TO_MAP, Scalar.const(0), map=definition, map_index=insn.imm)
        else:
            reg = Reg(PTR_TO_MAP_VALUE, Scalar.const(0), off=second.imm, map=definition, map_index=insn.imm)
        env.write_reg(state, insn.dst, reg)
        return
    if insn.src == op.BPF_PSEUDO_BTF_ID:
        kept = env.pseudo_btf_regs.get((insn.imm, second.imm))
        env.write_reg(state, insn.dst, kept.copy() if kept is not None else check_pseudo_btf_id(env, insn.imm,
                                                                                               second.imm))
        return
    if insn.src == op.BPF_PSEUDO_FUNC:
        env.write_reg(state, insn.dst, check_pseudo_func(env, pseudo_func_target(insn, i)))
        return
    raise Reject(f"bpfnb does not model 64-bit immediate loads of kind {insn.src}")


BTF_FUNC_STATIC = 0  # linkage of a static function in BTF


def check_pseudo_func(env, target: int) -> Reg:
    """``BPF_PSEUDO_FUNC``: the address of a static function (a callback), ``PTR_TO_FUNC``."""
    subprogs = env.subprogs
    if not getattr(env.prog, "func_info", ()):
        raise Reject("missing btf func_info")
    fi, btf = subprogs.func_info(target)
    if fi is None or btf.type(fi.type_id).linkage != BTF_FUNC_STATIC:
        raise Reject("callback function not static")
    if target == 0:
        raise Reject("callback function cannot be the main program")
    return Reg(PTR_TO_FUNC, Scalar.const(0), subprogno=subprogs.index(target))


# the program types whose programs may use the legacy packet loads (``may_access_skb``)
LD_ABS_TYPES = ("socket_filter", "sched_cls", "sched_act")


def check_ld_abs(env, state: State, insn: Insn) -> None:
    if env.prog.type not in LD_ABS_TYPES:
        raise Reject("BPF_LD_[ABS|IND] instructions not allowed for this program type")
    if insn.dst or insn.off or insn.size == BPF_REG_SIZE or (insn.mode == op.BPF_ABS and insn.src):
        raise Reject("BPF_LD_[ABS|IND] uses reserved fields")
    ctx = env.read_reg(state, CTX_REG)
    if ctx.type != PTR_TO_CTX:
        raise Reject("at the time of BPF_LD_ABS|IND R6 != pointer to skb")
    if insn.mode == op.BPF_IND:
        env.read_reg(state, insn.src)
    check_ctx_pointer_unmodified(ctx, CTX_REG)
    for r in CALLER_SAVED:
        state.regs[r] = Reg()
    # mark_reg_unknown: the packet's bytes come back unbounded, whatever the load's size
    env.write_reg(state, 0, scalar_reg(Scalar.unknown()))
