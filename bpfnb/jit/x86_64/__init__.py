"""``bpfnb.jit.x86_64``: verified BPF programs as x86-64 code, the way Linux's JIT
makes it, shown (listing, exception table) and run natively or under Unicorn."""

from __future__ import annotations

from ...errors import JitError, VmError
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


def _checked(prog, where: str):
    from ...verifier import verify as run_verifier

    checked = run_verifier(prog, log_level=0, trace=False)
    if not checked.ok:
        raise JitError(f"{where}: the verifier rejected the program (insn {checked.error_insn}: "
                       f"{checked.error}); only verified programs are translated")
    return checked


def _tail_call_layout(vm):
    from .tailcalls import OWN_LAYOUT, layout_from_btf

    layout = layout_from_btf(vm.kernel_btf)
    if layout == OWN_LAYOUT:
        try:
            from ...btf import kernel_btf

            layout = layout_from_btf(kernel_btf())
        except Exception:
            pass
    return layout


def jit(prog, *, probe_mem=None, stack_depths=None, verify: bool = True, bmi2: bool | None = None,
        vm=None, direct_tail_calls=None, region_checks: bool | None = None) -> JitResult:
    """Translate ``prog`` (verified first, for its PROBE_MEM loads, stack depths and
    constant tail calls, unless ``verify=False`` or they are given). With a ``vm`` that
    has tail-call targets (``Vm(prog, tail_calls=...)``), the targets go into the same
    image; a tail call through a constant slot is a direct jump, as in the kernel.

    An unverified image (``verify=False``) checks every load and store against the run's
    region table, as the interpreter does (a call before each, shown in the listing):
    nothing proved its accesses, and guard pages alone work per page. A verified
    image is the kernel's, guarded per page. ``region_checks`` overrides the choice
    (``False`` on an unverified program: what a wrongly accepted one would run as)."""
    region_checks = not verify if region_checks is None else region_checks
    from ...vm import Vm
    from .tailcalls import ProgArrays, has_tail_calls

    where = getattr(prog, "where", None) or prog.name
    needs_keys = direct_tail_calls is None and has_tail_calls(prog.insns)
    if verify and (probe_mem is None or stack_depths is None or needs_keys):
        checked = _checked(prog, where)
        probe_mem = checked.probe_mem if probe_mem is None else probe_mem
        stack_depths = checked.stack_depths if stack_depths is None else stack_depths
        direct_tail_calls = checked.direct_tail_calls if direct_tail_calls is None else direct_tail_calls
    all_direct = dict(direct_tail_calls or {})
    probe_mem = frozenset(probe_mem or getattr(prog, "probe_mem", None) or ())
    if vm is None:
        try:
            vm = Vm(prog, probe_mem=probe_mem)  # every engine refuses through Vm what none can run
        except VmError as exc:
            raise JitError(str(exc)) from None
    # the program, then its tail-call targets: one stream, one image
    stream, entries = list(prog.insns), [0]
    all_probe, all_depths = set(probe_mem), list(stack_depths) if stack_depths is not None else None
    for target, start in zip(vm.programs[1:], vm.starts[1:], strict=True):
        if verify:
            checked = _checked(target, target.where or target.name)
            marks, depths = checked.probe_mem, checked.stack_depths
            all_direct.update({start + i: key for i, key in checked.direct_tail_calls.items()})
        else:
            marks, depths = getattr(target, "probe_mem", None) or (), None
        stream += target.insns
        entries.append(start)
        all_probe |= {start + i for i in marks}
        all_depths = None if all_depths is None or depths is None else all_depths + list(depths)
    helper_ids = sorted({i.imm for i in stream
                         if i.code == op.BPF_JMP | op.BPF_CALL and i.src == 0 and i.imm != 12})
    _, stubs = runtime.build(b"", helper_ids)
    from ...vm.interp import MAP_HANDLE

    layout_tc = _tail_call_layout(vm) if has_tail_calls(stream) else None
    arrays = ProgArrays(vm, layout_tc) if layout_tc is not None else None

    def map_value(kind: int, imm: int, next_imm: int) -> int:
        if kind == op.BPF_PSEUDO_MAP_IDX:
            array = arrays.address(imm) if arrays is not None else None
            return array if array is not None else MAP_HANDLE + imm
        if kind == op.BPF_PSEUDO_MAP_IDX_VALUE:
            return int(vm.map_addr[imm]) + (next_imm & 0xFFFFFFFF)
        raise JitError(f"{where}: 64-bit load of pseudo kind {kind} is not resolved by bpfnb")

    target = Target(base=stubs.image, helper_address=lambda h: stubs.thunks[h], guard=_user_guard(),
                    bmi2=_has_bmi2() if bmi2 is None else bmi2, map_value=map_value, tail_calls=layout_tc,
                    tail_call_target=arrays.target if arrays is not None else None, zero_r0_after_tail_call=True,
                    region_check=(lambda size, need: stubs.checks[(size, need)]) if region_checks else None)
    patched = fixups.patch(tuple(stream))
    compiler = Compiler(patched.insns, probe_mem={patched.last[i] for i in all_probe}, stack_depths=all_depths,
                        target=target, where=where, entries=[patched.first[e] for e in entries],
                        direct_tail_calls={patched.last[i]: key for i, key in all_direct.items()})
    image, layout = compiler.run()
    entry_offsets = tuple(layout.function_starts[compiler.starts.index(patched.first[e])] for e in entries)
    layout = _in_program_terms(layout, patched)
    return JitResult(prog=prog, image=image, layout=layout, passes=compiler.passes,
                     pass_lens=tuple(compiler.pass_lens), helper_ids=tuple(helper_ids), stub_base=stubs.image,
                     vm=vm, stream=tuple(stream), entries=tuple(entries), entry_offsets=entry_offsets,
                     prog_arrays=arrays, region_checks=region_checks)


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


def load_raw(insns, mem: bytes = b""):
    """The conformance engine ``jit``: the program checked and translated; returns
    ``run() -> r0`` running the image natively, r1 = ``mem``'s address, r2 its length."""
    result, addr = _raw(insns, mem)
    return lambda: result.run(r1=addr, r2=len(mem)).r0


def load_raw_unicorn(insns, mem: bytes = b""):
    """The conformance engine ``jit-unicorn``: the same image under the Unicorn emulator."""
    result, addr = _raw(insns, mem)
    return lambda: result.run(r1=addr, r2=len(mem), engine="unicorn").r0


def execute_raw(insns, mem: bytes = b"") -> int:
    """Load and run natively (see :func:`load_raw`): r0."""
    return load_raw(insns, mem)()


def execute_raw_unicorn(insns, mem: bytes = b"") -> int:
    """Load and run under Unicorn (see :func:`load_raw_unicorn`): r0."""
    return load_raw_unicorn(insns, mem)()


__all__ = ["Compiler", "ExtableEntry", "JitError", "JitResult", "ProbeGuard", "Target", "execute_raw",
           "execute_raw_unicorn", "jit", "load_raw", "load_raw_unicorn"]
