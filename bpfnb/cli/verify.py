"""``bpfnb verify``: verdicts of bpfnb's verifier and, with ``--vs-kernel``, the kernel's.

    bpfnb verify OBJ... [--prog NAME] [--type T | --section S] [--kernel-btf PATH]
                 [--log-level 1|2] [--json] [--vs-kernel]
    bpfnb verify --raw FILE... (--type TYPE [--attach NAME] | --section tp_btf/kfree_skb)

The kernel's answer is a verdict (``accept``/``reject``: its verifier ran) or a
refusal to load at all (``refused``, with the reason: EPERM for fentry here, a
map it cannot create, ...); a refusal is not a rejection.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import BpfnbError
from ..program import UNKNOWN_TYPE

RAW_DEFAULT_TYPE = "socket_filter"


def raw_programs(paths, *, section: str | None = None, type: str = RAW_DEFAULT_TYPE, attach: str | None = None,
                 kernel_btf=None) -> list:
    """Programs from raw instruction files, typed as ``bpfnb.program`` types them:
    ``section="tp_btf/kfree_skb"`` (any libbpf section name), or ``type`` with ``attach``
    (``tracing`` + ``kfree_skb`` is read as ``tp_btf/kfree_skb``)."""
    from ..program import program

    progs = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise BpfnbError(f"{path}: cannot read: {exc.strerror}") from None
        progs.append(program(data, type=type, name=os.path.basename(path)[:15], attach=attach,
                             kernel_btf=kernel_btf, section=section, path=path))
    return progs


def _ours(prog, log_level: int) -> dict:
    try:
        from ..verifier import verify
    except ImportError:
        return {"unavailable": "bpfnb's own verifier (bpfnb.verifier) is not built yet"}
    result = verify(prog, log_level=log_level)
    return {"verdict": "accept" if result.ok else "reject", "error": result.error,
            "error_insn": result.error_insn, "processed_insns": result.processed, "log": result.log}


def _kernel_text(k: dict) -> str:
    if "unavailable" in k:
        return f"kernel unavailable: {k['unavailable']}"
    if k["verdict"] == "refused":
        return f"kernel refused to load it: {k['reason']}"
    return (f"kernel {k['verdict']}" + (f" at insn {k['error_insn']}: {k['error']}" if k["verdict"] == "reject" else "")
            + (f" ({k['processed_insns']} insns processed)" if k.get("processed_insns") else ""))


def _not_verified(name: str, section: str, error: str, as_json: bool) -> None:
    """A program bpfnb could not prepare (a relocation it cannot make, no known type)."""
    if as_json:
        print(json.dumps({"program": name, "section": section, "verdict": None, "error": error}))
    else:
        print(f"{name} ({section}): not verified: {error}")


def run(args: argparse.Namespace) -> int:
    from ..btf import kernel_btf
    from ..kernel.compare import kernel_verdict

    btf = kernel_btf(args.kernel_btf) if args.kernel_btf else None
    if args.raw:
        progs = raw_programs(args.raw, section=args.section, type=args.type or RAW_DEFAULT_TYPE,
                             attach=args.attach, kernel_btf=btf)
        failed = []
    else:
        if not args.obj:
            raise BpfnbError("verify: give an object (OBJ) or --raw FILE...")
        if args.attach:
            raise BpfnbError("verify: --attach is for --raw files; give an object's program a section "
                             "with --section (e.g. tp_btf/kfree_skb)")
        from .programs import select

        chosen = select(args.obj, args, kernel_btf=btf)
        progs, failed = chosen.programs, chosen.failed
        for note in chosen.notes:
            print(f"bpfnb: note: {note}", file=sys.stderr)
    status = 0
    for name, section, exc in failed:
        _not_verified(name, section, str(exc), args.json)
        status = 1
    for prog in progs:
        if prog.type == UNKNOWN_TYPE:
            _not_verified(prog.name, prog.section, f"no known program type ({prog.type_note}); "
                          "give one with --type TYPE or --section NAME", args.json)
            status = 1
            continue
        record = {"program": prog.name, "section": prog.section, "insn_count": len(prog.insns)}
        if prog.warnings:
            record["warnings"] = list(prog.warnings)
        ours = _ours(prog, args.log_level)
        if "unavailable" in ours and not args.vs_kernel:
            raise BpfnbError(f"{ours['unavailable']}; --vs-kernel shows the running kernel's verdict")
        log = ours.pop("log", None)
        record.update(ours if "unavailable" not in ours else {"verdict": None, "ours": ours})
        if args.vs_kernel:
            record["kernel"] = kernel_verdict(prog, log_level=args.log_level)
        verdicts = [v for v in (record.get("verdict"), record.get("kernel", {}).get("verdict")) if v]
        status |= int("reject" in verdicts)
        if args.json:
            print(json.dumps(record))
            continue
        line = f"{prog.name} ({prog.section or prog.type}): "
        if record.get("verdict"):
            line += f"bpfnb {record['verdict']}" + (f" at insn {record['error_insn']}: {record['error']}"
                                                     if record["verdict"] == "reject" else "")
        else:
            line += "bpfnb —"
        if "kernel" in record:
            line += "; " + _kernel_text(record["kernel"])
        print(line)
        for warning in prog.warnings:
            print(f"  warning: {warning}")
        for note in record.get("kernel", {}).get("notes", ()):
            print(f"  kernel bridge: {note}")
        if log and args.log_level:
            print(log)
    return status


def add_parser(sub) -> None:
    from .programs import add_options

    p = sub.add_parser("verify", help="verify programs (bpfnb's verifier; --vs-kernel adds the kernel's)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("obj", nargs="*", help="BPF ELF objects")
    add_options(p, type_help="program type: of --raw files (default socket_filter), of --prog, or of every "
                             "program whose section names none bpfnb knows")
    p.add_argument("--raw", nargs="+", metavar="FILE", help="raw little-endian 8-byte instruction files")
    p.add_argument("--attach", help="attach target of --raw files: --type tracing --attach kfree_skb is "
                                    "a tp_btf/kfree_skb program (the first libbpf section of that type)")
    p.add_argument("--kernel-btf", help="kernel BTF file (default: live, else bundled)")
    p.add_argument("--log-level", type=int, choices=(0, 1, 2), default=0)
    p.add_argument("--json", action="store_true", help="one JSON object per program")
    p.add_argument("--vs-kernel", action="store_true", help="also load each program into the running kernel")
    p.set_defaults(func=run)
