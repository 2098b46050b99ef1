"""The verifier's walk over a program, as the stepper shows it.

A ``Walk`` is the sequence of instruction visits in the order the verifier
made them, over every explored path. Each ``Visit`` knows the previous visit
in its own path's history (``prev``), so a path that starts at a branch
target continues the history of the path that pushed it. Register and stack
states are the verifier log's texts (``ctx()``, ``scalar(umax=255)``,
``trusted_ptr_sk_buff()``), so our verifier's walk and the kernel's log
(both print the same way) are shown and compared the same way.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..isa import opcodes as op
from ..isa.effects import effects
from ..isa.flow import jump_target
from ..isa.helpers import HELPER_PARAMS
from ..verifier.trace import EVENT_CODE, Step

ENTRY_REGS = {"R1": "ctx()", "R10": "fp0"}
# How far a def-use chain is followed: this many visits back along the path from the
# selected one, and this many forward from its definition (a loop walked a million
# times would otherwise make every iteration part of the chain, and one click a minute)
CHAIN_REACH = 20_000
SEARCH_WINDOW = 1_024  # the first window visit_from reads (then twice as many each time)
BRANCH, PRUNED = EVENT_CODE["branch"], EVENT_CODE["pruned"]
PATH_CHUNK = 16_384  # steps whose distinct instructions and pairs path_pairs keeps together
PATH_BASES = 64  # the paths up to a chunk's start that path_pairs keeps (the oldest go first)


# one visit of an instruction: the verifier's own ``Step`` (regs/stack are the state after it)
Visit = Step


@dataclass(frozen=True)
class Chain:
    """The def-use chain of ``name`` (a register or stack slot) as it is after
    visit ``step``: ``defs`` are the visits its value was computed from, nearest
    first, followed transitively through every register and slot each of them
    read (copies, spills to and fills from the stack, the base pointer of a
    load through a BTF-typed pointer, a helper's arguments); ``refined`` the
    branches that narrowed one of those values; ``uses`` the later visits,
    on paths through the definition, that read the value before it was
    overwritten; ``entry`` what was still unresolved at the program's entry."""

    step: int
    name: str
    defs: tuple[int, ...]
    uses: tuple[int, ...] = ()
    refined: tuple[int, ...] = ()
    entry: tuple[str, ...] = ()
    truncated: bool = False  # the walk went on past ``CHAIN_REACH`` visits, one way or the other

    @property
    def steps(self) -> tuple[int, ...]:
        """Every visit of the chain, in walk order (what the stepper jumps along)."""
        return tuple(sorted({*self.defs, *self.uses, *self.refined, self.step}))


@dataclass(frozen=True)
class Origin:
    """One link of a value's provenance: ``name`` was set at visit ``step``."""

    step: int
    insn: int
    name: str
    how: str  # "made", "copied from R6", "filled from fp-8", "loaded through R1", "entry"


# a BTF pointer as Linux prints it: its kind (trust, NULL-ness) then the struct,
# ``rcu_ptr_or_null_sock(id=1)``; older kernels put ``_or_null`` after the struct
BTF_POINTER = re.compile(r"^(?P<kind>(?:\w+?_)?ptr_(?:or_null_)?)(?P<type>\w+?)(?P<null>_or_null)?\(")


def btf_type_of(text: str) -> str | None:
    """``struct sk_buff`` for ``trusted_ptr_sk_buff()`` (a BTF-typed pointer), else None."""
    match = _btf_pointer(text)
    return f"struct {match['type']}" if match else None


def pointer_kind(text: str) -> str | None:
    """What the verifier knows of a BTF pointer besides its struct: ``trusted_ptr_``,
    ``rcu_ptr_or_null_``, ``untrusted_ptr_``, ``ptr_`` (None for anything else)."""
    match = _btf_pointer(text)
    if not match:
        return None
    kind = match["kind"]
    return kind.replace("ptr_", "ptr_or_null_", 1) if match["null"] and "or_null" not in kind else kind


def _btf_pointer(text: str):
    match = BTF_POINTER.match(text)
    if not match or text.startswith(("map_", "ptr_to_", "pkt")):
        return None
    return match


def type_name(text: str) -> str:
    """The register type part of a state text: ``scalar`` for ``scalar(umax=7)``."""
    if text.startswith("fp") or re.fullmatch(r"-?\d+|0x[0-9a-f]+", text):
        return "fp" if text.startswith("fp") else "scalar"
    return text.split("(", 1)[0]


class Walk:
    """Visits of one verification, with provenance and visit counts."""

    def __init__(self, prog, visits: Sequence[Visit], *, error: str | None = None,
                 entry: Mapping[str, str] | None = None, source: str = "bpfnb"):
        self.prog = prog
        self.error = error
        self.entry = dict(entry or ENTRY_REGS)
        self.source = source  # "bpfnb" or "kernel"
        self._depths = None  # per step, made once
        self._effects: dict[int, tuple[set, set]] = {}  # per instruction
        self._chunks: dict[int, tuple] = {}  # path_pairs' distinct instructions and pairs per chunk
        self._path_bases: dict[tuple[int, int], tuple] = {}  # path_pairs' paths up to a chunk's start
        self._writers: dict[str, object] = {}  # per name, which instructions write it (origin)
        # the verifier's columnar trace stays as it is (steps built when read); its columns
        # answer the questions over every visit without building them
        self.columns = visits.columns() if hasattr(visits, "columns") else None
        if self.columns is not None:
            import numpy as np

            self.visits = visits
            prev = self.columns["prev"]
            if len(prev) and not (prev < np.arange(len(prev))).all():
                raise ValueError("steps must be numbered in order with earlier prev")
            return
        self.visits = tuple(visits)
        for i, v in enumerate(self.visits):
            if v.step != i or (v.prev is not None and not 0 <= v.prev < i):
                raise ValueError(f"visit {i}: steps must be numbered in order with earlier prev")

    def effects_at(self, step: int):
        """What visit ``step``'s instruction reads and writes, names as the log
        prints them (``R1``, ``fp-8``); a helper call reads only its parameters."""
        return self._effects_of(self.insn_of(step))

    def _effects_of(self, index: int) -> tuple[set, set]:
        known = self._effects.get(index)
        if known is None:
            insn = self.prog.insns[index]
            args = 5
            if insn.code == op.BPF_JMP | op.BPF_CALL and insn.src == 0 and insn.imm in HELPER_PARAMS:
                args = len(HELPER_PARAMS[insn.imm])
            fx = effects(insn, helper_args=args)
            known = self._effects[index] = ({_canon(x) for x in fx.reads}, {_canon(x) for x in fx.writes})
        return known

    def insn_of(self, step: int) -> int:
        """The instruction of visit ``step`` (without building the visit)."""
        return int(self.columns["insn"][step]) if self.columns is not None else self.visits[step].insn

    def insns_of(self, steps: Sequence[int]) -> list[int]:
        """The distinct instructions of visits ``steps``, sorted (from the columns at once)."""
        if self.columns is not None:
            import numpy as np

            return np.unique(self.columns["insn"][np.asarray(steps, dtype=np.int64)]).tolist()
        return sorted({self.visits[s].insn for s in steps})

    def event_of(self, step: int) -> str | None:
        """The event of visit ``step`` (without building the visit)."""
        if self.columns is not None:
            from ..verifier.trace import EVENTS

            return EVENTS[self.columns["event"][step]]
        return self.visits[step].event

    def prev_of(self, step: int) -> int | None:
        """The previous visit on visit ``step``'s path (without building the visit)."""
        if self.columns is not None:
            prev = int(self.columns["prev"][step])
            return None if prev < 0 else prev
        return self.visits[step].prev

    def note_of(self, step: int) -> str:
        """The note of visit ``step`` (``from 3 to 6``...), without building the visit."""
        if self.columns is not None:
            return self.visits.notes[self.columns["note"][step]]
        return self.visits[step].note

    def depth(self, step: int) -> int:
        """The call depth visit ``step``'s instruction ran at (0 in the main program,
        1 in a subprogram it called...), counted along the path from the calls and
        exits before it: the same for a log's walk and bpfnb's."""
        if self._depths is None and self.columns is not None:
            # the trace records the frame after each instruction: a visit runs in the frame
            # its path's previous visit left (a call enters the callee, an exit leaves it)
            import numpy as np

            prev, frames = self.columns["prev"], self.columns["frame"]
            self._depths = np.where(prev >= 0, frames[np.maximum(prev, 0)], 0)
        if self._depths is None:
            depths: list[int] = []
            for v in self.visits:
                if v.prev is None:
                    depths.append(0)
                    continue
                at = self.visits[v.prev].insn
                before = self.prog.insns[at]
                d = depths[v.prev]
                if before.code == op.BPF_JMP | op.BPF_CALL and before.src == op.BPF_PSEUDO_CALL:
                    # a static function is walked inside its caller; a global one apart
                    # (the walk goes on after the call)
                    d += v.insn == jump_target(before, at)
                elif before.code == op.BPF_JMP | op.BPF_EXIT and d > 0:
                    d -= 1
                depths.append(d)
            self._depths = depths
        return int(self._depths[step])

    def chain(self, step: int, name: str) -> Chain:
        """The def-use chain of register/slot ``name`` as it is after visit ``step``
        (the value the visit made, or the one it read and kept)."""
        name = _canon(name)
        reads, writes = self.effects_at(step)
        wanted = {name}
        defs: list[int] = []
        refined: list[int] = []
        first = step if name in writes else self.prev_of(step)
        definition = step if name in writes else None
        back, insns, events, more = self._back_path(first, CHAIN_REACH)
        for s, insn, event in zip(back, insns, events, strict=True):
            if not wanted:
                break
            r, w = self._effects_of(insn)
            made = w & wanted
            if made:
                defs.append(s)
                if definition is None and name in made:
                    definition = s
                wanted = (wanted - made) | (r - {"R10"})
            elif event == BRANCH and wanted & self._changed_names(s):
                refined.append(s)
        cut_back = bool(wanted) and more  # the walk back stopped at its reach
        # later reads of the value, on every path through its definition
        start = definition if definition is not None else -1
        alive = {start}
        uses: list[int] = []
        end = min(len(self), start + 1 + CHAIN_REACH)
        ahead = range(start + 1, end)
        for v, insn, event, prev in zip(ahead, *self._stretch(start + 1, end), strict=True):
            if prev not in alive or event == PRUNED:
                continue  # another path, or a state pruned before the instruction ran
            r, w = self._effects_of(insn)
            if name in r:
                uses.append(v)
            if name not in w:
                alive.add(v)
        # what was left unresolved is the entry's only when the walk back reached it
        entry = () if cut_back else tuple(sorted(wanted, key=_order))
        return Chain(step, name, tuple(defs), tuple(uses), tuple(refined), entry,
                     cut_back or self._continues(alive, end))

    def _stretch(self, start: int, end: int) -> tuple[list[int], list[int], list[int]]:
        """The instructions, event codes (``EVENT_CODE``) and previous visits (-1: none)
        of visits ``start``..``end - 1``, as lists read at once."""
        if self.columns is not None:
            cols = self.columns
            return (cols["insn"][start:end].tolist(), cols["event"][start:end].tolist(),
                    cols["prev"][start:end].tolist())
        visits = self.visits[start:end]
        return ([v.insn for v in visits], [EVENT_CODE[v.event] for v in visits],
                [-1 if v.prev is None else v.prev for v in visits])

    def _back_path(self, step: int | None, reach: int) -> tuple[list[int], list[int], list[int], bool]:
        """The path back from visit ``step`` (it first), at most ``reach`` visits: their
        steps, instructions and event codes, and whether the path goes on before them."""
        if step is None:
            return [], [], [], False
        if self.columns is None:
            steps = []
            s: int | None = step
            while s is not None and len(steps) < reach:
                steps.append(s)
                s = self.visits[s].prev
            visits = [self.visits[k] for k in steps]
            return steps, [v.insn for v in visits], [EVENT_CODE[v.event] for v in visits], s is not None
        import numpy as np

        parts, count = [], 0
        runs = self._runs(step)
        for first, last in runs:
            take = min(last - first + 1, reach - count)
            parts.append(np.arange(last, last - take, -1))
            count += take
            if count == reach:
                break
        steps = np.concatenate(parts)
        more = count == reach and (int(steps[-1]) != runs[-1][0])
        cols = self.columns
        return steps.tolist(), cols["insn"][steps].tolist(), cols["event"][steps].tolist(), more

    def _continues(self, alive: set[int], end: int) -> bool:
        """Whether a visit from ``end`` on continues the path of one of ``alive``."""
        if end >= len(self):
            return False
        if self.columns is not None:
            import numpy as np

            return bool(np.isin(self.columns["prev"][end:], np.fromiter(alive, dtype=np.int64)).any())
        return any((v.prev if v.prev is not None else -1) in alive for v in self.visits[end:])

    def __len__(self) -> int:
        return len(self.visits)

    @property
    def error_step(self) -> int | None:
        if self.columns is not None:
            import numpy as np

            from ..verifier.trace import EVENT_CODE

            if "error_step" not in self.columns:
                hits = np.flatnonzero(self.columns["event"] == EVENT_CODE["error"])
                self.columns["error_step"] = int(hits[-1]) if len(hits) else None
            return self.columns["error_step"]
        return next((v.step for v in reversed(self.visits) if v.event == "error"), None)

    def before(self, step: int) -> dict[str, str]:
        """Register states before visit ``step`` (after the previous one on its path)."""
        visit = self.visits[step]
        if visit.entry_regs is not None:
            return dict(visit.entry_regs)
        return dict(self.entry) if visit.prev is None else dict(self.visits[visit.prev].regs)

    def stack_before(self, step: int) -> dict[str, str]:
        visit = self.visits[step]
        if visit.entry_stack is not None:
            return dict(visit.entry_stack)
        return {} if visit.prev is None else dict(self.visits[visit.prev].stack)

    def changed(self, step: int) -> dict[str, tuple[str | None, str | None]]:
        """Registers and slots whose text changed at ``step``: name → (old, new)."""
        v = self.visits[step]
        before = {**self.before(step), **self.stack_before(step)}
        after = {**v.regs, **v.stack}
        return {k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after), key=_order)
                if before.get(k) != after.get(k)}

    def _changed_names(self, step: int) -> set[str]:
        """The names in ``changed(step)`` (from the trace's record of the step when it has it)."""
        names = self.visits.changed_names(step) if self.columns is not None else None
        return set(self.changed(step)) if names is None else set(names)

    def history(self, step: int) -> list[int]:
        """Steps of the path that led to ``step``, from the entry."""
        if self.columns is not None:
            return self.history_steps(step).tolist()
        out = []
        s: int | None = step
        while s is not None:
            out.append(s)
            s = self.visits[s].prev
        return out[::-1]

    def _runs(self, step: int) -> list[tuple[int, int]]:
        """The history of ``step`` as runs ``(first, last)``, the latest first: a run is a
        stretch of consecutive steps on one path (read from the trace's columns)."""
        import numpy as np

        cols = self.columns
        if "run_start" not in cols:
            prev = cols["prev"]
            index = np.arange(len(prev), dtype=np.int64)
            breaks = np.ones(len(prev), dtype=bool)
            breaks[1:] = prev[1:] != index[1:] - 1
            cols["run_start"] = np.maximum.accumulate(np.where(breaks, index, 0))
        run_start, prev = cols["run_start"], cols["prev"]
        runs = []
        s = step
        while s >= 0:
            start = int(run_start[s])
            runs.append((start, s))
            s = int(prev[start])
        return runs

    def history_steps(self, step: int):
        """``history`` as a numpy array, read from the trace's columns run by run, so a
        path of a million steps through a loop costs a few array slices."""
        import numpy as np

        runs = [np.arange(first, last + 1) for first, last in reversed(self._runs(step))]
        return np.concatenate(runs) if runs else np.zeros(0, dtype=np.int64)

    def path_pairs(self, step: int):
        """The instructions on the path to ``step`` and the pairs ``(a, b)`` of
        instructions run one after the other on it, each once, as two sorted numpy
        arrays (a pair coded ``a * len(insns) + b``). From the trace's columns: what the
        path holds up to the start of the ``PATH_CHUNK`` steps ``step`` falls in is made
        once (each long run through what whole chunks visit, kept once made), the steps
        of that chunk are counted: what the CFG highlights, in time that does not grow
        with the path, and a step beside the last one costs a count of its chunk."""
        import numpy as np

        runs = self._runs(step)
        first, last = runs[0]
        tail = max(first, last // PATH_CHUNK * PATH_CHUNK)  # the latest run's steps in step's chunk
        key = (first, tail)
        base = self._path_bases.get(key)
        if base is None:
            parts = [part for run_first, run_last in runs[1:] for part in self._run_parts(run_first, run_last)]
            parts += self._run_parts(first, tail - 1)  # nothing when the run starts in this chunk
            on_path = np.unique(np.concatenate([p[0] for p in parts] + [np.zeros(0, dtype=np.int64)]))
            taken = np.unique(np.concatenate([p[1] for p in parts] + [self._entered(s) for s, _ in runs]))
            if len(self._path_bases) >= PATH_BASES:
                self._path_bases.pop(next(iter(self._path_bases)))
            base = self._path_bases[key] = (on_path, taken)
        insns, pairs = self._distinct(tail, max(tail, first + 1), last + 1)
        return np.union1d(base[0], insns), np.union1d(base[1], pairs)

    def _entered(self, first: int):
        """The pair of the step into a run (its first step) from the step that pushed it."""
        import numpy as np

        insn, prev = self.columns["insn"], self.columns["prev"]
        if prev[first] < 0:
            return np.zeros(0, dtype=np.int64)
        return np.array([int(insn[prev[first]]) * len(self.prog.insns) + int(insn[first])], dtype=np.int64)

    def _run_parts(self, first: int, last: int) -> list[tuple]:
        """The distinct instructions and pairs of steps ``first``..``last`` of one run,
        as a few arrays (whole chunks from the kept ones; the pair into the run is
        ``_entered``'s)."""
        count = len(self.prog.insns)
        if last < first:
            return []
        later = first // PATH_CHUNK + 1  # whole chunks start after the run's first step
        head = min(last + 1, later * PATH_CHUNK)
        parts = [self._distinct(first, first + 1, head)]  # the run's first step came from elsewhere
        whole = range(later, max(later, (last + 1) // PATH_CHUNK))
        parts += [self._chunk(chunk, count) for chunk in whole]
        after = max(head, whole.stop * PATH_CHUNK) if whole else head
        parts.append(self._distinct(after, after, last + 1))
        return parts

    def _chunk(self, chunk: int, count: int):
        """The distinct instructions of steps ``chunk * PATH_CHUNK`` up to the next chunk,
        and the distinct pairs (each step with the one before it), made once."""
        made = self._chunks.get(chunk)
        if made is None:
            start = chunk * PATH_CHUNK
            made = self._chunks[chunk] = self._distinct(start, start, start + PATH_CHUNK)
        return made

    def _distinct(self, first: int, pairs_from: int, end: int):
        """The distinct instructions of steps ``first``..``end - 1`` and the distinct pairs
        of steps ``pairs_from``..``end - 1`` with the step before each (in step order),
        counted, not sorted: most pairs fall through (b = a + 1), the others are few."""
        import numpy as np

        insn, count = self.columns["insn"], len(self.prog.insns)
        end = min(end, len(insn))
        pairs_from = max(pairs_from, 1)
        insns = np.flatnonzero(np.bincount(insn[first:end], minlength=count)) if end > first \
            else np.zeros(0, dtype=np.int64)
        if end <= pairs_from:
            return insns, np.zeros(0, dtype=np.int64)
        before, after = insn[pairs_from - 1:end - 1], insn[pairs_from:end]
        falls = after == before + 1
        fall = np.flatnonzero(np.bincount(before[falls], minlength=count)).astype(np.int64)
        jumps = np.unique(before[~falls].astype(np.int64) * count + after[~falls])
        return insns, np.concatenate([fall * count + fall + 1, jumps])

    def path_start(self, step: int) -> int:
        """The first step of the path that led to ``step``."""
        if self.columns is not None:
            return self._runs(step)[-1][0]
        return self.history(step)[0]

    def visit_counts(self) -> Counter:
        """How often the verifier looked at each instruction (the heat map)."""
        if self.columns is not None:
            import numpy as np

            if "visit_counts" not in self.columns:
                counts = np.bincount(self.columns["insn"])
                self.columns["visit_counts"] = Counter({int(i): int(counts[i]) for i in np.flatnonzero(counts)})
            return Counter(self.columns["visit_counts"])
        return Counter(v.insn for v in self.visits)

    def visits_of(self, insn: int) -> list[int]:
        if self.columns is not None:
            import numpy as np

            return np.flatnonzero(self.columns["insn"] == insn).tolist()
        return [v.step for v in self.visits if v.insn == insn]

    def visits_of_any(self, insns) -> list[int]:
        """The visits of any of ``insns``, in order."""
        if self.columns is not None:
            import numpy as np

            return np.flatnonzero(np.isin(self.columns["insn"], list(insns))).tolist()
        return [v.step for v in self.visits if v.insn in insns]

    def children(self, step: int) -> list[int]:
        """The visits that continue ``step``'s path (several after a branch)."""
        if self.columns is not None:
            import numpy as np

            return np.flatnonzero(self.columns["prev"] == step).tolist()
        return [v.step for v in self.visits if v.prev == step]

    def pruned_until(self, step: int) -> list[int]:
        """The instructions where a path was pruned at or before ``step``."""
        if self.columns is not None:
            import numpy as np

            from ..verifier.trace import EVENT_CODE

            cols = self.columns
            if "pruned" not in cols:
                cols["pruned"] = np.flatnonzero(cols["event"] == EVENT_CODE["pruned"])
            pruned = cols["pruned"]
            return cols["insn"][pruned[:np.searchsorted(pruned, step, side="right")]].tolist()
        return [v.insn for v in self.visits[: step + 1] if v.event == "pruned"]

    def next_visit(self, step: int) -> int | None:
        """The next visit of the same instruction after ``step``, if any."""
        return self.visit_from(self.insn_of(step), step + 1)

    def visit_from(self, insn: int, step: int) -> int | None:
        """The first visit of instruction ``insn`` at or after ``step``, if any. Read
        from the trace's columns a window at a time, each twice the last: a visit a few
        steps on costs a few steps, not the walk's million."""
        if self.columns is None:
            return next((v.step for v in self.visits[max(step, 0):] if v.insn == insn), None)
        import numpy as np

        insns = self.columns["insn"]
        start, size = max(step, 0), SEARCH_WINDOW
        while start < len(insns):
            hits = np.flatnonzero(insns[start:start + size] == insn)
            if len(hits):
                return int(hits[0]) + start
            start, size = start + size, size * 2
        return None

    def origin(self, step: int, name: str, *, before: bool = True) -> list[Origin]:
        """Where the value of register/slot ``name`` at ``step`` came from.

        Walks back along the path: through register copies, stack spills and
        fills, and loads through BTF-typed pointers (the pointer it was loaded
        through is followed, giving the type walk ``ctx → sk_buff → net_device``).
        """
        name = _canon(name)
        chain: list[Origin] = []
        s = self.prev_of(step) if before else step
        while (s := self._last_write(s, name)) is not None:
            at = self.insn_of(s)
            insn = self.prog.insns[at]
            fx = effects(insn)
            copies = {_canon(a): _canon(b) for a, b in fx.copies}
            if name in copies:
                source = copies[name]
                how = f"filled from {source}" if source.startswith("fp") else \
                    f"spilled from {source}" if name.startswith("fp") else f"copied from {source}"
                chain.append(Origin(s, at, name, how))
                name = source
            elif insn.cls == 0x01 and self.before(s).get(f"R{insn.src}", "").startswith("ctx("):
                chain.append(Origin(s, at, name, f"loaded from the context at +{insn.off}"))
                return chain
            elif (insn.cls == 0x01 and insn.src != 10
                  and btf_type_of(self.before(s).get(f"R{insn.src}", "")) is not None):
                base = f"R{insn.src}"
                chain.append(Origin(s, at, name, f"loaded through {base}"))
                name = base
            else:
                chain.append(Origin(s, at, name, "made"))
                return chain
            s = self.prev_of(s)
        chain.append(Origin(-1, -1, name, "entry"))
        return chain

    def _last_write(self, step: int | None, name: str) -> int | None:
        """The latest visit at or before ``step`` on its path whose instruction writes
        ``name`` (None: none, back to the entry). From the trace's columns, run by run, a
        search over the instructions' writes (a path of a million steps at once)."""
        if step is None:
            return None
        if self.columns is None:
            s: int | None = step
            while s is not None and name not in self._effects_of(self.visits[s].insn)[1]:
                s = self.visits[s].prev
            return s
        import numpy as np

        writers = self._writers.get(name)
        if writers is None:
            writers = self._writers[name] = np.array(
                [name in self._effects_of(i)[1] for i in range(len(self.prog.insns))], dtype=bool)
        insn = self.columns["insn"]
        for first, last in self._runs(step):
            hits = np.flatnonzero(writers[insn[first:last + 1]])
            if len(hits):
                return first + int(hits[-1])
        return None


def _canon(name: str) -> str:
    return name.upper() if name[:1] in "rR" else name


def _order(name: str):
    if name.startswith("R") and name[1:].isdigit():
        return (0, int(name[1:]))
    digits = re.sub(r"\D", "", name)
    return (1, int(digits) if digits else 0)
