"""Live packet drops: bpfnb's tracer on ``kfree_skb``, read into a DataFrame.

``watch_drops(seconds=5, reason="NO_SOCKET", proto="udp", port=53)`` loads the
shipped tracer (``bpfnb/data/drops.bpf.o``: no compiler needed) with its
read-only filters set before load — so filtering happens in the kernel, as
pwru does — attaches it to the ``kfree_skb`` tracepoint, reads the perf rings
of all CPUs until the time is up (or Ctrl-C), detaches, and returns the drops
frame (``bpfnb.frames.drops``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import pandas as pd

from .errors import BpfnbError
from .examples import TRACER

PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58}
RODATA = ".rodata"


@dataclass(frozen=True)
class DropFilters:
    """Kept in the tracer's read-only globals; 0 means "any"."""

    reason: int = 0
    ifindex: int = 0
    proto: int = 0
    port: int = 0
    snap_len: int = 64


def resolve_filters(*, reason=None, ifindex=None, proto=None, port=None, snap_len=64, kernel_btf=None) -> DropFilters:
    """Filters from names as a user writes them (``reason="NO_SOCKET"``, ``proto="udp"``)."""
    code = 0
    if reason not in (None, "", 0):
        if isinstance(reason, int) or str(reason).isdigit():
            code = int(reason)
        else:
            from .btf import kernel_btf as default_btf
            from .frames.drops import reason_names

            names = {n: v for v, n in reason_names(kernel_btf or default_btf()).items()}
            key = str(reason).upper().removeprefix("SKB_DROP_REASON_")
            if key not in names:
                close = ", ".join(sorted(n for n in names if key[:3] in n)[:8]) or "see enum skb_drop_reason"
                raise BpfnbError(f"unknown drop reason {reason!r} (for example: {close})")
            code = names[key]
    number = 0
    if proto not in (None, "", 0):
        number = PROTOCOLS.get(str(proto).lower()) if not str(proto).isdigit() else int(proto)
        if number is None:
            raise BpfnbError(f"unknown protocol {proto!r} (known: {', '.join(PROTOCOLS)} or a number)")
    if port is not None and not 0 <= int(port) < 65536:
        raise BpfnbError(f"port {port} is not in 0..65535")
    if not 0 < snap_len <= 4096:
        raise BpfnbError(f"snap_len {snap_len} is not in 1..4096")
    return DropFilters(code, int(ifindex or 0), number, int(port or 0), snap_len)


def tracer_program(filters: DropFilters):
    """The tracer with ``filters`` written into its ``.rodata`` before load."""
    from .elf import load

    obj = load(TRACER)
    prog = obj.program("trace_drops")
    btf = obj.btf
    datasec = btf.type(btf.find(RODATA, "datasec"))
    offsets = {btf.type(v.type).name: v.offset for v in datasec.vars}
    values = {"filter_reason": filters.reason, "filter_ifindex": filters.ifindex, "filter_proto": filters.proto,
              "filter_port": filters.port, "snap_len": filters.snap_len}
    maps = list(prog.maps)
    for k, m in enumerate(maps):
        if m.section == RODATA:
            data = bytearray(m.initial)
            for name, value in values.items():
                data[offsets[name]:offsets[name] + 4] = int(value).to_bytes(4, "little")
            maps[k] = replace(m, initial=bytes(data))
    return replace(prog, maps=tuple(maps)), obj


def watch_drops(seconds: float = 5.0, *, reason=None, ifindex=None, proto=None, port=None, snap_len: int = 64,
                on_progress: Callable[[Counter, int, float], None] | None = None,
                attached: threading.Event | None = None, stop: threading.Event | None = None) -> pd.DataFrame:
    """Trace drops for ``seconds`` (or until Ctrl-C, or ``stop`` is set) and return them as a
    DataFrame. ``attached`` is set once the tracer is on ``kfree_skb`` and its rings are
    open: traffic sent after it is traced (the time counts from there)."""
    from .btf import kernel_btf
    from .frames.drops import drops, reason_names
    from .kernel import attach, available, load
    from .perf import PerfBuffer

    why = available()
    if why:
        raise BpfnbError(f"live drops need the running kernel: {why}")
    filters = resolve_filters(reason=reason, ifindex=ifindex, proto=proto, port=port, snap_len=snap_len)
    prog, obj = tracer_program(filters)
    names = reason_names(kernel_btf())
    samples: list[tuple[int, bytes]] = []
    counts: Counter = Counter()
    reason_at = obj.btf.members(obj.btf.find("drop_event", "struct"))
    reason_off = next(m.bit_offset // 8 for m in reason_at if m.name == "reason")
    with load(prog, log_level=0) as loaded:
        if not loaded.ok:
            raise BpfnbError(f"the kernel rejected the drop tracer: {loaded.error}")
        with attach(loaded, prog), PerfBuffer(loaded.map("drops")) as rings:
            start = time.monotonic()
            if attached is not None:
                attached.set()
            try:
                while time.monotonic() - start < seconds and not (stop is not None and stop.is_set()):
                    rings.poll(min(0.25, max(0.0, seconds - (time.monotonic() - start))))
                    batch = rings.read()
                    samples += batch
                    for _cpu, raw in batch:
                        code = int.from_bytes(raw[reason_off:reason_off + 4], "little")
                        counts[names.get(code, str(code))] += 1
                    if on_progress is not None:
                        on_progress(counts, rings.lost, time.monotonic() - start)
            except KeyboardInterrupt:
                pass
            samples += rings.read()
            lost = rings.lost
    frame = drops(samples, obj.btf, kernel_btf(), lost=lost)
    frame.attrs["filters"] = asdict(filters)
    return frame


@dataclass(frozen=True)
class SyntheticDrop:
    """One made-up drop for ``simulate_drops``: a packet (from the Ethernet header),
    the drop reason (name or number), the interface."""

    packet: bytes
    reason: str | int = "NO_SOCKET"
    ifindex: int = 1
    ifname: str = "lo"
    dev_mapped: bool = True  # False: skb->dev points nowhere (a PROBE_MEM fault)


def simulate_drops(drops_in, *, reason=None, ifindex=None, proto=None, port=None, snap_len: int = 64,
                   kernel_btf=None, engine: str = "interp") -> pd.DataFrame:
    """The same tracer, run by bpfnb on synthetic skbs: the same schema as ``watch_drops``.

    ``engine``: ``"interp"`` (the VM), ``"jit"`` (bpfnb's x86-64 JIT, natively, faults
    recovered through its exception table) or ``"jit-unicorn"`` (the same image emulated)."""
    from .btf import kernel_btf as default_btf
    from .frames.drops import drops, reason_names
    from .verifier import verify
    from .vm import UNMAPPED, Vm

    if engine not in ("interp", "jit", "jit-unicorn"):
        raise BpfnbError(f"unknown engine {engine!r}: 'interp', 'jit' or 'jit-unicorn'")
    btf = kernel_btf or default_btf()
    filters = resolve_filters(reason=reason, ifindex=ifindex, proto=proto, port=port, snap_len=snap_len,
                              kernel_btf=btf)
    prog, obj = tracer_program(filters)
    result = verify(prog, log_level=0, trace=False)
    if not result.ok:
        raise BpfnbError(f"bpfnb's verifier rejected the drop tracer: {result.error}")
    vm = Vm(result.program, kernel_btf=btf)
    run_on = vm.run
    if engine != "interp":
        from .jit import jit

        image = jit(result.program, probe_mem=result.probe_mem, stack_depths=result.stack_depths, vm=vm)
        mode = "native" if engine == "jit" else "unicorn"
        run_on = lambda ctx: image.run(ctx, engine=mode)  # noqa: E731
    codes = {n: v for v, n in reason_names(btf).items()}
    samples, faults = [], 0
    for k, d in enumerate(drops_in):
        code = d.reason if isinstance(d.reason, int) else codes[str(d.reason).upper()]
        mark = vm.memory.mark()  # each drop's skb, device and buffer are freed after its run
        head = bytes(d.packet).ljust(256, b"\0")  # the kernel's buffers are larger than the packet
        dev = vm.new("struct net_device", ifindex=d.ifindex, name=d.ifname.encode()) if d.dev_mapped else UNMAPPED
        protocol = int.from_bytes(d.packet[12:14], "little") if len(d.packet) >= 14 else 0
        skb = vm.skb(len=max(len(d.packet) - 14, 0), dev=dev, head=head, data=head[14:], network_header=14,
                     protocol=protocol)
        run = run_on([skb, 0xFFFFFFFF81000000 + k, code, 0])
        vm.memory.release(mark)
        faults += run.probe_mem_faults
        samples += run.samples
    frame = drops(samples, obj.btf, btf)
    frame.attrs.update(filters=asdict(filters), probe_mem_faults=faults, simulated=True, engine=engine)
    return frame
