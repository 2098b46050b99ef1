"""Loading a compiled BPF object: programs, maps, BTF, relocations, CO-RE.

``load(path)`` reads an ELF object of EM_BPF with pyelftools and returns an
``Object`` whose ``Program``s are ready for every engine: map references are
``LD_IMM64`` with ``BPF_PSEUDO_MAP_IDX`` (imm = index into ``Program.maps``)
or ``BPF_PSEUDO_MAP_IDX_VALUE`` (global data; the second slot holds the
offset), subprograms the program calls are appended after it with their
call offsets fixed (as libbpf does), line and func info are in slot
indices, and CO-RE relocations are applied against the kernel BTF.
"""

from __future__ import annotations

import html
import io
import os
import struct
import warnings
from dataclasses import dataclass, field, replace

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from ..btf import Btf
from ..btf.ext import BtfExt, parse_ext
from ..errors import BpfnbError, BtfError, ElfError, RelocationError
from ..isa import Insn, decode
from ..isa import opcodes as op
from ..limits import check_size
from ..program import UNKNOWN_TYPE, FuncInfo, LineInfo, MapDef, Program
from . import core, externs
from .maps import btf_maps, global_data_map, is_global_data, legacy_maps, with_init
from .sections import SectionKind, attach_btf_id, btf_target_name, classify, given

EM_BPF = 247
EM_NONE = 0  # what clang before 3.9 wrote into BPF objects
EI_CLASS, EI_DATA = 4, 5  # e_ident bytes
ELFCLASS64, ELFDATA2MSB = 2, 2
TEXT = ".text"


class BpfnbWarning(UserWarning):
    """Something about an object bpfnb read anyway (an EM_NONE machine field, ...)."""


@dataclass(frozen=True)
class _Func:
    """A function symbol: its section, first slot and length in slots."""

    name: str
    section: int
    start: int
    length: int
    is_global: bool


@dataclass(frozen=True)
class FailedProgram:
    """A program of the object bpfnb could not prepare, and why."""

    name: str
    section: str
    error: BpfnbError

    def __str__(self) -> str:
        return str(self.error)


@dataclass
class Object:
    """A loaded BPF object: its programs by name, maps, license and BTF."""

    path: str
    programs: dict[str, Program]
    maps: tuple[MapDef, ...]
    license: str
    version: int
    btf: Btf | None
    ext: BtfExt | None
    kernel_btf: Btf | None
    sections: tuple[dict, ...] = ()
    notes: list[str] = field(default_factory=list)
    externs: tuple = ()  # bpfnb.elf.externs.Resolved, in libbpf's order
    kconfig: dict = field(default_factory=dict)  # .kconfig extern → the value the program reads
    # programs that could not be prepared, each with its error (the others load)
    failed: dict[str, FailedProgram] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def program(self, name: str | None = None) -> Program:
        """The program called ``name`` (a function or section name); the only one when omitted."""
        if name is None:
            if len(self.programs) == 1 and not self.failed:
                return next(iter(self.programs.values()))
            if not self.programs and len(self.failed) == 1:
                raise next(iter(self.failed.values())).error
            if not self.programs and not self.failed:
                raise BpfnbError(f"{self.path}: no programs in this object")
            raise BpfnbError(f"{self.path}: {len(self.programs) + len(self.failed)} programs, name one of: "
                             f"{', '.join([*self.programs, *self.failed])}")
        if name in self.programs:
            return self.programs[name]
        if name in self.failed:
            raise self.failed[name].error
        by_section = [p for p in self.programs.values() if p.section == name]
        if len(by_section) == 1:
            return by_section[0]
        raise BpfnbError(f"{self.path}: no program {name!r}; programs: "
                         + ", ".join(f"{p.name} ({p.section})" for p in self.programs.values()))

    def tail_calls(self) -> dict[str, dict[int, Program]]:
        """The prog arrays the object fills with its programs, as ``bpfnb.Vm(prog,
        tail_calls=...)`` takes them: ``{map: {slot: Program}}``. Slots come from
        ``__array(values, ...)`` initialisers and from iproute2's ``ID/KEY``
        sections (slot KEY of the prog array whose ``bpf_elf_map`` id is ID)."""
        out: dict[str, dict[int, Program]] = {}
        for m in self.maps:
            if m.type == "prog_array" and m.init:
                out[m.name] = {slot: self.program(name) for slot, name in m.init}
        by_id = {m.id: m for m in self.maps if m.type == "prog_array" and m.id}
        for prog in self.programs.values():
            slot = classify(prog.section).tail_call
            if slot is not None and slot[0] in by_id:
                out.setdefault(by_id[slot[0]].name, {})[slot[1]] = prog
        return out

    def __iter__(self):
        return iter(self.programs.values())

    def __repr__(self) -> str:
        return f"<Object {self.name}: {len(self.programs)} program(s), {len(self.maps)} map(s)>"

    def __str__(self) -> str:
        lines = [f"{self.name}: {len(self.programs)} program(s), {len(self.maps)} map(s), license {self.license!r}"]
        for p in self.programs.values():
            lines.append(f"  program {p.name}: section {p.section}, type {p.type}, {len(p.insns)} insns"
                         + (f", attach {p.attach_name}" if p.attach_name else "")
                         + (f", {len(p.core_relocs)} CO-RE relocations" if p.core_relocs else "")
                         + (f" ({p.type_note})" if p.type_note else ""))
        for name, exc in self.failed.items():
            lines.append(f"  program {name}: not loaded: {exc}")
        for m in self.maps:
            lines.append(f"  map {m.name}: {m.type}, key {m.key_size} B, value {m.value_size} B, "
                         f"max_entries {m.max_entries} ({m.section})"
                         + (f", inner {m.inner.type}" if m.inner else "")
                         + (", init " + ", ".join(f"[{k}] = {v}" for k, v in m.init) if m.init else ""))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(p.name)}</td><td>{html.escape(p.section)}</td>"
            f"<td title='{html.escape(p.type_note, quote=True)}'>{p.type}</td>"
            f"<td>{len(p.insns)}</td><td>{html.escape(p.attach_name or '')}</td><td>{len(p.core_relocs)}</td></tr>"
            for p in self.programs.values())
        rows += "".join(
            f"<tr><td>{html.escape(f.name)}</td><td>{html.escape(f.section)}</td>"
            f"<td colspan='4'>not loaded: {html.escape(str(f))}</td></tr>" for f in self.failed.values())
        maps = "".join(
            f"<tr><td>{html.escape(m.name)}</td><td>{m.type}</td><td>{m.key_size}</td><td>{m.value_size}</td>"
            f"<td>{m.max_entries}</td><td>{html.escape(m.section)}</td></tr>" for m in self.maps)
        return (f"<b>{html.escape(self.name)}</b> (license {html.escape(self.license)})"
                "<table><tr><th>program</th><th>section</th><th>type</th><th>insns</th><th>attach</th>"
                f"<th>CO-RE</th></tr>{rows}</table>"
                "<table><tr><th>map</th><th>type</th><th>key</th><th>value</th><th>max</th><th>section</th></tr>"
                f"{maps}</table>" + "".join(f"<p>note: {html.escape(n)}</p>" for n in self.notes))


def _default_kernel_btf():
    from ..btf import kernel_btf

    try:
        return kernel_btf()
    except BtfError:
        return None


def load(path: str | os.PathLike, kernel_btf: Btf | None = None, *, kconfig: str | None = None,
         types: dict[str, str] | None = None) -> Object:
    """Load the BPF object at ``path``; CO-RE against ``kernel_btf`` (default: the kernel's).

    ``kconfig``: a kernel configuration's text for ``CONFIG_*`` externs (default: the
    running kernel's, from /boot/config-$(uname -r) or /proc/config.gz).

    ``types`` gives programs their type by program or section name: a program
    type (``{"from_netdev": "sched_cls"}``) or a section name to read it as
    (``{"2/7": "tc", "prog": "tp_btf/kfree_skb"}``). Programs whose section
    names no type bpfnb knows otherwise load with type ``unknown``.

    >>> obj = load("tests/fixtures/unknown_sections.bpf.o", types={"from-netdev": "sched_cls"})
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ElfError(f"{path}: cannot read: {exc.strerror}") from None
    if kernel_btf is None:
        kernel_btf = _default_kernel_btf()
    try:
        return _Loader(path, data, kernel_btf, externs.ExternSources(kconfig=kconfig), types or {}).run()
    except BpfnbError:
        raise
    except ELFError as exc:
        raise ElfError(f"{path}: malformed ELF object: {exc}") from None
    except Exception as exc:  # pyelftools on damaged input raises many kinds
        raise ElfError(f"{path}: malformed ELF object ({type(exc).__name__}: {exc})") from None


class _Loader:
    def __init__(self, path: str, data: bytes, kernel_btf, extern_sources=None,
                 types: dict[str, str] | None = None):
        self.path = path
        self.extern_sources = extern_sources or externs.ExternSources()
        self.kernel_btf = kernel_btf
        self.types = types or {}
        self.notes: list[str] = []
        if data[:4] != b"\x7fELF":
            raise ElfError(f"{path}: not an ELF file")
        if len(data) > EI_DATA and data[EI_DATA] == ELFDATA2MSB:
            raise ElfError(f"{path}: a big-endian object (clang -target bpfeb); bpfnb reads little-endian "
                           "BPF objects only (-target bpf on a little-endian machine, or -target bpfel)")
        if len(data) > EI_CLASS and data[EI_CLASS] != ELFCLASS64:
            raise ElfError(f"{path}: a 32-bit ELF object; BPF objects are ELF64")
        self.elf = ELFFile(io.BytesIO(data))
        machine = self.elf.header["e_machine"]
        if machine in ("EM_NONE", EM_NONE):
            self._note("e_machine is EM_NONE (clang before 3.9 wrote it into BPF objects): read as EM_BPF")
        elif machine not in ("EM_BPF", EM_BPF):
            raise ElfError(f"{path}: not a BPF object (machine {machine})")
        self.sections = list(self.elf.iter_sections())
        self.symtab = self.elf.get_section_by_name(".symtab")
        if self.symtab is None:
            raise ElfError(f"{path}: no .symtab section")
        self.symbols = list(self.symtab.iter_symbols())

    def _note(self, text: str, *, warn: bool = True) -> None:
        self.notes.append(text)
        if warn:
            warnings.warn(f"{self.path}: {text}", BpfnbWarning, stacklevel=4)

    def where(self, section: str) -> str:
        return f"{self.path}:{section}"

    def run(self) -> Object:
        license_ = self._string_section("license") or ""
        version_sec = self.elf.get_section_by_name("version")
        version = int.from_bytes(version_sec.data()[:4], "little") if version_sec is not None else 0
        self.btf = self._with_datasec_layout(self._btf())
        self.ext = self._ext()
        self.maps, self.map_at = self._maps()
        self._resolve_externs()
        self.funcs = self._funcs()
        self.relocs = self._relocations()
        self.maps = self._map_inits(self.maps)
        kinds = self._kinds()
        struct_ops = self._struct_ops_members()
        programs: dict[str, Program] = {}
        failed: dict[str, FailedProgram] = {}
        for func, kind in kinds.items():
            try:
                prog = self._program(func, kind, license_)
            except BpfnbError as exc:  # this program only: the others still load
                failed[func.name] = FailedProgram(func.name, kind.section, exc)
                continue
            prog = replace(prog, prog_flags=kind.prog_flags, type_note=kind.note)
            if prog.type == "struct_ops" and func.name in struct_ops:
                prog = self._struct_ops_target(prog, *struct_ops[func.name])
            programs[func.name] = prog
        if not kinds:
            self._note("no programs: no functions in program sections and none global in .text", warn=False)
        table = tuple(
            {"index": i, "name": s.name, "type": s["sh_type"], "size": s["sh_size"],
             "program_type": (classify(s.name).type if self._is_code(s) and s.name != TEXT else None)}
            for i, s in enumerate(self.sections) if s.name)
        return Object(self.path, programs, tuple(self.maps), license_, version, self.btf, self.ext,
                      self.kernel_btf, table, self.notes, externs=tuple(self.extern_list),
                      kconfig=self.kconfig_values, failed=failed)

    def _kinds(self) -> dict[_Func, SectionKind]:
        """Every program with the kind its section names: libbpf's conventions,
        then iproute2's tail-call slots (the type of the object's other
        programs), then what the user gave in ``types``."""
        code_sections = {self.sections[f.section].name for f in self.funcs} - {TEXT}
        if code_sections:
            progs = [f for f in self.funcs if self.sections[f.section].name != TEXT]
        else:  # an object of .text only: its global functions are the programs
            progs = [f for f in self.funcs if f.is_global]
            if progs:
                self._note(".text only: its global functions are read as programs", warn=False)
        kinds = {f: (classify(self.sections[f.section].name) if self.sections[f.section].name != TEXT
                     else SectionKind(TEXT, UNKNOWN_TYPE, note=".text names no program type"))
                 for f in progs}
        callers = {(k.type, k.attach_type) for k in kinds.values() if k.known}
        for f, k in kinds.items():
            if k.tail_call is None:
                continue
            if len(callers) == 1:
                (type_, attach), = callers
                kinds[f] = replace(k, type=type_, attach_type=attach,
                                   note=f"{k.note}; the object's other programs are {type_}")
            else:
                kinds[f] = replace(k, note=f"{k.note}, and the object's other programs have "
                                           f"{len(callers) or 'no'} known types")
        return self._given_kinds(kinds)

    def _struct_ops_members(self) -> dict[str, tuple[str, str]]:
        """Program name → (struct, member) it implements, from the relocations of
        the ``.struct_ops``/``.struct_ops.link`` sections (a function pointer in
        a struct variable of the section's DATASEC)."""
        out: dict[str, tuple[str, str]] = {}
        if self.btf is None:
            return out
        for index, sec in enumerate(self.sections):
            if not (sec.name == ".struct_ops" or sec.name.startswith(".struct_ops.")):
                continue
            try:
                datasec = self.btf.type(self.btf.find(sec.name, "datasec"))
            except BtfError:
                continue
            for rel_sec in self.sections:
                if rel_sec["sh_type"] != "SHT_REL" or rel_sec["sh_info"] != index:
                    continue
                for rel in rel_sec.iter_relocations():
                    offset, sym = rel["r_offset"], self.symbols[rel["r_info_sym"]]
                    info = next((v for v in datasec.vars if v.offset <= offset < v.offset + v.size), None)
                    if info is None or sym["st_info"]["type"] != "STT_FUNC":
                        continue
                    struct = self.btf.type(self.btf.resolve(self.btf.type(info.type).type))
                    bit = (offset - info.offset) * 8
                    member = next((m.name for m in struct.members if m.bit_offset == bit), None)
                    if member is not None:
                        out[sym.name] = (struct.name, member)
        return out

    def _struct_ops_target(self, prog: Program, struct: str, member: str) -> Program:
        """A struct_ops program attaches to the kernel's ``struct`` (its BTF id)
        and implements ``member`` (the kernel bridge passes its index)."""
        prog = replace(prog, attach_name=member)
        if self.kernel_btf is None:
            return prog
        try:
            return replace(prog, attach_btf_id=self.kernel_btf.find(struct, "struct"))
        except BtfError:
            self._note(f"section {prog.section}: the kernel BTF has no struct {struct!r} "
                       f"(program {prog.name} implements its {member!r})", warn=False)
            return prog

    def _given_kinds(self, kinds: dict[_Func, SectionKind]) -> dict[_Func, SectionKind]:
        for key, value in self.types.items():
            hits = [f for f in kinds if f.name == key or self.sections[f.section].name == key]
            if not hits:
                names = ", ".join(f"{f.name} ({self.sections[f.section].name})" for f in kinds)
                raise ElfError(f"{self.path}: types: {key!r} is neither a program nor a program section "
                               f"of this object (programs: {names or 'none'})")
            for f in hits:
                kind = given(self.sections[f.section].name, value)
                if kind is None:
                    raise ElfError(f"{self.path}: types: {value!r} for {key!r} is neither a program type "
                                   "(xdp, sched_cls, ...) nor a section name bpfnb reads (tp_btf/kfree_skb, ...)")
                kinds[f] = kind
        return kinds

    # -- pieces -------------------------------------------------------------------
    def _string_section(self, name: str) -> str | None:
        sec = self.elf.get_section_by_name(name)
        return None if sec is None else sec.data().split(b"\0", 1)[0].decode("utf-8", "replace")

    def _btf(self) -> Btf | None:
        sec = self.elf.get_section_by_name(".BTF")
        if sec is None:
            return None
        try:
            btf = Btf.from_bytes(sec.data(), name=self.where(".BTF"))
            len(btf)
            return btf
        except BtfError as exc:
            raise ElfError(str(exc)) from None

    def _with_datasec_layout(self, btf: Btf | None) -> Btf | None:
        """The BTF with each DATASEC's size and variable offsets filled in from
        the ELF (clang leaves them to the loader; the kernel needs them)."""
        if btf is None:
            return None
        raw = bytearray(btf.raw)
        changed = False
        for type_id in range(1, len(btf)):
            t = btf.type(type_id)
            if t.kind != "datasec":
                continue
            sec = self.elf.get_section_by_name(t.name)
            if sec is None:
                continue
            index = next(i for i, s in enumerate(self.sections) if s.name == t.name)
            values = {s.name: s["st_value"] for s in self.symbols if s["st_shndx"] == index and s.name}
            at = btf.record_offset(type_id)
            struct.pack_into("<I", raw, at + 8, sec["sh_size"])
            placed = [(info.type, values.get(btf.type(info.type).name, info.offset), info.size) for info in t.vars]
            # the kernel wants the variables in offset order (libbpf sorts them too)
            for k, secinfo in enumerate(sorted(placed, key=lambda v: v[1])):
                struct.pack_into("<III", raw, at + 12 + 12 * k, *secinfo)
            changed = True
        return Btf.from_bytes(bytes(raw), name=btf.name) if changed else btf

    def _ext(self) -> BtfExt | None:
        sec = self.elf.get_section_by_name(".BTF.ext")
        if sec is None or self.btf is None:
            return None
        try:
            return parse_ext(sec.data(), self.btf, name=self.where(".BTF.ext"))
        except BtfError as exc:
            raise ElfError(str(exc)) from None

    @staticmethod
    def _is_code(sec) -> bool:
        return sec["sh_type"] == "SHT_PROGBITS" and bool(sec["sh_flags"] & SH_FLAGS.SHF_EXECINSTR) \
            and sec["sh_size"] > 0

    def _maps(self) -> tuple[list[MapDef], dict[tuple[int, int], int]]:
        """Maps in libbpf's order, and (section index, offset) → map index."""
        maps: list[MapDef] = []
        at: dict[tuple[int, int], int] = {}
        self.btf_map_specs: dict[int, tuple] = {}  # map index → (offset, size, BtfMap) in .maps
        # maps whose definitions cannot be read: only the programs using them fail
        self.broken_maps: dict[tuple[int, int], tuple[str, ElfError]] = {}
        obj_name = os.path.basename(self.path)
        for idx, sec in enumerate(self.sections):
            if sec.name == ".maps":
                # clang leaves the DATASEC offsets to the loader: the symbols place the maps
                offsets = {s.name: s["st_value"] for s in self.symbols if s["st_shndx"] == idx and s.name}
                sizes = {s.name: s["st_size"] for s in self.symbols if s["st_shndx"] == idx and s.name}
                if self.btf is None:
                    error = ElfError(f"{self.where('.maps')}: BTF-defined maps need a .BTF section")
                    self.broken_maps.update({(idx, off): (name, error) for name, off in offsets.items()})
                    continue
                for name, spec in btf_maps(self.btf, where=self.where(".maps")):
                    if name not in offsets:
                        raise ElfError(f"{self.where('.maps')}: map {name!r} has no symbol")
                    if isinstance(spec, ElfError):
                        self.broken_maps[(idx, offsets[name])] = (name, spec)
                        self._note(str(spec), warn=False)
                        continue
                    at[(idx, offsets[name])] = len(maps)
                    self.btf_map_specs[len(maps)] = (offsets[name], sizes[name], spec)
                    maps.append(spec.definition)
            elif sec.name == "maps":
                syms = [(s.name, s["st_value"], s["st_size"]) for s in self.symbols
                        if s["st_shndx"] == idx and s.name and s["st_info"]["type"] != "STT_SECTION"]
                try:
                    legacy = legacy_maps(sec.data(), syms, where=self.where("maps"))
                except ElfError as exc:
                    self.broken_maps.update({(idx, off): (name, exc) for name, off, _ in syms})
                    self._note(str(exc), warn=False)
                    continue
                for offset, m in legacy:
                    at[(idx, offset)] = len(maps)
                    maps.append(m)
        for idx, sec in enumerate(self.sections):
            if is_global_data(sec.name) and sec["sh_size"] > 0 and sec.name != ".maps":
                check_size(f"{self.where(sec.name)}: section {sec.name}", sec["sh_size"], None, ElfError)
                data = b"\0" * sec["sh_size"] if sec["sh_type"] == "SHT_NOBITS" else sec.data()
                at[(idx, -1)] = len(maps)
                maps.append(global_data_map(obj_name, sec.name, data))
        return maps, at

    def _resolve_externs(self) -> None:
        """``.kconfig``/``.ksyms`` externs (bpfnb.elf.externs): their values, and the
        .kconfig map appended after the object's own maps, as libbpf places it. An
        extern that cannot be resolved fails only the programs that use it
        (``broken_externs``), where libbpf would refuse the whole object."""
        self.broken_externs: dict[str, RelocationError] = {}
        try:
            found = externs.collect(self.btf, self.symbols, where=self.path)
        except RelocationError:
            for sym in self.symbols:
                if externs.is_extern_symbol(sym) and sym.name:
                    try:
                        externs.collect(self.btf, [sym], where=self.path)
                    except RelocationError as exc:
                        self.broken_externs[sym.name] = exc
            found = externs.collect(self.btf, [s for s in self.symbols if s.name not in self.broken_externs],
                                    where=self.path)
        self.extern_list, kconfig_data = self._resolved(found) if found else ([], b"")
        for name, exc in self.broken_externs.items():
            self._note(f"extern {name!r}: {str(exc).removeprefix(self.path + ': ')}", warn=False)
        self.extern_by_name = {r.extern.name: r for r in self.extern_list}
        self.kconfig_map_index = None
        self.kconfig_values = externs.kconfig_values(self.extern_list, kconfig_data)
        if kconfig_data:
            self.kconfig_map_index = len(self.maps)
            self.maps.append(externs.kconfig_map(os.path.basename(self.path), kconfig_data))
        self.btf = externs.kernel_ready_btf(self.btf, self.extern_list)

    def _resolved(self, found: list) -> tuple[list, bytes]:
        """``externs.resolve`` of ``found``, leaving out (into ``broken_externs``)
        the ones it cannot resolve."""
        def resolve(subset, notes):
            return externs.resolve(subset, self.btf, self.kernel_btf, self.extern_sources, where=self.path,
                                   notes=notes)

        notes: list[str] = []
        try:
            resolved = resolve(found, notes)
        except RelocationError:
            good = []
            for e in found:
                try:
                    resolve([e], [])
                    good.append(e)
                except RelocationError as exc:
                    self.broken_externs[e.name] = exc
            notes = []
            resolved = resolve(good, notes) if good else ([], b"")
        self.notes += notes
        return resolved

    def _broken_extern(self, sym, where: str) -> RelocationError | None:
        """The error of a program that uses an extern bpfnb could not resolve."""
        exc = self.broken_externs.get(sym.name)
        if exc is None:
            return None
        return RelocationError(f"{where}: uses extern {sym.name!r}, which cannot be resolved "
                               f"({str(exc).removeprefix(self.path + ': ')})")

    def _extern_of(self, section: int, slot: int):
        sym = self.relocs.get(section, {}).get(slot)
        if sym is None or not externs.is_extern_symbol(sym):
            return None
        return self.extern_by_name.get(sym.name)

    def _map_inits(self, maps: list[MapDef]) -> list[MapDef]:
        """Maps of maps and prog arrays with their ``values`` initialisers: the
        relocations of ``.maps`` at the slots of their ``values`` arrays."""
        specs = self.btf_map_specs
        if not any(spec.values_offset is not None for _, _, spec in specs.values()):
            return maps
        index = next(i for i, s in enumerate(self.sections) if s.name == ".maps")
        where = self.where(".maps")
        inits: dict[int, dict[int, str]] = {}
        for sec in self.sections:
            if sec["sh_type"] != "SHT_REL" or sec["sh_info"] != index:
                continue
            for rel in sec.iter_relocations():
                offset = rel["r_offset"]
                sym = self.symbols[rel["r_info_sym"]]
                owner = next((k for k, (start, size, spec) in specs.items() if spec.values_offset is not None
                              and start + spec.values_offset <= offset < start + size), None)
                if owner is None:
                    raise RelocationError(f"{where}: relocation at byte {offset} against {sym.name!r} is not "
                                          "inside the `values` of a map of maps or prog array")
                start, _, spec = specs[owner]
                slot, rest = divmod(offset - start - spec.values_offset, 8)
                name = maps[owner].name
                if rest:
                    raise RelocationError(f"{where}: map {name!r}: initialiser at byte {offset} is not on a slot")
                if spec.values_are_programs:
                    if sym["st_info"]["type"] != "STT_FUNC":
                        raise RelocationError(f"{where}: prog array {name!r} slot {slot}: {sym.name!r} "
                                              "is not a program")
                elif (sym["st_shndx"], sym["st_value"]) not in self.map_at:
                    raise RelocationError(f"{where}: map of maps {name!r} slot {slot}: {sym.name!r} "
                                          "is not a map of this object")
                inits.setdefault(owner, {})[slot] = sym.name
        out = list(maps)
        for k, init in inits.items():
            out[k] = with_init(out[k], init, where=where)
        return out

    def _funcs(self) -> list[_Func]:
        funcs = []
        for s in self.symbols:
            if s["st_info"]["type"] != "STT_FUNC" or not isinstance(s["st_shndx"], int):
                continue
            sec = self.sections[s["st_shndx"]]
            if not self._is_code(sec) or s["st_size"] == 0:
                continue
            if s["st_value"] % 8 or s["st_size"] % 8:
                raise ElfError(f"{self.where(sec.name)}: function {s.name} is not on instruction boundaries")
            funcs.append(_Func(s.name, s["st_shndx"], s["st_value"] // 8, s["st_size"] // 8,
                               s["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")))
        # a program section without function symbols is one program
        named = {f.section for f in funcs}
        for idx, sec in enumerate(self.sections):
            if self._is_code(sec) and sec.name != TEXT and idx not in named:
                funcs.append(_Func(sec.name.replace("/", "_"), idx, 0, sec["sh_size"] // 8, True))
        return funcs

    def _relocations(self) -> dict[int, dict[int, object]]:
        """Section index → slot → symbol, for the code sections."""
        out: dict[int, dict[int, object]] = {}
        for sec in self.sections:
            if sec["sh_type"] != "SHT_REL":
                continue
            target = sec["sh_info"]
            if not self._is_code(self.sections[target]):
                continue
            table = out.setdefault(target, {})
            for rel in sec.iter_relocations():
                offset = rel["r_offset"]
                if offset % 8:
                    raise RelocationError(f"{self.where(self.sections[target].name)}: relocation at byte "
                                          f"{offset} is not on an instruction")
                table[offset // 8] = self.symbols[rel["r_info_sym"]]
        return out

    def _code(self, section: int) -> tuple[Insn, ...]:
        sec = self.sections[section]
        if not hasattr(self, "_decoded"):
            self._decoded = {}
        if section not in self._decoded:
            self._decoded[section] = decode(sec.data(), where=self.where(sec.name))
        return self._decoded[section]

    def _func_at(self, section: int, slot: int, where: str) -> _Func:
        for f in self.funcs:
            if f.section == section and f.start == slot:
                return f
        raise RelocationError(f"{where}: call to {self.sections[section].name} insn {slot}, which is not the "
                              "start of a function")

    def _program(self, main: _Func, kind: SectionKind, license_: str) -> Program:
        insns: list[Insn] = []
        placed: dict[tuple[int, int], int] = {}  # (section, func start) → first slot in the program
        chunks: list[tuple[_Func, int]] = []
        queue = [main]
        while queue:
            func = queue.pop(0)
            key = (func.section, func.start)
            if key in placed:
                continue
            placed[key] = len(insns)
            chunks.append((func, len(insns)))
            insns.extend(self._code(func.section)[func.start:func.start + func.length])
            for callee in self._callees(func):
                if (callee.section, callee.start) not in placed:
                    queue.append(callee)
        for func, base in chunks:
            self._relocate(insns, func, base, placed)
        line_info, func_info, core_relocs = self._ext_records(insns, chunks)
        attach_btf_id = self._attach_btf_id(kind)
        return Program(
            name=main.name, insns=tuple(insns), type=kind.type, section=kind.section,
            expected_attach_type=kind.attach_type, attach_name=kind.target, attach_btf_id=attach_btf_id,
            license=license_, maps=tuple(self.maps), btf=self.btf, kernel_btf=self.kernel_btf,
            func_info=func_info, line_info=line_info, core_relocs=tuple(core_relocs), path=self.path,
            warnings=tuple(r.warning for r in core_relocs if r.poisoned),
        )

    def _call_target(self, func: _Func, slot: int) -> _Func | None:
        """The function a pseudo call / function pointer at ``slot`` of ``func``'s
        section reaches (as libbpf reads them: a call is relative to its symbol,
        a ``BPF_LD_IMM64`` function pointer is a byte offset from it)."""
        insn = self._code(func.section)[slot]
        sym = self.relocs.get(func.section, {}).get(slot)
        where = f"{self.where(self.sections[func.section].name)}: insn {slot}"
        if sym is None:
            return self._func_at(func.section, slot + insn.imm + 1, where)
        shndx = sym["st_shndx"]
        if (broken := self._broken_extern(sym, where)) is not None:
            raise broken
        if not isinstance(shndx, int) or shndx == 0:
            raise RelocationError(f"{where}: call to {sym.name!r}, an extern (a kernel function declared "
                                  "__ksym, or a function of an object not linked in): externs are not "
                                  "supported yet")
        if insn.is_ld_imm64:
            if (sym["st_value"] + insn.imm) % 8:
                raise RelocationError(f"{where}: function pointer to {sym.name!r}+{insn.imm} is not on an "
                                      "instruction")
            return self._func_at(shndx, (sym["st_value"] + insn.imm) // 8, where)
        return self._func_at(shndx, sym["st_value"] // 8 + insn.imm + 1, where)

    def _is_call(self, insn: Insn, func: _Func | None = None, slot: int = 0) -> bool:
        """A bpf-to-bpf call, or a function pointer (``BPF_PSEUDO_FUNC``, or a
        ``BPF_LD_IMM64`` relocated against a symbol in a code section)."""
        if (insn.code == op.BPF_JMP | op.BPF_CALL and insn.src == op.BPF_PSEUDO_CALL) or \
                (insn.is_ld_imm64 and insn.src == op.BPF_PSEUDO_FUNC):
            return True
        if func is None or not insn.is_ld_imm64:
            return False
        sym = self.relocs.get(func.section, {}).get(slot)
        if sym is None or not isinstance(sym["st_shndx"], int) or sym["st_shndx"] == 0:
            return False
        return self._is_code(self.sections[sym["st_shndx"]])

    def _callees(self, func: _Func) -> list[_Func]:
        code = self._code(func.section)
        return [self._call_target(func, s) for s in range(func.start, func.start + func.length)
                if self._is_call(code[s], func, s) and self._extern_of(func.section, s) is None]

    def _relocate(self, insns: list[Insn], func: _Func, base: int, placed) -> None:
        sec_name = self.sections[func.section].name
        relocs = self.relocs.get(func.section, {})
        for k in range(func.length):
            slot = func.start + k
            at = base + k
            insn = insns[at]
            where = f"{self.where(sec_name)}: insn {slot}"
            extern = self._extern_of(func.section, slot)
            if extern is not None:
                externs.patch(insns, at, extern, self.kconfig_map_index, where=where)
                continue
            if self._is_call(insn, func, slot):
                target = self._call_target(func, slot)
                new = placed[(target.section, target.start)] - (at + 1)
                src = op.BPF_PSEUDO_FUNC if insn.is_ld_imm64 else insn.src
                insns[at] = Insn(insn.code, insn.dst, src, insn.off, new)
                continue
            sym = relocs.get(slot)
            if sym is None:
                continue
            shndx = sym["st_shndx"]
            if not insn.is_ld_imm64:
                raise RelocationError(f"{where}: relocation against {sym.name!r} on an instruction that is "
                                      f"not a 64-bit load or call (opcode {insn.code:#04x})")
            if (broken := self._broken_extern(sym, where)) is not None:
                raise broken
            if not isinstance(shndx, int) or shndx == 0:
                raise RelocationError(f"{where}: relocation against undefined symbol {sym.name!r} "
                                      "(externs such as .kconfig/.ksyms are not supported)")
            target_sec = self.sections[shndx].name
            if (shndx, sym["st_value"]) in self.broken_maps:
                name, error = self.broken_maps[(shndx, sym["st_value"])]
                raise RelocationError(f"{where}: uses map {name!r}, whose definition bpfnb cannot read "
                                      f"({str(error).removeprefix(self.where(target_sec) + ': ')})")
            if (shndx, sym["st_value"]) in self.map_at and not is_global_data(target_sec):
                index = self.map_at[(shndx, sym["st_value"])]
                insns[at] = Insn(insn.code, insn.dst, op.BPF_PSEUDO_MAP_IDX, 0, index)
                insns[at + 1] = Insn(0, 0, 0, 0, 0)
            elif (shndx, -1) in self.map_at:
                index = self.map_at[(shndx, -1)]
                offset = sym["st_value"] + insn.imm
                insns[at] = Insn(insn.code, insn.dst, op.BPF_PSEUDO_MAP_IDX_VALUE, 0, index)
                insns[at + 1] = Insn(0, 0, 0, 0, offset)
            else:
                raise RelocationError(f"{where}: relocation against {sym.name!r} in section {target_sec!r}, "
                                      "which is neither a map nor global data")

    def _ext_records(self, insns: list[Insn], chunks):
        line_info: list[LineInfo] = []
        func_info: list[FuncInfo] = []
        core_relocs: list[core.CoreRelocation] = []
        if self.ext is None:
            return (), (), []
        for func, base in chunks:
            sec_name = self.sections[func.section].name
            lo, hi = func.start, func.start + func.length

            def slot_of(byte_off: int, lo=lo, hi=hi, base=base) -> int | None:
                s = byte_off // 8
                return base + s - lo if lo <= s < hi else None

            for r in self.ext.line_info.get(sec_name, ()):
                s = slot_of(r.insn_off)
                if s is not None:
                    line_info.append(LineInfo(s, r.file, r.line, r.col, r.text))
            for r in self.ext.func_info.get(sec_name, ()):
                s = slot_of(r.insn_off)
                if s is not None:
                    func_info.append(FuncInfo(s, r.type_id, self.btf.type(r.type_id).name))
            core_relocs += self._core_relocate(insns, func, base, sec_name)
        line_info.sort(key=lambda li: li.insn)
        func_info.sort(key=lambda fi: fi.insn)
        return tuple(line_info), tuple(func_info), core_relocs

    def _core_relocate(self, insns: list[Insn], func: _Func, base: int, sec_name: str) -> list:
        """Apply the CO-RE records of ``func`` (placed at ``base``), numbered as libbpf
        numbers them (record index in the section, instruction index in the function)."""
        out = []
        lo, hi = func.start, func.start + func.length
        for number, r in enumerate(self.ext.core_relos.get(sec_name, ())):
            slot = r.insn_off // 8
            if not lo <= slot < hi:
                continue
            if self.kernel_btf is None:
                raise RelocationError(f"{self.where(sec_name)}: insn {slot}: CO-RE relocation "
                                      "needs a kernel BTF (none readable; pass kernel_btf=)")
            out.append(core.apply(insns, base + slot - lo, self.btf, self.kernel_btf, r.type_id, r.access,
                                  r.kind, where=self.where(sec_name), func=func.name, func_insn=slot - lo,
                                  relo=number))
        return out

    def _attach_btf_id(self, kind: SectionKind) -> int | None:
        if self.kernel_btf is None:
            return None
        try:
            return attach_btf_id(kind, self.kernel_btf)
        except BtfError:
            name, btf_kind = btf_target_name(kind)
            # like libbpf, not fatal until load: the target may be set later
            # (xdpdump's "fentry/func" is a placeholder of this kind)
            self.notes.append(f"section {kind.section}: the kernel BTF has no {btf_kind} {name!r}; "
                              "set attach_btf_id before loading")
            return None


__all__ = ["Object", "load"]
