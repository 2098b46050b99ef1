"""The verifier log in the kernel's format (kernel/bpf/log.c and the printing
parts of verifier.c): ``verbose`` lines, ``print_insn_state`` after an
instruction at log level 2 (only the registers and slots the instruction
scratched),."""

from __future__ import annotations

from .state import MAX_BPF_STACK, State, format_frame

# where the state printed after an instruction starts (the kernel's BPF_LOG_ALIGNMENT
# and BPF_LOG_MIN_ALIGNMENT)
BPF_LOG_ALIGNMENT, BPF_LOG_MIN_ALIGNMENT = 40, 8
MAX_BPF_REG = 11


class Reject(Exception):
    """The verifier's refusal: the message lines it prints (``continues``: the last
    line has no newline, so the kernel's next line runs on from it)."""

    def __init__(self, message: str, *, continues: bool = False):
        super().__init__(message)
        self.continues = continues


class VerifierLog:
    """The lines written so far, the level, and what the current instruction scratched."""

    def __init__(self, level: int):
        self.level = level
        self.lines: list[str] = []
        self.insn_line_open = False  # the last line is an instruction the state may follow
        self.insn_line_len = 0
        self.scratch_regs: set[int] = set()
        self.scratch_slots: set[int] = set()
        self.glue_next = False  # the last line had no newline: the next text continues it

    def verbose(self, text: str) -> None:
        if self.glue_next and self.lines:
            self.lines[-1] += text
            self.glue_next = False
        else:
            self.lines.append(text)
        self.insn_line_open = False

    def print_insn(self, text: str) -> None:
        """The instruction line, which the state after it may continue."""
        self.lines.append(text)
        self.insn_line_open = True
        self.insn_line_len = len(text) + 1  # the kernel counts the newline

    def mark_verifier_state_scratched(self) -> None:
        self.scratch_regs = set(range(MAX_BPF_REG))
        self.scratch_slots = set(range(MAX_BPF_STACK // 8))

    def mark_verifier_state_clean(self) -> None:
        self.scratch_regs, self.scratch_slots = set(), set()

    def print_insn_state(self, state: State, insn: int) -> None:
        if not self.level or not (self.scratch_regs or self.scratch_slots):
            return
        text = format_frame(state.frame, regs=self.scratch_regs, slots=self.scratch_slots) + state.refs_text()
        if self.insn_line_open:
            pos = self.insn_line_len
            pad = max(pos + BPF_LOG_MIN_ALIGNMENT // 2, BPF_LOG_ALIGNMENT)
            pad = (pad + BPF_LOG_MIN_ALIGNMENT - 1) // BPF_LOG_MIN_ALIGNMENT * BPF_LOG_MIN_ALIGNMENT - pos - 1
            self.lines[-1] += " " * pad + ";" + text
            self.insn_line_open = False
        else:
            self.verbose(f"{insn}:{text}")
        self.mark_verifier_state_clean()

    def truncate(self, pos: int) -> None:
        """Forget what a finished path printed (level 1 keeps only the failing path)."""
        del self.lines[pos:]

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

