"""BTF: parsing, type lookup, and the kernel's BTF."""

from .btf import LIVE_VMLINUX, Btf, kernel_btf
from .types import BtfType, EnumValue, Member, Param, VarSecInfo

__all__ = ["Btf", "BtfType", "EnumValue", "LIVE_VMLINUX", "Member", "Param", "VarSecInfo", "kernel_btf"]
