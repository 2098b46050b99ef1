"""The program's shape before any value is tracked, in the kernel's order:
``add_subprog``/``check_subprogs`` (where functions start, which are global, every
jump inside its function, every function ending in an exit or a jump),
``resolve_pseudo_ldimm64`` (reserved fields of loads, 64-bit immediate loads and
the maps they name, known opcodes) and ``check_cfg`` (no unreachable
instruction, no jump into the middle of a 64-bit load)."""

from __future__ import annotations

from bisect import bisect_right

from ..isa import opcodes as op
from ..isa.flow import all_successors, function_starts, jump_target, pseudo_func_target
from ..isa.helpers import BpfFunc
from ..isa.valid import KNOWN_OPCODES, unknown_opcode
from .helper_protos import CHANGES_PKT_DATA
from .insn_aux import per_insns

BTF_FUNC_GLOBAL = 1  # linkage of a global function in BTF
BPF_MAX_VAR_OFF = 1 << 29
MAP_PSEUDO_KINDS = (op.BPF_PSEUDO_MAP_FD, op.BPF_PSEUDO_MAP_IDX, op.BPF_PSEUDO_MAP_VALUE, op.BPF_PSEUDO_MAP_IDX_VALUE)
# the fields of ``code`` the passes over every slot test (read once per slot: these passes
# run over every instruction of every program before its walk)
_CLASS_MASK, _OP_MASK, _MODE_MASK = 0x07, 0xF0, 0xE0
_JMP_CLASSES = (op.BPF_JMP, op.BPF_JMP32)
_LD_IMM64, _GOTOL = op.BPF_LD | op.BPF_IMM | op.BPF_DW, op.BPF_JMP32 | op.BPF_JA
_FUNCTION_ENDS = (op.BPF_JMP | op.BPF_EXIT, op.BPF_JMP | op.BPF_JA, op.BPF_JMP32 | op.BPF_JA)
_LDX_MODES = (op.BPF_MEM, op.BPF_MEMSX)
_JMP_CALL = op.BPF_JMP | op.BPF_CALL
_EXITS = (op.BPF_JMP | op.BPF_EXIT, op.BPF_JMP32 | op.BPF_EXIT)
BPF_FUNC_TAIL_CALL = BpfFunc.tail_call
# the legacy packet loads: BPF_LD | BPF_ABS or BPF_IND, of any size field
LD_PACKET_CODES = frozenset(op.BPF_LD | mode | size for mode in (op.BPF_ABS, op.BPF_IND)
                            for size in (op.BPF_B, op.BPF_H, op.BPF_W, op.BPF_DW))


@per_insns
def _function_starts(insns) -> tuple[int, ...]:
    return tuple(function_starts(insns, callbacks=True))


def _is_tail_call(insn) -> bool:
    return insn.code == _JMP_CALL and insn.src == 0 and insn.imm == BPF_FUNC_TAIL_CALL


@per_insns
def abnormal_returns(insns) -> dict[int, tuple[bool, bool]]:
    """``subprog_info[].has_ld_abs`` and ``.has_tail_call`` (``check_subprogs``): by each
    function's first slot, whether it holds a legacy packet load, a tail call."""
    starts = _function_starts(insns)
    ends = [*starts[1:], len(insns)]
    return {start: (any(insn.code in LD_PACKET_CODES for insn in insns[start:end]),
                    any(_is_tail_call(insn) for insn in insns[start:end]))
            for start, end in zip(starts, ends, strict=True)}


@per_insns
def _pkt_call_graph(insns) -> tuple[tuple[int, ...], frozenset[int], dict[int, frozenset[int]], dict[int, set[int]]]:
    """By function (first slot): those holding a helper call that may move the packet, the
    kfuncs each calls (by BTF id), the functions each calls or takes as a callback."""
    starts = _function_starts(insns)
    ends = [*starts[1:], len(insns)]
    marked: set[int] = set()
    kfuncs: dict[int, frozenset[int]] = {}
    callees: dict[int, set[int]] = {}
    for start, end in zip(starts, ends, strict=True):
        callees[start], called = set(), set()
        for i in range(start, end):
            insn = insns[i]
            if insn.code == _JMP_CALL and insn.src == 0 and insn.imm in CHANGES_PKT_DATA:
                marked.add(start)
            elif insn.code == _JMP_CALL and insn.src == op.BPF_PSEUDO_KFUNC_CALL and not insn.off:
                called.add(insn.imm)
            elif insn.code == _JMP_CALL and insn.src == op.BPF_PSEUDO_CALL:
                callees[start].add(jump_target(insn, i))
            elif insn.code == _LD_IMM64 and insn.src == op.BPF_PSEUDO_FUNC:
                callees[start].add(pseudo_func_target(insn, i))
        kfuncs[start] = frozenset(called)
    return starts, frozenset(marked), kfuncs, callees


def changes_pkt_data(insns, pkt_kfunc_ids: frozenset[int] = frozenset()) -> frozenset[int]:
    """``subprog_info[].changes_pkt_data``: the functions (by first slot) that may move the
    packet. ``check_cfg`` marks a function holding a call that may
    (``bpf_helper_changes_pkt_data``, or a kfunc of ``pkt_kfunc_ids``:
    ``is_kfunc_pkt_changing``), reachable or not, and merges into it the mark of every
    function it calls or takes the address of (a callback). A caller's packet pointers do
    not survive a call of a global function so marked (checked against 6.18.44: directly,
    through a static function, a global one, a bpf_loop callback, a tail call, a kfunc, a
    branch the walk proves dead)."""
    starts, helpers, kfuncs, callees = _pkt_call_graph(insns)
    marked = set(helpers) | {start for start in starts if kfuncs[start] & pkt_kfunc_ids}
    grew = True
    while grew:  # the calls may run either way round the program's order
        grew = False
        for start in starts:
            if start not in marked and callees[start] & marked:
                marked.add(start)
                grew = True
    return frozenset(marked)


@per_insns
def flow_successors(insns) -> tuple[tuple[int, ...], ...]:
    """``successors`` of every slot (kept per instruction tuple: ``check_cfg`` walks them)."""
    return all_successors(insns)


@per_insns
def insn_successors(insns) -> tuple[tuple[int, ...], ...]:
    """``bpf_insn_successors`` as the analyses after ``check_cfg`` read them (the
    postorder, the register and stack liveness, the loops): the flow successors, and for
    an instruction that may leave its function without an exit (a ``bpf_tail_call`` that
    succeeds, a legacy packet load ``BPF_LD_[ABS|IND]`` that fails) also the function's
    exit (``visit_abnormal_return_insn``: the fall-through, then ``exit_idx``, the
    function's last exit, or slot 0 when it has none). Linux e40f5a6bf88a and
    ee861486e377, in 6.18.44: no write after such an instruction is sure on every path,
    so no ``must_write_acc`` crosses it."""
    succ = flow_successors(insns)
    calls = [i for i, insn in enumerate(insns) if insn.code in LD_PACKET_CODES or _is_tail_call(insn)]
    if not calls:
        return succ
    starts = _function_starts(insns)
    exit_idx = dict.fromkeys(starts, 0)
    for i, insn in enumerate(insns):  # check_subprogs keeps the last exit of each function
        if insn.code in _EXITS:
            exit_idx[starts[bisect_right(starts, i) - 1]] = i
    out = list(succ)
    for i in calls:
        out[i] = (i + 1, exit_idx[starts[bisect_right(starts, i) - 1]])
    return tuple(out)


class Subprogs:
    """``env->subprog_info``: the functions of a program, by their first slot."""

    def __init__(self, prog):
        self.prog = prog
        # add_subprog: every bpf-to-bpf call's target and every function whose address is
        # taken (a callback)
        self.starts: list[int] = list(_function_starts(prog.insns))
        self._func_info: dict | None = None  # func_info records by instruction, when first asked

    def of(self, insn: int) -> int:
        """The first slot of the function holding ``insn``."""
        k = bisect_right(self.starts, insn)  # the starts are sorted
        return self.starts[k - 1] if k else 0

    def index(self, start: int) -> int:
        return self.starts.index(start)

    def func_info(self, start: int):
        btf = getattr(self.prog, "btf", None)
        by_insn = self._func_info
        if by_insn is None:  # the first record of each instruction, as a scan would find
            by_insn = self._func_info = {}
            for fi in getattr(self.prog, "func_info", ()):
                by_insn.setdefault(fi.insn, fi)
        return by_insn.get(start), btf

    def name(self, start: int) -> str:
        fi, _ = self.func_info(start)
        return fi.name if fi is not None else f"func#{self.index(start)}"

    def is_global(self, start: int) -> bool:
        fi, btf = self.func_info(start)
        return fi is not None and btf is not None and btf.type(fi.type_id).linkage == BTF_FUNC_GLOBAL

    def proto(self, start: int):
        """The BTF ``func_proto`` of the function at ``start``, or None."""
        fi, btf = self.func_info(start)
        if fi is None or btf is None:
            return None
        return btf.type(btf.type(fi.type_id).type)


def check_subprogs(insns, subprogs: Subprogs, reject) -> None:
    """Every jump lands inside the program and its own function; every function
    ends in an exit or a jump."""
    n = len(insns)
    if n == 0:
        raise reject("last insn is not an exit or jmp")
    starts = subprogs.starts  # sorted, the first is 0
    ends = [*starts[1:], n]
    k, lo, hi = 0, starts[0], ends[0]  # the function holding slot i
    for i, insn in enumerate(insns):
        while i >= hi:
            k += 1
            lo, hi = starts[k], ends[k]
        code = insn.code
        if code & _CLASS_MASK not in _JMP_CLASSES:
            continue
        operation = code & _OP_MASK
        if operation == op.BPF_EXIT:
            continue
        if operation == op.BPF_CALL:  # a bpf-to-bpf call may enter another function
            if insn.src != op.BPF_PSEUDO_CALL:
                continue
            target = i + insn.imm + 1
            if not 0 <= target < n:
                raise reject(f"jump out of range from insn {i} to {target}")
            continue
        target = i + (insn.imm if code == _GOTOL else insn.off) + 1
        if not lo <= target < hi:  # outside the program, or into another function
            raise reject(f"jump out of range from insn {i} to {target}")
    for end in ends:
        if insns[end - 1].code not in _FUNCTION_ENDS:
            raise reject("last insn is not an exit or jmp")


def resolve_pseudo_ldimm64(insns, maps, reject) -> None:
    """The pass over every instruction before the walk: reserved fields of loads,
    well-formed 64-bit immediate loads naming maps that exist, known opcodes."""
    map_loads = _map_loads(insns)
    if map_loads is None:  # a slot fails a check of its own: the whole pass, in order
        _each_slot(insns, reject, lambda i: _check_map_load(insns, i, maps, reject))
        return
    for i in map_loads:  # every slot passes its own checks: only the maps can fail
        _check_map_load(insns, i, maps, reject)


class _SlotRejected(Exception):
    pass


@per_insns
def _map_loads(insns) -> tuple[int, ...] | None:
    """The 64-bit loads that name a map, when every slot passes the checks that need no
    map (kept per instruction tuple); None when one does not."""
    found: list[int] = []
    try:
        _each_slot(insns, _SlotRejected, found.append)
    except _SlotRejected:
        return None
    return tuple(found)


def _each_slot(insns, reject, map_load) -> None:
    """The checks of each slot in order; ``map_load(i)`` at each 64-bit load naming a map."""
    n = len(insns)
    i = 0
    while i < n:
        insn = insns[i]
        code = insn.code
        if code & _CLASS_MASK == op.BPF_LDX and (code & _MODE_MASK not in _LDX_MODES or insn.imm):
            raise reject("BPF_LDX uses reserved fields")
        if code == _LD_IMM64:
            second = insns[i + 1] if i + 1 < n else None
            if second is None or second.code or second.dst or second.src or second.off:
                raise reject("invalid bpf_ld_imm64 insn")
            if insn.src not in (0, op.BPF_PSEUDO_BTF_ID, op.BPF_PSEUDO_FUNC):
                if insn.src in (op.BPF_PSEUDO_MAP_FD, op.BPF_PSEUDO_MAP_IDX) and second.imm:
                    raise reject("unrecognized bpf_ld_imm64 insn")
                if insn.src not in MAP_PSEUDO_KINDS:
                    raise reject("unrecognized bpf_ld_imm64 insn")
                map_load(i)
            i += 2
            continue
        if code not in KNOWN_OPCODES:
            raise reject(unknown_opcode(code))
        i += 1


def _check_map_load(insns, i: int, maps, reject) -> None:
    """The map a 64-bit load names exists, and a direct value offset lies inside it."""
    insn, second = insns[i], insns[i + 1]
    if not 0 <= insn.imm < len(maps):
        raise reject(f"fd {insn.imm} is not pointing to valid bpf_map")
    if insn.src in (op.BPF_PSEUDO_MAP_VALUE, op.BPF_PSEUDO_MAP_IDX_VALUE):
        off = second.imm & 0xFFFFFFFF
        if off >= BPF_MAX_VAR_OFF:
            raise reject(f"direct value offset of {off} is not allowed")
        if off >= maps[insn.imm].value_size:
            raise reject(f"invalid access to map value pointer, value_size={maps[insn.imm].value_size} "
                         f"off={off}")


def check_cfg(insns, reject) -> None:
    """Every slot reachable over the flow graph, callees included (calls also fall
    through), and no jump into the second slot of a 64-bit immediate load."""
    n = len(insns)
    succ = flow_successors(insns)
    seen = bytearray(n)
    work = [0]
    pop, push, extend = work.pop, work.append, work.extend
    while work:
        i = pop()
        if not 0 <= i < n or seen[i]:
            continue
        seen[i] = 1
        extend(succ[i])
        insn = insns[i]
        code = insn.code
        if code == _LD_IMM64:
            if i + 1 >= n:
                raise reject("invalid BPF_LD_IMM insn")
            if insn.src == op.BPF_PSEUDO_FUNC:  # visit_func_call_insn: the callback
                push(pseudo_func_target(insn, i))
        elif code & _OP_MASK == op.BPF_CALL and code & _CLASS_MASK in _JMP_CLASSES \
                and insn.src == op.BPF_PSEUDO_CALL:
            push(i + insn.imm + 1)
    i = 0
    while i < n:
        if not seen[i]:
            raise reject(f"unreachable insn {i}")
        if insns[i].code == _LD_IMM64:
            if i + 1 < n and seen[i + 1]:
                raise reject(f"jump into the middle of ldimm64 insn {i}")
            i += 1
        i += 1


def check_ldimm64_targets(insns, reject) -> None:
    """No jump lands on the second slot of a 64-bit immediate load (without the
    reachability walk: for engines that run a program the verifier did not see)."""
    targets = {jump_target(insn, j) for j, insn in enumerate(insns) if not insn.is_call}
    for i, insn in enumerate(insns):
        if insn.is_ld_imm64 and i + 1 in targets:
            raise reject(f"jump into the middle of ldimm64 insn {i}")


@per_insns
def compute_scc(insns) -> tuple[int, ...]:
    """``compute_scc``: the strongly connected component (a loop) of every slot, numbered
    from 1 as the kernel numbers them; 0 for a slot in no loop. A component counts when it
    has two slots or more or jumps to itself (6.18.44 does not count a call of a helper that
    calls a callback, as later kernels do: measured on cilium's subprog_reloc). Tarjan's
    algorithm as the kernel runs it without recursion: a DFS from each unvisited slot in
    order, successors fall-through first, a component numbered when its root is left."""
    n = len(insns)
    succ = [tuple(s for s in out if 0 <= s < n) for out in insn_successors(insns)]
    not_on_stack = n + 1
    pre, low, scc = [0] * n, [0] * n, [0] * n
    next_pre, next_scc = 1, 1
    for root in range(n):
        if pre[root]:
            continue
        stack: list[int] = []
        dfs = [root]
        while dfs:
            w = dfs[-1]
            if not pre[w]:
                pre[w] = low[w] = next_pre
                next_pre += 1
                stack.append(w)
            unvisited = next((s for s in succ[w] if not pre[s]), None)
            # every visited successor lowers w's low before the first unvisited one is entered
            for s in succ[w]:
                if not pre[s]:
                    break
                low[w] = min(low[w], low[s])
            if unvisited is not None:
                dfs.append(unvisited)
                continue
            if low[w] < pre[w]:  # a slot above it on the stack is reachable: w stays
                dfs.pop()
                continue
            assign = stack[-1] != w or w in succ[w]
            while True:
                t = stack.pop()
                low[t] = not_on_stack
                if assign:
                    scc[t] = next_scc
                if t == w:
                    break
            if assign:
                next_scc += 1
            dfs.pop()
    return tuple(scc)
