"""Tristate numbers: what is known about the bits of a 64-bit value.

A ``Tnum(value, mask)`` says: bits set in ``mask`` are unknown; the others
equal the bits of ``value``. The operations follow the Linux verifier's
``kernel/bpf/tnum.c`` (the same results bit for bit, so our register states
print as the kernel's do); the code is ours.
"""

from __future__ import annotations

from dataclasses import dataclass

U64 = (1 << 64) - 1
U32 = (1 << 32) - 1


def s64(x: int) -> int:
    x &= U64
    return x - (1 << 64) if x >> 63 else x


def s32(x: int) -> int:
    x &= U32
    return x - (1 << 32) if x >> 31 else x


@dataclass(frozen=True, slots=True)
class Tnum:
    value: int
    mask: int

    @staticmethod
    def const(value: int) -> Tnum:
        return Tnum(value & U64, 0)

    @staticmethod
    def unknown() -> Tnum:
        return Tnum(0, U64)

    @staticmethod
    def range(lo: int, hi: int) -> Tnum:
        """The tightest tnum holding every value of [lo, hi] (unsigned)."""
        lo &= U64
        hi &= U64
        chi = lo ^ hi
        bits = chi.bit_length()
        if bits > 63:
            return Tnum.unknown()
        delta = (1 << bits) - 1
        return Tnum(lo & ~delta & U64, delta)

    @property
    def is_const(self) -> bool:
        return self.mask == 0

    @property
    def is_unknown(self) -> bool:
        return self.mask == U64

    def equals_const(self, value: int) -> bool:
        return self.mask == 0 and self.value == (value & U64)

    # -- arithmetic -----------------------------------------------------------
    def add(self, b: Tnum) -> Tnum:
        sm = (self.mask + b.mask) & U64
        sv = (self.value + b.value) & U64
        sigma = (sm + sv) & U64
        chi = sigma ^ sv
        mu = chi | self.mask | b.mask
        return Tnum(sv & ~mu & U64, mu)

    def sub(self, b: Tnum) -> Tnum:
        dv = (self.value - b.value) & U64
        alpha = (dv + self.mask) & U64
        beta = (dv - b.mask) & U64
        chi = alpha ^ beta
        mu = chi | self.mask | b.mask
        return Tnum(dv & ~mu & U64, mu)

    def neg(self) -> Tnum:
        return Tnum.const(0).sub(self)

    def and_(self, b: Tnum) -> Tnum:
        alpha = self.value | self.mask
        beta = b.value | b.mask
        v = self.value & b.value
        return Tnum(v, alpha & beta & ~v & U64)

    def or_(self, b: Tnum) -> Tnum:
        v = self.value | b.value
        mu = self.mask | b.mask
        return Tnum(v, mu & ~v & U64)

    def xor(self, b: Tnum) -> Tnum:
        v = self.value ^ b.value
        mu = self.mask | b.mask
        return Tnum(v & ~mu & U64, mu)

    def mul(self, b: Tnum) -> Tnum:
        """Long multiplication over partially known bits (the kernel's tnum_mul), on
        plain integers: ``tnum_add`` of the partial products inlined, no Tnum per bit."""
        av, am, bv, bm = self.value, self.mask, b.value, b.mask
        acc_v = (av * bv) & U64
        mv = mm = 0  # acc_m
        while av or am:
            if av & 1:
                addend = bm
            elif am & 1:
                addend = bv | bm
            else:
                addend = None
            if addend is not None:  # acc_m = tnum_add(acc_m, TNUM(0, addend))
                sm = (mm + addend) & U64
                sigma = (sm + mv) & U64
                mu = (sigma ^ mv) | mm | addend
                mv, mm = mv & ~mu & U64, mu
            av, am = av >> 1, am >> 1
            bv, bm = (bv << 1) & U64, (bm << 1) & U64
        return Tnum(acc_v, 0).add(Tnum(mv, mm))

    def lshift(self, shift: int) -> Tnum:
        return Tnum((self.value << shift) & U64, (self.mask << shift) & U64)

    def rshift(self, shift: int) -> Tnum:
        return Tnum(self.value >> shift, self.mask >> shift)

    def arshift(self, shift: int, bitness: int) -> Tnum:
        if bitness == 32:
            return Tnum((s32(self.value) >> shift) & U32, (s32(self.mask) >> shift) & U32)
        return Tnum((s64(self.value) >> shift) & U64, (s64(self.mask) >> shift) & U64)

    # -- set operations ---------------------------------------------------------
    def intersect(self, b: Tnum) -> Tnum:
        v = self.value | b.value
        mu = self.mask & b.mask
        return Tnum(v & ~mu & U64, mu)

    def union(self, b: Tnum) -> Tnum:
        v = self.value & b.value
        mu = self.mask | b.mask | (self.value ^ b.value)
        return Tnum(v & ~mu & U64, mu)

    def contains(self, b: Tnum) -> bool:
        """``tnum_in``: every value ``b`` may take, ``self`` may take too."""
        if b.mask & ~self.mask & U64:
            return False
        return self.value == (b.value & ~self.mask & U64)

    def step(self, z: int) -> int:
        """``tnum_step``: the smallest value ``self`` may take above ``z`` (its largest
        when ``z`` is at or past it, its smallest when ``z`` is below it). A member is
        ``value + s`` for a submask ``s`` of ``mask``; the smallest ``s`` above ``d = z -
        value`` is ``d`` counted up by one inside the mask, after filling every bit
        below ``d``'s highest bit outside the mask."""
        tmax = self.value | self.mask
        if z >= tmax:
            return tmax
        if z < self.value:
            return self.value
        d = z - self.value
        below = (1 << (d & ~self.mask & U64).bit_length()) - 1
        filled = d | below | (~self.mask & U64)
        return self.value | ((filled + 1) & self.mask)

    def cast(self, size: int) -> Tnum:
        keep = (1 << (size * 8)) - 1
        return Tnum(self.value & keep, self.mask & keep)

    def bswap(self, width: int) -> Tnum:
        """``tnum_bswap16/32/64``: the low ``width`` bits with their bytes reversed
        (a byte swap permutes bits, so known bits stay known)."""
        size = width // 8
        keep = (1 << width) - 1
        return Tnum(int.from_bytes((self.value & keep).to_bytes(size, "little"), "big"),
                    int.from_bytes((self.mask & keep).to_bytes(size, "little"), "big"))

    # -- subregisters -------------------------------------------------------------
    def subreg(self) -> Tnum:
        return self.cast(4)

    def clear_subreg(self) -> Tnum:
        return self.rshift(32).lshift(32)

    def with_subreg(self, sub: Tnum) -> Tnum:
        return self.clear_subreg().or_(sub.subreg())

    def const_subreg(self, value: int) -> Tnum:
        return self.with_subreg(Tnum.const(value & U32))

    @property
    def subreg_is_const(self) -> bool:
        return (self.mask & U32) == 0

    def is_aligned(self, size: int) -> bool:
        if not size:
            return True
        return not ((self.value | self.mask) & (size - 1))

    def __str__(self) -> str:
        """As the kernel's ``tnum_strn``: a constant alone, else ``(value; mask)``."""
        if self.mask == 0:
            return str(self.value) if self.value <= 0xFFFF else hex(self.value)
        return f"({self.value:#x}; {self.mask:#x})"
