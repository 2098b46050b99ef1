"""The example programs the notebooks open get the kernel verdicts the
notebooks describe. The oracle here is bpftool (libbpf), independent of bpfnb."""

import pathlib
import re
import shutil
import subprocess

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "bpfnb/data/examples"
PIN = pathlib.Path("/sys/fs/bpf/bpfnb_example_test")

VERDICTS = {
    "count_protocols.bpf.o": None,
    "count_protocols_nocheck.bpf.o": "R0 invalid mem access 'map_value_or_null'",
    "typecast_ok.bpf.o": None,
    "typecast.bpf.o": "R1 invalid mem access 'scalar'",
    "trust.bpf.o": None,
    "trust_misuse.bpf.o": "R1 is of type task_struct but sock_common is expected",
}


def _bpffs() -> None:
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool is not installed (Debian package bpftool)")
    if subprocess.run(["mountpoint", "-q", "/sys/fs/bpf"]).returncode != 0:
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=False)


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_kernel_verdict(name):
    _bpffs()
    PIN.unlink(missing_ok=True)
    run = subprocess.run(["bpftool", "-d", "prog", "load", str(EXAMPLES / name), str(PIN)],
                         capture_output=True, text=True)
    PIN.unlink(missing_ok=True)
    log = run.stdout + run.stderr
    assert re.search(r"processed \d+ insns", log), log[-2000:]
    expected = VERDICTS[name]
    if expected is None:
        assert run.returncode == 0, log[-2000:]
    else:
        assert run.returncode != 0
        assert expected in log.splitlines()


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.o")) == sorted(VERDICTS)
