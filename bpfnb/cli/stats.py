"""``bpfnb stats OBJ... [--vs-kernel] [--csv FILE]``: figures per program, as veristat."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from ..verifier.stats import stats

    frame = stats(args.obj, vs_kernel=args.vs_kernel)
    if args.csv:
        frame.to_csv(args.csv, index=False)
        print(f"{len(frame)} rows written to {args.csv}")
    else:
        with __import__("pandas").option_context("display.max_rows", None, "display.width", 200,
                                                 "display.max_colwidth", 60):
            print(frame.drop(columns=[c for c in ("error", "kernel_error") if c in frame and frame[c].isna().all()])
                  .to_string(index=False))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("stats", help="verification figures per program (veristat-like)")
    p.add_argument("obj", nargs="+", help="BPF ELF objects")
    p.add_argument("--vs-kernel", action="store_true", help="the running kernel's figures beside")
    p.add_argument("--csv", help="write the table as CSV here")
    p.set_defaults(func=run)
