"""Verification speed and trace memory: bpfnb's verifier against the kernel's.

For every program: the kernel's own ``verification time`` (best of 3 loads, log
level 1) and the CPU time of its load syscall, and, measured in the same run, bpfnb's wall time with
``verify(trace=False)`` and ``verify(trace=True)``; before timing, bpfnb's verdict
and processed count are checked equal to the kernel's (a program where they differ is
listed, not timed). Programs: the bounded
loops of tests/fixtures/loops.bpf.o (1k/4k/16k iterations), the largest
fixtures, and the largest programs of the corpora in $BPFNB_CORPORA (default
/work/scratch/corpora: libbpf-tools, cilium-ebpf, xdp-tools; built by hand, never
committed) on which bpfnb and the kernel agree (the larger ones that do not are
listed with the disagreement).

Times are bpfnb's CPU time (``time.process_time``: the development machine is shared),
the best of 3 runs (of 25 for a program verified in under 10 ms: one run of a small
program is a fraction of a millisecond), and apart from them the first verification of
the program (``first``: it also computes what is kept per instruction tuple, such as
the liveness and the prune points, that later verifications of the same program reuse).
Trace memory: the peak RSS growth (VmHWM, reset through /proc/self/clear_refs just
before) of ``verify(trace=True)`` per processed
instruction on an 80k-step and a 990k-step walk (counted loops), each in a fresh
process, beside the growth of ``verify(trace=False)`` (the kept states); and the
``VerifierStepper`` on those traces: the time to open it and the slowest of a few
steps across the walk (wall time).

``python -m benchmarks.bench_verifier [--quick]`` (--quick: no 1M-step walk). The 1M-step
walk is tests/large_fixtures/million.bpf.o, whose processed count the kernel gives too.

``python -m benchmarks.bench_verifier --every [DIR_OR_OBJECT...]``: every program of
those objects (default: the fixtures, the examples and the three corpora), each against
the kernel's verification time of the same run, verdict and processed count equal
first; the time is that of a first verification only (each run on the program loaded
afresh from its object, so nothing is kept from an earlier verification of it; the best
of ``FIRST_REPEAT``), then the distribution of the ratios and the worst programs (every
program with ``--all``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

import bpfnb
from benchmarks.timing import best
from bpfnb.verifier import verify

ROOT = pathlib.Path(__file__).resolve().parents[1]
LOOPS = ROOT / "tests/fixtures/loops.bpf.o"
FIXTURES = [ROOT / "bpfnb/data/drops.bpf.o", ROOT / "tests/fixtures/xdp.bpf.o", ROOT / "tests/fixtures/kfree_skb.bpf.o"]
# 990,003 processed instructions in the kernel too (its limit is 1M): timed unless --quick
MILLION = ROOT / "tests/large_fixtures/million.bpf.o"
CORPORA = pathlib.Path(os.environ.get("BPFNB_CORPORA", "/work/scratch/corpora"))
CORPUS_DIRS = ("libbpf-tools", "cilium-ebpf", "xdp-tools")
LARGEST_PER_CORPUS = 3
KERNEL_LOADS = 3
CPU_MIN_US = 10_000  # the kernel's CPU time counts from 10 ms (a few scheduler ticks)
# a walk this long is timed once (the others: best of 3, and a walk shorter than
# SHORT_S best of SHORT_REPEAT)
LONG_WALK = 50_000
SHORT_S, SHORT_REPEAT = 0.010, 25
# the memory walks: a counted loop of 8,000 iterations (10 instructions each), the 1M fixture
MEMORY_WALKS = {"80k": "alu:8000", "1M": f"{MILLION}:million_steps"}
TARGET_RATIO, TARGET_TRACE_RATIO, TARGET_BYTES = 30, 2, 500
TARGET_OPEN_S, TARGET_STEP_MS = 2, 50
# bpfnb's CPU time (the machine is shared: wall time counts the other processes); the
# kernel's verification time is its own in-kernel measure
CPU = time.process_time


def _kernel(prog) -> tuple[bool, int, int, int] | None:
    """(verdict, processed, best verification time in us, best CPU time of the load in
    us), or None when the kernel cannot judge. The load runs in this thread, so its
    system CPU time is the kernel's work (verification, and the little around it); the
    log's verification time is in-kernel wall time, which a loaded machine inflates."""
    from bpfnb.errors import KernelError
    from bpfnb.kernel import available, load

    if available() is not None:
        return None
    times, cpu, verdict = [], [], None
    try:
        for _ in range(KERNEL_LOADS):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
            with load(prog, log_level=1) as loaded:
                cpu.append(resource.getrusage(resource.RUSAGE_SELF).ru_stime - before)
                log = loaded.kernel_log
                verdict = (loaded.ok, log.processed)
                times.append(log.verification_time_us)
    except KernelError:
        return None
    # the system time is split from the user time by sampling at clock ticks: a load of a
    # few ticks or less may show any share of its time (none, or 0.03 ms of a 1.3 ms
    # verification); such a load is judged by its verification time alone
    cpu_us = int(min(cpu) * 1e6)
    return verdict[0], verdict[1], min(times), cpu_us if cpu_us >= CPU_MIN_US else None


def _corpus_programs() -> tuple[list, list[str]]:
    chosen, skipped = [], []
    for name in CORPUS_DIRS:
        directory = CORPORA / name
        if not directory.is_dir():
            skipped.append(f"{directory}: absent")
            continue
        progs = []
        for path in sorted(directory.iterdir()):
            try:
                progs += list(bpfnb.load(path))
            except Exception:  # noqa: BLE001 (a corpus object bpfnb cannot load is not timed)
                continue
        progs.sort(key=lambda p: -len(p.insns))
        taken = 0
        for prog in progs:
            if taken == LARGEST_PER_CORPUS:
                break
            kernel = _kernel(prog)
            if kernel is None:
                skipped.append(f"{name}/{prog.name} ({len(prog.insns)} insns): the kernel refuses it here")
                continue
            ours = verify(prog, log_level=0, trace=False, progress=False)
            if (ours.ok, ours.processed) != kernel[:2]:
                skipped.append(f"{name}/{prog.name} ({len(prog.insns)} insns): bpfnb {ours.verdict} "
                               f"{ours.processed} processed, kernel {'accept' if kernel[0] else 'reject'} {kernel[1]}")
                continue
            chosen.append((f"{name}/{prog.name}", prog, kernel))
            taken += 1
    return chosen, skipped


def speed(quick: bool = False) -> list[tuple]:
    rows = []
    programs = [(prog.name, prog, None) for prog in bpfnb.load(LOOPS)]
    fixtures = FIXTURES if quick else [*FIXTURES, MILLION]
    programs += [(f"{path.name}:{prog.name}", prog, None) for path in fixtures for prog in [next(iter(bpfnb.load(path)))]]
    corpus, skipped = _corpus_programs()
    programs += corpus
    print(f"{'program':40} {'insns':>5} {'processed':>9} {'kernel ms':>9} {'k cpu ms':>8} {'first ms':>8}"
          f" {'ratio':>6} {'no trace ms':>11} {'ratio':>6} {'trace ms':>9} {'ratio':>6} {'trace/no':>8}")
    for label, prog, kernel in programs:
        kernel = kernel or _kernel(prog)
        # the same program with instructions never verified (a new tuple): nothing kept yet
        prog = dataclasses.replace(prog, insns=tuple(list(prog.insns)))
        start = CPU()
        first = verify(prog, log_level=0, trace=False, progress=False)
        first_s = CPU() - start
        if kernel is not None and (first.ok, first.processed) != kernel[:2]:
            skipped.append(f"{label} ({len(prog.insns)} insns): bpfnb {first.verdict} {first.processed} processed, "
                           f"kernel {'accept' if kernel[0] else 'reject'} {kernel[1]}")
            continue
        repeat = 1 if first.processed > LONG_WALK else SHORT_REPEAT if first_s < SHORT_S else 3
        bare = best(lambda prog=prog: verify(prog, log_level=0, trace=False, progress=False), repeat, CPU)
        full = best(lambda prog=prog: verify(prog, log_level=0, progress=False), repeat, CPU)
        # the ratio is against the smaller of the kernel's two figures: its in-kernel wall
        # time (inflated when the machine is loaded) and the load's CPU time (which also
        # counts the BTF, the maps and the JIT; none under CPU_MIN_US)
        k_ms = min(kernel[2], kernel[3] or kernel[2]) / 1000 if kernel else None

        def ratio(ms: float, k_ms=k_ms) -> str:
            return f"{ms / k_ms:5.1f}x" if k_ms else "   n/a"

        kernel_text = (f"{kernel[2] / 1000:9.2f} {kernel[3] / 1000 if kernel[3] else float('nan'):8.2f}" if kernel
                       else "      n/a      n/a")
        print(f"{label[:40]:40} {len(prog.insns):5} {first.processed:9} {kernel_text} {first_s * 1e3:8.1f}"
              f" {ratio(first_s * 1e3)} {bare * 1e3:11.2f} {ratio(bare * 1e3)} {full * 1e3:9.2f} {ratio(full * 1e3)}"
              f" {full / bare:7.2f}x")
        rows.append((label, first.processed, k_ms, bare * 1e3, full * 1e3, first_s * 1e3))
    for line in skipped:
        print(f"  not timed: {line}")
    judged = [r for r in rows if r[2]]
    if judged:
        worst = max(judged, key=lambda r: r[3] / r[2])
        worst_first = max(judged, key=lambda r: r[5] / r[2])
        print(f"worst verify(trace=False): {worst[3] / worst[2]:.1f}x the kernel ({worst[0]}; goal <= {TARGET_RATIO}x),"
              f" a first verification {worst_first[5] / worst_first[2]:.1f}x ({worst_first[0]});"
              f" worst trace=True/trace=False: {max(r[4] / r[3] for r in rows):.2f}x (goal <= {TARGET_TRACE_RATIO}x)")
    return rows


MEMORY_CHILD = """
import json, sys, time
from benchmarks.bench_execution import alu_program
from bpfnb.verifier import verify
from bpfnb.widgets.adapters import walk_from_result
from bpfnb.widgets.stepper import VerifierStepper
import bpfnb
where, name = sys.argv[1].rsplit(":", 1)
prog = alu_program(int(name)) if where == "alu" else bpfnb.load(where).program(name)
trace = sys.argv[2] == "1"
def status_kb(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
VerifierStepper(walk_from_result(verify(alu_program(10), log_level=0)))  # imports and first-use caches
with open("/proc/self/clear_refs", "w") as clear_refs:  # the peak RSS (VmHWM) restarts from the RSS now
    clear_refs.write("5")
before = status_kb("VmRSS")
result = verify(prog, log_level=0, trace=trace, progress=False)
after = status_kb("VmHWM")
out = {"processed": result.processed, "kb": after - before, "steps": len(result.trace),
       "nbytes": result.trace.nbytes() if trace else 0}
if trace:  # the stepper on this trace: opening it, then steps here and there
    start = time.perf_counter()
    stepper = VerifierStepper(walk_from_result(result))
    out["open_s"] = time.perf_counter() - start
    n, times = len(result.trace), []
    for step in (1, 2, n // 2, n // 2 + 1, n - 2, n - 1, n // 3):
        start = time.perf_counter()
        stepper.show(step)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    stepper.next_visit()
    times.append(time.perf_counter() - start)
    out["step_ms"] = max(times) * 1e3
print(json.dumps(out))
"""


def _memory_run(program: str, trace: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, program, "1" if trace else "0"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def memory(walks: dict[str, str]) -> None:
    print(f"{'walk':6} {'processed':>9} {'RSS growth, trace':>18} {'no trace':>9} {'trace bytes/insn':>17}"
          f" {'arrays+texts/step':>18}")
    for label, program in walks.items():
        full, bare = _memory_run(program, True), _memory_run(program, False)
        per_insn = (full["kb"] - bare["kb"]) * 1024 / full["processed"]
        print(f"{label:6} {full['processed']:9} {full['kb'] / 1024:15.1f} MB {bare['kb'] / 1024:6.1f} MB "
              f"{per_insn:17.0f} {full['nbytes'] / full['steps']:18.1f}   (goal <= {TARGET_BYTES} bytes)")
        print(f"       stepper on this trace: opened in {full['open_s']:.2f} s (goal < {TARGET_OPEN_S} s), slowest step "
              f"{full['step_ms']:.1f} ms (goal < {TARGET_STEP_MS} ms)")


FIRST_REPEAT = 3
EVERY_DEFAULT = (ROOT / "tests/fixtures", ROOT / "bpfnb/data", ROOT / "bpfnb/data/examples",
                 *(CORPORA / name for name in CORPUS_DIRS))
WORST_SHOWN = 15


def _first_times(path: pathlib.Path, indexes: list[int]) -> dict[int, tuple[float, object]]:
    """Per program (its index in the object at ``path``): the best CPU time of
    ``FIRST_REPEAT`` first verifications (the object loaded afresh for each) and the result."""
    out: dict[int, tuple[float, object]] = {}
    for _ in range(FIRST_REPEAT):
        progs = list(bpfnb.load(path))
        for k in indexes:
            start = CPU()
            result = verify(progs[k], log_level=0, trace=False, progress=False)
            took = CPU() - start
            out[k] = (min(took, out[k][0]) if k in out else took, result)
    return out


def every(paths: list[str], shown: int | None = WORST_SHOWN) -> list[tuple]:
    """First verifications of every program of ``paths`` against the kernel's time."""
    from benchmarks.verifier_agreement import objects
    from bpfnb.program import UNKNOWN_TYPE

    rows, skipped = [], []
    for path in objects(paths):
        try:
            progs = list(bpfnb.load(path))
        except Exception as exc:  # noqa: BLE001 (an object bpfnb cannot load is listed, not timed)
            skipped.append(f"{path.name}: {str(exc).splitlines()[0][:100]}")
            continue
        kernels = {}
        for k, prog in enumerate(progs):
            if prog.type == UNKNOWN_TYPE:
                continue
            kernel = _kernel(prog)
            if kernel is None:
                skipped.append(f"{path.name}:{prog.name}: the kernel refuses it here")
                continue
            kernels[k] = (prog.name, kernel, len(prog.insns))
        firsts = _first_times(path, list(kernels))
        for k, (name, kernel, n_insns) in kernels.items():
            took, result = firsts[k]
            if (result.ok, result.processed) != kernel[:2]:
                skipped.append(f"{path.name}:{name}: bpfnb {result.verdict} {result.processed} processed, "
                               f"kernel {'accept' if kernel[0] else 'reject'} {kernel[1]}")
                continue
            k_ms = min(kernel[2], kernel[3] or kernel[2]) / 1000
            rows.append((f"{path.parent.name}/{path.name}:{name}", n_insns, result.processed, k_ms, took * 1e3))
    _every_report(rows, skipped, shown)
    return rows


def _every_report(rows: list[tuple], skipped: list[str], shown: int | None = WORST_SHOWN) -> None:
    for line in skipped:
        print(f"  not timed: {line}")
    if not rows:
        return
    ratios = sorted(r[4] / r[3] for r in rows)

    def pct(q: float) -> float:
        return ratios[min(len(ratios) - 1, int(q * len(ratios)))]

    over = sum(r > TARGET_RATIO for r in ratios)
    print(f"{len(rows)} programs, first verification / kernel: median {pct(0.5):.1f}x, p90 {pct(0.9):.1f}x,"
          f" max {ratios[-1]:.1f}x; {over} over {TARGET_RATIO}x")
    print(f"{'program':60} {'insns':>6} {'processed':>9} {'kernel ms':>9} {'first ms':>8} {'ratio':>6}")
    for label, n, processed, k_ms, ms in sorted(rows, key=lambda r: -r[4] / r[3])[:shown]:
        print(f"{label[-60:]:60} {n:6} {processed:9} {k_ms:9.3f} {ms:8.2f} {ms / k_ms:5.1f}x")


def main() -> None:
    if "--every" in sys.argv:
        paths = [a for a in sys.argv[1:] if not a.startswith("--")]
        every(paths or [str(p) for p in EVERY_DEFAULT if p.exists()], None if "--all" in sys.argv else WORST_SHOWN)
        return
    quick = "--quick" in sys.argv
    speed(quick)
    memory({k: v for k, v in MEMORY_WALKS.items() if not (quick and k == "1M")})


if __name__ == "__main__":
    main()
