"""Interactivity of the notebook widgets on a 1,000-instruction program.

Figures: the CFG's layout by graphviz ``dot`` (once per program), building a
``VerifierStepper`` (verification, the walk, the first render), and the
update per step (the register panel and the CFG's highlighting, no re-layout)
— against a reference measured in the same run: a plain ``dot`` run on the
same graph text (the floor for the layout) and 100 ms, the usual limit for a
response to feel immediate.
"""

from __future__ import annotations

import subprocess
import time

from benchmarks.timing import best

INTERACTIVE_S = 0.100


def main() -> None:
    from benchmarks.bench_execution import straight_line_program
    from bpfnb.verifier import verify
    from bpfnb.viz.cfg import CfgView, cfg_graph
    from bpfnb.widgets import VerifierStepper

    prog = straight_line_program(1000)
    result = verify(prog, log_level=0)
    assert result.ok, result.error
    source = cfg_graph(prog).source
    dot_s = best(lambda: subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True, check=True))
    cfg_s = best(lambda: CfgView(prog))
    build_s = best(lambda: VerifierStepper(prog), 2)
    stepper = VerifierStepper(prog)
    steps = min(len(stepper.walk) - 1, 300)
    start = time.perf_counter()
    for k in range(1, steps + 1):
        stepper.show(k)
    step_s = (time.perf_counter() - start) / steps
    jump_s = best(lambda: stepper.jump_to_insn(len(prog.insns) - 1), 5)
    print(f"program          : {len(prog.insns)} insns, {result.processed} processed, {len(stepper.walk)} visits, "
          f"{len(stepper.cfg.blocks)} basic blocks")
    print(f"CFG layout       : {cfg_s * 1e3:8.1f} ms (plain `dot -Tsvg` on the same graph: {dot_s * 1e3:.1f} ms, "
          f"ratio {cfg_s / dot_s:.2f}x)")
    print(f"stepper built    : {build_s * 1e3:8.1f} ms (verification, walk, CFG layout, first render)")
    print(f"one step         : {step_s * 1e3:8.1f} ms ({step_s / INTERACTIVE_S:.2f}x the 100 ms budget)")
    print(f"jump to insn     : {jump_s * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
