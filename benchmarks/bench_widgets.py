"""Interactivity of the notebook widgets on a 1,000-instruction program.

Figures: the CFG's layout by graphviz ``dot`` (once per program), building a
``VerifierStepper`` (verification, the walk, the first render), and the
update per step (the register panel and the CFG's highlighting, no re-layout)
— against a reference measured in the same run: a plain ``dot`` run on the
same graph text (the floor for the layout) and 100 ms, the usual limit for a
response to feel immediate.
"""

from __future__ import annotations

import random
import subprocess
import time

from bpfnb.isa.assembler import assemble
from bpfnb.program import Program

INTERACTIVE_S = 0.100


def branchy_program(n: int = 1000, seed: int = 5) -> Program:
    """``n`` instructions: ALU on scalars, stack stores and loads, forward branches (many blocks)."""
    rng = random.Random(seed)
    lines = [f"mov %r{r}, {rng.randrange(1, 1000)}" for r in range(10)]
    while len(lines) < n - 2:
        d, s = rng.randrange(10), rng.randrange(10)
        pick = rng.random()
        if pick < 0.55:
            lines.append(f"{rng.choice(('add', 'sub', 'xor', 'or', 'and', 'mov'))} %r{d}, %r{s}")
        elif pick < 0.7:
            lines.append(f"stxdw [%r10-{8 * rng.randrange(1, 9)}], %r{s}")
        elif pick < 0.8:
            lines.append(f"ldxdw %r{d}, [%r10-{8 * rng.randrange(1, 9)}]")
        else:
            lines.append(f"jgt %r{d}, {rng.randrange(1000)}, +{rng.randrange(1, 4)}")
    lines += ["mov %r0, 0"] * (n - 1 - len(lines)) + ["exit"]
    # every stack slot written first, so every load is of initialised stack
    init = [f"stdw [%r10-{8 * k}], 0" for k in range(1, 9)]
    return Program("branchy1k", assemble("\n".join(init + lines)), type="socket_filter")


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    from bpfnb.verifier import verify
    from bpfnb.viz.cfg import CfgView, cfg_graph
    from bpfnb.widgets import VerifierStepper

    prog = branchy_program()
    result = verify(prog, log_level=0)
    assert result.ok, result.error
    source = cfg_graph(prog).source
    dot_s = min(_time(lambda: subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True,
                                               check=True)) for _ in range(3))
    cfg_s = min(_time(lambda: CfgView(prog)) for _ in range(3))
    build_s = min(_time(lambda: VerifierStepper(prog)) for _ in range(2))
    stepper = VerifierStepper(prog)
    steps = min(len(stepper.walk) - 1, 300)
    start = time.perf_counter()
    for k in range(1, steps + 1):
        stepper.show(k)
    step_s = (time.perf_counter() - start) / steps
    jump_s = min(_time(lambda: stepper.jump_to_insn(len(prog.insns) - 1)) for _ in range(5))
    print(f"program          : {len(prog.insns)} insns, {result.processed} processed, {len(stepper.walk)} visits, "
          f"{len(stepper.cfg.blocks)} basic blocks")
    print(f"CFG layout       : {cfg_s * 1e3:8.1f} ms (plain `dot -Tsvg` on the same graph: {dot_s * 1e3:.1f} ms, "
          f"ratio {cfg_s / dot_s:.2f}x)")
    print(f"stepper built    : {build_s * 1e3:8.1f} ms (verification, walk, CFG layout, first render)")
    print(f"one step         : {step_s * 1e3:8.1f} ms ({step_s / INTERACTIVE_S:.2f}x the 100 ms budget)")
    print(f"jump to insn     : {jump_s * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
