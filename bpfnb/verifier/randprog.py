"""Random programs for differential testing against the kernel's verifier.

``random_program(rng)`` builds a socket filter from context loads, ALU on
scalars, stack spills/fills and narrow stores, forward conditional jumps and
an exit: mostly accepted, sometimes rejected (reads of unset registers,
out-of-frame stack accesses, bad context offsets), so both verdicts and
states get exercised.
"""

from __future__ import annotations

import random

from ..isa import Insn
from ..isa import opcodes as op
from ..program import Program

CTX_OFFSETS = (0, 4, 8, 12, 16, 20, 24, 32, 36, 40, 44, 48, 52, 68)
ALU = (op.BPF_ADD, op.BPF_SUB, op.BPF_MUL, op.BPF_AND, op.BPF_OR, op.BPF_XOR, op.BPF_LSH, op.BPF_RSH,
       op.BPF_ARSH, op.BPF_DIV, op.BPF_MOD)
JUMPS = (op.BPF_JEQ, op.BPF_JNE, op.BPF_JGT, op.BPF_JGE, op.BPF_JLT, op.BPF_JLE, op.BPF_JSGT, op.BPF_JSGE,
         op.BPF_JSLT, op.BPF_JSLE, op.BPF_JSET)
IMMS = (0, 1, 2, 7, 8, 15, 16, 31, 63, 64, 255, 0xFFFF, -1, -8, 0x7FFFFFFF, 1000)


def random_program(rng: random.Random, length: int = 14, *, rejects: float = 0.1) -> Program:
    body: list[Insn] = [Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 6, 1)]  # keep ctx in r6
    live = {6}
    for _ in range(length):
        choice = rng.random()
        dst = rng.choice([0, 2, 3, 4, 5, 7, 8, 9])
        if choice < 0.2:
            size = rng.choice([op.BPF_W, op.BPF_W, op.BPF_H, op.BPF_B])
            off = rng.choice(CTX_OFFSETS) if rng.random() > rejects else rng.choice([3, 192, 76])
            body.append(Insn(op.BPF_LDX | op.BPF_MEM | size, dst, 6, off))
            live.add(dst)
        elif choice < 0.35:
            body.append(Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, dst, 0, 0, rng.choice(IMMS)))
            live.add(dst)
        elif choice < 0.6 and live - {6}:
            src_pool = sorted(live - {6})
            d = rng.choice(src_pool)
            cls = rng.choice([op.BPF_ALU64, op.BPF_ALU64, op.BPF_ALU])
            operation = rng.choice(ALU)
            if rng.random() < 0.5:
                imm = rng.choice(IMMS)
                if operation in (op.BPF_LSH, op.BPF_RSH, op.BPF_ARSH):
                    imm = rng.randrange(0, 32 if cls == op.BPF_ALU else 64)
                if operation in (op.BPF_DIV, op.BPF_MOD) and imm == 0:
                    imm = 3
                body.append(Insn(cls | operation | op.BPF_K, d, 0, 0, imm))
            else:
                body.append(Insn(cls | operation | op.BPF_X, d, rng.choice(src_pool), 0, 0))
        elif choice < 0.72 and live - {6}:
            src = rng.choice(sorted(live - {6}))
            slot = rng.choice([-8, -16, -24]) if rng.random() > rejects / 2 else -520
            if rng.random() < 0.6:
                body.append(Insn(op.BPF_STX | op.BPF_MEM | op.BPF_DW, 10, src, slot))
            else:
                body.append(Insn(op.BPF_STX | op.BPF_MEM | op.BPF_W, 10, src, slot + rng.choice([0, 4])))
        elif choice < 0.8:
            slot = rng.choice([-8, -16, -24])
            body.append(Insn(op.BPF_LDX | op.BPF_MEM | rng.choice([op.BPF_DW, op.BPF_W]), dst, 10, slot))
            live.add(dst)
        elif live - {6}:
            d = rng.choice(sorted(live - {6}))
            cls = rng.choice([op.BPF_JMP, op.BPF_JMP, op.BPF_JMP32])
            skip = rng.randrange(1, 4)
            if rng.random() < 0.5:
                body.append(Insn(cls | rng.choice(JUMPS) | op.BPF_K, d, 0, skip, rng.choice(IMMS)))
            else:
                body.append(Insn(cls | rng.choice(JUMPS) | op.BPF_X, d, rng.choice(sorted(live - {6})), skip, 0))
    body += [Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 0)] * 3
    if rng.random() < rejects:
        body.pop()  # r0 maybe unset on some path
        body.pop()
        body.pop()
    body.append(Insn(op.BPF_JMP | op.BPF_EXIT))
    # forward jumps must land inside the program
    fixed = []
    for i, insn in enumerate(body):
        if insn.is_jmp_class and not (insn.is_exit or insn.is_call):
            off = min(insn.off, len(body) - 2 - i)
            insn = Insn(insn.code, insn.dst, insn.src, max(off, 0), insn.imm)
        fixed.append(insn)
    return Program("rand", tuple(fixed))
