"""Loading programs into the running kernel and reading its verifier's log."""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass

from ..errors import KernelError
from ..isa import encode
from ..program import ATTACH_TYPES, Program
from .syscall import BPF_PROG_LOAD, ProgLoadAttr, bpf, errno_name

LOG_START = 1 << 16
LOG_MAX = 1 << 30  # the kernel's own limit on log_size


@dataclass
class KernelProgram:
    """The kernel's verdict on a program: ``ok``, ``error``, ``log``; ``fd`` while loaded."""

    name: str
    ok: bool
    log: str
    errno: int = 0
    fd: int | None = None

    @property
    def error(self) -> str | None:
        """The verifier's error line, as the kernel printed it (None when accepted)."""
        if self.ok:
            return None
        lines = [ln for ln in self.log.splitlines() if ln.strip()]
        trailer = ("processed ", "verification time", "stack depth", "mark_precise")
        body = [ln for ln in lines if not ln.startswith(trailer)]
        return body[-1] if body else f"{errno_name(self.errno)} with an empty log"

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> KernelProgram:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()


def load(prog: Program, *, log_level: int = 2) -> KernelProgram:
    """Load ``prog`` with a verifier log that grows until the whole log fits.

    A rejection is a ``KernelProgram`` with ``ok=False``; a refusal that is
    not the verifier's (no permission, bad attributes) raises ``KernelError``.
    """
    insn_bytes = encode(prog.insns)
    insn_buf = ctypes.create_string_buffer(insn_bytes, len(insn_bytes))
    license_buf = ctypes.create_string_buffer(prog.license.encode())
    size = LOG_START
    while True:
        log_buf = ctypes.create_string_buffer(size)
        attr = ProgLoadAttr(
            prog_type=prog.prog_type_id,
            insn_cnt=len(prog.insns),
            insns=ctypes.addressof(insn_buf),
            license=ctypes.addressof(license_buf),
            log_level=log_level,
            # the kernel wants no buffer at all when it is asked for no log
            log_size=size if log_level else 0,
            log_buf=ctypes.addressof(log_buf) if log_level else 0,
            prog_name=prog.name.encode()[:15],
            expected_attach_type=ATTACH_TYPES.get(prog.expected_attach_type or "", 0),
            attach_btf_id=prog.attach_btf_id or 0,
        )
        try:
            fd = bpf(BPF_PROG_LOAD, attr)
        except OSError as exc:
            text = log_buf.value.decode("utf-8", "replace")
            if exc.errno == errno.ENOSPC and size < LOG_MAX:
                size *= 8
                continue
            # EACCES is the verifier's refusal even without a log; EINVAL only
            # when the verifier explained it (else it is a bad attribute)
            if exc.errno == errno.EACCES or (exc.errno == errno.EINVAL and text):
                return KernelProgram(prog.name, False, text, exc.errno)
            raise KernelError(
                f"{prog.where or prog.name}: the kernel refused to load the program "
                f"({errno_name(exc.errno)}: {exc.strerror})" + (f"; log: {text.strip()}" if text else ""),
                exc.errno,
            ) from exc
        return KernelProgram(prog.name, True, log_buf.value.decode("utf-8", "replace"), 0, fd)
