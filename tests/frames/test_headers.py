"""Header parsing on packets built byte by byte, as the tracer captures them
(starting at the network header), one row per packet."""

import struct

import numpy as np
import pytest

from bpfnb.frames.headers import ETH_P_IP, ETH_P_IPV6, parse_network_headers


def ipv4(proto: int, l4: bytes, src="10.1.2.3", dst="127.0.0.1", ttl=64, options=b"") -> bytes:
    ihl = (20 + len(options)) // 4
    total = 20 + len(options) + len(l4)
    addr = lambda a: bytes(int(x) for x in a.split("."))  # noqa: E731
    return (
        struct.pack("!BBHHHBBH", 0x40 | ihl, 0, total, 0, 0x4000, ttl, proto, 0)
        + addr(src) + addr(dst) + options + l4
    )


def ipv6(next_header: int, l4: bytes, hop=32) -> bytes:
    src = bytes.fromhex("20010db8000000000000000000000001")
    dst = bytes(15) + b"\x01"  # ::1
    return struct.pack("!IHBB", 0x60000000, len(l4), next_header, hop) + src + dst + l4


def udp(sport, dport, payload=b"hi") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport, dport, seq=7, flags=0x02) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0)


def rows(*packets, width=64):
    out = np.zeros((len(packets), width), dtype=np.uint8)
    for i, p in enumerate(packets):
        p = p[:width]
        out[i, : len(p)] = np.frombuffer(p, np.uint8)
    return out


def test_ipv4_udp_tcp_icmp_and_ipv6_in_one_batch():
    packets = [
        ipv4(17, udp(40000, 53)),
        ipv4(6, tcp(1234, 80, seq=0xDEADBEEF, flags=0x12), ttl=5),
        ipv4(1, bytes([8, 0, 0, 0, 0, 1, 0, 1])),
        ipv6(17, udp(5353, 5353)),
        ipv6(58, bytes([128, 0, 0, 0])),
    ]
    ethertypes = np.array([ETH_P_IP] * 3 + [ETH_P_IPV6] * 2)
    c = parse_network_headers(rows(*packets), ethertypes)
    assert list(c["ip_version"]) == [4, 4, 4, 6, 6]
    assert list(c["l4proto"]) == ["udp", "tcp", "icmp", "udp", "icmpv6"]
    assert list(c["sport"]) == [40000, 1234, 0, 5353, 0]
    assert list(c["dport"]) == [53, 80, 0, 5353, 0]
    assert list(c["saddr"]) == ["10.1.2.3"] * 3 + ["2001:db8::1"] * 2
    assert list(c["daddr"]) == ["127.0.0.1"] * 3 + ["::1"] * 2
    assert c["tcp_flags"][1] == 0x12 and c["tcp_seq"][1] == 0xDEADBEEF
    assert c["tcp_flags"][0] == 0
    assert (c["icmp_type"][2], c["icmp_type"][4]) == (8, 128)
    assert list(c["ttl"]) == [64, 5, 64, 32, 32]
    assert c["ip_len"][0] == 20 + 10 and c["ip_len"][3] == 40 + 10


def test_ip_options_move_the_transport_header():
    c = parse_network_headers(rows(ipv4(17, udp(1, 2), options=b"\x01" * 8)), np.array([ETH_P_IP]))
    assert (c["sport"][0], c["dport"][0]) == (1, 2)


def test_rows_without_an_ip_header_stay_empty():
    arp = bytes.fromhex("0001080006040001")
    c = parse_network_headers(rows(arp, ipv4(17, udp(9, 10))), np.array([0x0806, ETH_P_IP]))
    assert c["ip_version"][0] == 0 and c["saddr"][0] is None and c["l4proto"][0] is None
    assert c["dport"][1] == 10


def test_transport_fields_outside_the_captured_bytes_are_zero():
    # 24 captured bytes: the IPv4 header and half the UDP ports.
    c = parse_network_headers(rows(ipv4(17, udp(7, 8)), width=22), np.array([ETH_P_IP]))
    assert c["l4proto"][0] == "udp" and c["sport"][0] == 0 and c["dport"][0] == 0
    assert c["saddr"][0] == "10.1.2.3"


def test_a_million_rows_format_each_distinct_address_once():
    base = rows(ipv4(17, udp(1000, 2000)), ipv4(6, tcp(3, 4), src="192.168.0.9"))
    many = np.repeat(base, 50_000, axis=0)
    c = parse_network_headers(many, np.full(len(many), ETH_P_IP))
    assert len(set(c["saddr"])) == 2
    assert (c["dport"] == np.tile([2000, 4], 1)[np.arange(len(many)) // 50_000]).all()


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match="2-D"):
        parse_network_headers(np.zeros(10, np.uint8), np.zeros(10))
