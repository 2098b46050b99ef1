"""Loads through BTF-typed kernel pointers: ``check_ptr_to_btf_access`` (offset
checks, and which loads become fault-tolerant PROBE_MEM loads) and
``btf_struct_access`` (what the member at an offset is, and the register a
load of it yields)."""

from __future__ import annotations

from .log import Reject
from .regstate import PTR_TO_BTF_ID, PTR_TO_MEM, Reg, scalar_reg
from .scalar import Scalar

POINTER_SIZE = 8


def check_ptr_to_btf_access(env, regno: int, base: Reg, off: int, size: int, insn_idx: int) -> Reg:
    btf = base.btf
    name = btf.type(base.btf_id).name
    total = base.off + off
    if not base.s.var_off.is_const:
        raise Reject(f"R{regno} is ptr_{name} invalid variable offset: off={total}, var_off={base.s.var_off}")
    if total < 0:
        raise Reject(f"R{regno} is ptr_{name} invalid negative access: off={total}")
    reg = btf_struct_access(base, total, size)
    if not (base.trusted or base.rcu):
        # like convert_ctx_accesses: loads through trusted and RCU pointers stay
        # plain loads, only the others become fault-tolerant PROBE_MEM loads
        env.probe_mem.add(insn_idx)
    return reg


def btf_struct_access(base: Reg, off: int, size: int) -> Reg:
    btf = base.btf
    found = btf.find_member(base.btf_id, off, size)
    if found.how == "beyond":
        raise Reject(f"access beyond struct {btf.type(base.btf_id).name} at off {off} size {size}")
    member = btf.type(btf.resolve(found.type_id))
    if found.how == "exact" and member.kind == "ptr" and size == POINTER_SIZE:
        target = btf.resolve(member.type)
        if btf.type(target).kind in ("struct", "union"):
            return Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=btf, btf_id=target, untrusted=True)
        # a pointer to plain kernel memory: readable only through probe reads
        return Reg(PTR_TO_MEM, Scalar.const(0), rdonly=True, untrusted=True, mem_size=0)
    return scalar_reg()
