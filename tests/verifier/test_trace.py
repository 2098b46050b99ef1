"""The columnar trace's DataFrame: the same rows as the steps it builds on demand."""

import pathlib

import pandas as pd
import pytest

import bpfnb
from bpfnb import examples
from bpfnb.verifier import verify

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
PROGRAMS = [(examples.path("count_protocols_nocheck"), None), (FIXTURES / "bpf2bpf.bpf.o", None),
            (FIXTURES / "xdp.bpf.o", None), (FIXTURES / "loops.bpf.o", "stack_loop_1000")]


def _from_steps(trace) -> dict:
    """Every step's fields and texts, read through the steps (what frame() must equal)."""
    rows = {}
    for s in trace:
        rows[s.step] = {"insn": s.insn, "prev": s.prev, "event": s.event, "frame": s.frame, **s.regs, **s.stack}
    return rows


@pytest.mark.parametrize(("path", "name"), PROGRAMS, ids=lambda p: getattr(p, "name", p))
def test_the_frame_has_the_steps_values(path, name):
    trace = verify(bpfnb.load(path).program(name), log_level=0, progress=False).trace
    frame = trace.frame()
    expected = _from_steps(trace)
    assert list(frame["step"]) == list(range(len(trace)))
    names = sorted({k for row in expected.values() for k in row} - {"insn", "prev", "event", "frame"},
                   key=lambda c: (c.startswith("fp"), int(c[1:]) if c.startswith("R") else -int(c[2:])))
    assert list(frame.columns) == ["step", "insn", "prev", "event", "frame", *names]
    for row in frame.itertuples(index=False):
        want = expected[row.step]
        got = {k: (None if pd.isna(v) else v) for k, v in zip(frame.columns, row, strict=True)}
        assert {k: v for k, v in got.items() if k != "step" and v is not None} == \
            {k: v for k, v in want.items() if v is not None}, row.step
    assert isinstance(frame["R0"].dtype, pd.CategoricalDtype)
