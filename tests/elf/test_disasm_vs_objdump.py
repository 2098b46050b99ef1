"""``bpfnb disasm`` against ``llvm-objdump-19 -d`` on every fixture: the same
instruction bytes, and in each line the same registers and numbers (jump and
call offsets, load/store offsets, immediates)."""

import pathlib
import re
import shutil
import subprocess

import pytest

from bpfnb.cli import main
from bpfnb.cli.disasm import section_listing

ROOT = pathlib.Path(__file__).resolve().parents[2]
OBJECTS = sorted((ROOT / "tests/fixtures").glob("*.bpf.o")) + sorted((ROOT / "bpfnb/data").rglob("*.bpf.o"))
OBJDUMP = shutil.which("llvm-objdump-19")
TYPE_WORDS = re.compile(r"\b[us](?:8|16|32|64)\b|\bbe(?:16|32|64)\b|\ble(?:16|32|64)\b|bswap(?:16|32|64)|"
                        r"atomic64|atomic|bpf_\w+#|\(\w\w\)")


def objdump_sections(path):
    """{section: [(slot, bytes, text)]} from llvm-objdump's -d output."""
    out, section = {}, None
    text = subprocess.run([OBJDUMP, "-d", "--no-show-raw-insn", str(path)], capture_output=True, text=True,
                          check=True).stdout
    for line in text.splitlines():
        if m := re.match(r"Disassembly of section (.*):", line):
            section = m[1]
            out[section] = []
        elif m := re.match(r"\s+(\d+):\s+(.*)$", line):
            out[section].append((int(m[1]), m[2].strip()))
    return out


def operands(text):
    """Registers (as numbers) and integers of a line, in order."""
    text = re.sub(r"<[^>]*>", "", text)  # objdump's symbolic targets
    text = TYPE_WORDS.sub(" ", text).replace(" ll", "").replace("pc+", " +").replace("pc-", " -")
    text = re.sub(r"([+-]) (0x[0-9a-f]+|\d)", r"\1\2", text)  # objdump: "r10 - 0x4"
    regs = [int(r) for r in re.findall(r"\b[rw](\d+)\b", text)]
    nums = [int(n, 0) for n in re.findall(r"(?<![\w])[-+]?(?:0x[0-9a-f]+|\d+)\b", re.sub(r"\b[rw]\d+\b", " ", text))]
    return regs, [n & 0xFFFFFFFFFFFFFFFF for n in nums]


@pytest.mark.skipif(OBJDUMP is None, reason="llvm-objdump-19 not installed (Debian package llvm-19)")
@pytest.mark.parametrize("path", OBJECTS, ids=lambda p: p.name)
def test_every_instruction_agrees_with_llvm_objdump(path):
    ours = {}
    section = None
    for line in section_listing(str(path)).splitlines():
        if m := re.match(r"section (.*):$", line):
            section = m[1]
            ours[section] = []
        else:
            slot, _, rest = line.partition(": ")
            ours[section].append((int(slot), rest))
    theirs = objdump_sections(path)
    assert set(ours) == {s for s, rows in theirs.items() if rows}
    compared = 0
    for section, rows in ours.items():
        assert [s for s, _ in rows] == [s for s, _ in theirs[section]], section
        for (slot, mine), (_, other) in zip(rows, theirs[section], strict=True):
            my_regs, my_nums = operands(mine)
            their_regs, their_nums = operands(other)
            assert my_regs == their_regs, (section, slot, mine, other)
            if "call" in other and "bpf_" in mine:  # helper: objdump prints the id
                assert int(mine.rsplit("#", 1)[1]) == their_nums[0], (section, slot, mine, other)
            else:
                assert my_nums == their_nums, (section, slot, mine, other)
            compared += 1
    assert compared > 5


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
