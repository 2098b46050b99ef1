"""Compiled BPF objects: programs, maps, relocations and CO-RE (``bpfnb.load``)."""

from .core import CoreRelocation
from .loader import Object, load
from .sections import SectionKind, classify

__all__ = ["CoreRelocation", "Object", "SectionKind", "classify", "load"]
