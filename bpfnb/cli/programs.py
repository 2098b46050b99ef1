"""The programs a command works on: ``OBJ [--prog NAME] [--type T | --section S]``.

Shared by ``disasm``, ``verify`` and ``jit`` (not a subcommand itself).
``--type``/``--section`` give a program type: to the program ``--prog``
names, else to every program whose section names no type bpfnb knows (type
``unknown``: ``2/7`` tail-call slots of an object of mixed types, cilium's
``from-netdev``, ``.text``-only objects, ...).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from ..errors import BpfnbError
from ..program import UNKNOWN_TYPE, Program


def add_options(p: argparse.ArgumentParser, *, type_help: str | None = None) -> None:
    p.add_argument("--prog", help="only this program (function or section name)")
    given = p.add_mutually_exclusive_group()
    given.add_argument("--type", metavar="TYPE",
                       help=type_help or "program type (xdp, sched_cls, ...) of --prog, or of every program "
                                         "whose section names none bpfnb knows")
    given.add_argument("--section", metavar="NAME",
                       help="read --prog (or every program of unknown type; for verify, --raw files) as "
                            "if in this section (tp_btf/kfree_skb, tc, ...)")


@dataclass
class Selection:
    """Programs ready for the command, and those that could not be prepared
    (``(program, section, error)``), which the command reports without stopping."""

    programs: list[Program] = field(default_factory=list)
    failed: list[tuple[str, str, BpfnbError]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def report(self, file=None) -> int:
        """Print notes and failures to stderr; 1 when a program failed."""
        file = file or sys.stderr
        for note in self.notes:
            print(f"bpfnb: note: {note}", file=file)
        for _, _, exc in self.failed:
            print(f"bpfnb: error: {exc}", file=file)
        return 1 if self.failed else 0


def select(paths: list[str], args: argparse.Namespace, *, kernel_btf=None) -> Selection:
    """Load each object and pick the programs ``args`` names."""
    import warnings

    from ..elf import BpfnbWarning, load

    given = getattr(args, "type", None) or getattr(args, "section", None)
    out = Selection()
    for path in paths:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BpfnbWarning)
            obj = load(path, kernel_btf=kernel_btf)
            if given:
                names = [args.prog] if args.prog else [p.name for p in obj if p.type == UNKNOWN_TYPE]
                if names:
                    obj = load(path, kernel_btf=kernel_btf, types=dict.fromkeys(names, given))
                else:
                    out.notes.append(f"{path}: every program has a known type; --type/--section apply to "
                                     "none (name one with --prog)")
        out.notes += list(dict.fromkeys(str(w.message) for w in caught))
        if args.prog:
            try:
                out.programs.append(obj.program(args.prog))
            except BpfnbError as exc:
                out.failed.append((args.prog, "", exc))
            continue
        out.programs += list(obj)
        out.failed += [(f.name, f.section, f.error) for f in obj.failed.values()]
    return out
