"""``bpfnb conformance DIR [--engine interp|jit|jit-unicorn]``: run the vectors."""

from __future__ import annotations

import argparse

from ..conformance import ENGINES, run


def main(args: argparse.Namespace) -> int:
    def show(outcome) -> None:
        if outcome.status == "failed":
            print(f"FAIL {outcome.vector.path}: {outcome.detail}", flush=True)
        elif outcome.status == "skipped" and args.verbose:
            print(f"skip {outcome.vector.path}: {outcome.detail}", flush=True)

    report = run(args.dir, args.engine, show)
    print(report.summary())
    return 1 if report.failed else 0


def add_parser(sub) -> None:
    p = sub.add_parser("conformance", help="run conformance vectors (.data files) on an engine")
    p.add_argument("dir", help="a directory of .data vectors (searched recursively)")
    p.add_argument("--engine", choices=sorted(ENGINES), default="interp")
    p.add_argument("-v", "--verbose", action="store_true", help="also list skipped vectors and why")
    p.set_defaults(func=main)
