"""Packet drops as a DataFrame: the records of bpfnb's drop tracer.

``drops(samples, program_btf, kernel_btf)`` turns raw perf samples of the
tracer (``bpfnb/data/drops.bpf.o``: a ``struct drop_event`` followed by up to
``snap_len`` packet bytes) into one row per drop: the record's fields decoded
through BTF, the drop reason named from the kernel's ``enum
skb_drop_reason``, IP and transport fields parsed from the captured network
header, and the packet bytes. Live and simulated samples go through this
same function, so both frames have the same schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .headers import parse_network_headers
from .records import decode_samples, struct_dtype

RECORD = "drop_event"
REASON_PREFIX = "SKB_DROP_REASON_"

# Column order of every drops frame (live or simulated).
SCHEMA = (
    "time_ns", "cpu", "reason", "reason_code", "len", "ifindex", "ifname",
    "protocol", "ip_version", "l4proto", "saddr", "daddr", "sport", "dport",
    "ttl", "ip_len", "tcp_flags", "icmp_type", "icmp_code", "captured", "packet",
    "location", "skb",
)


def reason_names(kernel_btf) -> dict[int, str]:
    """``enum skb_drop_reason`` values to names without the prefix."""
    try:
        enum = kernel_btf.type(kernel_btf.find("skb_drop_reason", "enum"))
    except Exception:  # a BTF without the enum: codes stay numeric
        return {}
    return {v.value: v.name.removeprefix(REASON_PREFIX) for v in enum.values}


def _names(raw: np.ndarray) -> pd.Categorical:
    """Fixed-size C strings as a categorical: few distinct values, decoded once each."""
    distinct, codes = np.unique(raw, return_inverse=True)
    return pd.Categorical.from_codes(codes.reshape(-1), [v.decode("latin-1") for v in distinct])


def drops(
    samples: Sequence[tuple[int, bytes]],
    program_btf,
    kernel_btf=None,
    *,
    lost: int = 0,
) -> pd.DataFrame:
    """One row per drop from ``(cpu, raw sample bytes)`` pairs.

    ``lost`` (samples the ring dropped) is kept in ``frame.attrs["lost"]``.
    """
    dtype = struct_dtype(program_btf, RECORD)
    size = dtype.itemsize
    cpus = np.fromiter((c for c, _ in samples), dtype=np.int32, count=len(samples))
    raws = [r for _, r in samples]
    lengths = np.fromiter((len(r) for r in raws), dtype=np.int64, count=len(raws))
    if len(raws) and lengths.min() < size:
        bad = int(np.argmin(lengths))
        raise ValueError(
            f"sample {bad} has {lengths[bad]} bytes, fewer than struct {RECORD} ({size})"
        )
    records = decode_samples(raws, dtype)

    hdr_bytes = records["hdr"]  # S64: bytes from the network header
    hdr = np.frombuffer(hdr_bytes.tobytes(), dtype=np.uint8).reshape(len(records), -1) \
        if len(records) else np.zeros((0, 64), np.uint8)
    valid = records["hdr_len"] > 0
    parsed = parse_network_headers(hdr, np.where(valid, records["protocol"], 0))

    names = reason_names(kernel_btf) if kernel_btf is not None else {}
    codes = records["reason"].astype(np.int64)
    distinct = np.unique(codes)
    labels = [names.get(int(c), f"reason {int(c)}") for c in distinct]
    reason = pd.Categorical.from_codes(np.searchsorted(distinct, codes), labels)

    captured = records["captured"].astype(np.int64)
    packet = [raw[size : size + n] for raw, n in zip(raws, captured.tolist(), strict=True)]

    frame = pd.DataFrame({
        "time_ns": records["ts_ns"],
        "cpu": cpus,
        "reason": reason,
        "reason_code": codes.astype(np.uint32),
        "len": records["len"],
        "ifindex": records["ifindex"],
        "ifname": _names(records["ifname"]),
        "protocol": records["protocol"],
        "ip_version": parsed["ip_version"],
        "l4proto": pd.Categorical(parsed["l4proto"]),
        "saddr": pd.array(parsed["saddr"], dtype="string"),
        "daddr": pd.array(parsed["daddr"], dtype="string"),
        "sport": parsed["sport"],
        "dport": parsed["dport"],
        "ttl": parsed["ttl"],
        "ip_len": parsed["ip_len"],
        "tcp_flags": parsed["tcp_flags"],
        "icmp_type": parsed["icmp_type"],
        "icmp_code": parsed["icmp_code"],
        "captured": records["captured"],
        "packet": packet,
        "location": records["location"],
        "skb": records["skb"],
    }, columns=list(SCHEMA))
    frame.attrs["lost"] = int(lost)
    return frame
