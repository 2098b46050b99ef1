"""bpfnb's interpreter beside uBPF's interpreter, on bench_execution's three loops.

The programs are bench_execution's: the ALU loop, the stack/array loop (loads and
stores relative to r10, one slot picked per round) and the branchy checksum loop
(a byte load per round, data-dependent jumps). Both engines run the same bytecode
on the same packet; before timing, r0 is asserted equal and uBPF is made to run
exactly the number of instructions bpfnb counted (its instruction limit: that
count passes, one less stops it).

uBPF runs through a small C driver, ``benchmarks/ubpf_driver.c`` (its own timer
around ``ubpf_exec``, uBPF's interpreter with its bounds checks on, as it ships):
build uBPF, install it, ``make ubpf-driver UBPF=<prefix>``, then run with
``BPFNB_UBPF_DRIVER=build/ubpf_driver``. Without it the benchmark says why and
stops.

Timing: ROUNDS rounds, each timing uBPF then bpfnb (REPEAT runs each, the mean
per run); the ratio is uBPF's time / bpfnb's time (> 1: bpfnb is faster), given
for the best time of each engine and as the range of the per-round ratios. Times
are each process's CPU time (steadier than wall time on a shared machine): for
bpfnb, around ``Vm.run(repeat=...)``, so a run's cost around the compiled loop
(its context, registers, the call into numba) counts too.
"""

from __future__ import annotations

import os
import pathlib
import statistics
import subprocess
import tempfile
import time

from benchmarks.bench_execution import PACKET, alu_program, checksum_program, stack_program
from bpfnb.isa.insn import encode

DRIVER_ENV = "BPFNB_UBPF_DRIVER"
ROUNDS = 7
REPEAT = 60
ETH_HLEN = 14  # a socket filter's skb starts after the Ethernet header (bpfnb's context does the same)


def _ubpf(driver: str, program: pathlib.Path, packet: pathlib.Path, repeat: int,
          insns: int | None = None) -> tuple[int, float]:
    """(r0, seconds per run) from the driver."""
    args = [driver, str(program), str(packet), str(repeat)] + ([str(insns)] if insns is not None else [])
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{program.name}: uBPF driver failed: {done.stderr.strip()}")
    r0, ns = done.stdout.split()
    return int(r0, 16), float(ns) / 1e9


def main() -> None:
    from bpfnb.vm import Vm

    driver = os.environ.get(DRIVER_ENV)
    if not driver or not os.access(driver, os.X_OK):
        print(f"skipped: {DRIVER_ENV} does not name the uBPF driver (make ubpf-driver UBPF=<prefix>; "
              f"see this module's docstring)")
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        packet = pathlib.Path(tmp, "packet.bin")
        packet.write_bytes(PACKET[ETH_HLEN:])
        for prog, kind in ((alu_program(), "ALU"), (checksum_program(), "branchy"), (stack_program(), "stack/array")):
            code = pathlib.Path(tmp, f"{prog.name}.bin")
            code.write_bytes(encode(prog.insns))
            vm = Vm(prog)
            first = vm.run(packet=PACKET)
            ubpf_r0, _ = _ubpf(driver, code, packet, 1, first.insns)
            assert ubpf_r0 == first.r0, (prog.name, hex(ubpf_r0), hex(first.r0))
            ours, theirs = [], []
            for _ in range(ROUNDS):
                theirs.append(_ubpf(driver, code, packet, REPEAT)[1])
                start = time.process_time()
                vm.run(packet=PACKET, repeat=REPEAT)
                ours.append((time.process_time() - start) / REPEAT)
            ratios = sorted(t / o for t, o in zip(theirs, ours, strict=True))
            rows.append((prog.name, kind, first.insns, first.r0, min(theirs), min(ours), ratios))

    print(f"{'program':9} {'loop':11} {'insns':>7} {'r0':>10} | {'uBPF ns/run':>11} {'bpfnb ns/run':>12} "
          f"{'uBPF/bpfnb (best)':>17} {'per round: min, median, max':>28}")
    for name, kind, insns, r0, theirs, ours, ratios in rows:
        print(f"{name:9} {kind:11} {insns:7} {r0:#10x} | {theirs * 1e9:11.0f} {ours * 1e9:12.0f} "
              f"{theirs / ours:16.2f}x {ratios[0]:12.2f}x {statistics.median(ratios):6.2f}x {ratios[-1]:6.2f}x")
    print(f"({ROUNDS} rounds of {REPEAT} runs per engine; > 1: bpfnb's interpreter is faster; "
          f"the same instructions executed, r0 equal)")


if __name__ == "__main__":
    main()
