"""Explanations of verifier errors, checked on the errors the real kernel prints."""

import pytest

from bpfnb.explain import CATALOGUE, explain
from bpfnb.logtext import error_block, error_line
from bpfnb.program import Program

from .programs import REJECTS

ATTACH = {"cgroup_skb": "cgroup_inet_ingress"}


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(REJECTS))
def test_the_kernels_rejection_is_explained_by_the_right_rule(name):
    from bpfnb.kernel import load

    prog_type, insns, kind = REJECTS[name]
    loaded = load(Program(name[:15], insns, type=prog_type, expected_attach_type=ATTACH.get(prog_type)),
                  log_level=1)
    assert not loaded.ok, f"the kernel accepted {name}"
    block = error_block(loaded.log)
    explanation = explain(block)
    assert explanation is not None, f"no rule for: {block!r}"
    assert explanation.kind == kind, f"{block!r} explained as {explanation.kind}"
    assert explanation.error == block


@pytest.mark.parametrize(("error", "kind", "register", "words"), [
    ("R0 invalid mem access 'map_value_or_null'", "null_deref", 0, "map_value_or_null"),
    ("R3 invalid mem access 'scalar'", "scalar_deref", 3, "R3 holds a plain number"),
    ("R1 type=scalar expected=ptr_, trusted_ptr_, rcu_ptr_", "arg_type", 1, "expects ptr_"),
    ("invalid access to map value, value_size=8 off=8 size=4", "map_value_bounds", None, "8-byte map value"),
    ("access beyond struct sk_buff at off 900 size 4", "btf_beyond", None, "struct sk_buff"),
    ("R0 leaks addr as return value", "leak_addr", 0, "pointer"),
    ("invalid read from stack R10 off -8+0 size 8", "uninit_stack", 10, "before anything"),
    ("BPF program is too large. Processed 1000001 insn", "too_large", None, "1000001"),
    # BTF-typed programs (tests/verifier/test_btf_access.py checks each text against the kernel)
    ("R1 is of type task_struct but sock_common is expected", "btf_arg_struct", 1,
     "points to a struct task_struct, but this helper argument takes a struct sock_common"),
    ("R1 must be a rcu pointer", "kfunc_trust", 1, "cannot vouch for"),
    ("calling kernel function tcp_connect is not allowed", "kfunc_not_allowed", None, "tcp_connect is not a kfunc"),
    ("Unreleased reference id=2 alloc_insn=1", "unreleased", None, "taken at instruction 1"),
    ("func 'kfree_skb' size 4 must be 8", "ctx_arg_size", None, "reads 4 bytes of a pointer argument of kfree_skb"),
    ("R7 invalid mem access 'trusted_ptr_or_null_'", "null_deref", 7, "trusted_ptr_or_null_"),
])
def test_messages_the_root_kernel_does_not_print_here_are_explained(error, kind, register, words):
    # root on this machine may leak pointers and read uninitialised stack, and
    # maps/BTF-typed programs come with the kernel bridge: these texts are the
    # kernel's own format strings (kernel/bpf/verifier.c)
    explanation = explain(error)
    assert explanation.kind == kind and explanation.register == register
    assert words in explanation.detail


def test_error_block_keeps_the_lines_after_the_last_instruction():
    log = ("0: R1=ctx() R10=fp0\n5: (69) r0 = *(u16 *)(r2 +0)\n"
           "invalid access to packet, off=0 size=2, R2(id=0,off=0,r=1)\n"
           "R2 offset is outside of the packet\n"
           "processed 6 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n")
    assert error_block(log) == ("invalid access to packet, off=0 size=2, R2(id=0,off=0,r=1)\n"
                                "R2 offset is outside of the packet")
    assert "proven safe for 1 bytes" in explain(error_block(log)).detail


def test_unknown_text_has_no_explanation_and_every_rule_has_words():
    assert explain("something else entirely") is None and explain("") is None
    kinds = [rule.kind for rule in CATALOGUE]
    assert len(kinds) >= 30
    assert all(rule.rule and rule.fix for rule in CATALOGUE)


def test_error_line_skips_the_bookkeeping_of_62_logs():
    log = ("func#0 @0\nLive regs before insn:\n      0: .......... (b7) r0 = 0\n"
           "  1   1: .......... (05) goto pc-1\n0: R1=ctx() R10=fp0\n0: (b7) r0 = 0 ; R0=0\n"
           "1: (05) goto pc-1\nSCC enter (1)\n1: (05) goto pc-1\ninfinite loop detected at insn 1\n"
           "cur state: R0=0 R1=ctx() R10=fp0\nold state: R0=0 R1=ctx() R10=fp0\n"
           "processed 9 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0\n")
    assert error_line(log) == "infinite loop detected at insn 1"
    assert error_line("func#0 @0\nunreachable insn 2\nprocessed 0 insns (limit 1000000)\n") == "unreachable insn 2"
    assert error_line("0: (b7) r0 = 5 ; R0=5\n1: (95) exit\nmark_precise: frame0: regs=r0 stack= before 0\n"
                      "At program exit the register R0 has smin=5 smax=5 should have been in [0, 1]\n") == \
        "At program exit the register R0 has smin=5 smax=5 should have been in [0, 1]"
