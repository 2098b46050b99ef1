"""The interpreter: against the kernel's BPF_PROG_TEST_RUN, on synthetic kernel
objects (PROBE_MEM faults), and the simulated drops frame against the live one."""

import errno
import pathlib
import random
import struct

import pytest

import bpfnb
from bpfnb.dropwatch import SyntheticDrop, simulate_drops
from bpfnb.errors import KernelError, VmError
from bpfnb.frames.drops import SCHEMA
from bpfnb.isa import Insn
from bpfnb.program import Program
from bpfnb.vm import UNMAPPED, Vm

ROOT = pathlib.Path(__file__).resolve().parents[2]
UDP = bytes(12) + b"\x08\x00" + bytes.fromhex("4500001c00004000401100007f0000017f000001") + \
    struct.pack("!HHHH", 40000, 53, 8, 0)
TCP = bytes(12) + b"\x08\x00" + bytes.fromhex("450000280000400040060000c0a80001c0a80002") + \
    struct.pack("!HHIIBBHHH", 1234, 80, 1, 0, 0x50, 0x02, 8192, 0, 0)
IPV6 = bytes(12) + b"\x86\xdd" + bytes(40)


def _packets(rng):
    yield UDP
    yield TCP
    yield IPV6
    yield UDP[:20]  # truncated
    for _ in range(8):
        yield bytes(rng.randrange(256) for _ in range(rng.randrange(14, 90)))


@pytest.mark.kernel
@pytest.mark.parametrize("path", ["tests/fixtures/socket_filter.bpf.o", "tests/fixtures/xdp.bpf.o",
                                  "tests/fixtures/bpf2bpf.bpf.o", "tests/fixtures/globals.bpf.o",
                                  "bpfnb/data/examples/count_protocols.bpf.o"])
def test_r0_and_maps_equal_the_kernels_test_run(path):
    from bpfnb.kernel import load

    prog = bpfnb.load(ROOT / path).program()
    vm = Vm(prog)
    rng = random.Random(5)
    with load(prog, log_level=0) as loaded:
        compared = 0
        for packet in _packets(rng):
            try:
                kernel_r0, _, _ = loaded.test_run(packet)
            except KernelError as exc:
                # the kernel refuses an skb whose IPv4/IPv6 header is shorter than its ethertype says
                assert exc.errno == errno.EINVAL and packet[12:14] in (b"\x08\x00", b"\x86\xdd")
                continue
            assert vm.run(packet=packet).r0 == kernel_r0, packet.hex()
            compared += 1
        assert compared >= 8
        for k, definition in enumerate(prog.maps):
            if definition.type != "array" or definition.initial is not None:
                continue
            for key in range(min(definition.max_entries, 256)):
                theirs = loaded.maps[k].lookup(key.to_bytes(4, "little"))[: definition.value_size]
                size = (definition.value_size + 7) // 8 * 8
                ours = vm.memory.read(int(vm.map_addr[k]) + key * size, definition.value_size)
                assert ours == theirs, (definition.name, key)


def test_the_tracer_on_a_synthetic_skb_and_an_unmapped_dev():
    drops = simulate_drops([SyntheticDrop(UDP), SyntheticDrop(TCP, "SOCKET_RCVBUFF", 2, "eth0"),
                            SyntheticDrop(UDP, dev_mapped=False)])
    assert list(drops["reason"]) == ["NO_SOCKET", "SOCKET_RCVBUFF", "NO_SOCKET"]
    assert list(drops["len"]) == [28, 40, 28] and list(drops["ifindex"]) == [1, 2, 0]
    assert list(drops["ifname"]) == ["lo", "eth0", ""]
    assert list(drops["dport"]) == [53, 80, 53] and list(drops["l4proto"]) == ["udp", "tcp", "udp"]
    assert drops["tcp_flags"][1] == 2  # SYN
    assert drops["packet"][0] == UDP[14:]  # bpf_skb_output's packet bytes
    assert drops.attrs["probe_mem_faults"] == 1  # dev->ifindex through an unmapped pointer read 0


def test_filters_apply_in_the_simulated_tracer_too():
    assert len(simulate_drops([SyntheticDrop(UDP), SyntheticDrop(TCP)], proto="tcp")) == 1
    assert len(simulate_drops([SyntheticDrop(UDP), SyntheticDrop(TCP)], port=53)) == 1


@pytest.mark.kernel
def test_simulated_and_live_frames_have_one_schema():
    import threading

    from bpfnb import traffic
    from bpfnb.dropwatch import watch_drops

    port = traffic.closed_port()
    attached, stop = threading.Event(), threading.Event()

    def send():  # once the tracer is attached (its signal, not a sleep); the watch stops at 3 drops
        if attached.wait(60):
            traffic.udp_to_closed_port(3, port=port)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        live = watch_drops(60, port=port, attached=attached, stop=stop,
                           on_progress=lambda counts, lost, elapsed: sum(counts.values()) >= 3 and stop.set())
    finally:
        attached.set()
        sender.join()
    assert len(live) == 3
    simulated = simulate_drops([SyntheticDrop(UDP)])
    assert tuple(live.columns) == tuple(simulated.columns) == SCHEMA
    assert [str(t) for t in live.dtypes] == [str(t) for t in simulated.dtypes]


def test_a_bad_access_names_the_instruction_and_address():
    prog = Program("bad", (Insn(0xB7, 1, 0, 0, 0x1234), Insn(0x61, 0, 1, 4), Insn(0x95)))
    with pytest.raises(VmError, match=r"insn 1 \(\(61\) r0 = \*\(u32 \*\)\(r1 \+4\)\): invalid memory access "
                                      r"at address 0x1238"):
        Vm(prog).run()
    with pytest.raises(VmError, match="R11 is invalid"):
        Vm(Program("bad", (Insn(0xB7, 11), Insn(0x95))))


def test_kernel_objects_follow_the_btf():
    from bpfnb.btf import kernel_btf

    btf = kernel_btf()
    vm = Vm(Program("p", (Insn(0xB7), Insn(0x95))), kernel_btf=btf)
    sk = vm.new("struct sock", **{"__sk_common.skc_dport": 0x3500})
    found = btf.find_member(btf.find("sock", "struct"), 12, 2)
    assert found.path == ("__sk_common", "skc_dport")
    assert vm.memory.read(sk.addr + 12, 2) == (0x3500).to_bytes(2, "little")
    skb = vm.skb(len=74, dev=None)
    assert vm.memory.read(skb.addr + 112, 4) == (74).to_bytes(4, "little")
    assert vm.memory.read(skb.addr + 16, 8) == bytes(8)
    assert vm.memory.find(UNMAPPED) is None


def _tail_call_fixture():
    obj = bpfnb.load(ROOT / "tests/fixtures/tail_call.bpf.o")
    progs = {p.name: p for p in obj}
    return progs, {"jmp_table": {0: progs["chain"], 1: progs["big"], 2: progs["medium"]}}


def test_tail_calls_jump_fall_through_and_stop_at_the_limit():
    progs, table = _tail_call_fixture()
    for size, r0, landed in ((40, 7 + 26 * 3, 0), (80, 200 + 66, 2), (150, 100, 1)):
        vm = Vm(progs["dispatch"], tail_calls=table)
        assert vm.run(packet=bytes(size)).r0 == r0
        assert vm.memory.read(int(vm.map_addr[1]) + 8, 8) == landed.to_bytes(8, "little")
    vm = Vm(progs["chain"], tail_calls=table)
    assert vm.run(packet=bytes(60)).r0 == 1
    assert vm.memory.read(int(vm.map_addr[1]), 8) == (1 + 33).to_bytes(8, "little")  # MAX_TAIL_CALL_CNT
    with pytest.raises(VmError, match="not from the same object"):
        Vm(progs["dispatch"], tail_calls={"jmp_table": {0: Program("other", progs["big"].insns)}})
    with pytest.raises(VmError, match="no prog array 'nope'"):
        Vm(progs["dispatch"], tail_calls={"nope": {0: progs["big"]}})


@pytest.mark.kernel
def test_tail_calls_equal_the_kernels():
    from bpfnb.kernel import load

    progs, table = _tail_call_fixture()
    first = load(progs["dispatch"], log_level=0)
    others = {n: load(p, log_level=0, maps=list(first.maps)) for n, p in progs.items() if n != "dispatch"}
    try:
        for slot, prog in table["jmp_table"].items():
            first.map("jmp_table").update(slot.to_bytes(4, "little"), others[prog.name].fd.to_bytes(4, "little"))
        bss = first.maps[1]
        for entry, loaded in (("dispatch", first), ("chain", others["chain"])):
            for size in (40, 80, 150):
                bss.update((0).to_bytes(4, "little"), bytes(16))
                retval, _, _ = loaded.test_run(bytes(size))
                vm = Vm(progs[entry], tail_calls=table)
                assert vm.run(packet=bytes(size)).r0 == retval, (entry, size)
                assert vm.memory.read(int(vm.map_addr[1]), 16) == bss.lookup((0).to_bytes(4, "little"))[:16]
    finally:
        for loaded in others.values():
            loaded.close()
        first.close()


def test_events_decode_through_the_programs_btf():
    from bpfnb.btf import kernel_btf
    from bpfnb.dropwatch import resolve_filters, tracer_program
    from bpfnb.verifier import verify

    btf = kernel_btf()
    prog, _ = tracer_program(resolve_filters())
    checked = verify(prog, log_level=0)
    vm = Vm(checked.program, kernel_btf=btf)
    head = UDP.ljust(256, b"\0")  # the tracer probe-reads a fixed-size header
    dev = vm.new("struct net_device", ifindex=4, name=b"veth0")
    skb = vm.skb(len=len(UDP) - 14, dev=dev, head=head, data=head[14:], network_header=14, protocol=8)
    run = vm.run([skb, 0xFFFFFFFF81234567, 2, 0])
    assert list(run.events.columns) == ["cpu", "time_ns", "size", "raw"] and len(run.events) == 1
    events = run.events_as("drop_event")
    row = events.iloc[0]
    assert (row["len"], row["ifindex"], row["ifname"], row["reason"]) == (28, 4, "veth0", 2)
    assert (row["location"], row["skb"], row["dport"]) == (0xFFFFFFFF81234567, int(skb), 53)
    assert row["packet"] == UDP[14:]  # bpf_skb_output's bytes after the record
    assert "time_ns" in events.columns and events.columns[-1] == "packet"
    with pytest.raises(bpfnb.BpfnbError, match="no type struct 'nope'"):
        run.events_as("nope")


def test_runs_free_what_they_made():
    from bpfnb.isa.assembler import assemble
    from bpfnb.jit import jit

    # xdp: the packet is the program's to change; its bytes after the run are in the result
    prog = Program("t", assemble("ldxw %r2, [%r1+0]\nstb [%r2+0], 7\nmov %r0, 2\nexit"), type="xdp")
    vm = Vm(prog)
    image = jit(prog, verify=False, probe_mem=(), stack_depths=(0,), vm=vm)
    vm.run(packet=bytes(64))
    used, regions = vm.memory.used, len(vm.memory.regions)
    for _ in range(50):
        assert vm.run(packet=bytes(64)).packet == b"\x07" + bytes(63)
        assert image.run(packet=bytes(64)).packet == b"\x07" + bytes(63)
    assert image.run(packet=bytes(64), engine="unicorn").packet == b"\x07" + bytes(63)
    assert (vm.memory.used, len(vm.memory.regions)) == (used, regions)
