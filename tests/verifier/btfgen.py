"""Random ``tp_btf`` programs that walk the live kernel's BTF, for comparing
bpfnb's verifier with the kernel's (issue 15).

``random_btf_program(rng, btf)`` picks a tracepoint with struct arguments,
loads one or two of them from the context, walks pointer members of the
structs they point to (``sk_buff``, ``sock``, ``net_device``,
``task_struct``, ``file`` …), sometimes NULL-checks, calls helpers and
kfuncs that take BTF-typed arguments, and now and then injects a defect:
an access past the struct, pointer arithmetic before the NULL check, a
store through a BTF pointer, a context offset that is not a multiple of 8
or past the last argument, a helper argument of the wrong struct, an
acquired reference never released.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.isa.insn import encode
from bpfnb.program import program as make_program

TRACEPOINTS = ("kfree_skb", "consume_skb", "net_dev_xmit", "netif_receive_skb", "inet_sock_set_state",
               "tcp_retransmit_skb", "sched_switch", "sched_process_exec", "task_newtask", "sched_wakeup",
               "sched_process_fork", "tcp_probe", "net_dev_start_xmit", "writeback_dirty_inode_start",
               "file_check_and_advance_wb_err", "sock_exceed_buf_limit")
GET_CURRENT_TASK_BTF = 158
SKC_TO = (136, 137, 138, 139, 140, 178)  # bpf_skc_to_{tcp6,tcp,tcp_timewait,tcp_request,udp6,unix}_sock
KFUNCS_TASK = ("bpf_task_acquire", "bpf_task_release")
POINTER_SIZE = 8
EXIT_LABEL = -1  # a jump's placeholder target: the common exit
SIZE_CODES = {1: op.BPF_B, 2: op.BPF_H, 4: op.BPF_W, 8: op.BPF_DW}
WALK_REGS = (7, 8, 9)
MAX_RAW_TP_CTX = 12 * 8  # past the 12 u64 arguments a raw_tp context may have


def _ldx(dst: int, src: int, off: int, size: int = 8) -> Insn:
    return Insn(op.BPF_LDX | op.BPF_MEM | SIZE_CODES[size], dst, src, off)


def _mov(dst: int, src: int) -> Insn:
    return Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, dst, src)


def _movi(dst: int, imm: int) -> Insn:
    return Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, dst, 0, 0, imm)


def _null_exit(reg: int) -> Insn:
    return Insn(op.BPF_JMP | op.BPF_JEQ | op.BPF_K, reg, 0, EXIT_LABEL, 0)


def _members(btf, struct_id: int, base: int = 0, depth: int = 0):
    """(offset, member type id, bitfield) of every member, anonymous ones flattened."""
    out = []
    for m in btf.members(struct_id):
        off = base + m.bit_offset // 8
        if m.bitfield_size:
            out.append((off, m.type, True))
            continue
        t = btf.type(btf.resolve(m.type))
        if not m.name and t.kind in ("struct", "union") and depth < 3:
            out += _members(btf, btf.resolve(m.type), off, depth + 1)
        else:
            out.append((off, m.type, False))
    return out


class _Gen:
    def __init__(self, rng: random.Random, btf, defects: float):
        self.rng, self.btf, self.defects = rng, btf, defects
        self.insns: list[Insn] = []
        self.defect = ""
        self.always_check = False
        self.exit_through_zero = False
        self.rcu_section = False  # the body runs between bpf_rcu_read_lock and bpf_rcu_read_unlock

    def inject(self, name: str) -> bool:
        if self.defect or self.rng.random() >= self.defects:
            return False
        self.defect = name
        return True

    def struct_args(self, tp: str):
        _typedef, params = self.btf.trace_proto(tp)
        out = []
        for i, p in enumerate(params):
            t = self.btf.type(self.btf.resolve(p.type))
            if t.kind == "ptr" and self.btf.type(self.btf.resolve(t.type)).kind in ("struct", "union"):
                out.append((i, self.btf.resolve(t.type)))
        return params, out

    def walk(self, reg: int, struct_id: int, steps: int, checked: bool) -> None:
        rng, btf = self.rng, self.btf
        for _ in range(steps):
            size_of = btf.type(struct_id).size
            members = _members(btf, struct_id)
            if not members:
                return
            if self.always_check and not checked:  # whatever trust the pointer has, the same verdict
                self.insns.append(_null_exit(reg))
                checked = True
            if self.inject("beyond"):
                self.insns.append(_ldx(0, reg, size_of, rng.choice((4, 8))))
                return
            if self.inject("ptr_arith"):  # before any NULL check: on an *_or_null_ pointer, refused
                self.insns.append(Insn(op.BPF_ALU64 | op.BPF_ADD | op.BPF_K, reg, 0, 0, 8))
            if not checked and rng.random() < 0.5:
                self.insns.append(_null_exit(reg))
                checked = True
            if self.inject("store"):
                self.insns.append(Insn(op.BPF_ST | op.BPF_MEM | op.BPF_DW, reg, 0, 0, 0))
                return
            pointers = [(o, t) for o, t, bf in members
                        if not bf and btf.type(btf.resolve(t)).kind == "ptr"]
            structs = [(o, t) for o, t in pointers
                       if btf.type(btf.resolve(btf.type(btf.resolve(t)).type)).kind in ("struct", "union")]
            choice = rng.random()
            if choice < 0.55 and structs:
                off, t = rng.choice(structs)
                dst = rng.choice([r for r in WALK_REGS if r != reg])
                self.insns.append(_ldx(dst, reg, off))
                reg, struct_id, checked = dst, btf.resolve(btf.type(btf.resolve(t)).type), False
                continue
            if choice < 0.7 and pointers:
                off, t = rng.choice(pointers)
                self.insns.append(_ldx(0, reg, off))
                if rng.random() < 0.5:  # read through a pointer to a non-struct
                    self.insns.append(_null_exit(0))
                    self.insns.append(_ldx(0, 0, 0, rng.choice((1, 4, 8))))
                return
            off, t, _bf = rng.choice(members)
            size = btf.sizeof(t) if not _bf else 1
            size = size if size in SIZE_CODES else rng.choice((1, 4))
            self.insns.append(_ldx(0, reg, off, size))
            return
        self.last = (reg, struct_id)

    def helper_call(self, regs) -> None:
        """A helper taking a BTF-typed argument, with a typed or mistyped pointer."""
        rng = self.rng
        reg, struct_id = rng.choice(regs)
        name = self.btf.type(struct_id).name
        if name in ("sock", "sock_common") or self.inject("wrong_struct"):
            self.insns.append(_mov(1, reg))
            self.insns.append(Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, rng.choice(SKC_TO)))
            if rng.random() < 0.5:
                self.insns.append(_ldx(1, 0, 0))  # before the NULL check: a defect of its own
            else:
                self.insns.append(_null_exit(0))
                self.insns.append(_ldx(1, 0, 0, 4))

    def kfuncs(self) -> None:
        rng, btf = self.rng, self.btf
        call = op.BPF_JMP | op.BPF_CALL
        self.insns.append(Insn(call, 0, 0, 0, GET_CURRENT_TASK_BTF))
        self.insns.append(_mov(1, 0))
        self.insns.append(Insn(call, 0, op.BPF_PSEUDO_KFUNC_CALL, 0, btf.find("bpf_task_acquire", "func")))
        if rng.random() < 0.3:
            self.insns.append(_ldx(1, 0, 0, 4))  # or_null before the check
        self.insns.append(_null_exit(0))
        if self.inject("leak"):
            return
        self.insns.append(_mov(1, 0))
        self.insns.append(Insn(call, 0, op.BPF_PSEUDO_KFUNC_CALL, 0, btf.find("bpf_task_release", "func")))

    def build(self, tp: str):
        rng = self.rng
        params, args = self.struct_args(tp)
        self.insns.append(_mov(6, 1))
        regs = []
        for (idx, struct_id), reg in zip(rng.sample(args, min(len(args), 2)), (7, 8), strict=False):
            off = idx * POINTER_SIZE
            if self.inject("ctx_off"):
                off = rng.choice((off + 4, len(params) * POINTER_SIZE))
            self.insns.append(_ldx(reg, 6, off))
            regs.append((reg, struct_id))
        if rng.random() < 0.4 or not regs:
            self.insns.append(Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, GET_CURRENT_TASK_BTF))
            self.insns.append(_mov(9, 0))
            regs.append((9, self.btf.find("task_struct", "struct")))
        return self.finish(regs)

    def build_raw_tp(self, tp: str):
        """raw_tp: the context is untyped u64s (read at any aligned size); typed pointers come
        only from bpf_get_current_task_btf(). Defects of its own: a pointer argument used as
        one (a number to the verifier), a read past the arguments."""
        rng = self.rng
        params, _args = self.struct_args(tp)
        self.insns.append(_mov(6, 1))
        idx = rng.randrange(len(params))
        size = rng.choice((8, 8, 4, 2, 1))
        off = idx * POINTER_SIZE + rng.randrange(0, POINTER_SIZE, size)
        if self.inject("ctx_off"):
            off = rng.choice((off + 1 if size > 1 else off, MAX_RAW_TP_CTX))
        self.insns.append(_ldx(7, 6, off, size))
        if self.inject("number_as_pointer"):
            self.insns.append(_ldx(0, 7, 0))
        self.insns.append(Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, GET_CURRENT_TASK_BTF))
        self.insns.append(_mov(9, 0))
        return self.finish([(9, self.btf.find("task_struct", "struct"))])

    def finish(self, regs):
        rng = self.rng
        if rng.random() < 0.3:
            self.helper_call(regs)
        reg, struct_id = rng.choice(regs)
        self.walk(reg, struct_id, rng.randint(1, 3), checked=False)
        if rng.random() < 0.15:
            self.kfuncs()
        # an RCU read section ends on every path: the early exits go through its unlock
        unlock_at = len(self.insns)
        if self.rcu_section:
            self.insns.append(Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_KFUNC_CALL, 0,
                                   self.btf.find("bpf_rcu_read_unlock", "func")))
        self.insns.append(_movi(0, 0))
        # fentry/fexit must return 0: their early exits go through 'r0 = 0' (tp_btf's straight to exit)
        exit_at = len(self.insns) - 1 if self.always_check or self.exit_through_zero else len(self.insns)
        if self.rcu_section:
            exit_at = unlock_at
        self.insns.append(Insn(op.BPF_JMP | op.BPF_EXIT))
        return [Insn(i.code, i.dst, i.src, exit_at - n - 1, i.imm) if i.off == EXIT_LABEL and
                (i.code & 0x07) == op.BPF_JMP and i.code != (op.BPF_JMP | op.BPF_CALL) else i
                for n, i in enumerate(self.insns)]


    def build_lsm(self, target: FentryTarget, check_arg: bool = False, rcu: bool = False) -> list[Insn]:
        """An LSM program's body: one struct argument of the hook (at the ``CTX_ARG``
        placeholder offset) walked, pointers NULL-checked or not (the hook's arguments are
        trusted, as a tracepoint's are); every exit returns 0 (a value each hook takes).
        ``check_arg``: the argument itself NULL-checked first (as an iterator twin must);
        ``rcu``: the rest inside ``bpf_rcu_read_lock()`` (what a sleepable program walks
        there is RCU-protected, not untrusted)."""
        rng = self.rng
        self.exit_through_zero = True
        self.insns.append(_mov(6, 1))
        self.insns.append(_ldx(7, 6, CTX_ARG))
        if rcu:  # before any exit, which all go through the unlock
            self.insns.append(Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_KFUNC_CALL, 0,
                                   self.btf.find("bpf_rcu_read_lock", "func")))
            self.rcu_section = True
        if check_arg:
            self.insns.append(_null_exit(7))
        regs = [(7, target.struct_id)]
        if rng.random() < 0.4:
            self.insns.append(Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, GET_CURRENT_TASK_BTF))
            self.insns.append(_mov(9, 0))
            regs.append((9, self.btf.find("task_struct", "struct")))
        return self.finish(regs)

    def build_fentry(self, target: FentryTarget) -> tuple[list[Insn], int]:
        """A body reading one struct argument (at ``CTX_ARG`` placeholder offsets) and
        walking from it with every pointer NULL-checked before use; the context offset's
        displacement from the argument's slot (4: a misaligned-read defect, else 0)."""
        rng = self.rng
        self.always_check = True
        self.insns.append(_mov(6, 1))
        shift = 4 if self.inject("ctx_off") else 0
        self.insns.append(_ldx(7, 6, CTX_ARG))
        regs = [(7, target.struct_id)]
        if rng.random() < 0.4:
            self.insns.append(Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, GET_CURRENT_TASK_BTF))
            self.insns.append(_mov(9, 0))
            regs.append((9, self.btf.find("task_struct", "struct")))
        return self.finish(regs), shift


def random_raw_tp_program(rng: random.Random, btf, *, defects: float = 0.15, name: str = "rawtpgen"):
    """A ``raw_tp/<tracepoint>`` program (its context untyped), and the defect injected."""
    tp = rng.choice(TRACEPOINTS)
    gen = _Gen(rng, btf, defects)
    insns = gen.build_raw_tp(tp)
    return make_program(encode(insns), section=f"raw_tp/{tp}", kernel_btf=btf, name=name), gen.defect


def random_btf_program(rng: random.Random, btf, *, defects: float = 0.15, name: str = "btfgen"):
    """A ``tp_btf/<tracepoint>`` program, and the defect injected (``""``: none)."""
    tp = rng.choice(TRACEPOINTS)
    gen = _Gen(rng, btf, defects)
    insns = gen.build(tp)
    prog = make_program(encode(insns), section=f"tp_btf/{tp}", kernel_btf=btf, name=name)
    return prog, gen.defect


CTX_ARG = 0x7FF0  # placeholder offset of the context load, replaced per program
MAX_FENTRY_ARGS = 6
EXCLUDED_TARGET_PREFIXES = ("bpf_", "__bpf", "rcu", "__rcu", "preempt", "migrate_", "lock", "_raw_spin")


@dataclass(frozen=True)
class FentryTarget:
    """A kernel function with a struct pointer argument (``arg`` at context offset ``off``)
    that a tracepoint also passes, not NULL, as its argument ``tp_arg`` (its twin)."""

    func: str
    arg: int
    off: int
    struct_id: int
    tp: str
    tp_arg: int


def _tp_twins(btf) -> dict[int, tuple[str, int]]:
    """Struct id -> (tracepoint, argument) of a tracepoint passing a pointer to it, never NULL."""
    from bpfnb.verifier.ctx import TP_NULLABLE_ARGS

    twins = {}
    for tp in TRACEPOINTS:
        _typedef, params = btf.trace_proto(tp)
        for j, p in enumerate(params):
            t = btf.type(btf.resolve(p.type))
            if t.kind == "ptr" and j not in TP_NULLABLE_ARGS.get(tp, ()):
                target = btf.resolve(t.type)
                if btf.type(target).kind == "struct":
                    twins.setdefault(target, (tp, j))
    return twins


def _twinned_arg(btf, func, twins) -> FentryTarget | None:
    """The first struct pointer argument of ``func`` that a tracepoint also passes."""
    from bpfnb.verifier.ctx import _arg_slot

    off = 0
    for i, p in enumerate(btf.type(func.type).params):
        t = btf.type(btf.resolve(p.type))
        struct = btf.resolve(t.type) if t.kind == "ptr" else 0
        if struct in twins:
            return FentryTarget(func.name, i, off, struct, *twins[struct])
        off += _arg_slot(btf, p.type)
    return None


def fentry_targets(btf) -> list[FentryTarget]:
    """Every kernel function a fentry program may attach to (the kernel's trampoline and deny
    rules) whose struct pointer argument has a tracepoint twin, sorted by name."""
    from bpfnb.verifier import attach
    from bpfnb.verifier.log import Reject

    twins = _tp_twins(btf)
    out = []
    for func in btf:
        if func.kind != "func" or func.name.startswith(EXCLUDED_TARGET_PREFIXES):
            continue
        proto = btf.type(func.type)
        if len(proto.params) > MAX_FENTRY_ARGS or func.name in attach.BTF_ID_DENY + attach.NORETURN_DENY:
            continue
        try:
            attach.btf_distill_func_proto(btf, proto, func.name)
        except Reject:
            continue
        if not attach._has_address(func.name):
            continue
        target = _twinned_arg(btf, func, twins)
        if target is not None:
            out.append(target)
    return sorted(out, key=lambda target: target.func)


def _with_ctx_offset(insns: list[Insn], off: int) -> bytes:
    return encode([Insn(i.code, i.dst, i.src, off, i.imm) if i.off == CTX_ARG and i.src == 6 else i for i in insns])


def random_fentry_program(rng: random.Random, btf, targets: list[FentryTarget], *, defects: float = 0.15,
                          name: str = "fentrygen"):
    """A fentry (or fexit) program reading a struct argument of a kernel function and walking
    from it, its tp_btf twin (the same body reading the same struct from a tracepoint), the
    target and the defect injected. The kernel here refuses fentry loads; it loads the twin."""
    target = rng.choice(targets)
    kind = rng.choice(("fentry", "fentry", "fexit"))
    gen = _Gen(rng, btf, defects)
    insns, shift = gen.build_fentry(target)
    fentry = make_program(_with_ctx_offset(insns, target.off + shift), section=f"{kind}/{target.func}",
                          kernel_btf=btf, name=name)
    twin = make_program(_with_ctx_offset(insns, target.tp_arg * POINTER_SIZE + shift),
                        section=f"tp_btf/{target.tp}", kernel_btf=btf, name=name)
    return fentry, twin, target, gen.defect


# the sleepable iterator whose context passes a task (trusted, maybe NULL): the twin of
# sleepable LSM programs, whose walks the kernel judges alike (RCU-protected members
# untrusted outside bpf_rcu_read_lock); task_file's file is not trusted, so no twin
ITER_TWINS = {"task_struct": ("task", 1)}  # struct -> (iterator, context slot)


def lsm_targets(btf, *, sleepable: bool = False) -> list[FentryTarget]:
    """Every LSM hook an ``lsm/`` program may attach to whose arguments the kernel trusts and
    whose struct pointer argument has a tracepoint twin (trusted too), sorted by name; the
    target's ``func`` is the hook's ``bpf_lsm_<hook>`` function. ``sleepable``: the hooks an
    ``lsm.s/`` program may take with a task argument, their twin a sleepable task iterator
    (``tp``: the iterator, ``tp_arg``: its context slot)."""
    from bpfnb.verifier import lsm

    if sleepable:
        twins = {btf.find(name, "struct"): twin for name, twin in ITER_TWINS.items()}
    else:
        twins = _tp_twins(btf)
    out = []
    for func in btf:
        if func.kind != "func" or not lsm.is_hook(func.name):
            continue
        hook = func.name[len(lsm.LSM_PREFIX):]
        if hook in lsm.DISABLED_HOOKS or hook in lsm.UNTRUSTED_HOOKS or (sleepable and hook not in lsm.SLEEPABLE_HOOKS):
            continue
        target = _twinned_arg(btf, func, twins)
        if target is not None:
            out.append(target)
    return sorted(out, key=lambda target: target.func)


def random_lsm_program(rng: random.Random, btf, targets: list[FentryTarget], *, sleepable: bool = False,
                       defects: float = 0.15, name: str = "lsmgen"):
    """An ``lsm/<hook>`` program reading a struct argument of the hook and walking from it, its
    tp_btf twin (the same body reading the same struct, trusted too, from a tracepoint), the
    target and the defect injected. The kernel here refuses LSM loads; it loads the twin.
    ``sleepable``: an ``lsm.s/`` program (``lsm_targets(sleepable=True)``), its twin an
    ``iter.s/`` program reading the task from the iterator's context (NULL-checked first in
    both, as the iterator's may be NULL), half of them walking inside an RCU read section."""
    target = rng.choice(targets)
    rcu = sleepable and rng.random() < 0.5
    gen = _Gen(rng, btf, defects)
    insns = gen.build_lsm(target, check_arg=sleepable, rcu=rcu)
    hook = target.func[len("bpf_lsm_"):]
    prog = make_program(_with_ctx_offset(insns, target.off), section=f"lsm{'.s' if sleepable else ''}/{hook}",
                        kernel_btf=btf, name=name)
    twin_section = f"iter.s/{target.tp}" if sleepable else f"tp_btf/{target.tp}"
    twin = make_program(_with_ctx_offset(insns, target.tp_arg * POINTER_SIZE), section=twin_section,
                        kernel_btf=btf, name=name)
    return prog, twin, target, gen.defect
