"""JIT compilers: ``bpfnb.jit.x86_64``."""

from .x86_64 import JitResult, jit

__all__ = ["JitResult", "jit"]
