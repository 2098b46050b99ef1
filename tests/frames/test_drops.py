"""The drops frame from raw samples of the tracer, packed byte by byte at
the C layout's offsets (bpfnb/data/bpf/drops.bpf.c), through BTF."""

import pathlib
import struct

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from bpfnb.btf import LIVE_VMLINUX, Btf
from bpfnb.frames.drops import SCHEMA, drops
from bpfnb.frames.records import decode, struct_dtype

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tracer_btf():
    with open(ROOT / "bpfnb/data/drops.bpf.o", "rb") as f:
        return Btf.from_bytes(ELFFile(f).get_section_by_name(".BTF").data())


def sample(ts, length, ifindex, reason, sport, dport, packet=b"", ifname=b"lo"):
    hdr = bytes.fromhex("4500001c00004000401100007f0000017f000001") + struct.pack("!HH", sport, dport)
    rec = struct.pack(
        "<QQQIiIIHBBHHI16s64s4x", ts, 0xFFFFFFFF81000000, 0xFFFF888000001000, length, ifindex,
        reason, 1, 0x0800, 17, 64, sport, dport, len(packet), ifname, hdr,
    )
    assert len(rec) == 136
    return rec + packet


def test_struct_dtype_follows_the_btf_layout(tracer_btf):
    dt = struct_dtype(tracer_btf, "drop_event")
    assert dt.itemsize == 136
    assert dt.fields["len"][1] == 24 and dt.fields["ifname"][0] == np.dtype("S16")
    assert dt.fields["hdr"][1] == 68
    buf = sample(5, 74, 1, 3, 4000, 53) * 3
    recs = decode(buf, np.array([0, 136, 272]), dt)
    assert list(recs["len"]) == [74] * 3 and recs["dport"][2] == 53


def test_drops_frame_decodes_fields_reasons_headers_and_packet_bytes(tracer_btf):
    kernel = Btf.from_file(LIVE_VMLINUX) if pathlib.Path(LIVE_VMLINUX).exists() else None
    samples = [
        (0, sample(100, 18, 1, 3, 40000, 9999, packet=b"P" * 18)),
        (1, sample(200, 30, 2, 2, 1, 2, packet=b"Q" * 8, ifname=b"eth0")),
    ]
    frame = drops(samples, tracer_btf, kernel, lost=4)
    assert tuple(frame.columns) == SCHEMA
    assert list(frame["time_ns"]) == [100, 200] and list(frame["cpu"]) == [0, 1]
    assert list(frame["len"]) == [18, 30] and list(frame["ifindex"]) == [1, 2]
    assert list(frame["ifname"]) == ["lo", "eth0"]
    assert list(frame["dport"]) == [9999, 2] and list(frame["l4proto"]) == ["udp", "udp"]
    assert list(frame["daddr"]) == ["127.0.0.1"] * 2
    assert frame["packet"][0] == b"P" * 18 and frame["packet"][1] == b"Q" * 8
    if kernel is not None:
        assert list(frame["reason"]) == ["NO_SOCKET", "NOT_SPECIFIED"]
    assert frame["reason"].dtype == "category"
    assert frame.attrs["lost"] == 4


def test_a_sample_shorter_than_the_record_is_refused(tracer_btf):
    with pytest.raises(ValueError, match="fewer than struct drop_event"):
        drops([(0, b"\0" * 20)], tracer_btf)
