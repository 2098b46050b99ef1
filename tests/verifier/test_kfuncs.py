"""kfunc calls checked from the kernel BTF prototypes and the table of kfunc sets:
tests/fixtures/kfuncs.bpf.o (bpf_cpumask, nf_conntrack, task and cgroup references)
against the kernel's verdicts, error lines and printed states kept in
golden/kfuncs.json, and which program types may call each set's kfuncs."""

import pathlib

import pytest

from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.verifier import verify
from bpfnb.verifier.kfunc_sets import KFUNC_SETS, find_kfunc_set

from . import golden
from .btfgen import _mov, _movi
from .test_btf_access import _kfunc, _null_skip, _program
from .test_btf_access import btf as btf  # noqa: F401  (the module's fixture, by name)

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "kfuncs.bpf.o"
GOLDEN = "kfuncs"
# measured against Linux 6.18: printed register/slot values of these programs bpfnb prints alike
STATES_SAME, STATES_TOTAL = 689, 689


def _programs() -> dict:
    return {prog.name: prog for prog in golden.load(FIXTURE)}


def test_fixture_programs_get_the_kernels_verdicts_errors_and_states():
    expected = golden.read(GOLDEN)["programs"]
    progs = _programs()
    assert sorted(progs) == sorted(expected)
    same, total = golden.fixture_agreement(progs, expected)
    assert total == STATES_TOTAL and same >= STATES_SAME


@pytest.mark.kernel
def test_kfuncs_golden_file_is_the_running_kernels():
    golden.require_kernel()
    live = {name: golden.kernel_judgement_with_states(prog) for name, prog in _programs().items()}
    golden.check_running_kernels(GOLDEN, live)


def test_each_kfunc_is_in_one_set_only():
    names = [name for kset in KFUNC_SETS for name in kset.flags]
    assert len(names) == len(set(names))
    assert find_kfunc_set("bpf_cpumask_create").name == "cpumask_kfunc_set"
    assert find_kfunc_set("bpf_iter_num_new") is None


# the cpumask and nf_conntrack sets by program type, as Linux 6.18 registers them
SET_SECTIONS = {
    "cpumask": {"tp_btf/task_newtask": True, "tp/sched/sched_switch": True, "perf_event": True,
                "socket": False, "tc": False, "xdp": False, "raw_tp/task_newtask": False,
                "kprobe/tcp_connect": False, "cgroup_skb/ingress": False, "sockops": False},
    "nf_conntrack": {"tc": True, "xdp": True, "tp_btf/task_newtask": False, "socket": False,
                     "cgroup_skb/ingress": False, "sk_skb": False, "kprobe/tcp_connect": False},
}


def _set_member_call(btf, which: str) -> list[Insn]:
    """A call the program type either may make or is told "not allowed": cpumask's
    create and release; nf_conntrack's release of a NULL (refused after the type check)."""
    if which == "cpumask":
        return [_kfunc(btf, "bpf_cpumask_create"), _null_skip(0, 2), _mov(1, 0), _kfunc(btf, "bpf_cpumask_release")]
    return [_movi(1, 0), _kfunc(btf, "bpf_ct_release")]


def _expected(which: str, allowed: bool) -> str | None:
    if not allowed:
        return f"calling kernel function {'bpf_cpumask_create' if which == 'cpumask' else 'bpf_ct_release'} is not allowed"
    return None if which == "cpumask" else "Possibly NULL pointer passed to trusted arg0"


@pytest.mark.parametrize("which,section", [(w, s) for w in sorted(SET_SECTIONS) for s in sorted(SET_SECTIONS[w])])
def test_kfunc_sets_only_for_the_program_types_the_kernel_registers(btf, which, section):  # noqa: F811
    ours = verify(_program(btf, which, section, _set_member_call(btf, which)))
    assert ours.error == _expected(which, SET_SECTIONS[which][section])


@pytest.mark.kernel
def test_the_running_kernel_registers_the_kfunc_sets_alike(btf):  # noqa: F811
    golden.require_kernel()
    from bpfnb.kernel import load

    for which, sections in SET_SECTIONS.items():
        for section, allowed in sections.items():
            with load(_program(btf, which, section, _set_member_call(btf, which)), log_level=1) as loaded:
                assert loaded.error == _expected(which, allowed), (which, section)


def test_a_kfunc_argument_bpfnb_does_not_model_is_refused_by_name(btf, monkeypatch):  # noqa: F811
    # a struct bpf_dynptr argument: no kfunc taking one is in bpfnb's sets, so one is
    # entered (with no flags) into the common set for the check
    monkeypatch.setitem(find_kfunc_set("bpf_rcu_read_lock").flags, "bpf_dynptr_size", 0)
    ours = verify(_program(btf, "dynptr", "tp_btf/task_newtask", [_mov(1, 10), Insn(
        op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 1, 0, 0, -16), _kfunc(btf, "bpf_dynptr_size")]))
    assert ours.error == (f"bpfnb does not model kfunc bpf_dynptr_size#{btf.find('bpf_dynptr_size', 'func')} "
                          "(insn 2): arg#0 is a struct bpf_dynptr argument")


NOT_A_FUNCTION = 1  # a kernel BTF id that is no FUNC (an INT)


def _raw_kfunc_cases(btf) -> dict:
    """name -> (section, instructions, the kernel's error line): calls the kernel refuses
    by the BTF id alone, before it walks (so even in dead code), or when reached."""
    call = op.BPF_JMP | op.BPF_CALL
    skip_one = Insn(op.BPF_JMP | op.BPF_JA, 0, 0, 1, 0)
    not_func = Insn(call, 0, op.BPF_PSEUDO_KFUNC_CALL, 0, NOT_A_FUNCTION)
    return {
        "not_a_function": ("socket", [not_func], f"kernel btf_id {NOT_A_FUNCTION} is not a function"),
        "dead_not_a_function": ("tp_btf/task_newtask", [skip_one, not_func],
                                f"kernel btf_id {NOT_A_FUNCTION} is not a function"),
        "dead_not_allowed": ("socket", [skip_one, _kfunc(btf, "bpf_cpumask_create")], "unreachable insn 1"),
        "not_a_kfunc": ("tp_btf/task_newtask", [_kfunc(btf, "tcp_connect")],
                        "calling kernel function tcp_connect is not allowed"),
        # KF_SLEEPABLE, of the set every program type may call
        "sleepable_kfunc": ("socket", [_mov(1, 10), Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 1, 0, 0, -8),
                                       _movi(2, 8), _movi(3, 0), _movi(4, 0), _kfunc(btf, "bpf_copy_from_user_str")],
                            "program must be sleepable to call sleepable kfunc bpf_copy_from_user_str"),
    }


def test_kfunc_ids_are_checked_before_the_walk(btf):  # noqa: F811
    for name, (section, insns, error) in _raw_kfunc_cases(btf).items():
        ours = verify(_program(btf, name, section, insns))
        assert ours.error == error, name


@pytest.mark.kernel
def test_the_running_kernel_checks_kfunc_ids_alike(btf):  # noqa: F811
    golden.require_kernel()
    from bpfnb.kernel import load

    for name, (section, insns, error) in _raw_kfunc_cases(btf).items():
        with load(_program(btf, name, section, insns), log_level=1) as loaded:
            assert loaded.error == error, name
