"""``bpfnb conformance-plugin``: bpfnb as a plugin of the bpf_conformance suite.

The suite runs the plugin once per test: the program's bytes in hex on stdin (or
``--program HEX``), the input memory in hex as the first argument; the plugin
prints r0 in hex. A failure (the engine refuses the program, a run-time fault)
is a message on stderr and exit status 1.

    bpfnb conformance-plugin [MEMORY_HEX] [--program HEX] [--engine interp|jit|jit-unicorn]
"""

from __future__ import annotations

import argparse
import sys

from ..errors import BpfnbError


def _bytes(text: str, what: str) -> bytes:
    digits = "".join(text.split())
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise BpfnbError(f"conformance-plugin: the {what} is not hex: {digits[:40]!r}") from None


def main(args: argparse.Namespace) -> int:
    from ..conformance import engine
    from ..isa import decode

    program = _bytes(args.program if args.program is not None else sys.stdin.read(), "program")
    if not program or len(program) % 8:
        raise BpfnbError(f"conformance-plugin: the program is {len(program)} bytes, not a whole number of "
                         "8-byte instructions")
    memory = _bytes(args.memory, "memory") if args.memory else b""
    r0 = engine(args.engine)(decode(program, where="stdin"), memory)
    print(f"{r0 & 0xFFFF_FFFF_FFFF_FFFF:x}")
    return 0


def add_parser(sub) -> None:
    from ..conformance import ENGINES

    p = sub.add_parser("conformance-plugin", help="run one program the way bpf_conformance's plugins do",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("memory", nargs="?", default="", help="the input memory, in hex")
    p.add_argument("--program", help="the program in hex (default: read from stdin)")
    p.add_argument("--engine", choices=sorted(ENGINES), default="interp")
    p.set_defaults(func=main)
