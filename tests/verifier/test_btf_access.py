"""Pointer kinds and trust through the kernel BTF, BTF-typed helper arguments and
kfunc calls: hand-written tp_btf programs with the messages and register types
Linux 6.18 prints for them (checked against the running kernel by the kernel-marked
test; the offsets are those of the golden files' kernel, whose BTF they are built from)."""

import pytest

from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.isa.insn import encode, ld_imm64
from bpfnb.program import program
from bpfnb.verifier import verify

from . import golden
from .btfgen import _ldx, _mov, _movi

CALL = op.BPF_JMP | op.BPF_CALL
EXIT = [_movi(0, 0), Insn(op.BPF_JMP | op.BPF_EXIT)]
GET_CURRENT_TASK_BTF, SKC_TO_TCP_SOCK, D_PATH, GET_FUNC_RET = 158, 137, 147, 184
SKB_SK, SKB_DATA, TASK_REAL_PARENT, TASK_PID, TASK_SIZE = 24, 200, 1280, 1264, 3264
TASK_CGROUPS, CSS_SET_DFL_CGRP = 2376, 112


def _null_skip(reg: int, n: int) -> Insn:
    return Insn(op.BPF_JMP | op.BPF_JEQ | op.BPF_K, reg, 0, n, 0)


def _kfunc(btf, name: str) -> Insn:
    return Insn(CALL, 0, op.BPF_PSEUDO_KFUNC_CALL, 0, btf.find(name, "func"))


def _cases(btf):
    """name -> (section, instructions, the kernel's error line or None, printed types expected)."""
    acquire = [Insn(CALL, 0, 0, 0, GET_CURRENT_TASK_BTF), _mov(1, 0), _kfunc(btf, "bpf_task_acquire")]
    return {
        "nullable_arg": ("tp_btf/kfree_skb", [_ldx(7, 1, 24), _ldx(0, 7, 0)],
                         "R7 invalid mem access 'trusted_ptr_or_null_'", ["trusted_ptr_or_null_sock(id=1)"]),
        "nullable_arith": ("tp_btf/kfree_skb", [_ldx(5, 1, 24), Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 5, 0, 0, 8)],
                           "R5 pointer arithmetic on trusted_ptr_or_null_ prohibited, null-check it first", []),
        "null_checked": ("tp_btf/kfree_skb", [_ldx(7, 1, 24), _null_skip(7, 1), _ldx(0, 7, 0, 4)],
                         None, ["trusted_ptr_sock()"]),
        "rcu_or_null_walk": ("tp_btf/kfree_skb", [_ldx(7, 1, 0), _ldx(2, 7, SKB_SK), _ldx(0, 2, 0)],
                             "R2 invalid mem access 'rcu_ptr_or_null_'", ["rcu_ptr_or_null_sock(id=1)"]),
        "beyond_struct": ("tp_btf/sched_switch", [_ldx(7, 1, 8), _ldx(0, 7, TASK_SIZE)],
                          f"access beyond struct task_struct at off {TASK_SIZE} size 8", []),
        "fifth_arg": ("tp_btf/kfree_skb", [_ldx(0, 1, 32)], "func 'kfree_skb' doesn't have 5-th argument", []),
        "past_the_return_slot": ("tp_btf/kfree_skb", [_ldx(0, 1, 40)],
                                 "func 'kfree_skb' doesn't have 7-th argument", []),
        "misaligned_for_its_size": ("tp_btf/kfree_skb", [_ldx(0, 1, 4)], "invalid bpf_context access off=4 size=8", []),
        "not_multiple_of_8": ("tp_btf/kfree_skb", [_ldx(0, 1, 4, 4)], "func 'kfree_skb' offset 4 is not multiple of 8", []),
        "char_pointer": ("tp_btf/kfree_skb", [_ldx(7, 1, 0), _ldx(2, 7, SKB_DATA), _ldx(0, 2, 3, 1)],
                         None, ["rdonly_untrusted_mem(sz=0)"]),
        "rcu_field": ("tp_btf/sched_switch", [Insn(CALL, 0, 0, 0, GET_CURRENT_TASK_BTF),
                                              _ldx(2, 0, TASK_REAL_PARENT), _ldx(0, 2, TASK_PID, 4)],
                      None, ["rcu_ptr_task_struct()"]),
        "skc_to_skb": ("tp_btf/kfree_skb", [_ldx(1, 1, 0), Insn(CALL, 0, 0, 0, SKC_TO_TCP_SOCK)],
                       "cannot access ptr member next with moff 0 in struct (anon) with off 0 size 1", []),
        "skc_to_task": ("tp_btf/sched_switch", [Insn(CALL, 0, 0, 0, GET_CURRENT_TASK_BTF), _mov(1, 0),
                                                Insn(CALL, 0, 0, 0, SKC_TO_TCP_SOCK)],
                        "R1 is of type task_struct but sock_common is expected", []),
        "d_path_in_tp_btf": ("tp_btf/sched_switch", [_movi(1, 0), _mov(2, 10),
                                                     Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 2, 0, 0, -8),
                                                     _movi(3, 8), Insn(CALL, 0, 0, 0, D_PATH)],
                             "helper call is not allowed in probe", []),
        "func_ret_in_tp_btf": ("tp_btf/sched_switch", [_mov(2, 10), Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 2, 0, 0, -8),
                                                       Insn(CALL, 0, 0, 0, GET_FUNC_RET)],
                               "program of this type cannot use helper bpf_get_func_ret#184", []),
        "skc_to_null": ("tp_btf/kfree_skb", [_ldx(1, 1, 24), Insn(CALL, 0, 0, 0, SKC_TO_TCP_SOCK)],
                        "R1 type=trusted_ptr_or_null_ expected=sock_common, sock, tcp_sock, xdp_sock, ptr_, "
                        "trusted_ptr_", []),
        "skc_to_sock": ("tp_btf/inet_sock_set_state", [_ldx(1, 1, 0), Insn(CALL, 0, 0, 0, SKC_TO_TCP_SOCK),
                                                       _null_skip(0, 1), _ldx(0, 0, 0, 4)],
                        None, ["ptr_or_null_tcp_sock(id=1)", "ptr_tcp_sock()"]),
        "acquire_release": ("tp_btf/sched_switch", [*acquire, _null_skip(0, 2), _mov(1, 0),
                                                    _kfunc(btf, "bpf_task_release")],
                            None, ["ptr_or_null_task_struct(id=2,ref_obj_id=2)", "ptr_task_struct(ref_obj_id=2)"]),
        "leak": ("tp_btf/sched_switch", [*acquire, _null_skip(0, 0)], "Unreleased reference id=2 alloc_insn=2", []),
        "release_unreferenced": ("tp_btf/sched_switch", [Insn(CALL, 0, 0, 0, GET_CURRENT_TASK_BTF), _mov(1, 0),
                                                         _kfunc(btf, "bpf_task_release")],
                                 "release kernel function bpf_task_release expects refcounted PTR_TO_BTF_ID", []),
        "rcu_section_open": ("tp_btf/sched_switch", [_kfunc(btf, "bpf_rcu_read_lock")],
                             "BPF_EXIT instruction in main prog cannot be used inside bpf_rcu_read_lock-ed region", []),
        "task_from_pid": ("tp_btf/sched_switch", [*ld_imm64(1, btf.find("bpf_task_from_pid", "func"),
                                                            op.BPF_PSEUDO_BTF_ID), _null_skip(1, 4), _movi(1, 1),
                                                  _kfunc(btf, "bpf_task_from_pid"), _null_skip(0, 2), _mov(1, 0),
                                                  _kfunc(btf, "bpf_task_release")],
                          None, ["R1=rdonly_mem(sz=0)", "ptr_or_null_task_struct(id=2,ref_obj_id=2) refs=2"]),
        # rules fentry shares (tests/verifier/test_fentry.py): pointer arguments are read 8 bytes
        # wide, a pointer to something not a struct, void or an integer is refused
        "pointer_arg_size": ("tp_btf/kfree_skb", [_ldx(0, 1, 0, 4)], "func 'kfree_skb' size 4 must be 8", []),
        "void_pointer_size": ("tp_btf/kfree_skb", [_ldx(0, 1, 8, 4)], "func 'kfree_skb' size 4 must be 8", []),
        "func_pointer_arg": ("tp_btf/initcall_start", [_ldx(0, 1, 0)],
                             "func 'initcall_start' arg0 type FUNC_PROTO is not a struct", []),
        "not_a_kfunc": ("tp_btf/kfree_skb", [_movi(1, 0), _kfunc(btf, "tcp_connect")],
                        "calling kernel function tcp_connect is not allowed", []),
        # raw_tp: the context is untyped u64s; bpf_get_current_task_btf is typed all the same
        "raw_tp_args": ("raw_tp/sched_switch", [_ldx(2, 1, 8), _ldx(3, 1, 16)], None, ["R3=scalar()"]),
        "raw_tp_narrow": ("raw_tp/sched_switch", [_ldx(2, 1, 4, 4), _ldx(3, 1, 9, 1)], None, []),
        "raw_tp_task_walk": ("raw_tp/sched_switch", [Insn(CALL, 0, 0, 0, GET_CURRENT_TASK_BTF),
                                                     _ldx(2, 0, TASK_REAL_PARENT), _ldx(0, 2, TASK_PID, 4)],
                             None, ["R0=trusted_ptr_task_struct()", "R2=rcu_ptr_task_struct()"]),
        "raw_tp_not_btf": ("raw_tp/sched_switch", [_ldx(1, 1, 8), Insn(CALL, 0, 0, 0, SKC_TO_TCP_SOCK)],
                           "program of this type cannot use helper bpf_skc_to_tcp_sock#137", []),
        "cgroup_acquire_release": ("tp_btf/sched_switch", [Insn(CALL, 0, 0, 0, GET_CURRENT_TASK_BTF),
                                                           _ldx(2, 0, TASK_CGROUPS), _null_skip(2, 6),
                                                           _ldx(1, 2, CSS_SET_DFL_CGRP), _null_skip(1, 4),
                                                           _kfunc(btf, "bpf_cgroup_acquire"), _null_skip(0, 2), _mov(1, 0),
                                                           _kfunc(btf, "bpf_cgroup_release")],
                                   None, ["R2=rcu_ptr_css_set()", "R1=rcu_ptr_cgroup()",
                                          "R0=ptr_or_null_cgroup(id=2,ref_obj_id=2)"]),
        "cgroup_from_id_leak": ("tp_btf/sched_switch", [_movi(1, 1), _kfunc(btf, "bpf_cgroup_from_id")],
                                "Unreleased reference id=2 alloc_insn=1", []),
        "vpid_task_as_cgroup": ("tp_btf/sched_switch", [_movi(1, 1), _kfunc(btf, "bpf_task_from_vpid"), _null_skip(0, 2),
                                                        _mov(1, 0), _kfunc(btf, "bpf_cgroup_release")],
                                "kernel function bpf_cgroup_release args#0 expected pointer to STRUCT cgroup but R1 "
                                "has a pointer to STRUCT task_struct", []),
        "rdonly_cast": ("tp_btf/sched_switch", [_ldx(1, 1, 8), _movi(2, btf.find("sock", "struct")),
                                                _kfunc(btf, "bpf_rdonly_cast"), _ldx(0, 0, 0, 4)],
                        None, ["untrusted_ptr_sock()"]),
    }


def _program(btf, name, section, insns):
    return program(encode(insns + EXIT), section=section, kernel_btf=btf, name=name[:15])


@pytest.fixture(scope="module")
def btf():
    return golden.btf()


NAMES = ("nullable_arg", "nullable_arith", "null_checked", "rcu_or_null_walk", "beyond_struct", "fifth_arg",
         "past_the_return_slot", "misaligned_for_its_size", "not_multiple_of_8", "char_pointer", "rcu_field",
         "skc_to_skb", "skc_to_null", "skc_to_sock", "acquire_release", "leak", "release_unreferenced",
         "rcu_section_open", "rdonly_cast", "task_from_pid", "pointer_arg_size", "void_pointer_size",
         "func_pointer_arg", "not_a_kfunc", "cgroup_acquire_release", "cgroup_from_id_leak", "vpid_task_as_cgroup", "skc_to_task", "d_path_in_tp_btf", "func_ret_in_tp_btf", "raw_tp_args", "raw_tp_narrow", "raw_tp_task_walk", "raw_tp_not_btf")


@pytest.mark.parametrize("name", NAMES)
def test_btf_case_has_the_kernels_error_and_types(btf, name):
    section, insns, error, types = _cases(btf)[name]
    ours = verify(_program(btf, name, section, insns), log_level=2)
    assert (ours.ok, ours.error) == (error is None, error)
    for text in types:
        assert text in ours.log


def test_a_kfunc_bpfnb_does_not_model_is_refused_by_name(btf):
    # bpf_iter_num_new: a kfunc of the kernel's common set, whose flags bpfnb has no entry for
    ours = verify(_program(btf, "other", "tp_btf/sched_switch", [_movi(1, 1), _kfunc(btf, "bpf_iter_num_new")]))
    assert ours.error == (f"bpfnb does not model kfunc bpf_iter_num_new#{btf.find('bpf_iter_num_new', 'func')} "
                          "(insn 1): its flags are not in bpfnb's table of kfunc sets")


def test_skc_to_on_a_sk_buff_names_the_types_after_the_walks_complaint(btf):
    section, insns, _error, _types = _cases(btf)["skc_to_skb"]
    log = verify(_program(btf, "skc", section, insns), log_level=2).log
    assert ("cannot access ptr member next with moff 0 in struct (anon) with off 0 size 1\n"
            "R1 is of type sk_buff but sock_common is expected\n") in log


@pytest.mark.kernel
def test_the_running_kernel_agrees(btf):
    golden.require_kernel()
    from bpfnb.kernel import load

    cases = _cases(btf)
    assert sorted(cases) == sorted(NAMES)
    for name, (section, insns, error, types) in cases.items():
        with load(_program(btf, name, section, insns), log_level=2) as loaded:
            assert (loaded.ok, loaded.error) == (error is None, error), name
            for text in types:
                assert text in loaded.log, (name, text)


# the generic kfuncs (task and cgroup references) by program type, as Linux 6.18 registers them
GENERIC_KFUNC_SECTIONS = {
    "tp_btf/sched_switch": True, "tp/sched/sched_switch": True, "perf_event": True, "tc": True, "xdp": True,
    "cgroup_skb/ingress": True, "cgroup/sock": True, "cgroup/connect4": True, "sockops": True,
    "cgroup/getsockopt": True, "cgroup/sysctl": True, "cgroup/dev": True,
    "raw_tp/sched_switch": False, "raw_tp.w/sched_switch": False, "kprobe/tcp_connect": False,
    "uprobe//bin/true:main": False, "socket": False, "action": False, "sk_skb": False, "sk_msg": False,
    "lwt_in": False, "flow_dissector": False, "netfilter": False, "sk_lookup": False, "sk_reuseport": False,
}


def _task_from_pid(btf):
    return [_movi(1, 1), _kfunc(btf, "bpf_task_from_pid"), _null_skip(0, 2), _mov(1, 0),
            _kfunc(btf, "bpf_task_release")]


@pytest.mark.parametrize("section", sorted(GENERIC_KFUNC_SECTIONS))
def test_generic_kfuncs_only_for_the_program_types_the_kernel_registers(btf, section):
    ours = verify(_program(btf, "generic", section, _task_from_pid(btf)))
    allowed = GENERIC_KFUNC_SECTIONS[section]
    assert ours.error == (None if allowed else "calling kernel function bpf_task_from_pid is not allowed")
    rcu = verify(_program(btf, "common", section, [_kfunc(btf, "bpf_rcu_read_lock"), _kfunc(btf, "bpf_rcu_read_unlock")]))
    assert rcu.ok  # the common set: every program type


@pytest.mark.kernel
def test_the_running_kernel_registers_generic_kfuncs_alike(btf):
    golden.require_kernel()
    from bpfnb.kernel import load

    for section, allowed in GENERIC_KFUNC_SECTIONS.items():
        with load(_program(btf, "generic", section, _task_from_pid(btf)), log_level=1) as loaded:
            assert (loaded.ok, loaded.error) == (allowed, None if allowed else
                                                 "calling kernel function bpf_task_from_pid is not allowed"), section
