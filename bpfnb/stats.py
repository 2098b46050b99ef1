"""``bpfnb.stats``: verification figures per program over a corpus, as veristat
gives them, and the comparison of two runs (veristat's ``-C``).

>>> frame = bpfnb.stats(["build/"])                       # doctest: +SKIP
>>> frame = bpfnb.stats(["build/"], client=4)             # 4 local worker processes
>>> diff = bpfnb.stats.compare("O2.parquet", "O1.parquet", filter="processed>1000")

One task per object. Without a client the objects are verified one after the
other in this process (Dask is not imported); with a ``dask.distributed``
``Client`` (or a scheduler address, or a number of local worker processes)
each object is a task on the cluster. An object ships to its task as bytes, so
workers need not see the client's files. A worker lost mid-run loses nothing:
the scheduler runs its tasks again elsewhere. An object that does not load is
a row whose ``verdict`` is ``"error"``, never an abort.

The kernel's verdicts (``vs_kernel``) come from the machine that has that
kernel: workers that declare the ``kernel`` resource (``dask worker
--resources kernel=1``; the local cluster's workers when this machine's kernel
can load programs), else this process.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import logging
import math
import operator
import os
import sys
import tempfile
import types
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from .errors import BpfnbError, KernelError

# Every field of a stats frame, in order (``kernel_*`` only with ``vs_kernel``).
FIELDS = ("file", "program", "section", "type", "verdict", "error", "error_insn", "insns",
          "processed", "states", "peak_states", "stack_depth", "time_us")
KERNEL_FIELDS = ("kernel_verdict", "kernel_error", "kernel_processed", "kernel_time_us",
                 "kernel_match", "kernel_note")
KEY = ("file", "program")
# Fields compared by ``compare`` (numbers get a difference and a percentage).
COMPARED = ("verdict", "insns", "processed", "states", "peak_states", "stack_depth", "time_us",
            "kernel_verdict", "kernel_processed", "kernel_time_us")
VERDICTS = ("verdict", "kernel_verdict")
NUMERIC = tuple(f for f in COMPARED if f not in VERDICTS) + ("error_insn",)
TIME_FIELDS = ("time_us", "kernel_time_us")

ACCEPT, REJECT, ERROR, REFUSED = "accept", "reject", "error", "refused"
MATCH, MISMATCH, NOT_AVAILABLE = "MATCH", "MISMATCH", "N/A"

ELF_MAGIC = b"\x7fELF"
E_MACHINE_OFFSET = 18  # Elf64_Ehdr.e_machine
EM_NONE, EM_BPF = 0, 247
OBJECT_SUFFIXES = (".o", ".elf")  # cilium/ebpf names its objects *.elf
KERNEL_RESOURCE = "kernel"
PROGRESS_MIN_OBJECTS = 20  # a bar below this many objects is noise


# -- the corpus ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectFile:
    """One object of a corpus: ``name`` as rows show it (its path under the directory
    given, or its base name), ``path`` on this machine."""

    name: str
    path: str


def _is_foreign_elf(path: str) -> bool:
    """An ELF object for another machine (the user-space ``.o`` files next to BPF ones in
    a build tree): skipped when walking directories, as veristat does."""
    try:
        with open(path, "rb") as f:
            head = f.read(E_MACHINE_OFFSET + 2)
    except OSError:
        return False  # reported as an error row when loaded
    if len(head) < E_MACHINE_OFFSET + 2 or head[:4] != ELF_MAGIC:
        return False
    machine = int.from_bytes(head[E_MACHINE_OFFSET:], "little")
    return machine not in (EM_NONE, EM_BPF)


def find_objects(paths: Iterable[str | os.PathLike]) -> list[ObjectFile]:
    """The objects under ``paths``: files as given, directories walked (sorted) for
    ``*.o`` (and ``*.elf``) BPF objects."""
    found: list[ObjectFile] = []
    for given in paths:
        given = os.fspath(given)
        if not os.path.isdir(given):
            if not os.path.exists(given):
                raise BpfnbError(f"{given}: no such file or directory")
            found.append(ObjectFile(os.path.basename(given), given))
            continue
        for root, dirs, files in os.walk(given):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                if name.endswith(OBJECT_SUFFIXES) and not _is_foreign_elf(path):
                    found.append(ObjectFile(os.path.relpath(path, given), path))
    return found


# -- one task: one object --------------------------------------------------------------------
def _loaded(obj: ObjectFile, data: bytes | None):
    """The object loaded from its bytes (a task away from the client's files) or its path."""
    from .elf import load

    if data is None:
        return load(obj.path)
    with tempfile.TemporaryDirectory(prefix="bpfnb-stats-") as tmp:
        local = os.path.join(tmp, os.path.basename(obj.path))
        with open(local, "wb") as f:
            f.write(data)
        try:
            loaded = load(local)
        except BpfnbError as exc:  # name the user's file, not the worker's copy
            raise _renamed(exc, local, obj.path) from None
    # later messages (the verifier's, the kernel's) name the user's file too, and so do
    # those of the programs the loader could not prepare
    programs = {name: dataclasses.replace(prog, path=obj.path) for name, prog in loaded.programs.items()}
    failed = {name: dataclasses.replace(f, error=_renamed(f.error, local, obj.path))
              for name, f in loaded.failed.items()}
    return dataclasses.replace(loaded, path=obj.path, programs=programs, failed=failed)


def _renamed(exc: BpfnbError, local: str, path: str) -> BpfnbError:
    """``exc`` with the worker's copy of the file named as the user's ``path``."""
    text = str(exc).replace(local, path)
    try:
        return type(exc)(text)
    except TypeError:  # an error type that takes more than its message
        return BpfnbError(text)


def object_rows(obj: ObjectFile, data: bytes | None = None, *, vs_kernel: bool = False) -> list[dict]:
    """The rows of one object: one per program, or one ``"error"`` row when it does not
    load. ``vs_kernel`` adds the running kernel's verdict to each program's row."""
    from .verifier import verify

    try:
        loaded = _loaded(obj, data)
    except BpfnbError as exc:
        return [{"file": obj.name, "program": None, "verdict": ERROR, "error": str(exc)}]
    rows = []
    for prog in loaded:
        row = {"file": obj.name, "program": prog.name, "section": prog.section, "type": prog.type,
               "insns": len(prog.insns)}
        try:
            result = verify(prog, log_level=0, trace=False, progress=False)  # the corpus has its own bar
        except Exception as exc:  # a corpus run reports, never stops
            row.update(verdict=ERROR, error=f"{prog.where}: {type(exc).__name__}: {exc}")
        else:
            row.update(verdict=result.verdict, error=result.error, error_insn=result.error_insn,
                       processed=result.processed, states=result.states, peak_states=result.peak_states,
                       stack_depth=result.stack_depth, time_us=result.time_us)
        rows.append(row)
    for failed in loaded.failed.values():  # programs the loader could not prepare (the others could)
        rows.append({"file": obj.name, "program": failed.name, "section": failed.section, "verdict": ERROR,
                     "error": str(failed.error)})
    if vs_kernel:
        kernel = kernel_rows(obj, data, loaded=loaded)
        for row in rows:
            row.update(kernel.get(row["program"], {}))
    return rows


def kernel_rows(obj: ObjectFile, data: bytes | None = None, *, loaded=None) -> dict[str, dict]:
    """The running kernel's figures for each program of one object (``kernel_*`` fields),
    by program name. A load the kernel refused before its verifier ran (no permission,
    a map it cannot create) is ``"refused"``, not a verifier ``"reject"``."""
    if loaded is None:
        try:
            loaded = _loaded(obj, data)
        except BpfnbError:
            return {}
    reason = _kernel_unavailable()
    if reason:
        return {prog.name: {"kernel_note": reason} for prog in loaded}
    return {prog.name: _kernel_figures(prog) for prog in loaded}


@functools.cache
def _kernel_unavailable() -> str | None:
    """Why this process cannot ask its kernel (asked once: it loads a probe program)."""
    from .kernel import available

    return available()


def _kernel_figures(prog) -> dict:
    from .kernel import load
    from .kernel.compare import refusal, verdict_of

    try:
        with load(prog, log_level=1) as loaded:
            seen = verdict_of(prog, loaded)
            ran = seen["verdict"] != REFUSED  # its verifier ran: a time in its log
            time_us = loaded.kernel_log.verification_time_us if ran else None
    except KernelError as exc:
        seen, time_us = refusal(exc), None
    except BpfnbError as exc:  # bpfnb cannot prepare the load (no program type): nothing asked
        return {"kernel_note": str(exc)}
    return {"kernel_verdict": seen["verdict"], "kernel_error": seen.get("error") or seen.get("reason"),
            "kernel_processed": seen.get("processed_insns"), "kernel_time_us": time_us}


# -- the run ---------------------------------------------------------------------------------
def _progress_bar(total: int, progress) -> Callable[[int], None] | None:
    """``done -> None`` for the run: the caller's callable, or a bar on long runs
    (a terminal or a notebook), or nothing."""
    if callable(progress):
        return lambda done: progress(done, total)
    interactive = sys.stderr.isatty() or "ipykernel" in sys.modules
    if not progress or total < PROGRESS_MIN_OBJECTS or not interactive:
        return None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="obj", desc="bpfnb stats", file=sys.stderr)

    def step(done: int) -> None:
        bar.update(done - bar.n)
        if done == total:
            bar.close()
    return step


def connect(client=None):
    """A ``dask.distributed`` Client from ``client``: a Client (used as is), a scheduler
    address (``"tcp://host:8786"``) or a number of local worker processes (a
    ``LocalCluster``; its workers get the ``kernel`` resource when this machine's
    kernel loads programs). Returns ``(client, owned)``: close it when ``owned``."""
    from distributed import Client, LocalCluster

    if isinstance(client, Client):
        return client, False
    if isinstance(client, str):
        return Client(client), True
    if isinstance(client, int) and not isinstance(client, bool) and client > 0:
        resources = {KERNEL_RESOURCE: 1} if _kernel_unavailable() is None else {}
        cluster = LocalCluster(n_workers=client, threads_per_worker=1, processes=True,
                               dashboard_address=":0", resources=resources, silence_logs=logging.ERROR)
        return Client(cluster), True
    raise BpfnbError(f"client {client!r}: a dask.distributed Client, a scheduler address "
                     f"or a positive number of local workers")


def _has_kernel_workers(client) -> bool:
    workers = client.scheduler_info().get("workers", {}).values()
    return any(w.get("resources", {}).get(KERNEL_RESOURCE) for w in workers)


def _run_in_process(objects: Sequence[ObjectFile], vs_kernel: bool, step) -> list[list[dict]]:
    out = []
    for k, obj in enumerate(objects):
        out.append(object_rows(obj, vs_kernel=vs_kernel))
        if step:
            step(k + 1)
    return out


def _read(obj: ObjectFile) -> bytes | None:
    try:
        with open(obj.path, "rb") as f:
            return f.read()
    except OSError:
        return None  # the task reports it, from the path


def _run_on_cluster(client, objects: Sequence[ObjectFile], vs_kernel: bool, step) -> list[list[dict]]:
    from distributed import as_completed

    on_workers = vs_kernel and _has_kernel_workers(client)
    run = uuid.uuid4().hex[:12]  # keys of one run: a key reused while known would get the old result
    futures = {}
    for k, obj in enumerate(objects):
        # our verifier anywhere; the kernel's only where the kernel is (or here, below)
        options = {"resources": {KERNEL_RESOURCE: 1}} if on_workers else {}
        future = client.submit(object_rows, obj, _read(obj), vs_kernel=on_workers,
                               key=f"bpfnb-stats-{run}-{k}-{obj.name}", pure=False, **options)
        futures[future] = k
    out: list[list[dict]] = [[] for _ in objects]
    for done, future in enumerate(as_completed(futures), start=1):
        out[futures[future]] = future.result()
        if step:
            step(done)
    if vs_kernel and not on_workers:
        for k, obj in enumerate(objects):
            kernel = kernel_rows(obj)
            for row in out[k]:
                row.update(kernel.get(row["program"], {}))
    return out


def _frame(rows: list[dict], vs_kernel: bool) -> pd.DataFrame:
    fields = list(FIELDS) + (list(KERNEL_FIELDS) if vs_kernel else [])
    frame = pd.DataFrame(rows, columns=fields)
    for name in NUMERIC:
        if name in frame:
            frame[name] = frame[name].astype("Int64")
    if vs_kernel:
        seen = frame["kernel_verdict"].notna() & (frame["kernel_verdict"] != REFUSED)  # no verifier verdict
        frame["kernel_match"] = (frame["verdict"] == frame["kernel_verdict"]).where(seen).astype("boolean")
    return frame


def stats(paths, *, client=None, vs_kernel: bool = False, progress=True) -> pd.DataFrame:
    """One row per program of every object under ``paths`` (files, or directories walked
    for ``*.o``): ``FIELDS`` (verdict, instructions, processed instructions, states, peak
    states, stack depth, time), and with ``vs_kernel`` the running kernel's verdict,
    processed count and time (``kernel_*``) with ``kernel_match``.

    ``client``: None (this process), a ``dask.distributed.Client``, a scheduler address,
    or a number of local worker processes. ``progress``: a bar on long runs (True), none
    (False), or a callable ``(done, total)``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    objects = find_objects(paths)
    step = _progress_bar(len(objects), progress)
    if client is None:
        per_object = _run_in_process(objects, vs_kernel, step)
    else:
        client, owned = connect(client)
        try:
            per_object = _run_on_cluster(client, objects, vs_kernel, step)
        finally:
            if owned:
                client.close()
                if client.cluster is not None:
                    client.cluster.close()
    return _frame([row for rows in per_object for row in rows], vs_kernel)


# -- reading runs back -----------------------------------------------------------------------
# veristat's CSV column names, so its output can be compared with ours
VERISTAT_NAMES = {"file_name": "file", "prog_name": "program", "duration": "time_us",
                  "total_insns": "processed", "total_states": "states"}
VERISTAT_VERDICTS = {"success": ACCEPT, "failure": REJECT}


def read(source, *, client=None) -> pd.DataFrame:
    """A stats frame from a frame, a file ``--out`` wrote (``.parquet``/``.csv``, or a
    veristat CSV), or objects (a directory or ``.o`` file: verified now)."""
    if isinstance(source, pd.DataFrame):
        frame = source
    else:
        path = os.fspath(source)
        if path.endswith(".parquet"):
            frame = pd.read_parquet(path)
        elif path.endswith(".csv"):
            frame = pd.read_csv(path)
        else:
            return stats([path], client=client, progress=False)
        frame = frame.rename(columns=VERISTAT_NAMES)
        if "verdict" in frame:
            frame["verdict"] = frame["verdict"].replace(VERISTAT_VERDICTS)
    missing = [k for k in KEY if k not in frame]
    if missing:
        raise BpfnbError(f"{source if not isinstance(source, pd.DataFrame) else 'frame'}: "
                         f"no {', '.join(missing)} column: not a stats table")
    return frame


def write(frame: pd.DataFrame, path: str) -> None:
    """``frame`` with every field, as Parquet or CSV by the file's suffix."""
    if path.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    elif path.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        raise BpfnbError(f"{path}: write .parquet or .csv")


# -- filters, as veristat's -f ---------------------------------------------------------------
OPERATORS = (("==", operator.eq), ("!=", operator.ne), ("<>", operator.ne), ("<=", operator.le),
             ("<", operator.lt), (">=", operator.ge), (">", operator.gt), ("=", operator.eq))
TRUE_WORDS = {"true", "t", "success", "succ", "s", "accept", "match", "m"}
FALSE_WORDS = {"false", "f", "failure", "fail", "reject", "mismatch", "mis"}
ALIASES = {"duration": "time_us", "dur": "time_us", "total_insns": "processed",
           "total_states": "states", "peak": "peak_states", "prog": "program", "prog_name": "program",
           "file_name": "file"}
VARIANTS = {"_a": "_base", "_base": "_base", "_b": "_new", "_new": "_new", "_diff": "_diff",
            "_pct": "_pct"}


@dataclass(frozen=True)
class Filter:
    """One ``-f`` expression: ``[!]field[_a|_b|_diff|_pct] OP value`` (a stat filter) or
    ``[!]glob`` / ``[!]file-glob/prog-glob`` (a name filter)."""

    text: str
    deny: bool
    column: str | None = None  # stat filters
    op: Callable | None = None
    value: float | None = None
    any_glob: str | None = None  # name filters
    file_glob: str | None = None
    prog_glob: str | None = None

    @property
    def is_stat(self) -> bool:
        return self.column is not None


def parse_filter(text: str, *, comparison: bool = False) -> Filter:
    """``text`` as veristat reads ``-f``; in a comparison a bare field means the new side."""
    deny = text.startswith("!")
    body = text[1:] if deny else text
    for symbol, op in OPERATORS:
        name, sep, value = body.partition(symbol)
        if not sep:
            continue
        name, value = name.strip(), value.strip()
        variant = next((v for v in VARIANTS if name.endswith(v) and name[:-len(v)]), "")
        field = ALIASES.get(name[:len(name) - len(variant)], name[:len(name) - len(variant)])
        if field not in COMPARED and field not in NUMERIC:
            raise BpfnbError(f"filter {text!r}: {field!r} is not a numeric field "
                             f"(one of {', '.join(COMPARED)})")
        if variant and not comparison:
            raise BpfnbError(f"filter {text!r}: {variant} applies to a comparison (--compare) only")
        if comparison:
            variant = VARIANTS[variant] if variant else "_new"
            if field in VERDICTS and variant == "_pct":
                raise BpfnbError(f"filter {text!r}: the verdict has no percentage")
        if value.lower() in TRUE_WORDS:
            number = 1.0
        elif value.lower() in FALSE_WORDS:
            number = 0.0
        else:
            try:
                number = float(value)
            except ValueError:
                raise BpfnbError(f"filter {text!r}: {value!r} is not a number") from None
        return Filter(text, deny, column=field + (variant if comparison else ""), op=op, value=number)
    file_glob, slash, prog_glob = body.partition("/")
    if not slash:
        return Filter(text, deny, any_glob=body)
    return Filter(text, deny, file_glob=file_glob or None, prog_glob=prog_glob or None)


def _values(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as numbers: verdicts 1 (accept) / 0, comparisons 1 (MATCH) / 0, N/A missing."""
    if column not in frame:
        raise BpfnbError(f"filter on {column!r}: no such column here")
    values = frame[column]
    if column.startswith(VERDICTS):
        if column.endswith("_diff"):
            return values.map({MATCH: 1.0, MISMATCH: 0.0}).astype("float64")
        return values.map(lambda v: math.nan if v is None or v != v else float(v == ACCEPT))
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _name_matches(f: Filter, frame: pd.DataFrame) -> pd.Series:
    files = frame["file"].fillna("").astype(str)
    progs = frame["program"].fillna("").astype(str)
    basenames = files.map(os.path.basename)

    def glob(series, pattern):
        return series.map(lambda s: fnmatch.fnmatchcase(s, pattern))
    if f.any_glob is not None:
        return glob(files, f.any_glob) | glob(basenames, f.any_glob) | glob(progs, f.any_glob)
    hit = pd.Series(True, index=frame.index)
    if f.file_glob:
        hit &= glob(files, f.file_glob) | glob(basenames, f.file_glob)
    if f.prog_glob:
        hit &= glob(progs, f.prog_glob)
    return hit


def apply_filters(frame: pd.DataFrame, filters: Sequence[str | Filter] | str | None, *,
                  comparison: bool = False) -> pd.DataFrame:
    """The rows veristat would keep: none denied (``!``), and among allow filters of each
    kind (names, stats), at least one matching."""
    if not filters:
        return frame
    if isinstance(filters, str):
        filters = [filters]
    parsed = [f if isinstance(f, Filter) else parse_filter(f, comparison=comparison) for f in filters]
    keep = pd.Series(True, index=frame.index)
    for kind in (False, True):
        allow = pd.Series(False, index=frame.index)
        allows = 0
        for f in (f for f in parsed if f.is_stat == kind):
            if f.is_stat:
                values = _values(frame, f.column)
                hit = f.op(values, f.value).fillna(False).astype(bool) & values.notna()
            else:
                hit = _name_matches(f, frame)
            if f.deny:
                keep &= ~hit
            else:
                allows += 1
                allow |= hit
        if allows:
            keep &= allow
    return frame[keep]


# -- two runs side by side -------------------------------------------------------------------
def _pct(base: pd.Series, new: pd.Series) -> pd.Series:
    """veristat's relative difference: 0 when both are 0, +-100 from 0."""
    base_f, new_f = base.astype("float64"), new.astype("float64")
    pct = (new_f - base_f) * 100.0 / base_f.where(base_f != 0)
    from_zero = (base_f == 0) & (new_f != 0)
    pct = pct.mask(from_zero, (new_f > 0).map({True: 100.0, False: -100.0}))
    return pct.mask((base_f == 0) & (new_f == 0), 0.0)


def compare(base, new, *, filter=None, client=None) -> pd.DataFrame:  # noqa: A002 (veristat's word)
    """One row per program present in either run: for each compared field its
    ``_base``, ``_new`` and ``_diff`` (numbers: new - base, and ``_pct``; the verdict:
    ``MATCH``/``MISMATCH``), ``present`` (``both``/``base``/``new``); verdict flips first.

    ``base``/``new``: stats frames, files ``--out`` wrote, or objects to verify now.
    ``filter``: veristat ``-f`` expressions (``"processed_diff>100"``, ``"!*skel*"``).
    """
    a, b = read(base, client=client), read(new, client=client)
    fields = [f for f in COMPARED if f in a and f in b]
    keyed = [f.assign(program=f["program"].fillna("")).drop_duplicates(list(KEY))[list(KEY) + fields]
             for f in (a, b)]
    joined = keyed[0].merge(keyed[1], on=list(KEY), how="outer", suffixes=("_base", "_new"),
                            indicator="present")
    joined["present"] = joined["present"].map({"both": "both", "left_only": "base",
                                               "right_only": "new"}).astype("string")
    both = joined["present"] == "both"
    columns = list(KEY)
    for name in fields:
        lhs, rhs = joined[name + "_base"], joined[name + "_new"]
        if name in VERDICTS:
            diff = pd.Series(NOT_AVAILABLE, index=joined.index, dtype="object")
            known = both & lhs.notna() & rhs.notna()  # no kernel verdict on a side: N/A
            diff[known] = (lhs[known] == rhs[known]).map({True: MATCH, False: MISMATCH})
            joined[name + "_diff"] = diff
            columns += [name + "_base", name + "_new", name + "_diff"]
            continue
        lhs, rhs = lhs.astype("Int64"), rhs.astype("Int64")
        joined[name + "_base"], joined[name + "_new"] = lhs, rhs
        joined[name + "_diff"] = (rhs - lhs).where(both)
        joined[name + "_pct"] = _pct(lhs, rhs).where(both)
        columns += [name + "_base", name + "_new", name + "_diff", name + "_pct"]
    columns.append("present")
    joined = joined[columns]
    joined["program"] = joined["program"].replace("", None)
    joined = joined.assign(_flip=_flipped(joined)).sort_values(
        ["_flip", "file", "program"], ascending=[False, True, True], na_position="first")
    out = apply_filters(joined.drop(columns="_flip").reset_index(drop=True), filter, comparison=True)
    out.attrs["flips"] = int(_flipped(out).sum())
    return out


def _flipped(frame: pd.DataFrame) -> pd.Series:
    """Rows where bpfnb's verdict, or the kernel's, differs between the two runs."""
    flip = pd.Series(False, index=frame.index)
    for name in VERDICTS:
        if name + "_diff" in frame:
            flip |= frame[name + "_diff"] == MISMATCH
    return flip


# ``bpfnb.stats(...)`` calls ``stats`` even once ``import bpfnb.stats`` has bound this
# module on the package (an attribute a lazy function would otherwise lose to it).
class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs) -> pd.DataFrame:
        return stats(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
