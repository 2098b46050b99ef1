"""A long walk: its progress bar, and Ctrl-C stopping it with where it was."""

import pathlib

import pytest

import bpfnb
from bpfnb.verifier import progress, verify

LOOPS = pathlib.Path(__file__).resolve().parents[2] / "tests/fixtures/loops.bpf.o"


def test_ctrl_c_stops_the_walk_saying_where(monkeypatch):
    def interrupt(self, processed):
        if processed >= 2 * progress.CHECK_EVERY:
            raise KeyboardInterrupt

    monkeypatch.setattr(progress.WalkProgress, "update", interrupt)
    with pytest.raises(KeyboardInterrupt) as stopped:
        verify(bpfnb.load(LOOPS).program("alu_loop_1000"), log_level=0)
    message = str(stopped.value)
    assert message.startswith("verification of alu_loop_1000 interrupted at insn ")
    assert message.endswith(f"after {2 * progress.CHECK_EVERY} processed instructions")


def test_the_bar_counts_the_processed_instructions(capsys):
    result = verify(bpfnb.load(LOOPS).program("alu_loop_1000"), log_level=0, trace=False, progress=True)
    err = capsys.readouterr().err
    assert "verifying alu_loop_1000" in err and f"{2 * progress.CHECK_EVERY // 1000}" in err
    assert result.processed == 9003


def test_no_bar_when_asked_for_none(capsys):
    verify(bpfnb.load(LOOPS).program("alu_loop_1000"), log_level=0, trace=False, progress=False)
    assert "verifying" not in capsys.readouterr().err
