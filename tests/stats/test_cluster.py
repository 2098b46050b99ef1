"""bpfnb.stats on a real dask.distributed LocalCluster of 2 worker processes."""

from __future__ import annotations

import os
import shutil
import signal

import pandas as pd
import pytest

from bpfnb.cli import main
from bpfnb.stats import TIME_FIELDS, stats

from .conftest import ROOT

pytestmark = pytest.mark.slow
WORKERS = 2
COPIES = 12  # objects enough that a worker still has tasks when the first one finishes


def _cluster():
    from distributed import LocalCluster

    return LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=":0",
                        silence_logs=50)


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    with _cluster() as cluster, Client(cluster) as c:
        yield c


def _without_time(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in TIME_FIELDS if c in frame])


def test_the_cluster_gives_the_same_rows_and_values_as_this_process(corpus, client):
    here = stats([corpus], progress=False)
    there = stats([corpus], client=client, progress=False)
    assert len(there) == 42
    pd.testing.assert_frame_equal(_without_time(there), _without_time(here))
    assert (there["time_us"].dropna() > 0).all()


def test_a_bad_object_on_the_cluster_is_a_row_with_its_error(corpus, client):
    frame = stats([corpus / "broken" / "bad.o", corpus / "examples"], client=client, progress=False)
    assert frame.loc[0, "verdict"] == "error"
    # the worker loads a copy of the bytes; the error names the user's file
    assert frame.loc[0, "error"] == f"{corpus / 'broken' / 'bad.o'}: not an ELF file"
    assert frame["program"].iloc[1:].tolist() == ["count_protocols", "count_protocols", "walk_skb", "walk_skb"]


def test_a_worker_killed_mid_run_loses_no_object(tmp_path):
    from distributed import Client

    source = ROOT / "tests" / "fixtures" / "tracing.bpf.o"
    for k in range(COPIES):
        shutil.copy(source, tmp_path / f"tracing{k:02}.bpf.o")
    expected = stats([tmp_path], progress=False)
    killed: dict = {}
    with _cluster() as cluster, Client(cluster) as client:
        def kill_a_busy_worker(done: int, total: int) -> None:
            # the signal: one object finished; a worker still holds tasks -> SIGKILL it
            if killed:
                return
            busy = {w: keys for w, keys in client.processing().items() if keys}
            if not busy:
                return
            victim = sorted(busy)[0]
            pid = client.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)
            killed.update(worker=victim, tasks=list(busy[victim]), done=done)

        frame = stats([tmp_path], client=client, progress=kill_a_busy_worker)
    assert killed and killed["tasks"] and killed["done"] < COPIES
    pd.testing.assert_frame_equal(_without_time(frame), _without_time(expected))
    assert frame["file"].nunique() == COPIES


def test_cli_workers_prints_the_dashboard_and_the_same_table(corpus, capsys):
    assert main(["stats", str(corpus / "examples"), "--fields", "file,program,verdict,processed"]) == 0
    here = capsys.readouterr()
    assert main(["stats", str(corpus / "examples"), "--workers", "2", "--fields",
                 "file,program,verdict,processed"]) == 0
    there = capsys.readouterr()
    assert there.out == here.out
    assert "dask: 2 workers, dashboard http://" in there.err


def test_cli_scheduler_runs_on_an_existing_cluster(corpus, client, capsys):
    address = client.scheduler.address
    assert main(["stats", str(corpus / "examples"), "--scheduler", address, "--fields", "program,verdict"]) == 0
    out = capsys.readouterr()
    assert "4 programs in 4 objects: 2 accepted, 2 rejected" in out.out
    assert f"dask: {WORKERS} workers, dashboard http://" in out.err
    assert client.scheduler_info()["workers"]  # the cluster is not the CLI's to close


@pytest.mark.kernel
def test_kernel_figures_come_from_workers_with_the_kernel_resource_or_from_here(corpus, client):
    from distributed import Client, LocalCluster

    here = stats([corpus / "examples", corpus / "fixtures" / "fentry.bpf.o"], vs_kernel=True, progress=False)
    without = stats([corpus / "examples", corpus / "fixtures" / "fentry.bpf.o"], client=client, vs_kernel=True,
                    progress=False)  # no worker declares the resource: this process asks its kernel
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0", silence_logs=50,
                      resources={"kernel": 1}) as cluster, Client(cluster) as kernel_client:
        on_workers = stats([corpus / "examples", corpus / "fixtures" / "fentry.bpf.o"], client=kernel_client,
                           vs_kernel=True, progress=False)
    for frame in (without, on_workers):
        pd.testing.assert_frame_equal(_without_time(frame), _without_time(here))
    assert here["kernel_verdict"].tolist() == ["accept", "reject", "reject", "accept", "refused"]
    assert here["kernel_processed"].tolist()[:4] == [76, 25, 3, 11]


def test_a_program_the_loader_cannot_prepare_names_the_users_file_on_the_cluster(tmp_path, client):
    from elftools.elf.elffile import ELFFile

    fixture = ROOT / "tests" / "fixtures" / "static_programs.bpf.o"
    data = bytearray(fixture.read_bytes())
    with open(fixture, "rb") as f:
        xdp = next(s for s in ELFFile(f).iter_sections() if s.name == "xdp")
        call = xdp["sh_offset"] + 8 * 1  # static_xdp's `call scaled`: now into the middle of scaled()
    data[call + 4:call + 8] = (0).to_bytes(4, "little")
    path = tmp_path / "broken.o"
    path.write_bytes(bytes(data))
    frame = stats([path], client=client, progress=False)
    failed = frame[frame["program"] == "static_xdp"].iloc[0]
    assert failed["verdict"] == "error"
    assert failed["error"] == (f"{path}:xdp: insn 1: call to .text insn 1, "
                               "which is not the start of a function")
