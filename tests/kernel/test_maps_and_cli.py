"""Kernel maps of every kind bpfnb creates, and `bpfnb verify --vs-kernel`."""

import json
import pathlib

import pytest

from bpfnb.cli import main
from bpfnb.kernel.maps import create_map, possible_cpus
from bpfnb.program import MapDef

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.kernel
@pytest.mark.parametrize("definition", [
    MapDef("a", "array", 4, 8, 4),
    MapDef("h", "hash", 4, 8, 16),
    MapDef("pa", "percpu_array", 4, 8, 1),
    MapDef("ph", "percpu_hash", 4, 8, 4),
    MapDef("ev", "perf_event_array", 4, 4, 0),
    MapDef("rb", "ringbuf", 0, 0, 4096),
], ids=lambda d: d.type)
def test_every_kind_of_map_is_created(definition):
    kmap = create_map(definition)
    try:
        assert kmap.fd is not None and kmap.fd > 2
        if definition.type in ("array", "hash"):
            kmap.update(b"\1\0\0\0", (0x1122).to_bytes(8, "little"))
            assert kmap.lookup(b"\1\0\0\0") == (0x1122).to_bytes(8, "little")
        if definition.type == "percpu_array":
            assert len(kmap.lookup(b"\0\0\0\0")) == 8 * possible_cpus()
    finally:
        kmap.close()
    assert kmap.fd is None


@pytest.mark.kernel
def test_verify_vs_kernel_prints_the_kernels_verdict(capsys):
    status = main(["verify", "--vs-kernel", "--json", str(ROOT / "bpfnb/data/examples/count_protocols_nocheck.bpf.o"),
                   ])
    record = json.loads(capsys.readouterr().out)
    assert status == 1
    assert record["program"] == "count_protocols" and record["section"] == "socket"
    assert record["kernel"] == {"verdict": "reject", "error": "R0 invalid mem access 'map_value_or_null'",
                                "error_insn": 25, "processed_insns": 25}


@pytest.mark.kernel
def test_verify_raw_instructions_vs_kernel(capsys, tmp_path):
    raw = tmp_path / "exit.bin"
    raw.write_bytes(bytes.fromhex("9500000000000000"))
    assert main(["verify", "--vs-kernel", "--raw", str(raw), "--type", "socket_filter"]) == 1
    assert "kernel reject at insn 0: R0 !read_ok" in capsys.readouterr().out
