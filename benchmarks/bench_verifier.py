"""Verification speed: bpfnb's verifier against the kernel's on the same programs.

Figures per program: instructions processed per second by bpfnb, and the
ratio of bpfnb's wall time to the ``verification time`` the kernel reports
for the same program, measured in the same run (the kernel's figure needs
root; without it only ours is printed).
"""

from __future__ import annotations

import glob
import pathlib

import bpfnb
from benchmarks.timing import best
from bpfnb.verifier import verify

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROGRAMS = [ROOT / "bpfnb/data/drops.bpf.o", ROOT / "tests/fixtures/xdp.bpf.o",
            ROOT / "bpfnb/data/examples/count_protocols.bpf.o"] + \
    [pathlib.Path(p) for p in sorted(glob.glob("/usr/lib/*/bpf/xdpfilt_alw_all.o"))]


def _kernel_time_us(prog) -> int | None:
    from bpfnb.kernel import available, load

    if available():
        return None
    times = []
    for _ in range(3):
        with load(prog, log_level=1) as loaded:
            times.append(loaded.kernel_log.verification_time_us)
    return min(times)


def main() -> None:
    print(f"{'program':24} {'insns':>6} {'processed':>9} {'bpfnb ms':>9} {'insns/s':>9} {'kernel ms':>9} {'ratio':>7}"
          f" {'no trace':>9} {'ratio':>7}")
    from benchmarks.bench_execution import alu_program

    # the objects' first programs, then a bounded loop the verifier walks 1,000 times
    programs = [next(iter(bpfnb.load(path))) for path in PROGRAMS if path.exists()]
    loop = alu_program(1000)
    programs.append(type(loop)("loop_1000", loop.insns, type=loop.type))
    for prog in programs:
        result = verify(prog, log_level=0)
        full = best(lambda prog=prog: verify(prog, log_level=0))
        # without recording every state for the stepper (what the JIT and stats ask for)
        bare = best(lambda prog=prog: verify(prog, log_level=0, trace=False))
        kernel = _kernel_time_us(prog)
        ratio = f"{full * 1e6 / kernel:6.0f}x" if kernel else "   n/a"
        bare_ratio = f"{bare * 1e6 / kernel:6.0f}x" if kernel else "   n/a"
        kernel_text = f"{kernel / 1000:9.2f}" if kernel else "      n/a"
        print(f"{prog.name[:24]:24} {len(prog.insns):6} {result.processed:9} {full * 1e3:9.1f} "
              f"{result.processed / full:9.0f} {kernel_text} {ratio} {bare * 1e3:9.1f} {bare_ratio}")


if __name__ == "__main__":
    main()
