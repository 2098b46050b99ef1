"""BPF LSM programs by Linux 6.18's rules (kernel/bpf/bpf_lsm.c ``bpf_lsm_verify_prog``,
the sleepable, untrusted and bool hook sets, ``bpf_lsm_func_proto``,
``bpf_lsm_get_retval_range``; kernel/bpf/verifier.c ``check_attach_btf_id``,
``bpf_check_attach_target``, ``check_return_code``, ``check_helper_call``;
kernel/bpf/btf.c ``btf_ctx_access``).

The kernel on the development machines refuses every LSM program (``lsm/``, ``lsm.s/``,
``lsm_cgroup/``) with EPERM before its verifier runs, as it does fentry (the kernel-marked
test checks that bpfnb reports a refusal, not a verdict). So the fixture's programs are
judged here against the rules as the kernel's source states them (the expected lines are
the kernel's own messages); the part LSM programs share with tp_btf (typed trusted
arguments, walks, helper and kfunc arguments) is measured against the running kernel
through tp_btf twins in ``test_lsm_generated``.
"""

import dataclasses
import pathlib

import pytest

from bpfnb.elf.sections import BPF_F_SLEEPABLE
from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.isa.helpers import BpfFunc
from bpfnb.isa.insn import encode
from bpfnb.program import program
from bpfnb.verifier import verify

from . import golden
from .btfgen import _ldx, _mov, _movi

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "lsm.bpf.o"
CALL = op.BPF_JMP | op.BPF_CALL
EXIT_INSN = Insn(op.BPF_JMP | op.BPF_EXIT)
EXIT = [_movi(0, 0), EXIT_INSN]
RETVAL_RANGE = "R0=scalar(smin=smin32=-4095,smax=smax32=0)"
# bpf_lsm_<hook> ids in the golden files' kernel BTF (the messages name them)
VM_ENOUGH_MEMORY, VERIFY_PROG = 64804, 64802

# the fixture's programs: verdict, the kernel's error line, the instruction it names
FIXTURE_EXPECTED = {
    "file_flags": ("accept", None, None),
    "file_inode": ("accept", None, None),
    "file_previous_ret": ("accept", None, None),
    "bprm_argc": ("accept", None, None),
    "bprm_secureexec": ("accept", None, None),
    "connect_no_ipv6": ("accept", None, None),
    "sleepable_copy": ("accept", None, None),
    "void_hook": ("accept", None, None),
    "bool_hook": ("accept", None, None),
    "cgroup_bind": ("accept", None, None),
    "bad_return": ("reject", "At program exit the register R0 has smin=1 smax=1 should have been in [-4095, 0]", 1),
    "bad_return_pointer": ("reject", "At program exit the register R0 is not a known value (trusted_ptr_)", 1),
    "bad_arg_past_count": ("reject", "func 'bpf_lsm_file_open' doesn't have 3-th argument", 0),
    "bad_write_arg": ("reject", "only read is supported", 2),
    "bad_copy_not_sleepable": ("reject", "helper call might sleep in a non-sleepable prog", 6),
    "bad_sleepable_hook": ("reject", "bpf_lsm_file_alloc_security is not sleepable", None),
    "bad_helper_get_retval": ("reject", "program of this type cannot use helper bpf_get_retval#186", 0),
    "bad_helper_skb": ("reject", "program of this type cannot use helper bpf_skb_load_bytes#26", 5),
    "bad_ima_hook": ("reject", "helper call is not allowed in probe", 4),
    "bad_disabled_hook": ("reject", f"attach_btf_id {VM_ENOUGH_MEMORY} points to disabled hook "
                                    "bpf_lsm_vm_enough_memory", None),
    "bad_cgroup_void_hook": ("reject", "At program exit the register R0 has smin=0 smax=0 should have been in [1, 1]",
                             1),
}


@pytest.fixture(scope="module")
def btf():
    return golden.btf()


@pytest.fixture(scope="module")
def fixture_programs(btf):
    return {prog.name: prog for prog in golden.load(FIXTURE)}


def test_every_fixture_program_has_its_expectation(fixture_programs):
    assert sorted(fixture_programs) == sorted(FIXTURE_EXPECTED)


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTED))
def test_fixture_program_follows_the_kernels_rules(fixture_programs, name):
    ours = verify(fixture_programs[name], log_level=2)
    assert (ours.verdict, ours.error, ours.error_insn) == FIXTURE_EXPECTED[name]


def test_hook_arguments_and_the_previous_return_value(fixture_programs, btf):
    """The hook's arguments are trusted pointers; after them the value the programs before
    returned, bounded to the hook's return range (``__mark_reg_s32_range``)."""
    log = verify(fixture_programs["file_inode"], log_level=2).log
    assert f"func 'bpf_lsm_file_open' arg0 has btf_id {btf.find('file', 'struct')} type STRUCT 'file'" in log
    assert "R1=trusted_ptr_file()" in log
    assert RETVAL_RANGE in verify(fixture_programs["file_previous_ret"], log_level=2).log
    # task_free's task is being torn down: not trusted
    assert "R1=ptr_task_struct()" in verify(fixture_programs["void_hook"], log_level=2).log


def _program(btf, section, insns, **changes):
    ends = insns and insns[-1].code == op.BPF_JMP | op.BPF_EXIT
    prog = program(encode(insns if ends else insns + EXIT), section=section, kernel_btf=btf, name="lsm")
    return dataclasses.replace(prog, **changes) if changes else prog


def _fp_minus_8(reg: int) -> list[Insn]:
    return [_mov(reg, 10), Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, reg, 0, 0, -8)]


def _cases(btf):
    """name -> (section, instructions, the kernel's error line or None, texts the log has)."""
    sockopt = [_movi(2, 1), _movi(3, 2), *_fp_minus_8(4), Insn(op.BPF_ST | op.BPF_MEM | op.BPF_DW, 10, 0, -8, 0),
               _movi(5, 8), Insn(CALL, 0, 0, 0, BpfFunc.setsockopt), _movi(0, 1), EXIT_INSN]
    exe_file = [Insn(CALL, 0, 0, 0, BpfFunc.get_current_task_btf), _mov(1, 0), _kfunc(btf, "bpf_get_task_exe_file")]
    put_file = [Insn(op.BPF_JMP | op.BPF_JEQ | op.BPF_K, 0, 0, 2, 0), _mov(1, 0), _kfunc(btf, "bpf_put_file")]
    return {
        # the fs kfuncs, LSM programs' own: a file reference taken and given back
        "exe_file_released": ("lsm/file_open", [*exe_file, *put_file], None, ["R0=ptr_or_null_file(id=2,ref_obj_id=2)"]),
        "exe_file_leaked": ("lsm/file_open", exe_file, "Unreleased reference id=2 alloc_insn=2", []),
        "path_d_path": ("lsm/file_open", [_ldx(1, 1, 0), Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 1, 0, 0,
                                                              btf_member_offset(btf, "file", "f_path")),
                                          *_fp_minus_8(2), _movi(3, 8), _kfunc(btf, "bpf_path_d_path")], None, []),
        "wrong_type_name": ("lsm/verify_prog", [],
                            f"attach_btf_id {VERIFY_PROG} points to wrong type name bpf_lsm_verify_prog", []),
        # an lsm/ program's value is an int: its lower 32 bits are compared (0x100000000 is 0)
        "return_32bit": ("lsm/file_open", [_movi(0, 1), Insn(op.BPF_ALU64 | op.BPF_LSH | op.BPF_K, 0, 0, 0, 32),
                                           EXIT_INSN], None, []),
        "cgroup_return_64bit": ("lsm_cgroup/file_open",
                                [_movi(0, 1), Insn(op.BPF_ALU64 | op.BPF_LSH | op.BPF_K, 0, 0, 0, 32), EXIT_INSN],
                                "At program exit the register R0 has smin=4294967296 smax=4294967296 should have "
                                "been in [0, 1]", []),
        # read 4 bytes wide, the value keeps its 32-bit bounds (coerce_reg_to_size), which the exit compares
        "retval_narrow_read": ("lsm/file_open", [_ldx(0, 1, 8, 4), EXIT_INSN], None,
                               ["R0=scalar(smin=0,smax=umax=0xffffffff,smin32=-4095,smax32=0,var_off=(0x0; 0xffffffff))"]),
        "retval_any_in_cgroup": ("lsm_cgroup/file_open", [_ldx(2, 1, 8)], None, ["R2=scalar()"]),
        "negative_return": ("lsm/file_open", [_movi(0, -13), EXIT_INSN], None, []),
        "too_negative_return": ("lsm/file_open", [_movi(0, -4096), EXIT_INSN],
                                "At program exit the register R0 has smin=-4096 smax=-4096 should have been in "
                                "[-4095, 0]", []),
        "void_hook_no_r0": ("lsm/task_free", [EXIT_INSN], None, []),
        # a void hook has no return slot: the kernel counts offset 8 as past it
        "void_hook_has_no_retval": ("lsm/task_free", [_ldx(2, 1, 8)],
                                    "func 'bpf_lsm_task_free' doesn't have 3-th argument", []),
        "misaligned_arg": ("lsm/file_open", [_ldx(2, 1, 4, 4)], "func 'bpf_lsm_file_open' offset 4 is not multiple of 8",
                           []),
        "cgroup_void_hook_note": ("lsm_cgroup/task_free", [],
                                  "At program exit the register R0 has smin=0 smax=0 should have been in [1, 1]",
                                  ["Note, BPF_LSM_CGROUP that attach to void LSM hooks can't modify return value!"]),
        "cgroup_set_retval_void_hook": ("lsm_cgroup/task_free", [_movi(1, 0), Insn(CALL, 0, 0, 0, BpfFunc.set_retval)],
                                        "BPF_LSM_CGROUP that attach to void LSM hooks can't modify return value!", []),
        # the trampoline's helpers: lsm/ has one, lsm_cgroup/ not
        "attach_cookie": ("lsm/file_open", [Insn(CALL, 0, 0, 0, BpfFunc.get_attach_cookie)], None, []),
        "cgroup_no_attach_cookie": ("lsm_cgroup/file_open", [Insn(CALL, 0, 0, 0, BpfFunc.get_attach_cookie)],
                                    "program of this type cannot use helper bpf_get_attach_cookie#174", []),
        # bpf_setsockopt from lsm_cgroup/ on the hooks whose socket is locked (or still being set up)
        "cgroup_setsockopt": ("lsm_cgroup/sock_graft", [_ldx(1, 1, 0), *sockopt], None, []),
        "cgroup_setsockopt_other_hook": ("lsm_cgroup/socket_bind", [_ldx(1, 1, 0), *sockopt],
                                         "program of this type cannot use helper bpf_setsockopt#49", []),
        "setsockopt_not_cgroup": ("lsm/sock_graft", [_ldx(1, 1, 0), *sockopt],
                                  "program of this type cannot use helper bpf_setsockopt#49", []),
        # bpf_d_path and bpf_ima_*_hash on the hooks that may sleep only
        "d_path_sleepable_hook": ("lsm/file_open", [_ldx(1, 1, 0), Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 1, 0, 0,
                                                                          btf_member_offset(btf, "file", "f_path")),
                                                    *_fp_minus_8(2), Insn(op.BPF_ST | op.BPF_MEM | op.BPF_DW, 10, 0,
                                                                          -8, 0),
                                                    _movi(3, 8), Insn(CALL, 0, 0, 0, BpfFunc.d_path)], None, []),
        "ima_hash_needs_sleepable_prog": ("lsm/bprm_check_security",
                                          [_ldx(1, 1, 0), _ldx(1, 1, btf_member_offset(btf, "linux_binprm", "file")),
                                           Insn(op.BPF_JMP | op.BPF_JEQ | op.BPF_K, 1, 0, 4, 0),
                                           *_fp_minus_8(2), _movi(3, 8),
                                           Insn(CALL, 0, 0, 0, BpfFunc.ima_file_hash)],
                                          "helper call might sleep in a non-sleepable prog", []),
    }


def _kfunc(btf, name: str) -> Insn:
    return Insn(CALL, 0, op.BPF_PSEUDO_KFUNC_CALL, 0, btf.find(name, "func"))


def btf_member_offset(btf, struct: str, member: str) -> int:
    """The byte offset of ``member`` in ``struct``, looking inside anonymous members."""
    def find(type_id: int, base: int) -> int | None:
        for m in btf.members(type_id):
            off = base + m.bit_offset // 8
            if m.name == member:
                return off
            if not m.name and btf.type(btf.resolve(m.type)).kind in ("struct", "union"):
                found = find(btf.resolve(m.type), off)
                if found is not None:
                    return found
        return None

    return find(btf.find(struct, "struct"), 0)


NAMES = ("exe_file_released", "exe_file_leaked", "path_d_path", "wrong_type_name", "return_32bit", "cgroup_return_64bit", "retval_narrow_read", "retval_any_in_cgroup",
         "negative_return", "too_negative_return", "void_hook_no_r0", "void_hook_has_no_retval", "misaligned_arg",
         "cgroup_void_hook_note", "cgroup_set_retval_void_hook", "attach_cookie", "cgroup_no_attach_cookie",
         "cgroup_setsockopt", "cgroup_setsockopt_other_hook", "setsockopt_not_cgroup", "d_path_sleepable_hook",
         "ima_hash_needs_sleepable_prog")


def test_every_case_is_run(btf):
    assert sorted(NAMES) == sorted(_cases(btf))


@pytest.mark.parametrize("name", NAMES)
def test_lsm_case_follows_the_kernels_rules(btf, name):
    section, insns, error, texts = _cases(btf)[name]
    ours = verify(_program(btf, section, insns), log_level=2)
    assert (ours.ok, ours.error) == (error is None, error)
    for text in texts:
        assert text in ours.log


# the kernel's own selftests (tools/testing/selftests/bpf/progs/verifier_lsm.c): hook, the
# value returned, what the verifier says (its __msg, a part of the error line; None: success).
# Left out: two cases of later kernels (mmap_file's file__nullable, which 6.18's BTF names
# plain 'file', and lsm_cgroup's newer "Program of this type cannot be sleepable").
SELFTEST_RETURNS = (
    ("file_permission", 0, None), ("file_permission", -4095, None),
    ("file_mprotect", -4096, "R0 has smin=-4096 smax=-4096 should have been in [-4095, 0]"),
    ("file_mprotect", 4096, "R0 has smin=4096 smax=4096 should have been in [-4095, 0]"),
    ("file_mprotect", 1, "R0 has smin=1 smax=1 should have been in [-4095, 0]"),
    ("audit_rule_known", 1, None), ("audit_rule_known", 0, None),
    ("audit_rule_known", -1, "R0 has smin=-1 smax=-1 should have been in [0, 1]"),
    ("audit_rule_known", 2, "R0 has smin=2 smax=2 should have been in [0, 1]"),
    ("file_free_security", -4096, None), ("file_free_security", 4096, None),
    ("getprocattr", 0, "points to disabled hook"), ("setprocattr", 0, "points to disabled hook"),
    ("ismaclabel", 0, "points to disabled hook"),
)


@pytest.mark.parametrize(("hook", "value", "message"), SELFTEST_RETURNS)
def test_the_kernels_selftest_expectations(btf, hook, value, message):
    ours = verify(_program(btf, f"lsm/{hook}", [_movi(0, value), EXIT_INSN]))
    assert ours.ok == (message is None)
    assert message is None or message in ours.error


def test_the_kernels_selftest_lsm_cgroup_nonvoid(btf):
    """selftests' lsm_cgroup_nonvoid: an lsm_cgroup/ program on a void hook must not load
    returning 0 ("Can not return any errors from void LSM hooks")."""
    ours = verify(_program(btf, "lsm_cgroup/inet_csk_clone", [_movi(0, 0), EXIT_INSN]))
    assert ours.error == "At program exit the register R0 has smin=0 smax=0 should have been in [1, 1]"


def test_the_kernels_selftest_task_free(btf):
    """selftests' lsm.c: "lsm/ is ok, lsm.s/ fails" on task_free."""
    assert verify(_program(btf, "lsm/task_free", [])).ok
    assert verify(_program(btf, "lsm.s/task_free", [])).error == "bpf_lsm_task_free is not sleepable"


def test_the_return_value_slot_is_read_afresh(btf):
    """verifier_lsm.c's last case: a register loaded from the return-value slot keeps no bound
    it had before (file_mprotect's value so far may be 0 or an errno: dividing by 0 is seen)."""
    insns = [_movi(6, 0), _ldx(6, 1, 24), Insn(op.BPF_JMP | op.BPF_JEQ | op.BPF_K, 6, 0, 1, 0),
             Insn(op.BPF_ALU64 | op.BPF_DIV | op.BPF_K, 6, 0, 0, 0)]
    assert verify(_program(btf, "lsm/file_mprotect", insns)).error == "div by zero"


def test_lsm_programs_need_a_gpl_compatible_license(btf):
    ours = verify(_program(btf, "lsm/file_open", [], license="MIT"))
    assert ours.error == "LSM programs must have a GPL compatible license"


def test_lsm_cgroup_programs_cannot_be_sleepable(btf):
    ours = verify(_program(btf, "lsm_cgroup/file_open", [], prog_flags=BPF_F_SLEEPABLE))
    assert ours.error == "Only fentry/fexit/fmod_ret, lsm, iter, uprobe, and struct_ops programs can be sleepable"


EXE_FILE_NOT_ALLOWED = "calling kernel function bpf_get_task_exe_file is not allowed"


def _exe_file_from_tp_btf(btf):
    insns = [*_cases(btf)["exe_file_released"][1], *EXIT]
    return program(encode(insns), section="tp_btf/sched_switch", kernel_btf=btf, name="exe_file")


def test_fs_kfuncs_are_lsm_programs_only(btf):
    assert verify(_exe_file_from_tp_btf(btf)).error == EXE_FILE_NOT_ALLOWED


@pytest.mark.kernel
def test_the_kernel_gives_fs_kfuncs_to_lsm_programs_only(btf):
    golden.require_kernel()
    from bpfnb.kernel import load

    with load(_exe_file_from_tp_btf(btf), log_level=1) as loaded:
        assert (loaded.ok, loaded.error) == (False, EXE_FILE_NOT_ALLOWED)


@pytest.mark.kernel
def test_the_kernel_refuses_lsm_loads_and_says_so(fixture_programs):
    """Not a verdict: the kernel refuses every LSM program before its verifier runs (EPERM here)."""
    golden.require_kernel()
    from bpfnb.kernel.compare import kernel_verdict

    for name in ("file_flags", "sleepable_copy", "cgroup_bind", "bad_return"):
        record = kernel_verdict(fixture_programs[name])
        assert (record["verdict"], record["errno"]) == ("refused", "EPERM")
        assert "LSM programs are not permitted on this kernel" in record["reason"]
