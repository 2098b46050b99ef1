"""``Vm(prog).run(...)``: a program executed on VM memory, with maps, helpers and events."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import VmError
from ..isa import opcodes as op
from ..isa.disasm import format_insn
from ..program import MAP_TYPES
from . import interp
from .memory import READ, WRITE, KernelObject, KernelObjects, Memory

STATUS = {interp.FAULT: "invalid memory access", interp.BAD_OPCODE: "unknown opcode",
          interp.BAD_HELPER: "unknown helper", interp.STEP_LIMIT: "step limit reached",
          interp.CALL_DEPTH: "call stack too deep", interp.BAD_JUMP: "jump out of the program",
          interp.BAD_MAP: "not a map"}
TAIL_CALL = 12  # the helper id of bpf_tail_call
SK_BUFF_SIZE = 192  # struct __sk_buff
XDP_MD_SIZE = 24


@dataclass
class RunResult:
    """``r0``, instructions executed, PROBE_MEM faults, events (a DataFrame), printk lines."""

    r0: int
    insns: int
    probe_mem_faults: int
    events: pd.DataFrame
    printk: list[str] = field(default_factory=list)
    samples: list[tuple[int, bytes]] = field(default_factory=list)
    lost: int = 0
    seconds: float = 0.0
    btf: object = field(default=None, repr=False)  # the program's BTF, for events_as
    packet: bytes | None = None  # the packet after the run (a packet program's output), when run() made it

    def events_as(self, type_ref, btf=None) -> pd.DataFrame:
        """The events with each sample's head decoded as BTF struct ``type_ref`` (a name or
        an id in ``btf``, default the program's): one column per member (enums named), then
        ``packet`` (the bytes after the struct: what ``bpf_skb_output`` appends)."""
        from ..frames.records import columns, decode_samples, struct_dtype

        btf = btf if btf is not None else self.btf
        if btf is None:
            raise VmError("events_as needs a BTF (the program has none): pass btf=")
        dtype = struct_dtype(btf, type_ref)
        raws = [raw for _, raw in self.samples]
        for k, raw in enumerate(raws):
            if len(raw) < dtype.itemsize:
                raise VmError(f"event {k} holds {len(raw)} bytes, fewer than the {dtype.itemsize} of {type_ref}")
        frame = pd.DataFrame(columns(decode_samples(raws, dtype), btf, type_ref))
        # the sample's own cpu and time, unless the record has fields of those names
        for name, values in (("time_ns", list(self.events["time_ns"])), ("cpu", [c for c, _ in self.samples])):
            if name not in frame.columns:
                frame.insert(0, name, values)
        frame["packet"] = [raw[dtype.itemsize:] for raw in raws]
        return frame

    def __str__(self) -> str:
        return (f"r0={self.r0:#x} after {self.insns} insns, {len(self.samples)} events, "
                f"{self.probe_mem_faults} PROBE_MEM faults")


ATOMIC_OPS = frozenset({op.BPF_ADD, op.BPF_OR, op.BPF_AND, op.BPF_XOR}
                       | {a | op.BPF_FETCH for a in (op.BPF_ADD, op.BPF_OR, op.BPF_AND, op.BPF_XOR)}
                       | {op.BPF_XCHG, op.BPF_CMPXCHG})
LOAD_MODES = frozenset({op.BPF_MEM, op.BPF_MEMSX})  # PROBE_MEM is a mark (probe_mem), never an opcode here
MOVSX_WIDTHS = {op.BPF_ALU: (0, 8, 16), op.BPF_ALU64: (0, 8, 16, 32)}
SIZE_BITS = {op.BPF_B: 8, op.BPF_H: 16, op.BPF_W: 32, op.BPF_DW: 64}
RESOLVED_PSEUDO = (0, op.BPF_PSEUDO_MAP_IDX, op.BPF_PSEUDO_MAP_IDX_VALUE)


def engine_refusal(insn) -> str | None:
    """Why no bpfnb engine runs ``insn`` (an opcode the kernel knows, in a shape the
    engines would run differently or not at all), else None. The interpreter, the
    native JIT and Unicorn all refuse through here (a JIT run makes a ``Vm``)."""
    cls, mode, size = insn.code & 0x07, insn.code & 0xE0, insn.code & 0x18
    if cls == op.BPF_STX and mode == op.BPF_ATOMIC:
        if size not in (op.BPF_W, op.BPF_DW):
            return f"atomic operation {insn.imm:#x} on {SIZE_BITS[size]}-bit memory is not run by bpfnb's engines"
        if insn.imm not in ATOMIC_OPS:
            return (f"unknown atomic operation imm={insn.imm:#x} (known: "
                    f"{', '.join(f'{a:#x}' for a in sorted(ATOMIC_OPS))})")
    if cls == op.BPF_LDX and mode not in LOAD_MODES:
        return f"load mode {mode:#x} is reserved"
    if cls in (op.BPF_ALU, op.BPF_ALU64) and insn.off:
        operation = insn.code & 0xF0
        if operation == op.BPF_MOV and insn.code & op.BPF_X and insn.off in MOVSX_WIDTHS[cls]:
            return None
        if operation in (op.BPF_DIV, op.BPF_MOD) and insn.off == 1:
            return None
        return f"reserved off={insn.off} of an ALU instruction"
    if insn.code == op.BPF_JMP | op.BPF_CALL:
        if insn.src == op.BPF_PSEUDO_KFUNC_CALL:
            return "kfunc calls are not run by bpfnb's engines"
        if insn.src not in (0, op.BPF_PSEUDO_CALL):
            return f"call with reserved src={insn.src}"
    if insn.is_ld_imm64 and insn.src not in RESOLVED_PSEUDO:
        return f"64-bit load of pseudo kind {insn.src} is not resolved by bpfnb's engines"
    return None


def _decode(insns):
    n = len(insns)
    code = np.fromiter((i.code for i in insns), dtype=np.int64, count=n)
    dst = np.fromiter((i.dst for i in insns), dtype=np.int64, count=n)
    src = np.fromiter((i.src for i in insns), dtype=np.int64, count=n)
    off = np.fromiter((i.off for i in insns), dtype=np.int64, count=n)
    imm = np.fromiter((i.imm for i in insns), dtype=np.int64, count=n)
    return code, dst, src, off, imm


class Vm:
    """An interpreter instance for ``prog``: its maps live as long as the Vm."""

    def __init__(self, prog, *, probe_mem=None, kernel_btf=None, max_steps: int = 10_000_000,
                 pid_tgid: int = (4242 << 32) | 4242, uid_gid: int = 0, seed: int = 1, tail_calls=None):
        """``tail_calls``: the prog arrays' contents, ``{map name or index: {slot: Program}}``;
        the programs come from the same object (they share its maps)."""
        self.prog = prog
        self.memory = Memory()
        self.kernel_btf = kernel_btf if kernel_btf is not None else getattr(prog, "kernel_btf", None)
        self.objects = KernelObjects(self.kernel_btf, self.memory) if self.kernel_btf is not None else None
        self.max_steps = max_steps
        self._validate(prog)
        # the program, then every tail-call target, in one instruction stream
        self.programs = [prog]
        self.starts = [0]
        for slots in (tail_calls or {}).values():
            for target in slots.values():
                if all(target is not p for p in self.programs):
                    self._check_target(target)
                    self.starts.append(self.starts[-1] + len(self.programs[-1].insns))
                    self.programs.append(target)
        self.insns = tuple(i for p in self.programs for i in p.insns)
        self.probe = np.zeros(len(self.insns), dtype=np.int64)
        for k, (p, start) in enumerate(zip(self.programs, self.starts, strict=True)):
            marks = probe_mem if k == 0 and probe_mem is not None else (getattr(p, "probe_mem", None) or ())
            for slot in marks:
                self.probe[start + slot] = 1
        self.decoded = _decode(self.insns)
        self.stack_base = self.memory.add("stack", interp.STACK_REGION, kind="stack", trailer=interp.FRAME_LINKAGE)
        self.frame_top = self.stack_base + interp.STACK_REGION  # the main function's r10, on every engine
        self._maps(getattr(prog, "maps", ()))
        for map_ref, slots in (tail_calls or {}).items():
            self._fill_prog_array(map_ref, slots)
        self.state = np.zeros(8, dtype=np.int64)
        self.state[4], self.state[5], self.state[6] = seed or 1, pid_tgid, uid_gid
        self.skb_layout = np.array(self._skb_layout(), dtype=np.int64)

    @staticmethod
    def _validate(prog) -> None:
        """What the compiled loop does not check: registers, opcodes, 64-bit loads' second
        halves, and every shape an engine cannot run the same way as the others (unknown
        atomic operations, kfunc calls, unresolved pseudo loads …), even where the verifier
        let it through."""
        from ..isa.valid import unknown_opcode

        where = prog.where or prog.name
        insns = prog.insns
        for i, insn in enumerate(insns):
            if i > 0 and insns[i - 1].is_ld_imm64:
                continue
            for reg in (insn.dst, insn.src) if insn.code & 0x07 not in (0x00,) or insn.is_ld_imm64 else (insn.dst,):
                if reg > 10 and not (insn.is_ld_imm64 and reg == insn.src):
                    raise VmError(f"{where}: insn {i}: R{reg} is invalid")
            message = unknown_opcode(insn.code)
            if message:
                raise VmError(f"{where}: insn {i}: {message}")
            message = engine_refusal(insn)
            if message:
                raise VmError(f"{where}: insn {i} ({format_insn(insn)}): {message}")
            if insn.is_ld_imm64 and i + 1 >= len(insns):
                raise VmError(f"{where}: insn {i}: incomplete 64-bit load at the end of the program")
            if insn.is_ld_imm64:
                second = insns[i + 1]
                if second.code or second.dst or second.src or second.off:
                    raise VmError(f"{where}: insn {i + 1}: invalid second half of a 64-bit load")
                maps = len(getattr(prog, "maps", ()))
                if insn.src in (op.BPF_PSEUDO_MAP_IDX, op.BPF_PSEUDO_MAP_IDX_VALUE) and not 0 <= insn.imm < maps:
                    raise VmError(f"{where}: insn {i}: map index {insn.imm} out of range (the program has "
                                  f"{maps} maps)")
            if insn.code & 0x07 in (0x04, 0x07) and insn.code & 0xF0 == 0xD0 and insn.imm not in (16, 32, 64):
                raise VmError(f"{where}: insn {i}: invalid endian width {insn.imm}")

    def _check_target(self, target) -> None:
        where = self.prog.where or self.prog.name
        if [m.name for m in getattr(target, "maps", ())] != [m.name for m in getattr(self.prog, "maps", ())]:
            raise VmError(f"{where}: tail-call target {target.name} is not from the same object (its maps differ)")
        self._validate(target)
        if target.type != self.prog.type:
            raise VmError(f"{where}: tail-call target {target.name} is a {target.type} program, not a "
                          f"{self.prog.type} one (the kernel refuses mixed prog arrays)")

    def _fill_prog_array(self, map_ref, slots) -> None:
        """Each slot holds the target's first instruction in the stream, plus one (0: empty)."""
        maps = list(getattr(self.prog, "maps", ()))
        names = [m.name for m in maps]
        index = map_ref if isinstance(map_ref, int) else (names.index(map_ref) if map_ref in names else -1)
        where = self.prog.where or self.prog.name
        if not 0 <= index < len(maps) or maps[index].type != "prog_array":
            raise VmError(f"{where}: no prog array {map_ref!r} (prog arrays: "
                          f"{', '.join(m.name for m in maps if m.type == 'prog_array') or 'none'})")
        for slot, target in slots.items():
            if not 0 <= slot < maps[index].max_entries:
                raise VmError(f"{where}: {maps[index].name} has {maps[index].max_entries} slots, not {slot + 1}")
            k = next(k for k, p in enumerate(self.programs) if p is target)
            self.memory.write(int(self.map_addr[index]) + 8 * slot, (self.starts[k] + 1).to_bytes(8, "little"))

    def locate(self, pc: int):
        """(program, its instruction index) of stream position ``pc``."""
        k = max(k for k, start in enumerate(self.starts) if start <= pc)
        return self.programs[k], pc - self.starts[k]

    def _maps(self, maps) -> None:
        kinds, ks, vs, mx, addrs = [], [], [], [], []
        for m in maps:
            kind = MAP_TYPES.get(m.type, 0)
            round8 = lambda x: (x + 7) // 8 * 8  # noqa: E731
            if m.initial is not None:
                size = len(m.initial)
                perm = READ if m.flags & (1 << 7) else READ | WRITE
                addr = self.memory.add(m.name, m.initial, perm=READ | WRITE if perm & WRITE else READ, kind="global")
            elif kind in (1, 5, 9):
                size = max(m.max_entries, 1) * (8 + round8(m.key_size) + round8(m.value_size))
                addr = self.memory.add(m.name, size, kind="map")
            elif kind in (2, 6):
                size = max(m.max_entries, 1) * round8(m.value_size)
                addr = self.memory.add(m.name, size, kind="map")
            elif kind == 3:  # prog array: one 8-byte slot per entry (see _fill_prog_array)
                addr = self.memory.add(m.name, 8 * max(m.max_entries, 1), perm=READ, kind="map")
            else:
                addr = 0
            kinds.append(kind)
            ks.append(m.key_size)
            vs.append(m.value_size)
            mx.append(max(m.max_entries, 1) if m.initial is None else 1)
            addrs.append(addr)
        self.map_kind = np.array(kinds, dtype=np.int64)
        self.map_ks = np.array(ks, dtype=np.int64)
        self.map_vs = np.array(vs, dtype=np.int64)
        self.map_max = np.array(mx, dtype=np.int64)
        self.map_addr = np.array(addrs, dtype=np.int64)

    def _skb_layout(self) -> tuple[int, int]:
        """Offsets of ``len`` and ``data`` in the kernel's struct sk_buff (for skb_output)."""
        btf = self.kernel_btf
        if btf is None:
            return (-1, -1)
        try:
            sk = btf.find("sk_buff", "struct")
            offsets = []
            for name in ("len", "data"):
                from .memory import _members_flat

                offsets.append(next(base + m.bit_offset // 8 for m, base in _members_flat(btf, sk) if m.name == name))
            return tuple(offsets)
        except Exception:
            return (-1, -1)

    # -- contexts -----------------------------------------------------------------------------
    def skb(self, **fields) -> KernelObject:
        """A synthetic ``struct sk_buff`` (needs a kernel BTF)."""
        if self.objects is None:
            raise VmError("synthetic kernel objects need a kernel BTF (Vm(prog, kernel_btf=...))")
        return self.objects.new("struct sk_buff", **fields)

    def new(self, type_name: str, **fields) -> KernelObject:
        if self.objects is None:
            raise VmError("synthetic kernel objects need a kernel BTF (Vm(prog, kernel_btf=...))")
        return self.objects.new(type_name, **fields)

    def _context(self, ctx, packet: bytes | None) -> int:
        t = self.prog.type
        if t in ("socket_filter", "sched_cls", "sched_act", "cgroup_skb"):
            frame = packet or b""
            protocol = int.from_bytes(frame[12:14], "little") if len(frame) >= 14 else 0
            # as BPF_PROG_TEST_RUN builds the skb: the Ethernet header is pulled
            # (eth_type_trans) except for tc programs, which see layer 2
            pkt = frame if t in ("sched_cls", "sched_act") or len(frame) < 14 else frame[14:]
            data = self.memory.add("packet", pkt, kind="packet")
            skb = bytearray(SK_BUFF_SIZE)
            fields = {"len": len(pkt), "data": data, "data_end": data + len(pkt), "data_meta": data,
                      "protocol": protocol, "ifindex": 1, "ingress_ifindex": 1}
            if isinstance(ctx, dict):
                fields.update(ctx)
            from ..verifier.ctx import SK_BUFF_FIELDS

            for name, value in fields.items():
                start, size = SK_BUFF_FIELDS[name]
                skb[start:start + min(size, 8)] = int(value).to_bytes(min(size, 8), "little", signed=value < 0)
            return self.memory.add("ctx (__sk_buff)", bytes(skb), kind="ctx")
        if t == "xdp":
            pkt = packet or b""
            data = self.memory.add("packet", pkt, kind="packet")
            md = (data.to_bytes(4, "little") + (data + len(pkt)).to_bytes(4, "little") + data.to_bytes(4, "little")
                  + (1).to_bytes(4, "little") + bytes(8))
            return self.memory.add("ctx (xdp_md)", md, kind="ctx")
        if t in ("tracing", "raw_tracepoint", "raw_tracepoint_writable", "kprobe", "tracepoint"):
            args = list(ctx or [])
            raw = b"".join((int(a) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little") for a in args) or bytes(8)
            return self.memory.add("ctx (args)", raw.ljust(96, b"\0"), perm=READ, kind="ctx")
        if isinstance(ctx, (bytes, bytearray)):
            return self.memory.add("ctx", bytes(ctx), kind="ctx")
        return self.memory.add("ctx", bytes(64), kind="ctx")

    # -- running ---------------------------------------------------------------------------------
    def run(self, ctx=None, *, packet: bytes | None = None, repeat: int = 1, r1: int | None = None,
            r2: int | None = None) -> RunResult:
        """Run the program ``repeat`` times on the same memory; the last run's result.
        The ctx and packet made for the run are freed after it (the packet's bytes are
        in the result), so memory does not grow run after run."""
        mark = self.memory.mark()
        try:
            ctx_addr = self._context(ctx, packet) if r1 is None else r1
            result = self._run(ctx_addr, r2, repeat)
            result.packet = self.packet_after(mark)
            return result
        finally:
            self.memory.release(mark)

    def packet_after(self, mark) -> bytes | None:
        """The bytes of the packet made since ``mark``, if one was."""
        made = self.memory.added_since(mark, "packet")
        return self.memory.read(made[0].base, made[0].size) if made and made[0].size else (b"" if made else None)

    def _run(self, ctx_addr: int, r2: int | None, repeat: int) -> RunResult:
        out = np.zeros(1 << 20, dtype=np.uint8)
        meta = np.zeros((4096, 8), dtype=np.int64)
        base, size, perm = self.memory.tables()
        words = interp.word_views(self.memory.arena)
        start = time.perf_counter()
        total = 0
        for _ in range(repeat):
            regs = np.zeros(11, dtype=np.uint64)
            regs[1] = ctx_addr
            if r2 is not None:
                regs[2] = r2
            regs[10] = self.frame_top
            status, pc, addr, steps, faults = interp.run(
                *self.decoded, self.memory.arena, *words, base, size, perm, self.probe, regs, self.max_steps,
                self.map_kind, self.map_ks, self.map_vs, self.map_max, self.map_addr, out, meta, self.state,
                self.skb_layout)
            total += steps
            if status != interp.OK:
                raise VmError(self._error(status, pc, addr))
        seconds = time.perf_counter() - start
        return self._result(int(regs[0]), steps, faults, out, meta, seconds, total)

    def _error(self, status: int, pc: int, addr: int) -> str:
        prog, local = self.locate(pc) if 0 <= pc < len(self.insns) else (self.prog, pc)
        where = prog.where or prog.name
        text = ""
        if 0 <= pc < len(self.insns):
            insn = prog.insns[local]
            nxt = prog.insns[local + 1] if insn.is_ld_imm64 and local + 1 < len(prog.insns) else None
            text = f" ({format_insn(insn, nxt)})"
        detail = f" at address {int(addr):#x}" if status == interp.FAULT else ""
        if status == interp.BAD_HELPER:
            detail = f": helper #{prog.insns[local].imm} is not implemented by the VM"
        if status == interp.BAD_MAP and prog.insns[local].code == op.BPF_JMP | op.BPF_CALL \
                and prog.insns[local].imm == TAIL_CALL:
            detail = f": bpf_tail_call's r2 ({int(addr):#x}) is not a prog array"
        return f"{where}: insn {local}{text}: {STATUS.get(status, status)}{detail}"

    def _result(self, r0, steps, faults, out, meta, seconds, total) -> RunResult:
        from ..perf import SimRing

        rows = int(self.state[2])
        ring = SimRing(pages=64)
        samples, printk, times = [], [], []
        for k in range(rows):
            kind, start, length = int(meta[k, 0]), int(meta[k, 1]), int(meta[k, 2])
            data = out[start:start + length].tobytes()
            if kind == interp.OUT_PRINTK:
                fmt = data.split(b"\0", 1)[0].decode("utf-8", "replace")
                args = tuple(int(x) for x in meta[k, 4:7])
                try:
                    printk.append(_printf(fmt, args))
                except Exception:
                    printk.append(fmt)
            elif ring.output(data):
                times.append(int(meta[k, 3]))  # the VM's clock (bpf_ktime_get_ns) when emitted
        records = ring.read()
        samples = [(0, raw) for raw in records.samples]
        events = pd.DataFrame({"cpu": [0] * len(samples), "time_ns": times[:len(samples)],
                               "size": [len(r) for _, r in samples], "raw": [r for _, r in samples]})
        self.state[1] = self.state[2] = 0
        return RunResult(r0, steps, faults, events, printk, samples, records.lost + int(self.state[3]), seconds,
                         getattr(self.prog, "btf", None))


def _printf(fmt: str, args: tuple[int, ...]) -> str:
    import re

    values = iter(args)

    def one(match):
        spec = match.group(0)
        if spec == "%%":
            return "%"
        value = next(values, 0)
        conv = spec[-1]
        if conv in "di":
            value = value - (1 << 64) if value >> 63 else value
            return str(value)
        if conv == "u":
            return str(value)
        if conv in "xX":
            return format(value, conv)
        if conv == "p":
            return hex(value)
        return spec

    return re.sub(r"%%|%[-0-9.]*(?:ll|l|h|hh)?[diuxXps]", one, fmt)
