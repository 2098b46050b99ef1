"""Execution speed: bpfnb's interpreter and x86-64 JIT against the kernel's JIT.

Three socket filters, each executing about 100,000 BPF instructions per run:

``alu``       an arithmetic loop (add, mul, xor, shifts) on registers only;
``stack``     a loop of stores and loads through r10, one of them at an
              offset computed from the loop counter;
``checksum``  a branchy checksum over the first 480 bytes after the Ethernet
              header of a 1500-byte frame (``bpf_skb_load_bytes`` once per
              run into the stack, then 11 passes); at each byte a xorshift
              generator in a register picks one of two updates and whether
              to add a carry, so the branches are unpredictable to the CPU
              while the kernel's verifier, which knows the generator's value
              at every step, follows one path (a branch on the packet bytes
              themselves would leave it thousands of pending states).

Why 100,000 and not 1M: the kernel's verifier walks every iteration of a
bounded loop, so one run can execute at most about 1M instructions, and at
900,000 it took 9-12 s to load each program (0.05 s at 100,000). Rates are
given in M insns/s, so the figures scale. bpfnb's verifier is slower still
on such loops (minutes), so it checks each program built with a few rounds
(the same code, other loop constants) and the JIT gets that stack depth.

Engines, each measured in this run: bpfnb's interpreter (numba), bpfnb's JIT
run natively and under Unicorn, the kernel (``BPF_PROG_TEST_RUN`` with
``repeat``, whose per-run duration it reports; needs root), and the same
computation as a plain Python loop. Every engine must return the same r0.
"""

from __future__ import annotations

import random
import time

from benchmarks.timing import best
from bpfnb.isa.assembler import assemble
from bpfnb.program import Program

M64 = (1 << 64) - 1
ALU_ROUNDS = 10_000  # 10 insns a round
STACK_ROUNDS = 4_500  # 22 insns a round
CSUM_BYTES = 480
CSUM_PASSES = 11  # about 19 insns a byte
SEED = 0x9E3779B97F4A7C15
PACKET = bytes.fromhex("ffffffffffff" "020000000001" "88b5") + random.Random(7).randbytes(1500 - 14)


# -- the programs -------------------------------------------------------------------------------
# each program returns r0 folded to 32 bits (the high half xored into the low one): fold()
FOLD_R0 = """mov %r1, %r0
        rsh %r1, 32
        xor %r0, %r1
        mov32 %r0, %r0
        exit"""


def fold(value: int) -> int:
    return (value ^ (value >> 32)) & 0xFFFFFFFF


def _filter(name: str, text: str) -> Program:
    return Program(name, assemble(text), type="socket_filter")


def alu_program(rounds: int = ALU_ROUNDS) -> Program:
    text = f"""
        mov %r0, 0
        lddw %r2, {SEED:#x}
        mov %r4, 1
        mov %r3, {rounds}
    loop:
        add %r0, %r2
        mul %r2, 0x5bd1e995
        xor %r2, %r0
        mov %r5, %r2
        rsh %r5, 29
        xor %r2, %r5
        or %r4, %r0
        sub %r4, %r3
        sub %r3, 1
        jne %r3, 0, loop
        xor %r0, %r4
        {FOLD_R0}
    """
    return _filter("alu", text)


def alu_python() -> int:
    r0, r2, r4 = 0, SEED, 1
    for r3 in range(ALU_ROUNDS, 0, -1):
        r0 = (r0 + r2) & M64
        r2 = (r2 * 0x5BD1E995) & M64
        r2 ^= r0
        r2 ^= r2 >> 29
        r4 |= r0
        r4 = (r4 - r3) & M64
    r0 ^= r4
    return fold(r0)


def stack_program(rounds: int = STACK_ROUNDS) -> Program:
    init = "\n".join(f"stdw [%r10-{8 * k}], {k * 0x1111}" for k in range(1, 9))
    text = f"""
        {init}
        mov %r0, 0x1234
        mov %r3, {rounds}
    loop:
        ldxdw %r4, [%r10-8]
        add %r4, %r3
        stxdw [%r10-16], %r4
        ldxdw %r5, [%r10-24]
        xor %r5, %r4
        stxdw [%r10-8], %r5
        ldxw %r6, [%r10-12]
        add %r0, %r6
        stxw [%r10-24], %r0
        ldxb %r7, [%r10-3]
        add %r0, %r7
        mov %r8, %r3
        and %r8, 7
        lsh %r8, 3
        mov %r9, %r10
        add %r9, -64
        add %r9, %r8
        ldxdw %r6, [%r9+0]
        add %r6, %r0
        stxdw [%r9+0], %r6
        sub %r3, 1
        jne %r3, 0, loop
        ldxdw %r1, [%r10-40]
        xor %r0, %r1
        ldxdw %r1, [%r10-64]
        add %r0, %r1
        {FOLD_R0}
    """
    return _filter("stack", text)


def stack_python() -> int:
    mem = bytearray(64)  # mem[64 - k] is r10 - k

    def ld(off: int, size: int) -> int:
        return int.from_bytes(mem[64 + off:64 + off + size], "little")

    def st(off: int, size: int, value: int) -> None:
        mem[64 + off:64 + off + size] = (value & ((1 << 8 * size) - 1)).to_bytes(size, "little")

    for k in range(1, 9):
        st(-8 * k, 8, k * 0x1111)
    r0 = 0x1234
    for r3 in range(STACK_ROUNDS, 0, -1):
        r4 = (ld(-8, 8) + r3) & M64
        st(-16, 8, r4)
        r5 = ld(-24, 8) ^ r4
        st(-8, 8, r5)
        r0 = (r0 + ld(-12, 4)) & M64
        st(-24, 4, r0)
        r0 = (r0 + ld(-3, 1)) & M64
        slot = -64 + (r3 & 7) * 8
        st(slot, 8, ld(slot, 8) + r0)
    r0 ^= ld(-40, 8)
    r0 = (r0 + ld(-64, 8)) & M64
    return fold(r0)


def checksum_program(rounds: int = CSUM_PASSES, inner: int = CSUM_BYTES) -> Program:
    text = f"""
        mov %r6, %r1
        mov %r2, 0
        mov %r3, %r10
        add %r3, -{CSUM_BYTES}
        mov %r4, {CSUM_BYTES}
        call 26
        jne %r0, 0, out
        mov %r7, 0
        lddw %r8, {SEED:#x}
        mov %r9, {rounds}
    outer:
        mov %r1, %r10
        add %r1, -{CSUM_BYTES}
        mov %r2, {inner}
    inner:
        ldxb %r3, [%r1+0]
        mov %r4, %r8
        lsh %r4, 13
        xor %r8, %r4
        mov %r4, %r8
        rsh %r4, 7
        xor %r8, %r4
        mov %r4, %r8
        lsh %r4, 17
        xor %r8, %r4
        jset %r8, 1, odd
        add %r7, %r3
        ja join
    odd:
        xor %r7, %r3
        mov %r5, %r7
        rsh %r5, 63
        lsh %r7, 1
        or %r7, %r5
    join:
        jset %r8, 0x100, next
        add %r7, 1
    next:
        add %r1, 1
        sub %r2, 1
        jne %r2, 0, inner
        sub %r9, 1
        jne %r9, 0, outer
        mov %r0, %r7
        rsh %r0, 32
        xor %r0, %r7
        mov32 %r0, %r0
    out:
        exit
    """
    return _filter("checksum", text)


def checksum_python(packet: bytes) -> int:
    data = packet[14:14 + CSUM_BYTES]
    acc, x = 0, SEED
    for _ in range(CSUM_PASSES):
        for b in data:
            x ^= (x << 13) & M64
            x ^= x >> 7
            x ^= (x << 17) & M64
            if x & 1:
                acc ^= b
                acc = ((acc << 1) | (acc >> 63)) & M64
            else:
                acc = (acc + b) & M64
            if not x & 0x100:
                acc = (acc + 1) & M64
    return fold(acc)


def straight_line_program(n: int = 4000, seed: int = 11) -> Program:
    """``n`` instructions without a loop: ALU ops, stack stores and loads, forward jumps."""
    rng = random.Random(seed)
    lines = [f"mov %r{r}, {rng.randrange(1, 1 << 20)}" for r in range(10)]
    lines += [f"stxdw [%r10-{8 * k}], %r{k % 10}" for k in range(1, 9)]
    alu = ["add", "sub", "xor", "or", "and", "mul", "lsh", "rsh", "arsh", "mov"]
    while len(lines) < n - 2:
        d, s = rng.randrange(10), rng.randrange(10)
        pick = rng.random()
        if pick < 0.5:
            name = rng.choice(alu) + rng.choice(("", "32"))
            shift = name.rstrip("32") in ("lsh", "rsh", "arsh")
            if shift:
                operand = str(rng.randrange(32))
            else:
                operand = f"%r{s}" if rng.random() < 0.5 else str(rng.randrange(-999, 999))
            lines.append(f"{name} %r{d}, {operand}")
        elif pick < 0.65:
            lines.append(f"stx{rng.choice('bhw')} [%r10-{8 * rng.randrange(1, 9)}], %r{s}")
        elif pick < 0.70:
            lines.append(f"stdw [%r10-{8 * rng.randrange(1, 9)}], {rng.randrange(-999, 999)}")
        elif pick < 0.85:
            lines.append(f"ldx{rng.choice(('b', 'h', 'w', 'dw'))} %r{d}, [%r10-{8 * rng.randrange(1, 9)}]")
        else:
            cond = rng.choice(("jeq", "jne", "jgt", "jsle", "jset"))
            lines.append(f"{cond} %r{d}, {rng.randrange(-999, 999)}, +{rng.randrange(0, 6)}")
    lines.append("mov32 %r0, %r0")
    lines += ["mov %r0, 0"] * (n - 1 - len(lines))  # jump targets stay inside the program
    lines.append("exit")
    return Program("straight4k", assemble("\n".join(lines)), type="socket_filter")


# -- measuring ----------------------------------------------------------------------------------
def _kernel(prog, packet: bytes, repeat: int):
    """(r0, ns per run) from BPF_PROG_TEST_RUN, or None when the kernel is not usable here."""
    from bpfnb.kernel import load

    with load(prog, log_level=0) as loaded:
        if not loaded.ok:
            raise AssertionError(f"{prog.name}: the kernel rejected it: {loaded.error}")
        r0, _, _ = loaded.test_run(packet)
        best = min(loaded.test_run(packet, repeat=repeat)[2] for _ in range(3))
    return r0, best


def _jit_image(prog, small, vm):
    """bpfnb's JIT image of ``prog``; ``small`` (the same code with fewer rounds) is what
    bpfnb's verifier checks, for the PROBE_MEM loads (none) and the stack depth."""
    from bpfnb.jit import jit
    from bpfnb.verifier import verify

    checked = verify(small, log_level=0)
    assert checked.ok, f"{small.name}: bpfnb's verifier rejected it: {checked.error}"
    # verified through ``small``: the kernel's image, without the region checks of unverified ones
    return jit(prog, probe_mem=checked.probe_mem, stack_depths=checked.stack_depths, verify=False, vm=vm,
               region_checks=False)


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:7.2f}x" if a and b else "     n/a"


def _per_call(reason: str | None):
    """The engines' cost per call, on ``r0 = 0; exit``: (jit native call in a repeat, a single
    jit native call, jit run() wall, interp run() wall, kernel ns per run or None)."""
    from bpfnb.jit import jit
    from bpfnb.vm import Vm

    trivial = Program("trivial", assemble("mov %r0, 0\nexit"), type="socket_filter")
    vm = Vm(trivial)
    image = jit(trivial, vm=vm)
    image.run(packet=PACKET)
    call_s = min(image.run(packet=PACKET, repeat=1000).seconds / 1000 for _ in range(5))
    single_s = min(image.run(packet=PACKET).seconds for _ in range(200))
    wall_s = best(lambda: image.run(packet=PACKET), 200)
    interp_call = best(lambda: vm.run(packet=PACKET), 200)
    kernel_ns = None if reason else _kernel(trivial, PACKET, 100_000)[1]
    return call_s, single_s, wall_s, interp_call, kernel_ns


def main() -> None:
    from bpfnb.kernel import available
    from bpfnb.vm import Vm

    reason = available()
    if reason:
        print(f"kernel column skipped: {reason}")
    cases = [(alu_program(), alu_program(3), alu_python),
             (stack_program(), stack_program(3), stack_python),
             (checksum_program(), checksum_program(1, 3), lambda: checksum_python(PACKET))]
    rows = []
    for prog, small, python in cases:
        vm = Vm(prog)
        start = time.perf_counter()
        first = vm.run(packet=PACKET)
        first_call = time.perf_counter() - start
        insns = first.insns
        image = _jit_image(prog, small, vm)
        native = image.run(packet=PACKET)
        emulated = image.run(packet=PACKET, engine="unicorn")
        start = time.perf_counter()
        expected = python()
        py_s = time.perf_counter() - start
        kernel_r0, kernel_ns = _kernel(prog, PACKET, 2000) if not reason else (None, None)
        r0s = {"interp": first.r0, "jit": native.r0, "unicorn": emulated.r0, "python": expected}
        if kernel_r0 is not None:
            r0s["kernel"] = kernel_r0
        print(f"{prog.name:9} r0 " + " ".join(f"{k}={v:#x}" for k, v in r0s.items()))
        assert len(set(r0s.values())) == 1, (prog.name, r0s)

        reps = 40
        interp_s = min(vm.run(packet=PACKET, repeat=reps).seconds / reps for _ in range(3))
        # like the interpreter and the kernel: many runs per call (one fault-handler installation)
        jit_s = min(image.run(packet=PACKET, repeat=reps).seconds / reps for _ in range(3))
        jit_wall = best(lambda image=image: image.run(packet=PACKET), reps)
        unicorn_s = best(lambda image=image: image.run(packet=PACKET, engine="unicorn"), 3)
        py_s = min(py_s, best(python, 1))
        rows.append((prog.name, insns, first_call, interp_s, jit_s, jit_wall, unicorn_s, py_s,
                     kernel_ns / 1e9 if kernel_ns else None))

    call_s, single_s, wall_s, interp_call, trivial_ns = _per_call(reason)
    print()
    print(f"{'program':9} {'insns':>7} | {'ns/run':>10} {'M/s':>7} per engine: interp, jit (native, repeat), "
          f"jit (wall, run()), unicorn, python, kernel")
    for name, insns, _, *times in rows:
        cells = " ".join(f"{t * 1e9:10.0f} {insns / t / 1e6:7.1f}" if t else f"{'n/a':>10} {'':7}"
                         for t in times)
        print(f"{name:9} {insns:7} | {cells}")
    print()
    print(f"{'program':9} {'interp/kernel':>13} {'jit/kernel':>10} {'(jit-call)/kernel':>17} "
          f"{'jit wall/kernel':>15} {'jit/interp':>10} {'python/interp':>13} {'interp 1st call':>15}")
    for name, _, first_call, interp_s, jit_s, jit_wall, _, py_s, kernel_s in rows:
        print(f"{name:9} {_ratio(interp_s, kernel_s):>13} {_ratio(jit_s, kernel_s):>10} "
              f"{_ratio(jit_s - call_s, kernel_s):>17} "
              f"{_ratio(jit_wall, kernel_s):>15} {_ratio(jit_s, interp_s):>10} {_ratio(py_s, interp_s):>13} "
              f"{first_call * 1e3:12.1f} ms")

    print()
    print(f"per call (r0 = 0; exit): jit native call {call_s * 1e9:.0f} ns in a repeat "
          f"({single_s * 1e6:.1f} us alone: the fault handler installed and removed), "
          f"jit run() wall {wall_s * 1e6:.1f} us, interp run() wall {interp_call * 1e6:.1f} us"
          + (f", kernel {trivial_ns} ns/run" if trivial_ns else ""))

    # the JIT's compile time per instruction
    from bpfnb.jit import jit
    from bpfnb.verifier import verify

    big = straight_line_program()
    checked = verify(big, log_level=0)
    assert checked.ok, checked.error
    vm = Vm(big)
    def compile_big():
        return jit(big, probe_mem=checked.probe_mem, stack_depths=checked.stack_depths, vm=vm)

    compile_s = best(compile_big, 3)
    image = compile_big()
    assert image.run(packet=PACKET).r0 == vm.run(packet=PACKET).r0
    print(f"jit compile: {len(big.insns)} insns (straight line, {checked.processed} processed by "
          f"bpfnb's verifier) in {compile_s * 1e3:.1f} ms = {compile_s * 1e6 / len(big.insns):.2f} us/insn "
          f"({image.passes} passes, {len(image.image)} bytes of x86)")


if __name__ == "__main__":
    main()
