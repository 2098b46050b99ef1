"""``JitResult``: the image, its layout and exception table, shown and run."""

from __future__ import annotations

import html
import signal
import time
from dataclasses import dataclass, field

import pandas as pd

from ...errors import JitError
from ...isa import opcodes as op
from ...isa.disasm import format_insn
from .compiler import TAIL_CALL, ExtableEntry, Layout


@dataclass
class JitResult:
    """A program translated to x86-64.

    ``image`` is the code of every function back to back (``function_starts``),
    ``insn_offsets[i]`` where BPF instruction ``i``'s code starts, ``extable``
    the PROBE_MEM loads' exception table, ``passes`` how many passes the layout
    took to converge (``pass_lens`` the image length after each)."""

    prog: object
    image: bytes
    layout: Layout
    passes: int
    pass_lens: tuple[int, ...]
    helper_ids: tuple[int, ...]
    stub_base: int
    vm: object = field(repr=False, default=None)
    stream: tuple = ()  # the program, then its tail-call targets (empty: the program alone)
    entries: tuple[int, ...] = (0,)  # where each program of the stream starts
    entry_offsets: tuple[int, ...] = (0,)  # where each program's code starts in the image
    prog_arrays: object = field(repr=False, default=None)
    region_checks: bool = False  # every load and store checked against the region table (unverified images)
    _native: object = field(repr=False, default=None)
    _emulator: object = field(repr=False, default=None)  # the Unicorn instance, made on the first such run

    @property
    def insns(self) -> tuple:
        """The instructions the image holds (the program's, then any tail-call targets')."""
        return self.stream or tuple(self.prog.insns)

    def program_of(self, i: int):
        """(program, its own index) of stream instruction ``i``."""
        k = max(k for k, start in enumerate(self.entries) if start <= i)
        prog = self.vm.programs[k] if self.vm is not None and k < len(self.vm.programs) else self.prog
        return prog, i - self.entries[k]

    @property
    def extable(self) -> tuple[ExtableEntry, ...]:
        return tuple(self.layout.extable)

    @property
    def insn_offsets(self) -> tuple[int, ...]:
        return tuple(self.layout.insn_offsets)

    @property
    def function_starts(self) -> tuple[int, ...]:
        return tuple(self.layout.function_starts)

    def __str__(self) -> str:
        targets = f" (+ {len(self.entries) - 1} tail-call target(s))" if len(self.entries) > 1 else ""
        return (f"{self.prog.name}{targets}: {len(self.insns)} BPF insns -> {len(self.image)} bytes of x86-64 in "
                f"{len(self.function_starts)} function(s), {self.passes} passes {list(self.pass_lens)}, "
                f"{len(self.extable)} exception table entries")

    # -- looking at it ------------------------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """One row per x86 instruction: the BPF instruction it belongs to, offset, bytes,
        disassembly (capstone) and the exception-table mark."""
        import capstone

        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        owner = self._owners()
        marks = {e.code_offset: e for e in self.extable}
        rows = []
        for ins in md.disasm(self.image, 0):
            k = owner.get(ins.address, (-1, ""))
            e = marks.get(ins.address)
            rows.append({"insn": k[0], "bpf": k[1], "offset": ins.address, "bytes": ins.bytes.hex(),
                         "x86": f"{ins.mnemonic} {ins.op_str}".strip(),
                         "extable": f"fixup +{e.fixup_offset:#x}: r{e.dst_reg} = 0" if e else ""})
        return pd.DataFrame(rows)

    def _owners(self) -> dict[int, tuple[int, str]]:
        """x86 offset → (BPF insn, its text) for each BPF instruction's code range;
        prologues belong to insn -1."""
        insns = self.insns
        owner = {}
        for i, start in enumerate(self.layout.insn_offsets):
            end = self.layout.insn_ends[i]
            if i > 0 and insns[i - 1].is_ld_imm64:
                continue
            nxt = insns[i + 1] if insns[i].is_ld_imm64 and i + 1 < len(insns) else None
            text = format_insn(insns[i], nxt)
            for off in range(start, end):
                owner[off] = (i, text)
        return owner

    def listing(self) -> str:
        """BPF instructions each followed by their x86 code; PROBE_MEM loads marked."""
        lines = []
        current = None
        for row in self.frame().itertuples():
            if row.insn != current:
                current = row.insn
                if row.insn in self.entries[1:]:
                    lines.append(f"; --- tail-call target {self.program_of(row.insn)[0].name} ---")
                lines.append("; prologue" if row.insn < 0 else f"; {row.insn}: {row.bpf}")
            mark = f"    <- extable: {row.extable}" if row.extable else ""
            lines.append(f"  {row.offset:5x}: {row.bytes:<24} {row.x86}{mark}")
        if self.extable:
            lines.append("; exception table")
            lines.extend(f";   {e}" for e in self.extable)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = []
        current = None
        for row in self.frame().itertuples():
            head = ""
            if row.insn != current:
                current = row.insn
                head = "prologue" if row.insn < 0 else f"{row.insn}: {row.bpf}"
            style = ' style="background:#fff3cd"' if row.extable else ""
            rows.append(f"<tr{style}><td><code>{html.escape(head)}</code></td><td>{row.offset:#06x}</td>"
                        f"<td><code>{row.bytes}</code></td><td><code>{html.escape(row.x86)}</code></td>"
                        f"<td>{html.escape(row.extable)}</td></tr>")
        return (f"<div><b>{html.escape(str(self))}</b><table><tr><th>BPF</th><th>offset</th><th>bytes</th>"
                f"<th>x86-64</th><th>exception table</th></tr>{''.join(rows)}</table></div>")

    # -- running it ---------------------------------------------------------------------------
    def run(self, ctx=None, *, packet: bytes | None = None, engine: str = "native", r1: int | None = None,
            r2: int | None = None, repeat: int = 1):
        """Run on the VM's memory: ``engine="native"`` (this CPU, the fault handler) or
        ``"unicorn"`` (emulated); ``repeat`` times on the same memory, as ``Vm.run``.
        Returns the VM's ``RunResult`` (``seconds``: all the runs)."""
        from . import execution

        if engine not in ("native", "unicorn"):
            raise JitError(f"unknown engine {engine!r}: 'native' or 'unicorn'")
        vm = self.vm
        ctx_addr, r2v, stack_top, mark = execution.prepare(vm, ctx, packet, r1, r2)
        try:
            if engine == "unicorn":
                from .emulate import image_base, run_emulated

                self._link(image_base(self))
                runs = [run_emulated(self, ctx_addr, r2v, stack_top) for _ in range(max(repeat, 1))]
                runs[-1].seconds = sum(r.seconds for r in runs)
                result = runs[-1]
            else:
                self._link(self._native_image().base + self._native_image().layout.image)
                result = self._run_native(ctx_addr, r2v, stack_top, max(repeat, 1))
            result.packet = vm.packet_after(mark)
            return result
        finally:
            vm.memory.release(mark)

    def _link(self, image_base: int) -> None:
        """Tail-call targets' code addresses into the prog arrays, for this image's address."""
        if self.prog_arrays is not None:
            self.prog_arrays.link(image_base, lambda k: self.entry_offsets[k])

    def _native_image(self):
        from . import dispatch
        from .native import NativeImage

        if self._native is None:
            self._native = NativeImage(self.image, self.extable, self.helper_ids, dispatch.address())
        return self._native

    def run_unicorn(self, ctx=None, **kw):
        return self.run(ctx, engine="unicorn", **kw)

    def _run_native(self, ctx_addr: int, r2: int, stack_top: int, repeat: int = 1):
        from . import execution
        from .native import ArenaWindow

        vm = self.vm
        memory = vm.memory
        arena = memory.arena
        used = memory.used  # the rest of the arena is unallocated zeros
        view = ArenaWindow.ensure(len(arena))
        view[:used] = arena[:used]  # past used: pages no region has, PROT_NONE (never read)
        ArenaWindow.protect(memory)  # guard pages: the region table's, as the interpreter checks it
        session = execution.Session(vm, view[: len(arena)])
        self._native_image()
        context = session.native_context()
        start = time.perf_counter()
        r0, probe_faults, fault = self._native.call(ctx_addr, r2, stack_top, repeat, context.ctypes.data,
                                                    stack_bounds=execution.stack_bounds(vm),
                                                    regions=execution.region_table(self))
        session.collect_native_status()
        seconds = time.perf_counter() - start
        if fault is not None:
            arena[:used] = view[:used]
            raise JitError(self._fault_message(*fault))
        execution.check_slack(vm, view, self)
        execution.check_frame_linkage(vm, view, stack_top, self._native.base + self._native.layout.returns_to)
        arena[:used] = view[:used]
        return execution.result(vm, session, r0, probe_faults, seconds)

    def insn_at(self, offset: int) -> int | None:
        for i, (start, end) in enumerate(zip(self.layout.insn_offsets, self.layout.insn_ends, strict=False)):
            if start <= offset < end:
                return i
        return None

    def _fault_message(self, offset: int, addr: int, signo: int = signal.SIGSEGV) -> str:
        where = self.prog.where or self.prog.name
        from .runtime import REGION_CHECK

        what = {signal.SIGFPE: "arithmetic fault (SIGFPE)", signal.SIGILL: "illegal instruction (SIGILL)"}.get(
            signo, f"invalid memory access at address {addr:#x}")
        i = self.insn_at(offset)
        if i is None:
            return f"{where}: the image took an {what} at +{offset:#x}, outside any BPF instruction"
        prog, i = self.program_of(i)
        where = prog.where or prog.name
        insns = prog.insns
        nxt = insns[i + 1] if insns[i].is_ld_imm64 else None
        why = ("not a PROBE_MEM load, so no exception table entry" if signo in (signal.SIGSEGV, signal.SIGBUS)
               else "the code is wrong here: a BPF program cannot trap")
        if signo == REGION_CHECK:
            why = "in no region: the image's region check"
        if insns[i].code == op.BPF_JMP | op.BPF_CALL and insns[i].src == 0 and insns[i].imm == TAIL_CALL:
            why = "bpf_tail_call's r2 is not a prog array"
        return f"{where}: insn {i} ({format_insn(insns[i], nxt)}): {what} (x86 +{offset:#x}; {why})"
