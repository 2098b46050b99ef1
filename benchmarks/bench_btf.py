"""Kernel BTF load time: bpfnb's lazy parser against bpftool, same run.

Figures: parsing /sys/kernel/btf/vmlinux (header, index of every type record),
the first name lookup (builds the name index), and a full decode of every
type; the reference is ``bpftool btf dump file vmlinux format raw`` (C code
that parses and prints every type), timed on the same file in the same run.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from benchmarks.timing import best
from bpfnb.btf import LIVE_VMLINUX, Btf


def main() -> None:
    if not os.path.exists(LIVE_VMLINUX):
        print(f"skipped: no {LIVE_VMLINUX}")
        return
    size = os.path.getsize(LIVE_VMLINUX)
    load = best(lambda: len(Btf.from_file(LIVE_VMLINUX)))

    def first_lookup():
        Btf.from_file(LIVE_VMLINUX).find("sk_buff", "struct")

    lookup = best(first_lookup)

    def decode_all():
        btf = Btf.from_file(LIVE_VMLINUX)
        for type_id in range(1, len(btf)):
            btf.type(type_id)

    full = best(decode_all, 1)
    count = len(Btf.from_file(LIVE_VMLINUX))
    print(f"vmlinux BTF           : {size / 1e6:.1f} MB, {count:,} types")
    print(f"load (lazy index)     : {load * 1e3:7.1f} ms")
    print(f"load + first lookup   : {lookup * 1e3:7.1f} ms")
    print(f"load + decode all     : {full * 1e3:7.1f} ms")
    if shutil.which("bpftool"):
        ref = best(lambda: subprocess.run(["bpftool", "btf", "dump", "file", LIVE_VMLINUX, "format", "raw"],
                                           stdout=subprocess.DEVNULL, check=True))
        print(f"bpftool dump (ref)    : {ref * 1e3:7.1f} ms")
        print(f"ratio to bpftool      : load+lookup {lookup / ref:.2f}x, full decode {full / ref:.1f}x "
              "(bpftool parses and prints every type in C)")
    else:
        print("bpftool not installed: no reference")


if __name__ == "__main__":
    main()
