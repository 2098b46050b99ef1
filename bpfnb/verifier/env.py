"""``struct bpf_verifier_env``: what one verification knows across the whole walk
(the program, the log, the explored states, the counters, the trace), and the
register-argument checks every rule uses (``check_reg_arg``)."""

from __future__ import annotations

from ..errors import InternalError
from ..isa import Insn
from .cfg import Subprogs, changes_pkt_data
from .kfunc_sets import PKT_CHANGING_KFUNCS
from .liveness import call_params, compute_live_registers
from .log import Reject, VerifierLog
from .progress import WalkProgress
from .prune import ExploredStates
from .regstate import BPF_ADD_CONST, NOT_INIT, PTR_TO_STACK, SCALAR, Reg
from .state import State
from .trace import NO_ENTRY, Trace

BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000
BPF_COMPLEXITY_LIMIT_JMP_SEQ = 8192  # paths waiting to be explored
MAX_BPF_REG = 11
BPF_REG_FP = 10


class VerifierEnv:
    def __init__(self, prog, *, log_level: int = 2, limit: int = BPF_COMPLEXITY_LIMIT_INSNS,
                 record_states: bool = True, prune: bool = True, progress: bool | None = None):
        self.prog = prog
        self.progress = WalkProgress(getattr(prog, "name", "program"), progress)
        self.insns: tuple[Insn, ...] = prog.insns
        self.log = VerifierLog(log_level)
        self.limit = limit
        self.record_states = record_states  # False: no trace (verdicts and facts only, faster)
        self.prune = prune  # False: every path walked to its end (to test that pruning changes nothing)
        self.subprogs = Subprogs(prog)
        self.insn_processed = 0
        self.id_gen = 0
        self.explored = ExploredStates(self.insns)
        self.jmps_processed = 0
        self.cur_hist_ent = False  # the current instruction has its jump history entry already
        self.stack_depth = 0
        self.sub_stack_depth: dict[int, int] = {}  # function start -> its stack depth
        self.insn_seen = bytearray(len(self.insns))
        self.pseudo_btf_regs: dict = {}  # (btf id, btf fd) of an ld_imm64 -> its register (check_pseudo_btf_ids)  # insn_aux_data[].seen: walked on some path
        self.probe_mem: set[int] = set()  # loads the kernel turns into PROBE_MEM loads
        # bpf_tail_call sites: (map, constant key) while every visit agrees, None once not
        # (the kernel's map_key_state: such a call becomes a direct, patchable jump)
        self.tail_call_keys: dict[int, tuple | None] = {}
        # bpf_loop sites: (fit for inlining on every visit so far, the callback's index)
        self.loop_inline_state: dict[int, tuple[bool, int]] = {}
        self.trace = Trace()
        self.error: str | None = None
        self.walk_insn: int | None = None  # the instruction the walk is at (for an interruption)
        self.insn_idx: int | None = None  # the instruction being checked (the error's, on a reject)
        self.cur_state: State | None = None
        self.insn_log_pos: int | None = None  # where the current instruction's messages start in the log
        # the line record each instruction belongs to, for the source lines the log prints
        # (none at log level 0)
        self.linfo = covering_linfo(getattr(prog, "line_info", ()), len(prog.insns)) if log_level else []
        self.prev_linfo = None
        self.stack: list[tuple] = []  # pushed paths: state, insn, from insn, log position, prev step, checkpoints
        self.validating_subprog = False  # a global function verified on its own (do_check_subprogs)
        self.called_globals: set[int] = set()  # global functions a verified path calls (first slots)
        # static functions whose BTF prototype a call did not match (func_info_aux[].unreliable)
        self.unreliable_subprogs: set[int] = set()
        self.force_print_state = False  # the next instruction prints the whole state (after a return)
        self.time_us = 0
        self._liveness = None  # liveness.Liveness, computed when first needed
        self._changes_pkt_data: frozenset[int] | None = None  # computed when a global call first asks
        self.live_stack = None  # live_stack.LiveStack: the stack slots each kept state may still read
        # what the next recorded step carries from the branch that pushed its path
        self.cur_prev_step: int | None = None
        self.entry_note = ""
        self.entry_state = NO_ENTRY  # the trace's entry registers of the path just popped

    @property
    def liveness(self):
        """``compute_live_registers``: the registers live before each instruction (computed
        the first time pruning compares states, or the log prints it)."""
        if self._liveness is None:
            self._liveness = compute_live_registers(self.insns, call_params(self.prog))
        return self._liveness

    @property
    def changes_pkt_data(self) -> frozenset[int]:
        """The functions (by first slot) that may move the packet (``cfg.changes_pkt_data``,
        with the BTF ids the kernel gives the kfuncs that may)."""
        if self._changes_pkt_data is None:
            btf = getattr(self.prog, "kernel_btf", None)
            ids = frozenset(i for name in PKT_CHANGING_KFUNCS for i in (btf.find_all(name, "func") if btf else ()))
            self._changes_pkt_data = changes_pkt_data(self.insns, ids)
        return self._changes_pkt_data

    # -- check_reg_arg ------------------------------------------------------------------
    def read_reg(self, state: State, regno: int) -> Reg:
        """``check_reg_arg(.., SRC_OP)``: a register the instruction reads must be set."""
        if regno >= MAX_BPF_REG:
            raise Reject(f"R{regno} is invalid")
        self.log.scratch_regs.add(regno)
        reg = state.regs[regno]
        if reg.type == NOT_INIT:
            raise Reject(f"R{regno} !read_ok")
        return reg

    @staticmethod
    def check_reg_write(regno: int) -> None:
        """``check_reg_arg(.., DST_OP)``: a register the instruction writes, never the frame pointer."""
        if regno >= MAX_BPF_REG:
            raise Reject(f"R{regno} is invalid")
        if regno == BPF_REG_FP:
            raise Reject("frame pointer is read only")

    def write_reg(self, state: State, regno: int, reg: Reg) -> None:
        self.check_reg_write(regno)
        self.log.scratch_regs.add(regno)
        reg.frameno = reg.frameno if reg.type == PTR_TO_STACK else 0
        state.regs[regno] = reg

    def new_id(self) -> int:
        self.id_gen += 1
        return self.id_gen

    def assign_scalar_id_before_mov(self, reg: Reg) -> None:
        """A scalar about to be copied gets an id its copy shares (``sync_linked_regs``
        then carries what a branch learns about one to the other); a source that is
        itself another's value plus a constant loses that link first (one link deep)."""
        if reg.type != SCALAR:
            return
        if reg.id & BPF_ADD_CONST:
            reg.id, reg.off = 0, 0
        if not reg.id and not reg.s.var_off.is_const:
            reg.id = self.new_id()

    def update_stack_depth(self, depth: int, frame=None) -> None:
        """The program's stack and that of the function owning ``frame`` (the frame the
        pointer points into; the current function's without one) reach ``depth`` bytes
        (rounded to 8)."""
        depth = (depth + 7) // 8 * 8
        self.stack_depth = max(self.stack_depth, depth)
        sub = frame.subprog if frame is not None else self.subprogs.of(self.insn_idx or 0)
        self.sub_stack_depth[sub] = max(self.sub_stack_depth.get(sub, 0), depth)

    def stack_depths(self) -> list[int]:
        """Per function, main program first (what the JIT sizes each frame by)."""
        return [self.sub_stack_depth.get(start, 0) for start in self.subprogs.starts]

    def printed_stack_depths(self) -> list[int]:
        """The log's ``stack depth``: after an accept, without the functions no path
        walked (``opt_remove_dead_code`` drops a function whose every instruction is
        unseen before the kernel prints the figures)."""
        starts = self.subprogs.starts
        if self.error is None:
            ends = [*starts[1:], len(self.insns)]
            starts = [s for s, e in zip(starts, ends, strict=True) if any(self.insn_seen[s:e])]
        return [self.sub_stack_depth.get(start, 0) for start in starts]

    def internal_error(self, exc: Exception) -> InternalError:
        return InternalError(f"{type(exc).__name__}: {exc}", self.insn_idx)

    # -- the paths still to explore ------------------------------------------------------
    def push_stack(self, state: State, insn: int, from_insn: int, *, async_cb: bool = False) -> None:
        """A path to explore later; ``async_cb``: an async callback's (``push_async_cb``), which
        starts afresh: it descends from no kept state."""
        if len(self.stack) + 1 > BPF_COMPLEXITY_LIMIT_JMP_SEQ:
            raise Reject(f"The sequence of {len(self.stack) + 1} jumps is too complex"
                         + (" for async cb." if async_cb else "."))
        if not async_cb:
            self.explored.branch_pushed()
        self.stack.append((state, insn, from_insn, len(self.log.lines), self.cur_prev_step,
                           None if async_cb else self.explored.checkpoints))

    def _scc_exit(self, kept) -> None:
        from .prune import maybe_exit_scc

        maybe_exit_scc(self, kept)

    def end_path(self) -> None:
        """``update_branch_counts``: the current path ended (call before ``pop_stack``)."""
        self.explored.path_ended(self._scc_exit if self.log.level >= 2 else None)

    def pop_stack(self) -> tuple[State, int, int] | None:
        """After ``end_path``: the next pushed path (state, insn, the branch it came from),
        or None when done."""
        if not self.stack:
            return None
        state, insn, from_insn, log_pos, prev_step, self.explored.checkpoints = self.stack.pop()
        if self.log.level == 1:
            self.log.truncate(log_pos)
        self.cur_prev_step = prev_step
        self.entry_note = f"from {from_insn} to {insn}"
        self.entry_state = self.trace.entry_of(state.frame) if self.record_states else NO_ENTRY
        # the kernel marks the whole state scratched when a path ends: the popped state
        # prints in full before its first instruction (after the "from" line at level 2)
        self.log.mark_verifier_state_scratched()
        return state, insn, from_insn

    # -- the trace ----------------------------------------------------------------------
    def record(self, state: State, insn: int, event: str | None = None, note: str = "",
               regs: tuple[int, ...] | None = None, slots: bool = True) -> None:
        """One ``Step`` of the trace: the state after ``insn`` (no-op without a trace).
        ``regs``/``slots``: what the instruction alone may have changed (the registers, and
        whether any stack slot) — nothing else ran on the state since the step before, unless
        the step opens a path, ends one (an event) or follows ``is_state_visited``."""
        if self.record_states:
            if event is not None or self.entry_note or insn in self.explored.points:
                regs, slots = None, True
            self.cur_prev_step = self.trace.record(state.frame, insn, self.cur_prev_step, event,
                                                   note or self.entry_note, self.entry_state, regs, slots)
        self.entry_note, self.entry_state = "", NO_ENTRY


def covering_linfo(line_info, insn_cnt: int) -> list:
    """``find_linfo`` for every instruction at once: the line record an instruction
    belongs to is the last one starting at or before it (None before the first)."""
    starts = sorted(line_info, key=lambda li: li.insn)
    out, k, cur = [], 0, None
    for i in range(insn_cnt):
        while k < len(starts) and starts[k].insn <= i:
            cur, k = starts[k], k + 1
        out.append(cur)
    return out
