"""Limits on what an input may make bpfnb allocate.

One memory budget bounds every allocation an input's sizes decide (a map's
``max_entries``, a section's ``sh_size``, the VM's arena): a size past it is
refused with an error naming what asked for it, before anything is allocated,
instead of a ``MemoryError`` (or the machine's memory) deep inside.

The budget is ``BPFNB_MEMORY_BUDGET`` (bytes) from the environment, else
``DEFAULT_MEMORY_BUDGET``; ``set_memory_budget(n)`` changes it for this process.
"""

from __future__ import annotations

import os

DEFAULT_MEMORY_BUDGET = 1 << 30  # 1 GiB: far above any real program's maps, far below a runaway size
ENV_MEMORY_BUDGET = "BPFNB_MEMORY_BUDGET"

_budget: int | None = None


def memory_budget() -> int:
    """The bytes one object's data or one VM's memory may take."""
    if _budget is not None:
        return _budget
    text = os.environ.get(ENV_MEMORY_BUDGET)
    if text:
        try:
            return int(text, 0)
        except ValueError:
            pass
    return DEFAULT_MEMORY_BUDGET


def set_memory_budget(size: int | None) -> None:
    """Set the budget for this process (None: back to the environment or the default)."""
    global _budget
    _budget = size


def check_size(what: str, size: int, budget: int | None, error: type[Exception]) -> None:
    """Raise ``error`` naming ``what`` when ``size`` bytes exceed ``budget`` (default: the
    process's budget)."""
    budget = memory_budget() if budget is None else budget
    if size > budget:
        raise error(f"{what} needs {size:,} bytes, more than the memory budget of {budget:,} bytes "
                    f"(set {ENV_MEMORY_BUDGET} or bpfnb.limits.set_memory_budget to allow more)")
