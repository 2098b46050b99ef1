"""Hand-written programs, by rule family, for the verifier's tests.

Each ``Case`` is a program type, its instructions and its maps; ``CASES`` maps a
name to one. Their kernel verdicts and error lines are kept in
``golden/kernel.json`` (with the kernel version), so machines without root
still check ours against them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpfnb.elf.sections import BPF_F_SLEEPABLE
from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.isa.helpers import BpfFunc
from bpfnb.isa.insn import ld_imm64
from bpfnb.program import MapDef, Program

HASH = MapDef("h", "hash", 4, 8, 16)
ARRAY = MapDef("a", "array", 4, 8, 4)
PROG_ARRAY = MapDef("p", "prog_array", 4, 4, 4)


def mov(dst, imm, cls=op.BPF_ALU64):
    return Insn(cls | op.BPF_MOV | op.BPF_K, dst, 0, 0, imm)


def movr(dst, src, cls=op.BPF_ALU64):
    return Insn(cls | op.BPF_MOV | op.BPF_X, dst, src, 0, 0)


def alu(operation, dst, imm, cls=op.BPF_ALU64):
    return Insn(cls | operation | op.BPF_K, dst, 0, 0, imm)


def alur(operation, dst, src, cls=op.BPF_ALU64):
    return Insn(cls | operation | op.BPF_X, dst, src, 0, 0)


def ldx(size, dst, src, off):
    return Insn(op.BPF_LDX | op.BPF_MEM | size, dst, src, off, 0)


def stx(size, dst, src, off):
    return Insn(op.BPF_STX | op.BPF_MEM | size, dst, src, off, 0)


def st(size, dst, off, imm):
    return Insn(op.BPF_ST | op.BPF_MEM | size, dst, 0, off, imm)


def jmp(operation, dst, imm, off, cls=op.BPF_JMP):
    return Insn(cls | operation | op.BPF_K, dst, 0, off, imm)


def jmpr(operation, dst, src, off, cls=op.BPF_JMP):
    return Insn(cls | operation | op.BPF_X, dst, src, off, 0)


def ja(off):
    return Insn(op.BPF_JMP | op.BPF_JA, 0, 0, off, 0)


def call(helper):
    return Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, int(helper))


def call_local(off):
    return Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_CALL, 0, off)


def ld_map(dst, index):
    return ld_imm64(dst, index, op.BPF_PSEUDO_MAP_IDX)


EXIT = Insn(op.BPF_JMP | op.BPF_EXIT)
RET0 = (mov(0, 0), EXIT)
R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, FP = range(11)


def lookup(map_index=0, key_slot=-4):
    """key = 0 at fp+key_slot; r0 = map_lookup_elem(map, &key)."""
    return (st(op.BPF_W, FP, key_slot, 0), movr(R2, FP), alu(op.BPF_ADD, R2, key_slot), *ld_map(R1, map_index),
            call(BpfFunc.map_lookup_elem))


# the attach type a program of these types gets when its case names none
DEFAULT_ATTACH = {"cgroup_skb": "cgroup_inet_ingress", "sock_ops": "cgroup_sock_ops"}


@dataclass(frozen=True)
class Case:
    type: str
    insns: tuple[Insn, ...]
    maps: tuple[MapDef, ...] = ()
    attach: str | None = None
    flags: int = 0  # BPF_PROG_LOAD's prog_flags

    def program(self, name: str) -> Program:
        return Program(name[:15].replace("-", "_"), tuple(self.insns), type=self.type, maps=self.maps,
                       expected_attach_type=self.attach or DEFAULT_ATTACH.get(self.type), prog_flags=self.flags)


def _null_checks() -> dict[str, Case]:
    deref = ldx(op.BPF_DW, R1, R0, 0)
    cases = {
        # the taken side of "!= 0" is the non-NULL one
        "null-jne-main": (*lookup(), jmp(op.BPF_JNE, R0, 0, 2), *RET0, deref, *RET0),
        "null-jeq-main": (*lookup(), jmp(op.BPF_JEQ, R0, 0, 3), deref, *RET0, *RET0),
        "null-jne-wrong-side": (*lookup(), jmp(op.BPF_JNE, R0, 0, 3), deref, *RET0, *RET0),
        # a copy made before the check learns it too
        "null-copy-learns": (*lookup(), movr(R6, R0), jmp(op.BPF_JEQ, R0, 0, 3), ldx(op.BPF_DW, R1, R6, 0),
                             *RET0, *RET0),
        # and so does a spilled copy
        "null-spill-learns": (*lookup(), stx(op.BPF_DW, FP, R0, -16), jmp(op.BPF_JEQ, R0, 0, 4),
                              ldx(op.BPF_DW, R3, FP, -16), ldx(op.BPF_DW, R1, R3, 0), *RET0, *RET0),
        # a check inside a subprogram
        "null-jne-subprog": (call_local(2), *RET0, *lookup(), jmp(op.BPF_JNE, R0, 0, 2), *RET0, deref,
                             *RET0),
        "null-unchecked": (*lookup(), deref, *RET0),
        # a pointer checked in the callee, the copy in the caller's stack learns it
        "null-caller-stack": (*lookup(), stx(op.BPF_DW, FP, R0, -16), movr(R1, FP), alu(op.BPF_ADD, R1, -16),
                              call_local(4), ldx(op.BPF_DW, R2, FP, -16), ldx(op.BPF_DW, R0, R2, 0), *RET0,
                              ldx(op.BPF_DW, R2, R1, 0), jmp(op.BPF_JNE, R2, 0, 2), mov(R0, 0), *RET0[1:],
                              mov(R0, 0), EXIT),
    }
    return {name: Case("socket_filter", insns, (HASH,)) for name, insns in cases.items()}


def _subprograms() -> dict[str, Case]:
    cases = {
        # a static function may return any pointer but one into a stack
        "subprog-returns-map-value": (call_local(4), jmp(op.BPF_JEQ, R0, 0, 1), ldx(op.BPF_DW, R1, R0, 0), *RET0,
                                      *lookup(), EXIT),
        "subprog-returns-ctx": (call_local(3), ldx(op.BPF_W, R0, R0, 0), *RET0, movr(R0, R1), EXIT),
        "subprog-returns-own-stack": (call_local(2), *RET0, movr(R0, FP), alu(op.BPF_ADD, R0, -8), EXIT),
        "subprog-returns-callers-stack": (movr(R1, FP), alu(op.BPF_ADD, R1, -8), call_local(2), *RET0,
                                          movr(R0, R1), EXIT),
        "subprog-r0-unset": (call_local(2), *RET0, EXIT),
        "subprog-clobbers-r1-r5": (call_local(2), movr(R0, R1), EXIT, *RET0),
    }
    return {name: Case("socket_filter", insns, (HASH,)) for name, insns in cases.items()}


def _tail_calls() -> dict[str, Case]:
    def tail(map_index, key=0):
        return (movr(R1, R6), *ld_map(R2, map_index), mov(R3, key), call(BpfFunc.tail_call))

    cases = {
        "tail-call": (movr(R6, R1), *tail(2), *RET0),
        "tail-call-r0-after": (movr(R6, R1), *tail(2), EXIT),
        "tail-call-r1-after": (movr(R6, R1), *tail(2), movr(R0, R1), EXIT),
        "tail-call-hash-map": (movr(R6, R1), *tail(0), *RET0),
        "tail-call-array-map": (movr(R6, R1), *tail(1), *RET0),
        "lookup-in-prog-array": (*lookup(2), *RET0),
        "tail-call-key-out-of-range": (movr(R6, R1), *tail(2, 9), *RET0),
        # a function that may return without its exit wants BTF to say it returns an int
        "tail-call-in-subprog-no-btf": (call_local(2), *RET0, movr(R6, R1), *tail(2), *RET0),
        "ld-abs-in-subprog-no-btf": (call_local(2), *RET0, movr(R6, R1),
                                     Insn(op.BPF_LD | op.BPF_ABS | op.BPF_W, 0, 0, 0, 0), *RET0),
    }
    return {name: Case("socket_filter", insns, (HASH, ARRAY, PROG_ARRAY)) for name, insns in cases.items()}


def _packets() -> dict[str, Case]:
    """XDP packet pointers: data against data_end, data_meta against data."""
    data, end, meta = (ldx(op.BPF_W, R2, R1, 0), ldx(op.BPF_W, R3, R1, 4), ldx(op.BPF_W, R4, R1, 8))
    cases = {
        "pkt-checked": (data, end, movr(R5, R2), alu(op.BPF_ADD, R5, 14), jmpr(op.BPF_JGT, R5, R3, 1),
                        ldx(op.BPF_W, R0, R2, 10), *RET0),
        "pkt-past-check": (data, end, movr(R5, R2), alu(op.BPF_ADD, R5, 14), jmpr(op.BPF_JGT, R5, R3, 1),
                           ldx(op.BPF_W, R0, R2, 12), *RET0),
        "pkt-offset-past-check": (data, end, movr(R5, R2), alu(op.BPF_ADD, R5, 14), jmpr(op.BPF_JGT, R5, R3, 2),
                                  alu(op.BPF_ADD, R2, 12), ldx(op.BPF_B, R0, R2, 2), *RET0),
        "meta-checked": (data, meta, movr(R5, R4), alu(op.BPF_ADD, R5, 4), jmpr(op.BPF_JGT, R5, R2, 1),
                         ldx(op.BPF_W, R0, R4, 0), *RET0),
        "meta-unchecked": (data, meta, ldx(op.BPF_W, R0, R4, 0), *RET0),
        "meta-checked-reversed": (data, meta, movr(R5, R4), alu(op.BPF_ADD, R5, 8), jmpr(op.BPF_JLT, R2, R5, 1),
                                  ldx(op.BPF_DW, R0, R4, 0), *RET0),
        "meta-past-check": (data, meta, movr(R5, R4), alu(op.BPF_ADD, R5, 4), jmpr(op.BPF_JGT, R5, R2, 1),
                            ldx(op.BPF_W, R0, R4, 2), *RET0),
    }
    return {name: Case("xdp", insns) for name, insns in cases.items()}


SIZES = {1: op.BPF_B, 2: op.BPF_H, 4: op.BPF_W, 8: op.BPF_DW}
CTX_OFFSETS = {"perf_event": (0, 4, 8, 160, 164, 168, 170, 172, 176, 180, 184),
               "kprobe": (0, 4, 160, 164, 168)}


def _ctx_accesses() -> dict[str, Case]:
    """Every size read and written at offsets around each field of a context."""
    out = {}
    for prog_type, offsets in CTX_OFFSETS.items():
        for off in offsets:
            for size, code in SIZES.items():
                out[f"ctx-{prog_type}-r{off}-{size}"] = Case(prog_type, (ldx(code, R0, R1, off), *RET0))
                out[f"ctx-{prog_type}-w{off}-{size}"] = Case(prog_type, (st(code, R1, off, 0), *RET0))
    return out


RET1 = (mov(R0, 1), EXIT)
# the socket contexts: offsets at and inside each field, for each attach type that changes the rules
SOCK_CTX_OFFSETS = {
    ("sock_ops", None): (0, 1, 2, 4, 8, 20, 22, 24, 26, 64, 84, 164, 166, 168, 172, 176, 184, 188, 192, 200, 208, 212,
                         213, 214, 216, 220, 224),
    ("cgroup_sock", "cgroup_inet_sock_create"): (0, 2, 4, 8, 16, 20, 24, 44, 48, 50, 72, 73, 76, 80),
    ("cgroup_sock", "cgroup_inet4_post_bind"): (0, 16, 24, 25, 26, 28, 44, 46, 48, 49, 52, 54, 56, 72),
    ("cgroup_sock", "cgroup_inet6_post_bind"): (24, 28, 30, 40, 44),
    ("cgroup_sock_addr", "cgroup_inet4_connect"): (0, 2, 4, 5, 6, 8, 16, 24, 26, 28, 32, 36, 40, 44, 48, 60, 64, 68,
                                                   72),
    ("cgroup_sock_addr", "cgroup_udp6_sendmsg"): (4, 8, 12, 16, 20, 24, 40, 44, 48, 52, 56),
}
# struct bpf_sock through a socket pointer: offsets at and inside each field
BPF_SOCK_OFFSETS = (0, 4, 6, 8, 12, 16, 20, 24, 25, 28, 44, 46, 48, 49, 50, 52, 56, 72, 74, 76, 80)


def _sock_ctx_accesses() -> dict[str, Case]:
    """Every size read and written (from a register: an immediate store into a context is
    refused before its offset is looked at) at offsets of the socket contexts."""
    out = {}
    for (prog_type, attach), offsets in SOCK_CTX_OFFSETS.items():
        tag = (attach or prog_type).removeprefix("cgroup_")
        for off in offsets:
            for size, code in SIZES.items():
                out[f"ctx-{tag}-r{off}-{size}"] = Case(prog_type, (ldx(code, R2, R1, off), *RET1), attach=attach)
                out[f"ctx-{tag}-w{off}-{size}"] = Case(prog_type, (mov(R2, 0), stx(code, R1, R2, off), *RET1),
                                                       attach=attach)
    return out


def _sock_pointers() -> dict[str, Case]:
    """Sockets a context points to: sock_ops' ``sk`` (maybe NULL), sock_addr's ``sk``,
    the ``sk`` of an skb (a sock_common, maybe NULL): reads through them, writes, no check."""
    ops_sk, addr_sk, skb_sk = ldx(op.BPF_DW, R2, R1, 184), ldx(op.BPF_DW, R2, R1, 64), ldx(op.BPF_DW, R2, R1, 168)
    out = {
        "sock-ops-sk-unchecked": Case("sock_ops", (ops_sk, ldx(op.BPF_W, R3, R2, 4), *RET1)),
        "sock-ops-sk-write": Case("sock_ops", (ops_sk, jmp(op.BPF_JEQ, R2, 0, 2), mov(R3, 0),
                                               stx(op.BPF_W, R2, R3, 16), *RET1)),
        "sock-ops-sk-arith": Case("sock_ops", (ops_sk, jmp(op.BPF_JEQ, R2, 0, 1), alu(op.BPF_ADD, R2, 4), *RET1)),
        "sock-addr-sk-compared": Case("cgroup_sock_addr", (addr_sk, jmp(op.BPF_JEQ, R2, 0, 1),
                                                           ldx(op.BPF_W, R3, R2, 4), *RET1),
                                      attach="cgroup_inet4_connect"),
        "sock-skb-sk-unchecked": Case("cgroup_skb", (skb_sk, ldx(op.BPF_W, R3, R2, 4), *RET1)),
        "sock-skb-sk-narrow": Case("cgroup_skb", (ldx(op.BPF_W, R2, R1, 168), *RET1)),
    }
    for off in BPF_SOCK_OFFSETS:
        for size, code in SIZES.items():
            out[f"sock-ops-sk-r{off}-{size}"] = Case("sock_ops", (ops_sk, jmp(op.BPF_JEQ, R2, 0, 1),
                                                                  ldx(code, R3, R2, off), *RET1))
            out[f"sock-skb-sk-r{off}-{size}"] = Case("cgroup_skb", (skb_sk, jmp(op.BPF_JEQ, R2, 0, 1),
                                                                    ldx(code, R3, R2, off), *RET1))
    return out


# helpers whose availability depends on the socket program's attach type
SOCK_HELPERS = (BpfFunc.bind, BpfFunc.sock_ops_cb_flags_set, BpfFunc.setsockopt, BpfFunc.getsockopt)
SOCK_HELPER_ATTACH = (("sock_ops", None), ("cgroup_sock", "cgroup_inet_sock_create"),
                      ("cgroup_sock_addr", "cgroup_inet4_connect"), ("cgroup_sock_addr", "cgroup_udp4_recvmsg"),
                      ("cgroup_sock_addr", "cgroup_inet6_bind"))


def _sock_helpers() -> dict[str, Case]:
    """Each socket helper from each kind of socket program: refused by type, or its
    arguments checked (a buffer of 16 zeroed stack bytes)."""
    args = (st(op.BPF_DW, FP, -8, 0), st(op.BPF_DW, FP, -16, 0), mov(R2, 1), mov(R3, 2), movr(R4, FP),
            alu(op.BPF_ADD, R4, -16), mov(R5, 16))
    out = {}
    for prog_type, attach in SOCK_HELPER_ATTACH:
        tag = (attach or prog_type).removeprefix("cgroup_")
        for helper in SOCK_HELPERS:
            out[f"helper-{tag}-{helper.name}"] = Case(prog_type, (*args, call(helper), *RET1), attach=attach)
        # bind(ctx, addr, len): the address in R2
        out[f"helper-{tag}-bind-addr"] = Case(prog_type, (*args, movr(R2, FP), alu(op.BPF_ADD, R2, -16), mov(R3, 16),
                                                          call(BpfFunc.bind), *RET1), attach=attach)
    return out


# struct bpf_tcp_sock through a tcp_sock pointer (not 84 or 92: the upper halves of the u64 counters
# pass the kernel's check, then its rewrite fails, "verifier bug: error during ctx access
# conversion (0)", which bpfnb does not model)
TCP_SOCK_OFFSETS = (0, 2, 4, 76, 80, 88, 96, 100, 104, 108, 112)
CURRENT_NETNS = -1  # BPF_F_CURRENT_NETNS
SOCKMAP = MapDef("socks", "sockmap", 4, 4, 4)
IPV4_TUPLE_SIZE = 12


def _sock_helper_refs() -> dict[str, Case]:
    """Sockets from helpers: casts of an skb's socket (sk_fullsock, tcp_sock,
    get_listener_sock) and lookups that hold a reference until sk_release."""
    skb_sk = ldx(op.BPF_DW, R1, R1, 168)
    tuple_args = (st(op.BPF_DW, FP, -16, 0), st(op.BPF_W, FP, -8, 0), movr(R2, FP), alu(op.BPF_ADD, R2, -16),
                  mov(R3, IPV4_TUPLE_SIZE), mov(R4, CURRENT_NETNS), mov(R5, 0))

    def after_sk(*body):  # r1 = skb->sk; if (!r1) return 1; body; return 1
        return (skb_sk, jmp(op.BPF_JEQ, R1, 0, len(body)), *body, *RET1)

    out = {
        "sk-fullsock": after_sk(call(BpfFunc.sk_fullsock), jmp(op.BPF_JEQ, R0, 0, 1), ldx(op.BPF_W, R2, R0, 4)),
        "sk-fullsock-unchecked": after_sk(call(BpfFunc.sk_fullsock), ldx(op.BPF_W, R2, R0, 4)),
        "sk-fullsock-of-null": (ldx(op.BPF_DW, R1, R1, 168), call(BpfFunc.sk_fullsock), *RET1),
        "sk-fullsock-of-ctx": (call(BpfFunc.sk_fullsock), *RET1),
        "sk-listener": after_sk(call(BpfFunc.get_listener_sock), jmp(op.BPF_JEQ, R0, 0, 1),
                                ldx(op.BPF_W, R2, R0, 72)),
        "sk-release-unreferenced": after_sk(call(BpfFunc.sk_release)),
        "sk-lookup-release": (*tuple_args, call(BpfFunc.sk_lookup_tcp), jmp(op.BPF_JEQ, R0, 0, 2), movr(R1, R0),
                              call(BpfFunc.sk_release), *RET1),
        "sk-lookup-leak": (*tuple_args, call(BpfFunc.sk_lookup_udp), *RET1),
        "sk-lookup-leak-checked": (*tuple_args, call(BpfFunc.sk_lookup_tcp), jmp(op.BPF_JEQ, R0, 0, 1),
                                   ldx(op.BPF_W, R2, R0, 4), *RET1),
        "sk-lookup-release-unchecked": (*tuple_args, call(BpfFunc.sk_lookup_tcp), movr(R1, R0),
                                        call(BpfFunc.sk_release), *RET1),
        "sk-lookup-use-after-release": (*tuple_args, call(BpfFunc.sk_lookup_tcp), jmp(op.BPF_JEQ, R0, 0, 4),
                                        movr(R6, R0), movr(R1, R0), call(BpfFunc.sk_release),
                                        ldx(op.BPF_W, R2, R6, 4), *RET1),
        "sk-lookup-zero-size": (*tuple_args[:4], mov(R3, 0), *tuple_args[5:], call(BpfFunc.sk_lookup_tcp),
                                jmp(op.BPF_JEQ, R0, 0, 2), movr(R1, R0), call(BpfFunc.sk_release), *RET1),
        "skc-lookup-fullsock-release": (*tuple_args, call(BpfFunc.skc_lookup_tcp), jmp(op.BPF_JEQ, R0, 0, 7),
                                        movr(R6, R0), movr(R1, R0), call(BpfFunc.sk_fullsock),
                                        jmp(op.BPF_JEQ, R0, 0, 1), ldx(op.BPF_W, R2, R0, 4), movr(R1, R6),
                                        call(BpfFunc.sk_release), *RET1),
        "sk-lookup-release-cast": (*tuple_args, call(BpfFunc.sk_lookup_tcp), jmp(op.BPF_JEQ, R0, 0, 6),
                                   movr(R6, R0), movr(R1, R0), call(BpfFunc.tcp_sock), jmp(op.BPF_JEQ, R0, 0, 2),
                                   movr(R1, R0), call(BpfFunc.sk_release), *RET1),
    }
    sockmap_lookup = lookup(0)
    out["sockmap-lookup-leak"] = (*sockmap_lookup, jmp(op.BPF_JEQ, R0, 0, 1), ldx(op.BPF_W, R2, R0, 4), *RET1)
    out["sockmap-lookup-release"] = (*sockmap_lookup, jmp(op.BPF_JEQ, R0, 0, 2), movr(R1, R0),
                                     call(BpfFunc.sk_release), *RET1)
    for off in TCP_SOCK_OFFSETS:
        for size, code in SIZES.items():
            out[f"tcp-sock-r{off}-{size}"] = after_sk(call(BpfFunc.tcp_sock), jmp(op.BPF_JEQ, R0, 0, 1),
                                                      ldx(code, R2, R0, off))
    return {name: Case("sched_cls", insns, (SOCKMAP,)) for name, insns in out.items()}


RINGBUF = MapDef("rb", "ringbuf", 0, 0, 4096)


def _ringbuf_refs() -> dict[str, Case]:
    """A ring buffer reservation holds a reference until it is submitted or discarded."""
    reserve = (*ld_map(R1, 0), mov(R2, 8), mov(R3, 0), call(BpfFunc.ringbuf_reserve))
    cases = {
        "rb-leak": (*reserve, *RET0),
        "rb-leak-checked": (*reserve, jmp(op.BPF_JEQ, R0, 0, 1), st(op.BPF_DW, R0, 0, 1), *RET0),
        "rb-submit": (*reserve, jmp(op.BPF_JEQ, R0, 0, 4), st(op.BPF_DW, R0, 0, 1), movr(R1, R0), mov(R2, 0),
                      call(BpfFunc.ringbuf_submit), *RET0),
        "rb-discard-twice": (*reserve, jmp(op.BPF_JEQ, R0, 0, 6), movr(R6, R0), movr(R1, R0), mov(R2, 0),
                             call(BpfFunc.ringbuf_discard), movr(R1, R6), call(BpfFunc.ringbuf_discard), *RET0),
        "rb-write-past": (*reserve, jmp(op.BPF_JEQ, R0, 0, 4), st(op.BPF_DW, R0, 8, 1), movr(R1, R0), mov(R2, 0),
                          call(BpfFunc.ringbuf_submit), *RET0),
    }
    return {name: Case("socket_filter", insns, (RINGBUF,)) for name, insns in cases.items()}


ARRAY_OF_MAPS = MapDef("outer", "array_of_maps", 4, 4, 2, inner=MapDef("inner", "array", 4, 8, 4))
HASH_OF_MAPS = MapDef("houter", "hash_of_maps", 4, 4, 8, inner=MapDef("hinner", "hash", 4, 16, 8))


def _maps_of_maps() -> dict[str, Case]:
    """A lookup in a map of maps gives its inner map (after the NULL check), a map argument."""
    def inner_lookup(outer_index):
        return (*lookup(outer_index), jmp(op.BPF_JEQ, R0, 0, 6), movr(R1, R0), st(op.BPF_W, FP, -8, 0),
                movr(R2, FP), alu(op.BPF_ADD, R2, -8), call(BpfFunc.map_lookup_elem))

    cases = {
        "mim-array-inner-lookup": (*inner_lookup(0), jmp(op.BPF_JEQ, R0, 0, 1), ldx(op.BPF_DW, R0, R0, 0), *RET0),
        "mim-hash-inner-lookup": (*inner_lookup(1), jmp(op.BPF_JEQ, R0, 0, 1), ldx(op.BPF_DW, R0, R0, 8), *RET0),
        "mim-inner-past-value": (*inner_lookup(0), jmp(op.BPF_JEQ, R0, 0, 1), ldx(op.BPF_DW, R0, R0, 8), *RET0),
        "mim-inner-unchecked": (*lookup(0), movr(R1, R0), st(op.BPF_W, FP, -8, 0), movr(R2, FP),
                                alu(op.BPF_ADD, R2, -8), call(BpfFunc.map_lookup_elem), *RET0),
        "mim-inner-deref": (*lookup(0), jmp(op.BPF_JEQ, R0, 0, 1), ldx(op.BPF_W, R0, R0, 0), *RET0),
        "mim-inner-unchecked-result": (*inner_lookup(0), ldx(op.BPF_DW, R0, R0, 0), *RET0),
        "mim-inner-update": (*lookup(0), jmp(op.BPF_JEQ, R0, 0, 9), movr(R1, R0), st(op.BPF_W, FP, -8, 0),
                             st(op.BPF_DW, FP, -16, 0), movr(R2, FP), alu(op.BPF_ADD, R2, -8), movr(R3, FP),
                             alu(op.BPF_ADD, R3, -16), mov(R4, 0), call(BpfFunc.map_update_elem), *RET0),
        "mim-outer-twice-checked": (*lookup(0), jmp(op.BPF_JEQ, R0, 0, 2), jmp(op.BPF_JNE, R0, 0, 1),
                                    ldx(op.BPF_W, R0, R1, 0), *RET0),
    }
    return {name: Case("socket_filter", insns, (ARRAY_OF_MAPS, HASH_OF_MAPS)) for name, insns in cases.items()}


def _sleeping_helpers() -> dict[str, Case]:
    """Helpers that may sleep (bpf_copy_from_user, bpf_copy_from_user_task): offered to the
    tracing types, refused in programs that are not sleepable."""
    buf = (st(op.BPF_DW, FP, -8, 0), movr(R1, FP), alu(op.BPF_ADD, R1, -8), mov(R2, 8), mov(R3, 0))
    task = (mov(R4, 0),)  # never checked: the sleeping is refused first
    return {
        # the sleepable flag itself: uprobes (kprobe programs) may have it, XDP and socket filters not
        "sleep-flag-kprobe": Case("kprobe", RET0, flags=BPF_F_SLEEPABLE),
        "sleep-flag-xdp": Case("xdp", RET0, flags=BPF_F_SLEEPABLE),
        "sleep-flag-socket": Case("socket_filter", RET0, flags=BPF_F_SLEEPABLE),
        "sleep-copy-from-user-sleepable-kprobe": Case("kprobe", (*buf, call(BpfFunc.copy_from_user), *RET0),
                                                      flags=BPF_F_SLEEPABLE),
        "sleep-copy-from-user-kprobe": Case("kprobe", (*buf, call(BpfFunc.copy_from_user), *RET0)),
        "sleep-copy-from-user-raw-tp": Case("raw_tracepoint", (*buf, call(BpfFunc.copy_from_user), *RET0)),
        "sleep-copy-from-user-task-kprobe": Case("kprobe", (*task, *buf, call(BpfFunc.copy_from_user_task), *RET0)),
    }


CASES: dict[str, Case] = {**_null_checks(), **_subprograms(), **_ctx_accesses(), **_tail_calls(), **_packets(),
                          **_sock_ctx_accesses(), **_sock_pointers(), **_maps_of_maps(), **_sock_helpers(),
                          **_sock_helper_refs(), **_ringbuf_refs(), **_sleeping_helpers()}
