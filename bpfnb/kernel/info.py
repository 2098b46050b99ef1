"""What the kernel made of a loaded program: ``bpf_prog_info`` (xlated and JIT-ed code)."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from ..errors import KernelError
from ..isa import Insn, decode
from .syscall import BPF_OBJ_GET_INFO_BY_FD, InfoByFdAttr, ProgInfo, bpf, errno_name


@dataclass(frozen=True)
class ProgramImage:
    """A loaded program's kernel-side code: the instructions after the verifier's
    rewrites (``xlated``), the x86-64 image (``jited``), the JIT'd functions'
    start addresses and lengths, and the machine address of each line-info entry."""

    id: int
    name: str
    tag: str
    xlated: tuple[Insn, ...]
    jited: bytes
    ksyms: tuple[int, ...]
    func_lens: tuple[int, ...]
    jited_line_addrs: tuple[int, ...]
    verified_insns: int

    @property
    def address(self) -> int:
        """Where the main function's code starts in the kernel."""
        return self.ksyms[0] if self.ksyms else 0


def _info(fd: int, info: ProgInfo) -> None:
    attr = InfoByFdAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    try:
        bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    except OSError as exc:
        raise KernelError(f"program fd {fd}: BPF_OBJ_GET_INFO_BY_FD failed ({errno_name(exc.errno)})",
                          exc.errno) from None


def program_image(fd: int) -> ProgramImage:
    """Ask the kernel for the xlated and JIT-ed code of the program behind ``fd``."""
    sizes = ProgInfo()
    _info(fd, sizes)
    xlated = ctypes.create_string_buffer(sizes.xlated_prog_len)
    jited = ctypes.create_string_buffer(sizes.jited_prog_len)
    ksyms = (ctypes.c_uint64 * max(sizes.nr_jited_ksyms, 1))()
    lens = (ctypes.c_uint32 * max(sizes.nr_jited_func_lens, 1))()
    lines = (ctypes.c_uint64 * max(sizes.nr_jited_line_info, 1))()
    info = ProgInfo(
        xlated_prog_len=sizes.xlated_prog_len, xlated_prog_insns=ctypes.addressof(xlated),
        jited_prog_len=sizes.jited_prog_len, jited_prog_insns=ctypes.addressof(jited),
        nr_jited_ksyms=sizes.nr_jited_ksyms, jited_ksyms=ctypes.addressof(ksyms),
        nr_jited_func_lens=sizes.nr_jited_func_lens, jited_func_lens=ctypes.addressof(lens),
        nr_jited_line_info=sizes.nr_jited_line_info, jited_line_info=ctypes.addressof(lines),
        jited_line_info_rec_size=8 if sizes.nr_jited_line_info else 0,
    )
    _info(fd, info)
    return ProgramImage(
        id=info.id, name=info.name.decode(errors="replace"), tag=bytes(info.tag).hex(),
        xlated=decode(xlated.raw[: info.xlated_prog_len], where=f"prog fd {fd} xlated"),
        jited=jited.raw[: info.jited_prog_len],
        ksyms=tuple(ksyms[: info.nr_jited_ksyms]), func_lens=tuple(lens[: info.nr_jited_func_lens]),
        jited_line_addrs=tuple(lines[: info.nr_jited_line_info]),
        verified_insns=info.verified_insns,
    )
