"""Plain-language explanations of verifier errors.

``explain(error)`` takes the verifier's error line (ours or the kernel's: the
texts are the same) and says which rule the program broke and the usual fix.
The register the rule is about is returned too, so a viewer can walk back
to the instruction that made the offending value (see ``VerifierStepper``).

The catalogue is ordered: the first pattern that matches wins, so specific
forms (a NULL-able map value) come before general ones (any invalid access).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Explanation:
    """What went wrong, in words: ``rule`` (short), ``detail`` (this case), ``fix``."""

    kind: str
    rule: str
    detail: str
    fix: str
    register: int | None = None
    error: str = ""

    def __str__(self) -> str:
        return f"{self.rule}\n{self.detail}\nUsual fix: {self.fix}"

    def _repr_html_(self) -> str:
        from html import escape

        return (
            f'<div class="bpfnb-explain"><b>{escape(self.rule)}</b>'
            f"<p>{escape(self.detail)}</p><p><i>Usual fix:</i> {escape(self.fix)}</p>"
            f"<pre>{escape(self.error)}</pre></div>"
        )


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern
    rule: str
    detail: str  # str.format with the pattern's named groups
    fix: str


def _r(kind: str, pattern: str, rule: str, detail: str, fix: str) -> _Rule:
    return _Rule(kind, re.compile(pattern), rule, detail, fix)


NULL_TYPES = "map_value_or_null|ptr_or_null_|sock_or_null|mem_or_null|_or_null"

CATALOGUE: tuple[_Rule, ...] = (
    _r("null_deref", rf"R(?P<reg>\d+) invalid mem access '(?P<type>[^']*(?:{NULL_TYPES})[^']*)'",
       "A pointer that may be NULL was dereferenced",
       "R{reg} is a '{type}': the helper or load that produced it can return NULL, and the "
       "program reads through it before checking.",
       "Test the pointer against NULL (`if (!p) return 0;`) before the first access."),
    _r("scalar_deref", r"R(?P<reg>\d+) invalid mem access 'scalar'",
       "A number was used as a pointer",
       "R{reg} holds a plain number (a scalar), not a pointer the verifier knows, so it may not "
       "be dereferenced. Typical cause: casting an integer field such as skb->len to a pointer, "
       "or a pointer that lost its type through arithmetic or a spill of part of it.",
       "Dereference only real pointers (typed BTF fields, ctx, map values, the stack); to read "
       "arbitrary kernel memory use bpf_probe_read_kernel(&dst, size, ptr)."),
    _r("invalid_mem_access", r"R(?P<reg>\d+) invalid mem access '(?P<type>[^']*)'",
       "This kind of pointer cannot be dereferenced",
       "R{reg} is a '{type}', which the program may not load from or store through here.",
       "Pass it to the helper that accepts it, or derive a pointer the verifier allows to read."),
    _r("uninit_reg", r"R(?P<reg>\d+) !read_ok",
       "A register was read before it was written",
       "R{reg} has no value on this path (at entry only R1 (the context) and R10 (the frame "
       "pointer) are set; a helper call clobbers R1-R5 and sets R0).",
       "Set the register on every path before this instruction, e.g. `r0 = 0` before exit."),
    _r("ctx_access", r"invalid bpf_context access off=(?P<off>-?\d+) size=(?P<size>\d+)",
       "The context was accessed at an offset or size the program type does not allow",
       "A {size}-byte access at offset {off} of the context is not a field this program type may "
       "read (or write) with that size.",
       "Access a real field with its natural size (see the context struct of the program type); "
       "for tracing programs read arguments through the typed pointers."),
    _r("map_value_bounds",
       r"invalid access to map value, value_size=(?P<vs>\d+) off=(?P<off>-?\d+) size=(?P<size>\d+)",
       "Access outside the map value",
       "The access of {size} bytes at offset {off} does not lie inside the {vs}-byte map value.",
       "Check the index against the value size before using it as an offset."),
    _r("packet_bounds", r"invalid access to packet, off=(?P<off>-?\d+) size=(?P<size>\d+), "
                        r"R(?P<reg>\d+)\(id=\d+,off=-?\d+,r=(?P<r>\d+)\)",
       "Access past the checked end of the packet",
       "R{reg} is a packet pointer proven safe for {r} bytes, but {size} bytes are accessed at "
       "offset {off}.",
       "Compare `data + offset + size` against `data_end` before the access, on the same path."),
    _r("packet_bounds", r"R(?P<reg>\d+) offset is outside of the packet",
       "Access past the checked end of the packet",
       "R{reg} points into the packet, but this access is not covered by a comparison with "
       "data_end on this path.",
       "Compare `data + offset + size` against `data_end` before the access, on the same path."),
    _r("mem_bounds", r"invalid access to memory, mem_size=(?P<ms>\d+) off=(?P<off>-?\d+) size=(?P<size>\d+)",
       "Access outside a memory region",
       "The access of {size} bytes at offset {off} is outside the {ms}-byte region.",
       "Bound the offset by the region's size first."),
    _r("min_range", r"R(?P<reg>\d+) min value is (?:outside of the allowed memory range|negative)",
       "The offset may be negative",
       "The smallest value the verifier knows for R{reg}'s offset reaches before the start of the "
       "object.",
       "Check the signed lower bound (`if (i < 0) return 0;`) or use an unsigned type."),
    _r("max_range", r"R(?P<reg>\d+) max value is outside of the allowed memory range",
       "The offset may run past the end",
       "The largest value the verifier knows for R{reg}'s offset reaches past the end of the "
       "object.",
       "Check the upper bound (`if (i >= N) return 0;`) right before the access."),
    _r("unbounded", r"(?:R(?P<reg>\d+) unbounded memory access|"
                    r"invalid unbounded variable-offset (?:write to|read from) stack R(?P<sreg>\d+))",
       "A variable offset has no bound",
       "R{reg} is used as an offset but nothing on this path limits its range.",
       "Bound the value with a comparison (or a mask) on the path to the access."),
    _r("stack_bounds", r"invalid (?:write to|read from) stack R(?P<reg>\d+) off=(?P<off>-?\d+) size=(?P<size>\d+)",
       "Access outside the 512-byte stack frame",
       "The stack access of {size} bytes at offset {off} is outside [-512, 0) from R10.",
       "Keep locals within 512 bytes; move large buffers to a per-CPU array map."),
    _r("uninit_stack", r"invalid read from stack R(?P<reg>\d+) off -?\d+\+-?\d+ size \d+",
       "Uninitialised stack read",
       "Stack bytes are read before anything was written there on this path.",
       "Initialise the variable (e.g. `= {}` / __builtin_memset) before use."),
    _r("ptr_arith", r"R(?P<reg>\d+) pointer arithmetic on (?P<type>\S+) prohibited",
       "Arithmetic on this pointer type is not allowed",
       "R{reg} is a {type}; the verifier forbids computing new pointers from it.",
       "Use the pointer as is (pass it to the helper), do arithmetic on a pointer type that allows it."),
    _r("ptr_alu", r"R(?P<reg>\d+) (?:32-bit pointer arithmetic|pointer arithmetic with .* operator) prohibited",
       "Forbidden pointer arithmetic",
       "R{reg}: this operation on a pointer is not allowed (only add/sub of bounded scalars).",
       "Keep pointer arithmetic to 64-bit add/sub of a known-bounded offset."),
    _r("var_ctx", r"variable ctx access var_off=(?P<var>\(.*?\)) disallowed",
       "The context was accessed at a variable offset",
       "The offset into the context is not a constant (var_off={var}); the verifier must know "
       "exactly which context field is accessed, because it rewrites those accesses.",
       "Read context fields at constant offsets (plain `ctx->field`), never `ctx + i`."),
    _r("modified_ptr", r"dereference of modified (?P<type>\S+) ptr R(?P<reg>\d+) off=(?P<off>-?\d+) disallowed",
       "A moved pointer of this type may not be dereferenced",
       "R{reg} is a {type} pointer moved by {off} bytes; this type may only be accessed from its "
       "original value with a constant offset in the instruction.",
       "Keep the original pointer and put the offset in the load itself (`*(u32 *)(r1 + 4)`)."),
    _r("leak_addr", r"R(?P<reg>\d+) leaks addr (?:as return value|into)",
       "A kernel address would leak",
       "R{reg} holds a pointer, and the program would hand it to user space.",
       "Return or store a number, not a pointer."),
    _r("return_range", r"At program exit the register R0 (?:has|is not a known value)",
       "The return value is outside what the program type allows",
       "This program type restricts its return value (for example 0 or 1), and R0 may hold "
       "something else at exit.",
       "Return one of the allowed constants on every path."),
    _r("unreachable", r"unreachable insn (?P<insn>\d+)",
       "Dead code",
       "Instruction {insn} can never run; the kernel refuses programs with unreachable instructions.",
       "Remove the dead instructions (usually a hand-written or patched jump)."),
    _r("jump_range", r"jump out of range from insn (?P<insn>\d+) to (?P<to>-?\d+)",
       "A jump leaves the program",
       "Instruction {insn} jumps to {to}, which is not an instruction of this program.",
       "Fix the jump offset."),
    _r("loop", r"(?:back-edge from insn (?P<insn>\d+) to (?P<to>\d+)|infinite loop detected at insn (?P<at>\d+))",
       "A loop the verifier cannot prove to end",
       "The program loops back, and the verifier found a state it had seen before or could not "
       "bound the loop.",
       "Give the loop a constant bound, or use bpf_loop()/bpf_for()."),
    _r("too_large", r"BPF program is too large\. Processed (?P<n>\d+) insn",
       "Too many instructions to verify",
       "The verifier walked {n} instructions over all paths, more than its limit of 1,000,000.",
       "Reduce branching (fewer paths), bound loops tighter, or split into tail calls/subprograms."),
    _r("helper_prog_type", r"program of this type cannot use helper (?P<helper>\S+)",
       "Helper not allowed for this program type",
       "{helper} is not available to programs of this type.",
       "Use the helper meant for this type (e.g. bpf_probe_read_kernel in tracing), or change the "
       "section/program type."),
    _r("unknown_helper", r"(?:unknown func|invalid func) (?P<helper>\S+)",
       "Unknown helper",
       "The kernel does not know the helper {helper}.",
       "Check the helper id against the running kernel's `bpftool feature`."),
    _r("arg_type", r"R(?P<reg>\d+) type=(?P<type>\S+) expected=(?P<expected>.+)",
       "Wrong kind of argument to a helper",
       "R{reg} holds a {type}, but the helper expects {expected}.",
       "Pass the pointer the helper prototype asks for (for bpf_skb_output: the skb itself)."),
    _r("btf_beyond", r"access beyond struct (?P<struct>\S+) at off (?P<off>-?\d+) size (?P<size>\d+)",
       "Read past the end of a kernel struct",
       "{size} bytes at offset {off} are not inside struct {struct} in the kernel's BTF.",
       "Read a field that exists; check the struct layout in the kernel BTF (CO-RE does this)."),
    _r("btf_write", r"only read is supported|cannot write into",
       "Kernel memory seen through BTF is read-only",
       "The program writes through a pointer the verifier typed from BTF; tracing programs may "
       "only read kernel objects.",
       "Copy the value to the stack or a map and modify it there."),
    _r("btf_negative", r"R(?P<reg>\d+) is ptr_(?P<struct>\S+) invalid negative access",
       "Negative offset through a BTF pointer",
       "R{reg} points to struct {struct}; reading before its start is not allowed.",
       "Use container_of-style helpers the kernel provides or bpf_probe_read_kernel."),
    _r("null_trusted", r"Possibly NULL pointer passed to (?:trusted|helper) arg(?P<arg>\d+)",
       "A pointer that may be NULL was passed where it must not be",
       "Argument {arg} may be NULL on this path.",
       "Check the pointer against NULL before the call."),
    _r("btf_arg_struct", r"R(?P<reg>\d+) is of type (?P<got>\w+) but (?P<want>\w+) is expected",
       "A helper got a pointer to the wrong kernel struct",
       "R{reg} points to a struct {got}, but this helper argument takes a struct {want}, or a "
       "struct whose first member is one (the verifier follows first members: a struct sock "
       "begins with a struct sock_common). A struct {got} does not begin with a struct {want}, "
       "so the helper would read the wrong memory.",
       "Pass a pointer to struct {want} (or to a struct that begins with one): for the "
       "bpf_skc_to_*() helpers a socket, e.g. a tracepoint's struct sock * argument or skb->sk "
       "after a NULL check."),
    _r("kfunc_trust", r"R(?P<reg>\d+) must be (?:referenced or trusted|a rcu pointer)",
       "A kernel function needs a pointer the verifier can vouch for",
       "R{reg} came from a walk the verifier cannot vouch for (an untrusted_ptr_, or a plain ptr_ "
       "such as a fentry argument): the object may be freed while the program runs, so the "
       "kernel function may not take it.",
       "Get the pointer from a trusted source (a tp_btf argument, bpf_get_current_task_btf(), a "
       "field the kernel lists as safe) or walk RCU-protected fields between "
       "bpf_rcu_read_lock() and bpf_rcu_read_unlock()."),
    _r("kfunc_not_allowed", r"calling kernel function (?P<func>\S+) is not allowed",
       "This kernel function cannot be called from BPF here",
       "{func} is not a kfunc this program type may call (the kernel exports only the functions "
       "of its kfunc sets to BPF, each set to some program types).",
       "Use a kfunc or helper meant for this program type, or another program type."),
    _r("unreleased", r"Unreleased reference id=(?P<id>\d+) alloc_insn=(?P<insn>\d+)",
       "An acquired object is never released",
       "The reference taken at instruction {insn} (a *_acquire or *_from_* kfunc, a ringbuf "
       "reservation, a socket lookup) is still held when the program exits on some path.",
       "Release it on every path (bpf_task_release, bpf_cgroup_release, bpf_ringbuf_discard, "
       "bpf_sk_release...), including the early returns."),
    _r("ctx_arg_size", r"func '(?P<func>[^']+)' size (?P<size>\d+) must be 8",
       "A pointer argument was read narrower than 8 bytes",
       "The program reads {size} bytes of a pointer argument of {func}; the verifier types "
       "only whole 8-byte reads of pointer arguments.",
       "Read the argument as a full 64-bit value (with BPF_PROG() or `ctx[n]` as __u64)."),
    _r("opcode", r"unknown opcode (?P<op>[0-9a-fx]+)",
       "Unknown instruction",
       "Opcode {op} is not an instruction the kernel accepts.",
       "Rebuild for a CPU version this kernel supports (clang -mcpu=v3)."),
    _r("ld_imm64", r"invalid BPF_LD_IMM insn|jump into the middle of ldimm64",
       "A 64-bit immediate load is malformed or split",
       "An LD_IMM64 takes two slots; it is incomplete or a jump lands on its second half.",
       "Fix the jump target or the instruction encoding."),
)


def explain(error: str | None) -> Explanation | None:
    """The explanation of a verifier error (a line, or the error block of a log),
    or None when it is not catalogued. The most specific rule that matches any
    line wins."""
    if not error:
        return None
    for rule in CATALOGUE:
        match = rule.pattern.search(error)
        if match:
            groups = {k: (v if v is not None else "?") for k, v in match.groupdict().items()}
            if groups.get("sreg", "?") != "?":
                groups["reg"] = groups["sreg"]
            reg = groups.get("reg")
            return Explanation(
                rule.kind, rule.rule, rule.detail.format(**groups), rule.fix,
                int(reg) if reg not in (None, "?") else None, error.strip(),
            )
    return None
