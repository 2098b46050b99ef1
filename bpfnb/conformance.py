"""Conformance vectors (uBPF / bpf_conformance ``.data`` files) and their runner.

A vector has sections ``-- asm``, ``-- raw`` (64-bit words, low byte the
opcode), ``-- mem`` (hex bytes; r1 points at them, r2 holds their length),
``-- result`` (expected r0) or ``-- error`` (the program must be refused or
fail). ``run(dir, engine)`` executes each vector with an engine named in
``ENGINES`` (``module:function(insns, mem) -> r0``, raising on failure).
"""

from __future__ import annotations

import importlib
import pathlib
from dataclasses import dataclass, field

from .errors import BpfnbError
from .isa import Insn, decode
from .isa.assembler import assemble

ENGINES = {
    "interp": "bpfnb.vm:execute_raw",
    "jit": "bpfnb.jit.x86_64:execute_raw",
    "jit-unicorn": "bpfnb.jit.x86_64:execute_raw_unicorn",
}

# Single vectors that test uBPF rather than Linux semantics, and why.
NOT_LINUX = {
    "err-too-many-instructions": "uBPF's 65,536-instruction limit; Linux takes up to 1,000,000 instructions",
    "err-unknown-opcode": "0x06 is gotol (JMP32 | JA, RFC 9669 cpu v4), which Linux knows",
    "reload": "tests uBPF's load/unload API, not execution",
}
# Vectors that test uBPF itself rather than the instruction set, and why.
NOT_APPLICABLE = {
    "helpers": "calls helpers uBPF registers for its own tests (memfrob, gather_bytes, ...), "
               "not Linux helpers",
    "extensions": "exercises uBPF extensions (local-call stack unwinding), not RFC 9669 semantics",
}


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
        if engine != "interp" and "no jit" in self.sections:
            reason = " ".join(self.sections["no jit"]).strip()
            return f"the vector is marked '-- no jit' ({reason}): without the verifier, no JIT checks this"
        if self.group in NOT_APPLICABLE:
            return NOT_APPLICABLE[self.group]
        if self.name in NOT_LINUX:
            return NOT_LINUX[self.name]
        if self.asm and any(line.split("#")[0].split()[:1] == ["call"] and "local" not in line
                            for line in self.asm.splitlines()):
            return "calls helpers by uBPF's numbering (its test helpers), not Linux's helper ids"
        if self.result is None and self.error is None:
            return "no expected result: an encoding vector (checked by the assembler round trip)"
        for key in self.sections:
            if " @ " in key:
                return f"its {key.strip()!r} names a file not shipped with the vectors"
        return None


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
        raw = tuple(int(w, 16) for w in (x.split("#")[0].strip() for x in sections["raw"]) if w)
    mem_lines = sections.get("mem") or sections.get("mem (optional)") or []
    mem = bytes.fromhex(" ".join(x.split("#")[0] for x in mem_lines))
    result = None
    if "result" in sections:
        text = " ".join(x.split("#")[0] for x in sections["result"]).strip()
        result = int(text, 0) & 0xFFFFFFFFFFFFFFFF if text else None
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
    """The engine function registered as ``name``; a clear error when it is not built."""
    if name not in ENGINES:
        raise BpfnbError(f"unknown engine {name!r} (engines: {', '.join(ENGINES)})")
    module, _, function = ENGINES[name].partition(":")
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        raise BpfnbError(f"engine {name!r} ({ENGINES[name]}) is not available: {exc}") from None


def run_vector(vector: Vector, execute, engine_name: str = "interp") -> Outcome:
    reason = vector.not_applicable(engine_name)
    if reason:
        return Outcome(vector, "skipped", reason)
    try:
        insns = vector.insns()
        r0 = execute(insns, vector.mem)
    except Exception as exc:  # an engine's refusal or fault
        if vector.error is not None:
            return Outcome(vector, "passed", f"failed as expected: {exc}")
        return Outcome(vector, "failed", f"{type(exc).__name__}: {exc}")
    if vector.error is not None and vector.result is None:
        return Outcome(vector, "failed", f"expected an error ({vector.error}), got r0={r0:#x}")
    if vector.result is not None and (r0 & 0xFFFFFFFFFFFFFFFF) != vector.result:
        return Outcome(vector, "failed", f"r0={r0 & 0xFFFFFFFFFFFFFFFF:#x}, expected {vector.result:#x}")
    return Outcome(vector, "passed")


def run(directory, engine_name: str = "interp", on_outcome=None) -> Report:
    """Every vector under ``directory`` on the engine; ``on_outcome(outcome)`` after each."""
    execute = engine(engine_name)
    outcomes = []
    for vector in vectors(directory):
        outcomes.append(run_vector(vector, execute, engine_name))
        if on_outcome is not None:
            on_outcome(outcomes[-1])
    return Report(tuple(outcomes))


__all__ = ["ENGINES", "Outcome", "Report", "Vector", "engine", "parse", "run", "vectors"]
