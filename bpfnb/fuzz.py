"""Fuzzing bpfnb as an outsider would: mutated objects, BTF blobs and instruction streams.

``python -m bpfnb.fuzz --minutes 10`` (``make fuzz``) runs cases in a child
process (a *worker*); the parent gives each case a deadline, so a case that
kills the worker is counted as a crash and one that outlives its deadline as a
hang, and the worker is started again. Every case is a pure function of
``(target, seed, index)``: ``--replay TARGET:SEED:INDEX`` runs one again in
this process.

Targets, each a mutation of what the repository commits (its fixture objects
and the shipped examples):

- ``elf``: bytes of an object flipped, fields set to boundary values, the file
  cut short; then ``bpfnb.load`` and, for each program, the verifier;
- ``btf``: the same on an object's ``.BTF`` section alone; then every lookup a
  user makes (``name_of``, ``sizeof``, ``resolve``, ``c_decl``, ``find_member``);
- ``insns``: a fixture program's instructions with fields changed, or a random
  program (``bpfnb.verifier.randprog``); then the verifier, and the engines on
  the same ``Vm``: the interpreter, the native JIT and Unicorn.

What is counted (``Counts``): crashes, hangs, foreign exceptions (anything not
a ``BpfnbError``: a bug), internal errors (``bpfnb.errors.InternalError``,
where that exists), engine disagreements (r0 or the memory after a run differ
between engines on a program the verifier accepted), silent out-of-region
accesses (the interpreter faults where a JIT engine ran on: memory the region
table does not give the program was touched without a fault) and reported
out-of-region accesses (every engine refused it, naming the instruction).
Programs the verifier rejected are run too (``verify=False``: only the
structure checked); their images check every load and store against the region
table as the interpreter does, so an out-of-region access a JIT engine runs past
is a silent one whether the verifier accepted the program or not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import errors

TARGETS = ("elf", "btf", "insns")
ROOT = Path(__file__).resolve().parent
CORPUS_DIRS = (ROOT.parent / "tests" / "fixtures", ROOT / "data" / "examples")
# a case's deadline in CPU seconds of the worker (verification of a mutated object included): on a
# shared machine wall time says more about the neighbours than about the case
CASE_TIMEOUT_S = 30.0
FIRST_CASE_TIMEOUT_S = 180.0  # a fresh worker compiles or loads numba's cache first
WALL_FACTOR = 10  # a case that sleeps (no CPU) is a hang after this many times its deadline in wall time
MAX_STEPS = 1_000_000  # the interpreter's step limit in a case; the JIT engines run only what it finished
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFD)
PACKET_LEN = 64
OUTCOMES = ("ok", "refused", "foreign", "internal", "disagree", "silent_oob", "oob_reported", "crash", "hang")


@dataclass
class Counts:
    """Outcomes per target; ``examples`` keeps the first few cases of each bad outcome."""

    cases: Counter = field(default_factory=Counter)
    outcomes: dict = field(default_factory=dict)
    examples: dict = field(default_factory=dict)

    def add(self, target: str, outcome: str, case: str, detail: str = "") -> None:
        self.cases[target] += 1
        self.outcomes.setdefault(target, Counter())[outcome] += 1
        if outcome not in ("ok", "refused", "oob_reported") and len(self.examples.setdefault(outcome, [])) < 10:
            self.examples[outcome].append({"case": case, "detail": detail[:2000]})

    def total(self, outcome: str) -> int:
        return sum(c[outcome] for c in self.outcomes.values())

    def bad(self) -> int:
        return sum(self.total(o) for o in ("crash", "hang", "foreign", "internal", "disagree", "silent_oob"))

    def table(self) -> str:
        lines = [f"{'target':8} {'cases':>7} " + " ".join(f"{o:>14}" for o in OUTCOMES)]
        for target in TARGETS:
            c = self.outcomes.get(target, Counter())
            lines.append(f"{target:8} {self.cases[target]:7} " + " ".join(f"{c[o]:14}" for o in OUTCOMES))
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"cases": dict(self.cases), "outcomes": {t: dict(c) for t, c in self.outcomes.items()},
                "examples": self.examples}


# -- the corpus and its mutations -------------------------------------------------------------------
def corpus() -> list[Path]:
    """The committed objects the mutations start from."""
    return sorted(p for d in CORPUS_DIRS if d.is_dir() for p in d.glob("*.bpf.o"))


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few byte-level mutations: flips, boundary values in 1/2/4/8-byte fields, a cut."""
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        if not out:
            break
        kind = rng.random()
        at = rng.randrange(len(out))
        if kind < 0.4:
            out[at] ^= 1 << rng.randrange(8)
        elif kind < 0.8:
            width = rng.choice((1, 2, 4, 8))
            value = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
            chunk = value.to_bytes(width, "little")[: len(out) - at]
            out[at:at + len(chunk)] = chunk
        elif kind < 0.9:
            out[at] = rng.randrange(256)
        else:
            del out[rng.randrange(len(out)):]
    return bytes(out)


def _btf_section(path: Path) -> bytes | None:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".BTF")
        return sec.data() if sec is not None else None


# -- cases --------------------------------------------------------------------------------------------
class Outcome(Exception):
    """A case's result other than "ok" (raised out of the engines' comparison)."""

    def __init__(self, outcome: str, detail: str = ""):
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


def run_case(target: str, seed: int, index: int) -> tuple[str, str]:
    """One case: (outcome, detail). Exceptions are classified here; crashes and hangs are
    for the parent to see."""
    rng = random.Random(f"{target}:{seed}:{index}")
    try:
        {"elf": _elf_case, "btf": _btf_case, "insns": _insns_case, **SELF_TESTS}[target](rng)
    except Outcome as out:
        return out.outcome, out.detail
    except Exception as exc:  # noqa: BLE001 - the point: anything not a BpfnbError is a bug
        internal = getattr(errors, "InternalError", None)
        if internal is not None and isinstance(exc, internal):
            return "internal", _describe(exc)
        if isinstance(exc, errors.BpfnbError):
            return "refused", f"{type(exc).__name__}: {str(exc)[:300]}"
        return "foreign", _describe(exc)  # RecursionError and MemoryError included
    return "ok", ""


def _self_crash(rng: random.Random) -> None:
    import signal

    os.kill(os.getpid(), signal.SIGSEGV)


def _self_hang(rng: random.Random) -> None:
    time.sleep(CASE_TIMEOUT_S * 10)


def _self_spin(rng: random.Random) -> None:
    while True:
        pass


# cases that prove the parent counts a dead or stuck worker (tests/fuzz)
SELF_TESTS = {"selftest-crash": _self_crash, "selftest-hang": _self_hang, "selftest-spin": _self_spin}


def _describe(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(tb[-4:]))
    return f"{type(exc).__name__}: {str(exc)[:300]} at {where}"


def _elf_case(rng: random.Random) -> None:
    from .elf import load
    from .verifier import verify

    source = rng.choice(corpus())
    data = mutate(source.read_bytes(), rng)
    with tempfile.NamedTemporaryFile(suffix=".bpf.o", dir=_tmpdir()) as f:
        f.write(data)
        f.flush()
        obj = load(f.name)
    for prog in list(obj.programs.values())[:4]:
        try:
            verify(prog, log_level=0, trace=False)
        except errors.BpfnbError:
            pass


def _btf_case(rng: random.Random) -> None:
    from .btf import Btf

    sources = [p for p in corpus() if _btf_section(p)]
    data = mutate(_btf_section(rng.choice(sources)), rng)
    btf = Btf.from_bytes(data, name="mutated BTF")
    for type_id in range(1, min(len(btf), 400)):
        for lookup in (btf.name_of, btf.resolve, btf.sizeof, btf.c_decl):
            try:
                lookup(type_id)
            except errors.BtfError:
                pass
        try:
            kind = btf.type(btf.resolve(type_id)).kind
            if kind in ("struct", "union"):
                btf.find_member(type_id, rng.randrange(64), rng.choice((1, 2, 4, 8)))
        except errors.BtfError:
            pass


def _insns_case(rng: random.Random) -> None:
    from dataclasses import replace

    from .elf import load
    from .isa import Insn
    from .verifier.randprog import random_program

    if rng.random() < 0.5:
        prog = random_program(rng, length=rng.randrange(4, 30))
    else:
        obj = load(rng.choice([p for p in corpus() if "fentry" not in p.name]))
        prog = rng.choice(sorted(obj.programs.values(), key=lambda p: p.name))
        insns = list(prog.insns)
        for _ in range(rng.choice((1, 1, 2, 3))):
            k = rng.randrange(len(insns))
            i = insns[k]
            which = rng.randrange(5)
            if which == 0:
                i = Insn(rng.randrange(256), i.dst, i.src, i.off, i.imm)
            elif which == 1:
                i = Insn(i.code, rng.randrange(11), i.src, i.off, i.imm)
            elif which == 2:
                i = Insn(i.code, i.dst, rng.randrange(11), i.off, i.imm)
            elif which == 3:
                i = Insn(i.code, i.dst, i.src, rng.choice((0, 1, -1, 8, -8, 54, 64, -512, 0x7FFF)), i.imm)
            else:
                imm = rng.choice(INTERESTING + (-1, 2, 0x10, 0xE0, 0xF0, 0x100, 12))
                i = Insn(i.code, i.dst, i.src, i.off, imm - (1 << 32) if imm >= 1 << 31 else imm)
            insns[k] = i
        prog = replace(prog, insns=tuple(insns), probe_mem=None)
    compare_engines(prog, rng)


def _context(prog, rng: random.Random):
    """(ctx, packet) for a run of ``prog``'s type."""
    if prog.type in ("xdp", "socket_filter", "sched_cls", "sched_act", "cgroup_skb"):
        return None, bytes(rng.randrange(256) for _ in range(PACKET_LEN))
    if prog.type in ("tracing", "raw_tracepoint", "raw_tracepoint_writable", "kprobe", "tracepoint"):
        return [0] * 6, None
    return None, None


def _shared_memory(memory) -> bytes:
    """The bytes every engine must leave alike: maps, global data, kernel objects (not the
    stacks, which are each engine's own)."""
    from .vm.memory import BASE

    return b"".join(memory.arena[r.base - BASE:r.base - BASE + r.size].tobytes() for r in memory.regions
                    if r.kind in ("map", "global", "kernel", "mem"))


def compare_engines(prog, rng: random.Random) -> None:
    """The verifier, then the interpreter, the native JIT and Unicorn on one ``Vm`` (the
    same memory before each run). Raises ``Outcome`` for a disagreement or a silent
    out-of-region access; returns when they agree (or all refused alike)."""
    from .jit import jit
    from .jit.x86_64.native import supported
    from .verifier import verify
    from .verifier.verify import check_structure
    from .vm import Vm
    from .vm.interp import STEP_LIMIT
    from .vm.vm import STATUS

    checked = verify(prog, log_level=0, trace=False)
    accepted = checked.ok
    if accepted:
        prog = checked.program
        vm = Vm(prog, max_steps=MAX_STEPS)
        image = jit(prog, probe_mem=checked.probe_mem, stack_depths=checked.stack_depths,
                    direct_tail_calls=checked.direct_tail_calls, vm=vm)
    else:
        if check_structure(prog):
            return
        vm = Vm(prog, probe_mem=(), max_steps=MAX_STEPS)
        image = jit(prog, verify=False, probe_mem=(), stack_depths=None, direct_tail_calls={}, vm=vm)
    ctx, packet = _context(prog, rng)
    memory = vm.memory
    used = memory.used
    before, state = memory.arena[:used].copy(), vm.state.copy()

    def restore():
        memory.arena[:used] = before
        vm.state[:] = state

    results = {}
    engines = ["interp", "native", "unicorn"] if supported() is None else ["interp", "unicorn"]
    for engine in engines:
        restore()
        try:
            if engine == "interp":
                out = vm.run(ctx, packet=packet)
            else:
                out = image.run(ctx, packet=packet, engine=engine)
            results[engine] = ("ran", out.r0, out.packet, _shared_memory(memory))
        except (errors.VmError, errors.JitError) as exc:
            text = str(exc)
            results[engine] = ("fault" if "invalid memory access" in text or "outside every region" in text
                               else "error", text)
            if engine == "interp" and STATUS[STEP_LIMIT] in text:
                return  # a JIT engine would loop as long (it has no step limit): not run
    restore()
    interp = results["interp"]
    for engine in engines[1:]:
        if engine not in results:
            continue
        other = results[engine]
        if interp[0] == "fault" and other[0] == "ran":
            raise Outcome("silent_oob", f"{prog.name} ({'accepted' if accepted else 'unverified'}): the "
                                        f"interpreter: {interp[1]}; {engine} ran on")
        if accepted and interp[0] == "ran" and other[0] == "ran" and interp[1:] != other[1:]:
            what = "r0" if interp[1] != other[1] else ("packet" if interp[2] != other[2] else "memory")
            raise Outcome("disagree", f"{prog.name}: {what} differs: interp r0={interp[1]:#x}, "
                                      f"{engine} r0={other[1]:#x}")
        if accepted and (interp[0] == "ran") != (other[0] == "ran"):
            raise Outcome("disagree", f"{prog.name}: interp {interp[0]} ({str(interp[1])[:200]}), "
                                      f"{engine} {other[0]} ({str(other[1])[:200]})")
    if interp[0] == "fault" and all(results[e][0] != "ran" for e in results):
        raise Outcome("oob_reported", interp[1])


_TMP: str | None = None


def _tmpdir() -> str:
    global _TMP
    if _TMP is None:
        _TMP = tempfile.mkdtemp(prefix="bpfnb-fuzz-")
    return _TMP


# -- the worker and the parent ---------------------------------------------------------------------
def worker() -> None:
    """Read ``target seed index`` lines, answer one JSON line each (on the real stdout;
    anything else the case prints goes to stderr)."""
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        target, seed, index = line.split()
        outcome, detail = run_case(target, int(seed), int(index))
        answers.write(json.dumps({"outcome": outcome, "detail": detail}) + "\n")
        answers.flush()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (its threads included)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


class Worker:
    """The child process cases run in; ``run(case)`` → (outcome, detail), crash and hang included."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.fresh = True

    def _start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-m", "bpfnb.fuzz", "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.fresh = True

    def run(self, target: str, seed: int, index: int, timeout: float = CASE_TIMEOUT_S) -> tuple[str, str]:
        import selectors

        if self.proc is None or self.proc.poll() is not None:
            self._start()
        proc = self.proc
        proc.stdin.write(f"{target} {seed} {index}\n")
        proc.stdin.flush()
        limit = FIRST_CASE_TIMEOUT_S if self.fresh else timeout
        self.fresh = False
        cpu_start, wall_start = _cpu_seconds(proc.pid), time.monotonic()
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while not sel.select(min(1.0, limit)):
                cpu = _cpu_seconds(proc.pid) - cpu_start
                wall = time.monotonic() - wall_start
                if cpu >= limit or wall >= limit * WALL_FACTOR:
                    self.stop()
                    return "hang", (f"no answer within {limit:.0f} s of CPU time" if cpu >= limit
                                    else f"no answer within {wall:.0f} s (asleep)")
        line = proc.stdout.readline()
        if not line:
            code = proc.wait()
            self.proc = None
            return "crash", f"the worker died ({'signal ' + str(-code) if code < 0 else 'exit ' + str(code)})"
        answer = json.loads(line)
        return answer["outcome"], answer["detail"]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def fuzz(*, seconds: float | None = None, cases: int | None = None, seed: int = 1,
         targets=TARGETS, log=None) -> Counts:
    """Run cases round-robin over ``targets`` until ``seconds`` pass or ``cases`` are done."""
    counts = Counts()
    worker_ = Worker()
    start = time.monotonic()
    index = 0
    try:
        while True:
            if cases is not None and index >= cases:
                break
            if seconds is not None and time.monotonic() - start >= seconds:
                break
            target = targets[index % len(targets)]
            outcome, detail = worker_.run(target, seed, index)
            counts.add(target, outcome, f"{target}:{seed}:{index}", detail)
            if log is not None and outcome not in ("ok", "refused", "oob_reported"):
                log(f"{target}:{seed}:{index}: {outcome}: {detail}")
            index += 1
    finally:
        worker_.stop()
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bpfnb.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, help="run for this long")
    parser.add_argument("--cases", type=int, help="run this many cases")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--json", help="write the counts and examples here")
    parser.add_argument("--replay", help="TARGET:SEED:INDEX: run one case in this process")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker()
        return 0
    if args.replay:
        target, seed, index = args.replay.split(":")
        outcome, detail = run_case(target, int(seed), int(index))
        print(outcome, detail)
        return 0
    if args.minutes is None and args.cases is None:
        args.minutes = 1.0
    targets = tuple(t for t in args.targets.split(",") if t)
    print(f"fuzzing {', '.join(targets)} with seed {args.seed}", flush=True)
    counts = fuzz(seconds=None if args.minutes is None else args.minutes * 60, cases=args.cases, seed=args.seed,
                  targets=targets, log=lambda text: print(text, flush=True))
    print(counts.table())
    if args.json:
        Path(args.json).write_text(json.dumps({"seed": args.seed, **counts.as_dict()}, indent=1))
    return 1 if counts.bad() else 0


if __name__ == "__main__":
    sys.exit(main())
