"""``bpfnb trace drops [--seconds S] [--reason R] [--proto P] [--port N] [--ifindex I]
[--out FILE.parquet|DIR/] [--lines]``.

``--out DIR/`` (a directory: a trailing slash, an existing directory, or no
``.parquet`` suffix) writes a dataset partitioned by minute and CPU while the
trace runs (``bpfnb.frames.open_drops`` reads it); ``--out FILE.parquet`` writes
one file at the end. ``--lines`` prints one line per drop as pwru does (time,
CPU, interface, length, 5-tuple, reason) while the live count stays on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time

PARQUET = ".parquet"
LINE_FORMAT = "{:<15}  {:>3}  {:<10}  {:>5}  {:<47}  {}"
LINE_HEADER = ("TIME", "CPU", "IFACE", "LEN", "TUPLE", "REASON")
CLEAR_LINE = "\r\033[K"


def _progress(counts, lost: int, elapsed: float) -> None:
    if not sys.stderr.isatty():
        return
    top = ", ".join(f"{name} {n}" for name, n in counts.most_common(4)) or "no drops yet"
    print(f"\r{elapsed:5.1f}s  {sum(counts.values()):6} drops  ({top})" + (f"  lost {lost}" if lost else ""),
          end="\033[K", file=sys.stderr, flush=True)


def monotonic_to_wall_ns() -> int:
    """What to add to a ``bpf_ktime_get_ns`` time (CLOCK_MONOTONIC) for wall-clock time."""
    return time.clock_gettime_ns(time.CLOCK_REALTIME) - time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def _endpoint(addr, port, version: int, with_port: bool) -> str:
    host = f"[{addr}]" if version == 6 else str(addr)
    return f"{host}:{port}" if with_port else host


def tuple_text(rec) -> str:
    """pwru's 5-tuple: ``10.0.0.1:4242->10.0.0.2:53(udp)``; addresses only without ports;
    the EtherType for what is not IP."""
    if not rec.ip_version:
        return f"ethertype 0x{int(rec.protocol):04x}"
    ports = rec.l4proto in ("tcp", "udp")
    src = _endpoint(rec.saddr, rec.sport, rec.ip_version, ports)
    dst = _endpoint(rec.daddr, rec.dport, rec.ip_version, ports)
    return f"{src}->{dst}({rec.l4proto})"


def drop_lines(frame, wall_offset_ns: int = 0) -> list[str]:
    """One text line per drop of a drops frame (``LINE_FORMAT``)."""
    lines = []
    for rec in frame.itertuples(index=False):
        when = int(rec.time_ns) + wall_offset_ns
        clock = time.strftime("%H:%M:%S", time.localtime(when // 1_000_000_000))
        stamp = f"{clock}.{when % 1_000_000_000 // 1000:06d}"
        lines.append(LINE_FORMAT.format(stamp, rec.cpu, str(rec.ifname)[:10], rec.len, tuple_text(rec),
                                        rec.reason).rstrip())
    return lines


def _is_dataset(out: str) -> bool:
    import os

    return out.endswith("/") or os.path.isdir(out) or not out.endswith(PARQUET)


def run(args: argparse.Namespace) -> int:
    from ..dropwatch import watch_drops
    from ..frames.dataset import DropDataset

    sinks = []
    dataset = DropDataset(args.out) if args.out and _is_dataset(args.out) else None
    if dataset is not None:
        sinks.append(dataset.append)
    if args.lines:
        offset = monotonic_to_wall_ns()
        print(LINE_FORMAT.format(*LINE_HEADER))

        def print_lines(batch) -> None:
            if sys.stderr.isatty():
                print(CLEAR_LINE, end="", file=sys.stderr, flush=True)  # the count is redrawn after
            for line in drop_lines(batch, offset):
                print(line)
            sys.stdout.flush()
        sinks.append(print_lines)

    def sink(batch) -> None:
        for each in sinks:
            each(batch)
    try:
        frame = watch_drops(args.seconds, reason=args.reason, ifindex=args.ifindex, proto=args.proto,
                            port=args.port, snap_len=args.snap_len, on_progress=_progress,
                            sink=sink if sinks else None, keep=dataset is None)
    finally:
        if dataset is not None:
            dataset.close()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"{frame.attrs['drops']} drops, {frame.attrs.get('lost', 0)} lost")
    for name, count in frame.attrs["reasons"].items():
        print(f"{name:<32} {count:>8}")
    if dataset is not None:
        print(f"{dataset.rows} drops written to the dataset {args.out} (bpfnb.frames.open_drops reads it)")
    elif args.out:
        out = frame.copy()
        out["packet"] = out["packet"].map(bytes)
        out.to_parquet(args.out, index=False)
        print(f"written to {args.out}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("trace", help="trace kernel events live (drops: kfree_skb)")
    what = p.add_subparsers(dest="what", metavar="WHAT")
    what.required = True
    d = what.add_parser("drops", help="packet drops with their reasons, filtered in the kernel")
    d.add_argument("--seconds", type=float, default=5.0)
    d.add_argument("--reason", help="a drop reason name (NO_SOCKET) or number")
    d.add_argument("--proto", help="udp, tcp, icmp, icmpv6 or an IP protocol number")
    d.add_argument("--port", type=int, help="source or destination port")
    d.add_argument("--ifindex", type=int, help="interface index")
    d.add_argument("--snap-len", type=int, default=64, help="packet bytes to capture (at most)")
    d.add_argument("--out", help="FILE.parquet (written at the end) or DIR/ (a dataset partitioned by "
                                 "minute and CPU, written while the trace runs)")
    d.add_argument("--lines", action="store_true", help="one line per drop, as pwru prints them")
    d.set_defaults(func=run)
