"""bpfnb as a plugin of the bpf_conformance suite.

The suite's runner starts the plugin once per test: the program's bytes in hex on
stdin, the input memory in hex as the first argument (before the options given
with ``--plugin_options``, then ``--elf`` when the runner was asked for ELF);
the plugin prints r0 in hex. A failure (the engine refuses the program, a
run-time fault) is one line on stderr and exit status 1.

    bpfnb-conformance-plugin [MEMORY_HEX] [--engine interp|jit|jit-unicorn] [--program HEX] [--elf]
    bpfnb conformance-plugin ...    (the same, as a subcommand)

With the suite's runner built (see docs/conformance.md)::

    bpf_conformance_runner --test_file_directory DIR --cpu_version v4 \\
        --plugin_path .venv/bin/bpfnb-conformance-plugin --plugin_options "--engine jit"
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from ..errors import BpfnbError

PROG = "bpfnb-conformance-plugin"
U64_MASK = (1 << 64) - 1


def _bytes(text: str, what: str) -> bytes:
    digits = "".join(text.split())
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise BpfnbError(f"{PROG}: the {what} is not hex: {digits[:40]!r}") from None


def _elf_insns(data: bytes):
    """The instructions of the ELF object the runner writes (one function in one section)."""
    from ..elf import load

    with tempfile.NamedTemporaryFile(suffix=".o", delete=False) as f:
        f.write(data)
    try:
        programs = load(f.name).programs
    finally:
        os.unlink(f.name)
    if len(programs) != 1:
        raise BpfnbError(f"{PROG}: the ELF object holds {len(programs)} programs, not one")
    return programs[0].insns


def execute(args: argparse.Namespace) -> int:
    """Run one program as the arguments say; r0 as an unsigned 64-bit value."""
    from ..conformance import engine
    from ..isa import decode

    program = _bytes(args.program if args.program is not None else sys.stdin.read(), "program")
    if args.elf:
        insns = _elf_insns(program)
    else:
        if not program or len(program) % 8:
            raise BpfnbError(f"{PROG}: the program is {len(program)} bytes, not a whole number of "
                             "8-byte instructions")
        insns = decode(program, where="stdin")
    memory = _bytes(args.memory, "memory") if args.memory else b""
    return engine(args.engine)(insns, memory)() & U64_MASK


def main(args: argparse.Namespace) -> int:
    print(f"{execute(args):x}")
    return 0


def _arguments(p: argparse.ArgumentParser) -> None:
    from ..conformance import ENGINES

    p.add_argument("memory", nargs="?", default="", help="the input memory, in hex (bytes may be spaced)")
    p.add_argument("--program", help="the program in hex (default: read from stdin)")
    p.add_argument("--engine", choices=sorted(ENGINES), default="interp")
    p.add_argument("--jit", dest="engine", action="store_const", const="jit",
                   help="the same as --engine jit (the spelling in DESIGN.md)")
    p.add_argument("--elf", action="store_true", help="the program is an ELF object (the runner's --elf)")


def add_parser(sub) -> None:
    p = sub.add_parser("conformance-plugin", help="run one program the way bpf_conformance's plugins do",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(p)
    p.set_defaults(func=main)


def plugin_main(argv: list[str] | None = None) -> int:
    """The ``bpfnb-conformance-plugin`` console script: the suite's ``--plugin_path`` as it is."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(parser)
    args = parser.parse_args(argv)
    try:
        return main(args)
    except BpfnbError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(plugin_main())
