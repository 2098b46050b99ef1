"""Disassembly against what the Linux verifier prints.

``data/drops_kernel_log.txt`` holds the instruction lines of the log that
Linux 6.18 printed (log_level 2, loaded with bpftool) for
``bpfnb/data/drops.bpf.o``; our text of the same section must equal it on
every line the loader did not relocate.
"""

import pathlib
import re

import pytest
from elftools.elf.elffile import ELFFile

from bpfnb.isa import Insn, decode, ld_imm64
from bpfnb.isa import opcodes as op
from bpfnb.isa.disasm import format_insn, format_program
from bpfnb.isa.helpers import HELPER_NAMES, helper_name

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(__file__).parent / "data"

# Lines the loader changed before the kernel printed them: map value
# addresses (LD_IMM64) and CO-RE field offsets of struct sk_buff/net_device.
RELOCATED = {21, 30, 32, 34, 40, 45, 48, 50, 59, 92, 99, 112, 119, 137}


def kernel_lines():
    out = {}
    for line in (DATA / "drops_kernel_log.txt").read_text().splitlines():
        m = re.match(r"(\d+): (.*)$", line)
        out[int(m.group(1))] = m.group(2)
    return out


def test_every_unrelocated_line_equals_the_kernels():
    with open(ROOT / "bpfnb/data/drops.bpf.o", "rb") as f:
        insns = decode(ELFFile(f).get_section_by_name("tp_btf/kfree_skb").data())
    expected = kernel_lines()
    assert len(expected) > 100
    compared = 0
    for i, text in expected.items():
        nxt = insns[i + 1] if insns[i].is_ld_imm64 else None
        ours = format_insn(insns[i], nxt)
        if i in RELOCATED:
            assert ours.split(" ", 1)[0] == text.split(" ", 1)[0]  # same opcode
            continue
        assert ours == text, f"insn {i}"
        compared += 1
    assert compared == len(expected) - len(RELOCATED)


A = op.BPF_ALU64
J = op.BPF_JMP


@pytest.mark.parametrize(
    "insn, text",
    [
        (Insn(A | op.BPF_MOV | op.BPF_K, 0, 0, 0, 0), "(b7) r0 = 0"),
        (Insn(A | op.BPF_ADD | op.BPF_K, 1, 0, 0, -8), "(07) r1 += -8"),
        (Insn(op.BPF_ALU | op.BPF_MOV | op.BPF_X, 1, 2), "(bc) w1 = w2"),
        (Insn(A | op.BPF_MOV | op.BPF_X, 1, 2, 8), "(bf) r1 = (s8)r2"),
        (Insn(A | op.BPF_DIV | op.BPF_X, 1, 2, 1), "(3f) r1 s/= r2"),
        (Insn(op.BPF_ALU | op.BPF_MOD | op.BPF_K, 1, 0, 1, 3), "(94) w1 s%= 3"),
        (Insn(A | op.BPF_NEG, 3), "(87) r3 = -r3"),
        (Insn(op.BPF_ALU | op.BPF_END | op.BPF_TO_BE, 1, 0, 0, 16), "(dc) r1 = be16 r1"),
        (Insn(A | op.BPF_END, 1, 0, 0, 64), "(d7) r1 = bswap64 r1"),
        (Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_DW, 1, 1, 16), "(79) r1 = *(u64 *)(r1 +16)"),
        (Insn(op.BPF_LDX | op.BPF_MEMSX | op.BPF_W, 1, 2, 4), "(81) r1 = *(s32 *)(r2 +4)"),
        (Insn(op.BPF_STX | op.BPF_MEM | op.BPF_W, 10, 2, -8), "(63) *(u32 *)(r10 -8) = r2"),
        (Insn(op.BPF_ST | op.BPF_MEM | op.BPF_DW, 10, 0, -8, 0), "(7a) *(u64 *)(r10 -8) = 0"),
        (Insn(op.BPF_STX | op.BPF_ATOMIC | op.BPF_DW, 1, 2, 0, op.BPF_ADD),
         "(db) lock *(u64 *)(r1 +0) += r2"),
        (Insn(op.BPF_STX | op.BPF_ATOMIC | op.BPF_DW, 1, 0, 0, op.BPF_ADD | op.BPF_FETCH),
         "(db) r0 = atomic64_fetch_add((u64 *)(r1 +0), r0)"),
        # the kernel's print_bpf_insn names a 32-bit atomic's registers rN (llvm-objdump wN)
        (Insn(op.BPF_STX | op.BPF_ATOMIC | op.BPF_W, 0, 1, 0, op.BPF_ADD),
         "(c3) lock *(u32 *)(r0 +0) += r1"),
        (Insn(op.BPF_STX | op.BPF_ATOMIC | op.BPF_W, 1, 2, 4, op.BPF_CMPXCHG),
         "(c3) r0 = atomic_cmpxchg((u32 *)(r1 +4), r0, r2)"),
        (Insn(op.BPF_STX | op.BPF_ATOMIC | op.BPF_W, 1, 2, -4, op.BPF_XOR | op.BPF_FETCH),
         "(c3) r2 = atomic_fetch_xor((u32 *)(r1 -4), r2)"),
        (Insn(op.BPF_STX | op.BPF_ATOMIC | op.BPF_DW, 1, 2, 0, op.BPF_XCHG),
         "(db) r2 = atomic64_xchg((u64 *)(r1 +0), r2)"),
        (Insn(op.BPF_STX | op.BPF_ATOMIC | op.BPF_B, 3, 1, 2, op.BPF_LOAD_ACQ),
         "(d3) r3 = load_acquire((u8 *)(r1 +2))"),
        (Insn(op.BPF_STX | op.BPF_ATOMIC | op.BPF_H, 1, 3, 2, op.BPF_STORE_REL),
         "(cb) store_release((u16 *)(r1 +2), r3)"),
        (Insn(op.BPF_LD | op.BPF_ABS | op.BPF_B, 0, 0, 0, 12), "(30) r0 = *(u8 *)skb[12]"),
        (Insn(J | op.BPF_CALL, 0, 0, 0, 111), "(85) call bpf_skb_output#111"),
        (Insn(J | op.BPF_CALL, 0, op.BPF_PSEUDO_CALL, 0, 5), "(85) call pc+5"),
        (Insn(J | op.BPF_JEQ | op.BPF_K, 4, 0, 2, 0), "(15) if r4 == 0x0 goto pc+2"),
        (Insn(op.BPF_JMP32 | op.BPF_JEQ | op.BPF_K, 1, 0, 2, 1), "(16) if w1 == 0x1 goto pc+2"),
        (Insn(J | op.BPF_JSGT | op.BPF_K, 1, 0, 1, -1), "(65) if r1 s> 0xffffffff goto pc+1"),
        (Insn(J | op.BPF_JA, off=-3), "(05) goto pc-3"),
        (Insn(op.BPF_JMP32 | op.BPF_JA, imm=70000), "(06) gotol pc+70000"),
        (Insn(J | op.BPF_EXIT), "(95) exit"),
    ],
)
def test_kernel_syntax(insn, text):
    assert format_insn(insn) == text


def test_ld_imm64_prints_the_whole_value_and_skips_its_second_slot():
    lo, hi = ld_imm64(1, 0xFFFF888100F7E000)
    listing = format_program([lo, hi, Insn(J | op.BPF_EXIT)])
    assert listing == "0: (18) r1 = 0xffff888100f7e000\n2: (95) exit"


def test_helper_table_has_the_kernel_ids():
    assert (HELPER_NAMES[1], HELPER_NAMES[25], HELPER_NAMES[111]) == (
        "map_lookup_elem", "perf_event_output", "skb_output")
    assert helper_name(113) == "bpf_probe_read_kernel"
    assert helper_name(10_000) == "unknown"
