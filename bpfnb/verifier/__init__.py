"""bpfnb's verifier: Linux's verdicts, messages and register states, every step recorded."""

from .regstate import Reg, format_reg
from .scalar import Scalar, format_scalar
from .tnum import Tnum
from .trace import Step, Trace
from .verify import VerifierResult, verify

__all__ = ["Reg", "Scalar", "Step", "Tnum", "Trace", "VerifierResult", "format_reg", "format_scalar", "verify"]
