"""``bpfnb disasm`` against ``llvm-objdump-19 -d`` on every fixture: the same
instruction bytes, and in each line the same registers and numbers (jump and
call offsets, load/store offsets, immediates)."""

import pathlib

import pytest
from llvm_objdump import OBJDUMP, compare, objdump_sections

from bpfnb.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]
OBJECTS = sorted((ROOT / "tests/fixtures").glob("*.o")) + sorted((ROOT / "bpfnb/data").rglob("*.bpf.o"))


@pytest.mark.skipif(OBJDUMP is None, reason="llvm-objdump-19 not installed (Debian package llvm-19)")
@pytest.mark.parametrize("path", [p for p in OBJECTS if ".bpfeb." not in p.name], ids=lambda p: p.name)
def test_every_instruction_agrees_with_llvm_objdump(path):
    compared, mismatches = compare(path)
    assert mismatches == []
    assert compared == sum(len(rows) for rows in objdump_sections(path).values()) > 0


def test_the_command_prints_programs_and_source(capsys):
    assert main(["disasm", str(ROOT / "tests/fixtures/bpf2bpf.bpf.o")]) == 0
    out = capsys.readouterr().out
    assert "call_subprogs: section socket, type socket_filter, 20 insns" in out
    assert "2: (85) call pc+6" in out and "9: (bf) r0 = r1" in out
    assert "; return x * 3 + 1; @ bpf2bpf.bpf.c:13" in out


def test_the_command_names_a_bad_file(capsys, tmp_path):
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"\x7fELF" + b"\0" * 60)
    assert main(["disasm", str(bad)]) == 1
    assert "bad.o" in capsys.readouterr().err
