"""The interpreter: every RFC 9669 instruction, compiled by numba.

Instructions arrive pre-decoded as numpy arrays (opcode, dst, src, off, imm)
and registers are ``uint64`` throughout (numba promotes mixed signed and
unsigned 64-bit arithmetic to float, so every operand is cast explicitly).
Memory is the ``Memory`` arena: each access is checked against the region
table; a fault in a PROBE_MEM load reads 0 and is counted, any other fault
stops the run with the instruction and address. Helpers are dispatched by id
inside the compiled loop; events go to an output buffer the Python side turns
into perf records.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .memory import BASE, READ, WRITE

U64 = np.uint64
MASK32 = np.uint64(0xFFFFFFFF)
MAP_HANDLE = 0x7F0000000000  # map "pointers" are handles, not addresses

# run() status codes
OK, FAULT, BAD_OPCODE, BAD_HELPER, STEP_LIMIT, CALL_DEPTH, BAD_JUMP, BAD_MAP = range(8)
# output record kinds
OUT_PERF, OUT_PRINTK, OUT_RINGBUF = 1, 2, 3
STACK_SIZE = 512
MAX_FRAMES = 8
# The stack region every engine shares: the interpreter's frames hang below r10 at its end;
# a JIT image runs its x86 stack there too (calls, saved registers), its main function's
# r10 (rbp) at the same address, with the return address and saved rbp above it: the
# FRAME_LINKAGE bytes after the region, mapped but no BPF memory.
STACK_REGION = 64 * 1024 - 16
FRAME_LINKAGE = 16
MAX_TAIL_CALL_CNT = 33  # the kernel's limit on tail calls in one run


@njit(cache=True, inline="always")
def _sx(value, bits):
    v = value & ((U64(1) << U64(bits)) - U64(1))
    sign = U64(1) << U64(bits - 1)
    return (v ^ sign) - sign


@njit(cache=True, inline="always")
def _s64(value):
    return np.int64(value)


@njit(cache=True, inline="always")
def _access_size(op):
    """The bytes a load or store moves: its size bits (BPF_W 0x00, BPF_H 0x08, BPF_B 0x10, BPF_DW 0x18)."""
    sz = op & 0x18
    return 4 if sz == 0 else (2 if sz == 8 else (1 if sz == 0x10 else 8))


@njit(cache=True, inline="always")
def _signed(a, b, is64):
    """The operands of a signed ALU64 or ALU (32-bit: their low halves) operation."""
    if is64:
        return np.int64(a), np.int64(b)
    return np.int64(_sx(a, 32)), np.int64(_sx(b, 32))


@njit(cache=True, inline="always")
def _sdiv(a, b, is64):
    """sdiv, b != 0: the quotient rounded towards zero; INT_MIN / -1 wraps (to INT_MIN).
    An ALU result is truncated to 32 bits by the caller."""
    sa, sb = _signed(a, b, is64)
    if sb == -1:
        return U64(0) - a
    q = abs(sa) // abs(sb)
    return U64(q) if (sa < 0) == (sb < 0) else U64(0) - U64(q)


@njit(cache=True, inline="always")
def _smod(a, b, is64):
    """smod, b != 0: the remainder takes the dividend's sign; x % -1 is 0."""
    sa, sb = _signed(a, b, is64)
    if sb == -1:
        return U64(0)
    m = abs(sa) % abs(sb)
    return U64(m) if sa >= 0 else U64(0) - U64(m)


@njit(cache=True, inline="always")
def _inside(addr, size, base, length):
    """``addr .. addr + size`` lies in ``base .. base + length`` (no sum can wrap)."""
    return addr >= base and addr - base <= length and U64(size) <= length - (addr - base)


@njit(cache=True)
def _region(addr, size, rbase, rsize, rperm, need):
    """The index of the region holding the access; -2: that region lacks permission
    ``need``; -1: no region holds it."""
    for k in range(rbase.shape[0]):
        if _inside(addr, size, U64(rbase[k]), U64(rsize[k])):
            if rperm[k] & need:
                return k
            return -2
    return -1


def word_views(arena: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arena as 16-, 32- and 64-bit words, for ``run``'s aligned loads and stores (one
    machine access instead of a loop over bytes). They are ``run``'s arguments, not made
    inside it: a view made in compiled code is reference-counted on every use."""
    whole = arena[: len(arena) // 8 * 8]
    return whole.view(np.uint16), whole.view(np.uint32), whole.view(np.uint64)


@njit(cache=True)
def _load(arena, addr, size):
    off = np.int64(addr - U64(BASE))
    v = U64(0)
    for i in range(size):
        v |= U64(arena[off + i]) << U64(8 * i)
    return v


@njit(cache=True)
def _store(arena, addr, size, value):
    off = np.int64(addr - U64(BASE))
    for i in range(size):
        arena[off + i] = np.uint8((value >> U64(8 * i)) & U64(0xFF))


@njit(cache=True)
def _copy(arena, dst, src, n):
    d = np.int64(dst - U64(BASE))
    s = np.int64(src - U64(BASE))
    for i in range(n):
        arena[d + i] = arena[s + i]


@njit(cache=True)
def _emit(out, meta, state, arena, kind, src, n, extra_src, extra_n):
    used = state[1]
    row = state[2]
    if row >= meta.shape[0] or used + n + extra_n > out.shape[0]:
        state[3] += 1  # lost
        return False
    s = np.int64(src - U64(BASE))
    for i in range(n):
        out[used + i] = arena[s + i]
    if extra_n > 0:
        e = np.int64(extra_src - U64(BASE))
        for i in range(extra_n):
            out[used + n + i] = arena[e + i]
    meta[row, 0] = kind
    meta[row, 1] = used
    meta[row, 2] = n + extra_n
    meta[row, 3] = state[0]  # timestamp
    state[1] = used + n + extra_n
    state[2] = row + 1
    return True


@njit(cache=True)
def run(code, dst, src, off, imm, arena, a16, a32, a64, rbase, rsize, rperm, probe, regs, max_steps,
        map_kind, map_ks, map_vs, map_max, map_addr, out, meta, state, skb_layout):
    """Execute from instruction 0; returns (status, pc, fault address, steps, probe faults).

    ``a16``, ``a32``, ``a64``: ``word_views(arena)``. Every load and store is checked
    against the region table; the region the last access fell in is checked first (a
    loop's accesses mostly stay in one region: its stack, its packet), the table only
    when the access is not there."""
    n = code.shape[0]
    pc = 0
    steps = 0
    probe_faults = 0
    frame = 0
    tail_calls = 0
    ret_pc = np.zeros(MAX_FRAMES, dtype=np.int64)
    saved = np.zeros((MAX_FRAMES, 4), dtype=np.uint64)
    stack_top0 = regs[10]
    # the last region an access fell in (none yet: an empty range, which no access fits)
    hit_base = U64(0)
    hit_size = U64(0)
    hit_perm = 0
    while True:
        if pc < 0 or pc >= n:
            return BAD_JUMP, pc, U64(0), steps, probe_faults
        steps += 1
        if steps > max_steps:
            return STEP_LIMIT, pc, U64(0), steps, probe_faults
        op = code[pc]
        d = dst[pc]
        s = src[pc]
        o = off[pc]
        k = U64(np.int64(imm[pc]))  # sign-extended immediate
        cls = op & 7
        if cls == 7 or cls == 4:  # ALU64 / ALU
            is64 = cls == 7
            operation = op & 0xF0
            if op & 8:
                b = regs[s]
            else:
                b = k
            a = regs[d]
            if not is64:
                a &= MASK32
                b &= MASK32
            if operation == 0x00:
                r = a + b
            elif operation == 0x10:
                r = a - b
            elif operation == 0x20:
                r = a * b
            elif operation == 0x30:  # div / sdiv
                if o == 1:
                    r = U64(0) if b == 0 else _sdiv(a, b, is64)
                else:
                    r = U64(0) if b == 0 else a // b
            elif operation == 0x40:
                r = a | b
            elif operation == 0x50:
                r = a & b
            elif operation == 0x60:
                r = a << (b & U64(63 if is64 else 31))
            elif operation == 0x70:
                r = a >> (b & U64(63 if is64 else 31))
            elif operation == 0x80:
                r = U64(0) - a
            elif operation == 0x90:  # mod / smod
                if o == 1:
                    r = a if b == 0 else _smod(a, b, is64)
                else:
                    r = a if b == 0 else a % b
            elif operation == 0xA0:
                r = a ^ b
            elif operation == 0xB0:  # mov / movsx
                if op & 8 and o != 0:
                    r = _sx(b, o)
                else:
                    r = b
            elif operation == 0xC0:  # arsh
                sh = b & U64(63 if is64 else 31)
                if is64:
                    r = U64(np.int64(a) >> np.int64(sh))
                else:
                    r = U64(np.int64(_sx(a, 32)) >> np.int64(sh))
            elif operation == 0xD0:  # byte swaps
                width = imm[pc]
                x = regs[d]
                if is64 or op & 8:  # bswap, or to big-endian on this little-endian host
                    r = U64(0)
                    for i in range(width // 8):
                        r = (r << U64(8)) | ((x >> U64(8 * i)) & U64(0xFF))
                else:
                    r = x & ((U64(1) << U64(width)) - U64(1)) if width < 64 else x
                is64 = True
            else:
                return BAD_OPCODE, pc, U64(0), steps, probe_faults
            regs[d] = r if is64 else (r & MASK32)
            pc += 1
            continue
        if cls == 1:  # LDX
            size = _access_size(op)
            addr = regs[s] + U64(np.int64(o))
            if not (hit_perm & READ and _inside(addr, size, hit_base, hit_size)):
                region = _region(addr, size, rbase, rsize, rperm, READ)
                if region < 0:
                    if probe[pc]:
                        regs[d] = U64(0)
                        probe_faults += 1
                        pc += 1
                        continue
                    return FAULT, pc, addr, steps, probe_faults
                hit_base = U64(rbase[region])
                hit_size = U64(rsize[region])
                hit_perm = rperm[region]
            at = addr - U64(BASE)  # the arena offset, unsigned: an index numba need not wrap
            if size == 8 and at & U64(7) == 0:
                v = a64[at >> U64(3)]
            elif size == 4 and at & U64(3) == 0:
                v = U64(a32[at >> U64(2)])
            elif size == 1:
                v = U64(arena[at])
            elif size == 2 and at & U64(1) == 0:
                v = U64(a16[at >> U64(1)])
            else:
                v = _load(arena, addr, size)
            if op & 0xE0 == 0x80:  # sign-extending load
                v = _sx(v, size * 8)
            regs[d] = v
            pc += 1
            continue
        if cls == 2 or cls == 3:  # ST / STX
            size = _access_size(op)
            addr = regs[d] + U64(np.int64(o))
            if not (hit_perm & WRITE and _inside(addr, size, hit_base, hit_size)):
                region = _region(addr, size, rbase, rsize, rperm, WRITE)
                if region < 0:
                    return FAULT, pc, addr, steps, probe_faults
                hit_base = U64(rbase[region])
                hit_size = U64(rsize[region])
                hit_perm = rperm[region]
            if op & 0xE0 == 0xC0:  # atomics
                old = _load(arena, addr, size)
                v = regs[s]
                if size == 4:
                    v &= MASK32
                aop = imm[pc]
                if aop == 0xF1:  # cmpxchg
                    expected = regs[0] & (MASK32 if size == 4 else U64(0xFFFFFFFFFFFFFFFF))
                    if old == expected:
                        _store(arena, addr, size, v)
                    regs[0] = old
                elif aop == 0xE1:  # xchg
                    _store(arena, addr, size, v)
                    regs[s] = old
                elif aop & ~0xF1 != 0:  # Vm refuses these before a run
                    return BAD_OPCODE, pc, U64(0), steps, probe_faults
                else:
                    base_op = aop & 0xF0
                    if base_op == 0x00:
                        new = old + v
                    elif base_op == 0x40:
                        new = old | v
                    elif base_op == 0x50:
                        new = old & v
                    elif base_op == 0xA0:
                        new = old ^ v
                    else:
                        return BAD_OPCODE, pc, U64(0), steps, probe_faults
                    _store(arena, addr, size, new)
                    if aop & 1:
                        regs[s] = old
            else:
                v = regs[s] if cls == 3 else k
                at = addr - U64(BASE)
                if size == 8 and at & U64(7) == 0:
                    a64[at >> U64(3)] = v
                elif size == 4 and at & U64(3) == 0:
                    a32[at >> U64(2)] = np.uint32(v & MASK32)
                elif size == 1:
                    arena[at] = np.uint8(v & U64(0xFF))
                elif size == 2 and at & U64(1) == 0:
                    a16[at >> U64(1)] = np.uint16(v & U64(0xFFFF))
                else:
                    _store(arena, addr, size, v)
            pc += 1
            continue
        if cls == 0:  # LD
            if op == 0x18:
                lo = U64(imm[pc]) & MASK32
                hi = U64(imm[pc + 1]) & MASK32
                if s == 5:  # BPF_PSEUDO_MAP_IDX: a map handle
                    regs[d] = U64(MAP_HANDLE) + lo
                elif s == 6:  # BPF_PSEUDO_MAP_IDX_VALUE: the map's value memory
                    if lo >= U64(map_addr.shape[0]):
                        return BAD_MAP, pc, U64(0), steps, probe_faults
                    regs[d] = U64(map_addr[np.int64(lo)]) + hi
                else:
                    regs[d] = lo | (hi << U64(32))
                pc += 2
                continue
            return BAD_OPCODE, pc, U64(0), steps, probe_faults
        # JMP / JMP32
        operation = op & 0xF0
        if operation == 0x00:  # ja / gotol
            pc += (imm[pc] if cls == 6 else o) + 1
            continue
        if operation == 0x90 and cls == 5:  # exit
            if frame == 0:
                return OK, pc, U64(0), steps, probe_faults
            frame -= 1
            for i in range(4):
                regs[6 + i] = saved[frame, i]
            regs[10] = stack_top0 - U64(frame * STACK_SIZE)
            pc = ret_pc[frame]
            continue
        if operation == 0x80 and cls == 5:  # calls
            if s == 1:  # bpf-to-bpf
                if frame + 1 >= MAX_FRAMES:
                    return CALL_DEPTH, pc, U64(0), steps, probe_faults
                for i in range(4):
                    saved[frame, i] = regs[6 + i]
                ret_pc[frame] = pc + 1
                frame += 1
                regs[10] = stack_top0 - U64(frame * STACK_SIZE)
                pc += imm[pc] + 1
                continue
            if imm[pc] == 12:  # bpf_tail_call(ctx, prog_array, index)
                target = _tail_call_target(regs, arena, map_kind, map_max, map_addr, tail_calls)
                if target == -2:
                    return BAD_MAP, pc, regs[2], steps, probe_faults
                if target >= 0:  # the target replaces this frame; a miss goes on with the next insn
                    tail_calls += 1
                    pc = target
                    continue
                regs[0] = U64(0)  # bpf_tail_call returns nothing: every engine leaves r0 = 0 after a miss
                pc += 1
                continue
            status = _helper(imm[pc], regs, arena, rbase, rsize, rperm, map_kind, map_ks, map_vs, map_max,
                             map_addr, out, meta, state, skb_layout)
            if status != OK:
                return status, pc, regs[1], steps, probe_faults
            pc += 1
            continue
        if operation == 0xE0:  # may_goto: never taken here
            pc += 1
            continue
        a = regs[d]
        b = regs[s] if op & 8 else k
        if cls == 6:
            a &= MASK32
            b &= MASK32
            sa = np.int64(_sx(a, 32))
            sb = np.int64(_sx(b, 32))
        else:
            sa = np.int64(a)
            sb = np.int64(b)
        if operation == 0x10:
            taken = a == b
        elif operation == 0x20:
            taken = a > b
        elif operation == 0x30:
            taken = a >= b
        elif operation == 0x40:
            taken = (a & b) != 0
        elif operation == 0x50:
            taken = a != b
        elif operation == 0x60:
            taken = sa > sb
        elif operation == 0x70:
            taken = sa >= sb
        elif operation == 0xA0:
            taken = a < b
        elif operation == 0xB0:
            taken = a <= b
        elif operation == 0xC0:
            taken = sa < sb
        elif operation == 0xD0:
            taken = sa <= sb
        else:
            return BAD_OPCODE, pc, U64(0), steps, probe_faults
        pc += (o + 1) if taken else 1
    return OK, pc, U64(0), steps, probe_faults


@njit(cache=True)
def _tail_call_target(regs, arena, map_kind, map_max, map_addr, tail_calls):
    """The instruction a tail call continues at; -1: it does not happen (index past the
    array, an empty slot, or MAX_TAIL_CALL_CNT calls already made); -2: r2 is no prog array."""
    m = np.int64(regs[2] - U64(MAP_HANDLE))
    if m < 0 or m >= map_kind.shape[0] or map_kind[m] != 3:
        return -2
    index = np.int64(regs[3] & MASK32)
    if index >= map_max[m] or tail_calls >= MAX_TAIL_CALL_CNT:
        return -1
    entry = np.int64(_load(arena, U64(map_addr[m]) + U64(8 * index), 8))
    return entry - 1 if entry > 0 else -1


@njit(cache=True)
def _map_slot(regs_key, arena, index, rbase, rsize, rperm, map_kind, map_ks, map_vs, map_max, map_addr, create):
    """Address of the value for the key at ``regs_key`` in map ``index`` (0 when absent)."""
    ks = map_ks[index]
    vs = map_vs[index]
    kind = map_kind[index]
    if _region(regs_key, ks, rbase, rsize, rperm, 1) < 0:
        return U64(0)
    if kind == 2 or kind == 6:  # array, percpu_array (one CPU here)
        key = _load(arena, regs_key, 4)
        if key >= U64(map_max[index]):
            return U64(0)
        return U64(map_addr[index]) + key * U64((vs + 7) // 8 * 8)
    if kind == 1 or kind == 5 or kind == 9:  # hash, percpu_hash, lru_hash
        entry = 8 + (ks + 7) // 8 * 8 + (vs + 7) // 8 * 8
        base = U64(map_addr[index])
        free = U64(0)
        for e in range(map_max[index]):
            slot = base + U64(e * entry)
            if _load(arena, slot, 1) == 1:
                same = True
                for i in range(ks):
                    if _load(arena, slot + U64(8 + i), 1) != _load(arena, regs_key + U64(i), 1):
                        same = False
                        break
                if same:
                    return slot + U64(8 + (ks + 7) // 8 * 8)
            elif free == 0:
                free = slot
        if create and free != 0:
            _store(arena, free, 1, U64(1))
            _copy(arena, free + U64(8), regs_key, ks)
            return free + U64(8 + (ks + 7) // 8 * 8)
    return U64(0)


@njit(cache=True)
def _helper(helper, regs, arena, rbase, rsize, rperm, map_kind, map_ks, map_vs, map_max, map_addr, out, meta,
            state, skb_layout):
    r1 = regs[1]
    r2 = regs[2]
    r3 = regs[3]
    r4 = regs[4]
    r5 = regs[5]
    result = U64(0)
    if helper == 1 or helper == 2 or helper == 3:  # map lookup / update / delete
        index = np.int64(r1 - U64(MAP_HANDLE))
        if index < 0 or index >= map_kind.shape[0]:
            return BAD_MAP
        if helper == 1:
            result = _map_slot(r2, arena, index, rbase, rsize, rperm, map_kind, map_ks, map_vs, map_max,
                               map_addr, False)
        elif helper == 2:
            if _region(r3, map_vs[index], rbase, rsize, rperm, 1) < 0:
                return 1  # the value pointer holds no value (only unverified code gets here)
            slot = _map_slot(r2, arena, index, rbase, rsize, rperm, map_kind, map_ks, map_vs, map_max,
                             map_addr, True)
            if slot == 0:
                result = U64(0) - U64(7)  # -E2BIG
            else:
                _copy(arena, slot, r3, map_vs[index])
        else:
            slot = _map_slot(r2, arena, index, rbase, rsize, rperm, map_kind, map_ks, map_vs, map_max,
                             map_addr, False)
            if slot == 0 or map_kind[index] in (2, 6):
                result = U64(0) - U64(2 if slot == 0 else 22)
            else:
                header = slot - U64(8 + (map_ks[index] + 7) // 8 * 8)
                _store(arena, header, 1, U64(0))
    elif helper == 4 or helper == 112 or helper == 113:  # probe reads
        n = np.int64(r2)
        if _region(r1, n, rbase, rsize, rperm, 2) < 0:
            return 1
        if n > 0 and _region(r3, n, rbase, rsize, rperm, 1) < 0:
            for i in range(n):
                _store(arena, r1 + U64(i), 1, U64(0))
            result = U64(0) - U64(14)  # -EFAULT
        else:
            _copy(arena, r1, r3, n)
    elif helper == 45 or helper == 114 or helper == 115:  # probe_read_*_str
        n = np.int64(r2)
        if _region(r1, n, rbase, rsize, rperm, 2) < 0:
            return 1
        copied = 0
        for i in range(n):
            if _region(r3 + U64(i), 1, rbase, rsize, rperm, 1) < 0:
                copied = -1
                break
            c = _load(arena, r3 + U64(i), 1)
            if i == n - 1:
                c = U64(0)
            _store(arena, r1 + U64(i), 1, c)
            copied = i + 1
            if c == 0:
                break
        result = U64(0) - U64(14) if copied < 0 else U64(copied)
    elif helper == 5 or helper == 125 or helper == 160 or helper == 208:  # ktime
        state[0] += 1000
        result = U64(state[0])
    elif helper == 7:  # prandom: xorshift64*
        x = U64(state[4])
        x ^= x >> U64(12)
        x ^= x << U64(25)
        x ^= x >> U64(27)
        state[4] = np.int64(x)
        result = (x * U64(0x2545F4914F6CDD1D)) >> U64(32)
    elif helper == 8:
        result = U64(0)
    elif helper == 14:
        result = U64(state[5])
    elif helper == 15:
        result = U64(state[6])
    elif helper == 6:  # trace_printk: the format bytes; arguments in the meta row
        n = np.int64(r2)
        if n < 0 or (n > 0 and _region(r1, n, rbase, rsize, rperm, 1) < 0):
            return 1
        if _emit(out, meta, state, arena, 2, r1, n, U64(0), 0):
            row = state[2] - 1
            meta[row, 4] = np.int64(r3)
            meta[row, 5] = np.int64(r4)
            meta[row, 6] = np.int64(r5)
        result = U64(n)
    elif helper == 25 or helper == 130:  # perf_event_output, ringbuf_output
        if helper == 25:
            data, n = r4, np.int64(r5)
        else:
            data, n = r2, np.int64(r3)
        if n > 0 and _region(data, n, rbase, rsize, rperm, 1) < 0:
            return 1
        _emit(out, meta, state, arena, 1 if helper == 25 else 3, data, n, U64(0), 0)
    elif helper == 111:  # skb_output: the record, then flags>>32 packet bytes
        n = np.int64(r5)
        want = np.int64(r3 >> U64(32))
        if n < 0 or (n > 0 and _region(r4, n, rbase, rsize, rperm, 1) < 0):
            return 1
        if skb_layout[0] >= 0 and _region(r1 + U64(skb_layout[0]), 4, rbase, rsize, rperm, 1) < 0:
            return 1
        if want > 0 and _region(r1 + U64(skb_layout[1]), 8, rbase, rsize, rperm, 1) < 0:
            return 1
        skb_len = np.int64(_load(arena, r1 + U64(skb_layout[0]), 4)) if skb_layout[0] >= 0 else 0
        if want > skb_len:
            result = U64(0) - U64(14)  # the kernel refuses more than skb->len
        else:
            pkt = _load(arena, r1 + U64(skb_layout[1]), 8) if want > 0 else U64(0)
            if want > 0 and _region(pkt, want, rbase, rsize, rperm, 1) < 0:
                result = U64(0) - U64(14)
            else:
                _emit(out, meta, state, arena, 1, r4, n, pkt, want)
    elif helper == 26:  # skb_load_bytes(ctx, offset, to, len) from the __sk_buff's packet
        n = np.int64(r4)
        start = np.int64(r2)
        if _region(r1, 4, rbase, rsize, rperm, 1) < 0 or _region(r1 + U64(76), 4, rbase, rsize, rperm, 1) < 0:
            return 1  # no __sk_buff (only unverified code gets here)
        length = np.int64(_load(arena, r1, 4))
        data = _load(arena, r1 + U64(76), 4)
        if start >= 0 and n > 0 and _region(data + U64(start), n, rbase, rsize, rperm, 1) < 0:
            length = -1  # its data pointer holds no packet: refused as out of range
        if start < 0 or n <= 0 or start + n > length or _region(r3, n, rbase, rsize, rperm, 2) < 0:
            if n > 0 and _region(r3, n, rbase, rsize, rperm, 2) >= 0:
                for i in range(n):
                    _store(arena, r3 + U64(i), 1, U64(0))
            result = U64(0) - U64(14)
        else:
            _copy(arena, r3, data + U64(start), n)
    else:
        return BAD_HELPER
    regs[0] = result
    return OK
