"""BTF: parsing, type lookup, and the kernel's BTF."""

from .btf import BUNDLED, LIVE_VMLINUX, Btf, bundled_btf, kernel_btf
from .types import BtfType, EnumValue, Member, Param, VarSecInfo

__all__ = ["BUNDLED", "Btf", "bundled_btf", "BtfType", "EnumValue", "LIVE_VMLINUX", "Member", "Param", "VarSecInfo", "kernel_btf"]
