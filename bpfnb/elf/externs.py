"""Externs: ``__kconfig`` values and ``__ksym`` kernel symbols, resolved as libbpf does.

An object may name things only the running kernel knows: ``extern int
LINUX_KERNEL_VERSION __kconfig;``, ``extern bool CONFIG_X __kconfig __weak;``,
``extern const struct rq runqueues __ksym;`` (a typed kernel variable),
``extern const void sym __ksym;`` (an address from kallsyms) or ``extern struct
task_struct *bpf_task_from_pid(s32) __ksym;`` (a kfunc). The ELF symbols are
undefined; the object's BTF has a ``VAR``/``FUNC`` of extern linkage for each, in
a ``.kconfig`` or ``.ksyms`` DATASEC. Rules learned from libbpf's
``bpf_object__collect_externs``/``bpf_object__resolve_externs``; the code is ours:

- ``.kconfig`` values live in one read-only array map (``<obj>.kconfig``), laid
  out by descending alignment, then ascending size, then name; a load of an
  extern becomes a map-value load at its offset. ``LINUX_KERNEL_VERSION`` comes
  from the release, ``LINUX_HAS_BPF_COOKIE`` from the kernel's BTF,
  ``LINUX_HAS_SYSCALL_WRAPPER`` from whether ``__x64_sys_bpf`` can be kprobed, ``CONFIG_*`` from ``/boot/config-$(uname -r)`` or
  ``/proc/config.gz``. An unset weak extern is zero; an unset strong one is an
  error naming it.
- a typed ``.ksyms`` variable becomes ``ld_imm64`` with ``BPF_PSEUDO_BTF_ID`` and
  the kernel BTF's ``VAR`` id; a typeless one the kallsyms address; a kfunc call
  a ``BPF_PSEUDO_KFUNC_CALL`` to the kernel BTF's ``FUNC`` id. A missing weak kfunc
  is poisoned as libbpf does (``call 2002000000 + extern index``).
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, replace

from ..btf import Btf
from ..btf.types import HEADER, VARSECINFO
from ..errors import RelocationError
from ..isa import Insn, ld_imm64
from ..isa import opcodes as op
from ..program import MapDef
from .core import essential_name, types_are_compat
from .maps import BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, global_data_map

KCONFIG_SEC = ".kconfig"
KSYMS_SEC = ".ksyms"
VAR_EXTERN = 2  # BTF_VAR_GLOBAL_EXTERN
VAR_ALLOCATED = 1  # BTF_VAR_GLOBAL_ALLOCATED
FUNC_EXTERN = 2  # BTF_FUNC_EXTERN
FUNC_GLOBAL = 1  # BTF_FUNC_GLOBAL
KIND_VAR = 14  # BTF_KIND_VAR, for the placeholder variable written into .ksyms
DUMMY_KSYM = "dummy_ksym"  # libbpf's name for it
KSYM_SLOT = 4  # bytes each .ksyms entry takes in its DATASEC (an int)
TYPE_INFO_AT, TYPE_SIZE_AT, TYPE_EXTRA_AT = 4, 8, 12  # fields of a BTF type record
VLEN_MASK = 0xFFFF
POISON_KFUNC_BASE = 2002000000  # libbpf: "invalid func unknown#2002000000 + extern index"
TRISTATE = {"n": 0, "y": 1, "m": 2}  # enum libbpf_tristate
PROC_CONFIG = "/proc/config.gz"
KALLSYMS = "/proc/kallsyms"
BYTE_MAX_VERSION_PART = 255
BPF_OBJ_NAME_LEN = 16
SYSCALL_WRAPPED = "__x64_sys_bpf"  # what an x86-64 kernel with syscall wrappers calls sys_bpf
KPROBE_INTERFACES = ("/sys/bus/event_source/devices/kprobe/type", "/sys/kernel/tracing/kprobe_events",
                     "/sys/kernel/debug/tracing/kprobe_events")  # KERNEL_VERSION clamps the sublevel to a byte


struct_u32 = struct.Struct("<I")
struct_var = struct.Struct("<IIII")  # name_off, info, type, linkage


@dataclass(frozen=True)
class Extern:
    """One extern of the object, in libbpf's order."""

    name: str
    section: str  # ".kconfig" or ".ksyms"
    btf_id: int  # its VAR/FUNC in the object's BTF
    type_id: int  # the VAR's type (modifiers and typedefs skipped) or the FUNC's prototype
    weak: bool
    is_func: bool = False
    kcfg_type: str = ""  # bool / tristate / char / int / char_array
    size: int = 0
    align: int = 0
    signed: bool = False
    data_off: int = 0

    @property
    def typeless(self) -> bool:
        return self.section == KSYMS_SEC and not self.is_func and self.type_id == 0


@dataclass(frozen=True)
class Resolved:
    """What an extern became: a kconfig value, a kernel BTF id or an address."""

    extern: Extern
    index: int  # position in libbpf's sorted list (the kfunc poison carries it)
    is_set: bool
    kernel_btf_id: int = 0
    addr: int = 0


@dataclass(frozen=True)
class ExternSources:
    """Where values come from; text given here stands in for the machine's files."""

    kconfig: str | None = None  # a .config's text (default: /boot/config-$(uname -r), /proc/config.gz)
    kallsyms: str | None = None  # /proc/kallsyms's text
    release: str | None = None  # ``uname -r``


def _fail(where: str, message: str) -> RelocationError:
    return RelocationError(f"{where}: {message}")


def _kcfg_type(btf, type_id: int) -> tuple[str, bool]:
    t = btf.type(btf.resolve(type_id))
    if t.kind == "int":
        if t.int_bool:
            return ("bool" if t.size == 1 else ""), False
        if t.size == 1:
            return "char", t.int_signed
        return ("int" if t.size in (2, 4, 8) else ""), t.int_signed
    if t.kind in ("enum", "enum64"):
        ok = t.name == "libbpf_tristate" and (t.kind == "enum64" or t.size == 4)
        return ("tristate" if ok else ""), False
    if t.kind == "array":
        if t.nelems and _kcfg_type(btf, t.elem_type)[0] == "char":
            return "char_array", False
        return "", False
    return "", False


def _align(btf, type_id: int) -> int:
    """``btf__align_of``: a scalar's size, an array's element's, a struct's widest member's."""
    t = btf.type(btf.resolve(type_id))
    if t.kind in ("int", "enum", "enum64", "float"):
        return min(t.size, 8)
    if t.kind == "ptr":
        return 8
    if t.kind == "array":
        return _align(btf, t.elem_type)
    if t.kind in ("struct", "union"):
        return max((_align(btf, m.type) for m in t.members), default=1)
    return 0


def _order(e: Extern):
    # kconfig before ksyms; kconfig by descending alignment, ascending size; then name
    if e.section == KCONFIG_SEC:
        return (0, -e.align, e.size, e.name.encode())
    return (1, 0, 0, e.name.encode())


def collect(btf, symbols, *, where: str) -> list[Extern]:
    """The object's externs: undefined global/weak symbols of no type, each with a
    ``VAR``/``FUNC`` of extern linkage in the object's BTF (``bpf_object__collect_externs``)."""
    wanted = [s for s in symbols if is_extern_symbol(s) and s.name]
    if not wanted:
        return []
    if btf is None:
        raise _fail(where, f"extern {wanted[0].name!r} needs BTF (the object has no .BTF)")
    by_name: dict[str, int] = {}
    section_of: dict[int, str] = {}
    for type_id in range(1, len(btf)):
        t = btf.type(type_id)
        if t.kind in ("var", "func"):
            by_name.setdefault(t.name, type_id)
        elif t.kind == "datasec":
            for info in t.vars:
                section_of[info.type] = t.name
    externs = []
    for sym in wanted:
        type_id = by_name.get(sym.name)
        if type_id is None:
            raise _fail(where, f"extern {sym.name!r} has no BTF VAR or FUNC")
        t = btf.type(type_id)
        if t.linkage != (VAR_EXTERN if t.kind == "var" else FUNC_EXTERN):
            raise _fail(where, f"extern {sym.name!r}: its BTF {t.kind} is not of extern linkage")
        section = section_of.get(type_id)
        weak = sym["st_info"]["bind"] == "STB_WEAK"
        if section == KCONFIG_SEC:
            if t.kind == "func":
                raise _fail(where, f"extern function {sym.name!r} in {KCONFIG_SEC} is not supported")
            kind, signed = _kcfg_type(btf, t.type)
            if not kind:
                raise _fail(where, f"extern (kcfg) {sym.name!r}: type {btf.name_of(t.type)} is not supported "
                                   "(bool, tristate, char, 2/4/8-byte integers, char arrays)")
            externs.append(Extern(sym.name, section, type_id, btf.resolve(t.type), weak, False, kind,
                                  btf.sizeof(t.type), _align(btf, t.type), signed))
        elif section == KSYMS_SEC:
            externs.append(Extern(sym.name, section, type_id, btf.resolve(t.type), weak, t.kind == "func"))
        elif section is None:
            raise _fail(where, f"extern {sym.name!r} is defined in no section: an object to link first "
                               "(bpftool gen object) or a missing __kconfig/__ksym")
        else:
            raise _fail(where, f"extern {sym.name!r} in unrecognized section {section!r} "
                               f"(libbpf knows {KCONFIG_SEC} and {KSYMS_SEC})")
    externs.sort(key=_order)
    off = 0
    for k, e in enumerate(externs):
        if e.section == KCONFIG_SEC:
            data_off = (off + e.align - 1) // e.align * e.align
            externs[k] = replace(e, data_off=data_off)
            off = data_off + e.size
    return externs


def is_extern_symbol(sym) -> bool:
    """libbpf's ``sym_is_extern``: undefined, global or weak, of no type."""
    return (sym["st_shndx"] == "SHN_UNDEF" and sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")
            and sym["st_info"]["type"] == "STT_NOTYPE")


# -- values ---------------------------------------------------------------------------


def kernel_version(release: str) -> int:
    """``KERNEL_VERSION(major, minor, patch)`` of a release string (``6.18.44-fc`` → 0x06122c)."""
    parts = []
    for piece in release.split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            return 0
        parts.append(int(digits))
    if len(parts) != 3:
        return 0
    major, minor, patch = parts
    return (major << 16) + (minor << 8) + min(patch, BYTE_MAX_VERSION_PART)


def read_kconfig(release: str) -> tuple[str | None, str]:
    """(text, path) of the running kernel's configuration, or (None, reason)."""
    boot = f"/boot/config-{release}"
    for path in (boot, PROC_CONFIG):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        return data.decode("utf-8", "replace"), path
    return None, f"neither {boot} nor {PROC_CONFIG} is readable"


class _KconfigData:
    def __init__(self, externs: list[Extern], where: str, notes: list[str]):
        self.where = where
        self.notes = notes
        size = max((e.data_off + e.size for e in externs if e.section == KCONFIG_SEC), default=0)
        self.data = bytearray(size)

    def set_num(self, e: Extern, value: int) -> None:
        if e.kcfg_type == "char_array" or e.kcfg_type == "tristate":
            raise _fail(self.where, f"extern (kcfg) {e.name!r}: value {value} implies an integer type")
        if e.kcfg_type == "bool":
            value = int(bool(value))
        bits = e.size * 8
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if e.signed else (0, (1 << bits) - 1)
        if e.signed and value > hi and value < (1 << bits):
            value -= 1 << bits  # a large number written as the unsigned pattern
        if not lo <= value <= hi:
            raise _fail(self.where, f"extern (kcfg) {e.name!r}: value {value} does not fit in {e.size} bytes")
        self.data[e.data_off:e.data_off + e.size] = (value & ((1 << bits) - 1)).to_bytes(e.size, "little")

    def set_tristate(self, e: Extern, letter: str) -> None:
        if e.kcfg_type == "bool":
            if letter == "m":
                raise _fail(self.where, f"extern (kcfg) {e.name!r}: value 'm' implies tristate or char type")
            self.data[e.data_off] = int(letter == "y")
        elif e.kcfg_type == "tristate":
            self.data[e.data_off:e.data_off + e.size] = TRISTATE[letter].to_bytes(e.size, "little")
        elif e.kcfg_type == "char":
            self.data[e.data_off] = ord(letter)
        else:
            raise _fail(self.where, f"extern (kcfg) {e.name!r}: value {letter!r} implies bool, tristate or char type")

    def set_string(self, e: Extern, quoted: str) -> None:
        if e.kcfg_type != "char_array":
            raise _fail(self.where, f"extern (kcfg) {e.name!r}: a string value needs a char array")
        if len(quoted) < 2 or not quoted.endswith('"'):
            raise _fail(self.where, f"extern (kcfg) {e.name!r}: invalid string {quoted}")
        raw = quoted[1:-1].encode()
        if len(raw) >= e.size:
            self.notes.append(f"extern (kcfg) {e.name!r}: string {quoted} truncated to {e.size - 1} bytes")
            raw = raw[:e.size - 1]
        self.data[e.data_off:e.data_off + e.size] = raw + b"\0" * (e.size - len(raw))


def _parse_config(text: str, kcfg: dict[str, Extern], data: _KconfigData, done: set[str], source: str) -> None:
    for line in text.splitlines():
        if not line.startswith("CONFIG_"):
            continue  # comments, "# CONFIG_X is not set"
        name, sep, value = line.partition("=")
        if not sep or not value:
            raise _fail(data.where, f"{source}: cannot parse {line!r}")
        e = kcfg.get(name)
        if e is None or name in done:
            continue
        if value in ("y", "n", "m"):
            data.set_tristate(e, value)
        elif value.startswith('"'):
            data.set_string(e, value)
        else:
            try:
                number = int(value, 0)
            except ValueError:
                raise _fail(data.where, f"extern (kcfg) {name!r}: value {value!r} isn't a valid integer") from None
            if e.kcfg_type not in ("int", "char"):
                raise _fail(data.where, f"extern (kcfg) {name!r}: value {value!r} implies integer type")
            data.set_num(e, number)
        done.add(name)


def _kallsyms(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    ambiguous: set[str] = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        addr, name = int(parts[0], 16), parts[2]
        if name in out and out[name] != addr:
            ambiguous.add(name)
        out.setdefault(name, addr)
    for name in ambiguous:
        out[name] = -1
    return out


def resolve(externs: list[Extern], btf, kernel_btf, sources: ExternSources, *, where: str,
            notes: list[str]) -> tuple[list[Resolved], bytes]:
    """Each extern's value (``bpf_object__resolve_externs``) and the .kconfig map's bytes."""
    release = sources.release or os.uname().release
    data = _KconfigData(externs, where, notes)
    kcfg = {e.name: e for e in externs if e.section == KCONFIG_SEC}
    done: set[str] = set()
    for e in kcfg.values():
        if e.name.startswith("CONFIG_"):
            continue
        if e.name == "LINUX_KERNEL_VERSION":
            version = kernel_version(release)
            if not version:
                raise _fail(where, f"extern (kcfg) {e.name!r}: cannot read a version from release {release!r}")
            data.set_num(e, version)
        elif e.name == "LINUX_HAS_BPF_COOKIE":
            data.set_num(e, int(_kernel_has(kernel_btf, "BPF_FUNC_get_attach_cookie", "enum_value")))
        elif e.name == "LINUX_HAS_SYSCALL_WRAPPER":
            # libbpf answers by creating a kprobe on __x64_sys_bpf: without kprobes, 0
            data.set_num(e, int(_kernel_has(kernel_btf, SYSCALL_WRAPPED, "func") and _kprobes_available()))
        elif not e.name.startswith("LINUX_") or not e.weak:
            raise _fail(where, f"extern (kcfg) {e.name!r}: unrecognized virtual extern (libbpf fills only "
                               "CONFIG_* and LINUX_KERNEL_VERSION/LINUX_HAS_BPF_COOKIE/LINUX_HAS_SYSCALL_WRAPPER)")
        else:
            continue
        done.add(e.name)
    if any(n.startswith("CONFIG_") for n in kcfg):
        text, source = (sources.kconfig, "the given kconfig") if sources.kconfig is not None \
            else read_kconfig(release)
        if text is None:
            notes.append(f"kconfig externs: {source}; weak CONFIG_* externs are 0")
        else:
            _parse_config(text, kcfg, data, done, source)
    symbols = None
    out = []
    for index, e in enumerate(externs):
        if e.section == KCONFIG_SEC:
            out.append(Resolved(e, index, e.name in done))
            continue
        if e.typeless:
            if symbols is None:
                symbols = _kallsyms(sources.kallsyms if sources.kallsyms is not None else _read(KALLSYMS))
            addr = symbols.get(essential_name(e.name))
            if addr == -1:
                raise _fail(where, f"extern (ksym) {e.name!r}: resolution is ambiguous (several addresses)")
            out.append(Resolved(e, index, addr is not None, addr=addr or 0))
            continue
        out.append(_resolve_typed(e, index, btf, kernel_btf, where))
    for r in out:
        if not r.is_set and not r.extern.weak:
            what = "kcfg" if r.extern.section == KCONFIG_SEC else ("func ksym" if r.extern.is_func else "ksym")
            hint = ""
            if r.extern.name.startswith("CONFIG_"):
                hint = " (not set in the kernel configuration" + \
                    (", which is not readable)" if any("not readable" in n for n in notes) else ")")
            raise _fail(where, f"extern ({what}) {r.extern.name!r} (strong): not resolved{hint}")
        if not r.is_set:
            notes.append(f"extern {r.extern.name!r} (weak): not resolved, defaulting to zero")
    return out, bytes(data.data)


def _kprobes_available() -> bool:
    return any(os.path.exists(p) for p in KPROBE_INTERFACES)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _kernel_has(kernel_btf, name: str, kind: str) -> bool:
    if kernel_btf is None:
        return False
    if kind == "func":
        return bool(kernel_btf.find_all(name, "func"))
    for type_id in kernel_btf.find_all("bpf_func_id", "enum"):
        if any(v.name == name for v in kernel_btf.type(type_id).values):
            return True
    return False


def _resolve_typed(e: Extern, index: int, btf, kernel_btf, where: str) -> Resolved:
    name = essential_name(e.name)
    kind = "func" if e.is_func else "var"
    found = kernel_btf.find_all(name, kind) if kernel_btf is not None else []
    if not found:
        if e.weak:
            return Resolved(e, index, False)
        raise _fail(where, f"extern ({'func ksym' if e.is_func else 'var ksym'}) {e.name!r}: not found in kernel BTF")
    target = found[0]
    t = kernel_btf.type(target)
    if not types_are_compat(btf, e.type_id, kernel_btf, kernel_btf.resolve(t.type)):
        if e.is_func and e.weak:
            return Resolved(e, index, False)
        raise _fail(where, f"extern ({'func ksym' if e.is_func else 'var ksym'}) {e.name!r}: incompatible types, "
                           f"expected {btf.name_of(e.type_id)}, but the kernel has {kernel_btf.name_of(t.type)}")
    return Resolved(e, index, True, kernel_btf_id=target)


# -- the loader's side ------------------------------------------------------------------


def kconfig_map(obj_name: str, data: bytes) -> MapDef:
    """The read-only array map holding the .kconfig values, named as libbpf names it."""
    base = global_data_map(obj_name, KCONFIG_SEC, data)
    # libbpf keeps the whole section name and as much of the object's as fits
    prefix = obj_name.split(".")[0][:BPF_OBJ_NAME_LEN - 1 - len(KCONFIG_SEC)]
    return replace(base, name=prefix + KCONFIG_SEC, flags=BPF_F_MMAPABLE | BPF_F_RDONLY_PROG)


def patch(insns: list[Insn], at: int, resolved: Resolved, kconfig_map_index: int | None, *, where: str) -> None:
    """Rewrite the instruction at ``at`` that refers to the extern (libbpf's
    ``RELO_EXTERN_LD64`` / ``RELO_EXTERN_CALL``)."""
    insn = insns[at]
    e = resolved.extern
    if insn.code == op.BPF_JMP | op.BPF_CALL:
        if not e.is_func:
            raise _fail(where, f"call to extern {e.name!r}, which is not a function")
        if resolved.is_set:
            insns[at] = Insn(insn.code, 0, op.BPF_PSEUDO_KFUNC_CALL, 0, resolved.kernel_btf_id)
        else:
            insns[at] = Insn(insn.code, 0, 0, 0, POISON_KFUNC_BASE + resolved.index)
        return
    if not insn.is_ld_imm64:
        raise _fail(where, f"extern {e.name!r} used by an instruction that is neither a 64-bit load nor a call "
                           f"(opcode {insn.code:#04x})")
    if e.section == KCONFIG_SEC:
        lo = Insn(insn.code, insn.dst, op.BPF_PSEUDO_MAP_IDX_VALUE, 0, kconfig_map_index)
        insns[at], insns[at + 1] = lo, Insn(0, 0, 0, 0, e.data_off)
    elif resolved.is_set and resolved.kernel_btf_id:
        lo, hi = ld_imm64(insn.dst, resolved.kernel_btf_id, op.BPF_PSEUDO_BTF_ID)
        insns[at], insns[at + 1] = lo, Insn(0, 0, 0, 0, 0)  # second half: BTF object fd, 0 = vmlinux
    else:
        insns[at], insns[at + 1] = ld_imm64(insn.dst, resolved.addr, 0)


def kernel_ready_btf(btf, resolved: list[Resolved]):
    """The object's BTF as libbpf hands it to the kernel, which accepts no extern
    linkage: .kconfig variables become allocated at their offsets in the .kconfig
    map; .ksyms variables become allocated ints, its functions global, each entry of
    the .ksyms DATASEC an int slot (functions point at one ``dummy_ksym`` variable,
    whose name also fills unnamed parameters). Type ids do not change."""
    if btf is None or not resolved:
        return btf
    raw = bytearray(btf.raw)
    u32 = struct_u32
    sections = {btf.type(i).name: i for i in range(1, len(btf)) if btf.type(i).kind == "datasec"}
    by_name = {r.extern.name: r.extern for r in resolved}
    if KCONFIG_SEC in sections:
        sec_id = sections[KCONFIG_SEC]
        at = btf.record_offset(sec_id)
        end = max((e.data_off + e.size for e in by_name.values() if e.section == KCONFIG_SEC), default=0)
        u32.pack_into(raw, at + TYPE_SIZE_AT, end)
        placed = []
        for info in btf.type(sec_id).vars:
            e = by_name.get(btf.type(info.type).name)
            if e is not None:
                u32.pack_into(raw, btf.record_offset(info.type) + TYPE_EXTRA_AT, VAR_ALLOCATED)
                info = replace(info, offset=e.data_off, size=e.size)
            placed.append(info)
        # the kernel wants a DATASEC's variables in offset order (libbpf sorts them too)
        for k, info in enumerate(sorted(placed, key=lambda v: v.offset)):
            VARSECINFO.pack_into(raw, at + TYPE_EXTRA_AT + VARSECINFO.size * k, info.type, info.offset, info.size)
    int_id = next((i for i in range(1, len(btf)) if btf.type(i).kind == "int" and btf.type(i).int_bits == 32), 0)
    if KSYMS_SEC not in sections or not int_id:
        return Btf.from_bytes(bytes(raw), name=btf.name)
    sec_id = sections[KSYMS_SEC]
    at = btf.record_offset(sec_id)
    dummy_id = len(btf)  # appended below when a function needs it
    dummy_name = None
    entries = btf.type(sec_id).vars
    for k, info in enumerate(entries):
        t = btf.type(info.type)
        target = info.type
        if t.kind == "func":
            info_word = u32.unpack_from(raw, btf.record_offset(info.type) + TYPE_INFO_AT)[0]
            u32.pack_into(raw, btf.record_offset(info.type) + TYPE_INFO_AT, (info_word & ~VLEN_MASK) | FUNC_GLOBAL)
            dummy_name = dummy_name or _string_offset_appended(btf)
            proto = btf.type(t.type)
            for j, param in enumerate(proto.params):
                if param.type and not param.name:
                    u32.pack_into(raw, btf.record_offset(t.type) + TYPE_EXTRA_AT + 8 * j, dummy_name)
            target = dummy_id
        elif t.kind == "var":
            var_at = btf.record_offset(info.type)
            u32.pack_into(raw, var_at + TYPE_SIZE_AT, int_id)
            u32.pack_into(raw, var_at + TYPE_EXTRA_AT, VAR_ALLOCATED)
        VARSECINFO.pack_into(raw, at + TYPE_EXTRA_AT + VARSECINFO.size * k, target, KSYM_SLOT * k, KSYM_SLOT)
    u32.pack_into(raw, at + TYPE_SIZE_AT, KSYM_SLOT * len(entries))
    if dummy_name is not None:
        raw = _append_var(raw, dummy_name, int_id)
    return Btf.from_bytes(bytes(raw), name=btf.name)


def _string_offset_appended(btf) -> int:
    """Where ``dummy_ksym`` will sit: after the last string (``_append_var`` puts it there)."""
    magic, _v, _f, _hdr, _toff, _tlen, _soff, str_len = HEADER.unpack_from(btf.raw)
    return str_len


def _append_var(raw: bytearray, name_off: int, type_id: int) -> bytearray:
    """``raw`` with one more type (an allocated VAR) and the ``dummy_ksym`` string."""
    magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = HEADER.unpack_from(raw)
    types = raw[hdr_len + type_off:hdr_len + type_off + type_len]
    strings = raw[hdr_len + str_off:hdr_len + str_off + str_len]
    record = struct_var.pack(name_off, KIND_VAR << 24, type_id, VAR_ALLOCATED)
    name = DUMMY_KSYM.encode() + b"\0"
    header = HEADER.pack(magic, version, flags, hdr_len, 0, type_len + len(record),
                         type_len + len(record), str_len + len(name))
    return bytearray(header + bytes(raw[HEADER.size:hdr_len]) + types + record + strings + name)


def kconfig_values(resolved: list[Resolved], data: bytes) -> dict[str, int | str]:
    """The kconfig externs' values as the program sees them (for notebooks and tests)."""
    out: dict[str, int | str] = {}
    for r in resolved:
        e = r.extern
        if e.section != KCONFIG_SEC:
            continue
        raw = data[e.data_off:e.data_off + e.size]
        if e.kcfg_type == "char_array":
            out[e.name] = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
        else:
            out[e.name] = int.from_bytes(raw, "little", signed=e.signed)
    return out


__all__ = ["Extern", "ExternSources", "Resolved", "collect", "is_extern_symbol", "kconfig_map", "kconfig_values",
           "kernel_ready_btf", "kernel_version", "patch", "read_kconfig", "resolve"]

