"""Kernel addresses named from ``/proc/kallsyms`` (``kfree_skb_reason+0x4e``).

Readable only where the kernel shows addresses (root, ``kptr_restrict`` allowing
it); elsewhere every address is 0 and nothing is named."""

from __future__ import annotations

import bisect
import functools

KALLSYMS = "/proc/kallsyms"
TEXT_TYPES = frozenset("tTwW")  # code symbols: a drop's location is a return address


@functools.lru_cache(maxsize=1)
def _table(path: str = KALLSYMS) -> tuple[list[int], list[str]]:
    addresses: list[int] = []
    names: list[str] = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] in TEXT_TYPES:
                    address = int(parts[0], 16)
                    if address:
                        addresses.append(address)
                        names.append(parts[2])
    except OSError:
        return [], []
    order = sorted(range(len(addresses)), key=addresses.__getitem__)
    return [addresses[i] for i in order], [names[i] for i in order]


def available() -> bool:
    """Whether this machine's kallsyms shows addresses to us."""
    return bool(_table()[0])


def symbolize(address: int) -> str | None:
    """``name+0xoff`` for a kernel text address, or None when it cannot be named."""
    addresses, names = _table()
    k = bisect.bisect_right(addresses, int(address)) - 1
    if k < 0 or not address:
        return None
    return f"{names[k]}+{int(address) - addresses[k]:#x}"
