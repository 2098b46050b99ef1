"""Loading programs into the running kernel and reading its verifier's log."""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass

from ..errors import KernelError
from ..isa import encode
from ..isa import opcodes as op
from ..logtext import error_block, error_line
from ..program import ATTACH_TYPES, Program
from .maps import KernelMap, create_map, with_map_fds
from .syscall import BPF_PROG_LOAD, ProgLoadAttr, bpf, errno_name

LOG_START = 1 << 16
BPF_LOG_STATS = 4  # adds "verification time" and "stack depth" to the log
LOG_MAX = 1 << 30  # the kernel's own limit on log_size
LOG_GROWTH = 8  # where the kernel gives no log_true_size (before Linux 6.4)
LOG_SLACK = 1 << 12  # the next load's figures (verification time) may print longer


@dataclass
class KernelProgram:
    """The kernel's verdict on a program: ``ok``, ``error``, ``log``; ``fd`` while loaded."""

    name: str
    ok: bool
    log: str
    errno: int = 0
    fd: int | None = None
    maps: tuple[KernelMap, ...] = ()
    btf_fd: int | None = None
    btf_refused: bool = False  # the object's BTF was refused: loaded without it (``notes`` say why)
    notes: tuple[str, ...] = ()
    tail_targets: tuple[KernelProgram, ...] = ()  # the programs loaded into its prog arrays

    @property
    def error(self) -> str | None:
        """The verifier's error line, as the kernel printed it (None when accepted)."""
        if self.ok:
            return None
        return error_line(self.log) or f"{errno_name(self.errno)} with an empty log"

    @property
    def error_block(self) -> str:
        """All lines of the kernel's explanation of the rejection."""
        return "" if self.ok else error_block(self.log)

    @property
    def kernel_log(self):
        """The log parsed (``bpfnb.kernel.log.KernelLog``)."""
        from .log import KernelLog

        return KernelLog(self.log)

    @property
    def processed(self) -> int | None:
        """Instructions the kernel's verifier processed (from the log)."""
        return self.kernel_log.processed

    def image(self):
        """The kernel's xlated instructions and JIT image (``bpfnb.kernel.info.ProgramImage``)."""
        if self.fd is None:
            raise KernelError(f"{self.name}: not loaded (rejected or closed): no image")
        from .info import program_image

        return program_image(self.fd)

    def test_run(self, data: bytes = b"", *, ctx: bytes | None = None, repeat: int = 1):
        """``BPF_PROG_TEST_RUN``: (retval, data out, ns per run) for ``data`` as the packet."""
        from .syscall import BPF_PROG_TEST_RUN, TestRunAttr

        if self.fd is None:
            raise KernelError(f"{self.name}: not loaded (rejected or closed): nothing to run")
        data_in = ctypes.create_string_buffer(bytes(data), max(len(data), 1))
        data_out = ctypes.create_string_buffer(max(len(data), 1) + 256)
        attr = TestRunAttr(prog_fd=self.fd, data_size_in=len(data), data_in=ctypes.addressof(data_in),
                           data_size_out=len(data_out), data_out=ctypes.addressof(data_out), repeat=repeat)
        ctx_buf = None
        if ctx is not None:
            ctx_buf = ctypes.create_string_buffer(bytes(ctx), len(ctx))
            attr.ctx_in, attr.ctx_size_in = ctypes.addressof(ctx_buf), len(ctx)
        try:
            bpf(BPF_PROG_TEST_RUN, attr)
        except OSError as exc:
            raise KernelError(f"{self.name}: BPF_PROG_TEST_RUN failed ({errno_name(exc.errno)}: {exc.strerror})",
                              exc.errno) from None
        return attr.retval, data_out.raw[: attr.data_size_out], attr.duration

    def map(self, name: str) -> KernelMap:
        """The kernel map the program uses under ``name``."""
        for m in self.maps:
            if m.name == name:
                return m
        raise KeyError(f"{self.name}: no map {name!r} (maps: {', '.join(m.name for m in self.maps)})")

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        for target in self.tail_targets:
            target.close()
        for m in self.maps:
            m.close()
        if self.btf_fd is not None:
            os.close(self.btf_fd)
            self.btf_fd = None

    def __enter__(self) -> KernelProgram:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()


def _used_maps(prog: Program) -> set[int]:
    """Indices into ``prog.maps`` of the maps the program references."""
    return {i.imm for i in prog.insns
            if i.is_ld_imm64 and i.src in (op.BPF_PSEUDO_MAP_IDX, op.BPF_PSEUDO_MAP_IDX_VALUE)}


def create_maps(prog: Program, *, btf_fd: int | None = None) -> tuple[list[KernelMap], list[str]]:
    """One kernel map per ``prog.maps`` entry, and notes on what was filled in.

    A map the program uses must be created (else ``KernelError``, the others
    closed); one it does not use may be refused (it then has no fd and says
    why). The slots a map of maps is initialised with are filled with the
    object's maps; a prog array's programs are not loaded (noted)."""
    used = _used_maps(prog)
    created: list[KernelMap] = []
    notes: list[str] = []
    try:
        for index, definition in enumerate(prog.maps):
            try:
                kmap = create_map(definition, btf_fd=btf_fd)
            except KernelError as exc:
                if index in used:
                    raise KernelError(f"{prog.where or prog.name}: {exc}", exc.errno) from None
                created.append(KernelMap(definition, None, refused=str(exc)))
                notes.append(f"{exc} (not used by {prog.name})")
                continue
            created.append(kmap)
            notes += kmap.notes
        by_name = {m.name: m for m in created}
        for kmap in created:
            for slot, name in kmap.definition.init:
                if kmap.fd is None:
                    continue
                if kmap.definition.type == "prog_array":
                    notes.append(f"map {kmap.name}: slot {slot} ({name}) left empty: the program is not loaded")
                elif by_name.get(name) is not None and by_name[name].fd is not None:
                    kmap.update(slot.to_bytes(4, "little"), by_name[name].fd.to_bytes(4, "little"))
    except BaseException:
        for m in created:
            m.close()
        raise
    return created, notes


def load(prog: Program, *, log_level: int = 2, maps: list[KernelMap] | None = None,
         with_btf: bool = True, tail_calls: dict[str, dict[int, Program]] | None = None) -> KernelProgram:
    """Load ``prog`` with a verifier log that grows until the whole log fits.

    The program's maps are created first (or ``maps``, one per ``prog.maps``
    entry, are shared) and its map references rewritten to their fds. A
    rejection is a ``KernelProgram`` with ``ok=False``; a refusal that is not
    the verifier's (no permission, bad attributes) raises ``KernelError``.
    With ``with_btf`` the object's BTF and func/line info go along, so the
    log shows source lines and the JIT image maps lines to addresses.
    ``tail_calls`` (``{prog array: {slot: Program}}``, e.g. ``obj.tail_calls()``)
    loads those programs with the same maps and puts them in their slots, as
    libbpf does for an object's initialised prog arrays.
    """
    prog.require_type()
    kernel_maps: list[KernelMap] = []
    insns = prog.insns
    btf_fd, records, notes = None, None, []
    if with_btf and prog.btf is not None:
        from .btfload import info_records, load_btf

        records = info_records(prog)
        try:
            btf_fd = load_btf(prog.btf.raw, name=f"{prog.where}: .BTF")
        except KernelError as exc:  # load without source lines rather than not at all
            notes.append(str(exc))
            records = None
    try:
        if _used_maps(prog):
            if maps is None:
                kernel_maps, map_notes = create_maps(prog, btf_fd=btf_fd)
                notes += map_notes
                maps = kernel_maps
            insns = with_map_fds(insns, [m.fd if m.fd is not None else -1 for m in maps])
        loaded = _load(prog, insns, log_level, btf_fd, records)
    except BaseException:
        for m in kernel_maps:
            m.close()
        if btf_fd is not None:
            os.close(btf_fd)
        raise
    loaded.maps = tuple(kernel_maps)
    loaded.btf_fd = btf_fd
    loaded.btf_refused = with_btf and prog.btf is not None and btf_fd is None
    loaded.notes = tuple(notes)
    if not loaded.ok:
        loaded.close()
    elif tail_calls:
        try:
            _fill_prog_arrays(loaded, prog, list(maps or ()), tail_calls, with_btf)
        except BaseException:
            loaded.close()
            raise
    return loaded


def _fill_prog_arrays(loaded: KernelProgram, prog: Program, maps: list[KernelMap],
                      tail_calls: dict[str, dict[int, Program]], with_btf: bool) -> None:
    by_name = {m.name: m for m in maps}
    targets: list[KernelProgram] = []
    loaded.tail_targets = ()
    for name, slots in tail_calls.items():
        if name not in by_name or by_name[name].fd is None:
            raise KernelError(f"{prog.where}: no prog array {name!r} among the program's maps")
        for slot, target in slots.items():
            if target.name == prog.name and target.insns == prog.insns:
                fd = loaded.fd  # a program in its own prog array (a tail-call loop)
            else:
                other = load(target, log_level=0, maps=maps, with_btf=with_btf)
                if not other.ok:
                    raise KernelError(f"{target.where}: rejected by the kernel, so it cannot fill slot {slot} "
                                      f"of {name}: {other.error}")
                targets.append(other)
                loaded.tail_targets = tuple(targets)
                fd = other.fd
            by_name[name].update(slot.to_bytes(4, "little"), fd.to_bytes(4, "little"))
    loaded.notes = tuple(n for n in loaded.notes if "left empty: the program is not loaded" not in n)


def _expected_attach_type(prog: Program) -> int:
    """``BPF_PROG_LOAD``'s expected_attach_type: the attach type's number, or for
    a struct_ops program the index of the member it implements in the kernel struct."""
    if prog.type == "struct_ops" and prog.attach_btf_id and prog.kernel_btf is not None:
        members = [m.name for m in prog.kernel_btf.type(prog.attach_btf_id).members]
        if prog.attach_name not in members:
            raise KernelError(f"{prog.where}: struct {prog.kernel_btf.type(prog.attach_btf_id).name} has no member "
                              f"{prog.attach_name!r} for program {prog.name}")
        return members.index(prog.attach_name)
    return ATTACH_TYPES.get(prog.expected_attach_type or "", 0)


def _load(prog: Program, insns, log_level: int, btf_fd: int | None = None, records=None) -> KernelProgram:
    insn_bytes = encode(insns)
    insn_buf = ctypes.create_string_buffer(insn_bytes, len(insn_bytes))
    license_buf = ctypes.create_string_buffer(prog.license.encode())
    size = LOG_START
    while True:
        log_buf = ctypes.create_string_buffer(size)
        attr = ProgLoadAttr(
            prog_type=prog.prog_type_id,
            insn_cnt=len(insns),
            insns=ctypes.addressof(insn_buf),
            license=ctypes.addressof(license_buf),
            log_level=log_level | (BPF_LOG_STATS if log_level else 0),
            # the kernel wants no buffer at all when it is asked for no log
            log_size=size if log_level else 0,
            log_buf=ctypes.addressof(log_buf) if log_level else 0,
            prog_name=prog.name.encode()[:15],
            expected_attach_type=_expected_attach_type(prog),
            attach_btf_id=prog.attach_btf_id or 0,
            prog_flags=prog.prog_flags,
        )
        if btf_fd is not None and records is not None:
            funcs, nfuncs, lines, nlines = records
            attr.prog_btf_fd = btf_fd
            attr.func_info_rec_size, attr.func_info, attr.func_info_cnt = 8, ctypes.addressof(funcs), nfuncs
            attr.line_info_rec_size, attr.line_info, attr.line_info_cnt = 16, ctypes.addressof(lines), nlines
        try:
            fd = bpf(BPF_PROG_LOAD, attr)
        except OSError as exc:
            text = log_buf.value.decode("utf-8", "replace")
            if exc.errno == errno.ENOSPC and size < LOG_MAX:
                # the kernel says how much the whole log takes: one more load, not one per
                # growth step (each re-verifies: 5 loads of a 1M-insn walk before)
                needed = attr.log_true_size + LOG_SLACK if attr.log_true_size > size else size * LOG_GROWTH
                size = min(LOG_MAX, needed)
                continue
            # EACCES is the verifier's refusal even without a log; EINVAL and
            # E2BIG (too many insns processed) only when the verifier explained it
            if exc.errno == errno.EACCES or (exc.errno in (errno.EINVAL, errno.E2BIG) and text) \
                    or "processed " in text:  # any refusal the verifier explained (ENOTSUPP too)
                return KernelProgram(prog.name, False, text, exc.errno)
            hint = ""
            if exc.errno == errno.EPERM and prog.expected_attach_type in (
                    "trace_fentry", "trace_fexit", "modify_return"):
                hint = "; fentry/fexit/fmod_ret programs are not permitted on this kernel"
            elif exc.errno == errno.EPERM and prog.type == "lsm" and prog.attach_btf_id:
                hint = "; LSM programs are not permitted on this kernel"
            elif prog.type == "ext":
                hint = "; a freplace program needs the program it replaces (attach_prog_fd), which bpfnb does not set"
            elif prog.type in ("tracing", "lsm") and not prog.attach_btf_id:
                hint = f"; no attach target in the kernel BTF for section {prog.section!r}"
            raise KernelError(
                f"{prog.where or prog.name}: the kernel refused to load the program{hint} "
                f"({errno_name(exc.errno)}: {exc.strerror})" + (f"; log: {text.strip()}" if text else ""),
                exc.errno,
            ) from exc
        return KernelProgram(prog.name, True, log_buf.value.decode("utf-8", "replace"), 0, fd)
