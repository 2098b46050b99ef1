"""Decoding throughput: raw drop-tracer samples to the drops DataFrame.

Figure: samples/s through ``bpfnb.frames.drops.drops`` (BTF-derived dtype,
vectorised header parsing, reason names), against a reference measured in
the same run: a plain ``struct.unpack_from`` loop that decodes only the
record's fixed fields into a list of tuples (what a hand-written reader does).
"""

from __future__ import annotations

import pathlib
import struct

from elftools.elf.elffile import ELFFile

from benchmarks.timing import best
from bpfnb.btf import LIVE_VMLINUX, Btf
from bpfnb.frames.drops import drops

ROOT = pathlib.Path(__file__).resolve().parents[1]
RECORD = struct.Struct("<QQQIiIIHBBHHI16s64s4x")  # struct drop_event, 136 bytes
N = 200_000


def _samples(n: int) -> list[tuple[int, bytes]]:
    hdr = bytes.fromhex("4500001c00004000401100007f0000017f000001") + struct.pack("!HH", 4000, 53)
    out = []
    for i in range(n):
        rec = RECORD.pack(i, 0xFFFFFFFF81000000, 0xFFFF888000001000 + i, 74, 1, 2 + i % 3, 1,
                          0x0800, 17, 64, 4000, 53, 8, b"lo", hdr)
        out.append((i % 2, rec + b"P" * 8))
    return out


def main() -> None:
    with open(ROOT / "bpfnb/data/drops.bpf.o", "rb") as f:
        program_btf = Btf.from_bytes(ELFFile(f).get_section_by_name(".BTF").data())
    kernel_btf = Btf.from_file(LIVE_VMLINUX) if pathlib.Path(LIVE_VMLINUX).exists() else None
    samples = _samples(N)
    ours = best(lambda: drops(samples, program_btf, kernel_btf))
    reference = best(lambda: [RECORD.unpack_from(raw) for _, raw in samples])
    print(f"drops frame     : {N / ours:12,.0f} samples/s ({ours * 1e3:.1f} ms for {N:,})")
    print(f"struct loop ref : {N / reference:12,.0f} samples/s ({reference * 1e3:.1f} ms; fixed fields only)")
    print(f"ratio           : {reference / ours:.2f}x the reference's rate")


if __name__ == "__main__":
    main()
