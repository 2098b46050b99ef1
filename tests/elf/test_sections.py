"""Section names → program types (libbpf's conventions)."""

import pytest

from bpfnb.elf.sections import (
    BPF_F_SLEEPABLE,
    BPF_F_XDP_HAS_FRAGS,
    SectionKind,
    btf_target_name,
    classify,
    given,
)
from bpfnb.program import ATTACH_TYPES, PROG_TYPES


@pytest.mark.parametrize(("section", "type", "attach", "target"), [
    ("socket", "socket_filter", None, None),
    ("xdp", "xdp", "xdp", None),
    ("xdp.frags", "xdp", "xdp", None),
    ("tc", "sched_cls", None, None),
    ("classifier/ingress", "sched_cls", None, None),
    ("kprobe/tcp_connect", "kprobe", None, "tcp_connect"),
    ("kretprobe/tcp_connect", "kprobe", None, "tcp_connect"),
    ("tracepoint/skb/kfree_skb", "tracepoint", None, "skb/kfree_skb"),
    ("tp/skb/kfree_skb", "tracepoint", None, "skb/kfree_skb"),
    ("raw_tp/kfree_skb", "raw_tracepoint", None, "kfree_skb"),
    ("raw_tracepoint/kfree_skb", "raw_tracepoint", None, "kfree_skb"),
    ("tp_btf/kfree_skb", "tracing", "trace_raw_tp", "kfree_skb"),
    ("fentry/tcp_connect", "tracing", "trace_fentry", "tcp_connect"),
    ("fexit/tcp_connect", "tracing", "trace_fexit", "tcp_connect"),
    ("fmod_ret/security_file_open", "tracing", "modify_return", "security_file_open"),
    ("lsm/file_open", "lsm", "lsm_mac", "file_open"),
    ("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress", None),
    ("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect", None),
    ("sockops", "sock_ops", "cgroup_sock_ops", None),
    ("sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict", None),
    ("perf_event", "perf_event", None, None),
    ("iter/task", "tracing", "trace_iter", "task"),
    ("usdt", "kprobe", None, None),
    ("usdt/./libjvm.so:hotspot:gc__begin", "kprobe", None, "./libjvm.so:hotspot:gc__begin"),
    ("uprobe.multi//bin/bash:readline", "kprobe", "trace_uprobe_multi", "/bin/bash:readline"),
    ("uprobe.session", "kprobe", "trace_uprobe_session", None),
    ("kprobe.session/tcp_*", "kprobe", "trace_kprobe_session", "tcp_*"),
    ("ksyscall/kill", "kprobe", None, "kill"),
    ("kretsyscall/kill", "kprobe", None, "kill"),
    ("tc/ingress", "sched_cls", "tcx_ingress", None),
    ("tcx/egress", "sched_cls", "tcx_egress", None),
    ("netkit/primary", "sched_cls", "netkit_primary", None),
    ("netkit/peer", "sched_cls", "netkit_peer", None),
    ("struct_ops/dctcp_init", "struct_ops", None, "dctcp_init"),
    ("struct_ops.s/test_1", "struct_ops", None, "test_1"),
    ("struct_ops", "struct_ops", None, None),
    ("cgroup/connect_unix", "cgroup_sock_addr", "cgroup_unix_connect", None),
    ("netfilter", "netfilter", "netfilter", None),
    ("tp_btf.s/sys_enter", "tracing", "trace_raw_tp", "sys_enter"),
])
def test_classify(section, type, attach, target):
    kind = classify(section)
    assert (kind.type, kind.attach_type, kind.target) == (type, attach, target)
    assert kind.type in PROG_TYPES and (attach is None or attach in ATTACH_TYPES)


def test_btf_targets_follow_the_kernels_naming():
    assert btf_target_name(classify("tp_btf/kfree_skb")) == ("btf_trace_kfree_skb", "typedef")
    assert btf_target_name(classify("fentry/tcp_connect")) == ("tcp_connect", "func")
    assert btf_target_name(classify("lsm/file_open")) == ("bpf_lsm_file_open", "func")
    assert btf_target_name(classify("iter/task")) == ("bpf_iter_task", "func")


def test_sleepable_and_frags_sections_set_their_load_flags():
    assert classify("fentry.s/do_unlinkat").prog_flags == BPF_F_SLEEPABLE
    assert classify("lsm.s/file_open").prog_flags == BPF_F_SLEEPABLE
    assert classify("syscall").prog_flags == BPF_F_SLEEPABLE
    assert classify("xdp.frags").prog_flags == BPF_F_XDP_HAS_FRAGS
    assert classify("fentry/do_unlinkat").prog_flags == 0


@pytest.mark.parametrize(("section", "type", "read_as"), [
    ("xdp1", "xdp", "xdp"),
    ("xdp_prog", "xdp", "xdp"),
    ("socket1", "socket_filter", "socket"),
    ("socket/2", "socket_filter", "socket"),
    ("cgroup/sock1", "cgroup_sock", "cgroup/sock"),
    ("cgroup/skb1", "cgroup_skb", "cgroup/skb"),
    ("classifier/ingress", "sched_cls", "classifier"),
    ("xdp/devmap_redirect", "xdp", "xdp/devmap"),
])
def test_legacy_names_are_read_as_libbpf_before_1_0_read_them(section, type, read_as):
    kind = classify(section)
    assert kind.type == type
    assert kind.note == f"legacy name: libbpf < 1.0 read {section!r} as {read_as!r}"


def test_a_tail_call_slot_section_is_known_by_its_slot():
    kind = classify("2/7")
    assert (kind.type, kind.tail_call) == ("unknown", (2, 7))
    assert kind.note == "tail-call slot 7 of prog array 2 (iproute2's __section_tail(2, 7)): its type is its caller's"


@pytest.mark.parametrize("section", ["bogus", "filter", "from-netdev", "test", "tcp_thing", "kprobe_foo", "maps"])
def test_unknown_names_give_type_unknown_with_the_reason(section):
    kind = classify(section)
    assert (kind.type, kind.known) == ("unknown", False)
    assert kind.note == f"section {section!r} names no program type libbpf knows"


def test_a_given_type_or_section():
    assert given("from-netdev", "sched_cls") == SectionKind("from-netdev", "sched_cls", note="type 'sched_cls' given")
    assert given("x", "xdp").attach_type == "xdp"
    kind = given("prog", "tp_btf/kfree_skb")
    assert (kind.type, kind.attach_type, kind.target, kind.btf_target) == ("tracing", "trace_raw_tp", "kfree_skb", True)
    assert kind.note == "read as section 'tp_btf/kfree_skb' (given)"
    assert given("x", "nonsense") is None
