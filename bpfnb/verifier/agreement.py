"""bpfnb's verifier beside the running kernel's on one program: verdicts, the
first error line, the register/slot states both print on instruction lines, and
the whole log line for line (map addresses and the verification time aside:
``logtext.comparable_lines``).

A program the kernel *refuses* before verifying it (EPERM for fentry here, a map
it cannot create, ENOTSUPP with no word and no instruction processed) is not a reject: its ``kernel`` verdict is ``"refused"`` and it
is counted apart. An ``InternalError`` of ours is ``"internal"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InternalError, KernelError
from ..logtext import comparable_lines, compare_lines

ACCEPT, REJECT, REFUSED, INTERNAL = "accept", "reject", "refused", "internal"
# a message printed without its newline runs into the closing figures
RUN_ON_TIME = re.compile(r"verification time \d+ usec$")


def error_line(text: str | None) -> str | None:
    """The first error line, without the timing a message missing its newline runs into."""
    return RUN_ON_TIME.sub("", text) if text else text


@dataclass(frozen=True)
class Agreement:
    program: str
    kernel: str  # accept | reject | refused
    ours: str  # accept | reject | internal
    kernel_error: str | None = None
    our_error: str | None = None
    kernel_error_insn: int | None = None
    our_error_insn: int | None = None
    kernel_processed: int | None = None
    our_processed: int | None = None
    states_same: int = 0
    states_total: int = 0  # states the kernel printed
    log_lines_same: int = 0  # the kernel's log lines ours has, in order
    log_lines_total: int = 0  # lines of the kernel's log
    log_first_diff: tuple[int, str | None, str | None] | None = None  # line index, kernel's, ours

    @property
    def log_identical(self) -> bool:
        return self.judged and self.ours != INTERNAL and self.log_first_diff is None

    @property
    def judged(self) -> bool:
        return self.kernel != REFUSED

    @property
    def verdict_agrees(self) -> bool:
        return self.kernel == self.ours

    @property
    def error_agrees(self) -> bool:
        return self.verdict_agrees and self.kernel_error == self.our_error


def refused_before_verifying(loaded) -> bool:
    """The kernel failed the load without a word and verified no instruction (``processed 0
    insns``): e.g. ``check_struct_ops_btf_id`` returns ENOTSUPP for a struct_ops program
    without its struct before the walk. That is a refusal, not a verifier's reject."""
    from ..kernel.log import KernelLog
    from ..logtext import error_line as log_error_line

    return not loaded.ok and log_error_line(loaded.log) is None and KernelLog(loaded.log).processed in (0, None)


def printed_states(log: str) -> set[tuple[int, str, str]]:
    """(insn, register/slot, value) printed on instruction lines; precision marks ignored."""
    from ..kernel.log import KernelLog

    out = set()
    for line in KernelLog(log).lines:
        if line.kind == "insn":
            for name, value in line.state.items():
                out.add((line.insn, name, value.text[1:] if value.precise else value.text))
    return out


def _as_loaded(prog, *, btf_refused: bool = False):
    """The program with its maps as the loader created them for the kernel (sizes a
    tool sets at run time, e.g. a stack trace map's value): both sides judge the same
    maps. ``btf_refused``: the kernel refused the object's BTF (an extern function's
    linkage, say) and got the program without it, so without source lines, func info or
    global functions; ours judges it so too."""
    from dataclasses import replace

    from ..kernel.maps import prepared

    if btf_refused:
        prog = replace(prog, btf=None, func_info=(), line_info=())
    maps = tuple(prepared(m)[0] for m in getattr(prog, "maps", ()))
    return replace(prog, maps=maps) if maps != tuple(getattr(prog, "maps", ())) else prog


def compare_with_kernel(prog, *, log_level: int = 2) -> Agreement:
    """Verify ``prog`` both ways (the kernel must be available: ``bpfnb.kernel.available()``)."""
    from ..kernel import load
    from ..kernel.log import KernelLog
    from .verify import verify

    name = f"{prog.section}/{prog.name}" if getattr(prog, "section", None) else prog.name
    btf_refused = False
    try:
        with load(prog, log_level=log_level) as loaded:
            kernel_ok, kernel_error, kernel_log = loaded.ok, error_line(loaded.error), loaded.log
            if refused_before_verifying(loaded):
                kernel_ok = None
            btf_refused = loaded.btf_refused
    except KernelError as exc:
        kernel_ok, kernel_error, kernel_log = None, str(exc), ""
    try:
        ours = verify(_as_loaded(prog, btf_refused=btf_refused), log_level=log_level)
    except InternalError as exc:
        kernel_lines = comparable_lines(kernel_log)
        return Agreement(name, REFUSED if kernel_ok is None else (ACCEPT if kernel_ok else REJECT), INTERNAL,
                         kernel_error, str(exc), our_error_insn=exc.insn, log_lines_total=len(kernel_lines),
                         log_first_diff=(0, kernel_lines[0] if kernel_lines else None, None))
    if kernel_ok is None:
        return Agreement(name, REFUSED, ours.verdict, kernel_error, ours.error, our_error_insn=ours.error_insn,
                         our_processed=ours.processed)
    klog = KernelLog(kernel_log)
    theirs = printed_states(kernel_log)
    lines = compare_lines(comparable_lines(kernel_log), comparable_lines(ours.log))
    return Agreement(
        name, ACCEPT if kernel_ok else REJECT, ours.verdict, None if kernel_ok else kernel_error,
        ours.error, None if kernel_ok else klog.error_insn, ours.error_insn, klog.processed, ours.processed,
        len(theirs & printed_states(ours.log)), len(theirs), lines.same, lines.total, lines.first_diff)
