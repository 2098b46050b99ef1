"""The loopback traffic generator causes the drops it promises.

The oracle is independent of bpfnb: the kernel's own ``skb:kfree_skb``
trace event read through tracefs.
"""

import collections
import re
import subprocess
from pathlib import Path

import pytest

from bpfnb import traffic
from bpfnb.errors import BpfnbError

TRACEFS = Path("/sys/kernel/tracing")
LINE = re.compile(r"protocol=(\d+) location=(\S+) reason: (\w+)")


def _tracefs() -> Path:
    if not (TRACEFS / "events").exists():
        subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)], check=False, capture_output=True)
    if not (TRACEFS / "events/skb/kfree_skb").exists():
        pytest.skip(f"no skb:kfree_skb trace event under {TRACEFS} (tracefs not mountable here)")
    return TRACEFS


@pytest.fixture
def kfree_skb_events():
    """Enables skb:kfree_skb for the test; yields a function returning (proto, location, reason) counts."""
    root = _tracefs()
    enable = root / "events/skb/kfree_skb/enable"
    (root / "trace").write_text("")
    enable.write_text("1")
    (root / "tracing_on").write_text("1")

    def read() -> collections.Counter:
        text = (root / "trace").read_text()
        return collections.Counter(
            (int(m[1]), m[2].split("+")[0], m[3]) for m in LINE.finditer(text))

    try:
        yield read
    finally:
        enable.write_text("0")


@pytest.mark.kernel
def test_udp_to_a_closed_port_drops_with_no_socket(kfree_skb_events):
    sent = traffic.udp_to_closed_port(5)
    assert sent.expected_reason == "NO_SOCKET"
    seen = kfree_skb_events()
    assert seen[(0x0800, "__udp4_lib_rcv", "NO_SOCKET")] >= 5


@pytest.mark.kernel
def test_udp6_to_a_closed_port_drops_with_no_socket(kfree_skb_events):
    traffic.udp_to_closed_port(3, host="::1")
    assert kfree_skb_events()[(0x86DD, "__udp6_lib_rcv", "NO_SOCKET")] >= 3


@pytest.mark.kernel
def test_tcp_syn_to_a_closed_port_drops_with_no_socket(kfree_skb_events):
    sent = traffic.tcp_to_closed_port(2)
    assert sent.expected_reason == "NO_SOCKET"
    assert kfree_skb_events()[(0x0800, "tcp_v4_rcv", "NO_SOCKET")] >= 2


@pytest.mark.kernel
def test_a_full_receive_buffer_drops_with_socket_rcvbuff(kfree_skb_events):
    sent = traffic.udp_to_full_socket(40)
    assert sent.expected_reason == "SOCKET_RCVBUFF"
    # the minimal buffer takes one datagram; the rest are dropped
    assert kfree_skb_events()[(0x0800, "udp_queue_rcv_one_skb", "SOCKET_RCVBUFF")] >= 30


@pytest.mark.parametrize("host", ["10.0.0.1", "8.8.8.8", "::2", "example.com"])
def test_refuses_anything_but_loopback(host):
    with pytest.raises(BpfnbError, match=re.escape(host)):
        traffic.udp_to_closed_port(1, host=host)


def test_closed_port_is_really_closed():
    import socket
    port = traffic.closed_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))  # nobody holds it
    assert 0 < port < 65536
