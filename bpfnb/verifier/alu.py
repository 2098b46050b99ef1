"""ALU instructions: ``check_alu_op`` (operand checks, moves, neg, byte swaps),
``adjust_ptr_min_max_vals`` (arithmetic on a pointer) and
``adjust_scalar_min_max_vals`` (arithmetic on scalars, through ``Scalar.alu``)."""

from __future__ import annotations

from ..isa import Insn
from ..isa import opcodes as op
from .log import Reject
from .precision import mark_chain_precision
from .regstate import (
    CONST_PTR_TO_MAP,
    PACKET_TYPES,
    PTR_TO_MEM,
    PTR_TO_PACKET_END,
    SCALAR,
    Reg,
    const_reg,
    scalar_reg,
)
from .scalar import Scalar
from .state import State
from .tnum import Tnum, s64

# the id flag of a scalar known to be another's value plus a constant (``BPF_ADD_CONST``)
BPF_ADD_CONST = 1 << 31
S32_MAX = 0x7FFFFFFF
U32_MAX = 0xFFFFFFFF
BPF_ALU_STRING = {op.BPF_ADD: "+=", op.BPF_SUB: "-=", op.BPF_MUL: "*=", op.BPF_DIV: "/=", op.BPF_OR: "|=",
                  op.BPF_AND: "&=", op.BPF_LSH: "<<=", op.BPF_RSH: ">>=", op.BPF_NEG: "neg", op.BPF_MOD: "%=",
                  op.BPF_XOR: "^=", op.BPF_MOV: "=", op.BPF_ARSH: "s>>=", op.BPF_END: "endian"}
BITS_PER_BYTE = 8


def check_alu_op(env, state: State, insn: Insn) -> None:
    alu32 = insn.cls == op.BPF_ALU
    operation = insn.op
    if operation in (op.BPF_NEG, op.BPF_END):
        dst = env.read_reg(state, insn.dst)
        if dst.is_pointer:
            raise Reject(f"R{insn.dst} pointer arithmetic prohibited")
        if operation == op.BPF_NEG:
            value = dst.s.copy()
            result = Scalar.const(0)
            result.alu(op.BPF_SUB, value, alu32)
            env.write_reg(state, insn.dst, scalar_reg(result))
        else:  # a byte swap: an unknown value of the swapped width
            swapped = Scalar.unknown()
            if insn.imm < 64:
                swapped.coerce_to_size(insn.imm // BITS_PER_BYTE)
            env.write_reg(state, insn.dst, scalar_reg(swapped))
        return
    if operation == op.BPF_MOV:
        _check_mov(env, state, insn, alu32)
        return
    dst = env.read_reg(state, insn.dst)
    if insn.uses_src_reg:
        src = env.read_reg(state, insn.src)
    else:
        src = const_reg(insn.imm if not alu32 else (insn.imm & U32_MAX if insn.imm >= 0 else insn.imm))
    if operation in (op.BPF_DIV, op.BPF_MOD) and not insn.uses_src_reg and insn.imm == 0:
        raise Reject("div by zero")
    if dst.is_pointer or src.is_pointer:
        adjust_ptr_min_max_vals(env, state, insn, dst, src, alu32)
        return
    adjust_scalar_min_max_vals(env, state, insn, dst, src, alu32)


def _check_mov(env, state: State, insn: Insn, alu32: bool) -> None:
    if not insn.uses_src_reg:
        value = insn.imm if not alu32 else insn.imm & U32_MAX
        env.write_reg(state, insn.dst, const_reg(value))
        return
    src = env.read_reg(state, insn.src)
    if not alu32 and insn.off == 0:
        if src.type == SCALAR:
            env.assign_scalar_id_before_mov(src)
        env.write_reg(state, insn.dst, src.copy())
        return
    if src.is_pointer:
        raise Reject(f"R{insn.src} partial copy of pointer" if alu32
                     else f"R{insn.src} sign-extension part of pointer")
    new = src.copy()
    if insn.off:  # movsx
        new.id = 0
        new.s = coerce_reg_to_size_sx(new.s, insn.off // BITS_PER_BYTE)
        if alu32:
            new.s.zext32()
            new.s.sync()
    else:
        if new.s.umax > U32_MAX:
            new.id = 0
        else:
            env.assign_scalar_id_before_mov(src)
            new.id = src.id
        new.s.zext32()
        new.s.sync()
    env.write_reg(state, insn.dst, new)


def adjust_scalar_min_max_vals(env, state: State, insn: Insn, dst: Reg, src: Reg, alu32: bool) -> None:
    result = dst.copy()
    result.s.alu(insn.code, src.s.copy(), alu32)
    if not alu32 and insn.op == op.BPF_ADD and dst.id and src.s.is_const:
        value = src.s.value
        if dst.id & BPF_ADD_CONST or value > S32_MAX:
            result.id, result.off = 0, 0
        else:
            result.id = dst.id | BPF_ADD_CONST
            result.off = value
    else:
        result.id, result.off = 0, 0
    result.precise = False
    state.regs[insn.dst] = result
    env.log.scratch_regs.add(insn.dst)


def adjust_ptr_min_max_vals(env, state: State, insn: Insn, dst: Reg, src: Reg, alu32: bool) -> None:
    operation = insn.op
    if dst.is_pointer and src.is_pointer:
        if operation == op.BPF_SUB:
            env.write_reg(state, insn.dst, scalar_reg())
            return
        raise Reject(f"R{insn.dst} pointer {BPF_ALU_STRING[operation]} pointer prohibited")
    ptr, off_reg = (dst, src) if dst.is_pointer else (src, dst)
    if alu32:
        raise Reject(f"R{insn.dst} 32-bit pointer arithmetic prohibited")
    if ptr.maybe_null:
        raise Reject(f"R{insn.dst} pointer arithmetic on {ptr.type_name()} prohibited, null-check it first")
    if ptr.type == PTR_TO_MEM and ptr.untrusted:  # arithmetic on untrusted memory is not tracked
        env.write_reg(state, insn.dst, ptr.copy())
        return
    if ptr.type in (CONST_PTR_TO_MAP, PTR_TO_PACKET_END):
        raise Reject(f"R{insn.dst} pointer arithmetic on {ptr.type_name()} prohibited")
    if operation not in (op.BPF_ADD, op.BPF_SUB):
        raise Reject(f"R{insn.dst} pointer arithmetic with {BPF_ALU_STRING[operation]} operator prohibited")
    if operation == op.BPF_SUB and not dst.is_pointer:
        raise Reject(f"R{insn.dst} tried to subtract pointer from scalar")
    result = ptr.copy()
    result.precise = False
    if off_reg.type == SCALAR and insn.uses_src_reg:
        mark_chain_precision(env, state, insn.dst if off_reg is dst else insn.src, env.insn_idx or 0)
    k = off_reg.s
    if k.is_const and k.smin == k.smax:
        value = s64(k.value)
        result.off = ptr.off + value if operation == op.BPF_ADD else ptr.off - value
        env.write_reg(state, insn.dst, result)
        return
    # a variable offset
    moved = ptr.s.copy()
    moved.alu(operation | op.BPF_X, k.copy(), False)
    result.s = moved
    if ptr.type in PACKET_TYPES:
        result.id = env.new_id()
        result.range = 0
    env.write_reg(state, insn.dst, result)


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
