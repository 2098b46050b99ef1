"""The stepper over the verifier's columnar trace answers from its columns what it
would otherwise read from every visit: the same answers as a walk of built visits,
without building the walk (a million-step walk opens and steps at once)."""

import pathlib
import re

import pytest

import bpfnb
from bpfnb import examples
from bpfnb.verifier import verify
from bpfnb.widgets import walk as walk_module
from bpfnb.widgets.adapters import walk_from_result
from bpfnb.widgets.listing import STRIDE, WINDOW, StreamListing
from bpfnb.widgets.stepper import VerifierStepper
from bpfnb.widgets.walk import Walk

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
# programs with branches, pruned paths, a subprogram call and a loop
PROGRAMS = [(examples.path("count_protocols"), None), (FIXTURES / "bpf2bpf.bpf.o", None),
            (FIXTURES / "xdp.bpf.o", None), (FIXTURES / "loops.bpf.o", "alu_loop_1000")]

SEED_LOAD = 17  # stack_loop_1000's r1 = *(u32 *)(r1 +0): the seed every iteration reads


def _walks(path, name):
    prog = bpfnb.load(path).program(name)
    columnar = walk_from_result(verify(prog, log_level=0, progress=False))
    built = Walk(columnar.prog, list(columnar.visits), error=columnar.error)
    assert columnar.columns is not None and built.columns is None
    return columnar, built


@pytest.mark.parametrize(("path", "name"), PROGRAMS, ids=lambda p: getattr(p, "name", p))
@pytest.mark.parametrize("chunk", [walk_module.PATH_CHUNK, 7])
def test_the_columns_answer_as_the_visits_do(path, name, chunk, monkeypatch):
    monkeypatch.setattr(walk_module, "PATH_CHUNK", chunk)  # 7: paths over many whole chunks
    columnar, built = _walks(path, name)
    n = len(built)
    assert [columnar.depth(k) for k in range(n)] == [built.depth(k) for k in range(n)]
    for k in range(n):
        v = built.visits[k]
        assert (columnar.insn_of(k), columnar.event_of(k), columnar.prev_of(k), columnar.note_of(k)) == \
            (v.insn, v.event, v.prev, v.note)
        assert columnar._changed_names(k) == set(built.changed(k)), k
    assert columnar.error_step == built.error_step
    assert columnar.pruned_until(n - 1) == built.pruned_until(n - 1)
    one, other = VerifierStepper(columnar), VerifierStepper(built)
    step = max(1, n // 7)  # the loop's walk: a few steps along it
    for k in range(0, n, 1 if n < 2000 else step):
        path_c, edges_c = one._path_on_cfg(k)
        path_b, edges_b = other._path_on_cfg(k)
        assert path_c == sorted(set(path_b)) and edges_c == sorted(set(edges_b)), k
        assert columnar.path_start(k) == built.path_start(k)
        assert one.stream.html(k) == other.stream.html(k)
        for name in ("R0", "R1", "R6", "R10", "fp-8"):  # def-use chains and origins: read at once
            chain = columnar.chain(k, name)
            assert chain == built.chain(k, name), (k, name)
            assert columnar.insns_of(chain.steps) == built.insns_of(chain.steps) == \
                sorted({built.visits[s].insn for s in chain.steps})
            assert columnar.origin(k, name) == built.origin(k, name), (k, name)


def test_a_chain_through_a_long_loop_stops_at_its_reach(monkeypatch):
    columnar, built = _walks(FIXTURES / "loops.bpf.o", "alu_loop_1000")
    last = len(columnar) - 1
    whole = columnar.chain(last, "R0")  # every iteration feeds r0: the chain goes back to the entry
    assert not whole.truncated and whole.entry == ("R1",) and len(whole.defs) > 3000
    assert built.chain(last, "R0") == whole
    monkeypatch.setattr(walk_module, "CHAIN_REACH", 100)
    cut = columnar.chain(last, "R0")
    assert cut.truncated and cut.entry == () and cut.defs == whole.defs[:len(cut.defs)]
    assert len(cut.defs) < 100
    # forward: the seed loaded from the context is read by every iteration of the stack loop
    seed_loop, _ = _walks(FIXTURES / "loops.bpf.o", "stack_loop_1000")
    load = next(k for k in range(len(seed_loop)) if seed_loop.insn_of(k) == SEED_LOAD)
    cut = seed_loop.chain(load, "R1")
    assert cut.truncated and len(cut.uses) > 3 and max(cut.uses) <= load + 100
    monkeypatch.setattr(walk_module, "CHAIN_REACH", 100_000)
    whole = seed_loop.chain(load, "R1")
    assert not whole.truncated and len(whole.uses) >= 1000 and whole.uses[:len(cut.uses)] == cut.uses


def test_the_stream_makes_only_the_lines_it_lists():
    prog = bpfnb.load(FIXTURES / "loops.bpf.o").program("alu_loop_4000")
    stepper = VerifierStepper(walk_from_result(verify(prog, log_level=0, progress=False)))
    n = len(stepper.walk)
    assert n > 4 * WINDOW
    stepper.show(n // 2)
    stepper.show(n - 1)
    assert len(stepper.stream._lines) == 3 * WINDOW < n  # the three windows listed, no other line
    assert stepper.panes.listing.count('class="ln') == WINDOW
    assert f'<div class="gap">… {n - WINDOW} earlier visits</div>' in stepper.panes.listing
    # stepping inside a window sends the browser the current line's number, not the lines
    start = n // 2 // STRIDE * STRIDE
    stepper.show(start)
    listing = stepper.panes.listing
    for k in range(start + 1, start + STRIDE):
        stepper.show(k)
        assert stepper.panes.listing is listing and stepper.panes.listing_current == k
    stepper.show(start + STRIDE)
    assert stepper.panes.listing != listing


def _apply(text: str, moved: dict) -> str:
    """A window's lines moved along as the browser does it: the lines outside the new
    window dropped (and the gaps), those that came in added at each end."""
    kept = [d for d in re.findall(r"<div[^>]*>.*?</div>", text)  # lines hold no div
            if (m := re.search(r'data-(?:step|for)="(\d+)"', d)) and moved["lo"] <= int(m[1]) < moved["hi"]]
    return moved["earlier"] + moved["before"] + "".join(kept) + moved["after"] + moved["later"]


def test_a_window_moved_along_sends_only_the_lines_that_came_in():
    prog = bpfnb.load(FIXTURES / "loops.bpf.o").program("alu_loop_1000")
    stream = StreamListing(walk_from_result(verify(prog, log_level=0, progress=False)))
    edge = 10 * STRIDE
    text, moved = stream.moved(edge - 1)
    assert moved is None and stream.moved(edge - 1) == (text, None)  # listed whole; then unchanged
    for current in (edge, edge - 1):  # forward across an edge, then back across it
        was_lo = stream.window(edge - 1 if current == edge else edge)[0]
        new, moved = stream.moved(current)
        lo, hi = stream.window(current)
        assert moved["from"] == was_lo and (moved["lo"], moved["hi"]) == (lo, hi)
        came_in = moved["before"] + moved["after"]
        assert came_in.count('class="ln') == STRIDE
        assert _apply(text, moved) == new == stream.html(current, mark_current=False)
        text = new
    chain = stream.walk.chain(edge, "R1")
    assert stream.moved(edge, chain)[1] is None  # another chain: listed whole
    assert stream.moved(len(stream.walk) - 1, chain)[1] is None  # a window apart: likewise
