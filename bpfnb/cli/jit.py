"""``bpfnb jit``: a program's x86-64 image from bpfnb's JIT, its exception table,
and (``--vs-kernel``) the kernel's image of the same program beside it.

    bpfnb jit OBJ [--prog NAME] [--type T | --section S] [--kernel-btf PATH] [--extable] [--vs-kernel]
"""

from __future__ import annotations

import argparse

from ..errors import BpfnbError


def main(args: argparse.Namespace) -> int:
    from ..btf import kernel_btf
    from ..jit import jit
    from ..program import UNKNOWN_TYPE
    from ..verifier import verify
    from .programs import select

    btf = kernel_btf(args.kernel_btf) if args.kernel_btf else None
    chosen = select([args.obj], args, kernel_btf=btf)
    status = chosen.report()
    for prog in chosen.programs:
        if prog.type == UNKNOWN_TYPE:
            print(f"{prog.where}: not translated: no known program type ({prog.type_note}); "
                  "give one with --type TYPE or --section NAME")
            status = 1
            continue
        checked = verify(prog, log_level=0, trace=False)
        if not checked.ok:
            print(f"{prog.where}: rejected by bpfnb's verifier at insn {checked.error_insn}: {checked.error}")
            status = 1
            continue
        result = jit(checked.program, probe_mem=checked.probe_mem, stack_depths=checked.stack_depths)
        if args.extable:
            print(result)
            for entry in result.extable:
                print(f"  {entry}")
            if not result.extable:
                print("  (no PROBE_MEM loads: the exception table is empty)")
        else:
            print(result.listing())
        if args.vs_kernel:
            from ..jit.x86_64.kernel import compare_with_kernel

            print()
            print(compare_with_kernel(prog, probe_mem=checked.probe_mem, stack_depths=checked.stack_depths).diff())
        print()
    return status


def add_parser(sub) -> None:
    from .programs import add_options

    p = sub.add_parser("jit", help="translate programs to x86-64: listing, exception table, kernel diff",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("obj", help="a compiled BPF object (.o)")
    add_options(p)
    p.add_argument("--kernel-btf", help="kernel BTF (default: /sys/kernel/btf/vmlinux or the bundled one)")
    p.add_argument("--extable", action="store_true", help="only the exception table of the PROBE_MEM loads")
    p.add_argument("--vs-kernel", action="store_true",
                   help="load the program into the running kernel and diff its JIT image against ours")
    p.set_defaults(func=main)


__all__ = ["BpfnbError", "main"]
