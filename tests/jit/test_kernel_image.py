"""Our JIT against the running kernel's: the xlated program the kernel JIT'd,
translated by bpfnb at the kernel's addresses, byte for byte per instruction."""

import pytest

from bpfnb.btf import kernel_btf
from bpfnb.elf import load
from bpfnb.jit.x86_64.kernel import compare_with_kernel, uses_private_stack
from bpfnb.program import Program
from bpfnb.verifier import verify

OBJECTS = ["tests/fixtures/socket_filter.bpf.o", "tests/fixtures/tail_call.bpf.o", "tests/fixtures/xdp.bpf.o", "tests/fixtures/bpf2bpf.bpf.o",
           "tests/fixtures/globals.bpf.o", "tests/fixtures/kfree_skb.bpf.o", "tests/fixtures/raw_tp.bpf.o",
           "tests/fixtures/tracing.bpf.o", "bpfnb/data/drops.bpf.o", "bpfnb/data/examples/count_protocols.bpf.o"]


@pytest.mark.kernel
def test_our_bytes_equal_the_kernels_jit_instruction_by_instruction():
    btf = kernel_btf()
    compared = equal = 0
    unequal = []
    names = set()
    for path in OBJECTS:
        for prog in load(path, kernel_btf=btf):
            checked = verify(prog, log_level=0)
            if not checked.ok:  # the tracing fixture's bad_* programs
                continue
            result = compare_with_kernel(prog, probe_mem=checked.probe_mem, stack_depths=checked.stack_depths)
            compared += result.compared
            equal += result.equal
            names.add(prog.name)
            unequal += [f"{prog.name} {r.insn}: {r.bpf}" for r in result.rows if not r.equal]
    # the fixtures cover helper calls, bpf-to-bpf calls, PROBE_MEM guards, map loads,
    # inlined per-CPU lookups (raw_kfree_skb), the private stack (trace_drops), indirect and
    # direct tail calls (dispatch, chain)
    assert {"call_subprogs", "trace_kfree_skb", "raw_kfree_skb", "trace_drops", "xdp_count", "dispatch", "chain"} <= names
    assert compared >= 400
    assert equal / compared >= 0.95, unequal


@pytest.mark.kernel
def test_the_comparison_shows_where_the_bytes_differ():
    btf = kernel_btf()
    prog = load("tests/fixtures/kfree_skb.bpf.o", kernel_btf=btf).program()
    result = compare_with_kernel(prog)
    text = result.diff()
    assert text.splitlines()[0] == str(result) and "byte-equal to the kernel's JIT" in text
    frame = result.frame()
    assert list(frame.columns) == ["insn", "bpf", "ours", "kernel", "equal", "masked"]
    assert frame["masked"].sum() >= 1  # the .rodata and perf map loads
    probe = frame[frame["bpf"].str.contains(r"r5 \+224")]  # dev->ifindex: the guarded PROBE_MEM load
    assert len(probe) == 1 and probe["ours"].iloc[0].count(" ") >= 6  # guard, compare, load


def test_the_private_stack_rule():
    tracing = Program("t", (), type="tracing", section="tp_btf/kfree_skb")
    assert uses_private_stack(tracing, 144) and not uses_private_stack(tracing, 16)
    assert not uses_private_stack(Program("s", (), type="socket_filter"), 512)
    assert not uses_private_stack(Program("i", (), type="tracing", section="iter/task"), 512)
