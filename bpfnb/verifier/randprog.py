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


# -- the wide generator: every opcode against every operand class ---------------------------

WIDE_TYPES = ("socket_filter", "sched_cls", "xdp")
ALU_OPS = (op.BPF_ADD, op.BPF_SUB, op.BPF_MUL, op.BPF_DIV, op.BPF_OR, op.BPF_AND, op.BPF_LSH, op.BPF_RSH,
           op.BPF_NEG, op.BPF_MOD, op.BPF_XOR, op.BPF_MOV, op.BPF_ARSH, op.BPF_END)
# immediates at and past every width: shifts by 31/32/63/64/73, signs, byte/half/word edges
WIDE_IMMS = (0, 1, -1, 2, 3, 4, 7, 8, 14, 15, 16, 31, 32, 33, 63, 64, 73, 255, 256, 0x7FFF, 0xFFFF, 0x10000,
             0x7FFFFFFF, -0x80000000, -8, -16, -512, 1000, -4095)
SIZES = (op.BPF_B, op.BPF_H, op.BPF_W, op.BPF_DW)
ATOMIC_IMMS = (op.BPF_ADD, op.BPF_OR, op.BPF_AND, op.BPF_XOR, op.BPF_ADD | op.BPF_FETCH,
               op.BPF_OR | op.BPF_FETCH, op.BPF_AND | op.BPF_FETCH, op.BPF_XOR | op.BPF_FETCH, op.BPF_XCHG,
               op.BPF_CMPXCHG)
STACK_OFFS = (-8, -16, -24, -32, -4, -1, -512, -520, 0, 8)
PKT_OFFS = (0, 1, 4, 8, 12, 13, 14, 20, 23, 34, 54, -1)
CTX_OFF = {"socket_filter": (0, 4, 8, 16, 48, 68, 76, 80, 3, 192),
           "sched_cls": (0, 4, 8, 16, 48, 68, 76, 80, 140, 152, 3, 192),
           "xdp": (0, 4, 8, 12, 16, 20, 24, 2)}
PKT_FIELDS = {"sched_cls": (76, 80, 140), "xdp": (0, 4, 8)}  # data, data_end, data_meta
WIDE_HELPERS = ("ktime_get_ns", "get_prandom_u32", "map_lookup_elem", "map_update_elem", "map_delete_elem",
                "tail_call", "trace_printk", "get_smp_processor_id", "csum_diff")
WIDE_MAPS = (("hash", 4, 8, 16), ("array", 4, 16, 4), ("prog_array", 4, 4, 4))
CALLEE_SAVED = (6, 7, 8, 9)


def _map_defs():
    from ..program import MapDef

    return tuple(MapDef(f"m{k}", kind, ks, vs, n) for k, (kind, ks, vs, n) in enumerate(WIDE_MAPS))


def _ld_map(dst: int, index: int) -> list[Insn]:
    from ..isa.insn import ld_imm64

    return list(ld_imm64(dst, index, op.BPF_PSEUDO_MAP_IDX))


def _wide_helper(rng: random.Random, name: str) -> list[Insn]:
    """A call of ``name`` with plausible (sometimes wrong) arguments; r6 keeps ctx."""
    from ..isa.helpers import BpfFunc

    out: list[Insn] = []
    key = rng.choice((-8, -16, -4))
    if name in ("map_lookup_elem", "map_update_elem", "map_delete_elem"):
        if rng.random() < 0.8:
            out.append(Insn(op.BPF_ST | op.BPF_MEM | op.BPF_W, 10, 0, key, rng.choice((0, 1, 5))))
        out += [Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 2, 10), Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 2,
                                                                           0, 0, key)]
        out += _ld_map(1, rng.choice((0, 0, 1, 2)))
        if name == "map_update_elem":
            out += [Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 3, 10),
                    Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 3, 0, 0, rng.choice((-16, -32, -8))),
                    Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 4, 0, 0, 0)]
    elif name == "tail_call":
        out += [Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 1, 6)]
        out += _ld_map(2, rng.choice((2, 2, 0)))
        out.append(Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 3, 0, 0, rng.choice((0, 1, 9))))
    elif name == "trace_printk":
        out += [Insn(op.BPF_ST | op.BPF_MEM | op.BPF_DW, 10, 0, -8, 0x41),
                Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 1, 10), Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 1, 0,
                                                                        0, -8),
                Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 2, 0, 0, rng.choice((8, 4, 9)))]
        for r in range(3, 3 + rng.randrange(4)):
            out.append(Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, r, 0, 0, r))
    elif name == "csum_diff":
        out += [Insn(op.BPF_ST | op.BPF_MEM | op.BPF_DW, 10, 0, -8, 1),
                Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 1, 10), Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, 1, 0,
                                                                        0, -8),
                Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 2, 0, 0, rng.choice((8, 4, 0, 3))),
                Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 3, 0, 0, 0),
                Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 4, 0, 0, 0),
                Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 5, 0, 0, 0)]
    out.append(Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, int(BpfFunc[name])))
    return out


def wide_program(rng: random.Random, length: int = 16) -> Program:
    """A random program of a random type (socket filter, tc, XDP): every ALU
    operation and width with immediates at and past every width and with
    registers of every kind (scalars, ctx, stack, packet, map pointers and
    values), loads and stores of every size through every pointer kind,
    atomics, conditional jumps of both widths (NULL checks and packet
    comparisons included) and helper calls with right and wrong arguments.
    The generator tracks roughly what each register holds so most
    instructions make sense and programs get far enough to meet every rule."""
    prog_type = rng.choice(WIDE_TYPES)
    body: list[Insn] = [Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 6, 1)]  # r6 keeps ctx
    kinds: dict[int, str] = {6: "ctx", 10: "stack", 1: "ctx"}
    for r in (0, 2, 3, 4, 5, 7, 8, 9):  # most registers start set: scalars of every kind
        if rng.random() < 0.9:
            if rng.random() < 0.5:
                body.append(Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, r, 0, 0, rng.choice(WIDE_IMMS)))
            else:
                body.append(Insn(op.BPF_LDX | op.BPF_MEM | rng.choice(SIZES[:3]), r, 6,
                                 rng.choice(CTX_OFF[prog_type][:4])))
            kinds[r] = "scalar"

    def pick(pool, fallback=None):
        pool = [r for r in pool if r in kinds]
        return rng.choice(pool) if pool else (fallback if fallback is not None else rng.choice((0, 2, 3)))

    def pointers():
        return [r for r, k in kinds.items() if k not in ("scalar", "pkt_end")]

    for _ in range(length):
        choice = rng.random()
        dst = rng.choice((0, 2, 3, 4, 5, 7, 8, 9))
        live = list(kinds) if rng.random() < 0.97 else list(range(10))
        src = rng.choice(live)
        if choice < 0.12 and prog_type in PKT_FIELDS:  # a packet pointer, often bounds-checked
            data, end, meta = PKT_FIELDS[prog_type]
            body.append(Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_W, dst, 6, rng.choice((data, data, meta))))
            kinds[dst] = "pkt"
            if rng.random() < 0.7:
                other = rng.choice([r for r in (2, 3, 4, 5, 7, 8, 9) if r != dst])
                body.append(Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_W, other, 6, end))
                tmp = rng.choice([r for r in (0, 2, 3, 4, 5, 7, 8, 9) if r not in (dst, other)])
                body += [Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, tmp, dst),
                         Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, tmp, 0, 0, rng.choice((8, 14, 34, 54, 1))),
                         Insn(op.BPF_JMP | rng.choice((op.BPF_JGT, op.BPF_JLE, op.BPF_JGE, op.BPF_JLT))
                              | op.BPF_X, tmp, other, rng.randrange(1, 4), 0)]
                kinds.update({other: "pkt_end", tmp: "pkt"})
        elif choice < 0.17:  # a map value pointer, null-checked or not
            body += _wide_helper(rng, "map_lookup_elem")
            for r in range(1, 6):
                kinds.pop(r, None)
            kinds[0] = "map_value"
            if rng.random() < 0.8:
                body.append(Insn(op.BPF_JMP | rng.choice((op.BPF_JEQ, op.BPF_JNE)) | op.BPF_K, 0, 0,
                                 rng.randrange(1, 3), 0))
            if rng.random() < 0.7:
                keep = rng.choice(CALLEE_SAVED[1:])
                body.append(Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, keep, 0))
                kinds[keep] = "map_value"
        elif choice < 0.22:
            body += _wide_helper(rng, rng.choice(WIDE_HELPERS))
            for r in range(1, 6):
                kinds.pop(r, None)
            kinds[0] = "scalar"
        elif choice < 0.27:  # a stack pointer
            body += [Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, dst, 10),
                     Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, dst, 0, 0, rng.choice(STACK_OFFS))]
            kinds[dst] = "stack"
        elif choice < 0.33:
            body.append(Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_W, dst, 6, rng.choice(CTX_OFF[prog_type])))
            kinds[dst] = "scalar"
        elif choice < 0.58:  # ALU
            cls = rng.choice((op.BPF_ALU64, op.BPF_ALU64, op.BPF_ALU))
            operation = rng.choice(ALU_OPS)
            dst = pick([dst] if dst in kinds else list(kinds))
            off = 0
            if operation in (op.BPF_DIV, op.BPF_MOD) and rng.random() < 0.3:
                off = 1  # signed
            if operation == op.BPF_MOV and rng.random() < 0.2:
                off = rng.choice((8, 16, 32))  # movsx
            if operation == op.BPF_END:
                cls = rng.choice((op.BPF_ALU, op.BPF_ALU64))
                source = op.BPF_X if cls == op.BPF_ALU and rng.random() < 0.5 else op.BPF_K
                body.append(Insn(cls | op.BPF_END | source, dst, 0, 0, rng.choice((16, 32, 64))))
            elif operation == op.BPF_NEG or rng.random() < 0.5:
                imm = rng.choice(WIDE_IMMS) if operation != op.BPF_NEG or rng.random() < 0.1 else 0
                body.append(Insn(cls | operation | op.BPF_K, dst, 0, off, imm))
                if operation == op.BPF_MOV:
                    kinds[dst] = "scalar"
            else:
                body.append(Insn(cls | operation | op.BPF_X, dst, src, off, 0))
                if operation == op.BPF_MOV and src in kinds:
                    kinds[dst] = kinds[src] if cls == op.BPF_ALU64 and not off else "scalar"
            if operation not in (op.BPF_ADD, op.BPF_SUB, op.BPF_MOV):
                kinds[dst] = "scalar"
        elif choice < 0.70:  # loads
            base = pick(pointers()) if rng.random() < 0.9 else rng.choice(list(kinds))
            mode = op.BPF_MEMSX if rng.random() < 0.15 else op.BPF_MEM
            size = rng.choice(SIZES[:3] if mode == op.BPF_MEMSX and rng.random() < 0.9 else SIZES)
            off = rng.choice(STACK_OFFS if kinds.get(base) == "stack" else PKT_OFFS + CTX_OFF[prog_type])
            body.append(Insn(op.BPF_LDX | mode | size, dst, base, off))
            kinds[dst] = "scalar"
        elif choice < 0.82:  # stores and atomics
            base = pick(pointers()) if rng.random() < 0.9 else rng.choice(list(kinds))
            size = rng.choice(SIZES)
            off = rng.choice(STACK_OFFS if kinds.get(base) == "stack" else PKT_OFFS + CTX_OFF[prog_type])
            kind = rng.random()
            if kind < 0.4:
                body.append(Insn(op.BPF_ST | op.BPF_MEM | size, base, 0, off, rng.choice(WIDE_IMMS)))
            elif kind < 0.85:
                body.append(Insn(op.BPF_STX | op.BPF_MEM | size, base, src, off))
            else:
                body.append(Insn(op.BPF_STX | op.BPF_ATOMIC | rng.choice((op.BPF_W, op.BPF_DW, op.BPF_DW, op.BPF_B)),
                                 base, src, off, rng.choice(ATOMIC_IMMS)))
        else:  # conditional jumps, forward
            cls = rng.choice((op.BPF_JMP, op.BPF_JMP, op.BPF_JMP32))
            skip = rng.randrange(1, 4)
            dst = pick(list(kinds))
            if rng.random() < 0.5:
                body.append(Insn(cls | rng.choice(JUMPS) | op.BPF_K, dst, 0, skip, rng.choice(WIDE_IMMS)))
            else:
                body.append(Insn(cls | rng.choice(JUMPS) | op.BPF_X, dst, src, skip, 0))
    if rng.random() < 0.95:
        body.append(Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, rng.choice((0, 1, 2))))
    body.append(Insn(op.BPF_JMP | op.BPF_EXIT))
    fixed = []
    for i, insn in enumerate(body):  # forward jumps land inside the program, never in an ld_imm64
        if insn.is_jmp_class and not (insn.is_exit or insn.is_call):
            target = min(i + 1 + insn.off, len(body) - 1)
            while target > i + 1 and body[target - 1].is_ld_imm64:
                target -= 1
            insn = Insn(insn.code, insn.dst, insn.src, target - i - 1, insn.imm)
        fixed.append(insn)
    return Program("wide", tuple(fixed), type=prog_type, maps=_map_defs())
