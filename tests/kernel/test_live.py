"""Live: the kfree_skb tracer attached, real drops read from the perf rings;
the JIT image; no fd left behind after many cycles."""

import os
import pathlib
import struct
import time

import capstone
import pytest

import bpfnb
from bpfnb import traffic
from bpfnb.btf import kernel_btf
from bpfnb.kernel import attach, load

ROOT = pathlib.Path(__file__).resolve().parents[2]
TRACER = ROOT / "tests/fixtures/kfree_skb.bpf.o"
RECORD = struct.Struct("<IiIHH")  # struct record in tests/fixtures/kfree_skb.bpf.c


def _reason(name: str) -> int:
    btf = kernel_btf()
    values = {v.name: v.value for v in btf.type(btf.find("skb_drop_reason", "enum")).values}
    return values[f"SKB_DROP_REASON_{name}"]


@pytest.mark.kernel
def test_udp_to_a_closed_port_is_traced_with_its_reason_length_and_port():
    from bpfnb.perf import PerfBuffer

    prog = bpfnb.load(TRACER).program()
    payload = b"bpfnb-live-test"
    with load(prog, log_level=1) as loaded, attach(loaded, prog), PerfBuffer(loaded.map("events")) as rings:
        sent = traffic.udp_to_closed_port(5, payload=payload)
        rows = []
        deadline = time.monotonic() + 5
        while len(rows) < 5 and time.monotonic() < deadline:
            rings.poll(0.5)
            rows += rings.read()
        assert rings.lost == 0
    ours = []
    for _cpu, raw in rows:
        length, ifindex, reason, _proto, _ = RECORD.unpack_from(raw)
        packet = raw[RECORD.size:RECORD.size + length]
        if length >= 8 and struct.unpack_from("!H", packet, 2)[0] == sent.port:  # UDP dport
            ours.append((length, ifindex, reason, packet[8:]))
    assert len(ours) == 5
    assert all(o == (8 + len(payload), 1, _reason("NO_SOCKET"), payload) for o in ours)


@pytest.mark.kernel
def test_the_jit_image_is_x86_code():
    prog = bpfnb.load(ROOT / "tests/fixtures/bpf2bpf.bpf.o").program()
    with load(prog, log_level=1) as loaded:
        image = loaded.image()
    assert len(image.xlated) >= len(prog.insns) - 2 and image.name == "call_subprogs"
    assert len(image.jited) == sum(image.func_lens) > 0 and len(image.ksyms) == 3  # main + 2 subprogs
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    decoded = list(md.disasm(image.jited, image.address))
    assert sum(i.size for i in decoded) == len(image.jited)
    assert decoded[-1].mnemonic in ("ret", "int3", "jmp")
    assert any(i.mnemonic == "call" and int(i.op_str, 16) in image.ksyms[1:] for i in decoded)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.kernel
@pytest.mark.slow
def test_no_fd_leaks_after_200_load_attach_detach_cycles():
    from bpfnb.perf import PerfBuffer

    prog = bpfnb.load(TRACER).program()
    before = _fds()
    for _ in range(200):
        with load(prog, log_level=0) as loaded, attach(loaded, prog), PerfBuffer(loaded.map("events"), pages=1):
            pass
    assert _fds() == before


@pytest.mark.kernel
def test_attaching_what_cannot_be_attached_says_so():
    prog = bpfnb.load(ROOT / "tests/fixtures/socket_filter.bpf.o").program()
    with load(prog, log_level=0) as loaded:
        with pytest.raises(bpfnb.errors.KernelError, match="attaching socket_filter programs"):
            attach(loaded, prog)


@pytest.mark.kernel
def test_with_the_objects_btf_the_log_has_source_lines_and_the_jit_maps_them():
    prog = bpfnb.load(ROOT / "tests/fixtures/xdp.bpf.o").program()
    with load(prog, log_level=2) as loaded:
        assert loaded.btf_fd is not None and loaded.notes == ()
        sources = [ln for ln in loaded.kernel_log.lines if ln.kind == "source"]
        image = loaded.image()
    assert any("bpf_map_lookup_elem(&proto_count, &proto)" in s.disasm for s in sources)
    assert len(image.jited_line_addrs) > 10
    start, end = image.address, image.address + len(image.jited)
    assert all(start <= a < end for a in image.jited_line_addrs)
    assert list(image.jited_line_addrs) == sorted(image.jited_line_addrs)
