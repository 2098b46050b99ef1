"""A 990,003-step walk (tests/large_fixtures/million.bpf.o, the kernel's processed count)
in ``VerifierStepper`` in JupyterLab under headless Chromium: it opens, steps with the
buttons and the keys, the visit slider reaches both ends and any visit between, the
instruction box and the CFG jump, and the CFG of the 13-instruction program stays 13 rows.

Timings (first paint after the stepper is made, each step from the click until the
panes show it) are asserted nowhere: they are written to
tests/artifacts/scale-stepper.json and printed (pytest -s); benchmarks/bench_widgets.py
measures them the same way beside a 9,003-step walk's. The verification in the
notebook's kernel takes a minute or more: the test is marked slow.
"""

import json
import pathlib

import pytest

from .lab import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PANEL,
    jupyter_lab,
    missing,
    notebook,
    open_and_run,
    painted,
    printed,
    scope_of,
    time_clicks,
    wait_idle,
    watch_paints,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
FIXTURE = ROOT / "tests/large_fixtures/million.bpf.o"
GOLDEN = json.loads((ROOT / "tests/large_fixtures/million.kernel.json").read_text())
WIDTH, HEIGHT = 1280, 1300
CURRENT_FILL = "rgb(255, 248, 197)"  # bpfnb.viz.cfg.CURRENT
STEPS_TIMED = 10
VERIFY_TIMEOUT_MS = 900_000  # a loaded machine: the walk in the notebook's kernel takes minutes
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


def _state(stepper) -> str:
    return stepper.locator(".bpfnb-panes .state").text_content()


def _wait_state(page, scope: str, pattern: str) -> None:
    page.wait_for_function(
        "([s, p]) => new RegExp(p).test(document.querySelector('.' + s + ' .bpfnb-panes .state').textContent)",
        arg=[scope, pattern], timeout=30_000)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    root = tmp_path_factory.mktemp("scale")
    notebook(root / "million.ipynb", CELLS)
    with jupyter_lab(root) as (base, token), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser, base, token
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.slow
def test_a_million_step_walk_opens_steps_and_slides_end_to_end(lab):
    browser, base, token = lab
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    open_and_run(page, base, token, "million.ipynb")
    watch_paints(page)
    try:
        wait_idle(page, timeout=VERIFY_TIMEOUT_MS)
        page.locator(f"{PANEL} .bpfnb-stepper").wait_for(timeout=60_000)
        page.wait_for_function("() => 0 in window.__bpfnbPainted", timeout=60_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "scale-not-shown.png"), full_page=True)
        raise
    (verified,), (shown,) = printed(page, "VERIFIED"), printed(page, "SHOWN")
    assert verified["ok"] and verified["processed"] == GOLDEN["processed_insns"] == 990_003
    figures = {"verify_s": verified["verify_s"], "built_s": shown["built_s"],
               "first_paint_s": painted(page, 0) - shown["shown"]}
    stepper = page.locator(f"{PANEL} .bpfnb-stepper").first
    scope = scope_of(stepper)
    last = GOLDEN["processed_insns"] - 1
    assert f"visit 0 of {last + 1}" in _state(stepper)

    # the CFG of the small program stays small, and follows the walk
    rows = page.evaluate("(s) => document.querySelectorAll('.' + s + ' .cfg g[id^=a_' + s + 't]').length", scope)
    assert rows == 13

    def fill(insn: int) -> str:
        return page.evaluate(
            "([id]) => { const e = document.querySelector('#' + CSS.escape(id) + ' polygon');"
            " return e ? getComputedStyle(e).fill : 'none'; }", [f"a_{scope}t{insn}"])

    assert fill(0) == CURRENT_FILL
    figures["step_ms_start"] = time_clicks(page, scope, "next ▶", STEPS_TIMED)
    assert f"visit {STEPS_TIMED} of" in _state(stepper) and fill(0) != CURRENT_FILL

    # End: the last visit, and the slider's readout at the end of its range
    stepper.locator(".bpfnb-panes .state .step > div").first.click()  # focus, no selection
    page.keyboard.press("End")
    _wait_state(page, scope, f"visit {last} of")
    readout = stepper.locator(".widget-readout").first
    assert readout.text_content().replace(",", "").strip() == str(last)
    assert fill(12) == CURRENT_FILL  # the exit
    figures["step_ms_back_at_end"] = time_clicks(page, scope, "◀ back", STEPS_TIMED, -1)

    # the slider's readout takes any visit: the middle of the walk
    middle = (last + 1) // 2
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(middle))
    page.keyboard.press("Enter")
    _wait_state(page, scope, f"visit {middle} of")
    figures["step_ms_middle"] = time_clicks(page, scope, "next ▶", STEPS_TIMED)

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
    _wait_state(page, scope, f"visit {last} of .*insn 12\\b")
    stepper.locator(f"#a_{scope}t5").click()  # a CFG row: the first visit of insn 5 (from the start)
    _wait_state(page, scope, "visit 5 of")
    next_visit = time_clicks(page, scope, "next visit of insn", 3, 9)
    assert "visit 32 of" in _state(stepper), _state(stepper)  # 9 instructions per iteration
    figures["next_visit_of_insn_ms"] = next_visit
    page.screenshot(path=str(ARTIFACTS / "scale-stepper.png"))

    steps = figures["step_ms_start"] + figures["step_ms_back_at_end"] + figures["step_ms_middle"]
    figures["step_ms_median"] = sorted(steps)[len(steps) // 2]
    figures["step_ms_max"] = max(steps)
    (ARTIFACTS / "scale-stepper.json").write_text(json.dumps(figures, indent=1))
    print(f"\n990,003-step walk in the browser: verified in {figures['verify_s']:.1f} s, stepper made in "
          f"{figures['built_s']:.2f} s, first paint {figures['first_paint_s']:.2f} s after, steps: median "
          f"{figures['step_ms_median']:.0f} ms, slowest {figures['step_ms_max']:.0f} ms")
    page.close()
