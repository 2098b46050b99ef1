"""bpfnb's verifier against the running kernel's on directories of compiled objects.

    python -m benchmarks.verifier_agreement DIR_OR_OBJECT... [--json FILE] [--show N]

For every program of every object: both verdicts, the first error line, the
register/slot states printed on instruction lines, and the whole log line for line
(the map addresses of ``ld_imm64`` and the verification time aside): programs whose
logs are identical, the kernel's lines ours has in order, and with ``--show`` the
first line where each differing log parts from the kernel's, grouped by the kind of
line. Programs the kernel refuses
before verifying (EPERM for fentry here, a map it cannot create) are counted
apart from its rejects; objects bpfnb cannot load are listed. Needs root and
BPF (``bpfnb.kernel.available()``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
from collections import Counter

OBJECT_GLOBS = ("*.o", "*.elf")


def objects(paths: list[str]) -> list[pathlib.Path]:
    out = []
    for p in map(pathlib.Path, paths):
        if p.is_dir():
            out += sorted(x for g in OBJECT_GLOBS for x in p.glob(g))
        else:
            out.append(p)
    return out


def run(paths: list[str], *, log_level: int = 2):
    import bpfnb
    from bpfnb.errors import BpfnbError
    from bpfnb.program import UNKNOWN_TYPE
    from bpfnb.verifier.agreement import compare_with_kernel

    rows, unloadable = [], []
    for path in objects(paths):
        try:
            progs = list(bpfnb.load(path))
        except BpfnbError as exc:
            unloadable.append((path.name, str(exc)))
            continue
        for prog in progs:
            if prog.type == UNKNOWN_TYPE:  # its section names no type: nothing to load it as
                unloadable.append((f"{path.name}:{prog.name}", prog.type_note))
                continue
            try:
                rows.append((path.name, compare_with_kernel(prog, log_level=log_level)))
            except BpfnbError as exc:  # e.g. a program of no known type: neither side can judge it
                unloadable.append((f"{path.name}:{prog.name}", str(exc)))
    return rows, unloadable


def summary(rows, unloadable) -> list[str]:
    judged = [a for _, a in rows if a.judged]
    refused = [a for _, a in rows if not a.judged]
    rejects = [a for a in judged if a.kernel == "reject"]
    same = sum(a.states_same for a in judged)
    total = sum(a.states_total for a in judged)
    log_same = sum(a.log_lines_same for a in judged)
    log_total = sum(a.log_lines_total for a in judged)
    flips = Counter((a.kernel, a.ours) for a in judged if not a.verdict_agrees)
    lines = [
        f"objects: {len({o for o, _ in rows})} loaded, {len(unloadable)} objects or programs not loadable by bpfnb",
        f"programs: {len(rows)}; judged by the kernel {len(judged)}, refused {len(refused)}",
        f"verdicts: {sum(a.verdict_agrees for a in judged)}/{len(judged)} agree"
        + (f" (kernel->ours: {dict(flips)})" if flips else ""),
        f"error lines: {sum(a.error_agrees for a in rejects)}/{len(rejects)} of the kernel's rejects",
        f"printed states: {same}/{total}" + (f" ({same / total:.1%})" if total else ""),
        f"internal errors: {sum(a.ours == 'internal' for _, a in rows)}",
        f"logs identical: {sum(a.log_identical for a in judged)}/{len(judged)}",
        f"log lines: {log_same}/{log_total}" + (f" ({log_same / log_total:.2%})" if log_total else ""),
    ]
    kinds = Counter(line_kind(a.log_first_diff[1]) for a in judged if not a.log_identical)
    if kinds:
        lines.append("first differing line, by the kernel's kind of line: "
                     + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kn: (-kn[1], kn[0]))))
    return lines


def line_kind(text: str | None) -> str:
    """What a log line is, to group the first differences (the kernel's side)."""
    from bpfnb.kernel.log import KernelLog

    if text is None:
        return "(past the end)"
    if text.startswith("mark_precise:"):
        return "mark_precise"
    if text.startswith(("processed ", "stack depth ", "verification time ")):
        return "statistics"
    parsed = KernelLog(text).lines
    return parsed[0].kind if parsed else "(empty)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--json", help="write one JSON object per program to this file")
    parser.add_argument("--show", type=int, default=20,
                        help="list this many disagreements of error lines, and of logs (the first differing line)")
    parser.add_argument("--log-level", type=int, default=2)
    args = parser.parse_args(argv)
    from bpfnb.kernel import available

    reason = available()
    if reason:
        print(f"the kernel cannot be asked: {reason}", file=sys.stderr)
        return 2
    rows, unloadable = run(args.paths, log_level=args.log_level)
    for line in summary(rows, unloadable):
        print(line)
    shown = 0
    for obj, a in rows:
        if a.judged and not a.error_agrees and shown < args.show:
            shown += 1
            print(f"  {obj}:{a.program}: kernel {a.kernel} @{a.kernel_error_insn} {a.kernel_error!r}"
                  f" | ours {a.ours} @{a.our_error_insn} {a.our_error!r}")
    shown = 0
    for obj, a in rows:
        if a.judged and not a.log_identical and shown < args.show:
            shown += 1
            at, theirs, ours = a.log_first_diff
            print(f"  {obj}:{a.program}: log line {at + 1} ({a.log_lines_same}/{a.log_lines_total} same)\n"
                  f"    kernel: {theirs}\n    ours:   {ours}")
    for name, why in unloadable[:args.show]:
        print(f"  not loadable: {name}: {why}")
    if args.json:
        with open(args.json, "w") as f:
            for obj, a in rows:
                f.write(json.dumps({"object": obj, **dataclasses.asdict(a)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
