"""Reading verifier-log text (the kernel's, or ours which prints the same):
which lines are instructions, which are bookkeeping, and the error block."""

from __future__ import annotations

import re

INSN_LINE = re.compile(r"^\d+: \([0-9a-f]{2}\)")
TRAILER = ("processed ", "verification time", "stack depth", "max_states_per_insn")
# bookkeeping the verifier prints around the walk, never part of an error
NOISE = re.compile(
    r"^(?:func#\d+ @\d+|Live regs before insn:|\s+\d+(?:\s+\d+)?: [.0-9]{10} \(|mark_precise: |"
    r"SCC (?:enter|exit)|\(\d+\) frame \d+ insn|\(\d+\) live stack update|"
    r"returning from callee:|to caller at \d+:|caller:|callee:|\s*frame\d+: |\s+R\d+\S*=|frame \d+: propagating |"
    r"func '\w+' arg\d+ has btf_id|Func#\d+ \('\w+'\) is (?:safe for any args|global and assumed valid)|"
    r"Validating \w+\(\) func#\d+\.\.\.)"
)
# walk lines that are not instructions: states, path starts, pruning, source
WALK = re.compile(r"^(?:\d+: (?:R\d+|fp-?\d+)\S*=|from \d+ to \d+: |\d+: safe$|; )")


STATE_NAME = re.compile(r"^(?P<name>R\d+|fp-?\d+)(?:_[a-z]+)?$")


def split_outside_parens(text: str, sep: str) -> list[str]:
    """``text`` split at each ``sep`` that stands outside parentheses (the kernel prints
    ``var_off=(0x0; 0xff)`` and ``R0=scalar(smin=0,smax=3)`` with separators inside)."""
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    return pieces


def split_state(text: str) -> dict[str, str]:
    """``R0=scalar(var_off=(0x0; 0xff)) R1=ctx() fp-8=mmmmmmmm`` → {"R0": ..., "R1": ..., "fp-8": ...}.

    Spaces inside parentheses belong to the value; write marks (``R0_w``) are dropped.
    """
    out: dict[str, str] = {}
    for token in filter(None, split_outside_parens(text, " ")):
        name, sep, value = token.partition("=")
        match = STATE_NAME.match(name)
        if sep and match:
            out[match["name"]] = value
    return out


def error_block(log: str) -> str:
    """The lines the verifier printed after the last instruction it looked at.

    The kernel explains some rejections in several lines (``invalid access to
    packet, ...`` then ``R2 offset is outside of the packet``; ``infinite loop
    detected at insn 1`` then the two states); the block keeps them together.
    """
    lines = [ln for ln in log.splitlines()
             if ln.strip() and not ln.startswith(TRAILER) and not NOISE.match(ln)]
    last = max((i for i, ln in enumerate(lines) if INSN_LINE.match(ln)), default=-1)
    return "\n".join(ln for ln in lines[last + 1:] if not WALK.match(ln))


def error_line(log: str) -> str | None:
    """The first line of the error block: the verifier's verdict in one line."""
    block = error_block(log)
    return block.splitlines()[0] if block else None
