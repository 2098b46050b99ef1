"""tests/large_fixtures/million.bpf.o in the running kernel: the figures its golden
file keeps (the browser test and bench_verifier rely on them) are still the kernel's."""

import json
import pathlib

import pytest

import bpfnb

SCALE = pathlib.Path(__file__).resolve().parents[1] / "large_fixtures"


@pytest.mark.kernel
@pytest.mark.slow
def test_the_kernel_walks_the_million_fixture_as_its_golden_file_says():
    from bpfnb.kernel import load

    golden = json.loads((SCALE / "million.kernel.json").read_text())
    prog = bpfnb.load(SCALE / "million.bpf.o").program(golden["program"])
    with load(prog, log_level=1) as loaded:
        log = loaded.kernel_log
        assert loaded.ok and golden["verdict"] == "accept"
        assert log.processed == golden["processed_insns"] == 990_003  # under the kernel's limit of 1,000,000
        assert f"total_states {golden['total_states']} peak_states {golden['peak_states']}" in loaded.log
