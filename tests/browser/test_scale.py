"""A 990,003-step walk (tests/large_fixtures/million.bpf.o, the kernel's processed count)
in ``VerifierStepper`` in JupyterLab under headless Chromium: it opens, steps with the
buttons and the keys, the visit slider reaches both ends and any visit between, the
instruction box and the CFG jump, and the CFG of the 13-instruction program stays 13 rows.

Timings (first paint after the stepper is made, each step from the click until the
frame showing it is presented, as the browser times inputs) are asserted nowhere: they are written to
tests/artifacts/scale-stepper.json and printed (pytest -s); benchmarks/bench_widgets.py
measures them the same way beside a 9,003-step walk's. The verification in the
notebook's kernel takes a minute or more: the test is marked slow.
"""

import json

import pytest

from . import lab

FIXTURE = lab.ROOT / "tests/large_fixtures/million.bpf.o"
GOLDEN = json.loads((lab.ROOT / "tests/large_fixtures/million.kernel.json").read_text())
STEPS_TIMED = 10
VERIFY_TIMEOUT_MS = 900_000  # a loaded machine: the walk in the lab.notebook's kernel takes minutes
CELLS = [
    "import json, time\nimport bpfnb\nfrom bpfnb.widgets import VerifierStepper\n"
    f"prog = bpfnb.load({str(FIXTURE)!r}).program('million_steps')\n"
    "start = time.perf_counter()\n"
    "result = bpfnb.verify(prog, log_level=0, progress=False)\n"
    "print('VERIFIED ' + json.dumps({'ok': result.ok, 'processed': result.processed,\n"
    "                                'verify_s': time.perf_counter() - start}))",
    "shown = time.time()\nstepper = VerifierStepper(result)\n"
    "print('SHOWN ' + json.dumps({'shown': shown, 'built_s': time.time() - shown}))\nstepper",
]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    yield from lab.serve(tmp_path_factory, "scale", lambda root: lab.notebook(root / "million.ipynb", CELLS))


@pytest.mark.browser
@pytest.mark.slow
def test_a_million_step_walk_opens_steps_and_slides_end_to_end(session):
    browser, base, token = session
    page = lab.new_page(browser)
    try:
        lab.run_steppers(page, base, token, "million.ipynb", 1, VERIFY_TIMEOUT_MS)
    except Exception:
        page.screenshot(path=str(lab.ARTIFACTS / "scale-not-shown.png"), full_page=True)
        raise
    (verified,), (shown,) = lab.printed(page, "VERIFIED"), lab.printed(page, "SHOWN")
    assert verified["ok"] and verified["processed"] == GOLDEN["processed_insns"] == 990_003
    figures = {"verify_s": verified["verify_s"], "built_s": shown["built_s"],
               "first_paint_s": lab.painted(page, 0) - shown["shown"]}
    stepper = page.locator(f"{lab.PANEL} .bpfnb-stepper").first
    scope = lab.scope_of(stepper)
    last = GOLDEN["processed_insns"] - 1
    assert f"visit 0 of {last + 1}" in lab.state_of(stepper)

    # the CFG of the small program stays small, and follows the walk
    rows = page.evaluate("(s) => document.querySelectorAll('.' + s + ' .cfg g[id^=a_' + s + 't]').length", scope)
    assert rows == 13

    def fill(insn: int) -> str:
        return lab.cfg_fill(page, scope, insn)

    assert fill(0) == lab.CURRENT_FILL
    def steps(label: str) -> list[float]:  # real clicks from a page at rest, then one after another, as bench_widgets
        act = lab.press_button(stepper, label)
        return [lab.time_change(page, scope, act, at_rest=k == 0)[0] for k in range(STEPS_TIMED)]

    figures["step_ms_start"] = steps("next ▶")
    assert f"visit {STEPS_TIMED} of" in lab.state_of(stepper) and fill(0) != lab.CURRENT_FILL

    # End: the last visit, and the slider's readout at the end of its range
    lab.focus(stepper)
    page.keyboard.press("End")
    lab.wait_state(page, scope, f"visit {last} of")
    readout = stepper.locator(".widget-readout").first  # follows once Python heard of the step
    lab.wait_readout(page, scope, last)
    assert fill(12) == lab.CURRENT_FILL  # the exit
    figures["step_ms_back_at_end"] = steps("◀ back")

    # the slider's readout takes any visit: the middle of the walk (typed once the slider
    # followed the steps made in the browser: Python moves it a moment after them)
    lab.wait_readout(page, scope, last - STEPS_TIMED)
    middle = (last + 1) // 2
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(middle))
    page.keyboard.press("Enter")
    lab.wait_state(page, scope, f"visit {middle} of")
    figures["step_ms_middle"] = steps("next ▶")

    # a click on the slider's track near its start lands on an early visit
    track = stepper.locator(".widget-slider .noUi-target, .widget-hslider .noUi-target").first
    box = track.bounding_box()
    page.mouse.click(box["x"] + 2, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "([s, m]) => Number(/visit (\\d+) of/.exec(document.querySelector('.' + s + ' .bpfnb-panes .state')"
        ".textContent)[1]) < m", arg=[scope, middle // 4], timeout=30_000)

    # the instruction box jumps (the next visit of insn 12 is the last one), the CFG too
    box_input = stepper.locator(".widget-inline-hbox", has_text="insn").locator("input")
    box_input.click()
    box_input.fill("")
    box_input.type("12")
    box_input.press("Enter")
    lab.wait_state(page, scope, f"visit {last} of .*insn 12\\b")
    stepper.locator(f"#a_{scope}t5").click()  # a CFG row: the first visit of insn 5 (from the start)
    lab.wait_state(page, scope, "visit 5 of")
    next_visit = lab.time_clicks(page, scope, "next visit of insn", 3, 9)
    assert "visit 32 of" in lab.state_of(stepper), lab.state_of(stepper)  # 9 instructions per iteration
    figures["next_visit_of_insn_ms"] = next_visit
    page.screenshot(path=str(lab.ARTIFACTS / "scale-stepper.png"))

    steps = figures["step_ms_start"] + figures["step_ms_back_at_end"] + figures["step_ms_middle"]
    figures["step_ms_median"] = sorted(steps)[len(steps) // 2]
    figures["step_ms_max"] = max(steps)
    (lab.ARTIFACTS / "scale-stepper.json").write_text(json.dumps(figures, indent=1))
    print(f"\n990,003-step walk in the browser: verified in {figures['verify_s']:.1f} s, stepper made in "
          f"{figures['built_s']:.2f} s, first paint {figures['first_paint_s']:.2f} s after, steps: median "
          f"{figures['step_ms_median']:.0f} ms, slowest {figures['step_ms_max']:.0f} ms")
    page.close()
