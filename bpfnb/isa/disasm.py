"""Disassembly in the Linux verifier-log syntax.

Each line is printed as the kernel's ``print_bpf_insn`` prints it, so our
output and a kernel log can be diffed: ``(79) r1 = *(u64 *)(r1 +16)``,
``(15) if r4 == 0x0 goto pc+2``, ``(85) call bpf_skb_output#111``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import opcodes as op
from .helpers import helper_name
from .insn import Insn

_ALU_OPS = {
    op.BPF_ADD: "+=", op.BPF_SUB: "-=", op.BPF_MUL: "*=", op.BPF_DIV: "/=",
    op.BPF_OR: "|=", op.BPF_AND: "&=", op.BPF_LSH: "<<=", op.BPF_RSH: ">>=",
    op.BPF_MOD: "%=", op.BPF_XOR: "^=", op.BPF_MOV: "=", op.BPF_ARSH: "s>>=",
}
_JMP_OPS = {
    op.BPF_JEQ: "==", op.BPF_JGT: ">", op.BPF_JGE: ">=", op.BPF_JSET: "&",
    op.BPF_JNE: "!=", op.BPF_JSGT: "s>", op.BPF_JSGE: "s>=", op.BPF_JLT: "<",
    op.BPF_JLE: "<=", op.BPF_JSLT: "s<", op.BPF_JSLE: "s<=",
}
_SIZES = {op.BPF_W: "u32", op.BPF_H: "u16", op.BPF_B: "u8", op.BPF_DW: "u64"}
_SIGNED_SIZES = {op.BPF_W: "s32", op.BPF_H: "s16", op.BPF_B: "s8", op.BPF_DW: "s64"}
_ATOMIC_ALU = {op.BPF_ADD: "add", op.BPF_AND: "and", op.BPF_OR: "or", op.BPF_XOR: "xor"}


def _mem(size_name: str, reg: int, off: int) -> str:
    return f"*({size_name} *)(r{reg} {off:+d})"


def _alu(insn: Insn) -> str:
    is64 = insn.cls == op.BPF_ALU64
    r = "r" if is64 else "w"
    code = insn.code & 0xF0
    dst = f"{r}{insn.dst}"
    if code == op.BPF_END:
        if is64:  # cpu v4 unconditional byte swap
            return f"{dst} = bswap{insn.imm} {dst}"
        order = "be" if insn.code & op.BPF_X else "le"
        return f"r{insn.dst} = {order}{insn.imm} r{insn.dst}"
    if code == op.BPF_NEG:
        return f"{dst} = -{dst}"
    if code == op.BPF_MOV and insn.code & op.BPF_X and insn.off in (8, 16, 32):
        return f"{dst} = (s{insn.off}){r}{insn.src}"
    sym = _ALU_OPS.get(code)
    if sym is None:
        return f"BUG_alu_{insn.code:02x}"
    if code in (op.BPF_DIV, op.BPF_MOD) and insn.off == 1:
        sym = "s" + sym
    if insn.code & op.BPF_X:
        return f"{dst} {sym} {r}{insn.src}"
    return f"{dst} {sym} {insn.imm}"


def _atomic(insn: Insn) -> str:
    """As the kernel's ``print_bpf_insn`` prints an atomic: its registers are always
    ``rN``, a 32-bit operation's too (llvm-objdump writes ``wN`` there)."""
    size = insn.code & 0x18
    wide = "64" if size == op.BPF_DW else ""
    ptr = f"({_SIZES[size]} *)(r{insn.dst} {insn.off:+d})"
    imm = insn.imm
    alu = imm & 0xF0
    if imm in _ATOMIC_ALU:
        return f"lock *{ptr} {_ALU_OPS[imm]} r{insn.src}"
    if alu in _ATOMIC_ALU and imm == alu | op.BPF_FETCH:
        return f"r{insn.src} = atomic{wide}_fetch_{_ATOMIC_ALU[alu]}({ptr}, r{insn.src})"
    if imm == op.BPF_CMPXCHG:
        return f"r0 = atomic{wide}_cmpxchg({ptr}, r0, r{insn.src})"
    if imm == op.BPF_XCHG:
        return f"r{insn.src} = atomic{wide}_xchg({ptr}, r{insn.src})"
    if imm == op.BPF_LOAD_ACQ:
        return f"r{insn.dst} = load_acquire(({_SIZES[size]} *)(r{insn.src} {insn.off:+d}))"
    if imm == op.BPF_STORE_REL:
        return f"store_release({ptr}, r{insn.src})"
    return f"BUG_atomic_{imm:02x}"


def _jmp(insn: Insn, call_name: Callable[[Insn], str] | None) -> str:
    code = insn.code & 0xF0
    jmp32 = insn.cls == op.BPF_JMP32
    if code == op.BPF_CALL and not jmp32:
        if insn.code & op.BPF_X:
            return f"callx r{insn.dst}"
        if call_name is not None:
            return f"call {call_name(insn)}"
        if insn.src == op.BPF_PSEUDO_CALL:
            return f"call pc{insn.imm:+d}"
        if insn.src == op.BPF_PSEUDO_KFUNC_CALL:
            return f"call kernel-function#{insn.imm}"
        return f"call {helper_name(insn.imm)}#{insn.imm}"
    if code == op.BPF_EXIT and not jmp32:
        return "exit"
    if code == op.BPF_JA:
        if jmp32:
            return f"gotol pc{insn.imm:+d}"
        return f"goto pc{insn.off:+d}"
    if code == op.BPF_JCOND and not jmp32 and insn.src == op.BPF_MAY_GOTO:
        return f"may_goto pc{insn.off:+d}"
    sym = _JMP_OPS.get(code)
    if sym is None:
        return f"BUG_jmp_{insn.code:02x}"
    r = "w" if jmp32 else "r"
    if insn.code & op.BPF_X:
        rhs = f"{r}{insn.src}"
    else:
        rhs = f"0x{insn.imm & 0xFFFFFFFF:x}"
    return f"if {r}{insn.dst} {sym} {rhs} goto pc{insn.off:+d}"


def format_insn(
    insn: Insn,
    next_insn: Insn | None = None,
    *,
    call_name: Callable[[Insn], str] | None = None,
) -> str:
    """One instruction as the kernel's verifier log prints it.

    ``next_insn`` is the second slot of a 64-bit immediate load; ``call_name``
    overrides how a call target is named.
    """
    cls = insn.cls
    prefix = f"({insn.code:02x}) "
    if cls in (op.BPF_ALU, op.BPF_ALU64):
        body = _alu(insn)
    elif cls in (op.BPF_JMP, op.BPF_JMP32):
        body = _jmp(insn, call_name)
    else:
        mode = insn.code & 0xE0
        size = insn.code & 0x18
        if cls == op.BPF_STX and mode == op.BPF_MEM:
            body = f"{_mem(_SIZES[size], insn.dst, insn.off)} = r{insn.src}"
        elif cls == op.BPF_STX and mode == op.BPF_ATOMIC:
            body = _atomic(insn)
        elif cls == op.BPF_ST and mode == op.BPF_MEM:
            body = f"{_mem(_SIZES[size], insn.dst, insn.off)} = {insn.imm}"
        elif cls == op.BPF_LDX and mode == op.BPF_MEM:
            body = f"r{insn.dst} = {_mem(_SIZES[size], insn.src, insn.off)}"
        elif cls == op.BPF_LDX and mode == op.BPF_MEMSX:
            body = f"r{insn.dst} = {_mem(_SIGNED_SIZES[size], insn.src, insn.off)}"
        elif cls == op.BPF_LD and mode == op.BPF_ABS:
            body = f"r0 = *({_SIZES[size]} *)skb[{insn.imm}]"
        elif cls == op.BPF_LD and mode == op.BPF_IND:
            body = f"r0 = *({_SIZES[size]} *)skb[r{insn.src} + {insn.imm}]"
        elif insn.is_ld_imm64:
            hi = (next_insn.imm & 0xFFFFFFFF) if next_insn is not None else 0
            value = (hi << 32) | (insn.imm & 0xFFFFFFFF)
            body = f"r{insn.dst} = 0x{value:x}"
        else:
            body = f"BUG_{insn.code:02x}"
    return prefix + body


def format_program(insns: Sequence[Insn]) -> str:
    """``N: (code) text`` lines; the second slot of a 64-bit load is skipped."""
    lines = []
    i = 0
    while i < len(insns):
        insn = insns[i]
        nxt = insns[i + 1] if insn.is_ld_imm64 and i + 1 < len(insns) else None
        lines.append(f"{i}: {format_insn(insn, nxt)}")
        i += 2 if insn.is_ld_imm64 else 1
    return "\n".join(lines)
