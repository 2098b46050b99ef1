"""Loading objects clang-19 built: programs, maps, relocations, line info and
CO-RE, checked against what libbpf and the kernel made of the same object."""

import pathlib
import re
import shutil
import subprocess

import pytest

import bpfnb
from bpfnb.btf import LIVE_VMLINUX, kernel_btf
from bpfnb.errors import BpfnbError, ElfError
from bpfnb.isa import opcodes as op
from bpfnb.isa.disasm import format_insn

ROOT = pathlib.Path(__file__).resolve().parents[2]
TRACER = ROOT / "bpfnb/data/drops.bpf.o"
EXAMPLES = ROOT / "bpfnb/data/examples"
KERNEL_LOG = ROOT / "tests/isa/data/drops_kernel_log.txt"  # Linux 6.18 + libbpf on this object
needs_vmlinux = pytest.mark.skipif(not pathlib.Path(LIVE_VMLINUX).exists(), reason=f"no {LIVE_VMLINUX}")


@pytest.fixture(scope="module")
def tracer():
    return bpfnb.load(TRACER)


def test_programs_and_maps_of_the_tracer(tracer):
    prog = tracer.program("trace_drops")
    assert tracer.program() is prog and tracer.program("tp_btf/kfree_skb") is prog
    assert (prog.type, prog.expected_attach_type, prog.attach_name) == ("tracing", "trace_raw_tp", "kfree_skb")
    assert tracer.license == "GPL" and len(prog.insns) == 151
    assert [(m.name, m.type, m.key_size, m.value_size, m.max_entries) for m in tracer.maps] == [
        ("drops", "perf_event_array", 4, 4, 0),
        ("drops.rodata", "array", 4, 20, 1),
        ("drops.bss", "array", 4, 8, 1),
    ]
    assert tracer.maps[1].initial == bytes(16) + (64).to_bytes(4, "little")  # snap_len = 64
    assert tracer.maps[1].flags & (1 << 7)  # BPF_F_RDONLY_PROG


@needs_vmlinux
def test_attach_btf_id_is_the_tracepoint_typedef(tracer):
    prog = tracer.program()
    assert prog.attach_btf_id == kernel_btf().find("btf_trace_kfree_skb", "typedef")


def test_map_references_become_map_indices(tracer):
    insns = tracer.program().insns
    refs = {i: (insn.src, insn.imm, insns[i + 1].imm) for i, insn in enumerate(insns)
            if insn.is_ld_imm64}
    # filter_reason, filter_ifindex, ... are .rodata (map 1) at their offsets; drops is map 0
    assert refs[21] == (op.BPF_PSEUDO_MAP_IDX_VALUE, 1, 0)
    assert refs[34] == (op.BPF_PSEUDO_MAP_IDX_VALUE, 1, 4)
    assert refs[92] == (op.BPF_PSEUDO_MAP_IDX_VALUE, 1, 8)
    assert refs[119] == (op.BPF_PSEUDO_MAP_IDX_VALUE, 1, 16)
    assert refs[137] == (op.BPF_PSEUDO_MAP_IDX, 0, 0)


@needs_vmlinux
def test_relocated_program_equals_what_libbpf_gave_the_kernel(tracer):
    """Every instruction line of the kernel's log of this object equals ours,
    CO-RE offsets included; only map addresses (which are the kernel's) differ."""
    insns = tracer.program().insns
    theirs = {int(m[1]): m[2] for m in re.finditer(r"^(\d+): (.*)$", KERNEL_LOG.read_text(), re.M)}
    differing = []
    for i, text in theirs.items():
        nxt = insns[i + 1] if insns[i].is_ld_imm64 else None
        if format_insn(insns[i], nxt) != text:
            differing.append(i)
    assert len(theirs) > 100
    assert differing == [21, 34, 92, 99, 119, 137]  # LD_IMM64 of map values/fds only
    assert all(insns[i].is_ld_imm64 for i in differing)


@needs_vmlinux
def test_core_records_say_what_was_relocated(tracer):
    relocs = {r.insn: r for r in tracer.program().core_relocs}
    assert str(relocs[40]) == "insn 40: field_byte_offset sk_buff.len: 8 -> 112"
    assert relocs[30].spec == "sk_buff.dev" and relocs[30].new_value == 16
    assert relocs[32].spec == "net_device.ifindex" and relocs[32].new_value == 224
    assert not any(r.poisoned for r in relocs.values())


def test_line_and_func_info_in_slots(tracer):
    prog = tracer.program()
    assert prog.func_info[0].name == "trace_drops" and prog.func_info[0].insn == 0
    assert prog.source_line(40).text.strip().startswith(("e.len", "__u32", "if", "e."))
    assert all(0 <= li.insn < len(prog.insns) for li in prog.line_info)


def test_btf_defined_map_of_the_socket_filter():
    obj = bpfnb.load(EXAMPLES / "count_protocols.bpf.o")
    (counts,) = obj.maps
    assert (counts.name, counts.type, counts.key_size, counts.value_size, counts.max_entries) == \
        ("counts", "array", 4, 8, 256)
    prog = obj.program()
    assert prog.type == "socket_filter" and prog.section == "socket"
    assert "count_protocols" in str(obj) and "<table>" in obj._repr_html_()


def test_missing_program_lists_the_names(tracer):
    with pytest.raises(BpfnbError, match=r"no program 'nope'; programs: trace_drops \(tp_btf/kfree_skb\)"):
        tracer.program("nope")


def test_not_elf_and_not_bpf_are_named(tmp_path):
    text = tmp_path / "x.o"
    text.write_text("hello")
    with pytest.raises(ElfError, match=r"x.o: not an ELF file"):
        bpfnb.load(text)
    with pytest.raises(ElfError, match=r"not a BPF object"):
        bpfnb.load(shutil.which("ls"))
    with pytest.raises(ElfError, match=r"cannot read"):
        bpfnb.load(tmp_path / "missing.o")
    truncated = tmp_path / "t.o"
    truncated.write_bytes(TRACER.read_bytes()[:300])
    with pytest.raises(ElfError, match=r"t.o"):
        bpfnb.load(truncated)


@pytest.mark.skipif(shutil.which("llvm-objcopy-19") is None, reason="llvm-objcopy-19 not installed")
def test_an_unknown_section_loads_with_type_unknown_and_the_reason(tmp_path):
    out = tmp_path / "renamed.o"
    subprocess.run(["llvm-objcopy-19", "--rename-section", "socket=mystery/thing",
                    str(EXAMPLES / "count_protocols.bpf.o"), str(out)], check=True)
    prog = bpfnb.load(out).program()
    assert (prog.type, prog.section) == ("unknown", "mystery/thing")
    assert prog.type_note == "section 'mystery/thing' names no program type libbpf knows"
    with pytest.raises(BpfnbError, match=r"renamed.o:mystery/thing: program count_protocols has no known program "
                                         r"type \(section 'mystery/thing' names no program type libbpf knows\); "
                                         r"give one: bpfnb.load\(path, types="):
        prog.require_type()
    given = bpfnb.load(out, types={"mystery/thing": "socket_filter"}).program()
    assert (given.type, given.type_note) == ("socket_filter", "type 'socket_filter' given")
    assert given.insns == prog.insns


def test_global_data_maps_take_the_names_libbpf_gives():
    from bpfnb.elf.maps import global_data_map

    # cilium/ebpf's loader-clang-22-el.elf: the kernel logs "map=loader_clan.bss"
    assert global_data_map("loader-clang-22-el.elf", ".bss", bytes(4)).name == "loader_clan.bss"
    assert global_data_map("drops.bpf.o", ".rodata", bytes(4)).name == "drops.rodata"
