"""The bundled kernel BTF: what it holds, and CO-RE against it giving the
live kernel's offsets."""

import pathlib
import re

import pytest

import bpfnb
from bpfnb.btf import LIVE_VMLINUX, bundled_btf, kernel_btf

ROOT = pathlib.Path(__file__).resolve().parents[2]
needs_vmlinux = pytest.mark.skipif(not pathlib.Path(LIVE_VMLINUX).exists(), reason=f"no {LIVE_VMLINUX}")
BUNDLED_HEADER = ROOT / "bpfnb/data/kernel/vmlinux_bundled.h"


def _bundled_release() -> str:
    """The kernel release the bundled BTF was generated from (its header says it)."""
    match = re.search(r"from the kernel BTF of (\S+):", BUNDLED_HEADER.read_text())
    assert match, f"{BUNDLED_HEADER} does not name its kernel release"
    return match.group(1)


def _running_release() -> str:
    return pathlib.Path("/proc/sys/kernel/osrelease").read_text().strip()


def test_bundled_btf_has_the_skb_types():
    btf = bundled_btf()
    sk = btf.find("sk_buff", "struct")
    assert btf.find_member(sk, 16, 8).path == ("dev",)
    assert btf.find_member(sk, 112, 4).path == ("len",)
    typedef, params = btf.trace_proto("kfree_skb")
    assert [btf.name_of(p.type) for p in params] == [
        "struct sk_buff *", "void *", "enum skb_drop_reason", "struct sock *"]
    assert btf.find("eth_type_trans", "func") and btf.find("btf_trace_consume_skb", "typedef")
    reasons = {v.name: v.value for v in btf.type(btf.find("skb_drop_reason", "enum")).values}
    assert reasons["SKB_DROP_REASON_NO_SOCKET"] > 2 and len(reasons) > 100


@needs_vmlinux
def test_layouts_and_reasons_equal_the_live_kernel():
    # A bundle is one kernel's snapshot: drop reasons are added from release to
    # release, so equality holds for the kernel it was made from (make bundled-btf).
    if _bundled_release() != _running_release():
        pytest.skip(f"bundled BTF made from {_bundled_release()}, running {_running_release()}")
    live, ours = kernel_btf(), bundled_btf()
    for struct in ("sk_buff", "net_device", "sock"):
        assert ours.sizeof(ours.find(struct, "struct")) == live.sizeof(live.find(struct, "struct"))
    enum = lambda b: [(v.name, v.value) for v in b.type(b.find("skb_drop_reason", "enum")).values]  # noqa: E731
    assert enum(ours) == enum(live)


@needs_vmlinux
@pytest.mark.parametrize("path", [ROOT / "bpfnb/data/drops.bpf.o", ROOT / "tests/fixtures/kfree_skb.bpf.o"])
def test_core_against_the_bundled_btf_gives_the_live_offsets(path):
    live = bpfnb.load(path).program()
    bundled = bpfnb.load(path, kernel_btf=bundled_btf()).program()
    assert [(r.insn, r.spec, r.new_value) for r in live.core_relocs] == \
        [(r.insn, r.spec, r.new_value) for r in bundled.core_relocs]
    assert live.insns == bundled.insns
    assert bundled.attach_btf_id == bundled_btf().find("btf_trace_kfree_skb", "typedef")
