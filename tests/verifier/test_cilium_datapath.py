"""cilium's BPF datapath (bpf_host.o, bpf_lxc.o, bpf_overlay.o, bpf_xdp.o ... built by hand
with clang-19 from cilium's bpf/ at its default, most complex configuration; never
committed, nothing here builds it): every object loads, and the smaller programs' whole
level-2 logs are the running kernel's line for line, each family of rules they met once
told apart (a tail call's hidden exit, linked 32-bit sums, forks on a sign mask, helpers
that write their memory or move the packet, bpf_sk_assign's socket).

    BPFNB_CILIUM_DATAPATH=/work/scratch/corpora-big/cilium-datapath python -m pytest tests/verifier/test_cilium_datapath.py

The larger programs (up to 114k processed instructions) are compared by
``python -m benchmarks.verifier_agreement`` on the same directory.
"""

import os
import pathlib

import pytest

import bpfnb

DATAPATH = pathlib.Path(os.environ["BPFNB_CILIUM_DATAPATH"]) if os.environ.get("BPFNB_CILIUM_DATAPATH") else None
OBJECTS = ("bpf_host.o", "bpf_lxc.o", "bpf_network.o", "bpf_overlay.o", "bpf_sock.o", "bpf_wireguard.o",
           "bpf_xdp.o")
# programs of a few hundred processed instructions whose logs bpfnb once printed otherwise
# (object, program): the rule each first parted at
SMALL_PROGRAMS = (
    ("bpf_network.o", "cil_from_network"),  # +written across a tail call
    ("bpf_host.o", "tail_icmp6_handle_ns"),  # w2 += 48 keeps its link (id=1+48)
    ("bpf_host.o", "tail_srv6_encap"),  # w7 s>>= 31; w7 &= -141 forks
    ("bpf_overlay.o", "tail_mcast_ep_delivery"),  # a callback's clone_redirect moves the packet
    ("bpf_overlay.o", "cil_to_overlay"),  # w1 += -1 wraps at both ends
    ("bpf_overlay.o", "tail_handle_arp"),  # w0 -= w1 likewise
    ("bpf_host.o", "cil_to_host"),  # bpf_sk_assign with a looked-up socket
)


def _skip_without_datapath():
    if DATAPATH is None or not DATAPATH.is_dir():
        pytest.skip("set BPFNB_CILIUM_DATAPATH to a directory of cilium's datapath objects built by hand "
                    "(/work/scratch/corpora-big/cilium-datapath)" + (f"; {DATAPATH} is absent" if DATAPATH else ""))


@pytest.mark.parametrize("name", OBJECTS)
def test_every_object_loads(name):
    _skip_without_datapath()
    progs = list(bpfnb.load(DATAPATH / name))
    assert progs and all(p.type in ("sched_cls", "xdp", "cgroup_sock_addr", "cgroup_sock") for p in progs)


@pytest.mark.kernel
@pytest.mark.parametrize("obj,name", SMALL_PROGRAMS)
def test_small_programs_log_as_the_kernel(obj, name):
    _skip_without_datapath()
    from bpfnb.kernel import load
    from bpfnb.logtext import comparable_lines
    from bpfnb.verifier import verify
    from bpfnb.verifier.agreement import _as_loaded

    prog = bpfnb.load(DATAPATH / obj).program(name)
    with load(prog, log_level=2) as loaded:
        theirs = comparable_lines(loaded.log)
    ours = comparable_lines(verify(_as_loaded(prog), log_level=2, progress=False).log)
    assert ours == theirs
