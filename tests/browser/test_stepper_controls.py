"""Every control of ``VerifierStepper`` in JupyterLab under headless Chromium shows the
visit Python says it leads to, with the state pane Python renders for that visit:
next/back, "next visit of insn", the def-use chain's buttons, "to error" (the jumps
the browser paints from the visits sent ahead), the slider's readout and the
instruction box (answered by the kernel). On a 9,003-visit loop walk and a rejected
program; the test process builds the same steppers (no browser) for what to expect.
Times are measured in benchmarks/bench_widgets.py, never asserted here.
"""

import pytest

from bpfnb.widgets.listing import STRIDE
from bpfnb.widgets.panes import KEEP_MARGIN, SHOWN_MS
from bpfnb.widgets.stepper import AHEAD

from . import lab

LOOPS = lab.ROOT / "tests/fixtures/loops.bpf.o"
LOOP = "alu_loop_1000"
REJECTED = "count_protocols_nocheck"  # bpfnb.examples: rejected at its error
CELLS = [
    "import bpfnb\nfrom bpfnb import examples\nfrom bpfnb.widgets import VerifierStepper\n"
    f"loop = VerifierStepper(bpfnb.load({str(LOOPS)!r}).program({LOOP!r}))\nloop",
    f"bad = VerifierStepper(bpfnb.load(examples.path({REJECTED!r})).program())\nbad",
]
AGAIN_CLICKS = 3
HELD_REPEATS, HELD_PER_S = 30, 30  # the ← key held down: a keyboard's fastest usual auto-repeat
CHAIN_USES = 2  # the chain followed needs this many later visits
BURST = AHEAD + 10  # repeats at once: more than the visits held behind the current one


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    yield from lab.serve(tmp_path_factory, "controls", lambda root: lab.notebook(root / "controls.ipynb", CELLS))


@pytest.fixture(scope="module")
def expected():
    """The same steppers made in this process: what each control should lead to."""
    import bpfnb
    from bpfnb import examples
    from bpfnb.widgets import VerifierStepper

    return (VerifierStepper(bpfnb.load(LOOPS).program(LOOP)),
            VerifierStepper(bpfnb.load(examples.path(REJECTED)).program()))


def _text(page, html: str) -> str:
    """The text of ``html`` as the browser reads it (what the state pane shows)."""
    return page.evaluate("(h) => { const t = document.createElement('template'); t.innerHTML = h;"
                         " return t.content.textContent; }", html)


# each line of a stream as the browser lists it: classes (but the current line's mark),
# the visit it is (or heads), its text
LINES = """(root) => [...root.children].map((c) => [c.className.replace(' cur', ''),
                                                c.dataset.step ?? c.dataset.for ?? '', c.textContent])"""


def _stream(page, stepper) -> list:
    """The stream's lines in the stepper's pane."""
    return stepper.locator(".bpfnb-panes .listing").evaluate(LINES)


def _lines_of(page, html: str) -> list:
    """The lines of a stream ``html`` as the browser reads them."""
    return page.evaluate(f"(h) => {{ const t = document.createElement('div'); t.innerHTML = h; return ({LINES})(t); }}",
                         html)


# the classes of the path to the current visit on the CFG's elements ("class id")
PATH_MARKS = """(cfg) => [...cfg.querySelectorAll('g.on-path, g.path-block, g.taken, g.pruned')].flatMap(
    (g) => ['on-path', 'path-block', 'taken', 'pruned'].filter((c) => g.classList.contains(c)).map((c) => c + ' ' + g.id))"""


def _shows(page, stepper, python, step: int) -> None:
    """The stepper shows visit ``step``, with the state pane Python renders for it and the
    path to it marked on the CFG as Python says."""
    lab.wait_state(page, lab.scope_of(stepper), f"visit {step} of ")
    assert lab.state_of(stepper) == _text(page, python.panel_html(step))
    marks = [m.replace(python.scope, lab.scope_of(stepper)) for m in python._cfg_look(step)[1]]  # its own ids
    assert marks and sorted(stepper.locator(".bpfnb-panes .cfg").evaluate(PATH_MARKS)) == sorted(marks)


@pytest.mark.browser
@pytest.mark.slow
def test_each_control_shows_the_visit_python_says(session, expected):
    browser, base, token = session
    loop_py, bad_py = expected
    page = lab.new_page(browser)
    lab.run_steppers(page, base, token, "controls.ipynb", 2, 300_000)
    steppers = page.locator(f"{lab.PANEL} .bpfnb-stepper")
    loop, bad = steppers.nth(0), steppers.nth(1)
    loop.scroll_into_view_if_needed()
    walk = loop_py.walk

    def click(stepper, label: str) -> None:
        stepper.get_by_role("button", name=label, exact=True).click()

    _shows(page, loop, loop_py, 0)
    for k in (1, 2, 3):
        click(loop, "next ▶")
        _shows(page, loop, loop_py, k)
    click(loop, "◀ back")
    _shows(page, loop, loop_py, 2)

    step = 2
    for _ in range(AGAIN_CLICKS):
        step = walk.next_visit(step)
        click(loop, "next visit of insn")
        _shows(page, loop, loop_py, step)
    lab.focus(loop)
    page.keyboard.press("v")  # the key does the same
    step = walk.next_visit(step)
    _shows(page, loop, loop_py, step)

    # a register of this visit whose chain goes on: its row selects it, the buttons follow it
    name = next(n for n in loop_py.walk.visits[step].regs
                if len([s for s in walk.chain(step, n).steps if s > step]) >= CHAIN_USES)
    loop.locator(f".bpfnb-panes .state tr[data-name={name}]").click()
    loop.locator(".widget-html", has_text=f"{name} after visit {step}").wait_for()
    loop_py.select(name, step)  # the same chain here: the stream marks it
    steps = walk.chain(step, name).steps
    later = [s for s in steps if s > step]
    click(loop, "chain ▶")
    _shows(page, loop, loop_py, later[0])
    click(loop, "chain ▶")
    _shows(page, loop, loop_py, later[1])
    click(loop, "◀ chain")
    _shows(page, loop, loop_py, later[0])

    # the slider's readout takes any visit; the instruction box the next visit of an insn
    middle = len(walk) // 2
    lab.wait_readout(page, lab.scope_of(loop), later[0])  # the slider followed the chain's moves

    def slide(to: int) -> None:  # typed into the slider's readout
        loop.locator(".widget-readout").first.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(str(to))
        page.keyboard.press("Enter")

    slide(middle)
    _shows(page, loop, loop_py, middle)
    # steps across the stream window's edge: the browser lists the lines that came in,
    # and its stream is then the window Python lists for that visit
    edge = (middle // STRIDE + 1) * STRIDE
    lab.time_clicks(page, lab.scope_of(loop), "next ▶", edge - middle)
    lo, _hi = loop_py.stream.window(edge)
    page.wait_for_function("([s, lo]) => document.querySelector('.' + s + ' .listing .ln').dataset.step == lo",
                           arg=[lab.scope_of(loop), lo], timeout=30_000)
    assert _stream(page, loop) == _lines_of(page, loop_py.stream.html(edge, loop_py.chain, mark_current=False))
    assert loop.locator(".bpfnb-panes").get_attribute("data-moved") == "1"
    middle = edge
    box = loop.locator(".widget-inline-hbox", has_text="insn").locator("input")

    def typed(insn: int) -> None:
        box.click()
        box.fill("")
        box.type(str(insn))
        box.press("Enter")

    # a step, and at once focus in the box: the slider and the box follow the steps once
    # they paused, but the box, being typed into, is left as typed (ipywidgets would set
    # it under the keys: "12" typed read "612"); a value Python sent before it heard of
    # the focus (set here as ipywidgets sets it) is undone at the next key, the box's
    # number as it was found selected, so that the number typed replaces it
    lab.time_clicks(page, lab.scope_of(loop), "next ▶", 1)
    middle += 1
    box.click()
    lab.wait_readout(page, lab.scope_of(loop), middle)
    box.evaluate("(input) => { input.value = '7'; }")
    # an instruction of the loop: its next visit is among those held, painted by the browser
    insn = (walk.insn_of(middle) + 2) % len(loop_py.prog.insns)
    held, asked = lab.moves(page, lab.scope_of(loop))
    box.type(str(insn))
    assert box.input_value() == str(insn)
    box.press("Enter")
    step = walk.visit_from(insn, middle)
    assert middle < step <= middle + AHEAD
    _shows(page, loop, loop_py, step)
    assert lab.moves(page, lab.scope_of(loop)) == (held + 1, asked)
    # one before the loop, visited once at the start: Python is asked, finds its first visit
    typed(walk.insn_of(0))
    _shows(page, loop, loop_py, 0)
    assert lab.moves(page, lab.scope_of(loop)) == (held + 1, asked + 1)
    lab.wait_readout(page, lab.scope_of(loop), 0)
    # a visit typed into the slider that the browser holds (near the walk's end: held
    # from the start) is painted by the browser too
    slide(len(walk) - 3)
    _shows(page, loop, loop_py, len(walk) - 3)
    assert lab.moves(page, lab.scope_of(loop)) == (held + 2, asked + 1)
    lab.wait_readout(page, lab.scope_of(loop), len(walk) - 3)
    # End (the browser paints the last visit it holds and disables "next visit of insn"
    # itself) and at once, before Python's controls follow that move, a CFG row: Python
    # paints the first visit of insn 5, which has a next one, and the button is enabled again
    scope = lab.scope_of(loop)
    again = loop.get_by_role("button", name="next visit of insn", exact=True)
    page.evaluate("""(s) => {
      const root = document.querySelector('.' + s + ' .bpfnb-panes');
      root.focus();
      root.dispatchEvent(new KeyboardEvent('keydown', { key: 'End', bubbles: true }));
      document.querySelector('#a_' + s + 't5 text').dispatchEvent(new MouseEvent('click', { bubbles: true }));
    }""", scope)
    first = next(k for k in range(len(walk)) if walk.insn_of(k) == 5)
    _shows(page, loop, loop_py, first)
    page.wait_for_function("(b) => !b.disabled", arg=again.element_handle(), timeout=30_000)
    lab.focus(loop)
    page.keyboard.press("End")
    _shows(page, loop, loop_py, len(walk) - 1)
    click(loop, "◀ back")
    _shows(page, loop, loop_py, len(walk) - 2)
    # ← held down: every repeat moves one visit back, and Python hears of the visits
    # painted at most every SHOWN_MS (not at each repeat), the last one when they stop
    # (and before each visit it is asked for, if the repeats outran the visits held)
    lab.focus(loop)
    said = int(loop.locator(".bpfnb-panes").get_attribute("data-said"))
    listing = loop.locator(".bpfnb-panes .listing")
    listing.evaluate("(box) => { box.scrolls = 0; box.addEventListener('scroll', () => { box.scrolls += 1; }); }")
    began = page.evaluate("() => performance.now()")
    _, asked = lab.hold_key(page, scope, "ArrowLeft", HELD_REPEATS, 1 / HELD_PER_S)
    held_ms = page.evaluate("() => performance.now()") - began  # the repeats, until the last one was painted
    _shows(page, loop, loop_py, len(walk) - 2 - HELD_REPEATS)
    lab.wait_readout(page, scope, len(walk) - 2 - HELD_REPEATS)
    told = int(loop.locator(".bpfnb-panes").get_attribute("data-said")) - said
    # one at once, one per SHOWN_MS while they came, the last one after them
    assert 1 <= told <= held_ms / SHOWN_MS + 2 + asked, (told, held_ms, asked)
    # the stream scrolled once a page of lines (those between the room kept at its top
    # and bottom), not at each step; the current line in view, out of that room
    scrolls, room, page_lines, line_top, line_bottom = listing.evaluate("""(box, margin) => {
        const line = box.querySelector('.ln.cur').getBoundingClientRect(), b = box.getBoundingClientRect();
        const room = margin * box.clientHeight;
        return [box.scrolls, room, (box.clientHeight - 2 * room) / line.height,
                line.top - b.top - box.clientTop, line.bottom - b.top - box.clientTop]; }""", KEEP_MARGIN)
    assert 1 <= scrolls <= HELD_REPEATS / page_lines + 1, (scrolls, page_lines)
    assert room - 1 <= line_top and line_bottom <= listing.evaluate("(box) => box.clientHeight") - room + 1
    # repeats that outrun the visits held, all in one task (no answer from Python between
    # them): those past the visits held go to Python one after the other, none is lost
    slide(middle)
    _shows(page, loop, loop_py, middle)
    page.evaluate("""([s, n]) => {
      const root = document.querySelector('.' + s + ' .bpfnb-panes');
      root.focus();
      for (let k = 0; k < n; k++) root.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowLeft', bubbles: true }));
    }""", [scope, BURST])
    _shows(page, loop, loop_py, middle - BURST)
    lab.wait_readout(page, scope, middle - BURST)

    # the rejected program: from its first visit, "to error" shows the error
    bad.scroll_into_view_if_needed()
    error = bad_py.walk.error_step
    assert error is not None
    _shows(page, bad, bad_py, 0)
    click(bad, "next ▶")
    _shows(page, bad, bad_py, 1)
    click(bad, "to error")
    _shows(page, bad, bad_py, error)
    assert bad_py.walk.error in lab.state_of(bad)
    page.close()
