"""The walk: ``bpf_check`` runs ``check_cfg``, then ``do_check`` over every path,
one instruction at a time (``do_check_insn`` dispatches to the rules of each
class), then each global function on its own (``do_check_subprogs``).

Follows the structure and the messages of Linux 6.18's kernel/bpf/verifier.c
with the privileges of root; the rules live in modules named after the
kernel's concepts (``cfg``, ``liveness``, ``prune``, ``alu``, ``mem``,
``btf_access``, ``calls``, ``jumps``, ``log``). Writes the log in the kernel's
level-1/2 format and records every step in a ``Trace``. Written from reading
the kernel; tests compare with the running kernel.
"""

from __future__ import annotations

import time

from ..errors import BpfnbError
from ..isa import opcodes as op
from ..isa.disasm import format_insn
from ..isa.flow import jump_target
from ..logtext import NOISE
from .alu import check_alu_op
from .attach import check_attach_btf_id
from .btf_access import check_pseudo_btf_id
from .calls import check_call, check_exit, hidden_subprog_exit, optimize_bpf_loop
from .cfg import abnormal_returns, check_cfg, check_subprogs, compute_scc, resolve_pseudo_ldimm64
from .env import BPF_COMPLEXITY_LIMIT_INSNS, VerifierEnv
from .func_args import BTF_SCALAR_KINDS, btf_prepare_func_args
from .insn_aux import InsnsCache
from .jumps import check_cond_jmp_op
from .kfuncs import add_kfunc_calls, kfunc_call_name
from .live_stack import LiveStack
from .liveness import print_liveness
from .log import Reject
from .mem import (
    BPF_REG_SIZE,
    check_atomic,
    check_ld_abs,
    check_ld_imm,
    check_load_mem,
    check_st_mem,
    check_store_reg,
)
from .precision import push_jmp_history
from .progress import CHECK_EVERY, interrupted
from .prune import is_state_visited
from .regstate import PTR_TO_CTX, Reg, scalar_reg
from .scalar import Scalar
from .state import State, format_frame, initial_state

USEC_PER_SEC = 1_000_000
MEMORY_CLASSES = (op.BPF_LDX, op.BPF_STX, op.BPF_ST)
LD_IMM64 = op.BPF_LD | op.BPF_IMM | op.BPF_DW
SHAPE_CHECKED = InsnsCache()  # instruction tuples check_subprogs and check_cfg passed
UNMODELLED_TYPES = ("ext", "syscall")


def bpf_check(env: VerifierEnv) -> None:
    """Verify ``env.prog``: on a reject, ``env.error``/``env.insn_idx`` say where;
    a Python exception inside the verifier raises ``InternalError``."""
    started = time.perf_counter()
    log = env.log
    try:
        if env.prog.type in UNMODELLED_TYPES:
            raise Reject(f"bpfnb does not model {env.prog.type} programs")
        # the shape checks need the instructions alone: passed once, passed for good
        # (the checks between them, on the attach target and the maps, run every time, in
        # the kernel's order)
        shape_checked = SHAPE_CHECKED.get(env.insns, False)
        if not shape_checked:
            add_kfunc_calls(env)  # the kernel BTF is the machine's: checked once per instructions too
        starts = env.subprogs.starts
        if log.level >= 2:  # add_subprog_and_kfunc's last words
            for k, start in enumerate(starts):
                log.verbose(f"func#{k} @{start}")
        if not shape_checked:
            check_subprogs(env.insns, env.subprogs, Reject)
        check_abnormal_return(env)
        check_attach_btf_id(env)
        resolve_pseudo_ldimm64(env.insns, getattr(env.prog, "maps", ()), Reject)
        check_pseudo_btf_ids(env)
        if not shape_checked:
            check_cfg(env.insns, Reject)
            SHAPE_CHECKED.put(env.insns, True)
        env.live_stack = LiveStack(env.insns, env.subprogs, env.explored.points, log)
        if log.level >= 2:
            print_liveness(log, env.insns, env.liveness.live, call_name=lambda insn: kfunc_call_name(env, insn),
                           scc=compute_scc(env.insns))
        btf_prepare_main_args(env)
        do_check(env)
        do_check_subprogs(env)
        optimize_bpf_loop(env)
    except Reject as exc:
        _reject(env, exc)
    except KeyboardInterrupt:
        raise interrupted(env.prog.name, env.walk_insn, env.insn_processed) from None
    except BpfnbError:
        raise
    except Exception as exc:  # a bug in bpfnb, never a verdict on the program
        raise env.internal_error(exc) from exc
    finally:
        env.progress.close()
    env.time_us = int((time.perf_counter() - started) * USEC_PER_SEC)
    print_verification_stats(env)


def _reject(env: VerifierEnv, exc: Reject) -> None:
    log = env.log
    start = env.insn_log_pos if env.insn_log_pos is not None else len(log.lines)
    for line in str(exc).splitlines():
        log.verbose(line)
    printed = [ln for ln in log.lines[start:] if ln.strip() and not NOISE.match(ln)]
    env.error = printed[0] if printed else (str(exc).splitlines()[0] if str(exc) else "rejected")
    log.glue_next = exc.continues
    if env.insn_idx is None and len(env.trace):
        env.insn_idx = env.trace.insn[-1]
    if env.cur_state is not None and env.insn_idx is not None:
        env.record(env.cur_state, env.insn_idx, "error", env.error)


def print_verification_stats(env: VerifierEnv) -> None:
    explored = env.explored
    log = env.log
    log.verbose(f"verification time {env.time_us} usec")
    log.verbose("stack depth " + "+".join(str(d) for d in env.printed_stack_depths() or [env.stack_depth]))
    log.verbose(f"processed {env.insn_processed} insns (limit {BPF_COMPLEXITY_LIMIT_INSNS}) max_states_per_insn "
                f"{explored.max_states_per_insn} total_states {explored.total_states} "
                f"peak_states {explored.peak_states} mark_read 0")


def verbose_linfo(env: VerifierEnv, insn_idx: int) -> None:
    """The source line of the record ``insn_idx`` belongs to, unless it is the record
    printed last or another record of the same file and line (records differing only
    in their column print once; the last printed one stays the one compared with)."""
    li, prev = env.linfo[insn_idx], env.prev_linfo
    if li is None or li is prev:
        return
    if prev is not None and li.file == prev.file and li.line == prev.line:
        return
    # a record without text still prints, as ";  @ file:line"
    env.log.verbose(f"; {li.text.lstrip()} @ {li.file.rsplit('/', 1)[-1]}:{li.line}")
    env.prev_linfo = li


def check_pseudo_btf_ids(env: VerifierEnv) -> None:
    """``resolve_pseudo_ldimm64``'s ``check_pseudo_btf_id``: every ``ld_imm64`` of a kernel
    object by BTF id, reachable or not, names one the kernel can place, before the walk
    (which loads the register found here: ``env.pseudo_btf_regs``)."""
    insns = env.insns
    for i, insn in enumerate(insns):
        if insn.code == LD_IMM64 and insn.src == op.BPF_PSEUDO_BTF_ID and i + 1 < len(insns):
            key = (insn.imm, insns[i + 1].imm)
            if key not in env.pseudo_btf_regs:
                env.pseudo_btf_regs[key] = check_pseudo_btf_id(env, *key)


def check_abnormal_return(env: VerifierEnv) -> None:
    """A function other than the main one holding a legacy packet load or a tail call may
    return without its exit (``hidden_subprog_exit``), so its caller must take an int back:
    ``check_btf_func`` wants its BTF prototype to return a scalar (an int of at most 8
    bytes or an enum), ``check_abnormal_return`` refuses it in a program without func info."""
    starts = env.subprogs.starts
    if len(starts) == 1:
        return
    returns = abnormal_returns(env.insns)
    with_btf = bool(getattr(env.prog, "func_info", ()))
    for start in starts[1:]:
        ld_abs, tail_call = returns[start]
        if not (ld_abs or tail_call):
            continue
        if not with_btf:
            raise Reject("LD_ABS is not allowed in subprogs without BTF" if ld_abs
                         else "tail_call is not allowed in subprogs without BTF")
        if not _returns_scalar(env, start):
            raise Reject("LD_ABS is only allowed in functions that return 'int'." if ld_abs
                         else "tail_call is only allowed in functions that return 'int'.")


def _returns_scalar(env: VerifierEnv, start: int) -> bool:
    """``btf_type_is_small_int`` or ``btf_is_any_enum`` of the function's return type."""
    proto = env.subprogs.proto(start)
    if proto is None:
        return False
    btf = env.prog.btf
    ret = btf.type(btf.resolve(proto.type))
    return (ret.kind == "int" and ret.size <= BPF_REG_SIZE) or ret.kind in ("enum", "enum64")


def btf_prepare_main_args(env: VerifierEnv) -> None:
    """``do_check_common`` for the main program: with BTF func info, its prototype is
    prepared as a function's (``btf_prepare_func_args``, whose messages say what a
    global function could not have); verification goes on either way."""
    if env.subprogs.func_info(0)[0] is not None:
        btf_prepare_func_args(env, 0)


def do_check_subprogs(env: VerifierEnv) -> None:
    """A global function is verified once, for any arguments of its prototype, when
    a verified path calls it (the ones only dead code calls are never looked at);
    verifying one may reach calls of others."""
    subprogs = env.subprogs
    verified: set[int] = set()
    while True:
        todo = [start for start in subprogs.starts[1:]
                if subprogs.is_global(start) and start in env.called_globals and start not in verified]
        if not todo:
            return
        for start in todo:
            verified.add(start)
            _check_global_subprog(env, start)


def _check_global_subprog(env: VerifierEnv, start: int) -> None:
    """``do_check_common`` for one global function: its arguments from its BTF prototype."""
    subprogs = env.subprogs
    index = subprogs.index(start)
    name = subprogs.name(start)
    env.log.verbose(f"Validating {name}() func#{index}...")
    state = initial_state()
    state.frame.subprog = start
    state.first_insn_idx = start  # its jump history, and so its backtracking, starts here
    state.regs[1] = Reg()
    proto = subprogs.proto(start)
    btf = env.prog.btf
    for k, param in enumerate(proto.params if proto is not None else ()):
        t = btf.type(btf.resolve(param.type))
        state.regs[k + 1] = scalar_reg() if t.kind in BTF_SCALAR_KINDS else Reg(PTR_TO_CTX, Scalar.const(0))
    env.stack.clear()
    env.validating_subprog = True
    do_check(env, state, start)
    env.log.verbose(f"Func#{index} ('{name}') is safe for any args that match its prototype")


def do_check(env: VerifierEnv, state: State | None = None, start: int = 0) -> None:
    log = env.log
    insns = env.insns
    state = state or initial_state()
    log.mark_verifier_state_scratched()
    insn_idx, prev_insn = start, -1
    env.explored.checkpoints = None  # a new walk: no state kept on its path yet
    do_print_state = False
    env.cur_prev_step = None
    while True:
        env.insn_processed += 1
        env.walk_insn = insn_idx
        if env.insn_processed > env.limit:
            raise Reject(f"BPF program is too large. Processed {env.insn_processed} insn")
        if not env.insn_processed % CHECK_EVERY:
            env.progress.update(env.insn_processed)
        env.cur_hist_ent = False  # no jump history recorded for this instruction yet
        state.last_insn_idx, state.insn_idx = prev_insn, insn_idx
        if env.prune and env.explored.is_prune_point(insn_idx) and is_state_visited(env, state, insn_idx):
            if log.level:
                if do_print_state:
                    log.verbose("")
                    log.verbose(f"from {prev_insn} to {insn_idx}: safe")
                else:
                    log.verbose(f"{insn_idx}: safe")
            env.record(state, insn_idx, "pruned", "safe: the state is within one already verified here")
            env.end_path()  # update_branch_counts (SCC exits) before the live stack update
            env.live_stack.update(state)
            popped = env.pop_stack()
            if popped is None:
                return
            state, insn_idx, prev_insn = popped
            do_print_state = True
            continue
        env.insn_seen[insn_idx] = 1
        if env.prune and env.explored.is_jmp_point(insn_idx):
            push_jmp_history(env, state)
        if log.level >= 2 and do_print_state:
            log.verbose("")
            log.verbose(f"from {prev_insn} to {insn_idx}:{format_frame(state.frame)}{state.refs_text()}")
            do_print_state = False  # printing the whole state leaves it scratched, as the kernel's does
        if log.level:
            log.print_insn_state(state, insn_idx)
            verbose_linfo(env, insn_idx)
            insn = insns[insn_idx]
            nxt = insns[insn_idx + 1] if insn.is_ld_imm64 and insn_idx + 1 < len(insns) else None
            log.print_insn(f"{insn_idx}: {format_insn(insn, nxt, call_name=kfunc_call_name(env, insn))}")
        env.insn_idx = insn_idx
        env.cur_state = state
        env.insn_log_pos = len(log.lines)
        env.live_stack.reset_write_marks(state, insn_idx)
        result = do_check_insn(env, state, insn_idx)
        env.live_stack.commit_write_marks()
        env.insn_idx = None
        if result is None:  # the path ended
            env.end_path()  # update_branch_counts (SCC exits) before the live stack update
            env.live_stack.update(state)
            popped = env.pop_stack()
            if popped is None:
                return
            state, insn_idx, prev_insn = popped
            do_print_state = True
            continue
        prev_insn, insn_idx = insn_idx, result
        if env.force_print_state:
            do_print_state, env.force_print_state = True, False


def do_check_insn(env: VerifierEnv, state: State, i: int) -> int | None:
    """Check one instruction; the next one on this path, or None when the path ended."""
    insn = env.insns[i]
    cls = insn.cls
    if insn.is_alu_class:
        check_alu_op(env, state, insn)
        env.record(state, i, regs=(insn.dst, insn.src), slots=False)  # its operands, nothing else
        return i + 1
    if env.record_states and cls in MEMORY_CLASSES:
        # a load or store: its registers (r0 for an atomic compare-and-exchange) and the stack
        # slots it reached, which the log's scratch marks name (counted apart, then merged)
        log = env.log
        reached: set[int] | bool = set()
        before, log.scratch_slots = log.scratch_slots, reached
        try:
            _check_memory_insn(env, state, insn, i)
        finally:
            if log.scratch_slots is reached:
                before |= reached
                log.scratch_slots = before
            else:  # the check cleared or set the marks itself: keep them, compare every slot
                reached = True
        env.record(state, i, regs=(insn.dst, insn.src, 0), slots=reached)
        return i + 1
    if cls in MEMORY_CLASSES:
        _check_memory_insn(env, state, insn, i)
        env.record(state, i, regs=(insn.dst, insn.src, 0))
        return i + 1
    if cls == op.BPF_LD:
        if insn.mode == op.BPF_IMM:
            check_ld_imm(env, state, insn, i)
            env.record(state, i, regs=(insn.dst,), slots=False)
            return i + 2
        check_ld_abs(env, state, insn)
        env.record(state, i)
        if len(state.frames) > 1:  # in a static function, the load that fails returns 0 from it
            return hidden_subprog_exit(env, state, i, scalar_reg(Scalar.const(0)))
        return i + 1
    return _check_jmp(env, state, insn, i)


def _check_memory_insn(env: VerifierEnv, state: State, insn, i: int) -> None:
    cls = insn.cls
    if cls == op.BPF_LDX:
        check_load_mem(env, state, insn, i)
    elif cls == op.BPF_STX:
        if insn.mode == op.BPF_ATOMIC:
            check_atomic(env, state, insn, i)
        else:
            if insn.mode != op.BPF_MEM or insn.imm:
                raise Reject("BPF_STX uses reserved fields")
            check_store_reg(env, state, insn, i)
    elif cls == op.BPF_ST:
        if insn.mode != op.BPF_MEM or insn.src:
            raise Reject("BPF_ST uses reserved fields")
        check_st_mem(env, state, insn, i)


def _check_jmp(env: VerifierEnv, state: State, insn, i: int) -> int | None:
    env.jmps_processed += 1
    jmp32 = insn.cls == op.BPF_JMP32
    if insn.op == op.BPF_CALL:
        if insn.uses_src_reg or (insn.src != op.BPF_PSEUDO_KFUNC_CALL and insn.off) or insn.src not in (
                0, op.BPF_PSEUDO_CALL, op.BPF_PSEUDO_KFUNC_CALL) or insn.dst or jmp32:
            raise Reject("BPF_CALL uses reserved fields")
        return check_call(env, state, insn, i)
    if insn.op == op.BPF_JA:
        if insn.uses_src_reg or insn.src or insn.dst or (insn.imm if not jmp32 else insn.off):
            raise Reject("BPF_JA uses reserved fields")
        env.record(state, i)
        return jump_target(insn, i)
    if insn.op == op.BPF_EXIT:
        if insn.uses_src_reg or insn.imm or insn.src or insn.dst or jmp32:
            raise Reject("BPF_EXIT uses reserved fields")
        return check_exit(env, state, i)
    if insn.op == op.BPF_JCOND:  # may_goto: either way
        if insn.code != op.BPF_JMP | op.BPF_JCOND or insn.src != op.BPF_MAY_GOTO or insn.dst or insn.imm \
                or not insn.off:
            raise Reject(f"invalid may_goto off {insn.off} imm {insn.imm}")
        env.record(state, i, "branch")
        env.push_stack(state.copy(), i + 1, i)
        return jump_target(insn, i)
    return check_cond_jmp_op(env, state, insn, i)


__all__ = ["BPF_COMPLEXITY_LIMIT_INSNS", "Reject", "VerifierEnv", "bpf_check", "do_check"]
