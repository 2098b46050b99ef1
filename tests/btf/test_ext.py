"""``.BTF.ext`` of objects clang-19 built: line info matches the C source,
func info names the program's FUNC, CO-RE records name real members."""

import pathlib
import struct

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfnb.btf import Btf
from bpfnb.btf.ext import parse_ext
from bpfnb.errors import BtfError

ROOT = pathlib.Path(__file__).resolve().parents[2]
TRACER = ROOT / "bpfnb/data/drops.bpf.o"
SECTION = "tp_btf/kfree_skb"


@pytest.fixture(scope="module")
def tracer():
    with open(TRACER, "rb") as f:
        elf = ELFFile(f)
        btf = Btf.from_bytes(elf.get_section_by_name(".BTF").data(), name="drops.bpf.o:.BTF")
        return btf, elf.get_section_by_name(".BTF.ext").data(), elf.get_section_by_name(SECTION).data_size


def test_line_info_text_is_the_source_line(tracer):
    btf, data, size = tracer
    lines = parse_ext(data, btf).line_info[SECTION]
    source = (ROOT / "bpfnb/data/bpf/drops.bpf.c").read_text().splitlines()
    assert len(lines) > 50
    for rec in lines:
        assert pathlib.Path(rec.file).name == "drops.bpf.c"
        assert source[rec.line - 1].strip() == rec.text.strip(), rec
        assert 0 <= rec.insn_off < size and rec.insn_off % 8 == 0
    assert [r.insn_off for r in lines] == sorted(r.insn_off for r in lines)


def test_func_info_names_the_program(tracer):
    btf, data, _ = tracer
    (func,) = parse_ext(data, btf).func_info[SECTION]
    assert func.insn_off == 0
    t = btf.type(func.type_id)
    assert t.kind == "func" and t.name == "trace_drops"


def test_core_records_walk_real_members(tracer):
    btf, data, size = tracer
    relos = parse_ext(data, btf).core_relos[SECTION]
    assert len(relos) >= 5
    spec = set()
    for r in relos:
        assert r.kind == "field_byte_offset" and 0 <= r.insn_off < size
        t = btf.type(btf.resolve(r.type_id))
        index = [int(x) for x in r.access.split(":")]
        assert index[0] == 0
        member = t.members[index[1]]
        spec.add(f"{t.name}.{member.name}")
    assert {"sk_buff.dev", "sk_buff.len", "net_device.ifindex"} <= spec


@pytest.mark.parametrize(("patch", "words"), [
    (lambda d: b"\x00\x00" + d[2:], "bad magic"),
    (lambda d: d[:2] + b"\x02" + d[3:], "unsupported version"),
    (lambda d: d[:4] + struct.pack("<I", 9999) + d[8:], "header length"),
    (lambda d: d[:12] + struct.pack("<I", 1 << 20) + d[16:], "outside"),
    (lambda d: d[:10], "shorter than"),
])
def test_malformed_ext_says_what_is_wrong(tracer, patch, words):
    btf, data, _ = tracer
    with pytest.raises(BtfError, match=words):
        parse_ext(patch(data), btf, name="x.o:.BTF.ext")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutations_raise_only_btf_errors(tracer, data):
    btf, ext, _ = tracer
    raw = bytearray(ext)
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        parse_ext(bytes(raw), btf)
    except BtfError:
        pass
