"""Known traffic on loopback, for demos and tests of drop tracing.

Each generator sends a bounded number of packets to an address on this
machine only (127.0.0.0/8 or ::1 — anything else is refused) and says which
drop reason the kernel should report for them:

- ``udp_to_closed_port``: datagrams to a port nobody listens on → ``NO_SOCKET``;
- ``tcp_to_closed_port``: SYNs to a closed port → ``NO_SOCKET`` (answered by RST);
- ``udp_to_full_socket``: datagrams to a bound socket that never reads, with
  a tiny receive buffer → ``SOCKET_RCVBUFF`` once the buffer is full.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass

from .errors import BpfnbError


@dataclass(frozen=True)
class Sent:
    """What a generator sent, and the drop it should cause."""

    kind: str
    host: str
    port: int
    packets: int
    payload_len: int
    expected_reason: str  # the name in enum skb_drop_reason without the prefix
    l4proto: str


def _loopback(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise BpfnbError(f"traffic: {host!r} is not an IP address") from exc
    if not address.is_loopback:
        raise BpfnbError(f"traffic: refusing to send to {host}: only loopback addresses are allowed")
    return host


def _family(host: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def closed_port(host: str = "127.0.0.1", kind: int = socket.SOCK_DGRAM) -> int:
    """A port with nobody listening right now (bound, read, released)."""
    with socket.socket(_family(host), kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def udp_to_closed_port(
    count: int = 10, *, host: str = "127.0.0.1", port: int | None = None,
    payload: bytes = b"bpfnb-drop", interval: float = 0.0,
) -> Sent:
    host = _loopback(host)
    port = port or closed_port(host)
    with socket.socket(_family(host), socket.SOCK_DGRAM) as s:
        for _ in range(count):
            try:
                s.sendto(payload, (host, port))
            except ConnectionRefusedError:  # an earlier ICMP error surfaced here
                pass
            if interval:
                time.sleep(interval)
    return Sent("udp_to_closed_port", host, port, count, len(payload), "NO_SOCKET", "udp")


def tcp_to_closed_port(count: int = 3, *, host: str = "127.0.0.1", port: int | None = None) -> Sent:
    host = _loopback(host)
    port = port or closed_port(host, socket.SOCK_STREAM)
    for _ in range(count):
        with socket.socket(_family(host), socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            try:
                s.connect((host, port))
            except (ConnectionRefusedError, TimeoutError, OSError):
                pass
    return Sent("tcp_to_closed_port", host, port, count, 0, "NO_SOCKET", "tcp")


def udp_to_full_socket(
    count: int = 200, *, host: str = "127.0.0.1", payload: bytes = b"x" * 1024
) -> Sent:
    """Fills a never-read socket with a minimal receive buffer; the rest drop."""
    host = _loopback(host)
    with socket.socket(_family(host), socket.SOCK_DGRAM) as sink:
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        sink.bind((host, 0))
        port = sink.getsockname()[1]
        with socket.socket(_family(host), socket.SOCK_DGRAM) as s:
            for _ in range(count):
                s.sendto(payload, (host, port))
    return Sent("udp_to_full_socket", host, port, count, len(payload), "SOCKET_RCVBUFF", "udp")
