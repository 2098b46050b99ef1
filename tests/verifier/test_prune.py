"""Pruning only saves work: a program gets the same verdict when every path is
walked to its end (property over generated programs)."""

import random

from bpfnb.verifier import verify
from bpfnb.verifier.randprog import random_program, wide_program

SEED, COUNT = 99, 300
LIMIT = 200_000


def test_pruning_never_accepts_what_the_full_walk_rejects():
    rng = random.Random(SEED)
    disagreements, accepted = [], 0
    for k in range(COUNT):
        prog = random_program(rng) if k % 2 else wide_program(rng)
        pruned = verify(prog, log_level=0, trace=False)
        full = verify(prog, log_level=0, trace=False, prune=False, limit=LIMIT)
        accepted += pruned.ok
        if pruned.ok != full.ok:
            disagreements.append((k, pruned.error, full.error))
    assert disagreements == []
    assert accepted > COUNT // 5  # enough accepts for pruning to have mattered
