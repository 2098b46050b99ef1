"""Drop datasets: drops frames on disk as Parquet partitioned by minute and CPU.

A trace that runs for hours does not fit in a DataFrame. ``DropDataset(path)``
takes drops frames (``bpfnb.frames.drops``: live or simulated, same schema) as
they come, buffers them and writes a Parquet file per partition every
``flush_rows`` rows or ``flush_seconds``; the directory is a hive-partitioned
dataset (``minute=N/cpu=C/part-….parquet``, ``minute`` being the drop time's
minute on the kernel's monotonic clock, as ``time_ns``). ``open_drops(path)``
reads it back: a ``dask.dataframe`` (partitions read lazily, aggregations larger
than memory) or, when the files are small, a pandas frame.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from ..errors import BpfnbError
from .drops import SCHEMA

NS_PER_MINUTE = 60_000_000_000
PARTITIONS = ("minute", "cpu")
FLUSH_ROWS = 250_000
FLUSH_SECONDS = 5.0
SMALL_BYTES = 64 << 20  # a dataset below this opens as a pandas frame
# columns pandas keeps as categoricals: written as text, so every file has one schema
CATEGORICAL = ("reason", "ifname", "l4proto")


def _for_parquet(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the dataset stores it: text for categoricals, bytes for packets,
    the partition columns added."""
    out = frame.copy()
    for name in CATEGORICAL:
        out[name] = out[name].astype("string")
    out["packet"] = out["packet"].map(bytes)
    out["minute"] = (out["time_ns"].astype("uint64") // NS_PER_MINUTE).astype("int64")
    return out


class DropDataset:
    """A partitioned Parquet dataset written while drops come in.

    >>> with DropDataset("drops/") as out:          # doctest: +SKIP
    ...     out.append(frame)
    """

    def __init__(self, path: str | os.PathLike, *, flush_rows: int = FLUSH_ROWS,
                 flush_seconds: float = FLUSH_SECONDS):
        self.path = os.fspath(path)
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise BpfnbError(f"{self.path}: a drop dataset is a directory; this is a file")
        os.makedirs(self.path, exist_ok=True)
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self.pending: list[pd.DataFrame] = []
        self.pending_rows = 0
        self.rows = 0  # written so far
        self.files = 0
        self.last_flush = time.monotonic()
        # every writer (run) of a directory names its files apart: <start ns>-<sequence>
        self.run = f"{time.time_ns():x}"

    def append(self, frame: pd.DataFrame) -> None:
        """Buffer ``frame``; written once enough rows or time have gathered."""
        if len(frame):
            self.pending.append(frame)
            self.pending_rows += len(frame)
        if self.pending_rows >= self.flush_rows or \
                (self.pending_rows and time.monotonic() - self.last_flush >= self.flush_seconds):
            self.flush()

    def flush(self) -> None:
        """Write what is buffered: one file per (minute, cpu) present."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.last_flush = time.monotonic()
        if not self.pending:
            return
        frame = _for_parquet(pd.concat(self.pending, ignore_index=True))
        self.pending, self.pending_rows = [], 0
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_to_dataset(table, self.path, partition_cols=list(PARTITIONS),
                            basename_template=f"part-{self.run}-{self.files:06d}-{{i}}.parquet",
                            existing_data_behavior="overwrite_or_ignore")
        self.files += 1
        self.rows += len(frame)

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> DropDataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_drops(frame: pd.DataFrame, path: str | os.PathLike) -> int:
    """``frame`` into the dataset at ``path`` (added to what is there); rows written."""
    with DropDataset(path, flush_rows=max(len(frame), 1)) as out:
        out.append(frame)
    return out.rows


def _size(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def _typed(frame):
    """Partition columns (categories when read back) as the integers they were, and the
    columns in the drops frame's order (text columns stay text)."""
    frame = frame.astype({"minute": "int64", "cpu": "int32"})
    return frame[[c for c in SCHEMA if c in frame.columns] + ["minute"]]


def open_drops(path: str | os.PathLike, *, lazy: bool | None = None, columns: list[str] | None = None):
    """The drop dataset at ``path`` (a directory ``DropDataset`` or ``--out DIR/`` wrote,
    or one Parquet file) as a ``dask.dataframe`` — or a pandas frame when ``lazy`` is
    False, or None and the files total less than ``SMALL_BYTES``.

    >>> drops = open_drops("drops/")                                  # doctest: +SKIP
    >>> drops.groupby("reason").size().compute()                      # doctest: +SKIP
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise BpfnbError(f"{path}: no drop dataset here")
    if lazy is None:
        lazy = (_size(path) if os.path.isdir(path) else os.path.getsize(path)) >= SMALL_BYTES
    if not os.path.isdir(path):  # one file (bpfnb trace drops --out FILE.parquet)
        if lazy:
            import dask.dataframe as dd

            return dd.read_parquet(path, columns=columns)
        return pd.read_parquet(path, columns=columns)
    wanted = None if columns is None else list(dict.fromkeys([*columns, *PARTITIONS]))
    if lazy:
        import dask.dataframe as dd

        frame = dd.read_parquet(path, columns=wanted, dataset={"partitioning": "hive"})
    else:
        frame = pd.read_parquet(path, columns=wanted, partitioning="hive")
    frame = _typed(frame)
    return frame if columns is None else frame[columns]


# -- made-up drops at scale (demos and benchmarks of the dataset, not of the tracer) ---------
SYNTHETIC_REASONS = {"NO_SOCKET": 3, "SOCKET_RCVBUFF": 5, "TCP_CSUM": 7, "NETFILTER_DROP": 17, "OTHERHOST": 9,
                     "PKT_TOO_SMALL": 4}
SYNTHETIC_SHARES = (0.55, 0.2, 0.1, 0.08, 0.05, 0.02)
SYNTHETIC_IFACES = ("lo", "eth0", "eth1", "veth0a1b", "cilium_host")
SYNTHETIC_HOSTS = tuple(f"10.0.{k // 250}.{k % 250 + 1}" for k in range(1000))
SYNTHETIC_PORTS = (53, 80, 443, 8080, 9)
SYNTHETIC_CPUS = 8
IPV4, ETH_P_IP, TCP_FLAG_SYN, TTL = 4, 0x0800, 0x02, 64
KERNEL_TEXT, KERNEL_HEAP = 0xFFFFFFFF81000000, 0xFFFF888000000000


def synthetic_drops(rows: int, *, seed: int = 0, start_ns: int = 0) -> pd.DataFrame:
    """``rows`` made-up drops within one minute from ``start_ns``, with the drops frame's
    schema and dtypes: skewed reasons, a few busy hosts, 8 CPUs. For trying datasets
    and aggregations at sizes a trace reaches (``simulate_drops`` runs the real tracer,
    a few thousand drops a second)."""
    rng = np.random.default_rng(seed)
    names = tuple(SYNTHETIC_REASONS)
    reason = rng.choice(len(names), rows, p=SYNTHETIC_SHARES)
    tcp = rng.random(rows) < 0.4
    length = rng.integers(40, 1500, rows).astype(np.uint32)
    hosts = np.asarray(SYNTHETIC_HOSTS, object)
    iface = rng.integers(0, len(SYNTHETIC_IFACES), rows)
    frame = pd.DataFrame({
        "time_ns": np.uint64(start_ns) + np.sort(rng.integers(0, NS_PER_MINUTE, rows)).astype(np.uint64),
        "cpu": rng.integers(0, SYNTHETIC_CPUS, rows).astype(np.int32),
        "reason": pd.Categorical.from_codes(reason, names),
        "reason_code": np.asarray(list(SYNTHETIC_REASONS.values()), np.uint32)[reason],
        "len": length,
        "ifindex": (iface + 1).astype(np.int32),
        "ifname": pd.Categorical.from_codes(iface, SYNTHETIC_IFACES),
        "protocol": np.full(rows, ETH_P_IP, np.uint16),
        "ip_version": np.full(rows, IPV4, np.uint8),
        "l4proto": pd.Categorical.from_codes(tcp.astype(np.int8), ["udp", "tcp"]),
        "saddr": pd.array(hosts[rng.zipf(1.5, rows) % len(hosts)], dtype="string"),
        "daddr": pd.array(hosts[rng.integers(0, 50, rows)], dtype="string"),
        "sport": rng.integers(1024, 65535, rows).astype(np.uint16),
        "dport": np.asarray(SYNTHETIC_PORTS, np.uint16)[rng.integers(0, len(SYNTHETIC_PORTS), rows)],
        "ttl": np.full(rows, TTL, np.uint8),
        "ip_len": length,
        "tcp_flags": np.where(tcp, TCP_FLAG_SYN, 0).astype(np.uint8),
        "icmp_type": np.zeros(rows, np.uint8),
        "icmp_code": np.zeros(rows, np.uint8),
        "captured": np.zeros(rows, np.uint32),
        "packet": [b""] * rows,
        "location": np.uint64(KERNEL_TEXT) + rng.integers(0, 64, rows).astype(np.uint64) * np.uint64(0x40),
        "skb": np.uint64(KERNEL_HEAP) + rng.integers(0, 1 << 30, rows).astype(np.uint64) * np.uint64(0x100),
    })
    return frame[list(SCHEMA)]
