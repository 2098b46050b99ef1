"""Section names → program types (libbpf's conventions)."""

import pytest

from bpfnb.elf.sections import btf_target_name, classify
from bpfnb.errors import ElfError
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


def test_unknown_section_names_the_file_and_lists_prefixes():
    with pytest.raises(ElfError, match=r"a.o: section 'bogus' does not name a known program type \(known prefixes: "):
        classify("bogus", where="a.o")
