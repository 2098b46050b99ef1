"""``bpfnb.jit(prog)`` works whatever was imported first (the lazy attribute)."""

import subprocess
import sys

ORDERS = [
    "import bpfnb",
    "import bpfnb.jit.x86_64; import bpfnb",
    "import bpfnb; import bpfnb.jit.x86_64",
    "import bpfnb; bpfnb.jit; import bpfnb.jit.x86_64.compiler",
    "from bpfnb.jit.x86_64 import jit; import bpfnb",
]
CALL = """
from bpfnb import examples
prog = bpfnb.load(examples.path("typecast_ok")).program()
image = bpfnb.jit(prog)
print(type(image).__name__, bpfnb.jit.x86_64.__name__, bpfnb.jit.JitResult.__name__)
"""


def test_bpfnb_jit_is_callable_after_any_import_order():
    for order in ORDERS:
        out = subprocess.run([sys.executable, "-c", order + "\n" + CALL], capture_output=True, text=True)
        assert out.returncode == 0, f"{order}: {out.stderr[-400:]}"
        assert out.stdout.split() == ["JitResult", "bpfnb.jit.x86_64", "JitResult"], order
