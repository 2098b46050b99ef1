"""The type walk of a tp_btf/kfree_skb program: ctx → sk_buff → net_device → ifindex."""

import pathlib

import pytest

from bpfnb.btf import LIVE_VMLINUX, kernel_btf
from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.program import Program
from bpfnb.widgets.stepper import VerifierStepper
from bpfnb.widgets.typewalk import TypeWalkView, type_chains, type_edges
from bpfnb.widgets.walk import Visit, Walk

needs_btf = pytest.mark.skipif(not pathlib.Path(LIVE_VMLINUX).exists(), reason=f"no {LIVE_VMLINUX}")


def ldx(size, dst, src, off):
    return Insn(op.BPF_LDX | op.BPF_MEM | size, dst, src, off, 0)


@pytest.fixture
def walk():
    insns = (
        ldx(op.BPF_DW, 6, 1, 0),       # 0: r6 = *(u64 *)(r1 +0)     skb (arg 0)
        ldx(op.BPF_DW, 1, 6, 16),      # 1: r1 = *(u64 *)(r6 +16)    skb->dev
        ldx(op.BPF_W, 0, 1, 224),      # 2: r0 = *(u32 *)(r1 +224)   dev->ifindex
        ldx(op.BPF_W, 2, 6, 112),      # 3: r2 = *(u32 *)(r6 +112)   skb->len
        Insn(op.BPF_JMP | op.BPF_EXIT),
    )
    prog = Program("walk_skb", insns, type="tracing", attach_name="kfree_skb",
                   kernel_btf=kernel_btf() if pathlib.Path(LIVE_VMLINUX).exists() else None)
    ctx = {"R1": "ctx()", "R10": "fp0"}
    s1 = {**ctx, "R6": "trusted_ptr_sk_buff()"}
    s2 = {**s1, "R1": "untrusted_ptr_net_device()"}
    s3 = {**s2, "R0": "scalar(smin=smin32=-2147483648)"}
    s4 = {**s3, "R2": "scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))"}
    return Walk(prog, [Visit(0, 0, None, s1), Visit(1, 1, 0, s2), Visit(2, 2, 1, s3), Visit(3, 3, 2, s4),
                       Visit(4, 4, 3, s4, event="exit")])


def test_edges_name_sources_and_targets(walk):
    edges = type_edges(walk)
    assert [(e.insn, e.source, e.offset, e.target) for e in edges] == [
        (0, "ctx", 0, "struct sk_buff"), (1, "struct sk_buff", 16, "struct net_device"),
        (2, "struct net_device", 224, "scalar"), (3, "struct sk_buff", 112, "scalar")]


@needs_btf
def test_field_and_argument_names_come_from_the_kernel_btf(walk):
    edges = type_edges(walk)
    assert edges[0].field == "arg 0 (struct sk_buff *)"
    assert edges[1].field == "dev"  # found inside sk_buff's anonymous unions
    assert edges[2].field == "ifindex" and edges[3].field == "len"


def test_chains_join_loads_through_the_pointers_they_made(walk):
    chains = type_chains(walk)
    assert [[e.insn for e in c] for c in chains] == [[0, 1, 2], [0, 3]]


def test_view_buttons_move_the_stepper(walk):
    stepper = VerifierStepper(walk, cfg=False)
    view = TypeWalkView(walk, stepper)
    first_row = view.children[0]
    buttons = [c for c in first_row.children if hasattr(c, "click")]
    buttons[-1].click()
    assert stepper.step == 2
    assert view.text().splitlines()[0].startswith("ctx →[")
    assert "struct sk_buff (trusted_ptr_) →[" in view.text()
    assert "struct net_device (untrusted_ptr_)" in view.text()
    assert "struct net_device" in view._repr_html_()
