"""Conformance vectors (uBPF / bpf_conformance ``.data`` files) and their runner.

A vector has sections ``-- asm``, ``-- raw`` (64-bit words, low byte the
opcode), ``-- mem`` (hex bytes; r1 points at them, r2 holds their length),
``-- result`` (expected r0) or ``-- error`` / ``-- error pattern`` (why the
program must be refused at load or fail at run time, in uBPF's words).
``run(dir, engine)`` loads each vector with an engine named in ``ENGINES``
(``module:function(insns, mem) -> run``, where ``run() -> r0``; either step
raises a ``BpfnbError`` naming the instruction) and checks the result, or that
the error comes at the stage and for the reason the vector states (``expected``).

Every vector that is not run is in ``SKIPS`` (or matches a rule of ``SKIP_RULES``)
with the reason, in this one place.
"""

from __future__ import annotations

import importlib
import pathlib
import re
from dataclasses import dataclass, field

from .errors import BpfnbError
from .isa import Insn, decode
from .isa import opcodes as op
from .isa.assembler import assemble

ENGINES = {
    "interp": "bpfnb.vm:load_raw",
    "jit": "bpfnb.jit.x86_64:load_raw",
    "jit-unicorn": "bpfnb.jit.x86_64:load_raw_unicorn",
}
JIT_ENGINES = ("jit", "jit-unicorn")
U64_MASK = (1 << 64) - 1

# -- what is not run, and why (every engine) --------------------------------------------------
SKIPS = {
    # uBPF's own behaviour, not Linux's
    "err-too-many-instructions": "uBPF's 65,536-instruction limit; Linux takes up to 1,000,000 instructions",
    "err-unknown-opcode": "0x06 is gotol (JMP32 | JA, RFC 9669 cpu v4), which Linux knows",
    "reload": "tests uBPF's load/unload API, not execution",
    # helpers uBPF registers for its own tests, called by its numbering (Linux's ids mean other helpers)
    "call": "calls uBPF's test helper 0 (gather_bytes), not a Linux helper",
    "call-memfrob": "calls uBPF's test helper 1 (memfrob), not a Linux helper",
    "call-save": "calls uBPF's test helpers 0-3 (to see registers survive them), not Linux helpers",
    "stack2": "calls uBPF's test helpers 0 and 1 (gather_bytes, memfrob), not Linux helpers",
    "string-stack": "calls uBPF's test helper 4 (strcmp_ext), not a Linux helper",
    "call_unwind": "exercises uBPF's unwind extension (helper 5 unwinds the local calls), not RFC 9669",
    # bpf_conformance
    "callx": "callx (JMP | CALL | X, opcode 0x8d) is not in RFC 9669 and Linux 6.18 refuses it "
             "('unknown opcode 8d'); bpf_conformance's own runner leaves its callx group out unless asked",
}
# Vectors an engine of JIT_ENGINES does not run, and why.
# (none since the raw path's images check every access against the region table: err-stack-oob,
# '-- no jit' for uBPF, a store at r10+0 over the native frame's saved rbp, is refused by every engine)
JIT_SKIPS: dict[str, str] = {}
# Rules over a vector's sections, each with its reason.
SKIP_RULES = (
    (lambda v: v.result is None and v.error is None,
     "no expected result: an encoding vector (checked by the assembler round trip)"),
    (lambda v: any(" @ " in key for key in v.sections),
     "its assembly is in a file the vectors do not ship ('-- asm @ FILE')"),
)

# -- what a vector's error means for bpfnb ---------------------------------------------------
LOAD, RUN = "load", "run"
UBPF_ERROR = re.compile(r"(?:Failed to load code: (?P<load>.+?)|uBPF error: (?P<run>.+?)) at PC (?P<pc>\d+)")
# uBPF's words (a prefix of its message) -> the stage and what bpfnb says; {pc}: the vector's
# instruction, {next}: the one after, {lddw}: the 64-bit load whose second slot the jump at
# {pc} lands on, {imm}: its immediate. Linux 6.18 refuses every one of these at load (its words, loaded as a socket
# filter, are in tests/test_conformance.py); where bpfnb's raw path has no verifier, its words
# differ and are given here.
UBPF_TO_BPFNB = {
    "jump out of bounds": (LOAD, r"jump out of range from insn {pc} to "),  # Linux's words
    "sub-program does not end with EXIT or unconditional jump": (LOAD, r"last insn is not an exit or jmp$"),  # Linux's
    "invalid destination register": (LOAD, r"insn {pc}: R1[1-5] is invalid"),  # Linux's
    "invalid source register": (LOAD, r"insn {pc}: R1[1-5] is invalid"),  # Linux's
    "unknown opcode": (LOAD, r"insn {pc}: unknown opcode"),  # Linux's
    # Linux: "unreachable insn 1" for these two (its walk of the flow graph comes first)
    "infinite loop": (LOAD, r"infinite loop detected at insn {pc}$"),
    "jump to middle of lddw": (LOAD, r"jump into the middle of ldimm64 insn {lddw}$"),
    # Linux: "BPF_END uses reserved fields"
    "invalid endian immediate": (LOAD, r"insn {pc}: invalid endian width"),
    # Linux: "invalid bpf_ld_imm64 insn"; the 64-bit load at {pc} whose second slot is not one
    "incomplete lddw": (LOAD, r"insn {next}: invalid second half of a 64-bit load"),
    "invalid lddw second half": (LOAD, r"insn {pc}: invalid second half of a 64-bit load"),
    # a map by fd (src 1), which raw engines cannot resolve; Linux first finds no exit at the end
    "invalid source register for LDDW": (LOAD, r"insn {pc} .*: 64-bit load of pseudo kind \d+ is not resolved"),
    # Linux's verifier: "program of this type cannot use helper bpf_bind#64" at load; bpfnb's
    # raw engines find a helper missing when it is called
    "call to nonexistent function": (RUN, r"(insn {pc} .*unknown helper: helper #{imm} |helper #{imm}: unknown helper)"),
    # Linux's verifier: "R6 invalid mem access 'scalar'" / "invalid write to stack R10 off=0 size=1"
    "address overflow": (RUN, r"insn {pc} \(.*\): invalid memory access at address"),
    "address underflow": (RUN, r"insn {pc} \(.*\): invalid memory access at address"),
    "integer overflow": (RUN, r"insn {pc} \(.*\): invalid memory access at address"),
    "out of bounds memory": (RUN, r"insn {pc} \(.*\): invalid memory access at address"),
}


@dataclass(frozen=True)
class Expected:
    """A vector's error in bpfnb's terms: the stage it comes at and a pattern of the message."""

    stage: str
    pattern: str
    words: str  # the vector's own

    def matches(self, stage: str, message: str) -> bool:
        return stage == self.stage and re.search(self.pattern, message) is not None

    def __str__(self) -> str:
        return f"a {self.stage} error matching {self.pattern!r} (the vector: {self.words!r})"


@dataclass(frozen=True)
class Vector:
    name: str
    path: str
    asm: str | None
    raw: tuple[int, ...] | None
    mem: bytes
    result: int | None
    error: str | None
    sections: dict = field(default_factory=dict, compare=False)

    @property
    def group(self) -> str:
        return pathlib.Path(self.path).parent.name

    def insns(self) -> tuple[Insn, ...]:
        """From ``-- raw`` when present (it is what was encoded), else assembled."""
        if self.raw is not None:
            return decode(b"".join(w.to_bytes(8, "little") for w in self.raw), where=self.path)
        if self.asm is None:
            raise BpfnbError(f"{self.path}: neither -- asm nor -- raw")
        return assemble(self.asm)

    def not_applicable(self, engine: str = "interp") -> str | None:
        """Why the vector is not run on ``engine``, or None."""
        if self.name in SKIPS:
            return SKIPS[self.name]
        if engine in JIT_ENGINES and self.name in JIT_SKIPS:
            return JIT_SKIPS[self.name]
        for rule, reason in SKIP_RULES:
            if rule(self):
                return reason
        return None

    def expected(self) -> Expected:
        """The error in bpfnb's terms (``-- error``'s last line, as bpf_conformance reads it)."""
        words = [line for line in (self.error or "").splitlines() if line.strip()][-1:]
        text = words[0].strip() if words else ""
        m = UBPF_ERROR.match(text)
        if not m:
            raise BpfnbError(f"{self.path}: the error {text!r} is not in uBPF's form '... at PC N'")
        stated = LOAD if m["load"] else RUN
        kind = m["load"] or m["run"]
        keys = [k for k in UBPF_TO_BPFNB if kind.startswith(k)]
        if not keys:
            raise BpfnbError(f"{self.path}: no bpfnb equivalent is known for uBPF's error {kind!r}")
        stage, pattern = UBPF_TO_BPFNB[max(keys, key=len)]
        if stage != stated and stage != RUN:
            raise BpfnbError(f"{self.path}: uBPF's {stated} error {kind!r} is mapped to a {stage} error")
        pc = int(m["pc"])
        insns = self.insns()
        insn = insns[pc] if pc < len(insns) else Insn(0)
        jump_at = insn.imm if insn.code == op.BPF_JMP32 | op.BPF_JA else insn.off
        fields = {"pc": pc, "next": pc + 1, "lddw": pc + jump_at, "imm": insn.imm}
        return Expected(stage, pattern.format(**fields), text)


def _number(text: str) -> int:
    """bpf_conformance's reading: hexadecimal with ``0x``, else decimal."""
    return int(text, 16) if "0x" in text.lower() else int(text, 10)


def parse(path: str | pathlib.Path) -> Vector:
    """One ``.data`` file."""
    path = pathlib.Path(path)
    sections: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("-- "):
            current = line[3:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    asm = "\n".join(sections["asm"]) if "asm" in sections else None
    raw = None
    if "raw" in sections:
        raw = tuple(_number(w) for x in sections["raw"] for w in x.split("#")[0].split())
    mem_lines = sections.get("mem") or sections.get("mem (optional)") or []
    mem = bytes.fromhex(" ".join(x.split("#")[0] for x in mem_lines))
    result = None
    if "result" in sections:
        text = " ".join(x.split("#")[0] for x in sections["result"]).strip()
        result = _number(text) & U64_MASK if text else None
    error = None
    for key in ("error", "error pattern"):
        if key in sections:
            error = "\n".join(sections[key]).strip()
    return Vector(path.stem, str(path), asm, raw, mem, result, error, {k: tuple(v) for k, v in sections.items()})


def vectors(directory: str | pathlib.Path) -> list[Vector]:
    """Every ``.data`` file under ``directory``, sorted by path."""
    root = pathlib.Path(directory)
    if not root.is_dir():
        raise BpfnbError(f"{root}: not a directory of conformance vectors")
    return [parse(p) for p in sorted(root.rglob("*.data"))]


@dataclass(frozen=True)
class Outcome:
    vector: Vector
    status: str  # "passed", "failed", "skipped"
    detail: str = ""


@dataclass(frozen=True)
class Report:
    outcomes: tuple[Outcome, ...]

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def passed(self) -> int:
        return self.count("passed")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    def summary(self) -> str:
        text = f"{self.passed} passed, {self.failed} failed"
        return text + (f", {self.skipped} skipped" if self.skipped else "")


def engine(name: str):
    """The engine's load function registered as ``name``; a clear error when it is not built."""
    if name not in ENGINES:
        raise BpfnbError(f"unknown engine {name!r} (engines: {', '.join(ENGINES)})")
    module, _, function = ENGINES[name].partition(":")
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        raise BpfnbError(f"engine {name!r} ({ENGINES[name]}) is not available: {exc}") from None


def run_vector(vector: Vector, load, engine_name: str = "interp") -> Outcome:
    """One vector on an engine's ``load`` (see ``ENGINES``)."""
    reason = vector.not_applicable(engine_name)
    if reason:
        return Outcome(vector, "skipped", reason)
    try:
        insns = vector.insns()
        expected = vector.expected() if vector.error is not None else None
    except BpfnbError as exc:
        return Outcome(vector, "failed", f"{type(exc).__name__}: {exc}")
    stage = LOAD
    try:
        run = load(insns, vector.mem)
        stage = RUN
        r0 = run() & U64_MASK
    except Exception as exc:  # noqa: BLE001 -- anything but a BpfnbError is an engine's bug
        if expected is None or not isinstance(exc, BpfnbError):
            return Outcome(vector, "failed", f"{stage}: {type(exc).__name__}: {exc}")
        if expected.matches(stage, str(exc)):
            return Outcome(vector, "passed", f"failed as expected at {stage}: {exc}")
        return Outcome(vector, "failed", f"expected {expected}; got a {stage} error: {exc}")
    if expected is not None:
        return Outcome(vector, "failed", f"expected {expected}; it ran: r0={r0:#x}")
    if r0 != vector.result:
        return Outcome(vector, "failed", f"r0={r0:#x}, expected {vector.result:#x}")
    return Outcome(vector, "passed")


def run(directory, engine_name: str = "interp", on_outcome=None) -> Report:
    """Every vector under ``directory`` on the engine; ``on_outcome(outcome)`` after each."""
    load = engine(engine_name)
    outcomes = []
    for vector in vectors(directory):
        outcomes.append(run_vector(vector, load, engine_name))
        if on_outcome is not None:
            on_outcome(outcomes[-1])
    return Report(tuple(outcomes))


__all__ = ["ENGINES", "Expected", "JIT_SKIPS", "Outcome", "Report", "SKIPS", "SKIP_RULES", "Vector",
           "engine", "parse", "run", "run_vector", "vectors"]
