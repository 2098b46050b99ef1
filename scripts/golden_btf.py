"""Keeps the running kernel's BTF beside the golden files (``make golden-btf``).

The golden files hold what one kernel said of bpfnb's fixtures and generated
programs: its BTF ids, offsets and messages. The tests verify the same programs with
bpfnb against that kernel's BTF, kept here compressed, so that they check the
verifier on any machine, whatever kernel (or none) it runs; only the kernel-marked
tests, which ask the running kernel, need it to be that one. Run on the kernel the
golden files are regenerated on, with them.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bpfnb.btf import LIVE_VMLINUX  # noqa: E402

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "tests" / "verifier" / "golden"


def main() -> None:
    data = pathlib.Path(LIVE_VMLINUX).read_bytes()
    (GOLDEN / "vmlinux.btf.xz").write_bytes(lzma.compress(data, preset=9))
    kernel = {"kernel": os.uname().release, "btf_sha256": hashlib.sha256(data).hexdigest()}
    (GOLDEN / "kernel.json").write_text(json.dumps(kernel, indent=1) + "\n")
    print(f"{GOLDEN}/vmlinux.btf.xz: the BTF of {kernel['kernel']} ({len(data):,} bytes)")


if __name__ == "__main__":
    main()
