"""The record of one verification: every visited instruction with its state.

A ``Trace`` is columnar: one compact array per field of a step (instruction,
previous visit on the path, event, note, call frame, entry state), and the
register and stack texts kept as changes only — at each step, the registers and
slots whose printed text differs from the step recorded before it, each text
interned once. A full state is kept every ``SNAPSHOT_EVERY`` steps, so reading
any step replays at most that many change lists. ``Step`` objects are built on
demand (``trace[i]``, ``trace.steps[i]``, iteration), which is what the stepper
reads; ``trace.frame()`` is built from the columns and change lists without steps. A
million-step walk takes tens of megabytes, its frame about a hundred.
"""

from __future__ import annotations

from array import array
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter

from .regstate import NOT_INIT, SCALAR, Reg, format_reg
from .state import INVALID, format_slot

MAX_BPF_REG = 11
MAX_SLOTS = 64  # MAX_BPF_STACK / 8
# name ids: R0..R10, then the slots fp-8 (spi 0) .. fp-512 (spi 63)
NAMES = tuple(f"R{i}" for i in range(MAX_BPF_REG)) + tuple(f"fp{-(spi + 1) * 8}" for spi in range(MAX_SLOTS))
FIRST_SLOT = MAX_BPF_REG
ABSENT = -1  # a register not initialised, a slot never written
NEVER_WRITTEN = (INVALID,) * 8  # a slot's byte types when it prints nothing
UNSEEN = object()  # a name's key before any step (equal to no key, not even None)
NO_ENTRY = -1
SNAPSHOT_EVERY = 64
KEYS_KEPT = 8192  # keys of registers/slots remembered for interning; more, and the oldest are forgotten
RECENT_STEPS = 64  # steps built lately, kept for the reader that asks again (the stepper)
EVENTS = (None, "branch", "exit", "pruned", "error", "call", "return")
EVENT_CODE = {e: k for k, e in enumerate(EVENTS)}


@dataclass(frozen=True)
class Step:
    """The verifier's visit ``step`` of instruction ``insn``, on the path whose
    previous visit was ``prev``; ``regs``/``stack`` are the state after the
    instruction, as the log prints them (``R1 -> "ctx()"``, ``fp-8 -> "mmmmmmmm"``).
    The same type describes a walk replayed from the kernel's log (the stepper's
    ``Visit``)."""

    step: int
    insn: int
    prev: int | None
    regs: Mapping[str, str]
    stack: Mapping[str, str] = field(default_factory=dict)
    event: str | None = None  # "branch", "exit", "pruned", "error", "call", "return"
    note: str = ""  # e.g. "from 9 to 12", "always taken", "safe: ..."
    # the state this visit started from, when it is not the previous visit's
    # (a path pushed at a branch starts with that branch side's state)
    entry_regs: Mapping[str, str] | None = None
    entry_stack: Mapping[str, str] | None = None
    frame: int = 0  # the call frame the instruction ran in


# every field of Reg but its scalar (a new field is part of a pointer's key by itself)
_other_fields = attrgetter(*(f.name for f in fields(Reg) if f.name != "s"))


def _scalar_key(reg) -> tuple:
    """What a scalar register prints from (``format_scalar``): its numbers, precision,
    id and offset."""
    s = reg.s
    v = s.var_off
    return (v.value, v.mask, s.smin, s.smax, s.umin, s.umax, s.s32_min, s.s32_max, s.u32_min, s.u32_max,
            reg.precise, reg.id, reg.off)


def _pointer_key(reg) -> tuple:
    """What any other register prints from: every field."""
    s = reg.s
    v = s.var_off
    return (v.value, v.mask, s.smin, s.smax, s.umin, s.umax, s.s32_min, s.s32_max, s.u32_min, s.u32_max,
            _other_fields(reg))


def reg_key(reg) -> tuple:
    """What a register prints from: equal keys print alike."""
    return _scalar_key(reg) if reg.type == SCALAR else _pointer_key(reg)


class Trace(Sequence):
    """Steps in the order the verifier made them, over every explored path."""

    EVENTS = EVENTS  # what the ``event`` column's codes stand for
    # compare every register and slot at every step, whatever the recorder says may have
    # changed (tests check that the narrowed comparison records the same steps)
    COMPARE_ALL = False

    def __init__(self) -> None:
        self.insn = array("i")
        self.prev = array("i")  # -1: the first visit of its path
        self.event = array("b")
        self.note = array("i")  # index into notes
        self.frameno = array("b")
        self.entry = array("i")  # index into entries, or NO_ENTRY
        self.change_start = array("q", [0])  # changes of step k: change_start[k]:change_start[k + 1]
        self.change_name = array("b")
        self.change_text = array("i")  # index into texts, or ABSENT
        self.snapshots: list[array] = []  # the text id of every name after steps 0, N, 2N, ...
        self.texts: list[str] = []
        self.notes: list[str] = [""]
        self.entries: list[tuple[tuple[int, int], ...]] = []  # (name, text) of the entry registers
        self._text_ids: dict[str, int] = {}
        self._note_ids: dict[str, int] = {"": 0}
        self._key_ids: dict[tuple, int] = {}  # (frameno, reg/slot key) -> text id
        self._current = array("i", [ABSENT] * len(NAMES))  # the text ids after the last step
        self._slot_limit = 0  # the slots the last step had
        self._last_keys: list = [UNSEEN] * len(NAMES)
        self._last_frameno = 0
        self._cache: tuple[int, array] | None = None  # (step, its text ids) of the last read
        self._recent: dict[int, Step] = {}

    # -- recording ----------------------------------------------------------------------
    def _intern(self, text: str) -> int:
        tid = self._text_ids.get(text)
        if tid is None:
            tid = self._text_ids[text] = len(self.texts)
            self.texts.append(text)
        return tid

    def _reg_id(self, reg, frameno: int) -> int:
        key = (frameno, reg_key(reg))
        tid = self._key_ids.get(key)
        if tid is None:
            tid = self._key_ids[key] = self._intern(format_reg(reg, frameno))
        return tid

    def entry_of(self, frame) -> int:
        """Keep the registers a path starts with (``from X to Y``): their index."""
        pairs = tuple((i, self._reg_id(r, frame.frameno)) for i, r in enumerate(frame.regs) if r.type != NOT_INIT)
        self.entries.append(pairs)
        return len(self.entries) - 1

    def record(self, frame, insn: int, prev: int | None, event: str | None, note: str, entry: int,
               regs: tuple[int, ...] | None = None, slots: bool | Collection[int] = True) -> int:
        """Append the step after ``insn`` with ``frame``'s registers and slots; its number.
        ``regs``: the only registers the instruction may have changed since the step
        before it on its path (None: any); ``slots``: whether it may have changed a stack
        slot, or the only slots (by spi) it may have changed; they narrow what is compared
        when that step is the last one recorded."""
        step = len(self.insn)
        frameno = frame.frameno
        current = self._current
        names, texts = self.change_name, self.change_text
        key_ids = self._key_ids
        last = self._last_keys  # the key each name had at the last step: unchanged names cost one compare
        if frameno != self._last_frameno:  # another frame: compare every name afresh
            last[:] = [UNSEEN] * len(NAMES)
            self._last_frameno = frameno
            regs, slots = None, True
        elif prev != step - 1 or self.COMPARE_ALL:  # another path ran since: compare every name
            regs, slots = None, True
        changed = []
        frame_regs = frame.regs
        for i in range(MAX_BPF_REG) if regs is None else regs:
            reg = frame_regs[i]
            kind = reg.type
            if kind == SCALAR:  # _scalar_key, inlined: this loop runs for every register of every step
                sc = reg.s
                v = sc.var_off
                key = (v.value, v.mask, sc.smin, sc.smax, sc.umin, sc.umax, sc.s32_min, sc.s32_max, sc.u32_min,
                       sc.u32_max, reg.precise, reg.id, reg.off)
            else:
                key = None if kind == NOT_INIT else _pointer_key(reg)
            if key != last[i]:
                last[i] = key
                changed.append((i, key, reg))
        stack = frame.stack
        if slots is True:  # the slots now, and those printed before
            allocated = max(stack, default=-1) + 1
            spis = range(max(allocated, self._slot_limit))
        elif slots:  # the slots given, unless one left the frame (it was printed before)
            allocated = max(stack, default=-1) + 1
            limit = max(allocated, self._slot_limit)
            spis = range(limit) if allocated < self._slot_limit else sorted(spi for spi in slots if spi < limit)
        else:
            allocated, spis = self._slot_limit, ()
        for spi in spis:
            name = FIRST_SLOT + spi
            slot = stack.get(spi)
            if slot is None:
                key = None
            else:
                spilled = slot.spilled
                if spilled is None:
                    key = tuple(slot.types)
                    if key == NEVER_WRITTEN:
                        key = None
                elif spilled.type == SCALAR:
                    sc = spilled.s
                    v = sc.var_off
                    key = (tuple(slot.types), v.value, v.mask, sc.smin, sc.smax, sc.umin, sc.umax, sc.s32_min,
                           sc.s32_max, sc.u32_min, sc.u32_max, spilled.precise, spilled.id, spilled.off)
                else:
                    key = (tuple(slot.types), _pointer_key(spilled))
            if key != last[name]:
                last[name] = key
                changed.append((name, key, slot))
        for name, key, obj in changed:
            if key is None:
                tid = ABSENT
            else:
                tid = key_ids.get((frameno, key))
                if tid is None:
                    if len(key_ids) >= KEYS_KEPT:  # a long walk makes new values all along: bound the keys
                        key_ids.clear()
                    text = format_reg(obj, frameno) if name < FIRST_SLOT else format_slot(obj, frameno)
                    tid = key_ids[(frameno, key)] = self._intern(text)
            if current[name] != tid:
                current[name] = tid
                names.append(name)
                texts.append(tid)
        self._slot_limit = allocated
        self.change_start.append(len(names))
        self.insn.append(insn)
        self.prev.append(-1 if prev is None else prev)
        self.event.append(EVENT_CODE[event])
        nid = self._note_ids.get(note)
        if nid is None:
            nid = self._note_ids[note] = len(self.notes)
            self.notes.append(note)
        self.note.append(nid)
        self.frameno.append(frameno)
        self.entry.append(entry)
        if step % SNAPSHOT_EVERY == 0:
            self.snapshots.append(array("i", current))
        return step

    # -- reading ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.insn)

    @property
    def steps(self) -> Trace:
        """The steps as a sequence (built on demand)."""
        return self

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[k] for k in range(*index.indices(len(self)))]
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"step {index} out of range ({n} steps)")
        step = self._recent.get(index)
        if step is None:
            if len(self._recent) >= RECENT_STEPS:
                self._recent.clear()
            step = self._recent[index] = self._step(index, self._ids_at(index))
        return step

    def __iter__(self):
        ids = array("i", [ABSENT] * len(NAMES))
        for k in range(len(self)):
            self._apply(ids, k)
            yield self._step(k, ids)

    def _apply(self, ids: array, k: int) -> None:
        start, end = self.change_start[k], self.change_start[k + 1]
        names, texts = self.change_name, self.change_text
        for c in range(start, end):
            ids[names[c]] = texts[c]

    def _ids_at(self, k: int) -> array:
        """The text id of every name after step ``k``: from the nearest snapshot (or the
        last step read, when it is nearer), then the changes up to ``k``."""
        base = k // SNAPSHOT_EVERY * SNAPSHOT_EVERY
        cached = self._cache
        if cached is not None and base <= cached[0] <= k:
            at, ids = cached[0], array("i", cached[1])
        else:
            at, ids = base, array("i", self.snapshots[base // SNAPSHOT_EVERY])
        for j in range(at + 1, k + 1):
            self._apply(ids, j)
        self._cache = (k, ids)
        return ids

    def _step(self, k: int, ids: array) -> Step:
        texts = self.texts
        regs = {NAMES[i]: texts[ids[i]] for i in range(MAX_BPF_REG) if ids[i] != ABSENT}
        stack = {NAMES[i]: texts[ids[i]] for i in range(FIRST_SLOT, len(NAMES)) if ids[i] != ABSENT}
        entry = self.entry[k]
        entry_regs = None if entry == NO_ENTRY else {NAMES[n]: texts[t] for n, t in self.entries[entry]}
        prev = self.prev[k]
        return Step(k, self.insn[k], None if prev < 0 else prev, regs, stack, EVENTS[self.event[k]],
                    self.notes[self.note[k]], entry_regs, None, self.frameno[k])

    def changed_names(self, k: int) -> list[str] | None:
        """The registers and slots whose printed text step ``k`` changed, when its path
        came from step ``k - 1`` and it starts from that step's state (then these are the
        changes recorded for it); else None."""
        if k == 0 or self.prev[k] != k - 1 or self.entry[k] != NO_ENTRY:
            return None
        names = self.change_name
        return [NAMES[names[c]] for c in range(self.change_start[k], self.change_start[k + 1])]

    def columns(self) -> dict:
        """The per-step fields as numpy arrays (no copy): insn, prev (-1: none), event
        (an index into ``EVENTS``), frame, note (an index into ``notes``)."""
        import numpy as np

        return {"insn": np.frombuffer(self.insn, dtype=np.int32), "prev": np.frombuffer(self.prev, dtype=np.int32),
                "event": np.frombuffer(self.event, dtype=np.int8),
                "frame": np.frombuffer(self.frameno, dtype=np.int8),
                "note": np.frombuffer(self.note, dtype=np.int32)}

    def nbytes(self) -> int:
        """The bytes the arrays and interned texts take (an estimate of the trace's size)."""
        arrays = (self.insn, self.prev, self.event, self.note, self.frameno, self.entry, self.change_start,
                  self.change_name, self.change_text)
        return (sum(a.itemsize * len(a) for a in arrays) + sum(a.itemsize * len(a) for a in self.snapshots)
                + sum(len(t) for t in self.texts) + sum(len(t) for t in self.notes))

    def frame(self):
        """One row per step: step, insn, prev (missing: the first visit of its path),
        event, frame, and a column per register/slot that any step printed (its text
        after the step, missing where it was not initialised or written). Built from
        the columns and the change lists without making steps: the register and slot
        columns are categorical over the interned texts (a million-step walk's frame
        takes a few bytes per cell)."""
        import numpy as np
        import pandas as pd

        n = len(self)
        cols = self.columns()
        prev = pd.array(cols["prev"], dtype="Int64")
        prev[cols["prev"] < 0] = pd.NA
        events = pd.Categorical.from_codes(cols["event"].astype(np.int64) - 1, categories=list(EVENTS[1:]))
        data = {"step": np.arange(n, dtype=np.int64), "insn": cols["insn"].copy(), "prev": prev,
                "event": events, "frame": cols["frame"].copy()}
        starts = np.frombuffer(self.change_start, dtype=np.int64)
        names = np.frombuffer(self.change_name, dtype=np.int8)
        texts = np.frombuffer(self.change_text, dtype=np.int32)
        step_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(starts))  # the step of each change
        categories = pd.Index(self.texts, dtype=object)
        printed = [int(k) for k in np.unique(names) if (texts[names == k] != ABSENT).any()]
        regs = [k for k in printed if k < FIRST_SLOT]
        slots = [k for k in printed if k >= FIRST_SLOT]  # fp-8 first
        for name in regs + slots:
            mine = names == name
            at = np.full(n, -1, dtype=np.int64)
            at[step_of[mine]] = np.arange(int(mine.sum()))
            at = np.maximum.accumulate(at)  # each step: its name's latest change (or -1: none yet)
            codes = np.where(at >= 0, texts[mine][np.maximum(at, 0)], ABSENT)
            data[NAMES[name]] = pd.Categorical.from_codes(codes, categories=categories)
        return pd.DataFrame(data)
