"""What native and emulated runs share: the VM's memory and helpers around the image.

A JIT run uses a ``Vm`` for everything but executing instructions: the arena
(ctx, packet, maps, kernel objects, a stack region for the image), map
addresses for 64-bit pseudo loads, and the helpers — the interpreter's own
``_helper`` called from the dispatcher on the same memory, so both engines
share one implementation of every helper.
"""

from __future__ import annotations

import numpy as np

from ...errors import JitError
from ...vm import interp
from ...vm.interp import FRAME_LINKAGE
from ...vm.vm import RunResult, Vm

# around the stack's region, a stack pointer is still the program's (a run-away recursion
# faults on the guard page with rsp up to a frame below it; a ``ret`` to a corrupted
# return address faults with rsp at the region's end)
STACK_SLOP = 64 * 1024


class Session:
    """One run's state: the output buffers and the helper dispatcher."""

    def __init__(self, vm: Vm, arena: np.ndarray):
        self.vm = vm
        self.arena = arena
        self.out = np.zeros(1 << 20, dtype=np.uint8)
        self.meta = np.zeros((4096, 8), dtype=np.int64)
        self.tables = vm.memory.tables()
        self.error: str | None = None
        self.regs = np.zeros(11, dtype=np.uint64)
        self._context = None

    def native_context(self) -> np.ndarray:
        """The compiled dispatcher's view of this run's buffers (``dispatch.context``)."""
        from . import dispatch

        if self._context is None:
            vm = self.vm
            base, size, perm = self.tables
            self._context = dispatch.context({
                "regs": self.regs, "arena": self.arena, "rbase": base, "rsize": size, "rperm": perm,
                "map_kind": vm.map_kind, "map_ks": vm.map_ks, "map_vs": vm.map_vs, "map_max": vm.map_max,
                "map_addr": vm.map_addr, "out": self.out, "meta": self.meta, "state": vm.state,
                "skb_layout": vm.skb_layout})
        return self._context

    def collect_native_status(self) -> None:
        """A helper failure the compiled dispatcher recorded, as ``dispatch`` would have."""
        from . import dispatch

        if self._context is not None and self._context[dispatch.STATUS] and not self.error:
            helper = int(self._context[dispatch.HELPER])
            self.error = f"helper #{helper}: {interp_status(int(self._context[dispatch.STATUS]))}"

    def dispatch(self, r1: int, r2: int, r3: int, r4: int, r5: int, helper: int) -> int:
        if self.error:
            return 0
        regs = self.regs
        regs[1], regs[2], regs[3], regs[4], regs[5] = r1, r2, r3, r4, r5
        vm = self.vm
        base, size, perm = self.tables
        try:
            status = interp._helper(helper, regs, self.arena, base, size, perm, vm.map_kind, vm.map_ks, vm.map_vs,
                                    vm.map_max, vm.map_addr, self.out, self.meta, vm.state, vm.skb_layout)
        except Exception as exc:  # never let an exception cross the native frames
            self.error = f"helper #{helper} raised {exc!r}"
            return 0
        if status != interp.OK:
            self.error = f"helper #{helper}: {interp_status(status)} (r1={r1:#x})"
            return 0
        return int(regs[0])


def interp_status(status: int) -> str:
    from ...vm.vm import STATUS

    return STATUS.get(status, str(status))


def prepare(vm: Vm, ctx, packet: bytes | None, r1: int | None, r2: int | None):
    """(ctx address, r2, stack top, mark): the image runs on the VM's stack region (its
    ``call`` pushes the return address at the top of the frame linkage, so the main
    function's rbp is the interpreter's r10); the run's ctx and packet are made here and
    ``vm.memory.release(mark)`` frees them."""
    mark = vm.memory.mark()
    ctx_addr = vm._context(ctx, packet) if r1 is None else r1
    return ctx_addr, r2 or 0, vm.frame_top + FRAME_LINKAGE, mark


def region_table(image) -> bytes:
    """The run's region table for ``image``'s region checks, as the data area holds it:
    (base, size, perm) of every region, the interpreter's ``Memory.tables``; empty for
    an image without checks."""
    from .runtime import MAX_REGIONS

    if not image.region_checks:
        return b""
    base, size, perm = image.vm.memory.tables()
    if len(base) > MAX_REGIONS:
        raise JitError(f"{image.vm.prog.where or image.vm.prog.name}: {len(base)} memory regions; a run with "
                       f"region checks holds at most {MAX_REGIONS}")
    return np.stack([base, size, perm], axis=1).astype(np.uint64).tobytes()


def stack_bounds(vm: Vm) -> tuple[int, int]:
    """Where a stack pointer belongs to the program (for the native fault handler)."""
    return vm.stack_base - STACK_SLOP, vm.frame_top + FRAME_LINKAGE + STACK_SLOP


def check_slack(vm: Vm, view: np.ndarray, image) -> None:
    """After a run of ``image``: a write on a region's page but outside the region (where no
    guard page reaches) is refused like a fault, though no instruction can be named."""
    hit = vm.memory.slack_writes(view)
    if hit is not None:
        addr, region = hit
        where = "before" if addr < region.base else "after"
        raise JitError(f"{vm.prog.where or vm.prog.name}: a write outside every region at address {addr:#x}, "
                       f"{abs(addr - region.base) if addr < region.base else addr - region.base - region.size} "
                       f"bytes {where} {region.name!r} (on its page, where no guard page can catch it; "
                       f"the run cannot name the instruction)")


def check_frame_linkage(vm: Vm, view: np.ndarray, stack_top: int, returns_to: int) -> None:
    """After a run: the saved frame pointer (0: entry() zeroes rbp) and the return address
    above the main function's r10 are as entry() left them; a program that wrote there
    (memory no region gives it, mapped because the CPU needs it) is refused like a fault."""
    from ...vm.memory import BASE

    at = stack_top - FRAME_LINKAGE - BASE
    saved_rbp, ret = (int.from_bytes(view[at + k:at + k + 8].tobytes(), "little") for k in (0, 8))
    if (saved_rbp, ret) != (0, returns_to):
        raise JitError(f"{vm.prog.where or vm.prog.name}: a write above the stack frame (r10 +0..+15, the "
                       f"saved frame pointer and return address): the run cannot name the instruction")


def result(vm: Vm, session: Session, r0: int, probe_faults: int, seconds: float) -> RunResult:
    if session.error:
        raise JitError(f"{vm.prog.where or vm.prog.name}: {session.error}")
    return vm._result(r0, 0, probe_faults, session.out, session.meta, seconds, 0)
