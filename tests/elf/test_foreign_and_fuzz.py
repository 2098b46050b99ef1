"""Objects nobody here wrote (Debian's xdp-tools), and mutated fixtures."""

import glob
import pathlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bpfnb
from bpfnb.cli import main
from bpfnb.errors import BpfnbError

ROOT = pathlib.Path(__file__).resolve().parents[2]
FOREIGN = sorted(glob.glob("/usr/lib/*/bpf/*.o"))
FIXTURES = sorted((ROOT / "tests/fixtures").glob("*.bpf.o"))


@pytest.mark.skipif(not FOREIGN, reason="no /usr/lib/*/bpf/*.o (Debian package xdp-tools)")
def test_xdp_tools_objects_load_and_disassemble(capsys):
    loaded = 0
    for path in FOREIGN:
        try:
            obj = bpfnb.load(path)
        except BpfnbError as exc:  # allowed, if it says which file
            assert path in str(exc)
            continue
        loaded += 1
        assert obj.programs and all(len(p.insns) > 0 for p in obj)
        assert main(["disasm", "--no-source", path]) == 0
        out = capsys.readouterr().out
        assert out.count(": (") >= sum(1 for p in obj for i in p.insns if i.code)  // 2
    assert loaded >= len(FOREIGN) - 1  # all of them, in fact, on Debian 12's xdp-tools


@pytest.mark.skipif(not FOREIGN, reason="no /usr/lib/*/bpf/*.o (Debian package xdp-tools)")
def test_the_xdp_dispatchers_calls_stay_inside_the_program():
    (path,) = [p for p in FOREIGN if p.endswith("xdp-dispatcher.o")]
    obj = bpfnb.load(path)
    assert sorted(obj.programs) == ["xdp_dispatcher", "xdp_pass"]
    prog = obj.program("xdp_dispatcher")
    assert prog.type == "xdp"
    calls = [i for i in prog.insns if i.code == 0x85 and i.src == 1]
    assert calls, "the dispatcher calls its prog0..prog9 stubs"
    for k, insn in enumerate(prog.insns):
        if insn.code == 0x85 and insn.src == 1:
            assert 0 <= k + insn.imm + 1 < len(prog.insns)


def _mutate(data: bytes, rng: random.Random, count: int) -> bytes:
    raw = bytearray(data)
    for _ in range(count):
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    return bytes(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(FIXTURES), st.integers(0, 2**32 - 1), st.integers(1, 16))
def test_mutated_objects_raise_only_bpfnb_errors(tmp_path, fixture, seed, count):
    path = tmp_path / fixture.name
    path.write_bytes(_mutate(fixture.read_bytes(), random.Random(seed), count))
    try:
        bpfnb.load(path)
    except BpfnbError:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(FIXTURES), st.integers(0, 2**32 - 1))
def test_mutations_aimed_at_btf_ext_and_relocations(tmp_path, fixture, seed):
    """Mutate only inside .BTF, .BTF.ext, .symtab and .rel* sections."""
    from elftools.elf.elffile import ELFFile

    data = fixture.read_bytes()
    with open(fixture, "rb") as f:
        spans = [(s["sh_offset"], s["sh_size"]) for s in ELFFile(f).iter_sections()
                 if s.name in (".BTF", ".BTF.ext", ".symtab") or s.name.startswith(".rel")]
    rng = random.Random(seed)
    raw = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        off, size = rng.choice(spans)
        raw[off + rng.randrange(size)] = rng.randrange(256)
    path = tmp_path / fixture.name
    path.write_bytes(bytes(raw))
    try:
        bpfnb.load(path)
    except BpfnbError:
        pass
