"""The ``bpfnb`` command: one module per subcommand in this package.

Each module defines ``add_parser(subparsers)``, which registers its parser and
sets ``func`` (called with the parsed arguments, returning an exit status).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import BpfnbError

# Module names under bpfnb.cli, in the order ``--help`` lists them.
COMMANDS = (
    "disasm",
    "verify",
    "stats",
    "run",
    "jit",
    "conformance",
    "conformance_plugin",
    "trace",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bpfnb", description="A laboratory for eBPF programs with BTF-typed pointers."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue  # not built yet
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except BpfnbError as exc:
        print(f"bpfnb: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt as exc:
        if str(exc):
            print(f"bpfnb: {exc}", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
