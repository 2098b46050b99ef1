"""Our JIT beside the kernel's, instruction by instruction.

The kernel JITs the program its verifier rewrote (the *xlated* program: context
accesses converted, dead code removed, helper calls as offsets from
``__bpf_call_base``). So the fair comparison translates that same xlated
program with bpfnb's compiler placed where the kernel placed its image (the
function addresses, the helpers, the return thunk), then aligns the two x86
instruction streams (difflib over instruction bytes) and marks, per BPF
instruction, whether our bytes equal the kernel's.

Two things are masked, and said so: the 64-bit immediates of map loads (the
kernel's dump replaces the map's address with its id) and the prologue (its
size depends on choices that are not the instruction's).
"""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass

import pandas as pd

from ...errors import JitError
from ...isa import opcodes as op
from ...isa.disasm import format_insn
from . import _has_bmi2
from .compiler import Compiler, Target

KALLSYMS = "/proc/kallsyms"


def kernel_symbol(name: str) -> int:
    """A kernel symbol's address (root sees real addresses)."""
    try:
        with open(KALLSYMS) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == name:
                    address = int(parts[0], 16)
                    if address:
                        return address
    except OSError as exc:
        raise JitError(f"{KALLSYMS}: {exc.strerror}") from None
    raise JitError(f"{KALLSYMS}: no address for {name} (addresses are hidden from non-root users)")


@dataclass(frozen=True)
class InsnComparison:
    """One BPF instruction of the xlated program: our x86 bytes and the kernel's."""

    insn: int
    bpf: str
    ours: tuple[bytes, ...]
    kernel: tuple[bytes, ...]
    equal: bool
    masked: bool  # a map load whose 64-bit immediate was not compared


@dataclass
class KernelComparison:
    """bpfnb's translation of the kernel's xlated program next to the kernel's image."""

    name: str
    xlated: tuple
    ours: bytes
    kernel: bytes
    rows: tuple[InsnComparison, ...]

    @property
    def compared(self) -> int:
        return len(self.rows)

    @property
    def equal(self) -> int:
        return sum(r.equal for r in self.rows)

    @property
    def share(self) -> float:
        """The share of BPF instructions whose x86 bytes equal the kernel's."""
        return self.equal / self.compared if self.rows else 0.0

    def __str__(self) -> str:
        return (f"{self.name}: {self.equal} of {self.compared} BPF instructions byte-equal to the kernel's JIT "
                f"({self.share:.0%}); {len(self.ours)} bytes ours, {len(self.kernel)} the kernel's")

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"insn": r.insn, "bpf": r.bpf, "ours": " ".join(b.hex() for b in r.ours),
                              "kernel": " ".join(b.hex() for b in r.kernel), "equal": r.equal,
                              "masked": r.masked} for r in self.rows])

    def diff(self) -> str:
        """Text: each BPF instruction, '=' or '≠', then our bytes over the kernel's where they differ."""
        lines = [str(self)]
        for r in self.rows:
            mark = "=" if r.equal else "≠"
            lines.append(f"{mark} {r.insn:4}: {r.bpf}" + ("   (map address masked)" if r.masked else ""))
            if not r.equal:
                lines.append(f"         ours:   {' '.join(b.hex() for b in r.ours) or '-'}")
                lines.append(f"         kernel: {' '.join(b.hex() for b in r.kernel) or '-'}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = []
        for r in self.rows:
            style = "" if r.equal else ' style="background:#fde2e1"'
            rows.append(f"<tr{style}><td>{r.insn}</td><td><code>{html.escape(r.bpf)}</code></td>"
                        f"<td><code>{' '.join(b.hex() for b in r.ours)}</code></td>"
                        f"<td><code>{' '.join(b.hex() for b in r.kernel)}</code></td>"
                        f"<td>{'=' if r.equal else '≠'}{' (masked)' if r.masked else ''}</td></tr>")
        return (f"<div><b>{html.escape(str(self))}</b><table><tr><th>insn</th><th>BPF (xlated)</th><th>bpfnb</th>"
                f"<th>kernel</th><th></th></tr>{''.join(rows)}</table></div>")


def _in_xlated(original, xlated, indices) -> dict[int, int]:
    """Original instruction -> its xlated index, for ``indices`` that survive the kernel's
    rewrites (found by aligning the program with its xlated form)."""
    def key(insn):
        return (insn.code, insn.dst, insn.src, insn.off, insn.imm)

    matcher = difflib.SequenceMatcher(None, [key(i) for i in original], [key(i) for i in xlated], autojunk=False)
    mapped = {}
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            mapped[a + k] = b + k
    return {i: mapped[i] for i in indices if i in mapped}


def _as_loaded(xlated) -> tuple:
    """The xlated program with bpf-to-bpf calls back in their loaded form: after its
    JIT the kernel keeps the callee's function index in ``imm`` and the relative
    target in ``off``."""
    from ...isa import Insn

    out = []
    for insn in xlated:
        if insn.code == op.BPF_JMP | op.BPF_CALL and insn.src == op.BPF_PSEUDO_CALL:
            insn = Insn(insn.code, insn.dst, insn.src, 0, insn.off)
        out.append(insn)
    return tuple(out)


# where the kernel allocated a program's private stack (a per-CPU offset, masked like map addresses)
PRIVATE_STACK_PLACEHOLDER = 0x6000_0000_0000
PRIVATE_STACK_MIN = 64  # BPF_PRIV_STACK_MIN_SIZE
PRIVATE_STACK_TYPES = ("kprobe", "tracepoint", "perf_event", "raw_tracepoint", "tracing")


def uses_private_stack(prog, stack_depth: int) -> bool:
    """Whether the kernel (6.13 and later, on x86-64) runs the program on a per-CPU
    private stack: tracing-like programs (not iterators) with 64 bytes of stack or
    more, so that nested runs cannot overflow the kernel stack."""
    if prog.type not in PRIVATE_STACK_TYPES or stack_depth < PRIVATE_STACK_MIN:
        return False
    return not (prog.type == "tracing" and (prog.section or "").startswith("iter"))


def _tail_call_layout():
    from ...btf import kernel_btf
    from .tailcalls import layout_from_btf

    return layout_from_btf(kernel_btf())


def _optional_symbol(name: str) -> int | None:
    try:
        return kernel_symbol(name)
    except JitError:
        return None


def _this_cpu_off(jited: bytes) -> int | None:
    """The address of the per-CPU ``this_cpu_off`` (not in kallsyms): the absolute
    operand of the image's ``add reg, gs:[disp32]``, if it has one."""
    for i in range(len(jited) - 8):
        if jited[i] == 0x65 and jited[i + 1] in (0x48, 0x4C) and jited[i + 2] == 0x03 and \
                jited[i + 3] & 0xC7 == 0x04 and jited[i + 4] == 0x25:
            return (1 << 64) + int.from_bytes(jited[i + 5:i + 9], "little", signed=True)
    return None


def _map_placeholder(kind: int, imm: int, next_imm: int) -> int:
    """A map address never fits 32 bits (the kernel's maps live in the direct map or
    vmalloc space), so the load is a 10-byte movabs; its immediate is masked."""
    return 0xFFFF_8880_0000_0000 | (imm & 0xFFFF) << 12 | (next_imm & 0xFFF)


def _return_thunk(jited: bytes, address: int) -> int | None:
    """Where the kernel's epilogue jumps instead of ``ret`` (a return thunk), if it
    does: the target of the ``jmp rel32`` right after the first ``leave``."""
    code = _disasm(jited, 0)
    for (_, a), (off, b) in zip(code, code[1:], strict=False):
        if a == b"\xc9" and len(b) == 5 and b[0] == 0xE9:
            return address + off + 5 + int.from_bytes(b[1:], "little", signed=True)
    return None


def _disasm(code: bytes, base: int):
    import capstone

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    return [(ins.address - base, bytes(ins.bytes)) for ins in md.disasm(code, base)]


def _key(raw: bytes) -> bytes:
    """Alignment key: the bytes, with a movabs's immediate masked."""
    if len(raw) == 10 and raw[0] in (0x48, 0x49) and 0xB8 <= raw[1] <= 0xBF:
        return raw[:2]
    return raw


def _direct_of(prog, direct_tail_calls) -> dict:
    from .tailcalls import has_tail_calls

    if direct_tail_calls is not None or not has_tail_calls(prog.insns):
        return dict(direct_tail_calls or {})
    from ...verifier import verify

    return verify(prog, log_level=0, trace=False).direct_tail_calls


def compare_with_kernel(prog, *, probe_mem=None, stack_depths=None, image=None,
                        direct_tail_calls=None) -> KernelComparison:
    """Load ``prog`` into the running kernel, read its xlated program and JIT image,
    translate the xlated program with bpfnb's compiler at the kernel's addresses, and
    compare per BPF instruction. ``image``: a ``ProgramImage`` already read."""
    from ...kernel import available
    from ...verifier import verify

    where = prog.where or prog.name
    if probe_mem is None or stack_depths is None:
        checked = verify(prog, log_level=0, trace=False)
        if not checked.ok:
            raise JitError(f"{where}: bpfnb's verifier rejected the program: {checked.error}")
        probe_mem = checked.probe_mem if probe_mem is None else probe_mem
        stack_depths = checked.stack_depths if stack_depths is None else stack_depths
    if image is None:
        why = available()
        if why:
            raise JitError(f"{where}: the kernel's JIT image is not available here: {why}")
        from ...kernel import load

        with load(prog, log_level=0) as loaded:
            if loaded.error:
                raise JitError(f"{where}: the kernel rejected the program: {loaded.error}")
            image = loaded.image()
    if not image.jited:
        raise JitError(f"{where}: the kernel did not JIT the program (net.core.bpf_jit_enable=0?)")
    xlated = _as_loaded(image.xlated)
    call_base = kernel_symbol("__bpf_call_base")
    thunk = _return_thunk(image.jited[:image.func_lens[0]], image.ksyms[0])
    private = PRIVATE_STACK_PLACEHOLDER if uses_private_stack(prog, max(stack_depths or (0,))) else None
    target = Target(base=image.ksyms[0], function_bases=tuple(image.ksyms), return_thunk=thunk,
                    helper_address=lambda imm: call_base + imm, map_value=_map_placeholder,
                    bmi2=_has_bmi2(),  # the kernel's JIT asks the same CPU
                    this_cpu_off=_this_cpu_off(image.jited), private_stack=private,
                    tail_calls=_tail_call_layout(), indirect_thunk=_optional_symbol("__x86_indirect_thunk_rcx"))
    direct = _direct_of(prog, direct_tail_calls)
    moved = _in_xlated(prog.insns, xlated, set(probe_mem) | set(direct))
    compiler = Compiler(xlated, probe_mem={moved[i] for i in probe_mem if i in moved}, stack_depths=stack_depths,
                        target=target, where=where,
                        direct_tail_calls={moved[i]: key for i, key in direct.items() if i in moved})
    ours, layout = compiler.run()
    return KernelComparison(prog.name, xlated, ours, bytes(image.jited),
                            tuple(_rows(xlated, ours, layout, image.jited)))


def _owner_at(layout, xlated, offset: int, before):
    for i, (start, end) in enumerate(zip(layout.insn_offsets, layout.insn_ends, strict=True)):
        if start == end == offset and not (i and xlated[i - 1].is_ld_imm64):
            return i
    return before


def _rows(xlated, ours: bytes, layout, jited: bytes):
    mine = _disasm(ours, 0)
    theirs = _disasm(jited, 0)
    owner = {}
    for i, (start, end) in enumerate(zip(layout.insn_offsets, layout.insn_ends, strict=True)):
        for off, _ in mine:
            if start <= off < end:
                owner[off] = i
    matcher = difflib.SequenceMatcher(None, [_key(b) for _, b in mine], [_key(b) for _, b in theirs], autojunk=False)
    kernel_of: dict[int, list[bytes]] = {}
    same: dict[int, bool] = {}
    masked: dict[int, bool] = {}
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        owners = [owner.get(mine[a][0]) for a in range(a0, a1)]
        if tag == "equal":
            for k in range(a1 - a0):
                i = owners[k]
                if i is None:
                    continue
                kernel_of.setdefault(i, []).append(theirs[b0 + k][1])
                mask = _key(mine[a0 + k][1]) != mine[a0 + k][1] and xlated[i].is_ld_imm64 and xlated[i].src != 0
                masked[i] = masked.get(i, False) or mask
                if mine[a0 + k][1] != theirs[b0 + k][1] and not mask:
                    same[i] = False
        else:
            first = next((i for i in owners if i is not None), None)
            if a0 == a1:  # kernel code where we have none: an empty instruction there, or the one before
                first = _owner_at(layout, xlated, mine[a0][0] if a0 < len(mine) else len(ours),
                                  owner.get(mine[a0 - 1][0]) if a0 else None)
            for i in owners + [first]:
                if i is not None:
                    same[i] = False
            if first is not None:
                kernel_of.setdefault(first, []).extend(b for _, b in theirs[b0:b1])
    for i, insn in enumerate(xlated):
        if i > 0 and xlated[i - 1].is_ld_imm64:
            continue
        code = tuple(b for off, b in mine if owner.get(off) == i)
        nxt = xlated[i + 1] if insn.is_ld_imm64 and i + 1 < len(xlated) else None
        text = format_insn(insn, nxt)
        if insn.code == op.BPF_JMP | op.BPF_CALL and insn.src == 0:
            text = f"(85) call helper at __bpf_call_base{insn.imm:+d}"
        yield InsnComparison(i, text, code, tuple(kernel_of.get(i, ())), same.get(i, True) and bool(code) == bool(
            kernel_of.get(i)), masked.get(i, False))


__all__ = ["InsnComparison", "KernelComparison", "compare_with_kernel", "kernel_symbol"]
