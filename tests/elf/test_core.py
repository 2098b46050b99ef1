"""CO-RE relocations as libbpf's relo_core.c makes them (tests/fixtures/core.bpf.c).

Expected values are the kernel BTF's own offsets (found here by walking the
BTF by member name) and, where the machine allows it, libbpf's: the golden
tests/fixtures/core.libbpf.log (libbpf 1.1.2 on the release it names) and a
live libbpf load of the fixtures and of $BPFNB_CORPUS (bcc's libbpf-tools).
"""

import ctypes.util
import os
import pathlib

import pytest

import bpfnb
from bpfnb.btf import LIVE_VMLINUX, kernel_btf
from bpfnb.elf import core
from bpfnb.errors import RelocationError
from bpfnb.isa import imm64
from bpfnb.isa import opcodes as op

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests/fixtures/core.bpf.o"
GOLDEN = ROOT / "tests/fixtures/core.libbpf.log"
needs_vmlinux = pytest.mark.skipif(not os.access(LIVE_VMLINUX, os.R_OK), reason=f"{LIVE_VMLINUX} not readable")


def golden_release(path: pathlib.Path) -> str:
    return path.read_text().splitlines()[0].rsplit(" ", 1)[-1]


def member_bits(btf, struct: str, *names: str) -> int:
    """Bit offset of struct.names..., searching anonymous members by name (the test's own walk)."""
    type_id, total = btf.find(struct, "struct"), 0
    for name in names:
        found = _find(btf, type_id, name)
        assert found is not None, f"{struct}: no member {name}"
        bits, type_id = found
        total += bits
    return total


def _find(btf, type_id: int, name: str):
    for m in btf.type(btf.resolve(type_id)).members:
        if m.name == name:
            return m.bit_offset, m.type
        if not m.name:
            inner = _find(btf, m.type, name)
            if inner is not None:
                return m.bit_offset + inner[0], inner[1]
    return None


@pytest.fixture(scope="module")
def obj():
    return bpfnb.load(FIXTURE, kernel_btf=kernel_btf())


def relocs(obj, prog):
    return {(r.func_insn, r.kind): r for r in obj.program(prog).core_relocs}


def test_essential_names_cut_the_last_flavour():
    assert core.essential_name("sk_buff___old") == "sk_buff"
    assert core.essential_name("task_struct___x___y") == "task_struct___x"
    assert core.essential_name("a____b") == "a____b"  # four underscores: no flavour
    assert core.essential_name("___x") == "___x"
    assert core.essential_name("sock") == "sock"


def test_access_through_anonymous_structs_and_unions(obj):
    btf = kernel_btf()
    r = relocs(obj, "anon_members")
    num = r[(1, "field_byte_offset")]
    assert (num.spec, num.old_value) == ("sock.__sk_common.skc_num", 10)
    assert num.new_value == member_bits(btf, "sock", "__sk_common", "skc_num") // 8 and not num.poisoned
    assert r[(5, "field_byte_offset")].new_value == member_bits(btf, "sock", "__sk_common", "skc_dport") // 8
    assert r[(15, "field_byte_offset")].new_value == member_bits(btf, "sock", "__sk_common", "skc_family") // 8
    # libbpf's notation: anonymous members are steps of the raw access, not names
    assert num.local_spec.endswith("struct sock___nested.__sk_common.skc_num (0:0:1:0:1 @ offset 10)")
    assert "struct sock.__sk_common.skc_num (0:0:" in num.target_spec
    prog = obj.program("anon_members")
    assert prog.insns[num.insn].off == num.new_value and not prog.warnings


def test_bitfields_are_relocated_without_checking_the_original(obj):
    btf = kernel_btf()
    bit = member_bits(btf, "sk_buff", "fclone")
    byte_off = bit // 8  # a 2-bit field inside one byte (__u8): a one-byte load
    r = relocs(obj, "bitfields")
    assert r[(0, "field_byte_offset")].new_value == byte_off
    assert r[(4, "field_byte_size")].new_value == 1
    assert r[(19, "field_lshift_u64")].new_value == 64 - (bit + 2 - byte_off * 8)
    assert r[(22, "field_rshift_u64")].new_value == 62
    assert r[(20, "field_signed")].new_value == 0
    # clang's own load of skb->cloned held our layout's byte (4), not the kernel's:
    # libbpf does not validate bitfield originals, and neither do we
    cloned = r[(57, "field_byte_offset")]
    assert (cloned.old_value, cloned.new_value) == (4, member_bits(btf, "sk_buff", "cloned") // 8)


def test_field_size_signedness_and_existence(obj):
    r = relocs(obj, "field_facts")
    assert r[(0, "field_byte_size")].new_value == 2  # __u16 queue_mapping
    assert r[(1, "field_signed")].new_value == 0  # unsigned int len
    assert r[(3, "field_exists")].new_value == 1


def test_a_missing_field_is_poisoned_and_reported(obj):
    guarded = obj.program("guarded_missing_field")
    r = relocs(obj, "guarded_missing_field")
    assert r[(0, "field_exists")].new_value == 0
    poisoned = r[(3, "field_byte_offset")]
    assert poisoned.poisoned and poisoned.target_type == 0
    call = guarded.insns[poisoned.insn]
    assert (call.code, call.imm) == (op.BPF_JMP | op.BPF_CALL, core.POISON_HELPER)
    (warning,) = guarded.warnings
    assert "sk_buff.bpfnb_no_such_field" in warning and "guarded_missing_field insn 3" in warning
    assert bpfnb.verify(guarded).ok  # dead code: the verifier never reaches it
    unguarded = bpfnb.verify(obj.program("unguarded_missing_field"))
    assert not unguarded.ok and unguarded.error == "invalid func unknown#195896080"


def test_type_and_enum_relocations(obj):
    btf = kernel_btf()
    r = relocs(obj, "type_and_enum_facts")
    prog = obj.program("type_and_enum_facts")
    assert r[(0, "type_exists")].new_value == 1
    assert r[(1, "type_exists")].new_value == 0  # no kernel has it: zero, not poison
    assert r[(3, "type_size")].new_value == btf.sizeof(btf.find("sock_common", "struct"))
    target = r[(5, "type_id_target")]
    assert target.new_value == btf.find("sk_buff", "struct") == imm64(prog.insns, target.insn)
    local = r[(8, "type_id_local")]
    assert local.new_value == local.old_value == obj.btf.find("sk_buff___bits", "struct")
    assert r[(11, "type_matches")].new_value == 0  # our sock_common copy lacks skc_hash's union
    reasons = btf.type(btf.find("skb_drop_reason", "enum"))
    assert r[(13, "enumval_value")].new_value == next(v.value for v in reasons.values
                                                      if v.name == "SKB_DROP_REASON_NO_SOCKET")
    assert r[(16, "enumval_exists")].new_value == 0
    assert not any(x.poisoned for x in r.values())


def test_malformed_access_is_an_error_naming_the_instruction(obj):
    from bpfnb.isa import Insn

    insns = [Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_W, 0, 1, 0, 0)]
    sk_buff = obj.btf.find("sk_buff___bits", "struct")
    with pytest.raises(RelocationError, match=r"x.o:s: insn 0: .*access '0:99'.*member #99"):
        core.apply(insns, 0, obj.btf, kernel_btf(), sk_buff, "0:99", "field_byte_offset", where="x.o:s")
    wrong = [Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_W, 0, 1, 3, 0)]  # len is at 0 in our copy
    with pytest.raises(RelocationError, match=r"unexpected load/store offset: got 3, expected 0 \(sk_buff.len\)"):
        core.apply(wrong, 0, obj.btf, kernel_btf(), sk_buff, "0:0", "field_byte_offset", where="x.o:s")


def test_disasm_shows_the_warning(capsys):
    from bpfnb.cli import main

    assert main(["disasm", str(FIXTURE), "--prog", "unguarded_missing_field"]) == 0
    out = capsys.readouterr().out
    assert "; warning: CO-RE byte_off sk_buff.bpfnb_no_such_field: no match in the target BTF" in out
    assert "call unknown#195896080" in out


@needs_vmlinux
def test_every_patch_equals_libbpfs_golden_log():
    from benchmarks.core_vs_libbpf import compare

    if golden_release(GOLDEN) != os.uname().release:
        pytest.skip(f"golden log is of Linux {golden_release(GOLDEN)}, this is {os.uname().release}")
    c = compare(str(FIXTURE), log=GOLDEN.read_text())
    assert (c.patches, c.agree, c.poisoned, c.differ) == (30, 30, 2, [])


libbpf_live = pytest.mark.skipif(os.geteuid() != 0 or not ctypes.util.find_library("bpf"),
                                 reason="needs root and libbpf.so (Debian libbpf1) to load with libbpf")


@libbpf_live
@pytest.mark.kernel
def test_libbpf_tools_relocated_as_libbpf_relocates_them():
    """Every CO-RE-patched instruction of $BPFNB_CORPUS (bcc's libbpf-tools, cilium/ebpf's
    testdata) as libbpf wrote it, and every extern as libbpf resolved it."""
    from benchmarks.core_vs_libbpf import compare

    dirs = [d for d in os.environ.get("BPFNB_CORPUS", "").split(os.pathsep) if os.path.isdir(d)]
    if not dirs:  # one directory, or several separated by os.pathsep (as tests/elf/test_corpus.py takes them)
        pytest.skip("set BPFNB_CORPUS to a directory of libbpf-tools objects (/work/scratch/corpora/libbpf-tools)")
    results = [compare(os.path.join(d, n)) for d in dirs for n in sorted(os.listdir(d)) if n.endswith(".o")]
    loaded = [c for c in results if not c.bpfnb_refused]
    # libbpf relocates every .text function; bpfnb only the ones a program calls (the
    # only ones loaded): javagc's bpf_usdt_arg/_arg_cnt/_cookie are called by none
    assert [d for c in loaded for d in c.differ if not _unreached(c.path, d)] == []
    # measured: 752 of 755 over the 58 libbpf-tools (the 3 others are javagc's unreached
    # usdt helpers), 156 of 156 over cilium/ebpf's testdata
    assert sum(c.agree for c in loaded) >= 0.99 * sum(c.patches for c in results)
    assert sum(c.externs_agree for c in loaded) == sum(c.externs for c in loaded)


def _unreached(path: str, difference: str) -> bool:
    """A difference in a function no program of the object places (calls)."""
    function = difference.split(" ", 1)[0]
    if not difference.endswith("bpfnb no relocation"):
        return False
    return all(function not in {f.name for f in p.func_info} for p in bpfnb.load(path))


@needs_vmlinux
def test_raw_programs_typed_by_a_section_name(tmp_path, capsys):
    """``verify --raw F --section tp_btf/kfree_skb`` and ``--type tracing --attach kfree_skb``
    both make the tp_btf program an ELF section of that name would."""
    import json

    from bpfnb.cli import main
    from bpfnb.cli.verify import raw_programs
    from bpfnb.errors import BpfnbError
    from bpfnb.isa import Insn, encode

    btf = kernel_btf()
    len_off = member_bits(btf, "sk_buff", "len") // 8
    raw = tmp_path / "skb_len.bin"  # r1 = ctx[0] (the skb); r0 = skb->len; r0 = 0; exit
    raw.write_bytes(encode([Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_DW, 1, 1, 0, 0),
                            Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_W, 0, 1, len_off, 0),
                            Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 0),
                            Insn(op.BPF_JMP | op.BPF_EXIT, 0, 0, 0, 0)]))
    by_section, = raw_programs([raw], section="tp_btf/kfree_skb", kernel_btf=btf)
    by_type, = raw_programs([raw], type="tracing", attach="kfree_skb", kernel_btf=btf)
    for prog in (by_section, by_type):
        assert (prog.type, prog.section, prog.expected_attach_type, prog.attach_name) == \
            ("tracing", "tp_btf/kfree_skb", "trace_raw_tp", "kfree_skb")
        assert prog.attach_btf_id == btf.find("btf_trace_kfree_skb", "typedef")
    raw_tp, = raw_programs([raw], section="raw_tp/kfree_skb", kernel_btf=btf)
    assert (raw_tp.type, raw_tp.attach_name, raw_tp.attach_btf_id) == ("raw_tracepoint", "kfree_skb", None)
    with pytest.raises(BpfnbError, match="section tp_btf/bpfnb_nope: .*no type typedef 'btf_trace_bpfnb_nope'"):
        raw_programs([raw], section="tp_btf/bpfnb_nope", kernel_btf=btf)
    with pytest.raises(BpfnbError, match="programs of type 'socket_filter' take no attach target"):
        bpfnb.program(raw.read_bytes(), attach="kfree_skb")
    fentry = bpfnb.program(raw.read_bytes(), section="fentry/tcp_connect", kernel_btf=btf)
    assert (fentry.expected_attach_type, fentry.attach_btf_id) == ("trace_fentry", btf.find("tcp_connect", "func"))
    assert main(["verify", "--raw", str(raw), "--type", "tracing", "--attach", "kfree_skb", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["section"], record["verdict"]) == ("tp_btf/kfree_skb", "accept")
