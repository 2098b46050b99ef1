"""Memory instructions: ``check_mem_access`` and the checks per pointer kind
(``check_stack_read``/``check_stack_write``, ``check_map_access``,
``check_packet_access``, ``check_ctx_access``, ``check_mem_region_access``),
the loads and stores that use them (``check_load_mem``, ``check_store_reg``,
``check_atomic``), 64-bit immediate loads (``check_ld_imm``) and the legacy
packet loads (``check_ld_abs``)."""

from __future__ import annotations

from ..isa import Insn
from ..isa import opcodes as op
from .alu import coerce_reg_to_size_sx
from .btf_access import check_ptr_to_btf_access
from .ctx import ctx_access
from .log import Reject
from .regstate import (
    CONST_PTR_TO_MAP,
    PTR_TO_BTF_ID,
    PTR_TO_CTX,
    PTR_TO_MAP_VALUE,
    PTR_TO_MEM,
    PTR_TO_PACKET,
    PTR_TO_PACKET_END,
    PTR_TO_PACKET_META,
    PTR_TO_STACK,
    SCALAR,
    Reg,
    const_reg,
    scalar_reg,
)
from .scalar import Scalar
from .state import INVALID, MAX_BPF_STACK, MISC, SPILL, ZERO, Slot, State
from .tnum import s64

BPF_F_RDONLY_PROG = 1 << 7
BPF_REG_SIZE = 8
# a variable stack offset beyond this many bytes either way is "unbounded"
VAR_OFF_STACK_LIMIT = 1 << 29
CTX_REG = 6  # legacy packet loads read the skb from r6
CALLER_SAVED = range(1, 6)
CTX_KIND = {"pkt": PTR_TO_PACKET, "pkt_end": PTR_TO_PACKET_END, "pkt_meta": PTR_TO_PACKET_META}


def check_load_mem(env, state: State, insn: Insn, i: int) -> None:
    if insn.mode not in (op.BPF_MEM, op.BPF_MEMSX):
        raise Reject("BPF_LDX uses reserved fields")
    base = env.read_reg(state, insn.src)
    size = insn.size
    result = check_mem_access(env, state, insn.src, base, insn.off, size, write=False, insn_idx=i)
    if result.type == SCALAR and size < BPF_REG_SIZE:
        if insn.mode == op.BPF_MEMSX:
            result.s = coerce_reg_to_size_sx(result.s, size)
        else:
            result.s.coerce_to_size(size)
    env.write_reg(state, insn.dst, result)


def check_store_reg(env, state: State, insn: Insn, i: int) -> None:
    """``BPF_ST`` and ``BPF_STX`` (plain stores and atomics)."""
    size = insn.size
    src = env.read_reg(state, insn.src) if insn.cls == op.BPF_STX else None
    base = env.read_reg(state, insn.dst)
    if insn.mode == op.BPF_ATOMIC:
        check_atomic(env, state, insn, i, base, size)
        return
    if src is None:
        value = const_reg(insn.imm)
        value.id = 0
        check_mem_access(env, state, insn.dst, base, insn.off, size, write=True, value=value, insn_idx=i, st=True)
    else:
        check_mem_access(env, state, insn.dst, base, insn.off, size, write=True, value=src, insn_idx=i,
                         value_regno=insn.src)


def check_atomic(env, state: State, insn: Insn, i: int, base: Reg, size: int) -> None:
    if size not in (4, 8):
        raise Reject("invalid atomic operand size")
    check_mem_access(env, state, insn.dst, base, insn.off, size, write=False, insn_idx=i)
    check_mem_access(env, state, insn.dst, base, insn.off, size, write=True, value=scalar_reg(), insn_idx=i)
    if insn.imm == op.BPF_CMPXCHG:
        env.read_reg(state, 0)
        env.write_reg(state, 0, scalar_reg())
    elif insn.imm & op.BPF_FETCH:
        env.write_reg(state, insn.src, scalar_reg())


def check_mem_access(env, state: State, regno: int, base: Reg, off: int, size: int, *, write: bool,
                     insn_idx: int, value: Reg | None = None, value_regno: int = -1, st: bool = False) -> Reg:
    """The register a load produces (or the stored value)."""
    t = base.type
    if base.maybe_null:
        raise Reject(f"R{regno} invalid mem access '{base.type_name()}'")
    if t == SCALAR:
        raise Reject(f"R{regno} invalid mem access 'scalar'")
    if t == PTR_TO_STACK:
        if write:
            return check_stack_write(env, state, regno, base, off, size, value, st)
        return check_stack_read(env, state, regno, base, off, size)
    if t == PTR_TO_CTX:
        return check_ctx_access(env, regno, base, off, size, write, value, value_regno)
    if t == PTR_TO_MAP_VALUE:
        return check_map_access(regno, base, off, size, write)
    if t in (PTR_TO_PACKET, PTR_TO_PACKET_META):
        return check_packet_access(regno, base, off, size)
    if t == PTR_TO_BTF_ID:
        if write:
            raise Reject("only read is supported")
        return check_ptr_to_btf_access(env, regno, base, off, size, insn_idx)
    if t == PTR_TO_MEM:
        return check_mem_region_access(base, off, size)
    raise Reject(f"R{regno} invalid mem access '{base.type_name()}'")


def check_ctx_access(env, regno: int, base: Reg, off: int, size: int, write: bool, value: Reg | None,
                     value_regno: int) -> Reg:
    if base.off or not base.s.var_off.equals_const(0):
        if not base.s.var_off.is_const:
            raise Reject(f"variable ctx access var_off={base.s.var_off} disallowed")
        raise Reject(f"dereference of modified ctx ptr R{regno} off={base.off} disallowed")
    if write and value is not None and value.is_pointer:
        raise Reject(f"R{value_regno} leaks addr into ctx")
    access = ctx_access(env.prog, off, size, write)
    for line in access.log:
        env.log.verbose(line)
    if access.kind is None:
        raise Reject(f"invalid bpf_context access off={off} size={size}")
    if write or access.kind == "scalar":
        return scalar_reg()
    if access.kind in CTX_KIND:
        return Reg(CTX_KIND[access.kind], Scalar.const(0))
    return Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=env.prog.kernel_btf, btf_id=access.btf_id,
               trusted=access.trusted)


def check_packet_access(regno: int, base: Reg, off: int, size: int) -> Reg:
    total = base.off + off  # the range is measured after any variable part
    if base.s.smin < 0:
        raise Reject(f"R{regno} min value is negative, either use unsigned index or do a if (index >=0) check.")
    if total + size > base.range or total < 0:
        raise Reject(f"invalid access to packet, off={total} size={size}, R{regno}(id={base.id},off={base.off},"
                     f"r={base.range})\nR{regno} offset is outside of the packet")
    return scalar_reg()


def check_mem_region_access(base: Reg, off: int, size: int) -> Reg:
    total = base.off + off
    if total < 0 or total + size > base.mem_size:
        raise Reject(f"invalid access to memory, mem_size={base.mem_size} off={total} size={size}")
    return scalar_reg()


def check_map_access(regno: int, base: Reg, off: int, size: int, write: bool) -> Reg:
    value_size = base.map.value_size
    total = base.off + off
    if not base.s.var_off.is_const:
        if base.s.smin + total < 0:
            raise Reject(f"R{regno} min value is outside of the allowed memory range")
        if base.s.umax + total + size > value_size:
            raise Reject(f"R{regno} max value is outside of the allowed memory range")
        return scalar_reg()
    total += s64(base.s.value)
    if total < 0 or total + size > value_size:
        raise Reject(f"invalid access to map value, value_size={value_size} off={total} size={size}")
    if write and base.map.flags & BPF_F_RDONLY_PROG:
        raise Reject(f"write into map forbidden, value_size={value_size} off={total} size={size}")
    initial = base.map.initial
    if not write and base.map.flags & BPF_F_RDONLY_PROG and initial is not None:
        return const_reg(int.from_bytes(initial[total:total + size], "little"))
    return scalar_reg()


def stack_frame(state: State, reg: Reg):
    """The frame a stack pointer points into."""
    return state.frames[reg.frameno] if reg.frameno < len(state.frames) else state.frame


def _check_stack_var_off(env, frame, regno: int, base: Reg, off: int, size: int, write: bool) -> Reg:
    """An access through a stack pointer with a variable offset: every byte it may touch."""
    what = "write to" if write else "read from"
    if base.s.smax >= VAR_OFF_STACK_LIMIT or base.s.smin <= -VAR_OFF_STACK_LIMIT:
        raise Reject(f"invalid unbounded variable-offset {what} stack R{regno}")
    lo, hi = base.off + off + base.s.smin, base.off + off + base.s.smax
    if lo < -MAX_BPF_STACK or hi + size > 0:
        raise Reject(f"invalid variable-offset {what} stack R{regno} var_off={base.s.var_off} off={off} size={size}")
    for addr in range(lo, hi + size):
        spi = (-addr - 1) // BPF_REG_SIZE
        slot = frame.stack.setdefault(spi, Slot())
        if write:
            slot.types[(-addr - 1) % BPF_REG_SIZE] = MISC
            slot.spilled = None
        env.log.scratch_slots.add(spi)
    env.update_stack_depth(-lo)
    return scalar_reg()


def _check_stack_fixed_off(env, regno: int, base: Reg, off: int, size: int, write: bool) -> int:
    """The byte offset from the frame pointer of a constant-offset stack access."""
    total = base.off + off + s64(base.s.value)
    if total < -MAX_BPF_STACK or total + size > 0 or total >= 0:
        what = "write to" if write else "read from"
        raise Reject(f"invalid {what} stack R{regno} off={total} size={size}")
    env.update_stack_depth(-total)
    return total


def check_stack_write(env, state: State, regno: int, base: Reg, off: int, size: int, value: Reg | None,
                      st: bool) -> Reg:
    frame = stack_frame(state, base)
    if not base.s.var_off.is_const:
        return _check_stack_var_off(env, frame, regno, base, off, size, True)
    total = _check_stack_fixed_off(env, regno, base, off, size, True)
    slot_index = -total - 1
    spi = slot_index // BPF_REG_SIZE
    env.log.scratch_slots.add(spi)
    slot = frame.stack.setdefault(spi, Slot())
    aligned = total % BPF_REG_SIZE == 0
    if value is not None and value.type == SCALAR and aligned and not st:
        spilled = value.copy()
        fits = value.s.var_off.is_const or value.s.umax < (1 << (8 * size)) or size == BPF_REG_SIZE
        if fits:
            env.assign_scalar_id_before_mov(value)
            spilled.id = value.id
        else:
            spilled.id = 0
        save_register_state(slot, spilled, size)
    elif value is not None and st and aligned:
        save_register_state(slot, value.copy(), size)
    elif value is not None and value.is_pointer:
        if size != BPF_REG_SIZE:
            raise Reject("invalid size of register spill")
        save_register_state(slot, value.copy(), size)
    else:
        kind = ZERO if value is not None and value.type == SCALAR and value.s.var_off.equals_const(0) else MISC
        if slot.is_spill:  # a plain write over a spill scrubs the whole slot
            slot.types = [MISC if t != INVALID else t for t in slot.types]
        slot.spilled = None
        for k in range(size):
            slot.types[(slot_index - k) % BPF_REG_SIZE] = kind
    return value if value is not None else scalar_reg()


def check_stack_read(env, state: State, regno: int, base: Reg, off: int, size: int) -> Reg:
    frame = stack_frame(state, base)
    if not base.s.var_off.is_const:
        return _check_stack_var_off(env, frame, regno, base, off, size, False)
    total = _check_stack_fixed_off(env, regno, base, off, size, False)
    slot_index = -total - 1
    spi = slot_index // BPF_REG_SIZE
    env.log.scratch_slots.add(spi)
    slot = frame.stack.setdefault(spi, Slot())
    if slot.is_spill and slot.spilled is not None:
        spilled = slot.spilled
        if size == BPF_REG_SIZE:
            return spilled.copy()
        if spilled.type == SCALAR:
            spill_size = sum(1 for t in slot.types if t == SPILL)
            if size >= spill_size or spilled.s.var_off.is_const:
                return spilled.copy()
            return scalar_reg()
        raise Reject("invalid size of register fill")
    kinds = [slot.types[(slot_index - k) % BPF_REG_SIZE] for k in range(size)]
    if all(k == ZERO for k in kinds):
        return const_reg(0)
    return scalar_reg()


def save_register_state(slot: Slot, reg: Reg, size: int) -> None:
    slot.spilled = reg
    for k in range(BPF_REG_SIZE, BPF_REG_SIZE - size, -1):
        slot.types[k - 1] = SPILL
    for k in range(BPF_REG_SIZE - size, 0, -1):
        if slot.types[k - 1] not in (ZERO, INVALID):
            slot.types[k - 1] = MISC


def check_ld_imm(env, state: State, insn: Insn, i: int) -> None:
    second = env.insns[i + 1]
    if insn.src == 0:
        value = (insn.imm & 0xFFFFFFFF) | ((second.imm & 0xFFFFFFFF) << 32)
        env.write_reg(state, insn.dst, const_reg(value))
        return
    maps = getattr(env.prog, "maps", ())
    if insn.src in (op.BPF_PSEUDO_MAP_IDX, op.BPF_PSEUDO_MAP_IDX_VALUE, op.BPF_PSEUDO_MAP_FD,
                    op.BPF_PSEUDO_MAP_VALUE):
        if not 0 <= insn.imm < len(maps):
            raise Reject(f"fd {insn.imm} is not pointing to valid bpf_map")
        definition = maps[insn.imm]
        if insn.src in (op.BPF_PSEUDO_MAP_IDX, op.BPF_PSEUDO_MAP_FD):
            reg = Reg(CONST_PTR_TO_MAP, Scalar.const(0), map=definition, map_index=insn.imm)
        else:
            reg = Reg(PTR_TO_MAP_VALUE, Scalar.const(0), off=second.imm, map=definition, map_index=insn.imm)
        env.write_reg(state, insn.dst, reg)
        return
    raise Reject("unrecognized bpf_ld_imm64 insn")


def check_ld_abs(env, state: State, insn: Insn) -> None:
    ctx = env.read_reg(state, CTX_REG)
    if ctx.type != PTR_TO_CTX:
        raise Reject("at the time of BPF_LD_ABS|IND R6 != pointer to skb")
    if insn.mode == op.BPF_IND:
        env.read_reg(state, insn.src)
    for r in CALLER_SAVED:
        state.regs[r] = Reg()
    s = Scalar.unknown()
    s.coerce_to_size(insn.size)
    env.write_reg(state, 0, scalar_reg(s))

