"""``bpfnb stats PATH... [--workers N | --scheduler ADDR] [--vs-kernel] [--out F.parquet|.csv]``
and ``bpfnb stats --compare BASE NEW [--filter EXPR]``: veristat's two modes.

The table fits 120 columns (names are shortened in the middle to make room);
``--out`` keeps every field. A comparison exits 1 when a shown program's verdict
flipped.
"""

from __future__ import annotations

import argparse
import sys

WIDTH = 120
SEPARATOR = "  "
MIN_NAME = 12  # file and program names are never cut shorter than this
ELLIPSIS = "…"

# field -> header, as veristat titles them where it has the field
HEADERS = {
    "file": "File", "program": "Program", "section": "Section", "type": "Type", "verdict": "Verdict",
    "error": "Error", "error_insn": "Error insn", "insns": "Insns", "processed": "Processed",
    "states": "States", "peak_states": "Peak", "stack_depth": "Stack", "time_us": "Time (us)",
    "kernel_verdict": "Kernel", "kernel_processed": "K processed", "kernel_time_us": "K time (us)",
    "kernel_match": "=", "kernel_error": "Kernel error", "kernel_note": "Kernel note",
}
DEFAULT_FIELDS = ("file", "program", "verdict", "insns", "processed", "states", "peak_states", "time_us")
# with the kernel's figures: fewer of ours, so that names keep room within 120 columns
KERNEL_FIELDS = ("file", "program", "verdict", "processed", "states", "time_us", "kernel_verdict",
                 "kernel_processed", "kernel_time_us", "kernel_match")
COMPARE_DEFAULT = ("verdict", "processed", "states")
SIDES = (("_base", "A"), ("_new", "B"), ("_diff", "DIFF"))
VERDICT_FIELDS = ("verdict", "kernel_verdict")
NAME_FIELDS = ("file", "program")
LEFT = ("file", "program", "section", "type", "verdict", "error", "kernel_verdict", "kernel_error",
        "kernel_note")


def _shorten(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    keep = width - len(ELLIPSIS)
    return text[: (keep + 1) // 2] + ELLIPSIS + text[len(text) - keep // 2:]


def _cell(value) -> str:
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "✓" if value else "✗"
    return str(value)


def table(columns: list[tuple[str, str, bool]], rows: list[list[str]], width: int = WIDTH,
          groups: list[str] | None = None) -> str:
    """Columns ``(header, key, left-aligned)`` and string cells laid out like veristat's
    table; name columns are shortened until the table fits ``width``. ``groups``: a
    title per column printed above runs of equal titles (a comparison's fields)."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, (h, _, _) in enumerate(columns)]
    if groups:  # a group's title must fit over its columns
        for title in set(groups) - {""}:
            span = [i for i, g in enumerate(groups) if g == title]
            short = len(title) - (sum(widths[i] for i in span) + len(SEPARATOR) * (len(span) - 1))
            if short > 0:
                widths[span[-1]] += short
    names = [i for i, (_, key, _) in enumerate(columns) if key in NAME_FIELDS]
    total = sum(widths) + len(SEPARATOR) * (len(widths) - 1)
    while total > width and names:
        widest = max(names, key=lambda i: widths[i])
        floor = max(MIN_NAME, len(columns[widest][0]))
        if widths[widest] <= floor:
            break
        cut = min(total - width, widths[widest] - floor)
        widths[widest] -= cut
        total -= cut
    lines = []

    def line(cells):
        out = []
        for (_, _, left), w, text in zip(columns, widths, cells, strict=True):
            text = _shorten(text, w)
            out.append(text.ljust(w) if left else text.rjust(w))
        lines.append(SEPARATOR.join(out).rstrip())
    if groups:
        titles, k = [], 0
        while k < len(groups):
            end = k
            while end + 1 < len(groups) and groups[end + 1] == groups[k]:
                end += 1
            span = sum(widths[k:end + 1]) + len(SEPARATOR) * (end - k)
            titles.append(groups[k].center(span) if groups[k] else " " * span)
            k = end + 1
        lines.append(SEPARATOR.join(titles).rstrip())
    line([h for h, _, _ in columns])
    lines.append(SEPARATOR.join("-" * w for w in widths))
    for r in rows:
        line(r)
    return "\n".join(lines)


def stats_table(frame, fields=None, width: int = WIDTH) -> str:
    """The compact table of a stats frame."""
    if fields is None:
        fields = KERNEL_FIELDS if "kernel_verdict" in frame else DEFAULT_FIELDS
    columns = [(HEADERS.get(f, f), f, f in LEFT) for f in fields]
    rows = [[_cell(v) for v in rec] for rec in frame[list(fields)].itertuples(index=False)]
    return table(columns, rows, width)


def _diff_cell(diff, pct) -> str:
    if _cell(diff) == "":
        return "N/A"
    return f"{int(diff):+d} ({pct:+.2f}%)"


def compare_table(frame, fields=None, width: int = WIDTH) -> str:
    """The compact table of a comparison: A (base), B (new) and DIFF under each field,
    as veristat -C prints them."""
    fields = [f for f in (fields or COMPARE_DEFAULT) if f + "_base" in frame]
    columns = [(HEADERS["file"], "file", True), (HEADERS["program"], "program", True)]
    groups = ["", ""]
    for f in fields:
        columns += [(title, f + side, f in VERDICT_FIELDS) for side, title in SIDES]
        groups += [HEADERS.get(f, f)] * len(SIDES)
    rows = []
    for rec in frame.to_dict("records"):
        cells = [_cell(rec["file"]), _cell(rec["program"])]
        for f in fields:
            base, new = _cell(rec[f + "_base"]) or "N/A", _cell(rec[f + "_new"]) or "N/A"
            diff = rec[f + "_diff"] if f in VERDICT_FIELDS else _diff_cell(rec[f + "_diff"], rec[f + "_pct"])
            cells += [base, new, diff]
        rows.append(cells)
    return table(columns, rows, width, groups)


def summary(frame) -> str:
    objects = frame["file"].nunique()
    programs = frame["program"].notna().sum()
    counts = frame["verdict"].value_counts()
    words = [f"{counts.get(v, 0)} {w}" for v, w in (("accept", "accepted"), ("reject", "rejected"))]
    failed = frame["program"].isna().sum()
    unprepared = int(((frame["verdict"] == "error") & frame["program"].notna()).sum())
    if unprepared:
        words.append(f"{unprepared} not verified (errors)")
    text = f"{programs} programs in {objects} objects: {', '.join(words)}"
    if failed:
        text += f"; {failed} objects did not load"
    if "kernel_match" in frame:
        seen = frame["kernel_match"].notna()
        text += f"\nthe kernel agrees on {int(frame['kernel_match'][seen].sum())} of {int(seen.sum())} verdicts"
        refused = int((frame["kernel_verdict"] == "refused").sum())
        if refused:
            text += f" ({refused} refused before its verifier ran)"
    return text


def load_errors(frame, width: int = WIDTH) -> str:
    """One line per object that did not load: its error."""
    lines = []
    for rec in frame[frame["program"].isna()].itertuples():
        at = str(rec.error).find(rec.file)  # the message names the file by its full path
        text = str(rec.error)[at:] if at >= 0 else f"{rec.file}: {rec.error}"
        lines.append(text if len(text) <= width else text[:width - len(ELLIPSIS)] + ELLIPSIS)
    return "\n".join(lines)


def _client_arg(args):
    if args.scheduler:
        return args.scheduler
    return args.workers


def _open_client(args):
    """The Client of --workers/--scheduler (dashboard link on stderr), or None."""
    wanted = _client_arg(args)
    if wanted is None:
        return None
    from ..stats import connect

    client, _ = connect(wanted)
    print(f"dask: {len(client.scheduler_info()['workers'])} workers, dashboard {client.dashboard_link}",
          file=sys.stderr)
    return client


def _close(client) -> None:
    if client is not None:
        cluster = client.cluster
        client.close()
        if cluster is not None:
            cluster.close()


def run(args: argparse.Namespace) -> int:
    from .. import stats as corpus
    from ..errors import BpfnbError

    fields = args.fields.split(",") if args.fields else None
    if args.compare and args.paths:
        raise BpfnbError("--compare takes BASE and NEW only; no other paths")
    if not args.compare and not args.paths:
        raise BpfnbError("give objects or directories of objects (or --compare BASE NEW)")
    filters = [corpus.parse_filter(f, comparison=bool(args.compare)) for f in args.filter or ()]  # before a long run
    client = _open_client(args)
    try:
        if args.compare:
            frame = corpus.compare(*args.compare, filter=filters, client=client)
            print(compare_table(frame, fields))
            if args.out:
                corpus.write(frame, args.out)
                print(f"every field written to {args.out}")
            flips = frame.attrs["flips"]
            print(f"{len(frame)} programs compared, {flips} verdict flip(s)")
            return 1 if flips else 0
        frame = corpus.stats(args.paths, client=client, vs_kernel=args.vs_kernel)
    finally:
        _close(client)
    if args.out:
        corpus.write(frame, args.out)
    shown = corpus.apply_filters(frame, filters)
    print(stats_table(shown, fields))
    print(summary(frame))
    if args.out:
        print(f"every field written to {args.out}")
    if frame["program"].isna().any():
        print(load_errors(frame))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("stats", help="verification figures per program over a corpus (veristat)",
                       description="Figures per program (veristat); --compare two runs (veristat -C).")
    p.add_argument("paths", nargs="*", metavar="PATH", help="BPF objects, or directories walked for *.o")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="run on a local Dask cluster of N processes")
    where.add_argument("--scheduler", metavar="ADDRESS", help="run on this Dask scheduler (tcp://host:8786)")
    p.add_argument("--vs-kernel", action="store_true", help="the running kernel's figures beside")
    p.add_argument("--out", metavar="FILE", help="write every field as .parquet or .csv")
    p.add_argument("--fields", metavar="F,F...", help="the table's columns (default: veristat's)")
    p.add_argument("--compare", nargs=2, metavar=("BASE", "NEW"),
                   help="compare two runs: --out files (.parquet/.csv) or directories of objects")
    p.add_argument("-f", "--filter", action="append", metavar="EXPR",
                   help="veristat -f: 'processed>1000', '!verdict=accept', 'file*/prog*', "
                        "'processed_diff>0' in --compare")
    p.set_defaults(func=run)
