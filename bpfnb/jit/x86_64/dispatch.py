"""The helper dispatcher a native image calls, compiled (no Python on the way).

A helper thunk calls ``dispatch(r1, r2, r3, r4, r5, helper id, context)``; the
context (a 7th, stacked argument) is an ``int64`` array of the run's buffers:
their addresses and lengths, in ``FIELDS`` order, plus a status word. The
dispatcher rebuilds numpy views of them and calls the interpreter's own
``_helper`` — the same code as every other engine — so a helper call costs
what the helper costs, not a trip through the Python interpreter. A failing
helper records its status and every later call returns 0; the run reports it.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, types
from numba.core.extending import intrinsic

from ...vm import interp

# (name, dtype, number of dimensions) of each buffer; meta is (rows, 8)
FIELDS = (("regs", np.uint64), ("arena", np.uint8), ("rbase", np.int64), ("rsize", np.int64), ("rperm", np.int64),
          ("map_kind", np.int64), ("map_ks", np.int64), ("map_vs", np.int64), ("map_max", np.int64),
          ("map_addr", np.int64), ("out", np.uint8), ("meta", np.int64), ("state", np.int64),
          ("skb_layout", np.int64))
STATUS = 2 * len(FIELDS)  # the context's last word: 0, or the first failing helper's status
HELPER = STATUS + 1  # and which helper it was
CONTEXT_WORDS = HELPER + 1


@intrinsic
def _pointer(typingctx, address):
    """An integer address as a ``void *`` (for ``carray``)."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], ir.IntType(8).as_pointer())

    return types.voidptr(types.int64), codegen


SIGNATURE = types.uint64(types.uint64, types.uint64, types.uint64, types.uint64, types.uint64, types.uint64,
                         types.voidptr)


def _interp_stamp() -> int:
    """A digest of the interpreter's source. numba keys a cached function on its own
    file (and its closure's values), not on the functions it calls: without this a
    change to a helper in ``vm/interp.py`` left natively run helpers on the old code."""
    import hashlib
    from pathlib import Path

    return int(hashlib.sha256(Path(interp.__file__).read_bytes()).hexdigest()[:15], 16) or 1


def _compile(stamp: int):
    def _dispatch(r1, r2, r3, r4, r5, helper, context):
        if stamp == 0:  # never: only ties the compiled cache to the interpreter's source
            return 0
        c = carray(context, (CONTEXT_WORDS,), np.int64)
        if c[STATUS] != 0:
            return 0
        regs = carray(_pointer(c[0]), (c[1],), np.uint64)
        arena = carray(_pointer(c[2]), (c[3],), np.uint8)
        rbase = carray(_pointer(c[4]), (c[5],), np.int64)
        rsize = carray(_pointer(c[6]), (c[7],), np.int64)
        rperm = carray(_pointer(c[8]), (c[9],), np.int64)
        map_kind = carray(_pointer(c[10]), (c[11],), np.int64)
        map_ks = carray(_pointer(c[12]), (c[13],), np.int64)
        map_vs = carray(_pointer(c[14]), (c[15],), np.int64)
        map_max = carray(_pointer(c[16]), (c[17],), np.int64)
        map_addr = carray(_pointer(c[18]), (c[19],), np.int64)
        out = carray(_pointer(c[20]), (c[21],), np.uint8)
        meta = carray(_pointer(c[22]), (c[23] // 8, 8), np.int64)
        state = carray(_pointer(c[24]), (c[25],), np.int64)
        skb_layout = carray(_pointer(c[26]), (c[27],), np.int64)
        regs[1] = r1
        regs[2] = r2
        regs[3] = r3
        regs[4] = r4
        regs[5] = r5
        status = interp._helper(np.int64(helper), regs, arena, rbase, rsize, rperm, map_kind, map_ks, map_vs, map_max,
                                map_addr, out, meta, state, skb_layout)
        if status != interp.OK:
            c[STATUS] = status
            c[HELPER] = np.int64(helper)
            return 0
        return regs[0]

    return cfunc(SIGNATURE, cache=True)(_dispatch)


_dispatch = _compile(_interp_stamp())


def address() -> int:
    """The compiled dispatcher's entry point."""
    return _dispatch.address


def context(buffers: dict) -> np.ndarray:
    """The context array for ``buffers`` (name → contiguous numpy array); keep both alive
    while the image runs."""
    words = np.zeros(CONTEXT_WORDS, dtype=np.int64)
    for k, (name, dtype) in enumerate(FIELDS):
        array = buffers[name]
        if array.dtype != dtype or not array.flags.c_contiguous:
            raise TypeError(f"{name}: {array.dtype}, contiguous={array.flags.c_contiguous}; {np.dtype(dtype)} needed")
        words[2 * k], words[2 * k + 1] = array.ctypes.data, array.size
    return words
