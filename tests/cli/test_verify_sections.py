"""``bpfnb verify --raw FILE --section NAME``: a raw program gets the type, attach type
and target an ELF section of that name gives it (``bpfnb.elf.sections``), for every
kind of libbpf section name, and is verified as such."""

import json
import os

import pytest

from bpfnb.btf import kernel_btf
from bpfnb.btf.btf import LIVE_VMLINUX
from bpfnb.cli import main
from bpfnb.cli.verify import raw_programs
from bpfnb.elf.sections import BPF_F_SLEEPABLE, attach_btf_id, classify
from bpfnb.isa import Insn, encode
from bpfnb.isa import opcodes as op

# r1 = ctx[0]; r0 = *(u64 *)(r1 + 0); r0 = 0; exit: a load only a BTF pointer in ctx[0] allows
FIRST_ARG_READ = [Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_DW, 1, 1, 0, 0),
                  Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_DW, 0, 1, 0, 0),
                  Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 0),
                  Insn(op.BPF_JMP | op.BPF_EXIT, 0, 0, 0, 0)]
SECTIONS = ("tp_btf/kfree_skb", "raw_tp/kfree_skb", "raw_tracepoint/kfree_skb", "tp/skb/kfree_skb",
            "tracepoint/skb/kfree_skb", "kprobe/tcp_connect", "kretprobe/tcp_connect", "fentry/tcp_connect",
            "fexit/tcp_connect", "fmod_ret/security_file_open", "fentry.s/tcp_connect", "iter/task", "lsm/file_open",
            "perf_event", "socket", "xdp", "tc", "tcx/ingress", "cgroup_skb/egress")
# what bpfnb's verifier says of FIRST_ARG_READ in each: a BTF context's first argument is a
# struct pointer to read through; raw_tp's and kprobe's first u64 is a number
VERDICTS = {"tp_btf/kfree_skb": None, "raw_tp/kfree_skb": "R1 invalid mem access 'scalar'",
            "fentry/tcp_connect": None, "fexit/tcp_connect": None,
            "kprobe/tcp_connect": "R1 invalid mem access 'scalar'"}
needs_vmlinux = pytest.mark.skipif(not os.access(LIVE_VMLINUX, os.R_OK), reason=f"{LIVE_VMLINUX} is not readable here")


@pytest.fixture
def raw(tmp_path):
    path = tmp_path / "first_arg.bin"
    path.write_bytes(encode(FIRST_ARG_READ))
    return path


@needs_vmlinux
@pytest.mark.parametrize("section", SECTIONS)
def test_a_raw_program_is_typed_as_its_section_would_be(raw, section):
    btf = kernel_btf()
    kind = classify(section)
    prog, = raw_programs([raw], section=section, kernel_btf=btf)
    assert (prog.type, prog.expected_attach_type, prog.attach_name) == (kind.type, kind.attach_type, kind.target)
    assert prog.attach_btf_id == attach_btf_id(kind, btf)
    assert bool(prog.prog_flags & BPF_F_SLEEPABLE) == section.startswith("fentry.s/")


@needs_vmlinux
@pytest.mark.parametrize("section", sorted(VERDICTS))
def test_verify_raw_with_a_section_is_verified_as_that_program(raw, section, capsys):
    status = main(["verify", "--raw", str(raw), "--section", section, "--json"])
    record = json.loads(capsys.readouterr().out)
    assert (record["section"], record["error"]) == (section, VERDICTS[section])
    assert status == (0 if VERDICTS[section] is None else 1)


@needs_vmlinux
def test_a_section_naming_no_kernel_target_is_an_error_naming_it(raw, capsys):
    assert main(["verify", "--raw", str(raw), "--section", "tp_btf/bpfnb_nope"]) == 1
    assert "section tp_btf/bpfnb_nope: " in capsys.readouterr().err


@pytest.mark.kernel
def test_vs_kernel_tells_a_refusal_from_a_verdict(raw, capsys):
    """fentry: bpfnb's verdict, and the kernel's refusal (EPERM here), not a reject."""
    assert main(["verify", "--raw", str(raw), "--section", "fentry/tcp_connect", "--vs-kernel", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["verdict"] == "accept"
    assert (record["kernel"]["verdict"], record["kernel"]["errno"]) == ("refused", "EPERM")
    assert main(["verify", "--raw", str(raw), "--section", "tp_btf/kfree_skb", "--vs-kernel", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["verdict"], record["kernel"]["verdict"]) == ("accept", "accept")
