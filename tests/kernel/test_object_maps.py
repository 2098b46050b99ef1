"""The kernel bridge on objects of every shape: maps of maps with their inner
templates and initialised slots, legacy and stack-trace maps, sizes left to the
loader, refusals that say why, and ``--vs-kernel`` telling a refusal from a
rejection (Linux 6.18 on the development machines)."""

import json
import pathlib

import pytest

import bpfnb
from bpfnb.cli import main
from bpfnb.errors import KernelError
from bpfnb.kernel import load
from bpfnb.kernel.compare import kernel_verdict
from bpfnb.kernel.maps import create_map, perf_max_stack, possible_cpus, prepared
from bpfnb.program import MapDef

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests/fixtures"
U32_SIZE = 4


def key(n: int) -> bytes:
    return n.to_bytes(U32_SIZE, "little")


def test_sizes_left_to_the_loader_are_filled_as_libbpf_and_the_tools_do():
    d, notes = prepared(MapDef("events", "perf_event_array", 0, 0, 0))
    assert (d.key_size, d.value_size, d.max_entries, notes) == (4, 4, possible_cpus(), [])
    d, notes = prepared(MapDef("stacks", "stack_trace", 4, 0, 0))
    assert (d.value_size, d.max_entries) == (perf_max_stack() * 8, 1)
    assert notes == [f"map stacks: value size 0 (left to the loader): {perf_max_stack() * 8} bytes, "
                     f"{perf_max_stack()} frames (kernel.perf_event_max_stack)",
                     "map stacks: max_entries 0 (left to the loader): created with 1"]
    d, notes = prepared(MapDef("sk", "sk_storage", 4, 8, 0, flags=1))
    assert (d.max_entries, notes) == (0, [])  # storage maps take 0


# (program, types given) of every new fixture, and the kernel's verdict on
# Linux 6.18: all accepted once a type is given
@pytest.mark.kernel
@pytest.mark.parametrize(("fixture", "types"), [
    ("static_programs", None), ("text_only", {"length": "socket_filter", "mark": "tc"}), ("legacy_maps", None),
    ("unknown_sections", {"from-netdev": "sched_cls"}), ("map_in_map", None), ("prog_array_init", None),
])
def test_every_program_of_the_new_fixtures_is_accepted(fixture, types):
    for prog in bpfnb.load(FIXTURES / f"{fixture}.bpf.o", types=types):
        verdict = kernel_verdict(prog)
        assert verdict["verdict"] == "accept", (prog.name, verdict)


@pytest.mark.kernel
def test_maps_of_maps_get_their_inner_template_and_their_initialised_slots():
    prog = bpfnb.load(FIXTURES / "map_in_map.bpf.o").program("count_by_direction")
    with load(prog, log_level=1) as loaded:
        assert loaded.ok and loaded.notes == ()
        outer = loaded.map("by_direction")
        assert outer.lookup(key(0)) == key(loaded.map("ingress").id)
        assert outer.lookup(key(1)) == key(loaded.map("egress").id)
        with pytest.raises(KernelError, match=r"map by_ifindex: lookup failed \(ENOENT"):
            loaded.map("by_ifindex").lookup(key(0))  # declared empty


@pytest.mark.kernel
def test_legacy_iproute2_map_of_maps_and_stack_trace_maps_are_created():
    obj = bpfnb.load(FIXTURES / "unknown_sections.bpf.o", types={"from-netdev": "sched_cls"})
    with load(obj.program("from_netdev"), log_level=1) as loaded:
        assert loaded.ok and [m.definition.type for m in loaded.maps] == ["prog_array", "array", "array_of_maps"]
        assert loaded.notes == ("map jmp_map: pinning 2 not applied: bpfnb creates a private map, nothing in bpffs",)
    with load(bpfnb.load(FIXTURES / "legacy_maps.bpf.o").program("stack_of_connect"), log_level=1) as loaded:
        stacks = loaded.map("stacks")
        assert loaded.ok and (stacks.definition.value_size, stacks.fd is not None) == (1016, True)


@pytest.mark.kernel
def test_a_prog_array_initialised_with_programs_says_its_slots_stay_empty():
    prog = bpfnb.load(FIXTURES / "prog_array_init.bpf.o").program("dispatch")
    with load(prog, log_level=1) as loaded:
        assert loaded.ok
        assert loaded.notes == ("map by_length: slot 0 (short_packet) left empty: the program is not loaded",
                                "map by_length: slot 2 (long_packet) left empty: the program is not loaded")


@pytest.mark.kernel
def test_a_map_the_kernel_refuses_says_why():
    with pytest.raises(KernelError, match=r"map sk: the kernel refused to create a sk_storage map \(key 4, value 8, "
                                          r"max_entries 0, flags 0x1\): EINVAL: a sk_storage map needs its "
                                          r"value's BTF, and the object's BTF was not loaded"):
        create_map(MapDef("sk", "sk_storage", 4, 8, 0, flags=1))
    with pytest.raises(KernelError, match=r"EINVAL: a map of maps needs an inner map template"):
        create_map(MapDef("outer", "array_of_maps", 4, 4, 2))
    with pytest.raises(KernelError, match=r"EINVAL: a ringbuf's max_entries must be a power of 2"):
        create_map(MapDef("rb", "ringbuf", 0, 0, 1000))


@pytest.mark.kernel
def test_an_unused_map_the_kernel_refuses_does_not_stop_the_program():
    from dataclasses import replace

    prog = bpfnb.load(FIXTURES / "legacy_maps.bpf.o").program("count_lengths")  # uses map 0
    bad = MapDef("outer", "array_of_maps", 4, 4, 2)  # no inner template: refused
    with load(replace(prog, maps=(*prog.maps, bad)), log_level=1) as loaded:
        assert loaded.ok and loaded.map("lengths").fd is not None
        (note,) = loaded.notes
        assert note.endswith("a map of maps needs an inner map template (not used by count_lengths)")
        with pytest.raises(KernelError, match=r"map outer: not created: map outer: the kernel refused"):
            loaded.map("outer").lookup(key(0))


@pytest.mark.kernel
def test_vs_kernel_tells_a_refusal_from_a_rejection(capsys):
    assert main(["verify", "--vs-kernel", "--json", str(FIXTURES / "fentry.bpf.o")]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["kernel"]["verdict"] == "refused" and record["kernel"]["errno"] == "EPERM"
    assert record["kernel"]["reason"].endswith(
        "fentry.bpf.o:fentry/tcp_connect: the kernel refused to load the program; fentry/fexit/fmod_ret "
        "programs are not permitted on this kernel (EPERM: Operation not permitted)")
    assert main(["verify", "--vs-kernel", str(FIXTURES / "fentry.bpf.o")]) == 0
    out = capsys.readouterr().out
    assert "; kernel refused to load it: " in out and "kernel reject" not in out


@pytest.mark.kernel
def test_struct_ops_programs_load_against_the_member_they_implement():
    from bpfnb.kernel.program import _expected_attach_type

    obj = bpfnb.load(FIXTURES / "struct_ops.bpf.o")
    members = [m.name for m in obj.kernel_btf.type(obj.program("half_ssthresh").attach_btf_id).members]
    assert [_expected_attach_type(p) for p in obj] == [members.index(n) for n in ("ssthresh", "undo_cwnd",
                                                                                  "cong_avoid")]
    for prog in obj:
        assert kernel_verdict(prog)["verdict"] == "accept", prog.name


@pytest.mark.kernel
def test_an_objects_prog_array_is_filled_with_its_programs_as_libbpf_fills_it():
    obj = bpfnb.load(FIXTURES / "prog_array_init.bpf.o")
    with load(obj.program("dispatch"), log_level=1, tail_calls=obj.tail_calls()) as loaded:
        assert loaded.ok and loaded.notes == ()
        assert [t.ok for t in loaded.tail_targets] == [True, True]
        for size, r0 in ((60, 1), (150, 2)):
            retval, _, _ = loaded.test_run(bytes(size))
            assert retval == r0 == bpfnb.Vm(obj.program("dispatch"), tail_calls=obj.tail_calls()).run(
                packet=bytes(size)).r0
    assert all(t.fd is None for t in loaded.tail_targets)
    iproute2 = bpfnb.load(FIXTURES / "unknown_sections.bpf.o")
    with load(iproute2.program("entry"), log_level=1, tail_calls=iproute2.tail_calls()) as loaded:
        assert [loaded.test_run(bytes(size))[0] for size in (60, 65)] == [0, 1]
