"""Field walks and C printing on the live kernel BTF; C checked against bpftool."""

import pathlib
import re
import shutil
import subprocess

import pytest

from bpfnb.btf import LIVE_VMLINUX, kernel_btf

pytestmark = pytest.mark.skipif(not pathlib.Path(LIVE_VMLINUX).exists(), reason=f"no {LIVE_VMLINUX}")


@pytest.fixture(scope="module")
def btf():
    return kernel_btf()


@pytest.fixture(scope="module")
def bpftool_c():
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool not installed (Debian package bpftool)")
    return subprocess.run(["bpftool", "btf", "dump", "file", LIVE_VMLINUX, "format", "c"],
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize(("struct", "offset", "size", "path", "how"), [
    ("sk_buff", 16, 8, ("dev",), "exact"),  # inside two anonymous unions and a struct
    ("sk_buff", 112, 4, ("len",), "exact"),
    ("sk_buff", 40, 8, ("cb",), "inside"),
    ("sk_buff", 44, 4, ("cb",), "inside"),
    ("sock", 12, 2, ("__sk_common", "skc_dport"), "exact"),
    ("net_device", 224, 4, ("ifindex",), "exact"),
    ("iphdr", 0, 1, ("ihl",), "bitfield"),
    ("iphdr", 16, 4, ("daddr",), "exact"),
])
def test_find_member(btf, struct, offset, size, path, how):
    found = btf.find_member(btf.find(struct, "struct"), offset, size)
    assert (found.path, found.how) == (path, how)


def test_access_past_the_end(btf):
    sk = btf.find("sk_buff", "struct")
    found = btf.find_member(sk, btf.sizeof(sk), 4)
    assert found.how == "beyond" and str(found).startswith("struct sk_buff.")


def _bpftool_decl(text: str, head: str) -> str:
    start = text.index(head)
    if head.startswith("typedef"):
        return text[start:text.index("\n", start)]
    return text[start:text.index("\n};", start) + 3]


def _lines(text: str) -> list[str]:
    # bpftool adds alignment attributes and explicit padding ("long: 64;"); we print neither
    text = re.sub(r"\s*__attribute__\(\(\w+(?:\(\d+\))?\)\)", "", text)
    return [ln.strip() for ln in text.splitlines()
            if ln.strip() and not re.fullmatch(r"(?:long|int|short|char): \d+;", ln.strip())]


@pytest.mark.parametrize(("kind", "name", "head"), [
    ("struct", "sk_buff", "struct sk_buff {"),
    ("struct", "net_device", "struct net_device {"),
    ("struct", "iphdr", "struct iphdr {"),
    ("struct", "tcphdr", "struct tcphdr {"),
    ("struct", "task_struct", "struct task_struct {"),
    ("enum", "skb_drop_reason", "enum skb_drop_reason {"),
    ("typedef", "btf_trace_kfree_skb", "typedef void (*btf_trace_kfree_skb)"),
])
def test_c_decl_equals_bpftool(btf, bpftool_c, kind, name, head):
    ours = _lines(btf.c_decl(btf.find(name, kind)))
    assert ours == _lines(_bpftool_decl(bpftool_c, head))
    assert len(ours) > 0
