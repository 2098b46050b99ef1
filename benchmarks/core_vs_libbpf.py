"""CO-RE relocations: bpfnb's against libbpf's, instruction by instruction.

libbpf (the system's libbpf.so, as ``bpftool -d prog loadall OBJ DIR`` uses it) prints one debug line per
instruction it patches — ``prog 'P': relo #N: patched insn #I (LDX/ST/STX) off
A -> B``, ``(ALU/ALU64) imm``, ``(LDIMM64) imm64``, ``mem_sz``, and
``substituting insn #I w/ invalid insn`` for a poisoned one — numbering the
instruction inside its function P. ``compare(obj)`` loads the same object with
bpfnb and checks each of those instructions in our relocated programs.

    BPFNB_CORPUS=/work/scratch/corpora/libbpf-tools python -m benchmarks.core_vs_libbpf [--kernel]

Needs root and libbpf.so (Debian's libbpf1); the corpus is a directory of objects nobody here
wrote (see /work/scratch/corpora/README.txt), never committed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import sys
from dataclasses import dataclass, field

U32_MASK = 0xFFFFFFFF

_PATCH = re.compile(r"prog '([^']+)': relo #(\d+): patched insn #(\d+) \(([A-Z0-9/]+)\) (off|imm|imm64|mem_sz) "
                    r"(\d+) -> (\d+)")
_POISON = re.compile(r"prog '([^']+)': relo #(\d+): substituting insn #(\d+) w/ invalid insn")
_EXTERN = re.compile(r"extern \((kcfg|ksym|var ksym|func ksym)\) '([^']+)': (?:set to (.+)|resolved to (?:kernel )?\[(\d+)\])")
_EXTERN_SLOT = re.compile(r"extern \((kcfg|ksym)\) #(\d+): symbol \d+, (?:off (\d+), )?name (\S+)")
_UNRESOLVED = re.compile(r"extern '([^']+)' \(weak\): not resolved")
TRISTATE = {"n": 0, "y": 1, "m": 2}
_FAILED = re.compile(r"prog '([^']+)': relo #(\d+): (failed to .*|unexpected insn .*)")


@dataclass
class Patch:
    """What libbpf did to one instruction of function ``func``."""

    func: str
    insn: int
    what: str  # off / imm / imm64 / poison (mem_sz is kept in ``size``)
    value: int = 0
    size: int | None = None


@dataclass
class Comparison:
    path: str
    patches: int = 0
    agree: int = 0
    differ: list[str] = field(default_factory=list)
    libbpf_refused: list[str] = field(default_factory=list)
    bpfnb_refused: str | None = None
    poisoned: int = 0
    externs: int = 0  # facts libbpf printed about externs: order, .kconfig offsets, values
    externs_agree: int = 0


def _libbpf():
    lib = ctypes.CDLL(ctypes.util.find_library("bpf") or "libbpf.so.1")
    lib.bpf_object__open_file.restype = ctypes.c_void_p
    lib.bpf_object__open_file.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    lib.bpf_object__next_map.restype = ctypes.c_void_p
    lib.bpf_object__next_map.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.bpf_map__max_entries.argtypes = [ctypes.c_void_p]
    lib.bpf_map__type.argtypes = [ctypes.c_void_p]
    lib.bpf_map__set_max_entries.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.bpf_map__value_size.argtypes = [ctypes.c_void_p]
    lib.bpf_map__set_value_size.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.bpf_object__load.argtypes = [ctypes.c_void_p]
    lib.bpf_object__close.argtypes = [ctypes.c_void_p]
    lib.libbpf_set_print.restype = ctypes.c_void_p
    return lib


_PRINT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
LOG_LINE_MAX = 4096
MAP_PERF_EVENT_ARRAY, MAP_STACK_TRACE, MAP_RINGBUF = 4, 7, 27
RINGBUF_DEFAULT = 1 << 16
STACK_VALUE_DEFAULT = 8 * 127  # bytes: PERF_MAX_STACK_DEPTH frames  # a power-of-two number of pages, for maps userspace would size


def libbpf_log(path: str) -> str:
    """libbpf's debug output while it opens and loads every program of ``path``
    (through the system's libbpf.so: maps the tool sizes at run time, left at 0
    entries in the object, get a small size first, so loading gets past map
    creation to relocation, as the tool's own loader would)."""
    lib = _libbpf()
    libc = ctypes.CDLL(None)
    lines: list[str] = []

    def sink(_level, fmt, args):
        buf = ctypes.create_string_buffer(LOG_LINE_MAX)
        libc.vsnprintf(buf, ctypes.c_size_t(LOG_LINE_MAX), fmt, ctypes.c_void_p(args))
        lines.append(buf.value.decode("utf-8", "replace"))
        return 0

    callback = _PRINT(sink)
    previous = lib.libbpf_set_print(callback)
    try:
        obj = lib.bpf_object__open_file(os.fsencode(path), None)
        if not obj or obj > (1 << 64) - 4096:  # libbpf returns NULL or an error pointer
            return "".join(lines)
        m = lib.bpf_object__next_map(obj, None)
        while m:
            if lib.bpf_map__max_entries(m) == 0 and lib.bpf_map__type(m) != MAP_PERF_EVENT_ARRAY:
                lib.bpf_map__set_max_entries(m, RINGBUF_DEFAULT if lib.bpf_map__type(m) == MAP_RINGBUF else 1)
            if lib.bpf_map__type(m) == MAP_STACK_TRACE and lib.bpf_map__value_size(m) == 0:  # the tool sets the depth
                lib.bpf_map__set_value_size(m, STACK_VALUE_DEFAULT)
            m = lib.bpf_object__next_map(obj, m)
        lib.bpf_object__load(obj)
        lib.bpf_object__close(obj)
    finally:
        lib.libbpf_set_print(ctypes.c_void_p(previous))
    return "".join(lines)


def libbpf_patches(log: str) -> tuple[dict[tuple[str, int], Patch], list[str]]:
    """(func, insn) → what libbpf wrote there, and the relocations it refused."""
    out: dict[tuple[str, int], Patch] = {}
    for m in _PATCH.finditer(log):
        func, insn, what, old, new = m.group(1), int(m.group(3)), m.group(5), int(m.group(6)), int(m.group(7))
        del old
        patch = out.setdefault((func, insn), Patch(func, insn, what, new))
        if what == "mem_sz":
            patch.size = new
        else:
            patch.what, patch.value = what, new
    first: dict[tuple[str, int], int] = {}  # a poisoned ld_imm64 prints both halves, the second first
    for m in _POISON.finditer(log):
        key = (m.group(1), int(m.group(2)))
        first[key] = min(first.get(key, int(m.group(3))), int(m.group(3)))
    for (func, _relo), insn in first.items():
        out[(func, insn)] = Patch(func, insn, "poison")
    return out, [m.group(0) for m in _FAILED.finditer(log)]


def _kcfg_value(text: str, mine):
    """A kconfig value as libbpf prints it (0x.., y/n/m, "str", decimal), as the program reads it."""
    if text.startswith('"'):  # libbpf prints the whole string, the map holds what fits
        return text[1:-1].encode()[:mine.extern.size - 1].decode() if mine else text[1:-1]
    if text in TRISTATE:
        kind = mine.extern.kcfg_type if mine else "bool"
        return ord(text) if kind == "char" else (int(text == "y") if kind == "bool" else TRISTATE[text])
    return int(text, 0)


def compare(path: str, log: str | None = None) -> Comparison:
    import bpfnb
    from bpfnb.errors import BpfnbError
    from bpfnb.isa import imm64

    result = Comparison(path)
    log_text = libbpf_log(path) if log is None else log
    patches, refused = libbpf_patches(log_text)
    result.patches, result.libbpf_refused = len(patches), refused
    try:
        obj = bpfnb.load(path)
    except BpfnbError as exc:
        result.bpfnb_refused = str(exc)
        return result
    ours_externs = {r.extern.name: r for r in obj.externs}
    for m in _EXTERN.finditer(log_text):
        kind, name, text, btf_id = m.groups()
        result.externs += 1
        mine = ours_externs.get(name)
        if kind == "kcfg":
            want, got = _kcfg_value(text.strip(), mine), obj.kconfig.get(name)
        elif text is not None:
            want, got = int(text, 16), mine.addr if mine else None
        else:
            want, got = int(btf_id), mine.kernel_btf_id if mine else None
        if want == got:
            result.externs_agree += 1
        else:
            result.differ.append(f"extern {name}: libbpf {want}, bpfnb {got}")
    for m in _EXTERN_SLOT.finditer(log_text):  # libbpf's order of externs and .kconfig layout
        kind, index, off, name = m.groups()
        result.externs += 1
        mine = ours_externs.get(name)
        want = (int(index), int(off) if off else None)
        got = (mine.index, mine.extern.data_off if kind == "kcfg" else None) if mine else None
        if want == got:
            result.externs_agree += 1
        else:
            result.differ.append(f"extern {name}: libbpf #{index} at {off}, bpfnb {got}")
    for m in _UNRESOLVED.finditer(log_text):
        result.externs += 1
        mine = ours_externs.get(m.group(1))
        if mine is not None and not mine.is_set:
            result.externs_agree += 1
        else:
            result.differ.append(f"extern {m.group(1)}: libbpf left it unresolved, bpfnb did not")
    ours: dict[tuple[str, int], tuple] = {}
    for prog in obj:
        for r in prog.core_relocs:
            ours.setdefault((r.func, r.func_insn), (prog, r))
    for key, patch in sorted(patches.items()):
        if key not in ours:
            result.differ.append(f"{key[0]} insn {key[1]}: libbpf {patch.what} {patch.value}, bpfnb no relocation")
            continue
        prog, r = ours[key]
        insn = prog.insns[r.insn]
        if patch.what == "poison":
            same = r.poisoned
            got = "poisoned" if r.poisoned else f"{r.new_value}"
        elif r.poisoned:
            same, got = False, "poisoned"
        elif patch.what == "off":
            same, got = insn.off == patch.value, insn.off
        elif patch.what == "imm":
            same, got = insn.imm & U32_MASK == patch.value & U32_MASK, insn.imm
        else:
            got = imm64(prog.insns, r.insn)
            same = got == patch.value
        if patch.size is not None and not r.poisoned:
            have = r.mem_size[1] if r.mem_size else None
            same = same and have == patch.size
        result.poisoned += patch.what == "poison"
        if same:
            result.agree += 1
        else:
            result.differ.append(f"{key[0]} insn {key[1]} ({r.spec}): libbpf {patch.what} {patch.value}"
                                 f"{f' size {patch.size}' if patch.size else ''}, bpfnb {got}")
    return result


def kernel_verdicts(paths: list[str]) -> None:
    """The running kernel's verdicts on bpfnb's relocated programs (a poisoned relocation
    reached would show as "invalid func unknown#195896080")."""
    from collections import Counter

    import bpfnb
    from bpfnb.errors import BpfnbError
    from bpfnb.kernel.compare import kernel_verdict

    verdicts: Counter = Counter()
    for path in paths:
        try:
            obj = bpfnb.load(path)
        except BpfnbError:
            continue
        for prog in obj:
            k = kernel_verdict(prog)
            verdict = k.get("verdict") or "unavailable"
            if verdict == "reject" and "errno" in k:
                verdict = "refused"  # before the verifier: a map it cannot create, fentry's EPERM
            verdicts[verdict] += 1
            if verdict == "reject":
                print(f"    kernel rejects {os.path.basename(path)}:{prog.name}: {k.get('error')}")
    print(f"kernel verdicts on bpfnb's relocated programs: {dict(verdicts)} "
          "(refused: maps the tool sizes at run time, fentry EPERM)")


def main(argv: list[str] | None = None) -> int:
    corpus = os.environ.get("BPFNB_CORPUS")
    if not corpus or not os.path.isdir(corpus):
        print("set BPFNB_CORPUS to a directory of BPF objects (e.g. /work/scratch/corpora/libbpf-tools)")
        return 0
    paths = sorted(os.path.join(corpus, n) for n in os.listdir(corpus) if n.endswith((".o", ".elf")))
    total = agree = poisoned = ext = ext_agree = 0
    for path in paths:
        c = compare(path)
        total += c.patches
        agree += c.agree
        poisoned += c.poisoned
        ext += c.externs
        ext_agree += c.externs_agree
        status = f"{c.agree}/{c.patches} instructions agree" + \
            (f", {c.externs_agree}/{c.externs} extern facts" if c.externs else "")
        if c.bpfnb_refused:
            status += f"; bpfnb refused: {c.bpfnb_refused}"
        if c.libbpf_refused:
            status += f"; libbpf refused: {c.libbpf_refused[0]}"
        print(f"{os.path.basename(path)}: {status}")
        for line in c.differ[:5]:
            print(f"    {line}")
    if "--kernel" in (argv or []):
        kernel_verdicts(paths)
    print(f"total: {agree}/{total} CO-RE-relocated instructions as libbpf wrote them "
          f"({poisoned} poisoned by both), {ext_agree}/{ext} extern facts (order, offsets, values) as libbpf's, "
          f"over {len(paths)} objects")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
