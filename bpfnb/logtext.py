"""Reading verifier-log text (the kernel's, or ours which prints the same):
which lines are instructions, which are bookkeeping, and the error block."""

from __future__ import annotations

import bisect
import difflib
import re
from dataclasses import dataclass

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


# What changes from one load of the same program to the next, and so is no part of a
# comparison of two logs: the kernel address an ``ld_imm64`` of a map, a map value or a
# ksym becomes (and so the column the state after it starts at), and the verification
# time (also where a message missing its newline runs into it).
MAP_ADDRESS = re.compile(r"(\(18\) r\d+ = )0x[0-9a-f]+(?: +;)?")
VERIFICATION_TIME = re.compile(r"verification time \d+ usec")


def _blank_address(match: re.Match) -> str:
    return match[1] + ("ADDR ;" if match[0].endswith(";") else "ADDR")


def comparable_lines(log: str) -> list[str]:
    """``log``'s lines with the map addresses and the verification time blanked."""
    return [VERIFICATION_TIME.sub("verification time N usec", MAP_ADDRESS.sub(_blank_address, line))
            for line in log.splitlines()]


@dataclass(frozen=True)
class LineComparison:
    """Two logs side by side: how many of the reference's lines the other has in the
    same order, and the first place they part (the line's index and both texts,
    ``None`` past an end)."""

    same: int
    total: int  # lines of the reference
    other_total: int
    first_diff: tuple[int, str | None, str | None] | None = None

    @property
    def identical(self) -> bool:
        return self.first_diff is None


# difflib's matcher takes time of the order of the product of the two lengths; a middle
# whose product is above this is first split at lines that occur once on each side
DIFFLIB_MAX_PRODUCT = 4_000_000


def compare_lines(reference: list[str], other: list[str]) -> LineComparison:
    """Line-for-line comparison: the lines outside the common head and tail are
    matched by ``difflib`` (no line is treated as junk, so a repeated line counts).

    Long logs that part early (a walk of 100k instructions whose paths differ) would
    take difflib hours: there the middles are first cut at lines found once in each,
    in the same order (a patience diff), and only the pieces between are matched by
    difflib; a piece still too long and without such lines is matched greedily. The
    count is then a common subsequence that may be shorter than the longest one."""
    head = 0
    for a, b in zip(reference, other, strict=False):
        if a != b:
            break
        head += 1
    if head == len(reference) == len(other):
        return LineComparison(head, len(reference), len(other))
    tail = 0
    for a, b in zip(reversed(reference[head:]), reversed(other[head:]), strict=False):
        if a != b:
            break
        tail += 1
    middle_ref, middle_other = reference[head:len(reference) - tail], other[head:len(other) - tail]
    inner = _matching_lines(middle_ref, middle_other)
    at_ref = reference[head] if head < len(reference) else None
    at_other = other[head] if head < len(other) else None
    return LineComparison(head + inner + tail, len(reference), len(other), (head, at_ref, at_other))


def _matching_lines(a: list[str], b: list[str]) -> int:
    """How many lines of ``a`` ``b`` has in the same order (see ``compare_lines``)."""
    head = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        head += 1
    a, b = a[head:], b[head:]
    tail = 0
    for x, y in zip(reversed(a), reversed(b), strict=False):
        if x != y:
            break
        tail += 1
    if tail:
        a, b = a[:-tail], b[:-tail]
    if not a or not b:
        return head + tail
    if len(a) * len(b) <= DIFFLIB_MAX_PRODUCT:
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
        return head + tail + sum(block.size for block in matcher.get_matching_blocks())
    anchors = _unique_anchors(a, b)
    if not anchors:
        return head + tail + _greedy_matches(a, b)
    same, i0, j0 = len(anchors), 0, 0
    for i, j in anchors:
        same += _matching_lines(a[i0:i], b[j0:j])
        i0, j0 = i + 1, j + 1
    return head + tail + same + _matching_lines(a[i0:], b[j0:])


def _unique_anchors(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """The pairs of positions of lines found exactly once in ``a`` and once in ``b``,
    the longest run of them increasing on both sides (patience sorting)."""
    count_a: dict[str, int] = {}
    for line in a:
        count_a[line] = count_a.get(line, 0) + 1
    where_b: dict[str, int] = {}
    count_b: dict[str, int] = {}
    for j, line in enumerate(b):
        count_b[line] = count_b.get(line, 0) + 1
        where_b[line] = j
    pairs = [(i, where_b[line]) for i, line in enumerate(a)
             if count_a[line] == 1 and count_b.get(line) == 1]
    # the longest increasing run of the b positions (pairs are in a's order)
    tops: list[int] = []  # the b position ending the best run of each length
    top_at: list[int] = []  # the index in ``pairs`` of that end
    back = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        at = bisect.bisect_left(tops, j)
        back[k] = top_at[at - 1] if at else -1
        if at == len(tops):
            tops.append(j)
            top_at.append(k)
        else:
            tops[at] = j
            top_at[at] = k
    run = []
    k = top_at[-1] if top_at else -1
    while k >= 0:
        run.append(pairs[k])
        k = back[k]
    return run[::-1]


def _greedy_matches(a: list[str], b: list[str]) -> int:
    """A common subsequence taken greedily: each line of ``a`` matched to its next
    occurrence in ``b`` after the last match."""
    where: dict[str, list[int]] = {}
    for j, line in enumerate(b):
        where.setdefault(line, []).append(j)
    same, after = 0, 0
    for line in a:
        spots = where.get(line)
        if not spots:
            continue
        at = bisect.bisect_left(spots, after)
        if at < len(spots):
            same += 1
            after = spots[at] + 1
    return same
