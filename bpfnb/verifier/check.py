"""The walk: ``do_check`` over every path, one instruction at a time.

Follows the structure and the messages of Linux 6.18's kernel/bpf/verifier.c
(check_cfg, do_check, check_alu_op, check_mem_access, check_cond_jmp_op,
check_helper_call, is_state_visited), with the privileges of root. Writes
the log in the kernel's level-1/2 format and records every step in a
``Trace``. Written from reading the kernel; tests compare with the running
kernel.
"""

from __future__ import annotations

import time

from ..isa import Insn
from ..isa import opcodes as op
from ..isa.disasm import format_insn
from ..isa.effects import effects
from ..isa.helpers import HELPER_NAMES, helper_name
from ..isa.valid import unknown_opcode
from .ctx import ctx_access
from .helper_availability import AVAILABLE
from .helper_protos import PROTOS
from .regstate import (
    CONST_PTR_TO_MAP,
    NOT_INIT,
    PACKET_TYPES,
    PTR_TO_BTF_ID,
    PTR_TO_CTX,
    PTR_TO_MAP_VALUE,
    PTR_TO_MEM,
    PTR_TO_PACKET,
    PTR_TO_PACKET_END,
    PTR_TO_PACKET_META,
    PTR_TO_STACK,
    SCALAR,
    Reg,
    const_reg,
    format_reg,
    scalar_reg,
)
from .scalar import REVERSE, Scalar, branch_taken, refine
from .state import (
    INVALID,
    MAX_BPF_STACK,
    MISC,
    SPILL,
    ZERO,
    Slot,
    State,
    format_frame,
    initial_state,
)
from .tnum import U64, Tnum, s64
from .trace import Step, Trace

TAIL_CALL = 12  # bpf_tail_call
COMPLEXITY_LIMIT = 1_000_000
ALIGNMENT, MIN_ALIGNMENT = 40, 8
ADD_CONST = 1 << 31
ALU_STRING = {op.BPF_ADD: "+=", op.BPF_SUB: "-=", op.BPF_MUL: "*=", op.BPF_DIV: "/=", op.BPF_OR: "|=",
              op.BPF_AND: "&=", op.BPF_LSH: "<<=", op.BPF_RSH: ">>=", op.BPF_NEG: "neg", op.BPF_MOD: "%=",
              op.BPF_XOR: "^=", op.BPF_MOV: "=", op.BPF_ARSH: "s>>=", op.BPF_END: "endian"}
BPF_F_RDONLY_PROG = 1 << 7


class Reject(Exception):
    """The verifier's refusal: the message lines it prints."""


def _size(code: int) -> int:
    return op.SIZE_BYTES[code & 0x18]


class Checker:
    def __init__(self, prog, *, log_level: int = 2, limit: int = COMPLEXITY_LIMIT, record_states: bool = True):
        self.prog = prog
        self.record_states = record_states  # False: no trace (verdicts and facts only, faster)
        self.insns: tuple[Insn, ...] = prog.insns
        self.level = log_level
        self.limit = limit
        self.lines: list[str] = []
        self.insn_line_open = False
        self.insn_line_len = 0
        self.scratch_regs: set[int] = set()
        self.scratch_slots: set[int] = set()
        self.processed = 0
        self.id_gen = 0
        self.pending: list[tuple[State, int, int, int]] = []  # state, insn, from insn, log position
        self.explored: dict[int, list[State]] = {}
        self.total_states = self.peak_states = self.max_states_per_insn = 0
        self.jmps_processed = self.prev_jmps_processed = self.prev_insn_processed = 0
        self.checkpoints: tuple | None = None  # states kept on the current path (a linked list)
        self._path_cache: tuple | None = None  # (checkpoints node, the ids on it)
        self._quick_keys: dict[int, tuple] = {}  # kept state id -> _quick_key (fixed once kept)
        self.sub_stack_depth: dict[int, int] = {}
        self.force_print_state = False
        self.trace = Trace()
        self.probe_mem: set[int] = set()
        # bpf_tail_call sites: (map, constant key) while every visit agrees, None once not
        # (the kernel's map_key_state: such a call becomes a direct, patchable jump)
        self.tail_call_keys: dict[int, tuple | None] = {}
        self.error: str | None = None
        self.error_insn: int | None = None
        self.stack_depth = 0
        self.prev_linfo = None
        self.line_at = {li.insn: li for li in getattr(prog, "line_info", ())}
        self.cur_prev_step: int | None = None
        self.entry_note = ""
        self.entry_state: tuple[dict, dict] | None = None

    # -- log --------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.lines.append(text)
        self.insn_line_open = False

    def scratch_all(self) -> None:
        self.scratch_regs = set(range(11))
        self.scratch_slots = set(range(MAX_BPF_STACK // 8))

    def print_insn_state(self, state: State, insn: int) -> None:
        if not self.level or not (self.scratch_regs or self.scratch_slots):
            return
        text = format_frame(state.frame, regs=self.scratch_regs, slots=self.scratch_slots)
        if self.insn_line_open:
            pos = self.insn_line_len
            pad = max(pos + MIN_ALIGNMENT // 2, ALIGNMENT)
            pad = (pad + MIN_ALIGNMENT - 1) // MIN_ALIGNMENT * MIN_ALIGNMENT - pos - 1
            self.lines[-1] += " " * pad + ";" + text
            self.insn_line_open = False
        else:
            self.say(f"{insn}:{text}")
        self.scratch_regs, self.scratch_slots = set(), set()

    def fail(self, message: str) -> None:
        raise Reject(message)

    # -- registers ----------------------------------------------------------------------
    def read_reg(self, state: State, regno: int) -> Reg:
        if regno >= 11:
            self.fail(f"R{regno} is invalid")
        self.scratch_regs.add(regno)
        reg = state.regs[regno]
        if reg.type == NOT_INIT:
            self.fail(f"R{regno} !read_ok")
        return reg

    def write_reg(self, state: State, regno: int, reg: Reg) -> None:
        if regno >= 11:
            self.fail(f"R{regno} is invalid")
        if regno == 10:
            self.fail("frame pointer is read only")
        self.scratch_regs.add(regno)
        reg.frameno = reg.frameno if reg.type == PTR_TO_STACK else 0
        state.regs[regno] = reg

    def new_id(self) -> int:
        self.id_gen += 1
        return self.id_gen

    def assign_scalar_id(self, reg: Reg) -> None:
        if reg.type == SCALAR and not reg.id and not reg.s.var_off.is_const:
            reg.id = self.new_id()

    # -- the walk -----------------------------------------------------------------------
    def run(self) -> None:
        start = time.perf_counter()
        try:
            self.check_cfg()
            starts = self.subprog_starts()
            if self.level >= 2:
                for k, start in enumerate(starts):
                    self.say(f"func#{k} @{start}")
                self.print_liveness()
            self.do_check()
            for sub in starts[1:]:
                if self.is_global(sub):
                    self.validate_global(sub)
        except (IndexError, KeyError, AttributeError, TypeError, ValueError) as exc:  # never a crash
            self.say(f"bpfnb internal error at insn {self.error_insn}: {type(exc).__name__}: {exc}")
            self.error = f"bpfnb internal error: {type(exc).__name__}: {exc}"
        except Reject as exc:
            start = getattr(self, "insn_log_pos", len(self.lines))
            for line in str(exc).splitlines():
                self.say(line)
            printed = [ln for ln in self.lines[start:] if ln.strip()]
            self.error = printed[0] if printed else (str(exc).splitlines()[0] if str(exc) else "rejected")
            if self.error_insn is None and self.trace.steps:
                self.error_insn = self.trace.steps[-1].insn
            state = getattr(self, "current_state", None)
            if state is not None and self.error_insn is not None:
                self.record(state, self.error_insn, "error", self.error)
        self.time_us = int((time.perf_counter() - start) * 1e6)
        self.say(f"verification time {self.time_us} usec")
        depths = [self.sub_stack_depth.get(start, 0) for start in self.subprog_starts()] or [self.stack_depth]
        self.say("stack depth " + "+".join(str(d) for d in depths))
        self.say(f"processed {self.processed} insns (limit {COMPLEXITY_LIMIT}) max_states_per_insn "
                 f"{self.max_states_per_insn} total_states {self.total_states} peak_states {self.peak_states} "
                 f"mark_read 0")


    def check_cfg(self, reachability: bool = True) -> None:
        insns = self.insns
        n = len(insns)
        if n == 0:
            self.fail("last insn is not an exit or jmp")
        for i, insn in enumerate(insns):
            if insn.code & 0x07 in (op.BPF_JMP, op.BPF_JMP32):
                kind = insn.code & 0xF0
                if kind in (op.BPF_CALL, op.BPF_EXIT) and not (kind == op.BPF_CALL and insn.src == op.BPF_PSEUDO_CALL):
                    continue
                if insn.code == (op.BPF_JMP32 | op.BPF_JA):
                    target = i + insn.imm + 1
                elif kind == op.BPF_CALL:
                    target = i + insn.imm + 1
                else:
                    target = i + insn.off + 1
                if not 0 <= target < n:
                    self.fail(f"jump out of range from insn {i} to {target}")
                if kind != op.BPF_CALL and self.subprog_of(target) != self.subprog_of(i):
                    self.fail(f"jump out of range from insn {i} to {target}")  # into another function
        ends = self.subprog_starts()[1:] + [n]
        for end in ends:
            if insns[end - 1].code not in (op.BPF_JMP | op.BPF_EXIT, op.BPF_JMP | op.BPF_JA, op.BPF_JMP32 | op.BPF_JA):
                self.fail("last insn is not an exit or jmp")
        if not reachability:
            self.check_ld_imm64_targets()
            return
        # reachability over the flow graph (calls also fall through)
        seen = [False] * n
        work = [0]
        while work:
            i = work.pop()
            if not 0 <= i < n or seen[i]:
                continue
            seen[i] = True
            insn = insns[i]
            cls = insn.code & 0x07
            if insn.is_ld_imm64:
                if i + 1 >= n:
                    self.fail("invalid BPF_LD_IMM insn")
                work.append(i + 2)
                if i + 1 < n:
                    seen[i + 1] = True
                continue
            if cls in (op.BPF_JMP, op.BPF_JMP32):
                kind = insn.code & 0xF0
                if kind == op.BPF_EXIT:
                    continue
                if kind == op.BPF_CALL:
                    work.append(i + 1)
                    if insn.src == op.BPF_PSEUDO_CALL:
                        work.append(i + insn.imm + 1)
                    continue
                if kind == op.BPF_JA:
                    work.append(i + (insn.imm if cls == op.BPF_JMP32 else insn.off) + 1)
                    continue
                work += [i + 1, i + insn.off + 1]
                continue
            work.append(i + 1)
        for i in range(n):
            if not seen[i]:
                self.fail(f"unreachable insn {i}")
        self.check_ld_imm64_targets()

    def check_ld_imm64_targets(self) -> None:
        insns = self.insns
        for i, insn in enumerate(insns):
            if insn.is_ld_imm64:
                for j, other in enumerate(insns):
                    if other.code & 0x07 in (op.BPF_JMP, op.BPF_JMP32) and other.code & 0xF0 not in (
                            op.BPF_CALL, op.BPF_EXIT) and j + other.off + 1 == i + 1:
                        self.fail(f"jump into the middle of ldimm64 insn {i + 1}")

    def subprog_starts(self) -> list[int]:
        if not hasattr(self, "_starts"):
            starts = {0} | {i + insn.imm + 1 for i, insn in enumerate(self.insns)
                            if insn.code == op.BPF_JMP | op.BPF_CALL and insn.src == op.BPF_PSEUDO_CALL}
            self._starts = sorted(s for s in starts if 0 <= s < len(self.insns))
        return self._starts

    def subprog_of(self, insn: int) -> int:
        return max((s for s in self.subprog_starts() if s <= insn), default=0)

    def func_name(self, start: int) -> str:
        for fi in getattr(self.prog, "func_info", ()):
            if fi.insn == start:
                return fi.name
        return f"func#{self.subprog_starts().index(start)}"

    def is_global(self, start: int) -> bool:
        btf = getattr(self.prog, "btf", None)
        for fi in getattr(self.prog, "func_info", ()):
            if fi.insn == start and btf is not None:
                return btf.type(fi.type_id).linkage == 1
        return False

    def validate_global(self, start: int) -> None:
        """A global function is verified once, for any arguments of its prototype."""
        index = self.subprog_starts().index(start)
        name = self.func_name(start)
        self.say(f"Validating {name}() func#{index}...")
        state = initial_state()
        state.regs[1] = Reg()
        btf = self.prog.btf
        proto = None
        for fi in self.prog.func_info:
            if fi.insn == start:
                proto = btf.type(btf.type(fi.type_id).type)
        for k, param in enumerate(proto.params if proto is not None else ()):
            t = btf.type(btf.resolve(param.type))
            state.regs[k + 1] = scalar_reg() if t.kind in ("int", "enum", "enum64") else Reg(PTR_TO_CTX, Scalar.const(0))
        self.pending.clear()
        self.do_check(state, start)
        self.say(f"Func#{index} ('{name}') is safe for any args that match its prototype")

    def live_in(self) -> list[set[int]]:
        """Registers live before each instruction (backward data flow)."""
        n = len(self.insns)
        live: list[set[int]] = [set() for _ in range(n + 1)]
        succ = {}
        for i, insn in enumerate(self.insns):
            cls = insn.code & 0x07
            kind = insn.code & 0xF0
            if insn.is_ld_imm64:
                succ[i] = [i + 2]
            elif cls in (op.BPF_JMP, op.BPF_JMP32) and kind == op.BPF_EXIT:
                succ[i] = []
            elif cls in (op.BPF_JMP, op.BPF_JMP32) and kind == op.BPF_JA:
                succ[i] = [i + (insn.imm if cls == op.BPF_JMP32 else insn.off) + 1]
            elif cls in (op.BPF_JMP, op.BPF_JMP32) and kind != op.BPF_CALL:
                succ[i] = [i + 1, i + insn.off + 1]
            else:
                succ[i] = [i + 1]
        # whether any instruction reachable from i may read memory (and so the stack)
        reads = [insn.code & 0x07 == op.BPF_LDX or insn.code == op.BPF_JMP | op.BPF_CALL
                 or (insn.code & 0x07 == op.BPF_STX and insn.code & 0xE0 == op.BPF_ATOMIC) for insn in self.insns]
        self.stack_read_after = [False] * (n + 1)
        changed = True
        while changed:
            changed = False
            for i in range(n - 1, -1, -1):
                value = reads[i] or any(self.stack_read_after[x] for x in succ[i] if 0 <= x < n)
                if value != self.stack_read_after[i]:
                    self.stack_read_after[i] = value
                    changed = True
        changed = True
        while changed:
            changed = False
            for i in range(n - 1, -1, -1):
                insn = self.insns[i]
                if i > 0 and self.insns[i - 1].is_ld_imm64:
                    continue
                fx = effects(insn, helper_args=len(PROTOS.get(insn.imm, PROTOS[1]).args)
                             if insn.code == op.BPF_JMP | op.BPF_CALL and insn.src == 0 else 5)
                out: set[int] = set()
                for s in succ[i]:
                    if 0 <= s < n:
                        out |= live[s]
                written = {int(r[1:]) for r in fx.registers_written}
                read = {int(r[1:]) for r in fx.registers_read}
                new = (out - written) | read
                new.discard(10)
                if new != live[i]:
                    live[i] = new
                    changed = True
        return live

    def print_liveness(self) -> None:
        self.live = self.live_in()
        self.say("Live regs before insn:")
        i = 0
        while i < len(self.insns):
            insn = self.insns[i]
            nxt = self.insns[i + 1] if insn.is_ld_imm64 and i + 1 < len(self.insns) else None
            marks = "".join(str(r) if r in self.live[i] else "." for r in range(10))
            self.say(f"{i:>7}: {marks} {format_insn(insn, nxt)}")
            i += 2 if insn.is_ld_imm64 else 1

    def do_check(self, state: State | None = None, start: int = 0) -> None:
        if not hasattr(self, "live"):
            self.live = self.live_in()
        state = state or initial_state()
        self.scratch_all()
        insn_idx, prev_insn = start, -1
        do_print_state = False
        self.cur_prev_step = None
        while True:
            self.processed += 1
            if self.processed > self.limit:
                self.fail(f"BPF program is too large. Processed {self.processed} insn")
            if self.is_prune_point(insn_idx):
                if self.is_state_visited(state, insn_idx):
                    if self.level:
                        if do_print_state:
                            self.say("")
                            self.say(f"from {prev_insn} to {insn_idx}: safe")
                        else:
                            self.say(f"{insn_idx}: safe")
                    self.record(state, insn_idx, "pruned", "safe: the state is within one already verified here")
                    popped = self.pop()
                    if popped is None:
                        return
                    state, insn_idx, prev_insn = popped
                    do_print_state = True
                    continue
            if self.level >= 2 and do_print_state:
                self.say("")
                self.say(f"from {prev_insn} to {insn_idx}:{format_frame(state.frame)}")
                do_print_state = False
                self.scratch_regs, self.scratch_slots = set(), set()
            if self.level:
                self.print_insn_state(state, insn_idx)
                li = self.line_at.get(insn_idx)
                if li is not None and li is not self.prev_linfo and li.text.strip():
                    self.say(f"; {li.text.strip()} @ {li.file.rsplit('/', 1)[-1]}:{li.line}")
                    self.prev_linfo = li
                insn = self.insns[insn_idx]
                nxt = self.insns[insn_idx + 1] if insn.is_ld_imm64 and insn_idx + 1 < len(self.insns) else None
                text = f"{insn_idx}: {format_insn(insn, nxt)}"
                self.lines.append(text)
                self.insn_line_open = True
                self.insn_line_len = len(text) + 1  # the kernel counts the newline
            self.error_insn = insn_idx
            self.current_state = state
            self.insn_log_pos = len(self.lines)
            result = self.step(state, insn_idx)
            self.error_insn = None
            if result is None:  # the path ended
                popped = self.pop()
                if popped is None:
                    return
                state, insn_idx, prev_insn = popped
                do_print_state = True
                continue
            prev_insn, insn_idx = insn_idx, result
            if self.force_print_state:
                do_print_state, self.force_print_state = True, False

    def record(self, state: State, insn: int, event: str | None = None, note: str = "") -> None:
        if not self.record_states:
            self.entry_note, self.entry_state = "", None
            return
        regs = {f"R{i}": format_reg(r, state.frame.frameno) for i, r in enumerate(state.regs) if r.type != NOT_INIT}
        stack = {}
        for spi in range(state.frame.allocated_slots):
            slot = state.frame.stack.get(spi)
            if slot is not None and any(t != INVALID for t in slot.types):
                from .state import format_slot

                stack[f"fp{-(spi + 1) * 8}"] = format_slot(slot, state.frame.frameno)
        entry_regs, entry_stack = self.entry_state if self.entry_state else (None, None)
        step = Step(len(self.trace.steps), insn, self.cur_prev_step, regs, stack, event,
                    note or self.entry_note, entry_regs, entry_stack, state.frame.frameno)
        self.trace.steps.append(step)
        self.cur_prev_step = step.step
        self.entry_note, self.entry_state = "", None

    def push(self, state: State, insn: int, from_insn: int) -> None:
        self.pending.append((state, insn, from_insn, len(self.lines), self.cur_prev_step, self.checkpoints))

    def pop(self):
        if not self.pending:
            return None
        state, insn, from_insn, log_pos, prev_step, self.checkpoints = self.pending.pop()
        if self.level == 1:
            del self.lines[log_pos:]
        self.cur_prev_step = prev_step
        self.entry_note = f"from {from_insn} to {insn}"
        regs = {f"R{i}": format_reg(r, state.frame.frameno) for i, r in enumerate(state.regs) if r.type != NOT_INIT}
        self.entry_state = (regs, None)
        self.scratch_regs, self.scratch_slots = set(), set()
        return state, insn, from_insn

    # -- pruning ------------------------------------------------------------------------
    def is_prune_point(self, insn_idx: int) -> bool:
        if not hasattr(self, "_prune"):
            points = set()
            for i, insn in enumerate(self.insns):
                cls, kind = insn.code & 0x07, insn.code & 0xF0
                if cls not in (op.BPF_JMP, op.BPF_JMP32) or kind == op.BPF_EXIT:
                    continue
                if kind == op.BPF_JA:  # the target of an unconditional jump
                    points.add(i + (insn.imm if cls == op.BPF_JMP32 else insn.off) + 1)
                elif kind == op.BPF_CALL:  # the return point, and a bpf-to-bpf call itself
                    points.add(i + 1)
                    if insn.src == op.BPF_PSEUDO_CALL:
                        points.add(i)
                else:  # a conditional jump, and the target of its branch edge
                    points.add(i)
                    points.add(i + insn.off + 1)
            self._prune = points
            self.loop_heads = {i + (insn.imm if insn.code == op.BPF_JMP32 | op.BPF_JA else insn.off) + 1
                               for i, insn in enumerate(self.insns)
                               if insn.code & 0x07 in (op.BPF_JMP, op.BPF_JMP32)
                               and insn.code & 0xF0 not in (op.BPF_EXIT, op.BPF_CALL)
                               and (insn.imm if insn.code == op.BPF_JMP32 | op.BPF_JA else insn.off) < 0}
        return insn_idx in self._prune

    def is_state_visited(self, state: State, insn_idx: int) -> bool:
        """Prune when an explored state at this insn covers the current one; a
        state still being explored on this very path that equals the current one
        exactly is an infinite loop. The current state is kept for later
        comparisons under the kernel's heuristic (after at least 2 jumps and 8
        instructions since the last kept state, or at a loop head)."""
        seen = self.explored.setdefault(insn_idx, [])
        live = self.live[insn_idx] if insn_idx < len(self.live) else set(range(10))
        stack_matters = self.stack_read_after[insn_idx] if insn_idx < len(self.stack_read_after) else True
        on_path = self.path_checkpoints()
        current = None
        for old in seen:
            if id(old) in on_path:
                # identical states on one path: a loop that cannot end (compare cheaply first)
                if self._quick_keys[id(old)] == (current or (current := _quick_key(state))) and \
                        _format_state(old) == _format_state(state):
                    self.fail(f"infinite loop detected at insn {insn_idx}\ncur state:{format_frame(state.frame)}"
                              f"\nold state:{format_frame(old.frame)}")
                continue
            if _states_equal(old, state, live, stack_matters):
                return True
        add = insn_idx in self.loop_heads or (
            self.jmps_processed - self.prev_jmps_processed >= 2
            and self.processed - self.prev_insn_processed >= 8)
        if add:
            kept = state.copy()
            seen.append(kept)
            self._quick_keys[id(kept)] = _quick_key(kept)
            self.checkpoints = (id(kept), self.checkpoints)
            self.prev_jmps_processed, self.prev_insn_processed = self.jmps_processed, self.processed
            self.total_states += 1
            self.peak_states = max(self.peak_states, self.total_states)
            self.max_states_per_insn = max(self.max_states_per_insn, len(seen))
        return False

    def mark_precise(self, state: State, regno: int, insn_idx: int) -> None:
        """The value in ``regno`` decided something: it and, in the state kept at this
        same instruction on the current path, the register it came from are precise
        (a one-step version of the kernel's precision backtracking)."""
        reg = state.regs[regno]
        if reg.type != SCALAR:
            return
        reg.precise = True
        if self.checkpoints is not None:
            kept_id = self.checkpoints[0]
            for kept in self.explored.get(insn_idx, ()):
                if id(kept) == kept_id and kept.regs[regno].type == SCALAR:
                    kept.regs[regno].precise = True

    def path_checkpoints(self) -> set[int]:
        """The ids of the states kept on the current path; extended in place while the
        path only grows (a long loop), rebuilt when exploration switches paths."""
        node = self.checkpoints
        if self._path_cache is not None:
            cached_node, ids = self._path_cache
            if cached_node is node:
                return ids
            if node is not None and node[1] is cached_node:
                ids.add(node[0])
                self._path_cache = (node, ids)
                return ids
        ids = self._walk_checkpoints(node)
        self._path_cache = (node, ids)
        return ids

    @staticmethod
    def _walk_checkpoints(node) -> set[int]:
        out = set()
        while node:
            out.add(node[0])
            node = node[1]
        return out

    # -- one instruction ------------------------------------------------------------------
    def step(self, state: State, i: int) -> int | None:
        insn = self.insns[i]
        cls = insn.code & 0x07
        message = unknown_opcode(insn.code)
        if message:
            self.fail(message)
        if cls in (op.BPF_ALU, op.BPF_ALU64):
            self.check_alu(state, insn)
            self.record(state, i)
            return i + 1
        if cls == op.BPF_LDX:
            self.check_load(state, insn, i)
            self.record(state, i)
            return i + 1
        if cls in (op.BPF_ST, op.BPF_STX):
            self.check_store(state, insn, i)
            self.record(state, i)
            return i + 1
        if cls == op.BPF_LD:
            if insn.is_ld_imm64:
                self.check_ld_imm64(state, insn, i)
                self.record(state, i)
                return i + 2
            self.check_ld_abs(state, insn)
            self.record(state, i)
            return i + 1
        # JMP / JMP32
        kind = insn.code & 0xF0
        self.jmps_processed += 1
        if kind == op.BPF_JA:
            self.record(state, i)
            return i + (insn.imm if cls == op.BPF_JMP32 else insn.off) + 1
        if kind == op.BPF_EXIT:
            return self.check_exit(state, i)
        if kind == op.BPF_CALL:
            return self.check_call(state, insn, i)
        if kind == op.BPF_JCOND:
            self.record(state, i, "branch")
            self.push(state.copy(), i + 1, i)
            return i + insn.off + 1
        return self.check_cond_jmp(state, insn, i)

    # -- ALU ----------------------------------------------------------------------------------
    def check_alu(self, state: State, insn: Insn) -> None:
        cls = insn.code & 0x07
        operation = insn.code & 0xF0
        alu32 = cls == op.BPF_ALU
        regs = state.regs
        if operation in (op.BPF_NEG, op.BPF_END):
            dst = self.read_reg(state, insn.dst)
            if dst.is_pointer:
                self.fail(f"R{insn.dst} pointer arithmetic prohibited")
            if operation == op.BPF_NEG:
                value = dst.s.copy()
                result = Scalar.const(0)
                result.alu(op.BPF_SUB, value, alu32)
                self.write_reg(state, insn.dst, scalar_reg(result))
            else:  # a byte swap: an unknown value of the swapped width
                swapped = Scalar.unknown()
                if insn.imm < 64:
                    swapped.coerce_to_size(insn.imm // 8)
                self.write_reg(state, insn.dst, scalar_reg(swapped))
            return
        if operation == op.BPF_MOV:
            if insn.code & op.BPF_X:
                src = self.read_reg(state, insn.src)
                if not alu32 and insn.off == 0:
                    if src.type == SCALAR:
                        self.assign_scalar_id(src)
                    self.write_reg(state, insn.dst, src.copy())
                    return
                if src.is_pointer:
                    self.fail(f"R{insn.src} partial copy of pointer" if alu32
                              else f"R{insn.src} sign-extension part of pointer")
                new = src.copy()
                if insn.off:
                    new.id = 0
                    new.s = _sign_extend(new.s, insn.off // 8)
                    if alu32:
                        new.s.zext32()
                        new.s.sync()
                else:
                    if new.s.umax > 0xFFFFFFFF:
                        new.id = 0
                    else:
                        self.assign_scalar_id(src)
                        new.id = src.id
                    new.s.zext32()
                    new.s.sync()
                self.write_reg(state, insn.dst, new)
                return
            value = insn.imm if not alu32 else insn.imm & 0xFFFFFFFF
            self.write_reg(state, insn.dst, const_reg(value))
            return
        dst = self.read_reg(state, insn.dst)
        if insn.code & op.BPF_X:
            src = self.read_reg(state, insn.src)
        else:
            src = const_reg(insn.imm if not alu32 else (insn.imm & 0xFFFFFFFF if insn.imm >= 0 else insn.imm))
        if operation in (op.BPF_DIV, op.BPF_MOD) and not insn.code & op.BPF_X and insn.imm == 0:
            self.fail("div by zero")
        if dst.is_pointer or src.is_pointer:
            self.pointer_alu(state, insn, dst, src, alu32)
            return
        result = dst.copy()
        result.s.alu(insn.code, src.s.copy(), alu32)
        if not alu32 and operation == op.BPF_ADD and dst.id and src.s.is_const:
            value = src.s.value
            if dst.id & ADD_CONST or value > 0x7FFFFFFF:
                result.id, result.off = 0, 0
            else:
                result.id = dst.id | ADD_CONST
                result.off = value
        else:
            result.id, result.off = 0, 0
        result.precise = False
        regs[insn.dst] = result
        self.scratch_regs.add(insn.dst)

    def pointer_alu(self, state: State, insn: Insn, dst: Reg, src: Reg, alu32: bool) -> None:
        operation = insn.code & 0xF0
        if dst.is_pointer and src.is_pointer:
            if operation == op.BPF_SUB:
                self.write_reg(state, insn.dst, scalar_reg())
                return
            self.fail(f"R{insn.dst} pointer {ALU_STRING[operation]} pointer prohibited")
        ptr, off_reg = (dst, src) if dst.is_pointer else (src, dst)
        regno = insn.dst if dst.is_pointer else insn.src
        if alu32:
            self.fail(f"R{insn.dst} 32-bit pointer arithmetic prohibited")
        if ptr.maybe_null:
            self.fail(f"R{insn.dst} pointer arithmetic on {ptr.type_name()} prohibited, null-check it first")
        if ptr.type == PTR_TO_MEM and ptr.untrusted:  # arithmetic on untrusted memory is not tracked
            self.write_reg(state, insn.dst, ptr.copy())
            return
        if ptr.type in (CONST_PTR_TO_MAP, PTR_TO_PACKET_END):
            self.fail(f"R{insn.dst} pointer arithmetic on {ptr.type_name()} prohibited")
        if operation not in (op.BPF_ADD, op.BPF_SUB):
            self.fail(f"R{insn.dst} pointer arithmetic with {ALU_STRING[operation]} operator prohibited")
        if operation == op.BPF_SUB and not dst.is_pointer:
            self.fail(f"R{insn.dst} tried to subtract pointer from scalar")
        del regno
        result = ptr.copy()
        result.precise = False
        if off_reg.type == SCALAR and insn.code & op.BPF_X:
            self.mark_precise(state, insn.dst if off_reg is dst else insn.src, self.error_insn or 0)
        k = off_reg.s
        if k.is_const and k.smin == k.smax:
            value = s64(k.value)
            new_off = ptr.off + value if operation == op.BPF_ADD else ptr.off - value
            result.off = new_off
            self.write_reg(state, insn.dst, result)
            return
        # variable offset
        if ptr.type == PTR_TO_CTX:
            result.s = ptr.s.copy()
            result.s.alu(op.BPF_ADD | op.BPF_X if operation == op.BPF_ADD else op.BPF_SUB | op.BPF_X, k.copy(), False)
            self.write_reg(state, insn.dst, result)
            return
        moved = ptr.s.copy()
        moved.alu((op.BPF_ADD if operation == op.BPF_ADD else op.BPF_SUB) | op.BPF_X, k.copy(), False)
        result.s = moved
        if ptr.type in PACKET_TYPES:
            result.id = self.new_id()
            result.range = 0
        self.write_reg(state, insn.dst, result)

    # -- loads and stores ---------------------------------------------------------------------
    def check_ld_imm64(self, state: State, insn: Insn, i: int) -> None:
        second = self.insns[i + 1]
        if insn.src == 0:
            value = (insn.imm & 0xFFFFFFFF) | ((second.imm & 0xFFFFFFFF) << 32)
            self.write_reg(state, insn.dst, const_reg(value))
            return
        maps = getattr(self.prog, "maps", ())
        if insn.src in (op.BPF_PSEUDO_MAP_IDX, op.BPF_PSEUDO_MAP_IDX_VALUE, op.BPF_PSEUDO_MAP_FD,
                        op.BPF_PSEUDO_MAP_VALUE):
            if not 0 <= insn.imm < len(maps):
                self.fail(f"fd {insn.imm} is not pointing to valid bpf_map")
            definition = maps[insn.imm]
            if insn.src in (op.BPF_PSEUDO_MAP_IDX, op.BPF_PSEUDO_MAP_FD):
                reg = Reg(CONST_PTR_TO_MAP, Scalar.const(0), map=definition, map_index=insn.imm)
            else:
                reg = Reg(PTR_TO_MAP_VALUE, Scalar.const(0), off=second.imm, map=definition, map_index=insn.imm)
            self.write_reg(state, insn.dst, reg)
            return
        self.fail("unrecognized bpf_ld_imm64 insn")

    def check_ld_abs(self, state: State, insn: Insn) -> None:
        ctx = self.read_reg(state, 6)
        if ctx.type != PTR_TO_CTX:
            self.fail("at the time of BPF_LD_ABS|IND R6 != pointer to skb")
        if insn.code & 0xE0 == op.BPF_IND:
            self.read_reg(state, insn.src)
        for r in range(1, 6):
            state.regs[r] = Reg()
        size = _size(insn.code)
        s = Scalar.unknown()
        s.coerce_to_size(size)
        self.write_reg(state, 0, scalar_reg(s))

    def check_load(self, state: State, insn: Insn, i: int) -> None:
        if insn.code & 0xE0 not in (op.BPF_MEM, op.BPF_MEMSX):
            self.fail("BPF_LDX uses reserved fields")
        base = self.read_reg(state, insn.src)
        size = _size(insn.code)
        result = self.mem_access(state, insn.src, base, insn.off, size, write=False, insn_idx=i)
        if result.type == SCALAR and size < 8:
            if insn.code & 0xE0 == op.BPF_MEMSX:
                result.s = _sign_extend(result.s, size)
            else:
                result.s.coerce_to_size(size)
        self.write_reg(state, insn.dst, result)

    def check_store(self, state: State, insn: Insn, i: int) -> None:
        mode = insn.code & 0xE0
        size = _size(insn.code)
        if insn.code & 0x07 == op.BPF_STX:
            src = self.read_reg(state, insn.src)
        else:
            src = None
        base = self.read_reg(state, insn.dst)
        if mode == op.BPF_ATOMIC:
            if size not in (4, 8):
                self.fail("invalid atomic operand size")
            self.mem_access(state, insn.dst, base, insn.off, size, write=False, insn_idx=i, atomic=True)
            self.mem_access(state, insn.dst, base, insn.off, size, write=True, value=scalar_reg(), insn_idx=i)
            if insn.imm == op.BPF_CMPXCHG:
                self.read_reg(state, 0)
                self.write_reg(state, 0, scalar_reg())
            elif insn.imm & op.BPF_FETCH:
                self.write_reg(state, insn.src, scalar_reg())
            return
        if src is None:
            value = const_reg(insn.imm)
            value.id = 0
            self.mem_access(state, insn.dst, base, insn.off, size, write=True, value=value, insn_idx=i, st=True)
        else:
            self.mem_access(state, insn.dst, base, insn.off, size, write=True, value=src, insn_idx=i,
                            value_regno=insn.src)

    def mem_access(self, state: State, regno: int, base: Reg, off: int, size: int, *, write: bool,
                   insn_idx: int, value: Reg | None = None, value_regno: int = -1, st: bool = False,
                   atomic: bool = False) -> Reg:
        """``check_mem_access``: the register a load produces (or the stored value)."""
        t = base.type
        if base.maybe_null:
            self.fail(f"R{regno} invalid mem access '{base.type_name()}'")
        if t == SCALAR:
            self.fail(f"R{regno} invalid mem access 'scalar'")
        if t == PTR_TO_STACK:
            return self.stack_access(state, regno, base, off, size, write, value, value_regno, st)
        if t == PTR_TO_CTX:
            if base.off or not base.s.var_off.equals_const(0):
                if not base.s.var_off.is_const:
                    self.fail(f"variable ctx access var_off={base.s.var_off} disallowed")
                self.fail(f"dereference of modified ctx ptr R{regno} off={base.off} disallowed")
            if write and value is not None and value.is_pointer:
                self.fail(f"R{value_regno} leaks addr into ctx")
            access = ctx_access(self.prog, off, size, write)
            for line in access.log:
                self.say(line)
            if access.kind is None:
                self.fail(f"invalid bpf_context access off={off} size={size}")
            if write:
                return scalar_reg()
            if access.kind == "scalar":
                return scalar_reg()
            if access.kind in ("pkt", "pkt_end", "pkt_meta"):
                kind = {"pkt": PTR_TO_PACKET, "pkt_end": PTR_TO_PACKET_END, "pkt_meta": PTR_TO_PACKET_META}
                return Reg(kind[access.kind], Scalar.const(0))
            reg = Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=self.prog.kernel_btf, btf_id=access.btf_id,
                      trusted=access.trusted)
            return reg
        if t == PTR_TO_MAP_VALUE:
            return self.map_value_access(regno, base, off, size, write)
        if t in (PTR_TO_PACKET, PTR_TO_PACKET_META):
            total = base.off + off  # the range is measured after any variable part
            if base.s.smin < 0:
                self.fail(f"R{regno} min value is negative, either use unsigned index or do a if (index >=0) check.")
            if total + size > base.range or total < 0:
                self.fail(f"invalid access to packet, off={total} size={size}, R{regno}(id={base.id},off={base.off},"
                          f"r={base.range})\nR{regno} offset is outside of the packet")
            return scalar_reg()
        if t == PTR_TO_BTF_ID:
            if write:
                self.fail("only read is supported")
            return self.btf_access(regno, base, off, size, insn_idx)
        if t == PTR_TO_MEM:
            total = base.off + off
            if total < 0 or total + size > base.mem_size:
                self.fail(f"invalid access to memory, mem_size={base.mem_size} off={total} size={size}")
            return scalar_reg()
        self.fail(f"R{regno} invalid mem access '{base.type_name()}'")
        raise AssertionError  # unreachable

    def map_value_access(self, regno: int, base: Reg, off: int, size: int, write: bool) -> Reg:
        value_size = base.map.value_size
        total = base.off + off
        if not base.s.var_off.is_const:
            if base.s.smin + total < 0:
                self.fail(f"R{regno} min value is outside of the allowed memory range")
            if base.s.umax + total + size > value_size:
                self.fail(f"R{regno} max value is outside of the allowed memory range")
            return scalar_reg()
        total += s64(base.s.value)
        if total < 0 or total + size > value_size:
            self.fail(f"invalid access to map value, value_size={value_size} off={total} size={size}")
        if write and base.map.flags & BPF_F_RDONLY_PROG:
            self.fail(f"write into map forbidden, value_size={value_size} off={total} size={size}")
        initial = base.map.initial
        if not write and base.map.flags & BPF_F_RDONLY_PROG and initial is not None:
            return const_reg(int.from_bytes(initial[total:total + size], "little"))
        return scalar_reg()

    def btf_access(self, regno: int, base: Reg, off: int, size: int, insn_idx: int) -> Reg:
        btf = base.btf
        name = btf.type(base.btf_id).name
        total = base.off + off
        if not base.s.var_off.is_const:
            self.fail(f"R{regno} is ptr_{name} invalid variable offset: off={total}, var_off={base.s.var_off}")
        if total < 0:
            self.fail(f"R{regno} is ptr_{name} invalid negative access: off={total}")
        found = btf.find_member(base.btf_id, total, size)
        if found.how == "beyond":
            self.fail(f"access beyond struct {name} at off {total} size {size}")
        if not (base.trusted or base.rcu):
            # like convert_ctx_accesses: loads through trusted and RCU pointers stay
            # plain loads, only the others become fault-tolerant PROBE_MEM loads
            self.probe_mem.add(insn_idx)
        member = btf.type(btf.resolve(found.type_id))
        if found.how == "exact" and member.kind == "ptr" and size == 8:
            target = btf.resolve(member.type)
            tt = btf.type(target)
            if tt.kind in ("struct", "union"):
                return Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=btf, btf_id=target, untrusted=True)
            # a pointer to plain kernel memory: readable only through probe reads
            return Reg(PTR_TO_MEM, Scalar.const(0), rdonly=True, untrusted=True, mem_size=0)
        return scalar_reg()

    def stack_access(self, state: State, regno: int, base: Reg, off: int, size: int, write: bool,
                     value: Reg | None, value_regno: int, st: bool) -> Reg:
        frame = state.frames[base.frameno] if base.frameno < len(state.frames) else state.frame
        if not base.s.var_off.is_const:
            what = "write to" if write else "read from"
            if base.s.smax >= 1 << 29 or base.s.smin <= -(1 << 29):
                self.fail(f"invalid unbounded variable-offset {what} stack R{regno}")
            lo, hi = base.off + off + base.s.smin, base.off + off + base.s.smax
            if lo < -MAX_BPF_STACK or hi + size > 0:
                self.fail(f"invalid variable-offset {what} stack R{regno} var_off={base.s.var_off} "
                          f"off={off} size={size}")
            for addr in range(lo, hi + size):
                spi = (-addr - 1) // 8
                slot = frame.stack.setdefault(spi, Slot())
                if write:
                    slot.types[(-addr - 1) % 8] = MISC
                    slot.spilled = None
                self.scratch_slots.add(spi)
            self.note_stack_depth(-lo)
            return scalar_reg()
        total = base.off + off + s64(base.s.value)
        if total < -MAX_BPF_STACK or total + size > 0 or total >= 0:
            what = "write to" if write else "read from"
            self.fail(f"invalid {what} stack R{regno} off={total} size={size}")
        self.note_stack_depth(-total)
        slot_index = -total - 1
        spi = slot_index // 8
        self.scratch_slots.add(spi)
        slot = frame.stack.setdefault(spi, Slot())
        if write:
            aligned = total % 8 == 0
            if value is not None and value.type == SCALAR and aligned and not st:
                spilled = value.copy()
                fits = value.s.var_off.is_const or value.s.umax < (1 << (8 * size)) or size == 8
                if fits:
                    self.assign_scalar_id(value)
                    spilled.id = value.id
                else:
                    spilled.id = 0
                self.save_spill(slot, spilled, size)
            elif value is not None and st and aligned:
                self.save_spill(slot, value.copy(), size)
            elif value is not None and value.is_pointer:
                if size != 8:
                    self.fail("invalid size of register spill")
                self.save_spill(slot, value.copy(), size)
            else:
                kind = ZERO if value is not None and value.type == SCALAR and value.s.var_off.equals_const(0) \
                    else MISC
                if slot.is_spill:  # a plain write over a spill scrubs the whole slot
                    slot.types = [MISC if t != INVALID else t for t in slot.types]
                slot.spilled = None
                for k in range(size):
                    slot.types[(slot_index - k) % 8] = kind
            return value if value is not None else scalar_reg()
        # read
        if slot.is_spill and slot.spilled is not None:
            spilled = slot.spilled
            if size == 8:
                return spilled.copy()
            if spilled.type == SCALAR:
                spill_size = sum(1 for t in slot.types if t == SPILL)
                if size >= spill_size or spilled.s.var_off.is_const:
                    copy = spilled.copy()
                    return copy
                return scalar_reg()
            self.fail("invalid size of register fill")
        kinds = [slot.types[(slot_index - k) % 8] for k in range(size)]
        if all(k == ZERO for k in kinds):
            return const_reg(0)
        return scalar_reg()

    def save_spill(self, slot: Slot, reg: Reg, size: int) -> None:
        slot.spilled = reg
        for k in range(8, 8 - size, -1):
            slot.types[k - 1] = SPILL
        for k in range(8 - size, 0, -1):
            if slot.types[k - 1] not in (ZERO, INVALID):
                slot.types[k - 1] = MISC

    # -- calls and exit -------------------------------------------------------------------------
    def check_call(self, state: State, insn: Insn, i: int) -> int | None:
        if insn.src == op.BPF_PSEUDO_CALL:
            return self.check_func_call(state, insn, i)
        if insn.src == op.BPF_PSEUDO_KFUNC_CALL:
            self.fail("calling kernel functions is not supported by bpfnb yet")
        helper = insn.imm
        name = helper_name(helper)
        if helper not in HELPER_NAMES or helper <= 0:
            self.fail(f"invalid func unknown#{helper}")
        allowed = AVAILABLE.get(self.prog.type)
        if allowed is not None and helper not in allowed:
            self.fail(f"program of this type cannot use helper {name}#{helper}")
        proto = PROTOS.get(helper)
        r0 = scalar_reg()
        if proto is not None:
            self.check_helper_args(state, proto, name, helper)
            r0 = self.helper_return(proto)
        if helper == TAIL_CALL:
            self.record_tail_call_key(state, i)
        for r in range(1, 6):
            state.regs[r] = Reg()
            self.scratch_regs.add(r)
        state.regs[0] = r0
        self.scratch_regs.add(0)
        self.record(state, i, "call", f"{name}#{helper}")
        return i + 1

    def record_tail_call_key(self, state: State, i: int) -> None:
        m, key = state.regs[2].map, state.regs[3]
        const = key.type == SCALAR and key.s.var_off.is_const and m is not None \
            and key.s.var_off.value < m.max_entries
        seen = (m, key.s.var_off.value) if const else None
        if i not in self.tail_call_keys:
            self.tail_call_keys[i] = seen
        elif self.tail_call_keys[i] != seen:
            self.tail_call_keys[i] = None

    def helper_return(self, proto) -> Reg:
        if proto.ret == "map_value_or_null":
            m = self._last_map
            if m is not None and m.type in ("array", "percpu_array") and self._const_key is not None \
                    and self._const_key < m.max_entries:
                return Reg(PTR_TO_MAP_VALUE, Scalar.const(0), map=m)  # an array slot that exists: never NULL
            if m is not None and m.type == "xskmap":
                return Reg("xdp_sock", Scalar.const(0), maybe_null=True, id=self.new_id())
            if m is not None and m.type in ("sockmap", "sockhash"):
                return Reg("sock", Scalar.const(0), maybe_null=True, id=self.new_id())
            return Reg(PTR_TO_MAP_VALUE, Scalar.const(0), map=m, maybe_null=True, id=self.new_id())
        if proto.ret == "ringbuf_mem_or_null":
            return Reg(PTR_TO_MEM, Scalar.const(0), maybe_null=True, id=self.new_id(), mem_size=self._alloc_size)
        if self._helper in (45, 114, 115) and self._size_max is not None:  # *_str: [-MAX_ERRNO, size]
            s = Scalar.unknown()
            s.smin, s.smax, s.s32_min, s.s32_max = -4095, self._size_max, -4095, self._size_max
            return scalar_reg(s.sync())
        if self._helper == 8:  # get_smp_processor_id: [0, nr_cpu_ids - 1]
            from ..kernel.maps import possible_cpus

            s = Scalar.unknown()
            s.umax = s.u32_max = possible_cpus() - 1
            return scalar_reg(s.sync())
        if proto.ret.startswith("btf:"):
            btf = self.prog.kernel_btf
            return Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=btf, btf_id=btf.find(proto.ret[4:], "struct"),
                       trusted=True)
        return scalar_reg()

    def check_helper_args(self, state: State, proto, name: str, helper: int) -> None:
        self._last_map = None
        self._alloc_size = 0
        self._const_key = None
        self._helper = helper
        self._size_max = None
        regs = state.regs
        for k, kind in enumerate(proto.args):
            regno = k + 1
            reg = self.read_reg(state, regno)
            if kind == "any":
                continue
            if kind == "map":
                if reg.type != CONST_PTR_TO_MAP:
                    self.fail(f"R{regno} type={format_type(reg)} expected=map_ptr")
                self._last_map = reg.map
            elif kind in ("key", "value"):
                if self._last_map is None:
                    self.fail(f"invalid map_ptr to access map->{kind}")
                size = self._last_map.key_size if kind == "key" else self._last_map.value_size
                self.check_helper_mem(state, regno, reg, size, write=False, kind=kind)
                if kind == "key":
                    self._const_key = self.constant_key(state, reg, size)
            elif kind in ("uninit_mem", "mem"):
                size_reg = regs[regno + 1] if regno + 1 <= 5 else None
                size = size_reg.s.umax if size_reg is not None and size_reg.type == SCALAR else 0
                self.check_helper_mem(state, regno, reg, size, write=(kind == "uninit_mem"), kind=kind)
            elif kind in ("size", "size_or_zero", "alloc_size"):
                if reg.type == SCALAR:
                    reg.precise = True
                if reg.type != SCALAR:
                    self.fail(f"R{regno} type={format_type(reg)} expected=scalar")
                if kind == "size" and reg.s.umin == 0 and reg.s.umax == 0:
                    self.fail(f"R{regno} invalid zero-sized read: u64=[0,0]")
                if reg.s.smin < 0:
                    self.fail(f"R{regno} min value is negative, either use unsigned or 'var &= const'")
                if reg.s.umax >= 1 << 29:
                    self.fail(f"R{regno} unbounded memory access, use 'var &= const' or 'if (var < const)'")
                if kind == "alloc_size":
                    self._alloc_size = reg.s.umax
                self._size_max = reg.s.umax
            elif kind == "ctx":
                if reg.type != PTR_TO_CTX:
                    self.fail(f"R{regno} type={format_type(reg)} expected=ctx")
            elif kind.startswith("btf:"):
                wanted = kind[4:]
                if reg.type != PTR_TO_BTF_ID or reg.untrusted:
                    self.fail(f"R{regno} type={format_type(reg)} expected=ptr_, trusted_ptr_, rcu_ptr_")
                got = reg.btf.type(reg.btf_id).name
                if got != wanted:
                    self.fail(f"R{regno} is of type {got} but {wanted} is expected")
            elif kind == "ringbuf_mem":
                if reg.type != PTR_TO_MEM or reg.maybe_null:
                    self.fail(f"R{regno} type={format_type(reg)} expected=ringbuf_mem")

    def check_helper_mem(self, state: State, regno: int, reg: Reg, size: int, *, write: bool, kind: str) -> None:
        t = reg.type
        if t == PTR_TO_STACK:
            base = reg.off + s64(reg.s.value) if reg.s.var_off.is_const else reg.off
            if base < -MAX_BPF_STACK or base + size > 0:
                self.fail(f"invalid {'write to' if write else 'read from'} stack R{regno} off={base} size={size}")
            frame = state.frame
            for addr in range(base, base + size):
                spi = (-addr - 1) // 8
                slot = frame.stack.setdefault(spi, Slot())
                if write:
                    self.scratch_slots.add(spi)
                    if slot.is_spill:
                        slot.types = [MISC if x == SPILL else x for x in slot.types]
                        slot.spilled = None
                    slot.types[(-addr - 1) % 8] = MISC
            self.note_stack_depth(-base)  # bytes a helper writes count, as update_stack_depth does
            return
        if t == PTR_TO_MAP_VALUE and not reg.maybe_null:
            self.map_value_access(regno, reg, 0, max(size, 1), write)
            return
        if t in (PTR_TO_PACKET, PTR_TO_PACKET_META):
            if reg.off + size > reg.range:
                self.fail(f"invalid access to packet, off={reg.off} size={size}, R{regno}(id={reg.id},"
                          f"off={reg.off},r={reg.range})")
            return
        if t == PTR_TO_MEM and not reg.maybe_null:
            return
        expected = "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_"
        self.fail(f"R{regno} type={format_type(reg)} expected={expected}")

    def note_stack_depth(self, depth: int) -> None:
        """The program's and the current function's stack reach ``depth`` bytes (rounded to 8)."""
        depth = (depth + 7) // 8 * 8
        self.stack_depth = max(self.stack_depth, depth)
        sub = self.subprog_of(self.error_insn or 0)
        self.sub_stack_depth[sub] = max(self.sub_stack_depth.get(sub, 0), depth)

    def constant_key(self, state: State, reg: Reg, size: int) -> int | None:
        """The key's value when the stack holds it as a known constant (zeroed bytes or a spilled constant)."""
        if reg.type != PTR_TO_STACK or not reg.s.var_off.is_const:
            return None
        base = reg.off + s64(reg.s.value)
        frame = state.frames[reg.frameno] if reg.frameno < len(state.frames) else state.frame
        spi = (-base - 1) // 8
        slot = frame.stack.get(spi)
        if slot is None:
            return None
        if base % 8 == 0 and slot.is_spill and slot.spilled is not None and slot.spilled.type == SCALAR \
                and slot.spilled.s.var_off.is_const:
            return slot.spilled.s.value & ((1 << (8 * size)) - 1)
        kinds = [frame.stack.get((-a - 1) // 8, Slot()).types[(-a - 1) % 8] for a in range(base, base + size)]
        return 0 if all(k == ZERO for k in kinds) else None

    def check_func_call(self, state: State, insn: Insn, i: int) -> int:
        target = i + insn.imm + 1
        if len(state.frames) >= 8:
            self.fail(f"the call stack of {len(state.frames)} frames is too deep")
        caller = state.frame
        if self.is_global(target):
            index = self.subprog_starts().index(target)
            self.say(f"Func#{index} ('{self.func_name(target)}') is global and assumed valid.")
            for r in range(1, 6):
                caller.regs[r] = Reg()
            caller.regs[0] = scalar_reg()
            self.scratch_regs.add(0)
            self.record(state, i, "call", f"global function {self.func_name(target)}")
            return i + 1
        self.check_btf_args(caller, target)
        callee = type(caller)(frameno=caller.frameno + 1, callsite=i)
        for r in range(1, 6):
            callee.regs[r] = caller.regs[r].copy()
            caller.regs[r] = Reg()
        callee.regs[10] = Reg(PTR_TO_STACK, Scalar.const(0), frameno=callee.frameno)
        state.frames.append(callee)
        if self.level >= 2:
            self.say("caller:")
            self.say(format_frame(caller))
            self.say("callee:")
            self.say(format_frame(callee))
        self.record(state, i, "call", f"call to insn {target}")
        self.scratch_regs = set(range(1, 6)) | {10}
        self.scratch_slots = set()
        return target

    def check_btf_args(self, caller, target: int) -> None:
        """The kernel compares a static function's arguments with its BTF prototype
        and says so when they do not match (verification goes on)."""
        btf = getattr(self.prog, "btf", None)
        for fi in getattr(self.prog, "func_info", ()):
            if fi.insn != target or btf is None:
                continue
            proto = btf.type(btf.type(fi.type_id).type)
            for k, param in enumerate(proto.params):
                t = btf.type(btf.resolve(param.type))
                if t.kind in ("int", "enum", "enum64") and caller.regs[k + 1].type != SCALAR:
                    self.say(f"R{k + 1} is not a scalar")
                    return

    def check_exit(self, state: State, i: int) -> int | None:
        r0 = self.read_reg(state, 0)
        if len(state.frames) > 1:
            if r0.type != SCALAR:
                self.fail(f"R0 cannot be a pointer when returning from a subprogram ({r0.type_name()})")
            callee = state.frames.pop()
            caller = state.frame
            if self.level >= 2:
                self.say("returning from callee:")
                self.say(format_frame(callee))
                self.say(f"to caller at {callee.callsite + 1}:")
            for r in range(1, 6):
                caller.regs[r] = Reg()
            caller.regs[0] = r0.copy()
            if self.level >= 2:
                self.say(format_frame(caller))
            self.record(state, i, "return", f"to caller at {callee.callsite + 1}")
            self.scratch_regs, self.scratch_slots = set(), set()
            self.force_print_state = True
            return callee.callsite + 1
        if self.prog.type == "cgroup_skb" and r0.type == SCALAR:
            if r0.s.smin < 0 or r0.s.smax > 1:
                self.fail(f"At program exit the register R0 has smin={r0.s.smin} smax={r0.s.smax} "
                          "should have been in [0, 1]")
        self.record(state, i, "exit")
        return None

    # -- conditional jumps -------------------------------------------------------------------------
    def check_cond_jmp(self, state: State, insn: Insn, i: int) -> int:
        cls = insn.code & 0x07
        opcode = insn.code & 0xF0
        is_jmp32 = cls == op.BPF_JMP32
        dst = self.read_reg(state, insn.dst)
        if insn.code & op.BPF_X:
            src = self.read_reg(state, insn.src)
        else:
            src = const_reg(insn.imm if not is_jmp32 else insn.imm)
            if not is_jmp32:
                src.s = Scalar.const(insn.imm)
        target = i + insn.off + 1
        pred = self.branch_taken(dst, src, opcode, is_jmp32)
        if pred >= 0:  # the outcome hangs on these values: they become precise
            regnos = (insn.dst, insn.src) if insn.code & op.BPF_X else (insn.dst,)
            for regno in regnos:
                self.mark_precise(state, regno, i)
        if pred == 1:
            self.record(state, i, "branch", "always taken")
            self.print_insn_state(state, i)
            return target
        if pred == 0:
            self.record(state, i, "branch", "never taken")
            self.print_insn_state(state, i)
            return i + 1
        other = state.copy()
        o_dst = other.regs[insn.dst]
        o_src = other.regs[insn.src] if insn.code & op.BPF_X else src.copy()
        t_src_reg = src if insn.code & op.BPF_X else src.copy()
        if dst.type == SCALAR and (src.type == SCALAR):
            refine(o_dst.s, o_src.s, opcode, is_jmp32)
            o_dst.s.sync()
            o_src.s.sync()
            refine(dst.s, t_src_reg.s, REVERSE[opcode], is_jmp32)
            dst.s.sync()
            t_src_reg.s.sync()
            self.sync_linked(other, o_dst)
            if insn.code & op.BPF_X:
                self.sync_linked(other, o_src)
            self.sync_linked(state, dst)
            if insn.code & op.BPF_X:
                self.sync_linked(state, t_src_reg)
        elif dst.maybe_null and src.type == SCALAR and src.s.var_off.equals_const(0) and \
                opcode in (op.BPF_JEQ, op.BPF_JNE):
            null_side, ok_side = (other, state) if opcode == op.BPF_JEQ else (state, other)
            self.mark_ptr_or_null(null_side, dst.id, is_null=True)
            self.mark_ptr_or_null(ok_side, dst.id, is_null=False)
        elif dst.is_pkt and src.is_pkt and not is_jmp32:
            self.match_pkt_pointers(insn, state, other)
        self.record(state, i, "branch")
        self.push(other, target, i)
        self.print_insn_state(state, i)
        return i + 1

    def branch_taken(self, dst: Reg, src: Reg, opcode: int, is_jmp32: bool) -> int:
        if dst.is_pointer or src.is_pointer:
            if dst.is_pkt and src.is_pkt:
                return _pkt_branch_taken(dst, src, opcode) if not is_jmp32 else -1
            ptr, k = (dst, src) if dst.is_pointer else (src, dst)
            if ptr.maybe_null or k.is_pointer or not k.s.is_const_for(is_jmp32) or k.s.const_value(is_jmp32):
                return -1
            if not _not_null(ptr):
                return -1
            return {op.BPF_JEQ: 0, op.BPF_JNE: 1}.get(opcode, -1)
        return branch_taken(dst.s, src.s, opcode, is_jmp32)

    def sync_linked(self, state: State, known: Reg) -> None:
        if known.type != SCALAR or not known.id:
            return
        base_id = known.id & ~ADD_CONST
        for frame in state.frames:
            regs = list(frame.regs) + [s.spilled for s in frame.stack.values() if s.is_spill and s.spilled]
            for reg in regs:
                if reg is None or reg is known or reg.type != SCALAR or (reg.id & ~ADD_CONST) != base_id:
                    continue
                if not (reg.id & ADD_CONST) and not (known.id & ADD_CONST) or reg.off == known.off:
                    reg.s = known.s.copy()
                else:
                    delta = Scalar.const((reg.off - known.off) & U64)
                    moved = known.s.copy()
                    moved.alu(op.BPF_ADD | op.BPF_X, delta, False)
                    reg.s = moved

    def mark_ptr_or_null(self, state: State, pid: int, *, is_null: bool) -> None:
        for frame in state.frames:
            regs = list(frame.regs) + [s.spilled for s in frame.stack.values() if s.is_spill and s.spilled]
            for reg in regs:
                if reg is None or not reg.maybe_null or reg.id != pid:
                    continue
                if is_null:
                    reg.type, reg.s, reg.id, reg.map, reg.maybe_null = SCALAR, Scalar.const(0), 0, None, False
                else:
                    reg.maybe_null = False
                    reg.id = 0

    def match_pkt_pointers(self, insn: Insn, this: State, other: State) -> None:
        """``try_match_pkt_pointers``: after ``pkt (op) pkt_end`` the side where the
        access is proven gets its range; the other side learns the pointer is at or
        beyond the end."""
        opcode = insn.code & 0xF0
        dst, src = this.regs[insn.dst], this.regs[insn.src]
        if dst.type == PTR_TO_PACKET and src.type == PTR_TO_PACKET_END:
            pkt_regno, table = insn.dst, {
                op.BPF_JGT: ("this", False, "other", True), op.BPF_JLT: ("other", True, "this", False),
                op.BPF_JGE: ("this", True, "other", False), op.BPF_JLE: ("other", False, "this", True)}
        elif dst.type == PTR_TO_PACKET_END and src.type == PTR_TO_PACKET:
            pkt_regno, table = insn.src, {
                op.BPF_JGT: ("other", True, "this", False), op.BPF_JLT: ("this", False, "other", True),
                op.BPF_JGE: ("other", False, "this", True), op.BPF_JLE: ("this", True, "other", False)}
        else:
            return
        if opcode not in table:
            return
        good_side, right_open, end_side, beyond = table[opcode]
        sides = {"this": this, "other": other}
        self.find_good_pkt_pointers(sides[good_side], sides[good_side].regs[pkt_regno], right_open)
        marked = sides[end_side].regs[pkt_regno]
        marked.range = -2 if beyond else -1  # BEYOND_PKT_END / AT_PKT_END

    @staticmethod
    def find_good_pkt_pointers(state: State, pkt: Reg, right_open: bool) -> None:
        if pkt.off < 0 or (pkt.off == 0 and right_open):
            return
        if pkt.s.umax > 0xFFFF or pkt.s.umax + pkt.off > 0xFFFF:
            return
        new_range = pkt.off + (1 if right_open else 0)
        for frame in state.frames:
            for reg in list(frame.regs) + [s.spilled for s in frame.stack.values() if s.is_spill and s.spilled]:
                if reg is not None and reg.type == pkt.type and reg.id == pkt.id:
                    reg.range = max(reg.range, new_range)


def _pkt_branch_taken(dst: Reg, src: Reg, opcode: int) -> int:
    """``is_pkt_ptr_branch_taken``: decided once a pointer is known at/beyond the end."""
    from .scalar import FLIP

    if src.type == PTR_TO_PACKET_END:
        pkt = dst
    elif dst.type == PTR_TO_PACKET_END:
        pkt, opcode = src, FLIP[opcode]
    else:
        return -1
    if pkt.range >= 0:
        return -1
    if opcode in (op.BPF_JLE, op.BPF_JGT) and pkt.range == -2:
        return int(opcode == op.BPF_JGT)
    if opcode in (op.BPF_JLT, op.BPF_JGE):
        return int(opcode == op.BPF_JGE)
    return -1


def _not_null(reg: Reg) -> bool:
    """``reg_not_null``: the pointer kinds the kernel knows cannot be NULL."""
    if reg.maybe_null:
        return False
    if reg.type == PTR_TO_BTF_ID:
        return reg.trusted or reg.rcu
    return reg.type in (PTR_TO_MAP_VALUE, PTR_TO_MEM, "map_key")


def format_type(reg: Reg) -> str:
    name = reg.type_name()
    if reg.type == PTR_TO_BTF_ID and reg.btf is not None:
        return name
    return name


def _sign_extend(s: Scalar, size: int) -> Scalar:
    bits = size * 8
    if s.var_off.is_const:
        v = s.var_off.value & ((1 << bits) - 1)
        if v >> (bits - 1):
            v -= 1 << bits
        return Scalar.const(v)
    out = Scalar.unknown()
    if s.umax < (1 << (bits - 1)):
        out = s.copy()
        out.coerce_to_size(size)
        return out
    out.smin, out.smax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out.var_off = Tnum.unknown()
    return out.sync()


def _format_state(state: State) -> str:
    return "|".join(format_frame(f) for f in state.frames)


def _quick_key(state: State) -> tuple:
    """What two states printing alike must share: each register's type, a pointer's
    offset, a constant scalar's value (a cheap filter before ``_format_state``)."""
    key = []
    for frame in state.frames:
        for reg in frame.regs:
            if reg.type == NOT_INIT:
                key.append(NOT_INIT)
            elif reg.type == SCALAR:
                key.append(reg.s.var_off.value if reg.s.var_off.is_const else SCALAR)
            else:
                key.append((reg.type, reg.off))
    return tuple(key)


def _regs_equal(old: Reg, cur: Reg) -> bool:
    if old.type == NOT_INIT:
        return True
    if old.type != cur.type:
        return False
    if old.type == SCALAR:
        if not old.precise:
            return True  # the kernel: an imprecise scalar's exact value did not matter
        o, c = old.s, cur.s
        return (o.smin <= c.smin and c.smax <= o.smax and o.umin <= c.umin and c.umax <= o.umax
                and o.s32_min <= c.s32_min and c.s32_max <= o.s32_max and o.u32_min <= c.u32_min
                and c.u32_max <= o.u32_max and o.var_off.contains(c.var_off))
    return (old.off == cur.off and old.maybe_null == cur.maybe_null and old.map is cur.map
            and old.btf_id == cur.btf_id and cur.range >= old.range and old.trusted == cur.trusted
            and old.s.var_off == cur.s.var_off and old.frameno == cur.frameno)


def _states_equal(old: State, cur: State, live: set[int], stack_matters: bool = True) -> bool:
    if len(old.frames) != len(cur.frames):
        return False
    for depth, (fo, fc) in enumerate(zip(old.frames, cur.frames, strict=True)):
        regs = live if depth == len(old.frames) - 1 else range(10)
        for r in regs:
            if not _regs_equal(fo.regs[r], fc.regs[r]):
                return False
        if not stack_matters and depth == len(old.frames) - 1:
            continue
        for spi, slot in fo.stack.items():
            cslot = fc.stack.get(spi, Slot())
            for k in range(8):
                if slot.types[k] == INVALID:
                    continue
                if slot.types[k] == MISC and cslot.types[k] in (MISC, ZERO, SPILL):
                    continue
                if slot.types[k] != cslot.types[k]:
                    return False
            if slot.is_spill and slot.spilled is not None:
                if cslot.spilled is None or not _regs_equal(slot.spilled, cslot.spilled):
                    return False
    return True


__all__ = ["Checker", "Reject", "COMPLEXITY_LIMIT"]
