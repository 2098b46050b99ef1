"""The scalar domain against the running kernel: random ALU sequences on
unknown and known values, our state of the destination after each
instruction against the one Linux printed; plus unit checks."""

import random

import pytest

from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.program import Program
from bpfnb.verifier.scalar import Scalar, branch_taken, format_scalar, refine
from bpfnb.verifier.tnum import Tnum

OPS = [op.BPF_ADD, op.BPF_SUB, op.BPF_MUL, op.BPF_AND, op.BPF_OR, op.BPF_XOR, op.BPF_LSH, op.BPF_RSH, op.BPF_ARSH]
IMMS = [0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 63, 255, 0x7FFF, 0xFFFF, -1, -2, -16, 0x7FFFFFFF, -0x80000000, 1000, 0x12345]


def _program(rng: random.Random, length: int) -> list[Insn]:
    insns = [Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_W, 6, 1, 0),  # skb->len: an unknown u32
             Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_W, 7, 1, 8),  # skb->mark
             Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 8, 0, 0, rng.choice(IMMS))]
    for _ in range(length):
        cls = rng.choice([op.BPF_ALU64, op.BPF_ALU64, op.BPF_ALU])
        operation = rng.choice(OPS)
        dst = rng.choice([6, 7, 8])
        if rng.random() < 0.5:
            imm = rng.choice(IMMS)
            if operation in (op.BPF_LSH, op.BPF_RSH, op.BPF_ARSH):
                imm = rng.randrange(0, 32 if cls == op.BPF_ALU else 64)
            insns.append(Insn(cls | operation | op.BPF_K, dst, 0, 0, imm))
        else:
            insns.append(Insn(cls | operation | op.BPF_X, dst, rng.choice([6, 7, 8]), 0, 0))
    return insns + [Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 0), Insn(op.BPF_JMP | op.BPF_EXIT)]


def _our_states(insns) -> dict[int, str]:
    regs, out = {}, {}
    for i, insn in enumerate(insns[:-2]):
        cls = insn.cls
        if cls == op.BPF_LDX:
            regs[insn.dst] = Scalar.unknown()
            regs[insn.dst].coerce_to_size(4)
        elif insn.code & 0xF0 == op.BPF_MOV:
            regs[insn.dst] = Scalar.const(insn.imm)
        else:
            dst = regs[insn.dst].copy()
            alu32 = cls == op.BPF_ALU
            if insn.code & op.BPF_X:
                src = regs[insn.src].copy()
            else:
                src = Scalar.const(insn.imm & 0xFFFFFFFF if alu32 and insn.imm >= 0 else insn.imm)
            dst.alu(insn.code, src, alu32)
            regs[insn.dst] = dst
        out[i] = format_scalar(regs[insn.dst])
    return out


@pytest.mark.kernel
def test_random_alu_sequences_print_as_the_kernels():
    from bpfnb.kernel import load

    rng = random.Random(2026)
    compared, differing = 0, []
    for _ in range(80):
        insns = _program(rng, 7)
        with load(Program("alu", tuple(insns)), log_level=2) as loaded:
            log = loaded.kernel_log
        ours = _our_states(insns)
        for line in log.insn_lines():
            reg = f"R{insns[line.insn].dst}"
            if line.insn in ours and reg in line.state:
                compared += 1
                if line.state[reg].text != ours[line.insn]:
                    differing.append((line.disasm, line.state[reg].text, ours[line.insn]))
    assert compared > 600
    assert differing == []


def test_printing_follows_the_kernels_rules():
    u32 = Scalar.unknown()
    u32.coerce_to_size(4)
    assert format_scalar(u32) == "scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))"
    assert format_scalar(Scalar.unknown()) == "scalar()"
    assert format_scalar(Scalar.const(-2)) == "-2" and format_scalar(Scalar.const(70000)) == "0x11170"
    assert format_scalar(Scalar.const(5), precise=True) == "P5"
    small = Scalar(Tnum.range(0, 10)).sync()
    assert format_scalar(small, id=1) == \
        "scalar(id=1,smin=smin32=0,smax=umax=smax32=umax32=15,var_off=(0x0; 0xf))"


def test_branches_refine_both_sides():
    x = Scalar.unknown()
    x.coerce_to_size(4)
    ten = Scalar.const(10)
    assert branch_taken(x, ten, op.BPF_JGT, False) == -1
    taken, other = x.copy(), ten.copy()
    refine(taken, other, op.BPF_JGT, False)
    taken.sync()
    assert (taken.umin, taken.umax) == (11, 0xFFFFFFFF)
    fall, other = x.copy(), ten.copy()
    refine(fall, other, op.BPF_JLE, False)
    fall.sync()
    assert format_scalar(fall) == "scalar(smin=smin32=0,smax=umax=smax32=umax32=10,var_off=(0x0; 0xf))"
    assert branch_taken(fall, ten, op.BPF_JGT, False) == 0
    assert branch_taken(Scalar.const(3), Scalar.const(3), op.BPF_JEQ, True) == 1


def test_tnum_step_is_the_next_member():
    rng = random.Random(7)
    for _ in range(3000):
        mask = rng.getrandbits(8)
        t = Tnum(rng.getrandbits(8) & ~mask, mask)
        z = rng.getrandbits(9)
        tmax = t.value | t.mask
        members = [v for v in range(1 << 9) if v & ~mask == t.value and v > z]
        assert t.step(z) == (tmax if z >= tmax else min(members))


def test_a_range_meeting_the_tnum_once_is_that_value():
    """6.18.y: ``r1 &= 0x100000; if r1 == 0 goto`` leaves 0x100000 on the fall-through
    (libbpf-tools filelife: the kernel prints R1=0x100000)."""
    s = Scalar.unknown()
    s.var_off = Tnum(0, 0x100000)
    s.umin, s.umax = 1, 0x100000
    s.sync()
    assert s.var_off.is_const and s.var_off.value == 0x100000
    assert (s.umin, s.umax, s.smin, s.smax) == (0x100000,) * 4


def test_byte_swaps_keep_the_known_bits():
    """``tnum_bswap`` and ``scalar_byte_swap``: the swapped bits stay known, the ranges
    follow from them; a truncating le16 drops the high bits (values as Linux 6.18 prints)."""
    assert Tnum(0x1234, 0x00F0).bswap(16) == Tnum(0x3412, 0xF000)
    assert Tnum(0x1122334455667788, 0).bswap(64) == Tnum(0x8877665544332211, 0)
    assert Tnum(0xAA_12345678, 0xFF_0000FF00).bswap(32) == Tnum(0x78563412, 0x00FF0000)
    high_byte = Scalar.unknown()
    high_byte.alu(op.BPF_ALU64 | op.BPF_AND | op.BPF_K, Scalar.const(0x3F00), alu32=False)
    high_byte.byte_swap(16, swap=True)
    assert format_scalar(high_byte) == "scalar(smin=smin32=0,smax=umax=smax32=umax32=63,var_off=(0x0; 0x3f))"
    wide = Scalar.const(0x1122334455667788)
    wide.byte_swap(16, swap=False)
    assert format_scalar(wide) == "30600"  # 0x7788


def test_a_signed_range_across_zero_keeps_the_half_the_unsigned_one_meets():
    """``__reg32_deduce_bounds`` / ``__reg64_deduce_bounds`` when the signed range crosses
    the sign boundary (values as Linux 6.18.44 prints them for the log_lines fixtures
    s32_across_sign_* / s64_across_sign_*)."""
    def across(u_min: int, u_max: int, alu32: bool) -> str:
        s = Scalar.unknown()
        if alu32:
            s.coerce_to_size(4)
            s.s32_min, s.s32_max, s.u32_min, s.u32_max = -3, 5, u_min, u_max
        else:
            s.smin, s.smax, s.umin, s.umax = -3, 5, u_min, u_max
        return format_scalar(s.sync())

    assert across(0, 0x80000003, True) == "scalar(smin=smin32=0,smax=umax=smax32=umax32=5,var_off=(0x0; 0x7))"
    assert across(6, 0xFFFFFFFF, True) == ("scalar(smin=umin=umin32=0xfffffffd,smax=umax=0xffffffff,smin32=-3,"
                                           "smax32=-1,var_off=(0xfffffffc; 0x3))")
    assert across(0, 0x8000000000000003, False) == \
        "scalar(smin=smin32=0,smax=umax=smax32=umax32=5,var_off=(0x0; 0x7))"
    assert across(6, (1 << 64) - 1, False) == ("scalar(smin=smin32=-3,smax=smax32=-1,umin=0xfffffffffffffffd,"
                                               "umin32=0xfffffffd,var_off=(0xfffffffffffffffc; 0x3))")
