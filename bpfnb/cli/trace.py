"""``bpfnb trace drops [--seconds S] [--reason R] [--proto P] [--port N] [--ifindex I] [--out FILE.parquet]``."""

from __future__ import annotations

import argparse
import sys


def _progress(counts, lost: int, elapsed: float) -> None:
    if not sys.stderr.isatty():
        return
    top = ", ".join(f"{name} {n}" for name, n in counts.most_common(4)) or "no drops yet"
    print(f"\r{elapsed:5.1f}s  {sum(counts.values()):6} drops  ({top})" + (f"  lost {lost}" if lost else ""),
          end="\033[K", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from ..dropwatch import watch_drops

    frame = watch_drops(args.seconds, reason=args.reason, ifindex=args.ifindex, proto=args.proto, port=args.port,
                        snap_len=args.snap_len, on_progress=_progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"{len(frame)} drops, {frame.attrs.get('lost', 0)} lost")
    if len(frame):
        print(frame["reason"].value_counts().to_string())
    if args.out:
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
    d.add_argument("--out", help="write the drops as Parquet here")
    d.set_defaults(func=run)
