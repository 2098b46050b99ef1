"""The conformance vectors: every one parses, every assembly assembles, and
every ``-- raw`` equals the assembler's output for its ``-- asm``."""

import pytest

from bpfnb.conformance import Vector, parse, vectors
from bpfnb.errors import IsaError
from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.isa.assembler import assemble, raw_words


def test_raw_sections_round_trip(conformance_dir):
    pairs = [v for v in vectors(conformance_dir) if v.asm is not None and v.raw is not None]
    assert len(pairs) >= 6
    for v in pairs:
        assert raw_words(assemble(v.asm)) == list(v.raw), v.path


def test_every_assembly_assembles(conformance_dir):
    all_vectors = vectors(conformance_dir)
    assert len(all_vectors) >= 80
    for v in all_vectors:
        if v.asm is not None:
            assert v.insns(), v.path


def test_labels_and_local_calls():
    insns = assemble("mov %r1, 1\ncall local f  # comment\nexit\nf:\nsub %r2, 1\njne %r2, 0, f\nexit")
    assert insns[1] == Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_CALL, 0, 1)
    assert insns[4] == Insn(op.BPF_JMP | op.BPF_JNE | op.BPF_K, 2, 0, -2, 0)


@pytest.mark.parametrize(("text", "insn"), [
    ("sdiv32 %r1, %r2", Insn(op.BPF_ALU | op.BPF_DIV | op.BPF_X, 1, 2, 1, 0)),
    ("smod %r1, 3", Insn(op.BPF_ALU64 | op.BPF_MOD | op.BPF_K, 1, 0, 1, 3)),
    ("ldxsh %r0, [%r1+2]", Insn(op.BPF_LDX | op.BPF_MEMSX | op.BPF_H, 0, 1, 2, 0)),
    ("stdw [%r10-512], 456", Insn(op.BPF_ST | op.BPF_MEM | op.BPF_DW, 10, 0, -512, 456)),
    ("jslt32 %r1, -1, +3", Insn(op.BPF_JMP32 | op.BPF_JSLT | op.BPF_K, 1, 0, 3, -1)),
    ("be16 %r3", Insn(op.BPF_ALU | op.BPF_END | op.BPF_TO_BE, 3, 0, 0, 16)),
    ("ldabsh 12", Insn(op.BPF_LD | op.BPF_ABS | op.BPF_H, 0, 0, 0, 12)),
    ("mov32 %r0, 0x80000000", Insn(op.BPF_ALU | op.BPF_MOV | op.BPF_K, 0, 0, 0, -(1 << 31))),
])
def test_forms(text, insn):
    assert assemble(text) == (insn,)


@pytest.mark.parametrize(("text", "words"), [
    ("bogus %r1", "line 1: unknown instruction 'bogus'"),
    ("mov %r1", "line 1: mov takes 2 operand"),
    ("ja nowhere", "line 1: unknown label 'nowhere'"),
    ("ldxw %r1, %r2", "not a memory operand"),
    ("mov %r16, 1", "not a register"),
    ("\n\nmov %r1, 0x1ffffffff", "line 3: immediate 0x1ffffffff does not fit in 32 bits"),
])
def test_errors_name_the_line(text, words):
    with pytest.raises(IsaError, match=words.replace("(", r"\(").replace(")", r"\)")):
        assemble(text)


def test_vector_fields(conformance_dir):
    v = parse(conformance_dir / "ubpf" / "factorial.data")
    assert isinstance(v, Vector) and v.result == 0x21C3677C82B40000 and v.error is None
    err = parse(conformance_dir / "ubpf" / "errors" / "err-unknown-opcode.data")
    assert err.raw == (0x6, 0x95) and "unknown opcode" in err.error
    assert err.insns()[0].code == 0x06
    helper = [v for v in vectors(conformance_dir) if v.group == "helpers"][0]
    assert "uBPF's test helper" in helper.not_applicable()


def test_the_interpreter_passes_every_vector_that_applies(conformance_dir):
    from bpfnb.conformance import run

    report = run(conformance_dir, "interp")
    failed = [(o.vector.name, o.detail) for o in report.outcomes if o.status == "failed"]
    assert failed == []
    assert report.passed >= 55
    skipped = {o.vector.name: o.detail for o in report.outcomes if o.status == "skipped"}
    assert "uBPF's 65,536-instruction limit" in skipped["err-too-many-instructions"]
    assert all(reason for reason in skipped.values())


def test_the_command_prints_the_summary(conformance_dir, capsys):
    from bpfnb.cli import main

    assert main(["conformance", str(conformance_dir), "--engine", "interp"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith("skipped")


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_the_plugin_speaks_the_bpf_conformance_protocol(conformance_dir, engine):
    import subprocess
    import sys

    from bpfnb.isa import encode

    ran = 0
    for name in ("ldxb-0offset", "factorial", "div-by-zero-reg", "arsh64", "mul-loop"):
        v = parse(conformance_dir / "ubpf" / f"{name}.data")
        program = " ".join(f"{b:02x}" for b in encode(v.insns()))
        done = subprocess.run([sys.executable, "-m", "bpfnb", "conformance-plugin", v.mem.hex(), "--engine", engine],
                              input=program, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert int(done.stdout.strip(), 16) == v.result, name
        ran += 1
    assert ran == 5
    bad = subprocess.run([sys.executable, "-m", "bpfnb", "conformance-plugin", "--program", "f700000000000000 9500000000000000",
                          "--engine", engine], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "insn 0: unknown opcode f7" in bad.stderr and bad.stdout == ""
