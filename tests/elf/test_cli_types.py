"""``--type``/``--section`` on ``disasm``, ``verify`` and ``jit``: to the program
``--prog`` names, else to every program of unknown type; programs bpfnb
cannot prepare are reported and the others still run."""

import json
import pathlib

from bpfnb.cli import main

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests/fixtures"
TEXT_ONLY = str(FIXTURES / "text_only.bpf.o")
UNKNOWN = str(FIXTURES / "unknown_sections.bpf.o")


def test_disasm_shows_unknown_types_with_their_reason_and_takes_a_type(capsys):
    assert main(["disasm", "--no-source", UNKNOWN]) == 0
    out = capsys.readouterr().out
    assert ("from_netdev: section from-netdev, type unknown, 20 insns (section 'from-netdev' names no program "
            "type libbpf knows)") in out
    assert "slot_7: section 2/7, type sched_cls, 5 insns (tail-call slot 7 of prog array 2" in out
    assert main(["disasm", "--no-source", UNKNOWN, "--type", "sched_cls"]) == 0
    out = capsys.readouterr().out
    assert "from_netdev: section from-netdev, type sched_cls, 20 insns (type 'sched_cls' given)" in out
    assert "entry: section classifier, type sched_cls, 6 insns\n" in out  # known types are kept


def test_section_reads_a_program_as_if_it_were_in_that_section(capsys):
    assert main(["disasm", "--no-source", TEXT_ONLY, "--prog", "mark", "--section", "tc"]) == 0
    assert capsys.readouterr().out.startswith("mark: section .text, type sched_cls, 7 insns "
                                              "(read as section 'tc' (given))\n")


def test_a_type_for_an_object_whose_programs_all_have_one_is_a_note(capsys):
    assert main(["disasm", "--no-source", str(FIXTURES / "xdp.bpf.o"), "--type", "sched_cls"]) == 0
    out, err = capsys.readouterr()
    assert "type xdp" in out
    assert "--type/--section apply to none (name one with --prog)" in err


def test_verify_asks_for_a_type_and_verifies_with_one(capsys):
    assert main(["verify", "--json", TEXT_ONLY]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["program"], r["verdict"]) for r in records] == [("length", None), ("mark", None)]
    assert records[0]["error"] == ("no known program type (.text names no program type); give one with "
                                   "--type TYPE or --section NAME")
    assert main(["verify", "--json", TEXT_ONLY, "--type", "socket_filter"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["program"], r["verdict"], r["processed_insns"]) for r in records] == [
        ("length", "accept", 6), ("mark", "accept", 7)]


def test_verify_reports_a_program_it_cannot_prepare_and_goes_on(capsys, tmp_path):
    from elftools.elf.elffile import ELFFile

    data = bytearray((FIXTURES / "static_programs.bpf.o").read_bytes())
    with open(FIXTURES / "static_programs.bpf.o", "rb") as f:
        xdp = next(s for s in ELFFile(f).iter_sections() if s.name == "xdp")
    data[xdp["sh_offset"] + 8 + 4:xdp["sh_offset"] + 8 + 8] = (0).to_bytes(4, "little")  # call into scaled()
    broken = tmp_path / "broken.o"
    broken.write_bytes(bytes(data))
    assert main(["verify", str(broken)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"static_xdp (xdp): not verified: {broken}:xdp: insn 1: call to .text insn 1, which is not "
                        "the start of a function")
    assert [line.split(":")[0] for line in lines[1:]] == [
        "static_socket (socket)", "global_socket (socket)", "loop_xdp (xdp)"]


def test_jit_takes_a_type(capsys):
    assert main(["jit", TEXT_ONLY, "--prog", "length"]) == 1
    assert "not translated: no known program type (.text names no program type)" in capsys.readouterr().out
    assert main(["jit", TEXT_ONLY, "--prog", "length", "--type", "socket_filter"]) == 0
    assert "ret" in capsys.readouterr().out
