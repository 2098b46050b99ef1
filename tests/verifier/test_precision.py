"""Precision backtracking (``mark_chain_precision``): a scalar the walk relied on is
traced back through the jump history and the kept states, and pruning compares
only what was relied on. The log's ``mark_precise:`` lines and the processed
counts are the kernel's (Linux 6.18.44)."""

import os
import pathlib

import pytest

import bpfnb
from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.program import Program
from bpfnb.verifier import verify

A64, DW = op.BPF_ALU64, op.BPF_DW
GET_PRANDOM_U32 = 7
KERNEL_VERSION = "6.18.44"


def _alu_k(code, dst, imm):
    return Insn(A64 | code | op.BPF_K, dst, 0, 0, imm)


def _alu_x(code, dst, src):
    return Insn(A64 | code | op.BPF_X, dst, src)


def _stx(dst, off, src):
    return Insn(op.BPF_STX | op.BPF_MEM | DW, dst, src, off)


def _ldx(dst, src, off):
    return Insn(op.BPF_LDX | op.BPF_MEM | DW, dst, src, off)


# a scalar spilled, filled back after a kept state, and used as a stack offset: the
# fill's slot is marked in the kept state, backtracking goes on through the spill to
# the helper's result, and the register linked to the slot at the branch comes along
FILL_THEN_OFFSET = (
    Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, GET_PRANDOM_U32),  # 0
    _alu_k(op.BPF_AND, 0, 8),  # 1: r0 is 0 or 8
    _stx(10, -8, 0),  # 2: spilled (fp-8 shares r0's id)
    _alu_k(op.BPF_MOV, 2, 0),  # 3
    _stx(10, -16, 2),  # 4
    _stx(10, -24, 2),  # 5
    Insn(op.BPF_JMP | op.BPF_JEQ | op.BPF_K, 0, 0, 1, 0),  # 6: both ways
    _alu_k(op.BPF_MOV, 2, 1),  # 7
    _ldx(7, 10, -8),  # 8: filled back (the state is kept here)
    _alu_k(op.BPF_ADD, 7, -24),  # 9
    _alu_x(op.BPF_MOV, 1, 10),  # 10
    _alu_x(op.BPF_ADD, 1, 7),  # 11: fp + r7: r7 must be precise
    _ldx(0, 1, 0),  # 12
    _alu_k(op.BPF_MOV, 0, 0),  # 13
    Insn(op.BPF_JMP | op.BPF_EXIT),  # 14
)
# the running kernel's mark_precise lines for FILL_THEN_OFFSET (log_level 2; the
# "last_idx" lines end in a space there, checked apart)
KERNEL_MARK_PRECISE = """\
mark_precise: frame0: last_idx 11 first_idx 8 subseq_idx -1
mark_precise: frame0: regs=r7 stack= before 10: (bf) r1 = r10
mark_precise: frame0: regs=r7 stack= before 9: (07) r7 += -24
mark_precise: frame0: regs=r7 stack= before 8: (79) r7 = *(u64 *)(r10 -8)
mark_precise: frame0: parent state regs= stack=-8:  R0=8 R2=1 R10=fp0 fp-8=P8 fp-16=0 fp-24=0
mark_precise: frame0: last_idx 7 first_idx 0 subseq_idx 8
mark_precise: frame0: regs= stack=-8 before 7: (b7) r2 = 1
mark_precise: frame0: regs= stack=-8 before 6: (15) if r0 == 0x0 goto pc+1
mark_precise: frame0: regs=r0 stack=-8 before 5: (7b) *(u64 *)(r10 -24) = r2
mark_precise: frame0: regs=r0 stack=-8 before 4: (7b) *(u64 *)(r10 -16) = r2
mark_precise: frame0: regs=r0 stack=-8 before 3: (b7) r2 = 0
mark_precise: frame0: regs=r0 stack=-8 before 2: (7b) *(u64 *)(r10 -8) = r0
mark_precise: frame0: regs=r0 stack= before 1: (57) r0 &= 8
mark_precise: frame0: regs=r0 stack= before 0: (85) call bpf_get_prandom_u32#7
mark_precise: frame0: last_idx 11 first_idx 0 subseq_idx -1
mark_precise: frame0: regs=r7 stack= before 10: (bf) r1 = r10
mark_precise: frame0: regs=r7 stack= before 9: (07) r7 += -24
mark_precise: frame0: regs=r7 stack= before 8: (79) r7 = *(u64 *)(r10 -8)
mark_precise: frame0: regs= stack=-8 before 6: (15) if r0 == 0x0 goto pc+1
mark_precise: frame0: regs=r0 stack=-8 before 5: (7b) *(u64 *)(r10 -24) = r2
mark_precise: frame0: regs=r0 stack=-8 before 4: (7b) *(u64 *)(r10 -16) = r2
mark_precise: frame0: regs=r0 stack=-8 before 3: (b7) r2 = 0
mark_precise: frame0: regs=r0 stack=-8 before 2: (7b) *(u64 *)(r10 -8) = r0
mark_precise: frame0: regs=r0 stack= before 1: (57) r0 &= 8
mark_precise: frame0: regs=r0 stack= before 0: (85) call bpf_get_prandom_u32#7"""
# the precise fp-8 (8, then 0) keeps the second path from being pruned at 8
KERNEL_PROCESSED = 22


def _program():
    return Program("precision_fill", FILL_THEN_OFFSET, type="socket_filter")


def _mark_precise(log: str) -> str:
    return "\n".join(ln.rstrip() for ln in log.splitlines() if ln.startswith("mark_precise:"))


def test_backtracking_through_a_fill_a_kept_state_and_linked_registers_is_the_kernels():
    result = verify(_program(), log_level=2)
    assert result.ok
    assert result.processed == KERNEL_PROCESSED
    assert _mark_precise(result.log) == KERNEL_MARK_PRECISE
    assert all(ln.endswith(" ") for ln in result.log.splitlines() if " last_idx " in ln)
    # the current state is never marked: states print without P after the walk
    assert "=P" not in "\n".join(ln for ln in result.log.splitlines() if not ln.startswith("mark_precise"))


def test_without_pruning_nothing_is_backtracked():
    result = verify(_program(), log_level=2, prune=False)
    assert result.ok
    assert "mark_precise:" not in result.log


@pytest.mark.kernel
def test_the_whole_log_is_the_running_kernels():
    from bpfnb.kernel import load

    with load(_program(), log_level=2) as loaded:
        theirs = loaded.log
    ours = verify(_program(), log_level=2).log

    def without_timing(text):
        return [ln for ln in text.splitlines() if not ln.startswith("verification time")]

    assert without_timing(ours) == without_timing(theirs)


# programs of bcc's libbpf-tools where pruning without precision stopped paths the
# kernel walks (our processed count was lower): the kernel's counts on Linux 6.18.44
LIBBPF_TOOLS_PROCESSED = {
    ("biolatency.bpf.o", "block_rq_complete_btf"): 778,
    ("biostacks.bpf.o", "block_io_done"): 732,
    ("biotop.bpf.o", "blk_account_io_done"): 271,
    ("bitesize.bpf.o", "block_rq_issue"): 291,
    ("cpudist.bpf.o", "sched_switch_btf"): 998,
    ("cpufreq.bpf.o", "do_sample"): 137,
    ("fsdist.bpf.o", "file_read_exit"): 902,
    ("funclatency.bpf.o", "dummy_kretprobe"): 743,
    ("futexctn.bpf.o", "futex_exit"): 1006,
    ("runqlat.bpf.o", "sched_switch"): 864,
    ("runqlen.bpf.o", "do_sample"): 77,
    ("tcprtt.bpf.o", "tcp_rcv_kprobe"): 607,
    ("tcpsynbl.bpf.o", "tcp_v4_syn_recv_kprobe"): 378,
    ("tcptracer.bpf.o", "exit_inet_csk_accept"): 272,
}
# Debian's xdp-tools objects: a bounded loop over packet headers, and a dispatcher
# whose rodata decides at once (its global functions are never called)
XDP_TOOLS_PROCESSED = {
    ("xdpfilt_alw_ip.o", "xdpfilt_alw_ip"): 18455,
    ("xdp-dispatcher.o", "xdp_dispatcher"): 6,
}


def _corpus(table):
    dirs = [pathlib.Path(d) for d in os.environ.get("BPFNB_CORPUS", "").split(os.pathsep) if d]
    found = {key: d / key[0] for d in dirs for key in table if (d / key[0]).is_file()}
    if not found:
        pytest.skip("set BPFNB_CORPUS to directories of compiled objects "
                    "(/work/scratch/corpora/libbpf-tools, /work/scratch/corpora/xdp-tools)")
    return found


@pytest.mark.parametrize("table", [LIBBPF_TOOLS_PROCESSED, XDP_TOOLS_PROCESSED], ids=["libbpf-tools", "xdp-tools"])
def test_corpus_programs_walk_as_many_instructions_as_the_kernel(table):
    for (obj, name), path in sorted(_corpus(table).items()):
        prog = bpfnb.load(path).program(name)
        result = verify(prog, log_level=0, trace=False)
        assert result.ok, f"{obj}:{name}: {result.error}"
        assert result.processed == table[(obj, name)], f"{obj}:{name} (Linux {KERNEL_VERSION})"


BPF_LOOP = 181
# backtrack_insn across a callback's exit: main calls bpf_loop (1) whose callback is
# 3-4; then a static function call (5) returning to 6, the function at 7-8
CALLBACK_AND_CALL = (
    _alu_k(op.BPF_MOV, 4, 0),  # 0: bpf_loop's flags
    Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, BPF_LOOP),  # 1
    Insn(op.BPF_JMP | op.BPF_EXIT),  # 2
    _alu_k(op.BPF_MOV, 0, 0),  # 3: the callback
    Insn(op.BPF_JMP | op.BPF_EXIT),  # 4
    Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_CALL, 0, 1),  # 5: calls 7
    _alu_k(op.BPF_ADD, 0, 1),  # 6
    _alu_k(op.BPF_MOV, 0, 1),  # 7: the static function
    Insn(op.BPF_JMP | op.BPF_EXIT),  # 8
)


def _backtrack_env():
    from types import SimpleNamespace

    from bpfnb.verifier.log import VerifierLog

    return SimpleNamespace(insns=CALLBACK_AND_CALL, log=VerifierLog(0))


def test_the_helpers_arguments_stay_asked_for_through_a_callbacks_body():
    """Linux 6.18's backtrack_insn: at a callback's exit (subseq_idx the helper call)
    the caller's r1-r5 stay set, the walk enters the callback's frame, and leaves it
    at the helper call with them still asked for (the callback_exit_precision log)."""
    from bpfnb.verifier.precision import BacktrackState, backtrack_insn

    env, bt = _backtrack_env(), BacktrackState(0)
    bt.set_reg(1)
    bt.set_reg(4)
    backtrack_insn(env, 4, 1, None, bt)  # the callback's exit, walked back into
    assert (bt.frame, bt.reg_masks[0], bt.reg_masks[1], bt.empty()) == (1, 0b10010, 0, False)
    backtrack_insn(env, 3, 4, None, bt)
    backtrack_insn(env, 1, 3, None, bt)  # the helper call, reached from the callback
    assert (bt.frame, bt.reg_mask) == (0, 0b10010)
    backtrack_insn(env, 0, 1, None, bt)  # r4 = 0 ends r4's chain
    assert bt.reg_mask == 0b10


def test_a_functions_exit_with_its_callers_arguments_asked_for_is_a_verifier_bug():
    from bpfnb.verifier.precision import BacktrackState, VerifierBug, backtrack_insn

    env, bt = _backtrack_env(), BacktrackState(0)
    bt.set_reg(0)
    backtrack_insn(env, 8, 6, None, bt)  # r0 goes back into the function
    assert (bt.frame, bt.reg_masks[0], bt.reg_masks[1]) == (1, 0, 0b1)
    bt = BacktrackState(0)
    bt.set_reg(2)
    with pytest.raises(VerifierBug, match="backtracking exit unexpected regs 4"):
        backtrack_insn(env, 8, 6, None, bt)
