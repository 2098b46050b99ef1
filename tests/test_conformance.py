"""The conformance vectors on every engine: the whole bpf_conformance suite and the
uBPF vectors, each skip named with its reason; an error vector passes only when the
engine fails at the stage and for the reason the vector states; and the plugin the
suite's own runner starts, run exactly as that runner starts it."""

import os
import pathlib
import re
import subprocess
import sys
import tomllib

import pytest

from bpfnb.conformance import (
    ENGINES,
    JIT_SKIPS,
    SKIPS,
    Vector,
    parse,
    run,
    run_vector,
    vectors,
)
from bpfnb.errors import VmError
from bpfnb.isa import encode

ROOT = pathlib.Path(__file__).resolve().parent.parent
ALL_ENGINES = sorted(ENGINES)
BPF_CONFORMANCE_VECTORS = 313
# measured: every vector runs but callx, which Linux refuses (see SKIPS)
BPF_CONFORMANCE_SKIPS = {"callx"}
# measured on the uBPF vectors: everything that applies to Linux passes
UBPF_SKIPS = {
    "interp": {"alu", "alu64", "call", "call-memfrob", "call-save", "call_unwind", "err-too-many-instructions",
               "err-unknown-opcode", "jmp", "ldx", "match", "nomatch", "nomatch-ethertype", "nomatch-proto",
               "reload", "st", "stack2", "string-stack", "stx"},
}
UBPF_SKIPS["jit"] = UBPF_SKIPS["jit-unicorn"] = UBPF_SKIPS["interp"] | set(JIT_SKIPS)
UBPF_ERROR_VECTORS = 25


def _outcomes(report, status):
    return {o.vector.name: o.detail for o in report.outcomes if o.status == status}


@pytest.mark.parametrize("engine", ALL_ENGINES)
def test_the_whole_bpf_conformance_suite_passes(conformance_dir, engine):
    report = run(conformance_dir / "bpf_conformance", engine)
    assert len(report.outcomes) == BPF_CONFORMANCE_VECTORS
    assert _outcomes(report, "failed") == {}
    skipped = _outcomes(report, "skipped")
    assert set(skipped) == BPF_CONFORMANCE_SKIPS
    assert "unknown opcode 8d" in skipped["callx"]
    assert report.passed == BPF_CONFORMANCE_VECTORS - len(BPF_CONFORMANCE_SKIPS)


@pytest.mark.parametrize("engine", ALL_ENGINES)
def test_the_ubpf_vectors_that_apply_pass(conformance_dir, engine):
    report = run(conformance_dir / "ubpf", engine)
    assert _outcomes(report, "failed") == {}
    skipped = _outcomes(report, "skipped")
    assert set(skipped) == UBPF_SKIPS[engine]
    assert all(reason for reason in skipped.values())
    passed = _outcomes(report, "passed")
    errors = [name for name in passed if name.startswith("err-")]
    assert len(errors) == UBPF_ERROR_VECTORS - 2  # err-stack-oob included on the JIT engines too
    # err-call-invalid-jump fails at load for the reason it states, not "call stack too deep" at run
    assert passed["err-call-invalid-jump"] == "failed as expected at load: conformance: jump out of range from insn 4 to 0"
    assert passed["err-call0"].endswith("at load: conformance: last insn is not an exit or jmp")
    assert "64-bit load of pseudo kind 1 is not resolved" in passed["err-lddw-invalid-src"]


def test_every_skip_is_in_the_one_table():
    assert "uBPF's 65,536-instruction limit" in SKIPS["err-too-many-instructions"]
    assert "err-stack-oob" not in JIT_SKIPS  # the unverified images' region checks refuse r10+0 on every engine
    assert all(len(reason) > 30 for reason in (*SKIPS.values(), *JIT_SKIPS.values()))


def _vector(asm, error=None, result=None, name="synthetic"):
    return Vector(name, f"/tmp/{name}.data", asm, None, b"", result, error, {})


def _loads_then_fails(message):
    def load(insns, mem):
        def run():
            raise VmError(message)
        return run
    return load


def test_an_error_vector_needs_its_stage_and_reason():
    from bpfnb.vm import load_raw

    jumps_back = "begin:\nmov %r1, 1\ncall local next\nexit\nnext:\nadd %r1, 1\nja begin\nexit"
    v = _vector(jumps_back, "Failed to load code: jump out of bounds at PC 4", 0x1)
    assert run_vector(v, load_raw).status == "passed"
    # the same words, another instruction: refused
    wrong_pc = _vector(jumps_back, "Failed to load code: jump out of bounds at PC 3")
    outcome = run_vector(wrong_pc, load_raw)
    assert outcome.status == "failed" and "jump out of range from insn 3 to " in outcome.detail
    # failing later, for another reason, is no pass
    late = run_vector(v, _loads_then_fails("conformance: insn 1 ((85) call pc+1): call stack too deep"))
    assert late.status == "failed"
    assert late.detail.startswith("expected a load error matching 'jump out of range from insn 4 to '")
    assert late.detail.endswith("got a run error: conformance: insn 1 ((85) call pc+1): call stack too deep")
    # a vector that should fail but runs
    runs = run_vector(_vector("mov %r0, 1\nexit", "Failed to load code: infinite loop at PC 0"), load_raw)
    assert runs.status == "failed" and runs.detail.endswith("it ran: r0=0x1")
    # words the table does not know are a failure, not a pass
    unknown = run_vector(_vector("ja -1\nexit", "Failed to load code: cosmic rays at PC 0"), load_raw)
    assert unknown.status == "failed" and "no bpfnb equivalent is known for uBPF's error 'cosmic rays'" in unknown.detail


def test_an_engine_bug_is_never_an_expected_error():
    def load(insns, mem):
        raise IndexError("index 9 is out of bounds")

    v = _vector("ja +2\nexit", "Failed to load code: jump out of bounds at PC 0")
    outcome = run_vector(v, load)
    assert outcome.status == "failed" and outcome.detail == "load: IndexError: index 9 is out of bounds"


def test_vector_fields(conformance_dir):
    v = parse(conformance_dir / "ubpf" / "factorial.data")
    assert v.result == 0x21C3677C82B40000 and v.error is None
    err = parse(conformance_dir / "ubpf" / "errors" / "err-unknown-opcode.data")
    assert err.raw == (0x6, 0x95) and "unknown opcode" in err.error
    assert err.insns()[0].code == 0x06
    pattern = parse(conformance_dir / "ubpf" / "errors" / "err-stack-oob.data").expected()
    assert (pattern.stage, pattern.pattern) == ("run", r"insn 0 \(.*\): invalid memory access at address")
    swap = parse(conformance_dir / "bpf_conformance" / "rfc9669_swap64.data")
    assert swap.result == 1 and swap.mem == b""
    helper = [v for v in vectors(conformance_dir) if v.group == "helpers"][0]
    assert "uBPF's test helper" in helper.not_applicable()


def test_the_command_prints_the_summary(conformance_dir, capsys):
    from bpfnb.cli import main

    assert main(["conformance", str(conformance_dir / "bpf_conformance"), "--engine", "interp"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "312 passed, 0 failed, 1 skipped"


# -- the plugin, as bpf_conformance's runner starts it ----------------------------------------
def _console_script(tmp_path) -> pathlib.Path:
    """The ``bpfnb-conformance-plugin`` script pip writes from pyproject's [project.scripts]."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["bpfnb-conformance-plugin"].partition(":")
    script = tmp_path / "bpfnb-conformance-plugin"
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\n"
                      f"if __name__ == '__main__':\n    sys.exit({function}())\n")
    script.chmod(0o755)
    return script


def _runner_bytes(data: bytes) -> str:
    """How the runner writes bytes: two hex digits and two spaces each."""
    return "".join(f"{b:02x}  " for b in data)


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_the_plugin_is_the_runners_plugin_path_as_it_is(conformance_dir, engine, tmp_path, monkeypatch, capsys):
    """One start of the console script as the runner starts it (a process per program:
    its start-up is most of the time), then the same entry point in this process for
    the other vectors and a program it refuses."""
    import io

    from bpfnb.cli.conformance_plugin import plugin_main

    def argv(v):  # the runner: [memory] then the --plugin_options words; the program on stdin
        return [*([_runner_bytes(v.mem)] if v.mem else []), "--engine", engine]

    first, *others = [parse(conformance_dir / "ubpf" / f"{name}.data")
                      for name in ("ldxb-0offset", "factorial", "div-by-zero-reg", "arsh64", "mul-loop")]
    assert first.mem  # the memory argument goes through the process too
    done = subprocess.run([str(_console_script(tmp_path)), *argv(first)],
                          input=_runner_bytes(encode(first.insns())) + "\n", capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip(), 16) == first.result
    for v in others:
        monkeypatch.setattr("sys.stdin", io.StringIO(_runner_bytes(encode(v.insns())) + "\n"))
        assert plugin_main(argv(v)) == 0
        assert int(capsys.readouterr().out.strip(), 16) == v.result, v.name
    assert plugin_main(["--program", "f700000000000000 9500000000000000", "--engine", engine]) == 1
    bad = capsys.readouterr()
    assert bad.out == "" and bad.err == "bpfnb-conformance-plugin: conformance: insn 0: unknown opcode f7\n"


def test_the_subcommand_speaks_the_same_protocol(conformance_dir):
    v = parse(conformance_dir / "bpf_conformance" / "lock_fetch_add.data")
    done = subprocess.run([sys.executable, "-m", "bpfnb", "conformance-plugin", "--engine", "interp"],
                          input=encode(v.insns()).hex(), capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert int(done.stdout, 16) == v.result


def test_the_plugin_takes_jit_as_the_design_spells_it(conformance_dir, capsys):
    import argparse

    from bpfnb.cli.conformance_plugin import _arguments, plugin_main

    parser = argparse.ArgumentParser()
    _arguments(parser)
    assert parser.parse_args(["--jit"]).engine == "jit" and parser.parse_args([]).engine == "interp"
    v = parse(conformance_dir / "ubpf" / "mul-loop.data")
    assert plugin_main(["--jit", "--program", encode(v.insns()).hex()]) == 0
    assert int(capsys.readouterr().out, 16) == v.result
    with pytest.raises(SystemExit):  # --jit is --engine jit: not a second engine choice
        plugin_main(["--jit", "--engine", "nope", "--program", "9500000000000000"])


# The running kernel's refusal of each uBPF error vector that applies, loaded as a socket
# filter (Linux 6.18): the error line and the instruction its log names (None: none).
LINUX_6_18 = {
    "err-address-overflow-offset": ("R6 invalid mem access 'scalar'", 1),
    "err-address-underflow": ("R6 invalid mem access 'scalar'", 1),
    "err-call-bad-imm": ("program of this type cannot use helper bpf_bind#64", 5),
    "err-call-invalid-jump": ("jump out of range from insn 4 to 0", None),
    "err-call-unreg": ("program of this type cannot use helper bpf_msg_pull_data#63", 5),
    "err-call0": ("last insn is not an exit or jmp", None),
    "err-endian-size": ("BPF_END uses reserved fields", 0),
    "err-incomplete-lddw": ("invalid bpf_ld_imm64 insn", None),
    "err-incomplete-lddw2": ("invalid bpf_ld_imm64 insn", None),
    "err-infinite-loop": ("unreachable insn 1", None),
    "err-integer-overflow-bounds": ("R6 invalid mem access 'scalar'", 2),
    "err-invalid-reg-dst": ("R11 is invalid", 0),
    "err-invalid-reg-src": ("R11 is invalid", 0),
    "err-jmp-lddw": ("unreachable insn 1", None),
    "err-jmp-out": ("jump out of range from insn 0 to 3", None),
    "err-lddw-invalid-src": ("last insn is not an exit or jmp", None),
    "err-lddw-second-half-invalid-all": ("invalid bpf_ld_imm64 insn", None),
    "err-lddw-second-half-invalid-dst-offset": ("invalid bpf_ld_imm64 insn", None),
    "err-lddw-second-half-invalid-offset": ("invalid bpf_ld_imm64 insn", None),
    "err-lddw-second-half-invalid-src-offset": ("invalid bpf_ld_imm64 insn", None),
    "err-lddw-second-half-invalid-src": ("invalid bpf_ld_imm64 insn", None),
    "err-lddw-second-half-invalid": ("invalid bpf_ld_imm64 insn", None),
    "err-stack-oob": ("invalid write to stack R10 off=0 size=1", 0),
}


@pytest.mark.kernel
def test_linux_refuses_every_ubpf_error_vector_at_load(conformance_dir):
    from bpfnb.kernel.compare import kernel_verdict
    from bpfnb.program import Program

    seen = {}
    for v in vectors(conformance_dir / "ubpf" / "errors"):
        if v.not_applicable() is None:
            k = kernel_verdict(Program("conformance", v.insns(), type="socket_filter"))
            assert k["verdict"] == "reject", v.name
            seen[v.name] = (k["error"], k["error_insn"])
    assert seen == LINUX_6_18
    # where bpfnb's raw load has Linux's words, they are the same words
    for name in ("err-call-invalid-jump", "err-call0", "err-jmp-out"):
        expected = parse(conformance_dir / "ubpf" / "errors" / f"{name}.data").expected()
        assert re.search(expected.pattern, LINUX_6_18[name][0]), name
