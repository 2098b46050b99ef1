"""Attaching loaded tracing programs to the running kernel, and detaching."""

from __future__ import annotations

import ctypes
import os

from ..errors import KernelError
from .program import KernelProgram
from .syscall import BPF_RAW_TRACEPOINT_OPEN, RawTracepointOpenAttr, bpf, errno_name


class Link:
    """An attachment: ``close()`` (or leaving the ``with`` block) detaches."""

    def __init__(self, fd: int, what: str):
        self.fd: int | None = fd
        self.what = what

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()

    def __repr__(self) -> str:
        return f"<Link {self.what} fd={self.fd}>"


def attach(loaded: KernelProgram, prog=None) -> Link:
    """Attach a loaded ``tp_btf`` (tracing, trace_raw_tp) or ``raw_tp`` program.

    ``prog`` is the ``Program`` it was loaded from (for the raw tracepoint's
    name); a tp_btf program carries its target in its ``attach_btf_id``.
    """
    if loaded.fd is None:
        raise KernelError(f"{loaded.name}: not loaded (rejected or closed): nothing to attach")
    kind = getattr(prog, "type", None)
    name_buf = None
    if kind == "raw_tracepoint" or kind == "raw_tracepoint_writable":
        if not prog.attach_name:
            raise KernelError(f"{loaded.name}: a raw_tp program needs a tracepoint name (raw_tp/NAME)")
        name_buf = ctypes.create_string_buffer(prog.attach_name.encode())
    elif kind is not None and (kind != "tracing" or prog.expected_attach_type != "trace_raw_tp"):
        raise KernelError(f"{loaded.name}: attaching {kind} programs "
                          f"({prog.expected_attach_type or 'no attach type'}) is not supported; "
                          "tp_btf and raw_tp are")
    attr = RawTracepointOpenAttr(name=ctypes.addressof(name_buf) if name_buf is not None else 0,
                                 prog_fd=loaded.fd)
    try:
        fd = bpf(BPF_RAW_TRACEPOINT_OPEN, attr)
    except OSError as exc:
        raise KernelError(f"{loaded.name}: attach failed ({errno_name(exc.errno)}: {exc.strerror})",
                          exc.errno) from None
    target = prog.attach_name if prog is not None else "its target"
    return Link(fd, f"{loaded.name} → {target}")
