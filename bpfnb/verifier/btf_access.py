"""Loads through BTF-typed kernel pointers: ``check_ptr_to_btf_access`` (offset
checks, the trust the loaded pointer gets, and which loads become
fault-tolerant PROBE_MEM loads) and ``btf_struct_walk`` (which member an
access at an offset reads: a scalar, or a pointer to a struct).

Trust as Linux 6.18 gives it to a pointer loaded from a struct member:

- walking an untrusted pointer gives untrusted pointers;
- from a trusted or RCU pointer, a member listed in the kernel BTF's
  ``<struct>__safe_trusted`` is trusted, one in ``__safe_trusted_or_null``
  trusted but possibly NULL, one in ``__safe_rcu`` RCU-protected, one in
  ``__safe_rcu_or_null`` RCU-protected and possibly NULL (a non-sleepable
  program is always inside an RCU read section);
- anything else is untrusted (``untrusted_ptr_``).

A pointer member whose target is not a struct (``unsigned char *data``) loads
as ``rdonly_untrusted_mem(sz=0)``: memory read through PROBE_MEM loads without
bounds; an access that crosses a pointer member is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..elf.sections import BPF_F_SLEEPABLE
from .log import Reject
from .regstate import PTR_TO_BTF_ID, PTR_TO_MEM, Reg, scalar_reg
from .scalar import Scalar

POINTER_SIZE = 8
MAX_WALK_DEPTH = 32
ANON = "(anon)"
SAFE_TRUSTED, SAFE_TRUSTED_OR_NULL = "__safe_trusted", "__safe_trusted_or_null"
SAFE_RCU, SAFE_RCU_OR_NULL = "__safe_rcu", "__safe_rcu_or_null"


@dataclass
class Walked:
    """``btf_struct_walk``'s answer: a scalar, or a pointer member (its name and target struct)."""

    target: int = 0  # 0: a scalar
    untrusted: bool = False  # the walk went through a union of more than one member
    field: str = ""
    mem: bool = False  # a pointer to something that is not a struct


def check_ptr_to_btf_access(env, regno: int, base: Reg, off: int, size: int, insn_idx: int) -> Reg:
    btf = base.btf
    name = btf.type(base.btf_id).name
    total = base.off + off
    if not base.s.var_off.is_const:
        raise Reject(f"R{regno} is ptr_{name} invalid variable offset: off={total}, var_off={base.s.var_off}")
    if total < 0:
        raise Reject(f"R{regno} is ptr_{name} invalid negative access: off={total}")
    walked = btf_struct_walk(btf, base.btf_id, total, size)
    if not (base.trusted or base.rcu or base.ref_obj_id):
        # like convert_ctx_accesses: loads through trusted and RCU pointers stay
        # plain loads, only the others become fault-tolerant PROBE_MEM loads
        env.probe_mem.add(insn_idx)
    if walked.mem:
        return Reg(PTR_TO_MEM, Scalar.const(0), rdonly=True, untrusted=True, mem_size=0)
    if not walked.target:
        return scalar_reg()
    # what the walk went through (a union of several members) stays untrusted, except
    # for the kernel's RCU-or-NULL fields ("we always trust them")
    reg = Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=btf, btf_id=walked.target,
              untrusted=base.untrusted or walked.untrusted)
    if base.untrusted or not (base.trusted or base.rcu or base.ref_obj_id):
        return reg
    if _listed(btf, base.btf_id, walked, SAFE_TRUSTED):
        reg.trusted = True
    elif _listed(btf, base.btf_id, walked, SAFE_TRUSTED_OR_NULL):
        reg.trusted = reg.maybe_null = True
    elif base.maybe_null or not in_rcu_cs(env):
        # outside an RCU read section (a sleepable program's walk) nothing RCU-protected is trusted
        reg.untrusted = True
    elif _listed(btf, base.btf_id, walked, SAFE_RCU):
        reg.rcu = True
    elif _listed(btf, base.btf_id, walked, SAFE_RCU_OR_NULL):
        reg.rcu = reg.maybe_null = True
        reg.untrusted = False
    else:  # an unlisted field: 6.18 marks it untrusted
        reg.untrusted = True
    if reg.maybe_null:
        reg.id = env.new_id()
    return reg


def in_rcu_cs(env) -> bool:
    """``in_rcu_cs``: a non-sleepable program always runs inside an RCU read section; a
    sleepable one only between ``bpf_rcu_read_lock`` and ``bpf_rcu_read_unlock``."""
    state = env.cur_state
    return not (env.prog.prog_flags & BPF_F_SLEEPABLE) or bool(state is not None and state.active_rcu_lock)


def _listed(btf, struct_id: int, walked: Walked, suffix: str) -> bool:
    """``btf_nested_type_is_trusted``: the kernel lists the member in ``struct <name><suffix>``."""
    ids = btf.find_all(btf.type(struct_id).name + suffix, "struct")
    if not ids:
        return False
    for m in btf.members(ids[0]):
        if m.name == walked.field:
            t = btf.type(btf.resolve(m.type))
            return t.kind == "ptr" and btf.resolve(btf.strip_modifiers(t.type)) == walked.target
    return False


def btf_struct_walk(btf, struct_id: int, off: int, size: int) -> Walked:
    t_id = btf.resolve(struct_id)
    untrusted = in_flex_array = False
    for _ in range(MAX_WALK_DEPTH):
        t = btf.type(t_id)
        tname = t.name or ANON
        if t.kind not in ("struct", "union"):
            raise Reject(f"Type '{tname}' is not a struct")
        if t.kind == "union" and len(t.members) != 1:
            untrusted = True
        if off + size > t.size:
            flex = _flexible_array(btf, t, off)
            if flex is None:
                raise Reject(f"access beyond struct {tname} at off {off} size {size}")
            elem_id, moff = flex
            elem = btf.type(elem_id)
            if elem.kind == "int":
                return Walked(untrusted=untrusted)
            if elem.kind not in ("struct", "union"):
                raise Reject(f"access beyond struct {tname} at off {off} size {size}")
            t_id, off = elem_id, (off - moff) % elem.size
            # measured on 6.18: inside a flexible array's element a scalar access may run past
            # its member (posix_acl.a_entries[0].e_tag read 8 bytes wide is accepted), not past
            # the element ("access beyond struct posix_acl_entry at off 6 size 4")
            in_flex_array = True
            continue
        nxt = None
        for m in t.members:
            moff = m.bit_offset // 8
            if off + size <= moff:
                break
            if m.bitfield_size:
                end = (m.bit_offset + m.bitfield_size + 7) // 8
                if off <= moff and end <= off + size:
                    return Walked(untrusted=untrusted)
                continue
            if off < moff:
                break
            m_id = btf.resolve(m.type)
            mtype = btf.type(m_id)
            msize = btf.sizeof(m_id)
            mend = moff + msize
            if off >= mend:
                continue
            mname = m.name or ANON
            if mtype.kind == "array":  # to the element the offset lands in
                elem_id = btf.resolve(mtype.elem_type)
                while btf.type(elem_id).kind == "array":
                    elem_id = btf.resolve(btf.type(elem_id).elem_type)
                esize = btf.sizeof(elem_id)
                if esize:
                    moff += (off - moff) // esize * esize
                    if btf.type(elem_id).kind in ("struct", "union", "ptr"):
                        m_id, mtype, msize = elem_id, btf.type(elem_id), esize
            if mtype.kind in ("struct", "union"):
                nxt = (m_id, off - moff)
                break
            if mtype.kind == "ptr":
                if msize != size or off != moff:
                    raise Reject(f"cannot access ptr member {mname} with moff {moff} in struct {tname} "
                                 f"with off {off} size {size}")
                target = btf.resolve(btf.strip_modifiers(mtype.type))
                if btf.type(target).kind in ("struct", "union"):
                    return Walked(target, field=m.name, untrusted=untrusted)
                return Walked(mem=True)
            if off + size > mend and not (untrusted or in_flex_array):
                raise Reject(f"access beyond the end of member {mname} (mend:{mend}) in struct {tname} "
                             f"with off {off} size {size}")
            return Walked(untrusted=untrusted)
        if nxt is None:
            raise Reject(f"struct {tname} doesn't have field at offset {off}")
        t_id, off = nxt
    raise Reject(f"struct {btf.type(struct_id).name} is nested too deeply")


def _flexible_array(btf, t, off: int):
    """The element type and offset of a struct's last member when it is a
    flexible array the access lands in (``elem[]``), else None."""
    if not t.members:
        return None
    last = t.members[-1]
    arr = btf.type(btf.resolve(last.type))
    if arr.kind != "array" or arr.nelems:
        return None
    moff = last.bit_offset // 8
    if off < moff:
        return None
    return btf.resolve(btf.strip_modifiers(arr.elem_type)), moff


def btf_struct_ids_match(btf, type_id: int, off: int, need_id: int) -> tuple[bool, str | None]:
    """Is the struct at ``off`` of ``type_id`` the struct ``need_id``, directly or as a first
    member of first members? Also what the walk complained about, as the kernel logs it."""
    type_id = btf.resolve(type_id)
    if off == 0 and type_id == need_id:
        return True, None
    while True:
        try:
            nested = _walk_to_struct(btf, type_id, off)
        except Reject as exc:
            return False, str(exc)
        if nested is None:
            return False, None
        if nested == need_id:
            return True, None
        type_id, off = nested, 0


def _walk_to_struct(btf, type_id: int, off: int) -> int | None:
    """The nested struct starting exactly at ``off`` (a 1-byte walk's WALK_STRUCT), or None."""
    t = btf.type(type_id)
    if t.kind not in ("struct", "union"):
        raise Reject(f"Type '{t.name or ANON}' is not a struct")
    if off + 1 > t.size:
        raise Reject(f"access beyond struct {t.name or ANON} at off {off} size 1")
    for m in t.members:
        moff = m.bit_offset // 8
        if off + 1 <= moff:
            break
        if m.bitfield_size:
            continue
        if off < moff:
            break
        m_id = btf.resolve(m.type)
        mtype = btf.type(m_id)
        if off >= moff + btf.sizeof(m_id):
            continue
        if mtype.kind == "array":
            elem_id = btf.resolve(mtype.elem_type)
            esize = btf.sizeof(elem_id)
            if not esize:
                continue
            moff += (off - moff) // esize * esize
            m_id, mtype = elem_id, btf.type(elem_id)
        if mtype.kind in ("struct", "union"):
            if off == moff:
                return m_id
            return _walk_to_struct(btf, m_id, off - moff)
        if mtype.kind == "ptr" and (off != moff or btf.sizeof(m_id) != 1):
            raise Reject(f"cannot access ptr member {m.name or ANON} with moff {moff} in struct "
                         f"{t.name or ANON} with off {off} size 1")
        return None
    raise Reject(f"struct {t.name or ANON} doesn't have field at offset {off}")


PERCPU_SECTION = ".data..percpu"


def check_pseudo_btf_id(env, btf_id: int, btf_fd: int) -> Reg:
    """``ld_imm64`` of a kernel object by BTF id (``BPF_PSEUDO_BTF_ID``, a typed ``__ksym``):
    a kfunc's address is ``rdonly_mem(sz=0)``; a variable must be in kallsyms, and is
    ``rdonly_mem(sz=<its size>)`` or, for a struct, ``ptr_<struct>``."""
    from ..elf.externs import KALLSYMS, _kallsyms

    btf = env.prog.kernel_btf
    if btf_fd:
        raise Reject(f"bpfnb does not model ldimm64 of module BTF objects (btf fd {btf_fd})")
    if btf is None:
        raise Reject("ldimm64 of a kernel BTF object needs the kernel BTF (pass kernel_btf)")
    try:
        t = btf.type(btf_id)
    except Exception:
        t = None
    if t is None or btf_id <= 0:
        raise Reject(f"ldimm64 insn specifies invalid btf_id {btf_id}.")
    if t.kind not in ("var", "func"):
        raise Reject(f"pseudo btf_id {btf_id} in ldimm64 isn't KIND_VAR or KIND_FUNC")
    if t.kind == "func":
        return Reg(PTR_TO_MEM, Scalar.const(0), rdonly=True, mem_size=0)
    try:
        with open(KALLSYMS) as f:
            symbols = _kallsyms(f.read())
    except OSError:
        raise Reject(f"bpfnb cannot look up kernel symbol '{t.name}' without {KALLSYMS}") from None
    if t.name not in symbols:  # data symbols are there only with CONFIG_KALLSYMS_ALL
        raise Reject(f"ldimm64 failed to find the address for kernel symbol '{t.name}'.")
    if any(sec.kind == "datasec" and sec.name == PERCPU_SECTION and any(v.type == btf_id for v in sec.vars)
           for sec in btf):
        raise Reject(f"bpfnb does not model per-CPU kernel variables (ldimm64 of '{t.name}')")
    target = btf.resolve(t.type)
    if btf.type(target).kind in ("struct", "union"):
        return Reg(PTR_TO_BTF_ID, Scalar.const(0), btf=btf, btf_id=target)
    return Reg(PTR_TO_MEM, Scalar.const(0), rdonly=True, mem_size=btf.sizeof(target))
