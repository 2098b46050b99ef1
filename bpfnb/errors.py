"""The errors a user can cause, each naming what was wrong and where.

Every layer raises a subclass of :class:`BpfnbError`; the message says the
file, section and instruction index where that is known.
"""

from __future__ import annotations


class BpfnbError(Exception):
    """Base of every error bpfnb raises on purpose."""


class IsaError(BpfnbError):
    """Malformed instruction bytes or assembly text."""


class BtfError(BpfnbError):
    """Malformed or unusable BTF, or a type that cannot be found."""


class ElfError(BpfnbError):
    """A file that is not a usable BPF ELF object."""


class RelocationError(ElfError):
    """A relocation (map, call, global data or CO-RE) that cannot be applied."""


class VerifierError(BpfnbError):
    """The verifier rejected a program where an accepted one was required."""


class VmError(BpfnbError):
    """A runtime fault in the interpreter: something the verifier let through."""


class JitError(BpfnbError):
    """The JIT could not translate or run a program."""


class KernelError(BpfnbError):
    """The running kernel cannot be used, or refused a request."""

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno


class InternalError(BpfnbError):
    """A bug in bpfnb itself (a Python exception inside the verifier), never a
    verdict on the program: says which instruction was being checked."""

    def __init__(self, message: str, insn: int | None = None):
        where = f"at insn {insn}" if insn is not None else "before the walk"
        super().__init__(f"bpfnb internal error {where}: {message}")
        self.insn = insn
