"""Drop datasets: drops frames written as Parquet partitioned by minute and CPU, read back
as pandas or dask frames; the pwru-like lines of ``bpfnb trace drops --lines``."""

import os
import struct

import dask.dataframe as dd
import pandas as pd
import pytest

import bpfnb
from bpfnb.cli.trace import drop_lines
from bpfnb.dropwatch import SyntheticDrop, simulate_drops
from bpfnb.errors import BpfnbError
from bpfnb.frames.dataset import NS_PER_MINUTE, DropDataset, open_drops, write_drops
from bpfnb.frames.drops import SCHEMA

UDP = bytes(12) + b"\x08\x00" + bytes.fromhex("4500001c00004000401100007f0000017f000001") + \
    struct.pack("!HHHH", 40000, 53, 8, 0)
TCP = bytes(12) + b"\x08\x00" + bytes.fromhex("450000280000400040060000c0a80001c0a80002") + \
    struct.pack("!HHIIBBHHH", 1234, 80, 1, 0, 0x50, 0x02, 8192, 0, 0)
IPV6_UDP = bytes(12) + b"\x86\xdd" + bytes.fromhex("6000000000081140") + \
    bytes(15) + b"\x01" + bytes(15) + b"\x01" + struct.pack("!HHHH", 5000, 9, 8, 0)
ARP = bytes(12) + b"\x08\x06" + bytes(28)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("simulated")
    frame = simulate_drops([SyntheticDrop(UDP), SyntheticDrop(TCP, "SOCKET_RCVBUFF", 2, "eth0"),
                            SyntheticDrop(IPV6_UDP), SyntheticDrop(ARP, "UNHANDLED_PROTO", 3, "veth0")],
                           out=out / "drops")
    return frame, out / "drops"


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root).rsplit("/", 1)[0]
                  for d, _, names in os.walk(root) for f in names)


def test_simulate_drops_writes_the_dataset_trace_drops_writes(simulated):
    frame, path = simulated
    assert _files(path) == ["minute=0/cpu=0"]  # simulated times start at 1 us, on CPU 0
    back = bpfnb.frames.open_drops(path)
    assert isinstance(back, pd.DataFrame)  # small: pandas
    assert list(back.columns) == [*SCHEMA, "minute"]
    assert back["reason"].tolist() == ["NO_SOCKET", "SOCKET_RCVBUFF", "NO_SOCKET", "UNHANDLED_PROTO"]
    assert back["ifname"].tolist() == ["lo", "eth0", "lo", "veth0"]
    for name in ("time_ns", "len", "sport", "dport", "cpu", "ip_version", "location"):
        assert back[name].tolist() == frame[name].tolist(), name
    assert back["packet"].tolist() == frame["packet"].tolist()


def test_partitions_are_minutes_and_cpus(simulated, tmp_path):
    frame, _ = simulated
    later = frame.assign(time_ns=frame["time_ns"] + 3 * NS_PER_MINUTE, cpu=[0, 1, 1, 7])
    assert write_drops(frame, tmp_path) == 4
    assert write_drops(later, tmp_path) == 4  # added beside what is there
    assert sorted(set(_files(tmp_path))) == ["minute=0/cpu=0", "minute=3/cpu=0", "minute=3/cpu=1",
                                            "minute=3/cpu=7"]
    back = open_drops(tmp_path)
    assert len(back) == 8
    assert back.groupby(["minute", "cpu"]).size().to_dict() == {(0, 0): 4, (3, 0): 1, (3, 1): 2, (3, 7): 1}


def test_a_large_dataset_opens_as_a_dask_frame_with_the_same_aggregates(simulated, tmp_path):
    frame, _ = simulated
    for minute in range(4):
        write_drops(frame.assign(time_ns=frame["time_ns"] + minute * NS_PER_MINUTE), tmp_path)
    lazy = open_drops(tmp_path, lazy=True)
    assert isinstance(lazy, dd.DataFrame) and lazy.npartitions == 4
    eager = open_drops(tmp_path)
    assert lazy.groupby("reason")["len"].sum().compute().sort_index().to_dict() == \
        eager.groupby("reason")["len"].sum().sort_index().to_dict() == \
        {"NO_SOCKET": 4 * (28 + 48), "SOCKET_RCVBUFF": 4 * 40, "UNHANDLED_PROTO": 4 * 28}
    assert list(open_drops(tmp_path, columns=["reason", "dport"]).columns) == ["reason", "dport"]


def test_the_writer_flushes_by_rows_and_on_close(simulated, tmp_path):
    frame, _ = simulated
    with DropDataset(tmp_path, flush_rows=8, flush_seconds=3600) as out:
        out.append(frame)
        assert out.rows == 0 and _files(tmp_path) == []  # buffered
        out.append(frame)
        assert out.rows == 8 and out.files == 1  # 8 rows: written
        out.append(frame)
    assert out.rows == 12 and out.files == 2  # the rest on close
    assert len(open_drops(tmp_path)) == 12


def test_a_dataset_path_that_is_a_file_or_missing_is_refused(tmp_path):
    (tmp_path / "f.parquet").write_bytes(b"")
    with pytest.raises(BpfnbError, match="f.parquet: a drop dataset is a directory; this is a file"):
        DropDataset(tmp_path / "f.parquet")
    with pytest.raises(BpfnbError, match="nowhere: no drop dataset here"):
        open_drops(tmp_path / "nowhere")


def test_lines_show_time_cpu_interface_length_tuple_and_reason_as_pwru(simulated):
    frame, _ = simulated
    lines = drop_lines(frame)
    assert [line.split()[1:] for line in lines] == [
        ["0", "lo", "28", "127.0.0.1:40000->127.0.0.1:53(udp)", "NO_SOCKET"],
        ["0", "eth0", "40", "192.168.0.1:1234->192.168.0.2:80(tcp)", "SOCKET_RCVBUFF"],
        ["0", "lo", "48", "[::1]:5000->[::1]:9(udp)", "NO_SOCKET"],
        ["0", "veth0", "28", "ethertype", "0x0806", "UNHANDLED_PROTO"],
    ]
    assert lines[0].split()[0].endswith(".000001")  # microseconds of time_ns 1000
