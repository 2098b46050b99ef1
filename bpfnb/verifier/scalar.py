"""The scalar domain: a tnum plus signed/unsigned 64- and 32-bit bounds.

``Scalar`` mirrors the numeric half of the kernel's ``bpf_reg_state``
(``var_off``, ``smin/smax/umin/umax``, ``s32_min/.../u32_max``) and its
operations follow kernel/bpf/verifier.c of Linux 6.18: ``sync`` is
``reg_bounds_sync`` (update from the tnum, deduce across signedness and
width, refine the tnum from the bounds), ``alu`` is
``adjust_scalar_min_max_vals``, ``branch_taken`` is ``is_scalar_branch_taken``
and ``refine`` is ``regs_refine_cond_op``. Written from reading those
functions; the results must match the kernel's log, and tests check that
they do on programs the kernel verifies.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..isa import opcodes as op
from .tnum import U32, U64, Tnum, s32, s64

S64_MIN, S64_MAX = -(1 << 63), (1 << 63) - 1
S32_MIN, S32_MAX = -(1 << 31), (1 << 31) - 1
U16_MAX = 0xFFFF


def _u32(x: int) -> int:
    return x & U32


@dataclass(slots=True)
class Scalar:
    var_off: Tnum
    smin: int = S64_MIN
    smax: int = S64_MAX
    umin: int = 0
    umax: int = U64
    s32_min: int = S32_MIN
    s32_max: int = S32_MAX
    u32_min: int = 0
    u32_max: int = U32

    # -- construction -------------------------------------------------------------
    @staticmethod
    def unknown() -> Scalar:
        return Scalar(Tnum.unknown())

    @staticmethod
    def const(value: int) -> Scalar:
        v = value & U64
        return Scalar(Tnum.const(v), s64(v), s64(v), v, v, s32(v), s32(v), _u32(v), _u32(v))

    def copy(self) -> Scalar:
        # field by field: dataclasses.replace is several times slower, and states are copied often
        return Scalar(self.var_off, self.smin, self.smax, self.umin, self.umax, self.s32_min, self.s32_max,
                      self.u32_min, self.u32_max)

    def mark_known(self, value: int) -> None:
        k = Scalar.const(value)
        self.var_off, self.smin, self.smax, self.umin, self.umax = k.var_off, k.smin, k.smax, k.umin, k.umax
        self.s32_min, self.s32_max, self.u32_min, self.u32_max = k.s32_min, k.s32_max, k.u32_min, k.u32_max

    def mark_known32(self, value: int) -> None:
        self.var_off = self.var_off.const_subreg(value)
        self.s32_min = self.s32_max = s32(value)
        self.u32_min = self.u32_max = _u32(value)

    def mark_unbounded(self) -> None:
        self.mark_unbounded64()
        self.mark_unbounded32()

    def mark_unbounded64(self) -> None:
        self.smin, self.smax, self.umin, self.umax = S64_MIN, S64_MAX, 0, U64

    def mark_unbounded32(self) -> None:
        self.s32_min, self.s32_max, self.u32_min, self.u32_max = S32_MIN, S32_MAX, 0, U32

    # -- queries ----------------------------------------------------------------------
    @property
    def is_const(self) -> bool:
        return self.var_off.is_const

    @property
    def value(self) -> int:
        return self.var_off.value

    def is_const_for(self, is_jmp32: bool) -> bool:
        return self.var_off.subreg_is_const if is_jmp32 else self.var_off.is_const

    def const_value(self, is_jmp32: bool) -> int:
        return self.var_off.value & U32 if is_jmp32 else self.var_off.value

    # -- keeping the views consistent ---------------------------------------------------
    # the bound functions below read the fields into locals and write them back once: they
    # run several times for every scalar an instruction changes
    def _update32(self) -> None:
        v = self.var_off
        value, mask = v.value & U32, v.mask & U32  # the subregister's tnum
        x = value | (mask & 0x80000000)
        lo = x - (1 << 32) if x >> 31 else x
        x = value | (mask & 0x7FFFFFFF)
        hi = x - (1 << 32) if x >> 31 else x
        if lo > self.s32_min:
            self.s32_min = lo
        if hi < self.s32_max:
            self.s32_max = hi
        if value > self.u32_min:
            self.u32_min = value
        if value | mask < self.u32_max:
            self.u32_max = value | mask

    def _update64(self) -> None:
        v = self.var_off
        value, mask = v.value, v.mask
        x = value | (mask & (1 << 63))
        smin = max(self.smin, x - (1 << 64) if x >> 63 else x)
        x = value | (mask & S64_MAX)
        smax = min(self.smax, x - (1 << 64) if x >> 63 else x)
        umin = max(self.umin, value)
        tmax = value | mask
        umax = min(self.umax, tmax)
        self.smin, self.smax, self.umin, self.umax = smin, smax, umin, umax
        # the unsigned range and the tnum may share a single value (6.18.y): then it is known
        nxt = v.step(umin)
        umin_in_tnum = (umin & ~mask & U64) == value
        if umin_in_tnum and nxt > umax:
            self.mark_known(umin)
        elif not umin_in_tnum and nxt == tmax:
            self.mark_known(tmax)
        elif not umin_in_tnum and nxt <= umax and v.step(nxt) > umax:
            self.mark_known(nxt)

    def update_bounds(self) -> None:
        self._update32()
        self._update64()

    def _deduce32(self) -> None:
        umin, umax, smin, smax = self.umin, self.umax, self.smin, self.smax
        u32_min, u32_max, s32_min, s32_max = self.u32_min, self.u32_max, self.s32_min, self.s32_max
        if (umin >> 32) == (umax >> 32):
            u32_min = max(u32_min, umin & U32)
            u32_max = min(u32_max, umax & U32)
            lo, hi = s32(umin), s32(umax)
            if lo <= hi:
                s32_min = max(s32_min, lo)
                s32_max = min(s32_max, hi)
        if (smin >> 32) == (smax >> 32):
            if smin & U32 <= smax & U32:
                u32_min = max(u32_min, smin & U32)
                u32_max = min(u32_max, smax & U32)
            lo, hi = s32(smin), s32(smax)
            if lo <= hi:
                s32_min = max(s32_min, lo)
                s32_max = min(s32_max, hi)
        if (((umin >> 32) & U32) + 1) & U32 == (umax >> 32) & U32:
            lo, hi = s32(umin), s32(umax)
            if lo < 0 <= hi:
                s32_min = max(s32_min, lo)
                s32_max = min(s32_max, hi)
        if ((((smin & U64) >> 32) & U32) + 1) & U32 == ((smax & U64) >> 32) & U32:
            lo, hi = s32(smin), s32(smax)
            if lo < 0 <= hi:
                s32_min = max(s32_min, lo)
                s32_max = min(s32_max, hi)
        lo, hi = s32(u32_min), s32(u32_max)
        if lo <= hi:
            s32_min = max(s32_min, lo)
            s32_max = min(s32_max, hi)
        if s32_min & U32 <= s32_max & U32:
            u32_min = max(s32_min & U32, u32_min)
            u32_max = min(s32_max & U32, u32_max)
        elif u32_max < s32_min & U32:
            # the signed range crosses the sign boundary (its two halves sit at both
            # ends of the u32 domain) and the unsigned one meets only [0, s32_max]
            # (6.18.44's backport of "bpf: Fix u32/s32 bounds when ranges cross min/max
            # boundary")
            s32_min = s32(u32_min)
            u32_max = min(u32_max, s32_max & U32)
        elif s32_max & U32 < u32_min:
            # ... or only [s32_min, -1]
            s32_max = s32(u32_max)
            u32_min = max(u32_min, s32_min & U32)
        self.u32_min, self.u32_max, self.s32_min, self.s32_max = u32_min, u32_max, s32_min, s32_max

    def _deduce64(self) -> None:
        umin, umax, smin, smax = self.umin, self.umax, self.smin, self.smax
        if s64(umin) <= s64(umax):
            smin = max(smin, s64(umin))
            smax = min(smax, s64(umax))
        if (smin & U64) <= (smax & U64):
            umin = max(smin & U64, umin)
            umax = min(smax & U64, umax)
        elif umax < smin & U64:
            # the signed range crosses the sign boundary and the unsigned one meets only
            # its non-negative half [0, smax] (6.17's "bpf: Improve bounds when s64
            # crosses sign boundary")
            smin = s64(umin)
            umax = min(umax, smax & U64)
        elif smax & U64 < umin:
            # ... or only its negative half [smin, -1]
            smax = s64(umax)
            umin = max(umin, smin & U64)
        self.umin, self.umax, self.smin, self.smax = umin, umax, smin, smax

    def _deduce_mixed(self) -> None:
        hi = ~U32 & U64
        umin, umax, smin, smax = self.umin, self.umax, self.smin, self.smax
        u32_min, u32_max, s32_min, s32_max = self.u32_min, self.u32_max, self.s32_min, self.s32_max
        umin = max(umin, (umin & hi) | u32_min)
        umax = min(umax, (umax & hi) | u32_max)
        smin = max(smin, s64((smin & hi) | u32_min))
        smax = min(smax, s64((smax & hi) | u32_max))
        lo32, hi32 = s32_min & U32, s32_max & U32
        if lo32 <= hi32:
            umin = max(umin, (umin & hi) | lo32)
            umax = min(umax, (umax & hi) | hi32)
            smin = max(smin, s64((smin & hi) | lo32))
            smax = min(smax, s64((smax & hi) | hi32))
        # a value that is its low half sign-extended (as after a sign-extending load or
        # move) has the 32-bit signed range when that range keeps one sign: 6.18.44 takes
        # a negative one too (checked against it: [-32768, -21701] after "if w s> K")
        if smin >= S32_MIN and smax <= S32_MAX and (s32_min >= 0 or s32_max < 0):
            smin, smax = s32_min, s32_max
            umin, umax = s32_min & U64, s32_max & U64
            self.var_off = self.var_off.intersect(Tnum.range(umin, umax))
        self.umin, self.umax, self.smin, self.smax = umin, umax, smin, smax

    def deduce_bounds(self) -> None:
        self._deduce32()
        self._deduce64()
        self._deduce_mixed()

    def bound_offset(self) -> None:
        var64 = self.var_off.intersect(Tnum.range(self.umin, self.umax))
        var32 = var64.subreg().intersect(Tnum.range(self.u32_min, self.u32_max))
        self.var_off = var64.clear_subreg().or_(var32)

    def sync(self) -> Scalar:
        """``reg_bounds_sync``."""
        self.update_bounds()
        self.deduce_bounds()
        self.deduce_bounds()
        self.bound_offset()
        self.update_bounds()
        return self

    def assign_32_into_64(self) -> None:
        self.umin, self.umax = self.u32_min, self.u32_max
        if 0 <= self.s32_min and 0 <= self.s32_max:
            self.smin, self.smax = self.s32_min, self.s32_max
        else:
            self.smin, self.smax = 0, U32

    def zext32(self) -> None:
        """``zext_32_to_64``: a 32-bit result zero-extended into the register."""
        self.var_off = self.var_off.subreg()
        self.assign_32_into_64()

    def coerce_to_size(self, size: int) -> None:
        """The value after a load or truncation to ``size`` bytes (``coerce_reg_to_size``)."""
        self.var_off = self.var_off.cast(size)
        mask = (1 << (size * 8)) - 1
        if (self.umin & ~mask) == (self.umax & ~mask):
            self.umin &= mask
            self.umax &= mask
        else:
            self.umin, self.umax = 0, mask
        self.smin, self.smax = self.umin, self.umax
        if size < 4:  # the 32-bit views were truncated with the rest
            self.mark_unbounded32()
        self.sync()

    def byte_swap(self, width: int, swap: bool) -> None:
        """``scalar_byte_swap`` then ``reg_bounds_sync``: a swap permutes the known bits
        (``tnum_bswap``) and loses the ranges, which the sync derives again from them;
        a 16- or 32-bit form then truncates to its width (swapped or not). No zero
        extension after: ``le64`` as an ALU32 instruction keeps all 64 bits."""
        if swap:
            self.var_off = self.var_off.bswap(width)
            self.mark_unbounded()
        if width < 64:
            self.coerce_to_size(width // 8)
        self.sync()

    # -- ALU ---------------------------------------------------------------------------
    def alu(self, opcode: int, src: Scalar, alu32: bool) -> None:
        """``adjust_scalar_min_max_vals`` for ``self (op)= src``."""
        operation = op.alu_op(opcode)
        bitness = 32 if alu32 else 64
        src_const = (src.var_off.subreg_is_const and src.s32_min == src.s32_max and src.u32_min == src.u32_max) \
            if alu32 else (src.var_off.is_const and src.smin == src.smax and src.umin == src.umax)
        if operation in (op.BPF_LSH, op.BPF_RSH, op.BPF_ARSH):
            if not (src_const and src.umax < bitness):
                self._become_unknown()
                return
        elif operation not in (op.BPF_ADD, op.BPF_SUB, op.BPF_AND, op.BPF_XOR, op.BPF_OR, op.BPF_MUL):
            self._become_unknown()
            return
        if operation == op.BPF_ADD:
            self._add32(src)
            self._add64(src)
            self.var_off = self.var_off.add(src.var_off)
        elif operation == op.BPF_SUB:
            self._sub32(src)
            self._sub64(src)
            self.var_off = self.var_off.sub(src.var_off)
        elif operation == op.BPF_MUL:
            self.var_off = self.var_off.mul(src.var_off)
            self._mul32(src)
            self._mul64(src)
        elif operation == op.BPF_AND:
            self.var_off = self.var_off.and_(src.var_off)
            self._bitwise32(src, "and")
            self._bitwise64(src, "and")
        elif operation == op.BPF_OR:
            self.var_off = self.var_off.or_(src.var_off)
            self._bitwise32(src, "or")
            self._bitwise64(src, "or")
        elif operation == op.BPF_XOR:
            self.var_off = self.var_off.xor(src.var_off)
            self._bitwise32(src, "xor")
            self._bitwise64(src, "xor")
        elif operation == op.BPF_LSH:
            self._lsh32(src) if alu32 else self._lsh64(src)
        elif operation == op.BPF_RSH:
            self._rsh32(src) if alu32 else self._rsh64(src)
        elif operation == op.BPF_ARSH:
            self._arsh32(src) if alu32 else self._arsh64(src)
        if alu32:
            self.zext32()
        self.sync()

    def pointer_add(self, src: Scalar) -> None:
        """A pointer's variable part plus ``src`` (``adjust_ptr_min_max_vals``:
        64-bit bounds and var_off only, the 32-bit views unbounded)."""
        self.mark_unbounded32()
        self._add64(src)
        self.var_off = self.var_off.add(src.var_off)
        self.sync()

    def pointer_sub(self, src: Scalar) -> None:
        """A pointer's variable part minus ``src`` (see ``pointer_add``)."""
        self.mark_unbounded32()
        self._sub64(src)
        self.var_off = self.var_off.sub(src.var_off)
        self.sync()

    def _become_unknown(self) -> None:
        self.var_off = Tnum.unknown()
        self.mark_unbounded()

    def _add32(self, src: Scalar) -> None:
        lo, hi = self.s32_min + src.s32_min, self.s32_max + src.s32_max
        if lo < S32_MIN or hi > S32_MAX or not (S32_MIN <= lo <= S32_MAX and S32_MIN <= hi <= S32_MAX):
            self.s32_min, self.s32_max = S32_MIN, S32_MAX
        else:
            self.s32_min, self.s32_max = lo, hi
        self.u32_min, self.u32_max = _wrapped_bounds(self.u32_min + src.u32_min, self.u32_max + src.u32_max, U32)

    def _add64(self, src: Scalar) -> None:
        lo, hi = self.smin + src.smin, self.smax + src.smax
        if lo < S64_MIN or lo > S64_MAX or hi < S64_MIN or hi > S64_MAX:
            self.smin, self.smax = S64_MIN, S64_MAX
        else:
            self.smin, self.smax = lo, hi
        self.umin, self.umax = _wrapped_bounds(self.umin + src.umin, self.umax + src.umax, U64)

    def _sub32(self, src: Scalar) -> None:
        lo, hi = self.s32_min - src.s32_max, self.s32_max - src.s32_min
        if lo < S32_MIN or lo > S32_MAX or hi < S32_MIN or hi > S32_MAX:
            self.s32_min, self.s32_max = S32_MIN, S32_MAX
        else:
            self.s32_min, self.s32_max = lo, hi
        self.u32_min, self.u32_max = _wrapped_bounds(self.u32_min - src.u32_max, self.u32_max - src.u32_min, U32)

    def _sub64(self, src: Scalar) -> None:
        lo, hi = self.smin - src.smax, self.smax - src.smin
        if lo < S64_MIN or lo > S64_MAX or hi < S64_MIN or hi > S64_MAX:
            self.smin, self.smax = S64_MIN, S64_MAX
        else:
            self.smin, self.smax = lo, hi
        self.umin, self.umax = _wrapped_bounds(self.umin - src.umax, self.umax - src.umin, U64)

    def _mul32(self, src: Scalar) -> None:
        hi, lo = self.u32_max * src.u32_max, self.u32_min * src.u32_min
        if hi > U32 or lo > U32:
            self.u32_min, self.u32_max = 0, U32
        else:
            self.u32_min, self.u32_max = lo, hi
        products = [x * y for x in (self.s32_min, self.s32_max) for y in (src.s32_min, src.s32_max)]
        if any(p < S32_MIN or p > S32_MAX for p in products):
            self.s32_min, self.s32_max = S32_MIN, S32_MAX
        else:
            self.s32_min, self.s32_max = min(products), max(products)

    def _mul64(self, src: Scalar) -> None:
        hi, lo = self.umax * src.umax, self.umin * src.umin
        if hi > U64 or lo > U64:
            self.umin, self.umax = 0, U64
        else:
            self.umin, self.umax = lo, hi
        products = [x * y for x in (self.smin, self.smax) for y in (src.smin, src.smax)]
        if any(p < S64_MIN or p > S64_MAX for p in products):
            self.smin, self.smax = S64_MIN, S64_MAX
        else:
            self.smin, self.smax = min(products), max(products)

    def _bitwise32(self, src: Scalar, kind: str) -> None:
        var32 = self.var_off.subreg()
        if src.var_off.subreg_is_const and self.var_off.subreg_is_const:
            self.mark_known32(var32.value)
            return
        if kind == "and":
            self.u32_min = var32.value
            self.u32_max = min(self.u32_max, src.u32_max)
        elif kind == "or":
            self.u32_min = max(self.u32_min, src.u32_min)
            self.u32_max = var32.value | var32.mask
        else:
            self.u32_min = var32.value
            self.u32_max = var32.value | var32.mask
        if s32(self.u32_min) <= s32(self.u32_max):
            self.s32_min, self.s32_max = s32(self.u32_min), s32(self.u32_max)
        else:
            self.s32_min, self.s32_max = S32_MIN, S32_MAX

    def _bitwise64(self, src: Scalar, kind: str) -> None:
        if src.var_off.is_const and self.var_off.is_const:
            self.mark_known(self.var_off.value)
            return
        if kind == "and":
            self.umin = self.var_off.value
            self.umax = min(self.umax, src.umax)
        elif kind == "or":
            self.umin = max(self.umin, src.umin)
            self.umax = self.var_off.value | self.var_off.mask
        else:
            self.umin = self.var_off.value
            self.umax = self.var_off.value | self.var_off.mask
        if s64(self.umin) <= s64(self.umax):
            self.smin, self.smax = s64(self.umin), s64(self.umax)
        else:
            self.smin, self.smax = S64_MIN, S64_MAX
        self.update_bounds()

    def _lsh32_bounds(self, umin_val: int, umax_val: int) -> None:
        self.s32_min, self.s32_max = S32_MIN, S32_MAX
        if umax_val > 31 or self.u32_max > (1 << (31 - umax_val)):
            self.u32_min, self.u32_max = 0, U32
        else:
            self.u32_min = (self.u32_min << umin_val) & U32
            self.u32_max = (self.u32_max << umax_val) & U32

    def _lsh32(self, src: Scalar) -> None:
        sub = self.var_off.subreg()
        self._lsh32_bounds(src.u32_min, src.u32_max)
        self.var_off = sub.lshift(src.u32_min).subreg()
        self.mark_unbounded64()
        self._update32()

    def _lsh64(self, src: Scalar) -> None:
        umin_val, umax_val = src.umin, src.umax
        # ``<<= 32`` then ``s>>= 32`` is how compilers sign-extend a subregister: the
        # 32-bit signed bounds shifted by exactly 32 keep their sign (6.18.y stable)
        if umin_val == 32 and umax_val == 32:
            self.smax, self.smin = self.s32_max << 32, self.s32_min << 32
        else:
            self.smax, self.smin = S64_MAX, S64_MIN
        if self.umax > (1 << (63 - umax_val)):
            self.umin, self.umax = 0, U64
        else:
            self.umin = (self.umin << umin_val) & U64
            self.umax = (self.umax << umax_val) & U64
        self._lsh32_bounds(umin_val, umax_val)
        self.var_off = self.var_off.lshift(umin_val)
        self.update_bounds()

    def _rsh32(self, src: Scalar) -> None:
        sub = self.var_off.subreg()
        self.s32_min, self.s32_max = S32_MIN, S32_MAX
        self.var_off = sub.rshift(src.u32_min)
        self.u32_min >>= src.u32_max
        self.u32_max >>= src.u32_min
        self.mark_unbounded64()
        self._update32()

    def _rsh64(self, src: Scalar) -> None:
        self.smin, self.smax = S64_MIN, S64_MAX
        self.var_off = self.var_off.rshift(src.umin)
        self.umin >>= src.umax
        self.umax >>= src.umin
        self.mark_unbounded32()
        self.update_bounds()

    def _arsh32(self, src: Scalar) -> None:
        shift = src.u32_min
        self.s32_min = s32(_u32(self.s32_min >> shift))
        self.s32_max = s32(_u32(self.s32_max >> shift))
        self.var_off = self.var_off.subreg().arshift(shift, 32)
        self.u32_min, self.u32_max = 0, U32
        self.mark_unbounded64()
        self._update32()

    def _arsh64(self, src: Scalar) -> None:
        shift = src.umin
        self.smin >>= shift
        self.smax >>= shift
        self.var_off = self.var_off.arshift(shift, 64)
        self.umin, self.umax = 0, U64
        self.mark_unbounded32()
        self.update_bounds()

    # -- branches ----------------------------------------------------------------------
    def _views(self, is_jmp32: bool):
        if is_jmp32:
            return self.var_off.subreg(), self.u32_min, self.u32_max, self.s32_min, self.s32_max
        return self.var_off, self.umin, self.umax, self.smin, self.smax


def branch_taken(a: Scalar, b: Scalar, opcode: int, is_jmp32: bool) -> int:
    """``is_scalar_branch_taken``: 1 taken, 0 not taken, -1 unknown."""
    t1, umin1, umax1, smin1, smax1 = a._views(is_jmp32)
    t2, umin2, umax2, smin2, smax2 = b._views(is_jmp32)
    operation = op.jmp_op(opcode)
    if operation in (op.BPF_JEQ, op.BPF_JNE):
        equal = operation == op.BPF_JEQ
        if t1.is_const and t2.is_const:
            return int((t1.value == t2.value) == equal)
        if umin1 > umax2 or umax1 < umin2 or smin1 > smax2 or smax1 < smin2:
            return 0 if equal else 1
        if not is_jmp32:
            if a.u32_min > b.u32_max or a.u32_max < b.u32_min or a.s32_min > b.s32_max or a.s32_max < b.s32_min:
                return 0 if equal else 1
        return -1
    if operation == op.BPF_JSET:
        if not b.is_const_for(is_jmp32):
            a, b, t1, t2 = b, a, t2, t1
        if not b.is_const_for(is_jmp32):
            return -1
        if (~t1.mask & t1.value) & t2.value:
            return 1
        if not ((t1.mask | t1.value) & t2.value):
            return 0
        return -1
    table = {
        op.BPF_JGT: (umin1 > umax2, umax1 <= umin2), op.BPF_JSGT: (smin1 > smax2, smax1 <= smin2),
        op.BPF_JLT: (umax1 < umin2, umin1 >= umax2), op.BPF_JSLT: (smax1 < smin2, smin1 >= smax2),
        op.BPF_JGE: (umin1 >= umax2, umax1 < umin2), op.BPF_JSGE: (smin1 >= smax2, smax1 < smin2),
        op.BPF_JLE: (umax1 <= umin2, umin1 > umax2), op.BPF_JSLE: (smax1 <= smin2, smin1 > smax2),
    }
    if operation in table:
        yes, no = table[operation]
        return 1 if yes else 0 if no else -1
    return -1


FLIP = {op.BPF_JEQ: op.BPF_JEQ, op.BPF_JNE: op.BPF_JNE, op.BPF_JSET: op.BPF_JSET,
        op.BPF_JGE: op.BPF_JLE, op.BPF_JGT: op.BPF_JLT, op.BPF_JLE: op.BPF_JGE, op.BPF_JLT: op.BPF_JGT,
        op.BPF_JSGE: op.BPF_JSLE, op.BPF_JSGT: op.BPF_JSLT, op.BPF_JSLE: op.BPF_JSGE, op.BPF_JSLT: op.BPF_JSGT}
JSET_NOT = op.BPF_JSET | op.BPF_X  # the kernel's stand-in for "not JSET"
REVERSE = {op.BPF_JEQ: op.BPF_JNE, op.BPF_JNE: op.BPF_JEQ, op.BPF_JSET: JSET_NOT, JSET_NOT: op.BPF_JSET,
           op.BPF_JGE: op.BPF_JLT, op.BPF_JGT: op.BPF_JLE, op.BPF_JLE: op.BPF_JGT, op.BPF_JLT: op.BPF_JGE,
           op.BPF_JSGE: op.BPF_JSLT, op.BPF_JSGT: op.BPF_JSLE, op.BPF_JSLE: op.BPF_JSGT, op.BPF_JSLT: op.BPF_JSGE}


def refine(a: Scalar, b: Scalar, opcode: int, is_jmp32: bool) -> None:
    """``regs_refine_cond_op``: narrow ``a`` and ``b`` knowing ``a (op) b`` holds."""
    if opcode in (op.BPF_JGE, op.BPF_JGT, op.BPF_JSGE, op.BPF_JSGT):
        opcode = FLIP[opcode]
        a, b = b, a
    if opcode == op.BPF_JEQ:
        if is_jmp32:
            a.u32_min, a.u32_max = max(a.u32_min, b.u32_min), min(a.u32_max, b.u32_max)
            a.s32_min, a.s32_max = max(a.s32_min, b.s32_min), min(a.s32_max, b.s32_max)
            b.u32_min, b.u32_max, b.s32_min, b.s32_max = a.u32_min, a.u32_max, a.s32_min, a.s32_max
            t = a.var_off.subreg().intersect(b.var_off.subreg())
            a.var_off = a.var_off.with_subreg(t)
            b.var_off = b.var_off.with_subreg(t)
        else:
            a.umin, a.umax = max(a.umin, b.umin), min(a.umax, b.umax)
            a.smin, a.smax = max(a.smin, b.smin), min(a.smax, b.smax)
            b.umin, b.umax, b.smin, b.smax = a.umin, a.umax, a.smin, a.smax
            a.var_off = a.var_off.intersect(b.var_off)
            b.var_off = a.var_off
    elif opcode == op.BPF_JNE:
        if not b.is_const_for(is_jmp32):
            a, b = b, a
        if not b.is_const_for(is_jmp32):
            return
        val = b.const_value(is_jmp32)
        if is_jmp32:
            if a.u32_min == _u32(val):
                a.u32_min += 1
            if a.u32_max == _u32(val):
                a.u32_max -= 1
            if a.s32_min == s32(val):
                a.s32_min += 1
            if a.s32_max == s32(val):
                a.s32_max -= 1
        else:
            if a.umin == val:
                a.umin += 1
            if a.umax == val:
                a.umax -= 1
            if a.smin == s64(val):
                a.smin += 1
            if a.smax == s64(val):
                a.smax -= 1
    elif opcode in (op.BPF_JSET, JSET_NOT):
        if not b.is_const_for(is_jmp32):
            a, b = b, a
        if not b.is_const_for(is_jmp32):
            return
        val = b.const_value(is_jmp32)
        if opcode == op.BPF_JSET:
            if not val or val & (val - 1):
                return
            if is_jmp32:
                a.var_off = a.var_off.with_subreg(a.var_off.subreg().or_(Tnum.const(val)))
            else:
                a.var_off = a.var_off.or_(Tnum.const(val))
        else:
            if is_jmp32:
                a.var_off = a.var_off.with_subreg(a.var_off.subreg().and_(Tnum.const(~val & U64)))
            else:
                a.var_off = a.var_off.and_(Tnum.const(~val & U64))
    elif opcode == op.BPF_JLE:
        if is_jmp32:
            a.u32_max = min(a.u32_max, b.u32_max)
            b.u32_min = max(a.u32_min, b.u32_min)
        else:
            a.umax = min(a.umax, b.umax)
            b.umin = max(a.umin, b.umin)
    elif opcode == op.BPF_JLT:
        if is_jmp32:
            a.u32_max = min(a.u32_max, (b.u32_max - 1) & U32)
            b.u32_min = max((a.u32_min + 1) & U32, b.u32_min)
        else:
            a.umax = min(a.umax, (b.umax - 1) & U64)
            b.umin = max((a.umin + 1) & U64, b.umin)
    elif opcode == op.BPF_JSLE:
        if is_jmp32:
            a.s32_max = min(a.s32_max, b.s32_max)
            b.s32_min = max(a.s32_min, b.s32_min)
        else:
            a.smax = min(a.smax, b.smax)
            b.smin = max(a.smin, b.smin)
    elif opcode == op.BPF_JSLT:
        if is_jmp32:
            a.s32_max = min(a.s32_max, s32(b.s32_max - 1))
            b.s32_min = max(s32(a.s32_min + 1), b.s32_min)
        else:
            a.smax = min(a.smax, s64(b.smax - 1))
            b.smin = max(s64(a.smin + 1), b.smin)


def _snum(v: int) -> str:
    return str(v) if -0x8000 <= v <= 0x7FFF else hex(v & U64)


def _unum(v: int) -> str:
    return str(v) if v <= 0xFFFF else hex(v)


def format_ranges(s: Scalar) -> list[str]:
    """The ``smin=...,umax=...`` items of a register print (``print_scalar_ranges``)."""
    def s32_print(v: int) -> int:
        return v if -0x8000 <= v <= 0x7FFF else v & U32

    items = [
        ["smin", s.smin, s.smin == S64_MIN], ["smax", s.smax, s.smax == S64_MAX],
        ["umin", s.umin, s.umin == 0], ["umax", s.umax, s.umax == U64],
        ["smin32", s32_print(s.s32_min), s.s32_min == S32_MIN], ["smax32", s32_print(s.s32_max), s.s32_max == S32_MAX],
        ["umin32", s.u32_min, s.u32_min == 0], ["umax32", s.u32_max, s.u32_max == U32],
    ]
    out = []
    for i, (name, val, omit) in enumerate(items):
        if omit:
            continue
        neg1 = name[0] == "s" and s64(val) < 0
        names = [name]
        for j in range(i + 2, len(items), 2):
            name2, val2, omit2 = items[j]
            if omit2 or (val2 & U64) != (val & U64):
                continue
            neg2 = name2[0] == "s" and s64(val2) < 0
            if neg2 != neg1:
                continue
            items[j][2] = True
            names.append(name2)
        text = _snum(s64(val)) if name[0] == "s" else _unum(val & U64)
        out.append("=".join(names) + "=" + text)
    return out


def _wrapped_bounds(lo: int, hi: int, limit: int) -> tuple[int, int]:
    """The unsigned bounds of a sum or difference whose exact ends are ``lo`` and ``hi``
    (``scalar_min_max_add``/``_sub``): when both ends wrap past ``limit`` (or below 0), or
    neither does, the wrapped ends still bound every result; when only one end wraps,
    nothing is known."""
    if (lo > limit or lo < 0) != (hi > limit or hi < 0):
        return 0, limit
    return lo & limit, hi & limit


def format_scalar(s: Scalar, *, precise: bool = False, id: int = 0, off: int = 0) -> str:
    """A scalar register as the kernel prints it: ``5``, ``scalar()``, ``scalar(id=1,umax=255,var_off=(0x0; 0xff))``."""
    prefix = "P" if precise else ""
    if s.var_off.is_const:
        return prefix + _snum(s64(s.var_off.value))
    add_const = 3 << 30  # rX += K after a copy (BPF_ADD_CONST64 or 32): the id and the delta
    items = [f"id={id & ~add_const}" + (f"{off:+d}" if id & add_const else "")] if id else []
    items += format_ranges(s)
    if not s.var_off.is_unknown:
        items.append(f"var_off={s.var_off}")
    return f"{prefix}scalar({','.join(items)})"


__all__ = ["Scalar", "branch_taken", "format_scalar", "refine", "REVERSE", "FLIP"]
