"""JIT compilers: ``bpfnb.jit.x86_64``.

``bpfnb.jit`` is this package *and* the x86-64 compiler: ``bpfnb.jit(prog)``
calls ``bpfnb.jit.x86_64.jit``. Importing a submodule makes Python set the
package as the parent's attribute, so the package itself has to be callable
for ``bpfnb.jit(prog)`` to work whatever was imported first.
"""

import sys
import types

from .x86_64 import JitResult, jit


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return jit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage

__all__ = ["JitResult", "jit"]
