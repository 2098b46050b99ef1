"""BTF parsing: the live kernel's BTF checked against bpftool's dump of the
same file, an object's BTF from clang, and malformed input."""

import pathlib
import re
import shutil
import struct
import subprocess

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfnb.btf import LIVE_VMLINUX, Btf
from bpfnb.errors import BtfError

ROOT = pathlib.Path(__file__).resolve().parents[2]
TRACER = ROOT / "bpfnb/data/drops.bpf.o"


def object_btf() -> bytes:
    with open(TRACER, "rb") as f:
        return ELFFile(f).get_section_by_name(".BTF").data()


@pytest.fixture(scope="module")
def vmlinux():
    if not pathlib.Path(LIVE_VMLINUX).exists():
        pytest.skip(f"{LIVE_VMLINUX} not present on this machine")
    return Btf.from_file(LIVE_VMLINUX)


@pytest.fixture(scope="module")
def bpftool_raw():
    if not shutil.which("bpftool") or not pathlib.Path(LIVE_VMLINUX).exists():
        pytest.skip("needs bpftool and the live kernel BTF")
    out = subprocess.run(["bpftool", "btf", "dump", "file", LIVE_VMLINUX, "format", "raw"],
                         check=True, capture_output=True, text=True).stdout
    return out


def test_vmlinux_type_count_and_sk_buff_agree_with_bpftool(vmlinux, bpftool_raw):
    last_id = max(int(m) for m in re.findall(r"^\[(\d+)\]", bpftool_raw, re.M))
    assert len(vmlinux) - 1 == last_id
    sk = vmlinux.find("sk_buff", "struct")
    header = re.search(rf"^\[{sk}\] STRUCT 'sk_buff' size=(\d+) vlen=(\d+)$", bpftool_raw, re.M)
    assert header, "bpftool names the same id for struct sk_buff"
    assert vmlinux.sizeof(sk) == int(header.group(1))
    members = vmlinux.members(sk)
    assert len(members) == int(header.group(2))
    block = bpftool_raw[header.end():].split("\n[", 1)[0]
    dumped = re.findall(r"'(\w+|\(anon\))' type_id=(\d+) bits_offset=(\d+)", block)
    ours = [(m.name or "(anon)", str(m.type), str(m.bit_offset)) for m in members]
    assert ours == dumped


def test_kfree_skb_tracepoint_arguments(vmlinux):
    typedef, args = vmlinux.trace_proto("kfree_skb")
    assert vmlinux.type(typedef).name == "btf_trace_kfree_skb"
    names = [vmlinux.name_of(p.type) for p in args]
    assert names[0] == "struct sk_buff *" and names[1] == "void *"
    assert vmlinux.type(vmlinux.resolve(args[2].type)).name == "skb_drop_reason"
    assert len(args) == 4  # KERNEL-NOTES: four arguments after the hidden first


def test_drop_reason_enum_and_resolution(vmlinux):
    reasons = {v.name: v.value for v in vmlinux.type(vmlinux.find("skb_drop_reason", "enum")).values}
    assert reasons["SKB_DROP_REASON_NOT_SPECIFIED"] == 2
    assert reasons["SKB_DROP_REASON_NO_SOCKET"] == 3
    u32 = vmlinux.find("u32", "typedef")
    assert vmlinux.type(vmlinux.resolve(u32)).name == "unsigned int"
    assert vmlinux.sizeof(u32) == 4
    with pytest.raises(BtfError, match="no type struct 'no_such_struct_here'"):
        vmlinux.find("no_such_struct_here", "struct")


def test_the_tracers_own_btf():
    btf = Btf.from_bytes(object_btf(), name="drops.bpf.o:.BTF")
    ev = btf.find("drop_event", "struct")
    names = [m.name for m in btf.members(ev)]
    assert names[:4] == ["ts_ns", "location", "skb", "len"]
    assert btf.sizeof(ev) == 136  # 132 bytes of fields, padded to 8
    hdr = next(m for m in btf.members(ev) if m.name == "hdr")
    assert btf.name_of(hdr.type) == "__u8[64]" and hdr.bit_offset == 68 * 8
    func = btf.type(btf.find("trace_drops", "func"))
    assert btf.type(func.type).kind == "func_proto"
    rodata = btf.type(btf.find(".rodata", "datasec"))
    var_names = {btf.type(v.type).name for v in rodata.vars}
    assert {"filter_reason", "filter_port", "snap_len"} <= var_names


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b[:10], "shorter than the 24-byte header"),
        (lambda b: b"\x00\x00" + b[2:], "bad magic"),
        (lambda b: b[:2] + b"\x02" + b[3:], "unsupported version 2"),
        (lambda b: b[: len(b) - 40], "runs past the end"),
    ],
)
def test_malformed_btf_names_what_is_wrong(mutate, message):
    with pytest.raises(BtfError, match=message):
        Btf.from_bytes(mutate(object_btf()), name="x.o:.BTF")


def test_a_reference_past_the_last_type_is_caught():
    data = bytearray(object_btf())
    hdr_len = struct.unpack_from("<I", data, 4)[0]
    type_off = struct.unpack_from("<I", data, 8)[0]
    first = hdr_len + type_off
    info = struct.unpack_from("<I", data, first + 4)[0]
    assert (info >> 24) & 0x1F == 2  # clang emits a PTR first: its type field is a reference
    struct.pack_into("<I", data, first + 8, 0xFFFFFF)
    with pytest.raises(BtfError, match="refers to type 16777215"):
        Btf.from_bytes(bytes(data)).type(1)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_corruption_raises_only_btf_errors(data):
    blob = bytearray(object_btf())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    try:
        btf = Btf.from_bytes(bytes(blob))
        for type_id in range(len(btf)):
            ty = btf.type(type_id)
            btf.name_of(type_id)
            if ty.kind in ("struct", "union", "int", "ptr", "array", "typedef", "enum"):
                try:
                    btf.sizeof(type_id)
                except BtfError:
                    pass
    except BtfError:
        pass
