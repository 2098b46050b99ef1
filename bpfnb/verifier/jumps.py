"""Conditional jumps: ``check_cond_jmp_op`` decides a branch when it can
(``is_branch_taken``, ``is_pkt_ptr_branch_taken``) and otherwise pushes the
other side, each side learning what its condition implies
(``reg_set_min_max``, ``sync_linked_regs``, ``mark_ptr_or_null_regs``,
``try_match_pkt_pointers``/``find_good_pkt_pointers``)."""

from __future__ import annotations

import dataclasses
import functools

from ..isa import Insn
from ..isa import opcodes as op
from .log import Reject
from .precision import (
    INSN_F_DST_REG_STACK,
    INSN_F_SRC_REG_STACK,
    LinkedReg,
    mark_chain_precision,
    push_jmp_history,
)
from .regstate import (
    BPF_ADD_CONST,
    BPF_ADD_CONST32,
    CONST_PTR_TO_MAP,
    PTR_TO_BTF_ID,
    PTR_TO_MAP_KEY,
    PTR_TO_MAP_VALUE,
    PTR_TO_MEM,
    PTR_TO_PACKET,
    PTR_TO_PACKET_END,
    PTR_TO_PACKET_META,
    PTR_TO_SOCK_COMMON,
    PTR_TO_SOCKET,
    PTR_TO_STACK,
    PTR_TO_TCP_SOCK,
    PTR_TO_XDP_SOCK,
    SCALAR,
    Reg,
    const_reg,
)
from .scalar import FLIP, REVERSE, Scalar, branch_taken, refine
from .state import State
from .tnum import U64

# a pointer compared with the packet end: what the failing side learns (the kernel's
# AT_PKT_END and BEYOND_PKT_END ranges)
AT_PKT_END, BEYOND_PKT_END = -1, -2
MAX_PACKET_OFF = 0xFFFF
UNKNOWN = -1  # is_branch_taken: the outcome depends on the values
LINKED_REGS_MAX = 6  # scalars one jump history entry links
BPF_REG_FP = 10


def check_cond_jmp_op(env, state: State, insn: Insn, i: int) -> int:
    is_jmp32 = insn.cls == op.BPF_JMP32
    opcode = insn.op
    dst = env.read_reg(state, insn.dst)
    if insn.uses_src_reg:
        if insn.imm:
            raise Reject("BPF_JMP/JMP32 uses reserved fields")
        src = env.read_reg(state, insn.src)
    else:
        if insn.src:
            raise Reject("BPF_JMP/JMP32 uses reserved fields")
        src = const_reg(insn.imm)  # the immediate sign-extended, for either width
    target = i + insn.off + 1
    flags = (INSN_F_SRC_REG_STACK if insn.uses_src_reg and src.type == PTR_TO_STACK else 0) | \
        (INSN_F_DST_REG_STACK if dst.type == PTR_TO_STACK else 0)
    if flags:  # a stack pointer compared: backtracking must not look for its origin
        push_jmp_history(env, state, flags)
    pred = is_branch_taken(dst, src, opcode, is_jmp32)
    if pred >= 0:  # the outcome hangs on these values: they become precise
        if dst.type == SCALAR:
            mark_chain_precision(env, state, insn.dst)
        if insn.uses_src_reg and src.type == SCALAR:
            mark_chain_precision(env, state, insn.src)
    if pred == 1:
        env.record(state, i, "branch", "always taken")
        env.log.print_insn_state(state, i)
        return target
    if pred == 0:
        env.record(state, i, "branch", "never taken")
        env.log.print_insn_state(state, i)
        return i + 1
    # scalars sharing an id with the compared ones learn from this jump: record them
    # before the other side is copied, so both sides' histories have them
    linked: list[LinkedReg] = []
    if insn.uses_src_reg and src.type == SCALAR and src.id:
        collect_linked_regs(state, src.id, linked, env.liveness.live, i)
    if dst.type == SCALAR and dst.id:
        collect_linked_regs(state, dst.id, linked, env.liveness.live, i)
    if len(linked) > 1:
        push_jmp_history(env, state, 0, tuple(linked))
    other = state.copy()
    o_dst = other.regs[insn.dst]
    o_src = other.regs[insn.src] if insn.uses_src_reg else src.copy()
    t_src_reg = src if insn.uses_src_reg else src.copy()
    if dst.type == SCALAR and src.type == SCALAR:
        reg_set_min_max(other, state, insn, o_dst, o_src, dst, t_src_reg, is_jmp32, linked)
    elif dst.maybe_null and src.type == SCALAR and src.s.var_off.equals_const(0) and \
            opcode in (op.BPF_JEQ, op.BPF_JNE):
        null_side, ok_side = (other, state) if opcode == op.BPF_JEQ else (state, other)
        pid = dst.id  # read before either side is marked: marking ``state`` changes ``dst``
        mark_ptr_or_null_regs(null_side, pid, is_null=True)
        mark_ptr_or_null_regs(ok_side, pid, is_null=False)
    elif dst.is_pkt and src.is_pkt and not is_jmp32:
        try_match_pkt_pointers(insn, state, other)
    env.record(state, i, "branch")
    env.push_stack(other, target, i)
    env.log.print_insn_state(state, i)
    return i + 1


def reg_set_min_max(other: State, this: State, insn: Insn, o_dst: Reg, o_src: Reg, dst: Reg, src: Reg,
                    is_jmp32: bool, linked: list[LinkedReg]) -> None:
    """Both sides of a scalar comparison learn its outcome (``other``: taken)."""
    opcode = insn.op
    refine(o_dst.s, o_src.s, opcode, is_jmp32)
    o_dst.s.sync()
    o_src.s.sync()
    refine(dst.s, src.s, REVERSE[opcode], is_jmp32)
    dst.s.sync()
    src.s.sync()
    # the kernel's order: the source's copies on both sides, then the destination's
    if insn.uses_src_reg:
        sync_linked_regs(this, src, linked)
        sync_linked_regs(other, o_src, linked)
    sync_linked_regs(this, dst, linked)
    sync_linked_regs(other, o_dst, linked)


def is_branch_taken(dst: Reg, src: Reg, opcode: int, is_jmp32: bool) -> int:
    """1 taken, 0 not taken, -1 unknown."""
    if dst.is_pointer or src.is_pointer:
        if dst.is_pkt and src.is_pkt:
            return is_pkt_ptr_branch_taken(dst, src, opcode) if not is_jmp32 else UNKNOWN
        ptr, k = (dst, src) if dst.is_pointer else (src, dst)
        if ptr.maybe_null or k.is_pointer or not k.s.is_const_for(is_jmp32) or k.s.const_value(is_jmp32):
            return UNKNOWN
        if not reg_not_null(ptr):
            return UNKNOWN
        return {op.BPF_JEQ: 0, op.BPF_JNE: 1}.get(opcode, UNKNOWN)
    return branch_taken(dst.s, src.s, opcode, is_jmp32)


def _regs_and_spills(frame) -> list[Reg]:
    return list(frame.regs) + [s.spilled for s in frame.stack.values() if s.is_spill and s.spilled]


def collect_linked_regs(state: State, reg_id: int, linked: list[LinkedReg], live_regs, insn_idx: int) -> None:
    """The scalar registers live there and spilled scalars sharing ``reg_id``, innermost
    frame first (past LINKED_REGS_MAX the rest lose their id). A register counts where
    it is live before its frame's instruction: the jump's for the innermost frame, the
    call's for a caller (``live_regs`` before each instruction)."""
    base_id = reg_id & ~BPF_ADD_CONST
    frames = state.frames
    for depth in range(len(frames) - 1, -1, -1):
        frame = frames[depth]
        live = live_regs[insn_idx if depth == len(frames) - 1 else frames[depth + 1].callsite]
        candidates = [(r, frame.regs[r], True) for r in range(BPF_REG_FP) if r in live] + [
            (spi, frame.stack[spi].spilled, False) for spi in sorted(frame.stack)
            if frame.stack[spi].is_spill and frame.stack[spi].spilled is not None]
        for index, reg, is_reg in candidates:
            if reg.type != SCALAR or (reg.id & ~BPF_ADD_CONST) != base_id:
                continue
            if len(linked) < LINKED_REGS_MAX:
                linked.append(LinkedReg(frame.frameno, index, is_reg))
            else:
                reg.id = 0


def sync_linked_regs(state: State, known: Reg, linked: list[LinkedReg]) -> None:
    """The scalars ``collect_linked_regs`` found sharing ``known``'s id (copies, or copies
    plus a constant) learn its range."""
    if known.type != SCALAR or not known.id:
        return
    base_id = known.id & ~BPF_ADD_CONST
    for entry in linked:
        frame = state.frames[entry.frameno]
        reg = frame.regs[entry.index] if entry.is_reg else frame.stack[entry.index].spilled
        if reg is None or reg is known or reg.type != SCALAR or (reg.id & ~BPF_ADD_CONST) != base_id:
            continue
        reg.precise = known.precise  # copy_register_state
        if not (reg.id & BPF_ADD_CONST) and not (known.id & BPF_ADD_CONST) or reg.off == known.off:
            # copy_register_state: the whole register, its id and delta too (a link of delta 0
            # becomes a plain copy)
            reg.s = known.s.copy()
            reg.id, reg.off = known.id, known.off
        else:
            delta = Scalar.const((reg.off - known.off) & U64)
            moved = known.s.copy()
            moved.alu(op.BPF_ADD | op.BPF_X, delta, False)
            if (reg.id | known.id) & BPF_ADD_CONST32:  # a 32-bit sum on either side: zero-extended
                moved.zext32()
                moved.sync()
            reg.s = moved


def mark_ptr_or_null_regs(state: State, pid: int, *, is_null: bool) -> None:
    if is_null:  # an acquired pointer that is NULL holds no reference (release_reference_nomark)
        state.refs = tuple(ref for ref in state.refs if ref[0] != pid)
    for frame in state.frames:
        for reg in _regs_and_spills(frame):
            if reg is None or not reg.maybe_null or reg.id != pid:
                continue
            if is_null:
                reg.type, reg.s, reg.id, reg.map, reg.maybe_null = SCALAR, Scalar.const(0), 0, None, False
                reg.ref_obj_id, reg.ringbuf, reg.mem_size = 0, False, 0
            else:
                reg.maybe_null = False
                reg.id = 0
                if reg.type == PTR_TO_MAP_VALUE and reg.map is not None and reg.map.inner is not None:
                    # a map of maps' value is its inner map: a map pointer now
                    reg.type, reg.map = CONST_PTR_TO_MAP, inner_map_meta(reg.map)
                elif reg.type == PTR_TO_MAP_VALUE and reg.map is not None and reg.map.type in MAP_VALUE_SOCKETS:
                    # an xskmap's or sockmap's value is the socket it holds
                    reg.type, reg.map = MAP_VALUE_SOCKETS[reg.map.type], None


# the register a looked-up value of these maps becomes after its NULL check
MAP_VALUE_SOCKETS = {"xskmap": PTR_TO_XDP_SOCK, "sockmap": PTR_TO_SOCKET, "sockhash": PTR_TO_SOCKET}


@functools.cache
def inner_map_meta(outer):
    """``map->inner_map_meta``: the inner template of a map of maps as the kernel keeps it
    (``bpf_map_meta_alloc``: the template's type, sizes and flags, without a name)."""
    return dataclasses.replace(outer.inner, name="", initial=None)


def try_match_pkt_pointers(insn: Insn, this: State, other: State) -> None:
    """After ``pkt (op) pkt_end`` the side where the access is proven gets its range;
    the other side learns the pointer is at or beyond the end."""
    opcode = insn.op
    dst, src = this.regs[insn.dst], this.regs[insn.src]
    # data_meta is checked against data as data is against data_end
    if (dst.type == PTR_TO_PACKET and src.type == PTR_TO_PACKET_END) or (
            dst.type == PTR_TO_PACKET_META and reg_is_init_pkt_pointer(src, PTR_TO_PACKET)):
        pkt_regno, table = insn.dst, {
            op.BPF_JGT: ("this", False, "other", True), op.BPF_JLT: ("other", True, "this", False),
            op.BPF_JGE: ("this", True, "other", False), op.BPF_JLE: ("other", False, "this", True)}
    elif (dst.type == PTR_TO_PACKET_END and src.type == PTR_TO_PACKET) or (
            reg_is_init_pkt_pointer(dst, PTR_TO_PACKET) and src.type == PTR_TO_PACKET_META):
        pkt_regno, table = insn.src, {
            op.BPF_JGT: ("other", True, "this", False), op.BPF_JLT: ("this", False, "other", True),
            op.BPF_JGE: ("other", False, "this", True), op.BPF_JLE: ("this", True, "other", False)}
    else:
        return
    if opcode not in table:
        return
    good_side, right_open, end_side, beyond = table[opcode]
    sides = {"this": this, "other": other}
    find_good_pkt_pointers(sides[good_side], sides[good_side].regs[pkt_regno], right_open)
    end_reg = sides[end_side].regs[pkt_regno]
    if end_reg.type == PTR_TO_PACKET:  # mark_pkt_end: "PTR_TO_PACKET_META is not supported yet"
        end_reg.range = BEYOND_PKT_END if beyond else AT_PKT_END


def reg_is_init_pkt_pointer(reg: Reg, which: str) -> bool:
    """A packet pointer as the context gave it (a range proven earlier is fine)."""
    return reg.type == which and not reg.id and not reg.off and reg.s.var_off.equals_const(0)


def find_good_pkt_pointers(state: State, pkt: Reg, right_open: bool) -> None:
    if pkt.off < 0 or (pkt.off == 0 and right_open):
        return
    if pkt.s.umax > MAX_PACKET_OFF or pkt.s.umax + pkt.off > MAX_PACKET_OFF:
        return
    new_range = pkt.off + (1 if right_open else 0)
    for frame in state.frames:
        for reg in _regs_and_spills(frame):
            if reg is not None and reg.type == pkt.type and reg.id == pkt.id:
                reg.range = max(reg.range, new_range)


def is_pkt_ptr_branch_taken(dst: Reg, src: Reg, opcode: int) -> int:
    """Decided once a pointer is known at/beyond the end."""
    if src.type == PTR_TO_PACKET_END:
        pkt = dst
    elif dst.type == PTR_TO_PACKET_END:
        pkt, opcode = src, FLIP[opcode]
    else:
        return UNKNOWN
    if pkt.range >= 0:
        return UNKNOWN
    if opcode in (op.BPF_JLE, op.BPF_JGT) and pkt.range == BEYOND_PKT_END:
        return int(opcode == op.BPF_JGT)
    if opcode in (op.BPF_JLT, op.BPF_JGE):
        return int(opcode == op.BPF_JGE)
    return UNKNOWN


def reg_not_null(reg: Reg) -> bool:
    """The pointer kinds the kernel knows cannot be NULL."""
    if reg.maybe_null:
        return False
    if reg.type == PTR_TO_BTF_ID:  # is_trusted_reg: referenced, or trusted and not untrusted
        return bool(reg.ref_obj_id) or (reg.trusted and not reg.untrusted)
    if reg.type == PTR_TO_MEM:  # memory read through a walked pointer may be NULL
        return not reg.untrusted
    return reg.type in (PTR_TO_MAP_VALUE, PTR_TO_MAP_KEY, PTR_TO_SOCKET, PTR_TO_TCP_SOCK, PTR_TO_SOCK_COMMON,
                        CONST_PTR_TO_MAP)
