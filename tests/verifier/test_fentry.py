"""fentry/fexit/fmod_ret by Linux 6.18's rules (kernel/bpf/btf.c ``btf_ctx_access``,
``prog_args_trusted``; kernel/bpf/verifier.c ``check_attach_btf_id``,
``bpf_check_attach_target``, ``check_return_code``).

The kernel on the development machines refuses every fentry/fexit/fmod_ret load
with EPERM before its verifier runs (the kernel-marked test checks that the
refusal is reported as one), so these programs are judged against the rules as the
kernel's source states them; the context rules fentry shares with tp_btf are
checked against the running kernel through tp_btf twins in ``test_btf_access``.
"""


import pytest

from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.isa.insn import encode
from bpfnb.program import program
from bpfnb.verifier import attach, verify

from . import golden
from .btfgen import _ldx, _mov, _movi
from .test_btf_access import (
    D_PATH,
    GET_CURRENT_TASK_BTF,
    SKC_TO_TCP_SOCK,
    TASK_PID,
    TASK_REAL_PARENT,
)

CALL = op.BPF_JMP | op.BPF_CALL
EXIT = [_movi(0, 0), Insn(op.BPF_JMP | op.BPF_EXIT)]
GET_FUNC_ARG, GET_FUNC_RET, GET_FUNC_ARG_CNT = 183, 184, 185
SOCK_SK_STATE = 18  # sock.__sk_common.skc_state (1 byte)


def _kfunc(btf, name: str) -> Insn:
    return Insn(CALL, 0, op.BPF_PSEUDO_KFUNC_CALL, 0, btf.find(name, "func"))


def _fp(reg: int, off: int) -> list[Insn]:
    """reg = fp + off"""
    return [_mov(reg, 10), Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, reg, 0, 0, off)]


def _d_path_call() -> list[Insn]:
    """bpf_d_path(ctx[0], fp - 8, 8)."""
    return [_ldx(1, 1, 0), _mov(2, 10), Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 2, 0, 0, -8),
            Insn(op.BPF_ST | op.BPF_MEM | op.BPF_DW, 2, 0, 0, 0), _movi(3, 8), Insn(CALL, 0, 0, 0, D_PATH)]


def _cases(btf):
    """name -> (section, instructions, error or None, texts the log has)."""
    sock = btf.find("sock", "struct")
    return {
        # fentry arguments are plain PTR_TO_BTF_ID: neither trusted nor NULL
        "plain_arg": ("fentry/tcp_connect", [_ldx(2, 1, 0), _ldx(0, 2, SOCK_SK_STATE, 1)], None,
                      [f"func 'tcp_connect' arg0 has btf_id {sock} type STRUCT 'sock'", "R2=ptr_sock()"]),
        "no_second_arg": ("fentry/tcp_connect", [_ldx(2, 1, 8)], "func 'tcp_connect' doesn't have 2-th argument", []),
        # fexit reads the return value after the arguments
        "fexit_retval": ("fexit/tcp_connect", [_ldx(2, 1, 8)], None, ["R2=scalar()"]),
        "fexit_past_retval": ("fexit/tcp_connect", [_ldx(2, 1, 16)],
                              "func 'tcp_connect' doesn't have 3-th argument", []),
        # a void function has no return slot: the kernel counts offset 8 as past it
        "fexit_void_has_no_retval": ("fexit/sk_free", [_ldx(2, 1, 8)], "func 'sk_free' doesn't have 3-th argument", []),
        "fexit_struct_retval": ("fexit/sk_alloc", [_ldx(2, 1, 40), _ldx(0, 2, SOCK_SK_STATE, 1)], None,
                                [f"func 'sk_alloc' arg5 has btf_id {sock} type STRUCT 'sock'", "R2=ptr_sock()"]),
        "fmod_ret_retval": ("fmod_ret/security_file_open", [_ldx(2, 1, 8)], None, ["R2=scalar()"]),
        "fmod_ret_pointer_retval": ("fmod_ret/security_get_initial_sid_context", [_ldx(2, 1, 8)],
                                    "ret type PTR not allowed for fmod_ret", []),
        "fmod_ret_any_return": ("fmod_ret/security_file_open", [_movi(0, -1), Insn(op.BPF_JMP | op.BPF_EXIT)],
                                None, []),
        "fentry_returns_zero": ("fentry/tcp_connect", [_movi(0, 1), Insn(op.BPF_JMP | op.BPF_EXIT)],
                                "At program exit the register R0 has smin=1 smax=1 should have been in [0, 0]", []),
        # pointer arguments are read 8 bytes wide; u32 * is a number, a pointer to a pointer refused
        "int_pointer_size": ("fentry/bpf_fentry_test9", [_ldx(2, 1, 0, 4)],
                             "func 'bpf_fentry_test9' size 4 must be 8", []),
        "int_pointer": ("fentry/bpf_fentry_test9", [_ldx(2, 1, 0)], None, ["R2=scalar()"]),
        "pointer_to_pointer": ("fentry/acpi_ds_resolve_package_element", [_ldx(2, 1, 0)],
                               "func 'acpi_ds_resolve_package_element' arg0 type PTR is not a struct", []),
        # a plain ptr_ is still what ARG_PTR_TO_BTF_ID_SOCK_COMMON takes (the kernel's compat rule)
        "helper_takes_plain": ("fentry/tcp_connect", [_ldx(1, 1, 0), Insn(CALL, 0, 0, 0, SKC_TO_TCP_SOCK)], None,
                               ["R0=ptr_or_null_tcp_sock(id=1)"]),
        # but a kfunc wanting an RCU-protected or trusted pointer does not
        "kfunc_wants_trust": ("fentry/wake_up_new_task", [_ldx(1, 1, 0), _kfunc(btf, "bpf_task_acquire")],
                              "R1 must be a rcu pointer", []),
        # selftests' verifier_d_path.c (its context read 8 bytes wide, as 6.18 wants): bpf_d_path
        # only from the functions of btf_allowlist_d_path
        "d_path_accept": ("fentry/dentry_open", _d_path_call(), None, []),
        "d_path_reject": ("fentry/d_path", _d_path_call(), "helper call is not allowed in probe", []),
        # the trampoline's own helpers: bpf_get_func_arg(ctx, n, &u64), bpf_get_func_ret(ctx, &u64)
        "func_arg": ("fentry/tcp_v4_connect", [_movi(2, 1), *_fp(3, -8), Insn(CALL, 0, 0, 0, GET_FUNC_ARG)], None,
                     ["R0=scalar()"]),
        "func_ret_misaligned": ("fexit/tcp_v4_connect", [*_fp(2, -12), Insn(CALL, 0, 0, 0, GET_FUNC_RET)],
                                "misaligned stack access off 0+-12+0 size 8", []),  # as 6.18 words it for atomics
        "func_arg_cnt": ("fmod_ret/security_file_open", [Insn(CALL, 0, 0, 0, GET_FUNC_ARG_CNT)], None, []),
        # the attach target (check_attach_btf_id)
        "noreturn": ("fexit/do_exit", [], "Attaching fexit/fmod_ret to __noreturn function 'do_exit' is rejected.", []),
        "noreturn_fentry_ok": ("fentry/do_exit", [], None, []),
        "denied": ("fentry/migrate_disable", [], "Attaching tracing programs to function 'migrate_disable' is rejected.",
                   []),
        "too_many_args": ("fentry/ZSTD_buildCTable", [], "The function ZSTD_buildCTable has 16 arguments. Too many.", []),
        "big_struct_arg": ("fentry/ZSTD_CCtxParams_init_advanced", [],
                           "The function ZSTD_CCtxParams_init_advanced arg1 type STRUCT is unsupported.", []),
        "variadic": ("fentry/SEQ_printf", [], "The function SEQ_printf with variable args is unsupported.", []),
        "struct_return": ("fentry/HUF_readCTableHeader", [],
                          "The function HUF_readCTableHeader return type STRUCT is unsupported.", []),
    }


@pytest.fixture(scope="module")
def btf():
    return golden.btf()


@pytest.fixture
def injection_list(tmp_path, monkeypatch):
    """The kernel's error-injection list (debugfs), as bpfnb reads it."""
    path = tmp_path / "list"
    path.write_text("bpf_modify_return_test\tERRNO\n__filemap_add_folio\tERRNO\n")
    monkeypatch.setattr(attach, "ERROR_INJECTION_LIST", str(path))
    return path


def _program(btf, name, section, insns):
    ends = insns and insns[-1].code == op.BPF_JMP | op.BPF_EXIT
    return program(encode(insns if ends else insns + EXIT), section=section, kernel_btf=btf, name=name[:15])


NAMES = ("plain_arg", "no_second_arg", "fexit_retval", "fexit_past_retval", "fexit_void_has_no_retval",
         "fexit_struct_retval", "fmod_ret_retval", "fmod_ret_pointer_retval", "fmod_ret_any_return",
         "fentry_returns_zero", "int_pointer_size", "int_pointer", "pointer_to_pointer", "helper_takes_plain",
         "kfunc_wants_trust", "d_path_accept", "d_path_reject", "func_arg", "func_ret_misaligned", "func_arg_cnt",
         "noreturn", "noreturn_fentry_ok", "denied", "too_many_args", "big_struct_arg",
         "variadic", "struct_return")


def test_every_case_is_run():
    assert sorted(NAMES) == sorted(_cases(golden.btf()))


@pytest.mark.parametrize("name", NAMES)
def test_fentry_case_follows_the_kernels_rules(btf, name):
    section, insns, error, texts = _cases(btf)[name]
    ours = verify(_program(btf, name, section, insns), log_level=2)
    assert (ours.ok, ours.error) == (error is None, error)
    for text in texts:
        assert text in ours.log


def test_a_target_the_kernel_lacks_is_named(btf):
    """Tools such as fsdist name a placeholder (``fentry/dummy_file_read``) and set the real
    target at run time; libbpf could not load them as they are."""
    from bpfnb.program import Program

    prog = Program("dummy", tuple(EXIT), type="tracing", section="fentry/dummy_file_read",
                   expected_attach_type="trace_fentry", attach_name="dummy_file_read", kernel_btf=btf)
    result = verify(prog, log_level=1)
    assert result.error == "Tracing programs must provide btf_id"
    assert ("bpfnb: the kernel BTF has no function 'dummy_file_read' for fentry/dummy_file_read; give the "
            "program a target with --section fentry/<function>") in result.log


def test_loads_through_fentry_arguments_are_probe_mem(btf):
    section, insns, _error, _texts = _cases(btf)["plain_arg"]
    assert verify(_program(btf, "plain", section, insns)).probe_mem == frozenset({1})


def test_fmod_ret_needs_an_error_injectable_or_security_target(btf, injection_list):
    tcp = verify(_program(btf, "tcp", "fmod_ret/tcp_connect", []))
    assert tcp.error == "tcp_connect() is not modifiable"
    assert verify(_program(btf, "ok", "fmod_ret/bpf_modify_return_test", [])).ok
    assert verify(_program(btf, "sec", "fmod_ret/security_file_open", [])).ok


def test_sleepable_targets_and_their_rcu_walks(btf, injection_list):
    """``fentry.s``: only on error-injectable targets the kernel does not deny; outside
    ``bpf_rcu_read_lock`` a walk to an RCU-protected field is untrusted."""
    walk = [Insn(CALL, 0, 0, 0, GET_CURRENT_TASK_BTF), _ldx(2, 0, TASK_REAL_PARENT), _ldx(0, 2, TASK_PID, 4)]
    assert verify(_program(btf, "ns", "fentry.s/tcp_connect", [])).error == "tcp_connect is not sleepable"
    assert verify(_program(btf, "deny", "fentry.s/__filemap_add_folio", [])).error == \
        "__filemap_add_folio is not sleepable"
    outside = verify(_program(btf, "out", "fentry.s/bpf_modify_return_test", walk), log_level=2)
    assert outside.ok and "R2=untrusted_ptr_task_struct()" in outside.log
    inside = [_kfunc(btf, "bpf_rcu_read_lock"), *walk, _kfunc(btf, "bpf_rcu_read_unlock")]
    locked = verify(_program(btf, "in", "fentry.s/bpf_modify_return_test", inside), log_level=2)
    assert locked.ok and "R2=rcu_ptr_task_struct()" in locked.log
    plain = verify(_program(btf, "nonsleep", "fentry/bpf_modify_return_test", walk), log_level=2)
    assert "R2=rcu_ptr_task_struct()" in plain.log


def test_without_the_error_injection_list_bpfnb_says_it_cannot_tell(btf, monkeypatch, tmp_path):
    monkeypatch.setattr(attach, "ERROR_INJECTION_LIST", str(tmp_path / "absent"))
    result = verify(_program(btf, "tcp", "fmod_ret/tcp_connect", []), log_level=2)
    assert result.ok
    assert "bpfnb: cannot tell whether tcp_connect is modifiable" in result.log


@pytest.mark.kernel
def test_the_kernel_refuses_fentry_loads_and_says_so(btf):
    golden.require_kernel()
    """Not a verdict: the kernel refuses before its verifier runs (EPERM here)."""
    from bpfnb.kernel.compare import kernel_verdict

    section, insns, _error, _texts = _cases(btf)["plain_arg"]
    record = kernel_verdict(_program(btf, "plain", section, insns))
    assert (record["verdict"], record["errno"]) == ("refused", "EPERM")
    assert "not permitted" in record["reason"]
