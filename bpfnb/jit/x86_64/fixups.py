"""The verifier's rewrites the JIT relies on: division and modulo made total.

x86's ``div`` traps on a zero divisor and ``idiv`` on INT_MIN / -1, while BPF
defines both (x / 0 = 0, x % 0 = x, x s/ -1 = -x, x s% -1 = 0). Linux does not
handle this in the JIT: its verifier patches each division into a guarded
sequence (``do_misc_fixups``) using the hidden register ``AX``; the same
sequences are made here, and the instruction indices mapped both ways so the
listing, the exception table and errors speak of the program's own insns.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...isa import Insn
from ...isa import opcodes as op
from ...isa.flow import jump_target, with_jump_offset
from .encode import AX

ALU, ALU64, JMP, JMP32 = op.BPF_ALU, op.BPF_ALU64, op.BPF_JMP, op.BPF_JMP32


@dataclass(frozen=True)
class Patched:
    insns: tuple[Insn, ...]
    first: tuple[int, ...]  # original insn -> first new insn of its group
    last: tuple[int, ...]   # original insn -> the new insn that is the original one
    origin: tuple[int, ...]  # new insn -> original insn


def _mov_k(cls: int, dst: int, imm: int) -> Insn:
    return Insn(cls | op.BPF_MOV | op.BPF_K, dst, 0, 0, imm)


def _guarded(insn: Insn) -> list[Insn]:
    code, cls = insn.code, insn.code & 0x07
    if cls not in (ALU, ALU64) or code & 0xF0 not in (op.BPF_DIV, op.BPF_MOD):
        return [insn]
    is_div = code & 0xF0 == op.BPF_DIV
    jcls = JMP if cls == ALU64 else JMP32
    d, s = insn.dst, insn.src
    zext = [Insn(ALU | op.BPF_MOV | op.BPF_X, d, d)] if cls == ALU else []
    if not code & op.BPF_X:
        if insn.imm == 0:  # the kernel's verifier rejects this; raw programs still run
            return [_mov_k(cls, d, 0)] if is_div else (zext or [Insn(JMP | op.BPF_JA, 0, 0, 0, 0)])
        if insn.off == 1 and insn.imm == -1:
            return [Insn(cls | op.BPF_NEG, d)] if is_div else [_mov_k(cls, d, 0)]
        return [insn]
    if insn.off == 0:
        if is_div:  # if src != 0 goto div; dst = 0; goto out; div
            return [Insn(jcls | op.BPF_JNE | op.BPF_K, s, 0, 2, 0),
                    Insn(ALU | op.BPF_XOR | op.BPF_X, d, d), Insn(JMP | op.BPF_JA, 0, 0, 1, 0), insn]
        if cls == ALU64:  # if src == 0 goto out; mod
            return [Insn(jcls | op.BPF_JEQ | op.BPF_K, s, 0, 1, 0), insn]
        return [Insn(jcls | op.BPF_JEQ | op.BPF_K, s, 0, 2, 0), insn, Insn(JMP | op.BPF_JA, 0, 0, 1, 0), *zext]
    # signed: AX = src + 1 is 0 for -1 and 1 for 0; anything above 1 divides normally
    head = [Insn(cls | op.BPF_MOV | op.BPF_X, AX, s), Insn(cls | op.BPF_ADD | op.BPF_K, AX, 0, 0, 1),
            Insn(jcls | op.BPF_JGT | op.BPF_K, AX, 0, 4 if is_div else 3, 1)]
    if is_div:  # src == 0: dst = 0 (then negated: still 0); src == -1: dst = -dst
        return head + [Insn(jcls | op.BPF_JEQ | op.BPF_K, AX, 0, 1, 0), _mov_k(cls, d, 0),
                       Insn(cls | op.BPF_NEG, d), Insn(JMP | op.BPF_JA, 0, 0, 1, 0), insn]
    # modulo: src == 0 leaves dst (zero-extended for 32 bits); src == -1 gives 0
    return head + [Insn(jcls | op.BPF_JEQ | op.BPF_K, AX, 0, 3, 1), _mov_k(cls, d, 0),
                   Insn(JMP | op.BPF_JA, 0, 0, 1 + len(zext), 0), insn, *zext]


def patch(insns) -> Patched:
    insns = tuple(insns)
    groups, first, last, origin = [], [], [], []
    n = 0
    for i, insn in enumerate(insns):
        group = _guarded(insn) if not (i > 0 and insns[i - 1].is_ld_imm64) else [insn]
        first.append(n)
        original_at = next((k for k, g in enumerate(group) if g is insn), len(group) - 1)
        last.append(n + original_at)
        origin.extend([i] * len(group))
        groups.append(group)
        n += len(group)
    if all(len(g) == 1 and g[0] is insn for g, insn in zip(groups, insns, strict=True)):
        return Patched(insns, tuple(range(n)), tuple(range(n)), tuple(range(n)))
    out = []
    for i, group in enumerate(groups):
        for insn in group:
            target = jump_target(insn, i) if insn is insns[i] else None
            if target is not None:
                insn = with_jump_offset(insn, first[target] - last[i] - 1)
            out.append(insn)
    return Patched(tuple(out), tuple(first), tuple(last), tuple(origin))
