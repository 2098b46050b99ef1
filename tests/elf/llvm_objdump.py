"""``bpfnb disasm --raw`` against ``llvm-objdump-19 -d``, instruction by instruction:
the same slots per section and, in each line, the same registers and numbers
(jump and call offsets, load/store offsets, immediates). Shared by the fixture
test and the corpus test."""

from __future__ import annotations

import re
import shutil
import subprocess

from bpfnb.cli.disasm import section_listing

OBJDUMP = shutil.which("llvm-objdump-19")
TYPE_WORDS = re.compile(r"\b[us](?:8|16|32|64)\b|\bbe(?:16|32|64)\b|\ble(?:16|32|64)\b|bswap(?:16|32|64)|"
                        r"atomic64|atomic|bpf_\w+#|\(\w\w\)")
LD_IND_ZERO = re.compile(r"skb\[(r\d+) ?\+0\]")  # a legacy indirect packet load at offset 0
SYMBOLIC_TARGET = re.compile(r"<[\w.$]+(?:[+-]0x[0-9a-f]+)?>")  # objdump's "<func+0xb0>"
U32_MASK = 0xFFFFFFFF
U64_MASK = 0xFFFFFFFFFFFFFFFF


def objdump_sections(path) -> dict[str, list[tuple[int, str]]]:
    """{section: [(slot, text)]} from llvm-objdump's -d output."""
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


def our_sections(path) -> dict[str, list[tuple[int, str]]]:
    ours, section = {}, None
    for line in section_listing(str(path)).splitlines():
        if m := re.match(r"section (.*):$", line):
            section = m[1]
            ours[section] = []
        else:
            slot, _, rest = line.partition(": ")
            ours[section].append((int(slot), rest))
    return ours


def operands(text: str, wide: bool) -> tuple[list[int], list[int]]:
    """Registers (as numbers) and integers of a line, in order. Numbers of
    instructions other than the 64-bit load (``wide``) are 32-bit fields:
    compared modulo 2**32 (the kernel prints ``0xffffffff`` where objdump
    prints ``-0x1``)."""
    text = SYMBOLIC_TARGET.sub("", text)
    text = TYPE_WORDS.sub(" ", text).replace(" ll", "").replace("pc+", " +").replace("pc-", " -")
    text = re.sub(r"([+-]) (0x[0-9a-f]+|\d)", r"\1\2", text)  # objdump: "r10 - 0x4"
    text = LD_IND_ZERO.sub(r"skb[\1]", text)  # the kernel: "skb[r7 + 0]", objdump: "skb[r7]"
    regs = [int(r) for r in re.findall(r"\b[rw](\d+)\b", text)]
    nums = [int(n, 0) for n in re.findall(r"(?<![\w])[-+]?(?:0x[0-9a-f]+|\d+)\b", re.sub(r"\b[rw]\d+\b", " ", text))]
    return regs, [n & (U64_MASK if wide else U32_MASK) for n in nums]


def compare(path) -> tuple[int, list[tuple]]:
    """(instructions compared, mismatches) of one object; every line objdump
    prints is compared, or is a mismatch."""
    ours, theirs = our_sections(path), objdump_sections(path)
    mismatches: list[tuple] = []
    if set(ours) != {s for s, rows in theirs.items() if rows}:
        mismatches.append(("sections", sorted(ours), sorted(s for s, r in theirs.items() if r)))
        return 0, mismatches
    compared = 0
    for section, rows in ours.items():
        if [s for s, _ in rows] != [s for s, _ in theirs[section]]:
            mismatches.append((section, "slots differ"))
            continue
        for (slot, mine), (_, other) in zip(rows, theirs[section], strict=True):
            wide = other.endswith(" ll")  # objdump marks the 64-bit load
            my_regs, my_nums = operands(mine, wide)
            their_regs, their_nums = operands(other, wide)
            if "call" in other and "bpf_" in mine:  # helper: objdump prints the id
                same = my_regs == their_regs and int(mine.rsplit("#", 1)[1]) == their_nums[0]
            else:
                same = (my_regs, my_nums) == (their_regs, their_nums)
            if not same:
                mismatches.append((section, slot, mine, other))
            compared += 1
    return compared, mismatches
