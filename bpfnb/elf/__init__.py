"""Compiled BPF objects: programs, maps, relocations and CO-RE (``bpfnb.load``)."""

from .core import CoreRelocation
from .loader import BpfnbWarning, Object, load
from .sections import SectionKind, classify

__all__ = ["BpfnbWarning", "CoreRelocation", "Object", "SectionKind", "classify", "load"]
