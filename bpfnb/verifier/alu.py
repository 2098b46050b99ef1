"""ALU instructions: ``check_alu_op`` (operand checks, moves, neg, byte swaps),
``adjust_ptr_min_max_vals`` (arithmetic on a pointer) and
``adjust_scalar_min_max_vals`` (arithmetic on scalars, through ``Scalar.alu``)."""

from __future__ import annotations

from ..isa import Insn
from ..isa import opcodes as op
from .log import Reject
from .precision import mark_chain_precision
from .regstate import (
    BPF_ADD_CONST,
    BPF_ADD_CONST32,
    BPF_ADD_CONST64,
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
    PTR_TO_STACK,
    SCALAR,
    Reg,
    const_reg,
    scalar_reg,
)
from .scalar import Scalar
from .state import State
from .tnum import Tnum, s32, s64

S32_MAX = 0x7FFFFFFF
S32_MIN = -(1 << 31)
U32_MAX = 0xFFFFFFFF
U64_MAX = (1 << 64) - 1
BPF_ALU_STRING = {op.BPF_ADD: "+=", op.BPF_SUB: "-=", op.BPF_MUL: "*=", op.BPF_DIV: "/=", op.BPF_OR: "|=",
                  op.BPF_AND: "&=", op.BPF_LSH: "<<=", op.BPF_RSH: ">>=", op.BPF_NEG: "neg", op.BPF_MOD: "%=",
                  op.BPF_XOR: "^=", op.BPF_MOV: "=", op.BPF_ARSH: "s>>=", op.BPF_END: "endian"}
BITS_PER_BYTE = 8


MOV_SX_OFFS = {op.BPF_ALU: (0, 8, 16), op.BPF_ALU64: (0, 8, 16, 32)}  # movsx widths each class allows
BSWAP_WIDTHS = (16, 32, 64)
HOST_IS_BIG_ENDIAN = False  # x86-64: le16/le32 only truncate, be16/be32/be64 swap
SIGNED_DIV = 1  # off of sdiv/smod
# offsets and values of pointers beyond this are never sane (``BPF_MAX_VAR_OFF``)
BPF_MAX_VAR_OFF = 1 << 29
S64_MIN = -(1 << 63)
# pointer kinds any arithmetic may move (``adjust_ptr_min_max_vals``)
MOVABLE_POINTERS = (PTR_TO_CTX, PTR_TO_MAP_VALUE, PTR_TO_MAP_KEY, PTR_TO_STACK, PTR_TO_PACKET_META, PTR_TO_PACKET,
                    PTR_TO_BTF_ID, PTR_TO_MEM, PTR_TO_FUNC)


def check_alu_op(env, state: State, insn: Insn) -> None:
    """Reserved fields, operands in the kernel's order (source, then destination),
    division by a zero immediate, shifts by an immediate past the width, then the
    arithmetic. As root, pointers may leak into scalars (``allow_ptr_leaks``)."""
    alu64 = insn.cls == op.BPF_ALU64
    operation = insn.op
    if operation in (op.BPF_NEG, op.BPF_END):
        if operation == op.BPF_NEG:
            if insn.uses_src_reg or insn.src or insn.off or insn.imm:
                raise Reject("BPF_NEG uses reserved fields")
        elif insn.src or insn.off or insn.imm not in BSWAP_WIDTHS or (alu64 and insn.uses_src_reg):
            raise Reject("BPF_END uses reserved fields")
        dst = env.read_reg(state, insn.dst)
        env.check_reg_write(insn.dst)
        if dst.is_pointer:  # a pointer's negation or byte swap is some number
            env.write_reg(state, insn.dst, scalar_reg())
        elif operation == op.BPF_NEG:
            result = Scalar.const(0)
            result.alu(op.BPF_SUB, dst.s.copy(), not alu64)
            env.write_reg(state, insn.dst, scalar_reg(result))
        else:
            _scalar_byte_swap(env, state, insn, dst, alu64)
        return
    if operation == op.BPF_MOV:
        _check_mov(env, state, insn, alu64)
        return
    if insn.uses_src_reg:
        if insn.imm or insn.off not in (0, SIGNED_DIV) or (insn.off == SIGNED_DIV and operation not in (
                op.BPF_DIV, op.BPF_MOD)):
            raise Reject("BPF_ALU uses reserved fields")
        src = env.read_reg(state, insn.src)
    else:
        if insn.src or insn.off not in (0, SIGNED_DIV) or (insn.off == SIGNED_DIV and operation not in (
                op.BPF_DIV, op.BPF_MOD)):
            raise Reject("BPF_ALU uses reserved fields")
        src = const_reg(insn.imm)  # the immediate, sign-extended, for either width
    dst = env.read_reg(state, insn.dst)
    if operation in (op.BPF_DIV, op.BPF_MOD) and not insn.uses_src_reg and insn.imm == 0:
        raise Reject("div by zero")
    if operation in (op.BPF_LSH, op.BPF_RSH, op.BPF_ARSH) and not insn.uses_src_reg:
        width = 64 if alu64 else 32
        if not 0 <= insn.imm < width:
            raise Reject(f"invalid shift {insn.imm}")
    env.check_reg_write(insn.dst)
    adjust_reg_min_max_vals(env, state, insn, dst, src, alu64)


def _scalar_byte_swap(env, state: State, insn: Insn, dst: Reg, alu64: bool) -> None:
    """A byte swap of a scalar (``adjust_scalar_min_max_vals`` for ``BPF_END``): bswap
    always swaps, ``le``/``be`` only when the host's order differs; the register keeps
    its id only when its value cannot change (``le64`` here), as the kernel prints."""
    to_le = not insn.code & op.BPF_TO_BE
    swap = alu64 or to_le == HOST_IS_BIG_ENDIAN
    result = dst.copy()
    result.s.byte_swap(insn.imm, swap)
    if swap or insn.imm < BSWAP_WIDTHS[-1]:
        result.id, result.off = 0, 0
    state.regs[insn.dst] = result
    env.log.scratch_regs.add(insn.dst)


def _check_mov(env, state: State, insn: Insn, alu64: bool) -> None:
    if insn.uses_src_reg:
        if insn.off not in MOV_SX_OFFS[insn.cls] or insn.imm:
            raise Reject("BPF_MOV uses reserved fields")
        src = env.read_reg(state, insn.src)
    elif insn.src or insn.off:
        raise Reject("BPF_MOV uses reserved fields")
    env.check_reg_write(insn.dst)
    if not insn.uses_src_reg:
        value = insn.imm if alu64 else insn.imm & U32_MAX
        env.write_reg(state, insn.dst, const_reg(value))
        return
    if alu64 and insn.off == 0:
        if src.type == SCALAR:
            env.assign_scalar_id_before_mov(src)
        env.write_reg(state, insn.dst, src.copy())
        return
    if src.is_pointer:  # a part of a pointer is some number (root may leak pointers)
        env.write_reg(state, insn.dst, scalar_reg())
        return
    if insn.off:  # movsx: the copy stays linked to its source when no sign bit is extended
        if src.s.umax < 1 << (insn.off - 1):
            env.assign_scalar_id_before_mov(src)
        new = src.copy()
        if src.s.umax >= 1 << (insn.off - 1):
            new.id, new.off = 0, 0
        new.s = coerce_reg_to_size_sx(new.s, insn.off // BITS_PER_BYTE)
        if not alu64:
            new.s.zext32()
            new.s.sync()
    else:
        if src.s.umax <= U32_MAX:
            env.assign_scalar_id_before_mov(src)
        new = src.copy()
        if src.s.umax > U32_MAX:
            new.id, new.off = 0, 0
        new.s.zext32()
        new.s.sync()
    env.write_reg(state, insn.dst, new)


def adjust_reg_min_max_vals(env, state: State, insn: Insn, dst: Reg, src: Reg, alu64: bool) -> None:
    if src.is_pointer and insn.uses_src_reg:
        if dst.is_pointer:
            if insn.op == op.BPF_SUB:  # the distance between two pointers (root)
                env.write_reg(state, insn.dst, scalar_reg())
                return
            raise Reject(f"R{insn.dst} pointer {BPF_ALU_STRING[insn.op]} pointer prohibited")
        mark_chain_precision(env, state, insn.dst)  # scalar += pointer
        adjust_ptr_min_max_vals(env, state, insn, src, dst.copy(), alu64)
        return
    if dst.is_pointer:
        if insn.uses_src_reg:
            mark_chain_precision(env, state, insn.src)
        adjust_ptr_min_max_vals(env, state, insn, dst, src, alu64)
        return
    adjust_scalar_min_max_vals(env, state, insn, dst, src, not alu64)


def adjust_scalar_min_max_vals(env, state: State, insn: Insn, dst: Reg, src: Reg, alu32: bool) -> None:
    if insn.op in (op.BPF_AND, op.BPF_OR) and src.s.var_off.is_const:
        dst = maybe_fork_scalars(env, state, insn, dst)
    result = dst.copy()
    result.s.alu(insn.code, src.s.copy(), alu32)
    result.id, result.off = _linked_add_const(insn, dst, src, alu32)

    result.precise = False
    state.regs[insn.dst] = result
    env.log.scratch_regs.add(insn.dst)


def maybe_fork_scalars(env, state: State, insn: Insn, dst: Reg) -> Reg:
    """``dst &= K`` or ``dst |= K`` with ``dst`` in [-1, 0] (what ``w s>>= 31`` leaves,
    signed 64 or 32 bits): two paths, as Linux 6.18.44 has it. The path with ``dst`` = 0 is
    pushed to run this instruction again; this one goes on with ``dst`` = -1 (all ones).
    Returns the register to compute with."""
    s = dst.s
    if s.smin == -1 and s.smax == 0:
        alu32 = False
    elif s.s32_min == -1 and s.s32_max == 0:
        alu32 = True
    else:
        return dst
    branch = state.copy()
    zero, ones = branch.regs[insn.dst], dst.copy()
    if alu32:  # __mark_reg32_known: the low half only; the 64-bit bounds stay as they were
        zero.s.mark_known32(0)
        ones.s.mark_known32(U32_MAX)
    else:  # __mark_reg_known: the whole register, no longer linked to another
        for reg in (zero, ones):
            reg.s.mark_known(0 if reg is zero else U64_MAX)
            reg.id, reg.off = 0, 0
    env.push_stack(branch, env.insn_idx, env.insn_idx)
    state.regs[insn.dst] = ones
    return ones


def _linked_add_const(insn: Insn, dst: Reg, src: Reg, alu32: bool) -> tuple[int, int]:
    """(id, off) of ``dst`` after ``dst += K`` or ``dst -= K`` (``adjust_reg_min_max_vals``):
    ``rX = rY; rX += K`` keeps rX linked to rY, K apart, so that what a branch learns of
    one moves to the other. K is the source's constant at the op's width; a 64-bit K must
    fit 32 signed bits, a 32-bit op must start from a value that fits 32 bits (its sum is
    zero-extended); one such link deep only. Any other op unlinks the result."""
    if insn.op not in (op.BPF_ADD, op.BPF_SUB) or not dst.id or (insn.uses_src_reg and insn.src == insn.dst):
        return 0, 0
    var_off = src.s.var_off
    if not (var_off.subreg().is_const if alu32 else var_off.is_const):
        return 0, 0
    value = var_off.value & U32_MAX if alu32 else var_off.value
    if not alu32 and not S32_MIN <= s64(value) <= S32_MAX:
        return 0, 0
    if alu32 and dst.s.umax > U32_MAX:
        return 0, 0
    off = s32(value)
    if insn.op == op.BPF_SUB:
        if off == S32_MIN:  # its negation overflows
            return 0, 0
        off = -off
    if dst.id & BPF_ADD_CONST:
        return 0, 0
    return dst.id | (BPF_ADD_CONST32 if alu32 else BPF_ADD_CONST64), off


def check_reg_sane_offset(reg: Reg, ptr: Reg) -> None:
    """Offsets and values too large to mean anything in pointer arithmetic."""
    s = reg.s
    what = ptr.type_name()
    if s.var_off.is_const and not -BPF_MAX_VAR_OFF < s64(s.var_off.value) < BPF_MAX_VAR_OFF:
        raise Reject(f"math between {what} pointer and {s64(s.var_off.value)} is not allowed")
    if not -BPF_MAX_VAR_OFF < reg.off < BPF_MAX_VAR_OFF:
        raise Reject(f"{what} pointer offset {reg.off} is not allowed")
    if s.smin == S64_MIN:
        raise Reject(f"math between {what} pointer and register with unbounded min value is not allowed")
    if not -BPF_MAX_VAR_OFF < s.smin < BPF_MAX_VAR_OFF:
        raise Reject(f"value {s.smin} makes {what} pointer be out of bounds")


def _fits_s32(value: int) -> bool:
    return -(1 << 31) <= value < (1 << 31)


def adjust_ptr_min_max_vals(env, state: State, insn: Insn, ptr: Reg, off_reg: Reg, alu64: bool) -> None:
    """``ptr (op)= off_reg`` or ``off_reg += ptr`` into ``insn.dst``, in the kernel's order of checks."""
    operation = insn.op
    dst_regno = insn.dst
    k = off_reg.s
    known = k.var_off.is_const
    if (known and (k.smin != k.smax or k.umin != k.umax)) or k.smin > k.smax or k.umin > k.umax:
        env.write_reg(state, dst_regno, scalar_reg())  # bounds from a dead branch: taint the result
        return
    if not alu64:
        if operation == op.BPF_SUB:  # a meaningless number (root may leak pointers)
            env.write_reg(state, dst_regno, scalar_reg())
            return
        raise Reject(f"R{dst_regno} 32-bit pointer arithmetic prohibited")
    if ptr.maybe_null:
        raise Reject(f"R{dst_regno} pointer arithmetic on {ptr.type_name()} prohibited, null-check it first")
    if ptr.type not in MOVABLE_POINTERS and not (
            ptr.type == CONST_PTR_TO_MAP and known and k.smin == 0 and operation == op.BPF_ADD):
        raise Reject(f"R{dst_regno} pointer arithmetic on {ptr.type_name()} prohibited")
    if ptr.type == PTR_TO_MEM and ptr.untrusted:  # arithmetic on untrusted memory is not tracked
        env.write_reg(state, dst_regno, ptr.copy())
        return
    check_reg_sane_offset(off_reg, ptr)
    check_reg_sane_offset(ptr, ptr)
    result = ptr.copy()
    result.precise = False
    if operation == op.BPF_ADD:
        if known and _fits_s32(ptr.off + k.smin):
            result.off = ptr.off + k.smin
        else:
            result.s.pointer_add(k)
            if ptr.type in PACKET_TYPES:
                result.id = env.new_id()
                result.range = 0  # something was added: nothing proven any more
    elif operation == op.BPF_SUB:
        if ptr is not state.regs[dst_regno] or off_reg is state.regs[dst_regno]:
            raise Reject(f"R{dst_regno} tried to subtract pointer from scalar")
        if ptr.type == PTR_TO_STACK:
            raise Reject(f"R{dst_regno} subtraction from stack pointer prohibited")
        if known and _fits_s32(ptr.off - k.smin):
            result.off = ptr.off - k.smin
        else:
            result.s.pointer_sub(k)
            if ptr.type in PACKET_TYPES:
                result.id = env.new_id()
                if k.smin < 0:
                    result.range = 0
    elif operation in (op.BPF_AND, op.BPF_OR, op.BPF_XOR):
        raise Reject(f"R{dst_regno} bitwise operator {BPF_ALU_STRING[operation]} on pointer prohibited")
    else:
        raise Reject(f"R{dst_regno} pointer arithmetic with {BPF_ALU_STRING[operation]} operator prohibited")
    check_reg_sane_offset(result, ptr)
    env.write_reg(state, dst_regno, result)


def coerce_reg_to_size_sx(s: Scalar, size: int) -> Scalar:
    """The value of a sign-extending load or move of ``size`` bytes."""
    bits = size * BITS_PER_BYTE
    if s.var_off.is_const:
        v = s.var_off.value & ((1 << bits) - 1)
        if v >> (bits - 1):
            v -= 1 << bits
        return Scalar.const(v)
    out = Scalar.unknown()
    if s.umax < (1 << (bits - 1)):
        out = s.copy()
        out.coerce_to_size(size)
        return out
    out.smin, out.smax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out.var_off = Tnum.unknown()
    return out.sync()
