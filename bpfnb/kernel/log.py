"""The verifier log, parsed: lines, register and stack states, verdict, figures.

``KernelLog(text)`` reads what Linux 6.18 prints at log levels 1 and 2:

- ``12: (61) r1 = *(u32 *)(r6 +112)     ; R1=scalar(...) R6=trusted_ptr_sk_buff()``
  — an instruction with the registers/slots it touched (``insn`` lines);
- ``13: R1=... R10=fp0`` — registers printed before instruction 13 (``state``);
- ``from 9 to 12: R0=... R10=fp0`` — a branch's other side starting (``from``);
- ``12: safe`` — a path pruned (``safe``); ``; source text @ file.c:12`` (``source``);
- bookkeeping (``func#0 @0``, the live-registers table, ``mark_precise:``);
- the error block, ``processed N insns (limit 1000000) max_states_per_insn ...``,
  ``verification time N usec``, ``stack depth N``.

Each register state is a ``RegValue`` with its type, BTF type name, and the
fields the kernel printed (id, off, bounds, var_off, map, ...), so states can
be compared field by field with bpfnb's verifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..logtext import INSN_LINE, NOISE, error_line, split_outside_parens, split_state

INSN = re.compile(r"^(?P<insn>\d+): \((?P<code>[0-9a-f]{2})\) (?P<text>.*?)(?:\s+; (?P<state>.*))?$")
STATE = re.compile(r"^(?P<insn>\d+): (?P<state>(?:R\d+|fp-?\d+)\S*=.*)$")
FROM = re.compile(r"^from (?P<src>\d+) to (?P<dst>\d+): (?P<state>.*)$")
SAFE = re.compile(r"^(?P<insn>\d+): safe$")
SOURCE = re.compile(r"^; (?P<text>.*?)(?: @ (?P<file>\S+):(?P<line>\d+))?$")
PROCESSED = re.compile(r"processed (?P<insns>\d+) insns \(limit \d+\) max_states_per_insn (?P<max>\d+) "
                       r"total_states (?P<total>\d+) peak_states (?P<peak>\d+) mark_read (?P<mark>\d+)")
TIME = re.compile(r"^verification time (?P<us>\d+) usec")
DEPTH = re.compile(r"^stack depth (?P<depth>[\d+]+)")
BTF_PTR = re.compile(r"^(?P<prefix>(?:[a-z]+_)*?ptr_(?:or_null_)?)(?P<btf>\w+?)\((?P<fields>.*)\)$")
TYPED = re.compile(r"^(?P<type>[a-z_]+)\((?P<fields>.*)\)$")
NUMBER = re.compile(r"^-?(?:0x[0-9a-f]+|0|[1-9]\d*)$")  # "00005" is a stack slot, not a number


def _number(text: str) -> int:
    return int(text, 0)


def parse_fields(text: str) -> dict[str, object]:
    """``id=1,smin=smin32=0,var_off=(0x0; 0xff)`` → {"id": 1, "smin": 0, "smin32": 0, "var_off": (0, 255)}."""
    fields: dict[str, object] = {}
    items = split_outside_parens(text, ",")
    for item in items if items[-1] else items[:-1]:  # no field after a trailing comma
        *names, value = item.split("=")
        if not names:
            fields[item] = True
            continue
        if value.startswith("(") and ";" in value:
            a, b = value.strip("()").split(";")
            parsed: object = (_number(a.strip()), _number(b.strip()))
        elif NUMBER.match(value):
            parsed = _number(value)
        else:
            parsed = value
        for name in names:
            fields[name] = parsed
    return fields


@dataclass(frozen=True)
class RegValue:
    """One register or stack slot as the log printed it."""

    text: str
    type: str  # "scalar", "ctx", "fp", "map_ptr", "map_value", "pkt", "trusted_ptr_", "stack" (slot bytes) ...
    btf_type: str | None = None  # "sk_buff" for trusted_ptr_sk_buff()
    fields: dict = field(default_factory=dict, compare=False, hash=False)
    precise: bool = False

    @property
    def value(self) -> int | None:
        """The constant, for a known scalar (``R0=5``)."""
        return self.fields.get("value")  # type: ignore[return-value]

    @classmethod
    def parse(cls, text: str) -> RegValue:
        body = text
        precise = False
        if body.startswith("P") and (NUMBER.match(body[1:]) or body[1:].startswith("scalar(")):
            precise, body = True, body[1:]
        if NUMBER.match(body):
            return cls(text, "scalar", None, {"value": _number(body)}, precise)
        if re.fullmatch(r"fp-?\d+", body):
            return cls(text, "fp", None, {"off": int(body[2:])}, precise)
        m = BTF_PTR.match(body)
        if m and not body.startswith(("map_", "ptr_to_")):
            return cls(text, m["prefix"], m["btf"], parse_fields(m["fields"]), precise)
        m = TYPED.match(body)
        if m:
            return cls(text, m["type"], None, parse_fields(m["fields"]), precise)
        if re.fullmatch(r"[mz0?fdiI]+", body):  # stack slot bytes: misc, zero, invalid, ...
            return cls(text, "stack", None, {"bytes": body}, precise)
        return cls(text, body, None, {}, precise)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class LogLine:
    """A line of the log: ``kind`` is insn/state/from/safe/source/error/info."""

    kind: str
    text: str
    insn: int | None = None
    code: int | None = None
    disasm: str = ""
    state: dict[str, RegValue] = field(default_factory=dict, compare=False, hash=False)
    target: int | None = None  # "from X to Y": Y (X is ``insn``); "from X to Y: safe": X (Y is ``insn``)


class KernelLog:
    """A parsed verifier log."""

    def __init__(self, text: str):
        self.text = text
        self.lines: list[LogLine] = []
        self.processed = self.max_states_per_insn = self.total_states = self.peak_states = None
        self.mark_read = self.verification_time_us = None
        self.stack_depth: str | None = None
        last_insn: int | None = None
        for raw in text.splitlines():
            line = self._line(raw)
            if line is None:
                continue
            if line.kind == "insn":
                last_insn = line.insn
            self.lines.append(line)
        self.error = error_line(text)
        self.error_insn = last_insn if self.error else None

    def _line(self, raw: str) -> LogLine | None:
        if not raw.strip():
            return None
        if m := PROCESSED.search(raw):
            self.processed, self.max_states_per_insn = int(m["insns"]), int(m["max"])
            self.total_states, self.peak_states, self.mark_read = int(m["total"]), int(m["peak"]), int(m["mark"])
            return LogLine("info", raw)
        if m := TIME.match(raw):
            self.verification_time_us = int(m["us"])
            return LogLine("info", raw)
        if m := DEPTH.match(raw):
            self.stack_depth = m["depth"]
            return LogLine("info", raw)
        if NOISE.match(raw):
            return LogLine("info", raw)
        if m := INSN.match(raw):
            return LogLine("insn", raw, int(m["insn"]), int(m["code"], 16), m["text"].rstrip(),
                           _states(m["state"] or ""))
        if m := FROM.match(raw):
            if m["state"] == "safe":  # "from 13 to 15: safe": the other side pruned at once
                return LogLine("safe", raw, int(m["dst"]), target=int(m["src"]))
            return LogLine("from", raw, int(m["src"]), state=_states(m["state"]), target=int(m["dst"]))
        if m := SAFE.match(raw):
            return LogLine("safe", raw, int(m["insn"]))
        if m := STATE.match(raw):
            return LogLine("state", raw, int(m["insn"]), state=_states(m["state"]))
        if m := SOURCE.match(raw):
            return LogLine("source", raw, disasm=m["text"])
        return LogLine("other", raw)

    @property
    def ok(self) -> bool:
        return self.error is None

    def insn_lines(self) -> list[LogLine]:
        return [ln for ln in self.lines if ln.kind == "insn"]

    def states_after(self, insn: int) -> list[dict[str, RegValue]]:
        """The touched registers printed on each visit of ``insn``."""
        return [ln.state for ln in self.lines if ln.kind == "insn" and ln.insn == insn]

    def __repr__(self) -> str:
        verdict = "accepted" if self.ok else f"rejected at insn {self.error_insn}: {self.error}"
        return f"<KernelLog {len(self.lines)} lines, {self.processed} insns processed, {verdict}>"


def _states(text: str) -> dict[str, RegValue]:
    return {name: RegValue.parse(value) for name, value in split_state(text).items()}


__all__ = ["INSN_LINE", "KernelLog", "LogLine", "RegValue", "parse_fields"]
