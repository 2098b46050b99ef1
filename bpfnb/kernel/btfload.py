"""An object's BTF into the kernel, and the func/line info records that refer to it.

With them the kernel's verifier log shows source lines, and
``bpf_prog_info`` maps each line-info entry to its JIT-ed address.
"""

from __future__ import annotations

import ctypes
import os

from ..errors import BtfError, KernelError
from .syscall import BPF_BTF_LOAD, BtfLoadAttr, bpf, errno_name

FUNC_INFO = ctypes.c_uint32 * 2  # insn_off (in instructions), type_id
LINE_INFO = ctypes.c_uint32 * 4  # insn_off, file_name_off, line_off, line << 10 | col
BTF_LOG_SIZE = 1 << 24  # the log of a refused BTF: the last line says why


def load_btf(raw: bytes, *, name: str = "BTF") -> int:
    """Load BTF bytes; returns the fd. The kernel's BTF log is in the error.

    Loaded without a log first: at log level 1 the kernel logs every type and fails
    the load with ENOSPC when they do not fit, though it accepts the BTF itself. Only a
    refusal is loaded again with a log, for its reason."""
    buf = ctypes.create_string_buffer(raw, len(raw))
    try:
        return bpf(BPF_BTF_LOAD, BtfLoadAttr(btf=ctypes.addressof(buf), btf_size=len(raw)))
    except OSError:
        pass
    log = ctypes.create_string_buffer(BTF_LOG_SIZE)
    attr = BtfLoadAttr(btf=ctypes.addressof(buf), btf_size=len(raw), btf_log_buf=ctypes.addressof(log),
                       btf_log_size=len(log), btf_log_level=1)
    try:
        return bpf(BPF_BTF_LOAD, attr)
    except OSError as exc:
        text = log.value.decode("utf-8", "replace").strip().splitlines()
        raise KernelError(f"{name}: the kernel refused the BTF ({errno_name(exc.errno)})"
                          + (f": {text[-1]}" if text else ""), exc.errno) from None


def info_records(prog):
    """(func_info array, count, line_info array, count) for ``prog``, or None when
    the program has no BTF info or its strings cannot be found."""
    btf = prog.btf
    if btf is None or not prog.func_info:
        return None
    funcs = (FUNC_INFO * len(prog.func_info))(*[FUNC_INFO(f.insn, f.type_id) for f in prog.func_info])
    lines = []
    last = -1
    try:
        for li in prog.line_info:
            if li.insn <= last:
                continue  # the kernel wants strictly increasing offsets
            lines.append(LINE_INFO(li.insn, btf.string_offset(li.file), btf.string_offset(li.text),
                                   (li.line << 10) | li.col))
            last = li.insn
    except BtfError:
        return None
    line_array = (LINE_INFO * len(lines))(*lines)
    return funcs, len(prog.func_info), line_array, len(lines)


def close(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)
