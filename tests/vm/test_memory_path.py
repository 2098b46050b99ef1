"""The interpreter's loads and stores: every width at every alignment (aligned ones take
one machine word, the rest go byte by byte), and the region check that remembers the
last region an access fell in: a later access in another region, outside it, past its
end, or needing a permission it lacks is still checked against the whole table."""

import random

import pytest

from bpfnb.errors import VmError
from bpfnb.isa.assembler import assemble
from bpfnb.program import Program
from bpfnb.vm import Vm
from bpfnb.vm.interp import STACK_REGION

M64 = (1 << 64) - 1
SIZES = {"b": 1, "h": 2, "w": 4, "dw": 8}
SPAN = 24  # the stack bytes the accesses touch: r10-24 .. r10-1
FOLD = 31  # r0 = r0 * FOLD + loaded value, so the order of the loads counts


def _widths_program(seed: int, count: int) -> tuple[str, int]:
    """Random stores and loads of every width at every offset in the top SPAN bytes of the
    stack, and the r0 a byte-level model of them gives."""
    rng = random.Random(seed)
    memory = bytearray(SPAN)  # memory[SPAN + off] is r10 + off
    lines = ["mov %r0, 0"]
    r0 = 0
    for k in range(SPAN // 8):  # the stack starts defined
        value = rng.getrandbits(64)
        lines += [f"lddw %r1, {value:#x}", f"stxdw [%r10-{SPAN - 8 * k}], %r1"]
        memory[8 * k:8 * k + 8] = value.to_bytes(8, "little")
    for _ in range(count):
        suffix = rng.choice(tuple(SIZES))
        size = SIZES[suffix]
        off = -rng.randrange(size, SPAN + 1)
        at = SPAN + off
        if rng.random() < 0.4:
            value = rng.getrandbits(64)
            if rng.random() < 0.5:
                lines += [f"lddw %r1, {value:#x}", f"stx{suffix} [%r10{off}], %r1"]
            else:
                value = rng.randrange(-(1 << 31), 1 << 31)
                lines.append(f"st{suffix} [%r10{off}], {value}")
            memory[at:at + size] = (value & ((1 << 8 * size) - 1)).to_bytes(size, "little")
        else:
            signed = suffix != "dw" and rng.random() < 0.3
            lines += [f"ldx{'s' if signed else ''}{suffix} %r2, [%r10{off}]", f"mul %r0, {FOLD}", "add %r0, %r2"]
            loaded = int.from_bytes(memory[at:at + size], "little", signed=signed) & M64
            r0 = (r0 * FOLD + loaded) & M64
    lines.append("exit")
    return "\n".join(lines), r0


@pytest.mark.parametrize("seed", range(4))
def test_every_width_at_every_alignment_equals_a_byte_model(seed):
    text, expected = _widths_program(seed, 300)
    result = Vm(Program(f"widths{seed}", assemble(text), type="socket_filter")).run(packet=bytes(64))
    assert result.r0 == expected


def test_accesses_moving_between_stack_ctx_and_packet_read_each_regions_bytes():
    # the packet's bytes, the ctx's len and the stack in turn, twice round
    packet = bytes(range(14)) + bytes(range(100, 160))
    text = """
        mov %r0, 0
        mov %r6, %r1
        mov %r7, 2
    round:
        ldxw %r2, [%r6+76]
        ldxb %r3, [%r2+5]
        stxdw [%r10-8], %r3
        ldxw %r4, [%r6+0]
        ldxdw %r5, [%r10-8]
        ldxh %r3, [%r2+10]
        mul %r0, 31
        add %r0, %r5
        mul %r0, 31
        add %r0, %r4
        mul %r0, 31
        add %r0, %r3
        sub %r7, 1
        jne %r7, 0, round
        exit
    """
    result = Vm(Program("regions", assemble(text), type="socket_filter")).run(packet=packet)
    data = packet[14:]  # a socket filter's skb starts after the Ethernet header
    r0 = 0
    for _ in range(2):
        for value in (data[5], len(data), int.from_bytes(data[10:12], "little")):
            r0 = (r0 * FOLD + value) & M64
    assert result.r0 == r0


def _fault(text: str, type_: str = "socket_filter") -> str:
    with pytest.raises(VmError) as caught:
        Vm(Program("fault", assemble(text), type=type_)).run(packet=bytes(64))
    return str(caught.value)


def test_a_store_to_a_read_only_region_just_read_faults():
    # a kprobe's ctx (its registers) is read-only: the load finds it, the store may not
    # reuse that finding
    message = _fault("ldxdw %r2, [%r1+0]\nstxdw [%r1+0], %r2\nmov %r0, 0\nexit", type_="kprobe")
    assert "fault: insn 1 ((7b) *(u64 *)(r1 +0) = r2): invalid memory access at address" in message


@pytest.mark.parametrize(("access", "shown"), [
    ("ldxdw %r3, [%r10-4]", "(79) r3 = *(u64 *)(r10 -4)"),  # straddles the stack's end
    ("ldxb %r3, [%r10+0]", "(71) r3 = *(u8 *)(r10 +0)"),  # just past it
    ("stxw [%r10-2], %r2", "(63) *(u32 *)(r10 -2) = r2"),
    ("ldxdw %r3, [%r4-8]", "(79) r3 = *(u64 *)(r4 -8)"),  # below its start (r4: the stack's first byte)
])
def test_an_access_past_the_region_just_used_faults_naming_the_instruction(access, shown):
    message = _fault(f"ldxdw %r2, [%r10-8]\nmov %r4, %r10\nadd %r4, -{STACK_REGION}\nldxb %r5, [%r4+0]\n"
                     f"{access}\nmov %r0, 0\nexit")
    assert f"fault: insn 4 ({shown}): invalid memory access" in message


def test_an_address_that_would_wrap_faults():
    message = _fault("ldxdw %r2, [%r10-8]\nmov %r3, -1\nldxb %r4, [%r3+0]\nmov %r0, 0\nexit")
    assert "insn 2 ((71) r4 = *(u8 *)(r3 +0)): invalid memory access at address 0xffffffffffffffff" in message
