"""The x86-64 JIT: every conformance vector natively and under Unicorn, the
exception table really used (an unmapped skb->dev reads 0, as in the kernel),
faults outside the table reported with their BPF instruction while the process
lives, and random programs over the whole instruction set equal to the
interpreter."""

import random

import pytest

from bpfnb.btf import kernel_btf
from bpfnb.conformance import run
from bpfnb.elf import load
from bpfnb.errors import JitError
from bpfnb.isa import Insn, ld_imm64
from bpfnb.isa import opcodes as op
from bpfnb.jit import jit
from bpfnb.jit.x86_64 import execute_raw, execute_raw_unicorn
from bpfnb.program import Program
from bpfnb.verifier import verify
from bpfnb.vm import UNMAPPED, Vm
from bpfnb.vm import execute_raw as interpret

ENGINES = ("native", "unicorn")


@pytest.mark.parametrize("engine", ["jit", "jit-unicorn"])
def test_every_conformance_vector_that_applies_passes(conformance_dir, engine):
    report = run(conformance_dir, engine)
    assert [(o.vector.name, o.detail) for o in report.outcomes if o.status == "failed"] == []
    assert report.passed >= 55
    skipped = {o.vector.name: o.detail for o in report.outcomes if o.status == "skipped"}
    assert all(skipped.values())
    # uBPF's '-- no jit' vector (a store at r10+0) is refused as in the interpreter: the raw path's
    # images check every access against the region table
    passed = {o.vector.name for o in report.outcomes if o.status == "passed"}
    assert "err-stack-oob" in passed and not any("'-- no jit'" in why for why in skipped.values())


@pytest.fixture(scope="module")
def kfree_skb(fixtures_dir):
    btf = kernel_btf()
    prog = load(fixtures_dir / "kfree_skb.bpf.o", kernel_btf=btf).program("trace_kfree_skb")
    checked = verify(prog, log_level=0)
    assert checked.ok, checked.error
    return btf, checked


def _runs(btf, checked, dev):
    """(interpreter run, native run, Unicorn run) of the tracer on one skb."""
    out = []
    for engine in ("interp",) + ENGINES:
        vm = Vm(checked.program, kernel_btf=btf)
        head = vm.memory.add("head", bytes(range(64)))
        skb = vm.skb(len=50, dev=dev(vm), head=head, data=head + 14, protocol=8)
        args = [skb, 0xFFFFFFFF81000000, 2, 0]
        if engine == "interp":
            out.append(vm.run(args))
        else:
            image = jit(checked.program, probe_mem=checked.probe_mem, stack_depths=checked.stack_depths, vm=vm)
            out.append(image.run(args, engine=engine))
    return out


def test_the_exception_table_lists_the_probe_mem_loads(kfree_skb):
    _, checked = kfree_skb
    image = jit(checked.program, probe_mem=checked.probe_mem, stack_depths=checked.stack_depths)
    assert [e.insn for e in image.extable] == sorted(checked.probe_mem) and image.extable
    for e in image.extable:
        insn = checked.program.insns[e.insn]
        assert e.dst_reg == insn.dst
        # the fixup resumes right after the load, which ends the BPF instruction's code
        assert e.fixup_offset == image.layout.insn_ends[e.insn] > e.code_offset >= image.insn_offsets[e.insn]
    frame = image.frame()
    marked = frame[frame["extable"] != ""]
    assert list(marked["insn"]) == [e.insn for e in image.extable]
    assert all(x86.startswith("mov") for x86 in marked["x86"])
    assert "<- extable: fixup" in image.listing()
    assert image.passes >= 2 and image.pass_lens[-1] == image.pass_lens[-2] == len(image.image)


def test_an_unmapped_dev_reads_zero_through_the_exception_table(kfree_skb):
    btf, checked = kfree_skb
    interp, native, emulated = _runs(btf, checked, lambda vm: UNMAPPED)
    assert interp.probe_mem_faults == native.probe_mem_faults == emulated.probe_mem_faults == 1
    assert interp.r0 == native.r0 == emulated.r0 == 0
    record = interp.samples[0][1]  # struct record, then the packet bytes
    assert int.from_bytes(record[0:4], "little") == 50 and int.from_bytes(record[8:12], "little") == 2
    assert int.from_bytes(record[4:8], "little") == 0  # rec.ifindex from the faulting load
    assert record[16:] == bytes(range(14, 64))  # bpf_skb_output's packet bytes from skb->data
    assert native.samples == emulated.samples == interp.samples


def test_a_mapped_dev_is_read(kfree_skb):
    btf, checked = kfree_skb
    runs = _runs(btf, checked, lambda vm: vm.new("struct net_device", ifindex=7))
    assert [r.probe_mem_faults for r in runs] == [0, 0, 0]
    assert {int.from_bytes(r.samples[0][1][4:8], "little") for r in runs} == {7}


def test_the_drop_tracer_gives_the_same_frame_on_every_engine():
    from bpfnb.dropwatch import SyntheticDrop, simulate_drops
    from tests.vm.test_vm import TCP, UDP

    drops = [SyntheticDrop(UDP), SyntheticDrop(TCP, "SOCKET_RCVBUFF", 2, "eth0"), SyntheticDrop(UDP, dev_mapped=False)]
    frames = {e: simulate_drops(drops, engine=e) for e in ("interp", "jit", "jit-unicorn")}
    for engine in ("jit", "jit-unicorn"):
        assert frames[engine].attrs["probe_mem_faults"] == 1 and frames[engine].attrs["engine"] == engine
        columns = [c for c in frames["interp"].columns if c != "skb"]  # addresses differ: the JIT's stack
        assert frames[engine][columns].equals(frames["interp"][columns]), engine
    assert list(frames["jit"]["ifindex"]) == [1, 2, 0]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_fault_outside_the_table_names_the_instruction_and_the_process_lives(engine):
    insns = (*ld_imm64(1, UNMAPPED + 8), Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_DW, 0, 1, 16), Insn(op.BPF_JMP | op.BPF_EXIT))
    prog = Program("wild", insns)
    # the kernel's image (no region checks: as a wrongly verified program runs), so the fault handler answers
    image = jit(prog, verify=False, probe_mem=(), stack_depths=(0,), region_checks=False)
    with pytest.raises(JitError) as info:
        image.run(r1=0, engine=engine)
    message = str(info.value)
    assert "wild: insn 2 ((79) r0 = *(u64 *)(r1 +16))" in message
    assert f"invalid memory access at address {UNMAPPED + 24:#x}" in message
    assert "not a PROBE_MEM load" in message
    # the same load marked PROBE_MEM is recovered
    image = jit(prog, verify=False, probe_mem={2}, stack_depths=(0,))
    result = image.run(r1=0, engine=engine)
    assert (result.r0, result.probe_mem_faults) == (0, 1)


def test_unverified_garbage_is_refused_before_it_is_translated():
    with pytest.raises(JitError, match="infinite loop detected at insn 0"):
        execute_raw([Insn(op.BPF_JMP | op.BPF_JA, 0, 0, -1), Insn(op.BPF_JMP | op.BPF_EXIT)])
    with pytest.raises(JitError, match="jump out of range from insn 0 to 5"):
        execute_raw([Insn(op.BPF_JMP | op.BPF_JA, 0, 0, 4), Insn(op.BPF_JMP | op.BPF_EXIT)])


def test_a_rejected_program_is_not_translated(fixtures_dir):
    prog = Program("bad", (Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 0, 2), Insn(op.BPF_JMP | op.BPF_EXIT)))
    with pytest.raises(JitError, match="R2 !read_ok"):
        jit(prog)


# -- differential: random programs over the whole instruction set --------------------------------

ALU_OPS = (op.BPF_ADD, op.BPF_SUB, op.BPF_MUL, op.BPF_DIV, op.BPF_OR, op.BPF_AND, op.BPF_LSH, op.BPF_RSH,
           op.BPF_NEG, op.BPF_MOD, op.BPF_XOR, op.BPF_MOV, op.BPF_ARSH, op.BPF_END)
JMP_OPS = (op.BPF_JEQ, op.BPF_JGT, op.BPF_JGE, op.BPF_JSET, op.BPF_JNE, op.BPF_JSGT, op.BPF_JSGE, op.BPF_JLT,
           op.BPF_JLE, op.BPF_JSLT, op.BPF_JSLE)
VALUES = (0, 1, -1, 2, 7, 31, 32, 63, 64, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0x7FFFFFFF, -0x80000000, 12345, -77)
SIZES = (op.BPF_B, op.BPF_H, op.BPF_W, op.BPF_DW)


def _alu(rng) -> Insn:
    cls = rng.choice((op.BPF_ALU, op.BPF_ALU64))
    code = rng.choice(ALU_OPS)
    dst, src = rng.randrange(10), rng.randrange(10)
    off, imm, source = 0, rng.choice(VALUES), rng.choice((op.BPF_K, op.BPF_X))
    if code == op.BPF_END:
        imm = rng.choice((16, 32, 64))
        source = rng.choice((op.BPF_TO_LE, op.BPF_TO_BE)) if cls == op.BPF_ALU else op.BPF_K  # bswap
    elif code == op.BPF_NEG:
        source, imm = op.BPF_K, 0
    elif code in (op.BPF_DIV, op.BPF_MOD):
        off = rng.choice((0, 1))  # sdiv / smod
    elif code == op.BPF_MOV and source == op.BPF_X:
        off = rng.choice((0, 8, 16) + ((32,) if cls == op.BPF_ALU64 else ()))  # movsx
    elif code in (op.BPF_LSH, op.BPF_RSH, op.BPF_ARSH) and source == op.BPF_K:
        imm = rng.randrange(32 if cls == op.BPF_ALU else 64)
    return Insn(cls | code | source, dst, src, off, imm)


def _random_program(rng, length: int = 40) -> tuple[Insn, ...]:
    """Straight-line ALU with forward jumps and stack stores/loads (sign-extending
    too); every register set first, so any program is well defined."""
    insns = [Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, r, 0, 0, rng.choice(VALUES)) for r in range(10)]
    for k in range(length):
        choice = rng.random()
        if choice < 0.6:
            insns.append(_alu(rng))
        elif choice < 0.75:
            cls = rng.choice((op.BPF_JMP, op.BPF_JMP32))
            source = rng.choice((op.BPF_K, op.BPF_X))
            insns.append(Insn(cls | rng.choice(JMP_OPS) | source, rng.randrange(10), rng.randrange(10),
                              rng.randrange(0, length - k + 1), rng.choice(VALUES)))
        elif choice < 0.85:
            size = rng.choice(SIZES)
            slot = -8 * rng.randrange(1, 9)
            insns.append(Insn(op.BPF_STX | op.BPF_MEM | size, 10, rng.randrange(10), slot))
        elif choice < 0.95:
            size, slot = rng.choice(SIZES), -8 * rng.randrange(1, 9)
            mode = rng.choice((op.BPF_MEM, op.BPF_MEMSX)) if size != op.BPF_DW else op.BPF_MEM
            insns.append(Insn(op.BPF_LDX | mode | size, rng.randrange(10), 10, slot))
        else:
            insns.extend(ld_imm64(rng.randrange(10), rng.getrandbits(64)))
    # fold every register into r0 so any wrong one shows
    for r in range(1, 10):
        insns.append(Insn(op.BPF_ALU64 | op.BPF_XOR | op.BPF_X, 0, r))
        insns.append(Insn(op.BPF_ALU64 | op.BPF_LSH | op.BPF_K, 0, 0, 0, 3))
    insns.append(Insn(op.BPF_JMP | op.BPF_EXIT))
    return tuple(_fix_jumps(insns))


def _fix_jumps(insns):
    """Keep every jump inside the program and off the second half of a 64-bit load."""
    n = len(insns)
    middles = {i + 1 for i, x in enumerate(insns) if x.is_ld_imm64}
    out = []
    for i, x in enumerate(insns):
        if x.code & 0x07 in (op.BPF_JMP, op.BPF_JMP32) and x.code & 0xF0 not in (op.BPF_EXIT, op.BPF_CALL):
            target = min(i + 1 + x.off, n - 1)
            while target in middles:
                target += 1
            x = Insn(x.code, x.dst, x.src, target - i - 1, x.imm)
        out.append(x)
    return out


def test_random_programs_equal_the_interpreter():
    rng = random.Random(20261201)
    for k in range(150):
        insns = _random_program(rng)
        expected = interpret(insns, b"")
        native = execute_raw(insns, b"")
        emulated = execute_raw_unicorn(insns, b"") if k % 5 == 0 else native
        assert native == emulated == expected, (k, [str(i) for i in insns])


def test_the_command_prints_the_listing_and_the_exception_table(fixtures_dir, capsys):
    from bpfnb.cli import main

    assert main(["jit", str(fixtures_dir / "kfree_skb.bpf.o"), "--prog", "trace_kfree_skb", "--extable"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("trace_kfree_skb: 44 BPF insns -> ") and "1 exception table entries" in out[0]
    assert out[1].startswith("  insn 8: load at +0x") and "-> zero r4, resume at +0x" in out[1]
    assert main(["jit", str(fixtures_dir / "kfree_skb.bpf.o")]) == 0
    listing = capsys.readouterr().out
    assert "; 8: (61) r4 = *(u32 *)(r5 +224)" in listing and "<- extable: fixup +0x" in listing
    assert main(["jit", str(fixtures_dir / "tracing.bpf.o"), "--prog", "bad_typecast"]) == 1
    assert "rejected by bpfnb's verifier at insn 2: R1 invalid mem access 'scalar'" in capsys.readouterr().out
    assert main(["jit", str(fixtures_dir / "kfree_skb.bpf.o"), "--prog", "nope"]) == 1
    assert "no program 'nope'" in capsys.readouterr().err


def test_the_jit_viewer_highlights_an_instruction_and_filters_probe_mem(kfree_skb):
    from bpfnb.widgets import JitViewer

    _, checked = kfree_skb
    viewer = JitViewer(jit(checked.program, probe_mem=checked.probe_mem, stack_depths=checked.stack_depths))
    viewer.insn.value = 8
    code = viewer.selected_code()
    assert code[-1] == "mov ecx, dword ptr [r8 + 0xe0]" and any(x.startswith("cmp r11") for x in code)
    assert 'background:#d6eaff"><td><code>8: (61) r4 = *(u32 *)(r5 +224)' in viewer.listing.value
    viewer.only_extable.value = True
    assert viewer.listing.value.count("<tr") == 2  # the header and insn 8
    assert "fixup +0x" in viewer._repr_html_()


@pytest.mark.parametrize("engine", ENGINES)
def test_tail_calls_run_in_one_image_as_the_interpreter_runs_them(engine):
    from tests.vm.test_vm import _tail_call_fixture

    progs, table = _tail_call_fixture()
    for entry in ("dispatch", "chain"):
        for size in (40, 80, 150):
            vm, jvm = Vm(progs[entry], tail_calls=table), Vm(progs[entry], tail_calls=table)
            expected = vm.run(packet=bytes(size)).r0
            image = jit(progs[entry], vm=jvm)
            assert image.run(packet=bytes(size), engine=engine).r0 == expected, (entry, size)
            bss = vm.memory.read(int(vm.map_addr[1]), 16)
            assert jvm.memory.read(int(jvm.map_addr[1]), 16) == bss
    image = jit(progs["chain"], vm=Vm(progs["chain"], tail_calls=table))
    assert len(image.entries) == 3 and "--- tail-call target big ---" in image.listing()
    # chain's constant slot 0 is itself: a direct jump back past its own prologue's first part
    assert any(x == "jmp 0xc" for x in image.frame()["x86"])


@pytest.mark.parametrize("engine", ENGINES)
def test_stack_a_helper_writes_is_reserved(engine):
    from bpfnb.isa.assembler import assemble

    # bpf_skb_load_bytes(skb, 0, fp-16, 8): only the helper writes fp-16 (the kernel's log: stack depth 16)
    prog = Program("t", assemble("mov %r2, 0\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 8\ncall 26\n"
                                 "ldxdw %r0, [%r10-16]\nexit"), type="socket_filter")
    assert verify(prog, log_level=0).stack_depths == (16,)
    image = jit(prog, vm=Vm(prog))
    assert any(x == "sub rsp, 0x10" for x in image.frame()["x86"])
    packet = bytes(range(64))
    assert image.run(packet=packet, engine=engine).r0 == int.from_bytes(packet[14:22], "little")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_failing_helper_is_reported_not_ignored(engine):
    # bpf_map_lookup_elem on a number that is no map (only unverified code can do this)
    insns = (Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 1, 0, 0, 12345), Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 2, 10),
             Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, 1), Insn(op.BPF_JMP | op.BPF_EXIT))
    image = jit(Program("nomap", insns), verify=False, probe_mem=(), stack_depths=(8,))
    with pytest.raises(JitError, match=r"nomap: helper #1: not a map"):
        image.run(r1=0, engine=engine)


def test_native_runs_give_the_signal_actions_back():
    import ctypes
    import signal

    from bpfnb.jit.x86_64.native import _libc, _Sigaction

    def actions():
        out = {}
        for sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL):
            action = _Sigaction()
            _libc.sigaction(sig, None, ctypes.byref(action))
            out[sig] = (action.handler, action.flags)
        return out

    before = actions()
    wild = Program("wild", (*ld_imm64(1, UNMAPPED), Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_DW, 0, 1, 0),
                            Insn(op.BPF_JMP | op.BPF_EXIT)))
    guarded = jit(wild, verify=False, probe_mem={2}, stack_depths=(0,))
    assert guarded.run(r1=0, repeat=3).probe_mem_faults == 1  # recovered in each run; the last run's count
    with pytest.raises(JitError):
        jit(wild, verify=False, probe_mem=(), stack_depths=(0,), region_checks=False).run(r1=0, repeat=3)
    assert actions() == before
