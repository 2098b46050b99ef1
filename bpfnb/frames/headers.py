"""Vectorised parsing of IPv4/IPv6 and TCP/UDP/ICMP headers.

Input is a 2-D ``uint8`` array, one row per packet, holding the bytes that
start at the network header (what the drop tracer copies from
``skb->head + skb->network_header``), and each row's EtherType. Every field is
computed for all rows at once with numpy indexing; rows where a header is
absent get 0 (numbers) or ``None`` (addresses). Addresses are formatted once
per distinct value, so a million rows from a few hosts cost a few formats.
"""

from __future__ import annotations

import ipaddress

import numpy as np

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58

L4_NAMES = {IPPROTO_ICMP: "icmp", IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp", IPPROTO_ICMPV6: "icmpv6"}


def _be16(hdr: np.ndarray, rows: np.ndarray, at: np.ndarray) -> np.ndarray:
    return (hdr[rows, at].astype(np.uint16) << 8) | hdr[rows, at + 1]


def _be32(hdr: np.ndarray, rows: np.ndarray, at: np.ndarray) -> np.ndarray:
    out = np.zeros(len(rows), dtype=np.uint32)
    for k in range(4):
        out = (out << 8) | hdr[rows, at + k]
    return out


def _format_addresses(raw: np.ndarray, valid: np.ndarray, version: int) -> np.ndarray:
    """Format each distinct address once; ``raw`` is (n, 4) or (n, 16) bytes."""
    out = np.full(len(raw), None, dtype=object)
    if not valid.any():
        return out
    chosen = np.ascontiguousarray(raw[valid])
    as_void = chosen.view(np.dtype((np.void, chosen.shape[1]))).ravel()
    distinct, inverse = np.unique(as_void, return_inverse=True)
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    names = np.array([str(make(bytes(d))) for d in distinct], dtype=object)
    out[valid] = names[inverse.ravel()]
    return out


def parse_network_headers(hdr: np.ndarray, ethertype: np.ndarray) -> dict[str, np.ndarray]:
    """Columns parsed from network-header bytes.

    >>> import numpy as np
    >>> udp = bytes.fromhex("4500001c000040004011" "0000" "7f000001" "7f000001"
    ...                     "d43104d200080000")
    >>> cols = parse_network_headers(np.frombuffer(udp.ljust(64, b"\\0"), np.uint8)[None],
    ...                              np.array([0x0800]))
    >>> cols["l4proto"][0], int(cols["dport"][0]), cols["daddr"][0]
    ('udp', 1234, '127.0.0.1')
    """
    hdr = np.asarray(hdr, dtype=np.uint8)
    if hdr.ndim != 2:
        raise ValueError("hdr must be a 2-D array: one row of header bytes per packet")
    n, width = hdr.shape
    ethertype = np.asarray(ethertype)
    rows = np.arange(n)
    version = hdr[:, 0] >> 4 if width else np.zeros(n, np.uint8)
    is4 = (ethertype == ETH_P_IP) & (version == 4) & (width >= 20)
    is6 = (ethertype == ETH_P_IPV6) & (version == 6) & (width >= 40)

    zeros = np.zeros(n, dtype=np.intp)
    ihl = np.where(is4, (hdr[:, 0] & 0x0F).astype(np.intp) * 4, 0) if width else zeros
    l4_off = np.where(is4, ihl, np.where(is6, 40, 0))
    proto = np.where(is4, hdr[:, 9] if width > 9 else 0, np.where(is6, hdr[:, 6] if width > 6 else 0, 0))
    ip_len = np.where(is4, _be16(hdr, rows, zeros + 2) if width > 3 else 0,
                      np.where(is6, (_be16(hdr, rows, zeros + 4) + 40) if width > 5 else 0, 0))
    ttl = np.where(is4, hdr[:, 8] if width > 8 else 0, np.where(is6, hdr[:, 7] if width > 7 else 0, 0))

    # Transport fields: only where the whole field lies inside the captured bytes.
    def fits(extra: int) -> np.ndarray:
        return (is4 | is6) & (l4_off >= 20) & (l4_off + extra <= width)

    safe_off = np.where(fits(4), l4_off, 0)
    has_ports = fits(4) & ((proto == IPPROTO_TCP) | (proto == IPPROTO_UDP))
    sport = np.where(has_ports, _be16(hdr, rows, safe_off), 0).astype(np.uint16)
    dport = np.where(has_ports, _be16(hdr, rows, safe_off + 2), 0).astype(np.uint16)

    tcp_ok = fits(14) & (proto == IPPROTO_TCP)
    tcp_off = np.where(tcp_ok, l4_off, 0)
    tcp_flags = np.where(tcp_ok, hdr[rows, tcp_off + 13], 0).astype(np.uint8)
    tcp_seq = np.where(fits(8) & (proto == IPPROTO_TCP),
                       _be32(hdr, rows, np.where(fits(8), l4_off, 0) + 4), 0).astype(np.uint32)

    icmp_ok = fits(2) & (((proto == IPPROTO_ICMP) & is4) | ((proto == IPPROTO_ICMPV6) & is6))
    icmp_off = np.where(icmp_ok, l4_off, 0)
    icmp_type = np.where(icmp_ok, hdr[rows, icmp_off], 0).astype(np.uint8)
    icmp_code = np.where(icmp_ok, hdr[rows, icmp_off + 1], 0).astype(np.uint8)

    saddr = np.full(n, None, dtype=object)
    daddr = np.full(n, None, dtype=object)
    if width >= 20:
        s4 = _format_addresses(hdr[:, 12:16], is4, 4)
        d4 = _format_addresses(hdr[:, 16:20], is4, 4)
        saddr[is4], daddr[is4] = s4[is4], d4[is4]
    if width >= 40:
        s6 = _format_addresses(hdr[:, 8:24], is6, 6)
        d6 = _format_addresses(hdr[:, 24:40], is6, 6)
        saddr[is6], daddr[is6] = s6[is6], d6[is6]

    l4_names = np.full(n, None, dtype=object)
    for number, name in L4_NAMES.items():
        l4_names[(is4 | is6) & (proto == number)] = name
    other = (is4 | is6) & (l4_names == None)  # noqa: E711 (elementwise)
    l4_names[other] = [f"proto{p}" for p in proto[other]]

    return {
        "ip_version": np.where(is4, 4, np.where(is6, 6, 0)).astype(np.uint8),
        "saddr": saddr,
        "daddr": daddr,
        "ip_len": ip_len.astype(np.uint32),
        "ttl": ttl.astype(np.uint8),
        "l4proto": l4_names,
        "sport": sport,
        "dport": dport,
        "tcp_flags": tcp_flags,
        "tcp_seq": tcp_seq,
        "icmp_type": icmp_type,
        "icmp_code": icmp_code,
    }
