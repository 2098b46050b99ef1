"""Generated kfunc calls: every modelled cpumask, task and cgroup kfunc (tp_btf) and
nf_conntrack kfunc (tc, xdp) called with arguments of every register kind — the
context, NULL, constants, unknown numbers, referenced, maybe-NULL, offset, trusted,
RCU and untrusted BTF pointers, initialised, uninitialised and short stack buffers,
packet pointers — against the kernel's verdicts and error lines kept in
golden/kfunc_generated.json (regenerate with BPFNB_UPDATE_GOLDEN=1 on the kernel)."""

import random

import pytest

from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.isa.insn import encode
from bpfnb.program import program

from . import golden
from .btfgen import _ldx, _mov, _movi
from .test_btf_access import btf as btf  # noqa: F401  (the module's fixture, by name)

GOLDEN = "kfunc_generated"
REJECTS = 150  # measured on Linux 6.18: of the 160 generated programs the kernel rejects 150 (33 distinct error lines)
SEED, COUNT = 18, 80  # tracing programs; tc and xdp half as many each
CALL = op.BPF_JMP | op.BPF_CALL
EXIT = [_movi(0, 0), Insn(op.BPF_JMP | op.BPF_EXIT)]
TUPLE_SIZE, OPTS_SIZE, NETNS_CURRENT = 12, 16, -1
XDP_DATA, XDP_DATA_END, SKB_DATA, SKB_DATA_END = 0, 4, 76, 80
UNINIT_STACK = -256  # a stack buffer nothing writes


def _kf(btf, name):
    return Insn(CALL, 0, op.BPF_PSEUDO_KFUNC_CALL, 0, btf.find(name, "func"))


def _stx(off, src):
    return Insn(op.BPF_STX | op.BPF_MEM | op.BPF_DW, 10, src, off)


def _st(off, size_code=op.BPF_DW, imm=0):
    return Insn(op.BPF_ST | op.BPF_MEM | size_code, 10, 0, off, imm)


def _jeq0(reg, n):
    return Insn(op.BPF_JMP | op.BPF_JEQ | op.BPF_K, reg, 0, n, 0)


def _jne0(reg, n):
    return Insn(op.BPF_JMP | op.BPF_JNE | op.BPF_K, reg, 0, n, 0)


def _addi(reg, imm):
    return Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, reg, 0, 0, imm)


def _fp(reg, off):
    return [_mov(reg, 10), _addi(reg, off)]


def _member_off(btf, struct, name):
    return next(m.bit_offset // 8 for m in btf.members(btf.find(struct, "struct")) if m.name == name)


# -- tp_btf: cpumask, task and cgroup kfuncs -------------------------------------------------
# the stack: fp-8 a created mask (NULL-checked), fp-16 another (maybe NULL), fp-24 the task,
# fp-32 its cpus_ptr (RCU), fp-40 its default cgroup (RCU), fp-48 an untrusted cast, fp-64..-49 zeroes
TRACING_KFUNCS = {"bpf_cpumask_set_cpu": 2, "bpf_cpumask_test_cpu": 2, "bpf_cpumask_first": 1,
                  "bpf_cpumask_release": 1, "bpf_cpumask_acquire": 1, "bpf_cpumask_populate": 3,
                  "bpf_cpumask_copy": 2, "bpf_cpumask_and": 3, "bpf_cpumask_weight": 1, "bpf_task_acquire": 1,
                  "bpf_task_release": 1, "bpf_task_under_cgroup": 2, "bpf_cgroup_ancestor": 2,
                  "bpf_cgroup_acquire": 1, "bpf_task_from_pid": 1}
TRACING_RELEASE_OF = {"bpf_cpumask_acquire": "bpf_cpumask_release", "bpf_task_acquire": "bpf_task_release",
                      "bpf_cgroup_ancestor": "bpf_cgroup_release", "bpf_task_from_pid": "bpf_task_release",
                      "bpf_cgroup_acquire": "bpf_cgroup_release"}
TRACING_VALUES = {
    "ctx": lambda r: [_mov(r, 6)], "null": lambda r: [_movi(r, 0)], "const3": lambda r: [_movi(r, 3)],
    "const16": lambda r: [_movi(r, 16)], "unknown": lambda r: [_ldx(r, 6, 8)],
    "mask": lambda r: [_ldx(r, 10, -8)], "mask_or_null": lambda r: [_ldx(r, 10, -16)],
    "mask_off8": lambda r: [_ldx(r, 10, -8), _addi(r, 8)], "task": lambda r: [_ldx(r, 10, -24)],
    "cpus": lambda r: [_ldx(r, 10, -32)], "cgrp": lambda r: [_ldx(r, 10, -40)],
    "untrusted": lambda r: [_ldx(r, 10, -48)], "fp16": lambda r: _fp(r, -64),
    "fp_uninit": lambda r: _fp(r, UNINIT_STACK), "fp8": lambda r: _fp(r, -8),
}


def _tracing_program(btf, name, vals):
    cpus, cgroups = _member_off(btf, "task_struct", "cpus_ptr"), _member_off(btf, "task_struct", "cgroups")
    dfl = _member_off(btf, "css_set", "dfl_cgrp")
    p = [_mov(6, 1), _kf(btf, "bpf_cpumask_create"), _jne0(0, 2), *EXIT, _stx(-8, 0),
         _kf(btf, "bpf_cpumask_create"), _stx(-16, 0),
         _ldx(7, 6, 0), _stx(-24, 7), _ldx(1, 7, cpus), _stx(-32, 1), _ldx(1, 7, cgroups), _ldx(1, 1, dfl),
         _stx(-40, 1), _mov(1, 7), _movi(2, btf.find("cpumask", "struct")), _kf(btf, "bpf_rdonly_cast"),
         _stx(-48, 0), _st(-56), _st(-64)]
    for k, v in enumerate(vals):
        p += TRACING_VALUES[v](k + 1)
    p.append(_kf(btf, name))
    if name in TRACING_RELEASE_OF:
        p += [_mov(1, 0), _jeq0(1, 1), _kf(btf, TRACING_RELEASE_OF[name])]
    p += [_ldx(1, 10, -16), _jeq0(1, 1), _kf(btf, "bpf_cpumask_release"), _ldx(1, 10, -8),
          _kf(btf, "bpf_cpumask_release")]
    return program(encode(p + EXIT), section="tp_btf/task_newtask", kernel_btf=btf, name="kfunc_gen")


# -- tc and xdp: nf_conntrack kfuncs ------------------------------------------------------------
# the stack: fp-16..-1 a tuple, fp-32..-17 options (current netns), fp-40 a looked-up
# conntrack entry (NULL-checked), fp-48 another (maybe NULL); r7, r8 the packet and its end
CT_VALUES = {
    "ctx": lambda r: [_mov(r, 6)], "null": lambda r: [_movi(r, 0)], "const12": lambda r: [_movi(r, 12)],
    "const16": lambda r: [_movi(r, 16)], "const37": lambda r: [_movi(r, 37)], "unknown": lambda r: [_ldx(r, 6, 0, 4)],
    "ct": lambda r: [_ldx(r, 10, -40)], "ct_or_null": lambda r: [_ldx(r, 10, -48)],
    "ct_off8": lambda r: [_ldx(r, 10, -40), _addi(r, 8)], "tuple": lambda r: _fp(r, -16),
    "opts": lambda r: _fp(r, -32), "fp_uninit": lambda r: _fp(r, UNINIT_STACK), "fp4": lambda r: _fp(r, -4),
    "pkt16": lambda r: [_mov(r, 7), _addi(r, 16), Insn(op.BPF_JMP | op.BPF_JLE | op.BPF_X, r, 8, 2, 0), *EXIT,
                        _mov(r, 7)],
    "pkt_unchecked": lambda r: [_mov(r, 7)],
}


def _ct_kfuncs(xdp: bool) -> dict:
    kind = "xdp" if xdp else "skb"
    return {f"bpf_{kind}_ct_lookup": 5, f"bpf_{kind}_ct_alloc": 5, "bpf_ct_release": 1, "bpf_ct_change_timeout": 2,
            "bpf_ct_change_status": 2, "bpf_ct_set_timeout": 2, "bpf_ct_insert_entry": 1}


def _ct_program(btf, section, name, vals):
    xdp = section == "xdp"
    lookup = "bpf_xdp_ct_lookup" if xdp else "bpf_skb_ct_lookup"
    data, end = (XDP_DATA, XDP_DATA_END) if xdp else (SKB_DATA, SKB_DATA_END)

    def lookup_into(off):
        return [_mov(1, 6), *_fp(2, -16), _movi(3, TUPLE_SIZE), *_fp(4, -32), _movi(5, OPTS_SIZE),
                _kf(btf, lookup), _stx(off, 0)]

    p = [_mov(6, 1), _st(-8), _st(-16), _st(-24), _st(-32), _st(-32, op.BPF_W, NETNS_CURRENT)]
    p += [*lookup_into(-40), _jne0(0, 2), *EXIT, *lookup_into(-48), _ldx(7, 6, data, 4), _ldx(8, 6, end, 4)]
    for k in reversed(range(len(vals))):  # a checked packet pointer's exit clobbers nothing set after it
        p += CT_VALUES[vals[k]](k + 1)
    p.append(_kf(btf, name))
    if name.endswith(("_lookup", "_alloc", "_insert_entry")):
        p += [_mov(1, 0), _jeq0(1, 1), _kf(btf, "bpf_ct_release")]
    p += [_ldx(1, 10, -48), _jeq0(1, 1), _kf(btf, "bpf_ct_release"), _ldx(1, 10, -40), _kf(btf, "bpf_ct_release")]
    return program(encode(p + EXIT), section=section, kernel_btf=btf, name="kfunc_gen")


def _programs(btf) -> dict:
    rng = random.Random(SEED)
    out = {}
    for k in range(COUNT):
        name = rng.choice(sorted(TRACING_KFUNCS))
        vals = [rng.choice(sorted(TRACING_VALUES)) for _ in range(TRACING_KFUNCS[name])]
        out[f"tracing-{k}:{name}({','.join(vals)})"] = _tracing_program(btf, name, vals)
    for section in ("tc", "xdp"):
        kfuncs = _ct_kfuncs(section == "xdp")
        for k in range(COUNT // 2):
            name = rng.choice(sorted(kfuncs))
            vals = [rng.choice(sorted(CT_VALUES)) for _ in range(kfuncs[name])]
            out[f"{section}-{k}:{name}({','.join(vals)})"] = _ct_program(btf, section, name, vals)
    return out


def test_generated_kfunc_calls_get_the_kernels_verdicts_and_error_lines(btf):  # noqa: F811
    expected = golden.read(GOLDEN)["programs"]
    progs = _programs(btf)
    assert sorted(progs) == sorted(expected)
    differ = [name for name, prog in progs.items() if golden.our_judgement(prog) != expected[name]]
    assert differ == []
    assert sum(e["verdict"] == "reject" for e in expected.values()) == REJECTS


@pytest.mark.kernel
def test_kfunc_generated_golden_file_is_the_running_kernels(btf):  # noqa: F811
    golden.require_kernel()
    live = {name: golden.kernel_judgement(prog) for name, prog in _programs(btf).items()}
    golden.check_running_kernels(GOLDEN, live)
