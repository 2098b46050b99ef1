"""Objects nobody here wrote: every one loads, every failing program names its
file, section and instruction, and ``bpfnb disasm --raw`` agrees with
``llvm-objdump-19 -d`` instruction by instruction.

The objects are not in the repository: give their directories (searched
recursively for ``*.o`` and ``*.elf``) in ``BPFNB_CORPUS``, separated by
``os.pathsep``; e.g. the hand-built corpora described in
``/work/scratch/corpora/README.txt``:

    BPFNB_CORPUS=/work/scratch/corpora/libbpf-tools:/work/scratch/corpora/cilium-ebpf:\
/work/scratch/corpora/xdp-tools pytest tests/elf/test_corpus.py
"""

from __future__ import annotations

import os
import pathlib
import re
import warnings

import pytest
from llvm_objdump import OBJDUMP, compare, objdump_sections

import bpfnb
from bpfnb.cli import main
from bpfnb.cli.disasm import program_listing
from bpfnb.elf import BpfnbWarning
from bpfnb.elf.loader import EI_DATA, ELFDATA2MSB
from bpfnb.errors import ElfError

CORPUS_DIRS = [pathlib.Path(p) for p in os.environ.get("BPFNB_CORPUS", "").split(os.pathsep) if p]
OBJECTS = sorted(p for d in CORPUS_DIRS for p in d.rglob("*") if p.suffix in (".o", ".elf") and p.is_file())
SKIP = (None if OBJECTS else
        "BPFNB_CORPUS names no directory of compiled objects" if not CORPUS_DIRS else
        f"no *.o / *.elf under BPFNB_CORPUS={os.environ['BPFNB_CORPUS']}")
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
# params need at least one entry to report the skip
PARAMS = OBJECTS or [pathlib.Path("none")]


def _id(path: pathlib.Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _big_endian(path: pathlib.Path) -> bool:
    return path.read_bytes()[EI_DATA:EI_DATA + 1] == bytes([ELFDATA2MSB])


@pytest.mark.parametrize("path", PARAMS, ids=_id)
def test_the_object_loads_and_each_failure_names_section_and_instruction(path):
    if _big_endian(path):  # e.g. cilium's *-eb.elf twins: a clear error, not a load
        with pytest.raises(ElfError, match=rf"{re.escape(str(path))}: a big-endian object"):
            bpfnb.load(path)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BpfnbWarning)  # EM_NONE objects
        obj = bpfnb.load(path)
    for prog in obj:
        assert len(prog.insns) > 0
        assert program_listing(prog).count("\n") >= sum(1 for i in prog.insns if i.code) // 2
    for name, failed in obj.failed.items():
        assert re.match(rf"{re.escape(str(path))}:(?:{re.escape(failed.section)}|\.text): insn \d+: ",
                        str(failed)), (name, str(failed))


@pytest.mark.skipif(OBJDUMP is None, reason="llvm-objdump-19 not installed (Debian package llvm-19)")
@pytest.mark.parametrize("path", PARAMS, ids=_id)
def test_disasm_agrees_with_llvm_objdump(path):
    if _big_endian(path):
        pytest.skip("big-endian: bpfnb lists little-endian objects only")
    compared, mismatches = compare(path)
    assert mismatches == []
    assert compared == sum(len(rows) for rows in objdump_sections(path).values())


@pytest.mark.parametrize("path", [p for p in PARAMS if p.exists() and not _big_endian(p)][:1] or PARAMS[:1], ids=_id)
def test_the_command_lists_what_it_could_load(path, capsys):
    status = main(["disasm", "--no-source", str(path)])
    out, err = capsys.readouterr()
    obj = bpfnb.load(path)
    assert status == (1 if obj.failed else 0)
    assert all(f"{p.name}: section {p.section}" in out for p in obj)
    assert all(str(failed) in err for failed in obj.failed.values())
