"""Register states: what the verifier knows a register holds.

The kernel's ``bpf_reg_state``: a type (``SCALAR_VALUE``, ``PTR_TO_CTX``,
``PTR_TO_STACK``, ``PTR_TO_MAP_VALUE``, ``PTR_TO_BTF_ID`` …) with flags
(``PTR_MAYBE_NULL``, ``PTR_TRUSTED``, ``PTR_UNTRUSTED``, ``MEM_RDONLY`` …),
a fixed offset ``off``, the variable part and numeric bounds (a
``Scalar``), ids, the map, the packet range, the BTF type. ``format_reg``
prints it exactly as the kernel's log does (kernel/bpf/log.c).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .scalar import Scalar, _snum, _unum, format_ranges, format_scalar
from .tnum import s64

NOT_INIT = "?"
SCALAR = "scalar"
PTR_TO_CTX = "ctx"
CONST_PTR_TO_MAP = "map_ptr"
PTR_TO_MAP_VALUE = "map_value"
PTR_TO_MAP_KEY = "map_key"
PTR_TO_STACK = "fp"
PTR_TO_PACKET = "pkt"
PTR_TO_PACKET_META = "pkt_meta"
PTR_TO_PACKET_END = "pkt_end"
PTR_TO_BTF_ID = "ptr_"
PTR_TO_MEM = "mem"
PTR_TO_FUNC = "func"
PTR_TO_SOCKET = "sock"
PTR_TO_SOCK_COMMON = "sock_common"
PTR_TO_TCP_SOCK = "tcp_sock"
PTR_TO_XDP_SOCK = "xdp_sock"
SOCK_TYPES = (PTR_TO_SOCKET, PTR_TO_SOCK_COMMON, PTR_TO_TCP_SOCK, PTR_TO_XDP_SOCK)  # type_is_sk_pointer

# the id flags of a scalar known to be another's value plus a constant (the constant in
# ``off``): added by a 64-bit or by a 32-bit ALU op (the 32-bit sum is zero-extended)
BPF_ADD_CONST64 = 1 << 31
BPF_ADD_CONST32 = 1 << 30
BPF_ADD_CONST = BPF_ADD_CONST64 | BPF_ADD_CONST32

PACKET_TYPES = (PTR_TO_PACKET, PTR_TO_PACKET_META, PTR_TO_PACKET_END)
MAP_TYPES_WITH_KV = (CONST_PTR_TO_MAP, PTR_TO_MAP_KEY, PTR_TO_MAP_VALUE)


@dataclass
class Reg:
    type: str = NOT_INIT
    s: Scalar = field(default_factory=Scalar.unknown)  # value, or a pointer's variable offset
    off: int = 0
    id: int = 0
    ref_obj_id: int = 0
    map: object = None  # MapDef
    map_index: int = -1
    range: int = 0  # packet bytes proven accessible from this pointer
    btf: object = None
    btf_id: int = 0
    maybe_null: bool = False
    trusted: bool = False
    untrusted: bool = False
    rcu: bool = False
    rdonly: bool = False
    ringbuf: bool = False  # MEM_RINGBUF: a ring buffer record from bpf_ringbuf_reserve
    mem_size: int = 0
    precise: bool = False
    frameno: int = 0
    subprogno: int = 0  # PTR_TO_FUNC: the function's index

    def copy(self) -> Reg:
        new = object.__new__(Reg)  # the fields as they are (faster than dataclasses.replace)
        new.__dict__.update(self.__dict__)
        new.s = self.s.copy()
        return new

    @property
    def is_pointer(self) -> bool:
        return self.type not in (SCALAR, NOT_INIT)

    @property
    def is_pkt(self) -> bool:
        return self.type in PACKET_TYPES

    def type_name(self) -> str:
        """``reg_type_str``: flags, base name and the NULL postfix."""
        prefix = ("rdonly_" if self.rdonly else "") + ("ringbuf_" if self.ringbuf else "") + \
            ("rcu_" if self.rcu else "") + \
            ("untrusted_" if self.untrusted else "") + ("trusted_" if self.trusted else "")
        postfix = ""
        if self.maybe_null:
            postfix = "or_null_" if self.type == PTR_TO_BTF_ID else "_or_null"
        return f"{prefix}{self.type}{postfix}"


def scalar_reg(s: Scalar | None = None) -> Reg:
    return Reg(SCALAR, s if s is not None else Scalar.unknown())


def const_reg(value: int) -> Reg:
    return Reg(SCALAR, Scalar.const(value))


def format_reg(reg: Reg, frameno: int = 0) -> str:
    """``print_reg_state``: ``5``, ``scalar(...)``, ``ctx()``, ``fp-8``, ``map_value(map=m,ks=4,vs=8)``,
    ``trusted_ptr_sk_buff()``."""
    if reg.type == SCALAR:
        return format_scalar(reg.s, precise=reg.precise, id=reg.id, off=reg.off)
    text = reg.type_name()
    if reg.type == PTR_TO_STACK:
        if frameno != reg.frameno:
            text += f"[{reg.frameno}]"
        if reg.s.var_off.is_const:
            return text + _snum(s64(reg.s.var_off.value + reg.off))
    if reg.type == PTR_TO_BTF_ID:
        text += _btf_name(reg)
    items = []
    if reg.id:
        items.append(f"id={reg.id}")
    if reg.ref_obj_id:
        items.append(f"ref_obj_id={reg.ref_obj_id}")
    if reg.type in MAP_TYPES_WITH_KV and reg.map is not None:
        if reg.map.name:
            items.append(f"map={reg.map.name[:15]}")  # the kernel keeps 15 characters
        items.append(f"ks={reg.map.key_size},vs={reg.map.value_size}")
    if reg.off:
        items.append(f"off={_snum(reg.off)}")
    if reg.type in (PTR_TO_PACKET, PTR_TO_PACKET_META):
        items.append(f"r={_unum(reg.range & 0xFFFFFFFFFFFFFFFF)}")
    if reg.type == PTR_TO_MEM:
        items.append(f"sz={_unum(reg.mem_size)}")
    if reg.s.var_off.is_const:
        if reg.s.var_off.value:
            items.append(f"imm={_snum(s64(reg.s.var_off.value))}")
    else:
        items += format_ranges(reg.s)
        if not reg.s.var_off.is_unknown:
            items.append(f"var_off={reg.s.var_off}")
    return f"{text}({','.join(items)})"


def _btf_name(reg: Reg) -> str:
    if reg.btf is None:
        return "?"
    t = reg.btf.type(reg.btf_id)
    return t.name
