"""bpfnb.stats at scale: objects per second in this process against 2 local Dask
workers on the same corpus, and a dask.dataframe aggregation over a drop dataset of
at least 10M synthetic rows on disk, with its peak memory.

The corpus is ``BPFNB_CORPUS`` (directories separated by ``:``; e.g. the shared
corpora ``/work/scratch/corpora/libbpf-tools:/work/scratch/corpora/cilium-ebpf:...``)
or, without it, the committed objects (tests/fixtures and the examples). The
reference of the first figure is the in-process run, measured in the same run; the
reference of the second is the size the same rows take as one pandas frame.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKERS = 2
DROP_ROWS = 10_000_000
ROWS_PER_MINUTE = 500_000  # one chunk written per minute of synthetic drops
MiB = 1 << 20


def _corpus() -> list[str]:
    given = os.environ.get("BPFNB_CORPUS")
    if given:
        return [p for p in given.split(os.pathsep) if p]
    return [str(ROOT / "tests" / "fixtures"), str(ROOT / "bpfnb" / "data" / "examples")]


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} CPUs"


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_corpus() -> None:
    from distributed import Client, LocalCluster

    from bpfnb.stats import TIME_FIELDS, find_objects, stats

    paths = _corpus()
    objects = len(find_objects(paths))
    print(f"corpus: {objects} objects in {', '.join(paths)}")
    print(f"  ({_load()} before the runs)")

    start, cpu = time.perf_counter(), time.process_time()
    here = stats(paths, progress=False)
    in_process, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"in-process (reference): {in_process:7.1f} s  {objects / in_process:6.2f} objects/s "
          f"({len(here)} rows; {cpu:.1f} CPU s, {cpu / in_process:.2f} CPUs busy)")

    start = time.perf_counter()
    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=40) as cluster, Client(cluster) as client:
        client.wait_for_workers(WORKERS)
        started = time.perf_counter() - start
        client.run(lambda: __import__("bpfnb.verifier") and None)  # imports as a warm worker has them
        before = sum(client.run(_cpu_seconds).values())
        start = time.perf_counter()
        there = stats(paths, client=client, progress=False)
        on_cluster = time.perf_counter() - start
        workers_cpu = sum(client.run(_cpu_seconds).values()) - before
    timeless = [c for c in here.columns if c not in TIME_FIELDS]
    same = here[timeless].equals(there[timeless])
    if not same:
        raise AssertionError("the cluster's rows differ from the in-process rows: no speed-up to report")
    print(f"{WORKERS} local workers:     {on_cluster:7.1f} s  {objects / on_cluster:6.2f} objects/s "
          f"({workers_cpu:.1f} CPU s in the workers, {workers_cpu / on_cluster:.2f} CPUs busy; "
          f"+{started:.1f} s to start the cluster); same rows: {same}")
    print(f"speed-up: {in_process / on_cluster:.2f}x with {WORKERS} workers "
          f"({in_process / (on_cluster + started):.2f}x counting the cluster's start); {_load()} after")


# -- drops -----------------------------------------------------------------------------------
def _peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM: of its own image, not counting what
    the process that started it had, as ru_maxrss would)."""
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def aggregate(path: str) -> dict:
    """The notebook's aggregations over the dataset at ``path`` with dask.dataframe (run
    in a fresh process, so its peak memory is its own)."""
    import dask

    from bpfnb.frames import open_drops

    baseline = _peak_rss_mib()  # Python, pandas, pyarrow, dask imported
    start = time.perf_counter()
    # the columns the aggregations read (Parquet is columnar: the rest stays on disk)
    drops = open_drops(path, lazy=True, columns=["reason", "len", "ifname", "saddr", "daddr", "dport",
                                                     "minute"])
    by_reason = drops.groupby("reason").size()
    by_minute = drops.groupby("minute")["len"].sum()
    top_flows = drops.groupby(["saddr", "daddr", "dport"]).size().nlargest(10)
    by_iface = drops.groupby(["ifname", "reason"]).size()
    rows = drops.map_partitions(len).sum()
    results = dask.compute(by_reason, by_minute, top_flows, by_iface, rows)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": int(results[4]), "partitions": drops.npartitions,
            "reasons": {str(k): int(v) for k, v in results[0].items()},
            "top_flow": [str(x) for x in results[2].index[0]], "top_flow_drops": int(results[2].iloc[0]),
            "peak_rss_mib": _peak_rss_mib(), "baseline_mib": baseline}


def bench_drops() -> None:
    from bpfnb.frames.dataset import NS_PER_MINUTE, DropDataset, synthetic_drops

    with tempfile.TemporaryDirectory(prefix="bpfnb-drops-") as path:
        start = time.perf_counter()
        in_memory = 0
        with DropDataset(path, flush_rows=ROWS_PER_MINUTE) as out:
            for minute in range(DROP_ROWS // ROWS_PER_MINUTE):
                chunk = synthetic_drops(ROWS_PER_MINUTE, seed=minute, start_ns=minute * NS_PER_MINUTE)
                in_memory += int(chunk.memory_usage(deep=True).sum())
                out.append(chunk)
        wrote = time.perf_counter() - start
        size = sum(f.stat().st_size for f in pathlib.Path(path).rglob("*.parquet"))
        files = sum(1 for _ in pathlib.Path(path).rglob("*.parquet"))
        print(f"dataset: {out.rows:,} synthetic drops in {files} files, {size / MiB:,.0f} MiB on disk, "
              f"written in {wrote:.1f} s")
        code = f"import json; from benchmarks.bench_stats import aggregate; print(json.dumps(aggregate({path!r})))"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        if done.returncode:
            raise RuntimeError(f"the aggregation failed:\n{done.stderr}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"aggregation (drops by reason, bytes by minute, top 10 flows, by interface and reason): "
          f"{figures['seconds']:.1f} s over {figures['rows']:,} rows in {figures['partitions']} partitions "
          f"({figures['rows'] / figures['seconds'] / 1e3:,.0f}k rows/s)")
    print(f"peak memory of the aggregating process: {figures['peak_rss_mib']:,.0f} MiB "
          f"({figures['baseline_mib']:,.0f} MiB of it before reading: Python, pandas, dask); "
          f"the same rows as one pandas frame (reference): {in_memory / MiB:,.0f} MiB, "
          f"{in_memory / MiB / figures['peak_rss_mib']:.1f}x the peak")
    print(f"  drops by reason: {figures['reasons']}")
    print(f"  top flow: {' -> '.join(figures['top_flow'][:2])}:{figures['top_flow'][2]} "
          f"({figures['top_flow_drops']:,} drops)")


def main() -> None:
    bench_corpus()
    bench_drops()


if __name__ == "__main__":
    main()
