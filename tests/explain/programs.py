"""Small raw programs, each rejected by the verifier for one reason.

Shared by the explanation tests; ``REJECTS`` maps a name to
``(program type, instructions, the explanation kind expected)``.
"""

from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op


def mov(dst, imm):
    return Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, dst, 0, 0, imm)


def movr(dst, src):
    return Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, dst, src, 0, 0)


def addr(dst, src):
    return Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_X, dst, src, 0, 0)


def addi(dst, imm):
    return Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, dst, 0, 0, imm)


def jgtr(dst, src, off):
    return Insn(op.BPF_JMP | op.BPF_JGT | op.BPF_X, dst, src, off, 0)


def ldx(size, dst, src, off):
    return Insn(op.BPF_LDX | op.BPF_MEM | size, dst, src, off, 0)


def st(size, dst, off, imm):
    return Insn(op.BPF_ST | op.BPF_MEM | size, dst, 0, off, imm)


def ja(off):
    return Insn(op.BPF_JMP | op.BPF_JA, 0, 0, off, 0)


def jgt(dst, imm, off):
    return Insn(op.BPF_JMP | op.BPF_JGT | op.BPF_K, dst, 0, off, imm)


def call(helper):
    return Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, helper)


EXIT = Insn(op.BPF_JMP | op.BPF_EXIT)
W, H, B, DW = op.BPF_W, op.BPF_H, op.BPF_B, op.BPF_DW

REJECTS = {
    "uninit_reg": ("socket_filter", (EXIT,), "uninit_reg"),
    "scalar_deref": ("socket_filter", (mov(0, 5), ldx(DW, 0, 0, 0), EXIT), "scalar_deref"),
    "ctx_off": ("socket_filter", (ldx(W, 0, 1, 3), EXIT), "ctx_access"),
    "stack_write_past_frame": ("socket_filter", (st(DW, 10, -520, 0), mov(0, 0), EXIT), "stack_bounds"),
    "dead_code": ("socket_filter", (mov(0, 0), EXIT, EXIT), "unreachable"),
    "jump_out": ("socket_filter", (ja(5), mov(0, 0), EXIT), "jump_range"),
    "self_loop": ("socket_filter", (mov(0, 0), ja(-1)), "loop"),
    "unknown_helper": ("socket_filter", (call(9999), EXIT), "unknown_helper"),
    "helper_not_for_type": ("socket_filter", (call(111), EXIT), "helper_prog_type"),
    "packet_unchecked": ("sched_cls", (ldx(W, 2, 1, 76), ldx(B, 0, 2, 0), EXIT), "packet_bounds"),
    "packet_short_check": ("sched_cls", (ldx(W, 2, 1, 76), ldx(W, 3, 1, 80), movr(4, 2), addi(4, 1),
                                         jgtr(4, 3, 2), ldx(H, 0, 2, 0), EXIT, mov(0, 0), EXIT),
                           "packet_bounds"),
    "ctx_var_offset": ("socket_filter", (ldx(W, 2, 1, 0), addr(1, 2), ldx(W, 0, 1, 0), EXIT), "var_ctx"),
    "ctx_moved": ("socket_filter", (addi(1, 4), ldx(W, 0, 1, 0), EXIT), "modified_ptr"),
    "ctx_write": ("socket_filter", (st(W, 1, 0, 0), mov(0, 0), EXIT), "ctx_access"),
    "ptr_mul": ("socket_filter", (movr(2, 10), Insn(op.BPF_ALU64 | op.BPF_MUL | op.BPF_K, 2, 0, 0, 2),
                                  mov(0, 0), EXIT), "ptr_alu"),
    "ptr_alu32": ("socket_filter", (Insn(op.BPF_ALU | op.BPF_ADD | op.BPF_K, 1, 0, 0, 2), mov(0, 0), EXIT),
                  "ptr_alu"),
    "cgroup_ret_5": ("cgroup_skb", (mov(0, 5), EXIT), "return_range"),
    "stack_var_unbounded": ("socket_filter", (ldx(W, 2, 1, 0), movr(3, 10), addr(3, 2),
                                              st(B, 3, -8, 0), mov(0, 0), EXIT), "unbounded"),
    "unknown_opcode": ("socket_filter", (Insn(0xFF, 0, 0, 0, 0), mov(0, 0), EXIT), "opcode"),
}
