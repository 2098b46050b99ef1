"""``bpfnb.jit.x86_64``: verified BPF programs as x86-64 code, the way Linux's JIT
makes it, shown (listing, exception table) and run natively or under Unicorn."""

from __future__ import annotations

from ...errors import JitError
from ...isa import opcodes as op
from . import fixups, runtime
from .compiler import Compiler, ExtableEntry, ProbeGuard, Target
from .result import JitResult


def _user_guard() -> ProbeGuard:
    from ...vm.memory import BASE

    return ProbeGuard(low=BASE - 1, high=1 << 47)


def _has_bmi2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return " bmi2" in line
    except OSError:
        pass
    return False


def jit(prog, *, probe_mem=None, stack_depths=None, verify: bool = True, bmi2: bool | None = None,
        vm=None) -> JitResult:
    """Translate ``prog`` (verified first, for its PROBE_MEM loads and stack depths,
    unless ``verify=False`` or both are given)."""
    from ...vm import Vm

    where = getattr(prog, "where", None) or prog.name
    if verify and (probe_mem is None or stack_depths is None):
        from ...verifier import verify as run_verifier

        checked = run_verifier(prog, log_level=0)
        if not checked.ok:
            raise JitError(f"{where}: the verifier rejected the program (insn {checked.error_insn}: "
                           f"{checked.error}); only verified programs are translated")
        probe_mem = checked.probe_mem if probe_mem is None else probe_mem
        stack_depths = checked.stack_depths if stack_depths is None else stack_depths
    probe_mem = frozenset(probe_mem or getattr(prog, "probe_mem", None) or ())
    vm = vm if vm is not None else Vm(prog, probe_mem=probe_mem)
    helper_ids = sorted({i.imm for i in prog.insns
                         if i.code == op.BPF_JMP | op.BPF_CALL and i.src == 0 and i.imm != 12})
    _, stubs = runtime.build(b"", helper_ids)
    from ...vm.interp import MAP_HANDLE

    def map_value(kind: int, imm: int, next_imm: int) -> int:
        if kind == op.BPF_PSEUDO_MAP_IDX:
            return MAP_HANDLE + imm
        if kind == op.BPF_PSEUDO_MAP_IDX_VALUE:
            return int(vm.map_addr[imm]) + (next_imm & 0xFFFFFFFF)
        raise JitError(f"{where}: 64-bit load of pseudo kind {kind} is not resolved by bpfnb")

    target = Target(base=stubs.image, helper_address=lambda h: stubs.thunks[h], guard=_user_guard(),
                    bmi2=_has_bmi2() if bmi2 is None else bmi2, map_value=map_value)
    patched = fixups.patch(prog.insns)
    compiler = Compiler(patched.insns, probe_mem={patched.last[i] for i in probe_mem}, stack_depths=stack_depths,
                        target=target, where=where)
    image, layout = compiler.run()
    layout = _in_program_terms(layout, patched)
    return JitResult(prog=prog, image=image, layout=layout, passes=compiler.passes,
                     pass_lens=tuple(compiler.pass_lens), helper_ids=tuple(helper_ids), stub_base=stubs.image,
                     vm=vm)


def _in_program_terms(layout, patched):
    """The layout indexed by the program's instructions (not the guarded sequences')."""
    from dataclasses import replace

    if len(patched.insns) == len(patched.first):
        return layout
    n = len(patched.first)
    offsets, ends = [0] * n, [0] * n
    for new, i in enumerate(patched.origin):
        if new == patched.first[i]:
            offsets[i] = layout.insn_offsets[new]
        ends[i] = layout.insn_ends[new]
    extable = [replace(e, insn=patched.origin[e.insn]) for e in layout.extable]
    return replace(layout, insn_offsets=offsets, insn_ends=ends, extable=extable)


def _raw(insns, mem: bytes):
    from ...program import Program
    from ...verifier.verify import check_structure
    from ...vm import Vm

    prog = Program("conformance", tuple(insns))
    vm = Vm(prog, max_steps=1_000_000)  # validates registers, opcodes and 64-bit loads
    problem = check_structure(prog)
    if problem:
        raise JitError(f"conformance: {problem}")
    addr = vm.memory.add("mem", mem, kind="mem") if mem else 0
    return jit(prog, verify=False, probe_mem=(), stack_depths=None, vm=vm), addr


def execute_raw(insns, mem: bytes = b"") -> int:
    """The conformance engine ``jit``: natively, r1 = ``mem``'s address, r2 its length."""
    result, addr = _raw(insns, mem)
    return result.run(r1=addr, r2=len(mem)).r0


def execute_raw_unicorn(insns, mem: bytes = b"") -> int:
    """The conformance engine ``jit-unicorn``: the same image under the Unicorn emulator."""
    result, addr = _raw(insns, mem)
    return result.run(r1=addr, r2=len(mem), engine="unicorn").r0


__all__ = ["Compiler", "ExtableEntry", "JitError", "JitResult", "ProbeGuard", "Target", "execute_raw",
           "execute_raw_unicorn", "jit"]
