"""Objects of every shape the loader reads, each a fixture built by clang-19
(tests/fixtures, ``make fixtures``): static programs and shared subprograms,
function pointers, ``.text``-only code, legacy and iproute2 maps, tail-call
slot and unknown sections, BTF maps of maps, prog arrays initialised with
programs, EM_NONE and big-endian objects."""

import pathlib
import warnings

import pytest

import bpfnb
from bpfnb.elf import BpfnbWarning
from bpfnb.errors import BpfnbError, ElfError
from bpfnb.isa import opcodes as op
from bpfnb.program import MapDef

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests/fixtures"
E_MACHINE_OFFSET = 18  # Elf64_Ehdr.e_machine


def load(name, **kw):
    return bpfnb.load(FIXTURES / name, **kw)


def calls(prog):
    """Slots of bpf-to-bpf calls and function pointers, with the slot they reach."""
    return {i: i + insn.imm + 1 for i, insn in enumerate(prog.insns)
            if (insn.code == op.BPF_JMP | op.BPF_CALL and insn.src == op.BPF_PSEUDO_CALL)
            or (insn.is_ld_imm64 and insn.src == op.BPF_PSEUDO_FUNC)}


def test_static_functions_in_program_sections_are_programs_and_share_their_subprogram():
    obj = load("static_programs.bpf.o")
    assert [(p.name, p.section, p.type) for p in obj] == [
        ("static_socket", "socket", "socket_filter"), ("static_xdp", "xdp", "xdp"),
        ("global_socket", "socket", "socket_filter"), ("loop_xdp", "xdp", "xdp")]
    # each program carries its own copy of scaled(), appended after its code
    for name, length in (("static_socket", 3), ("static_xdp", 9), ("global_socket", 4)):
        prog = obj.program(name)
        assert calls(prog) == {1: length}
        assert [(f.insn, f.name) for f in prog.func_info] == [(0, name), (length, "scaled")]
        assert len(prog.insns) == length + 4  # scaled() is 4 instructions


def test_a_callback_is_a_function_pointer_to_its_appended_copy():
    prog = load("static_programs.bpf.o").program("loop_xdp")
    assert calls(prog) == {5: 14}
    assert prog.insns[5].src == op.BPF_PSEUDO_FUNC and prog.insns[5].imm == 8
    assert [(f.insn, f.name) for f in prog.func_info] == [(0, "loop_xdp"), (14, "count_one")]


def test_a_text_only_object_has_its_global_functions_as_programs_of_unknown_type():
    obj = load("text_only.bpf.o")
    assert [(p.name, p.section, p.type, p.type_note) for p in obj] == [
        ("length", ".text", "unknown", ".text names no program type"),
        ("mark", ".text", "unknown", ".text names no program type")]
    assert obj.notes == [".text only: its global functions are read as programs"]
    assert calls(obj.program("length")) == {1: 3}  # double_it() appended
    given = load("text_only.bpf.o", types={"length": "socket_filter", "mark": "tc"})
    assert [(p.name, p.type, p.type_note) for p in given] == [
        ("length", "socket_filter", "type 'socket_filter' given"),
        ("mark", "sched_cls", "read as section 'tc' (given)")]
    assert given.program("length").insns == obj.program("length").insns


def test_legacy_maps_and_legacy_section_names():
    obj = load("legacy_maps.bpf.o")
    assert [(p.name, p.type, p.type_note) for p in obj] == [
        ("count_lengths", "socket_filter", "legacy name: libbpf < 1.0 read 'socket1' as 'socket'"),
        ("count_per_cpu", "xdp", "legacy name: libbpf < 1.0 read 'xdp_prog' as 'xdp'"),
        ("stack_of_connect", "kprobe", "")]
    assert obj.maps == (MapDef("lengths", "hash", 4, 8, 64, section="maps"),
                        MapDef("per_cpu", "percpu_array", 4, 8, 2, section="maps"),
                        MapDef("stacks", "stack_trace", 4, 1016, 1024, section="maps"))
    refs = [(i.src, i.imm) for i in obj.program("stack_of_connect").insns if i.is_ld_imm64]
    assert refs == [(op.BPF_PSEUDO_MAP_IDX, 2)]


def test_iproute2_maps_tail_call_slots_and_an_unknown_section():
    obj = load("unknown_sections.bpf.o")
    assert [(p.name, p.section, p.type) for p in obj] == [
        ("entry", "classifier", "sched_cls"), ("slot_7", "2/7", "sched_cls"),
        ("from_netdev", "from-netdev", "unknown")]
    assert obj.program("slot_7").type_note == (
        "tail-call slot 7 of prog array 2 (iproute2's __section_tail(2, 7)): its type is its caller's; "
        "the object's other programs are sched_cls")
    assert obj.program("from_netdev").type_note == "section 'from-netdev' names no program type libbpf knows"
    jmp, inner, outer = obj.maps
    assert (jmp.name, jmp.type, jmp.max_entries, jmp.pinning) == ("jmp_map", "prog_array", 8, 2)
    assert (outer.type, outer.inner) == ("array_of_maps", inner)
    assert (inner.type, inner.value_size, inner.max_entries) == ("array", 8, 4)
    given = load("unknown_sections.bpf.o", types={"from-netdev": "sched_cls"}).program("from_netdev")
    assert (given.type, given.type_note) == ("sched_cls", "type 'sched_cls' given")


def test_a_wrong_type_or_name_in_types_is_named():
    with pytest.raises(ElfError, match=r"unknown_sections.bpf.o: types: 'nope' is neither a program nor a program "
                                       r"section of this object \(programs: entry \(classifier\), slot_7 \(2/7\), "
                                       r"from_netdev \(from-netdev\)\)"):
        load("unknown_sections.bpf.o", types={"nope": "xdp"})
    with pytest.raises(ElfError, match=r"types: 'xpd' for 'from-netdev' is neither a program type"):
        load("unknown_sections.bpf.o", types={"from-netdev": "xpd"})


def test_btf_maps_of_maps_with_their_inner_templates_and_initialisers():
    obj = load("map_in_map.bpf.o")
    ingress, egress, by_direction, by_ifindex = obj.maps
    assert (ingress.name, ingress.type, ingress.value_size, ingress.max_entries) == ("ingress", "array", 8, 4)
    assert (by_direction.type, by_direction.key_size, by_direction.value_size, by_direction.max_entries) == (
        "array_of_maps", 4, 4, 2)
    assert by_direction.init == ((0, "ingress"), (1, "egress"))
    assert by_direction.inner.name == "by_direction.inner"
    assert (by_direction.inner.type, by_direction.inner.value_size, by_direction.inner.max_entries) == ("array", 8, 4)
    assert (by_ifindex.type, by_ifindex.max_entries, by_ifindex.init) == ("hash_of_maps", 16, ())
    assert (by_ifindex.inner.type, by_ifindex.inner.value_size, by_ifindex.inner.max_entries) == ("array", 4, 1)


def test_a_prog_array_initialised_with_programs():
    obj = load("prog_array_init.bpf.o")
    (by_length,) = obj.maps
    assert (by_length.type, by_length.max_entries, by_length.inner) == ("prog_array", 3, None)
    assert by_length.init == ((0, "short_packet"), (2, "long_packet"))
    assert [p.name for p in obj] == ["short_packet", "long_packet", "dispatch"]


def test_em_none_is_read_with_a_warning(tmp_path):
    data = bytearray((FIXTURES / "socket_filter.bpf.o").read_bytes())
    data[E_MACHINE_OFFSET:E_MACHINE_OFFSET + 2] = b"\0\0"
    path = tmp_path / "old_clang.o"
    path.write_bytes(bytes(data))
    with pytest.warns(BpfnbWarning, match=r"old_clang.o: e_machine is EM_NONE \(clang before 3.9 wrote it"):
        obj = bpfnb.load(path)
    assert obj.notes == ["e_machine is EM_NONE (clang before 3.9 wrote it into BPF objects): read as EM_BPF"]
    assert obj.program().insns == bpfnb.load(FIXTURES / "socket_filter.bpf.o").program().insns


def test_a_big_endian_object_is_a_clear_error():
    with pytest.raises(ElfError, match=r"text_only.bpfeb.o: a big-endian object \(clang -target bpfeb\); bpfnb "
                                       r"reads little-endian BPF objects only"):
        load("text_only.bpfeb.o")


def test_one_bad_program_does_not_hide_the_others(tmp_path):
    """A call into the middle of a function fails that program only; the error
    names file, section and instruction."""
    from elftools.elf.elffile import ELFFile

    data = bytearray((FIXTURES / "static_programs.bpf.o").read_bytes())
    with open(FIXTURES / "static_programs.bpf.o", "rb") as f:
        xdp = next(s for s in ELFFile(f).iter_sections() if s.name == "xdp")
        call = xdp["sh_offset"] + 8 * 1  # static_xdp's `call scaled` (imm -1 from .text)
    data[call + 4:call + 8] = (0).to_bytes(4, "little")  # now .text insn 1, inside scaled()
    path = tmp_path / "broken.o"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        obj = bpfnb.load(path)
    assert [p.name for p in obj] == ["static_socket", "global_socket", "loop_xdp"]
    assert list(obj.failed) == ["static_xdp"]
    message = f"{path}:xdp: insn 1: call to .text insn 1, which is not the start of a function"
    assert (obj.failed["static_xdp"].section, str(obj.failed["static_xdp"])) == ("xdp", message)
    with pytest.raises(BpfnbError) as caught:
        obj.program("static_xdp")
    assert str(caught.value) == message


def test_the_verifier_asks_for_a_type_it_does_not_have():
    prog = load("unknown_sections.bpf.o").program("from_netdev")
    with pytest.raises(BpfnbError, match=r"unknown_sections.bpf.o:from-netdev: program from_netdev has no known "
                                         r"program type \(section 'from-netdev' names no program type libbpf "
                                         r"knows\); give one: bpfnb.load\(path, types=\{'from_netdev': TYPE\}\) "
                                         r"or --type TYPE / --section NAME"):
        bpfnb.verify(prog)


def test_the_initialised_prog_array_runs_its_programs_in_the_vm():
    obj = load("prog_array_init.bpf.o")
    table = obj.tail_calls()
    assert {m: {k: p.name for k, p in slots.items()} for m, slots in table.items()} == {
        "by_length": {0: "short_packet", 2: "long_packet"}}
    for size, r0 in ((60, 1), (150, 2)):
        assert bpfnb.Vm(obj.program("dispatch"), tail_calls=table).run(packet=bytes(size)).r0 == r0


def test_iproute2_tail_call_sections_fill_the_prog_array_of_their_id():
    obj = load("unknown_sections.bpf.o")
    assert obj.maps[0].id == 2
    table = obj.tail_calls()
    assert {m: {k: p.name for k, p in slots.items()} for m, slots in table.items()} == {"jmp_map": {7: "slot_7"}}
    for size, r0 in ((60, 0), (65, 1)):  # entry tail-calls slot 7: skb->len > 64
        assert bpfnb.Vm(obj.program("entry"), tail_calls=table).run(packet=bytes(size)).r0 == r0


def test_struct_ops_programs_know_the_kernel_struct_and_member_they_implement():
    obj = load("struct_ops.bpf.o")
    assert [(p.name, p.type, p.attach_name) for p in obj] == [
        ("half_ssthresh", "struct_ops", "ssthresh"), ("keep_cwnd", "struct_ops", "undo_cwnd"),
        ("no_avoid", "struct_ops", "cong_avoid")]
    btf = obj.kernel_btf
    if btf is not None:
        assert {p.attach_btf_id for p in obj} == {btf.find("tcp_congestion_ops", "struct")}


def test_maps_that_cannot_be_read_fail_only_the_programs_using_them(tmp_path):
    from elftools.elf.elffile import ELFFile

    data = bytearray((FIXTURES / "unknown_sections.bpf.o").read_bytes())
    with open(FIXTURES / "unknown_sections.bpf.o", "rb") as f:
        elf = ELFFile(f)
        maps_index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == "maps")
        symtab = elf.get_section_by_name(".symtab")
        entries = [symtab["sh_offset"] + k * symtab["sh_entsize"] for k, s in enumerate(symtab.iter_symbols())
                   if s["st_shndx"] == maps_index and s["st_info"]["type"] == "STT_OBJECT"]
    for entry in entries:  # Elf64_Sym.st_size: records of 12 bytes, shorter than any bpf_map_def
        data[entry + 16:entry + 24] = (12).to_bytes(8, "little")
    path = tmp_path / "short_maps.o"
    path.write_bytes(bytes(data))
    obj = bpfnb.load(path)
    assert [p.name for p in obj] == ["slot_7"] and obj.maps == ()
    assert str(obj.failed["entry"]) == (
        f"{path}:classifier: insn 0: uses map 'jmp_map', whose definition bpfnb cannot read (3 maps of 12 bytes "
        "in 108: not struct bpf_map_def records (at least 16 bytes, a multiple of 4))")
    assert obj.notes == [f"{path}:maps: 3 maps of 12 bytes in 108: not struct bpf_map_def records "
                         "(at least 16 bytes, a multiple of 4)"]


def test_the_raw_listing_refuses_a_big_endian_object_too(capsys):
    from bpfnb.cli import main

    assert main(["disasm", "--raw", str(FIXTURES / "text_only.bpfeb.o")]) == 1
    assert "text_only.bpfeb.o: a big-endian object (clang -target bpfeb)" in capsys.readouterr().err
