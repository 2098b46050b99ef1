"""``bpfnb conformance DIR [--engine interp|jit|jit-unicorn]``: run the vectors."""

from __future__ import annotations

import argparse

from ..conformance import ENGINES, engine, run_vector, vectors


def run(args: argparse.Namespace) -> int:
    execute = engine(args.engine)
    outcomes = []
    for vector in vectors(args.dir):
        outcome = run_vector(vector, execute)
        outcomes.append(outcome)
        if outcome.status == "failed":
            print(f"FAIL {vector.path}: {outcome.detail}")
        elif outcome.status == "skipped" and args.verbose:
            print(f"skip {vector.path}: {outcome.detail}")
    passed = sum(o.status == "passed" for o in outcomes)
    failed = sum(o.status == "failed" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


def add_parser(sub) -> None:
    p = sub.add_parser("conformance", help="run conformance vectors (.data files) on an engine")
    p.add_argument("dir", help="a directory of .data vectors (searched recursively)")
    p.add_argument("--engine", choices=sorted(ENGINES), default="interp")
    p.add_argument("-v", "--verbose", action="store_true", help="also list skipped vectors and why")
    p.set_defaults(func=run)
