"""The notebooks in a real JupyterLab under headless Chromium, at 1280 px.

Notebook 01 has three steppers on one page (accepted, rejected, a pasted kernel
log): stepping one leaves the others as they were; typing an instruction number
jumps there; clicking a register operand lights its chain and dims the rest;
the rejected one's CFG is scrolled to the error; the pasted log steps with the
keyboard. Every notebook is run and screenshotted cell by cell into
tests/artifacts/ (ignored by git) for a person to look at.
"""

import pathlib
import shutil

import pytest

from .lab import CHROMIUM, CHROMIUM_ARGS, PANEL, jupyter_lab, missing, open_and_run, wait_idle

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
WIDTH, HEIGHT = 1280, 1300
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CURRENT_FILL = "rgb(255, 248, 197)"  # bpfnb.viz.cfg.CURRENT


def _screenshots(page, stem: str):
    for k, cell in enumerate(page.locator(f"{PANEL} .jp-Cell").all()):
        if cell.locator(".jp-OutputArea-output").count():
            cell.scroll_into_view_if_needed()
            cell.screenshot(path=str(ARTIFACTS / f"{stem}-cell{k:02d}.png"))


def _fill_of(page, stepper, insn: int) -> str:
    scope = _scope(stepper)
    return page.evaluate(
        "([id]) => { const e = document.querySelector('#' + CSS.escape(id) + ' polygon');"
        " return e ? getComputedStyle(e).fill : 'none'; }", [f"a_{scope}t{insn}"])


def _scope(stepper) -> str:
    return next(c for c in stepper.get_attribute("class").split() if c.startswith("bpfnbs"))


def _state(stepper) -> str:
    # textContent: an output off screen is not rendered, and has no innerText
    return stepper.locator(".bpfnb-panes .state").text_content()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    root = tmp_path_factory.mktemp("lab")
    for nb in NOTEBOOKS:
        shutil.copy(nb, root / nb.name)
    with jupyter_lab(root) as (base, token), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser, base, token
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.kernel
@pytest.mark.slow
def test_steppers_on_one_page_are_independent_and_interactive(lab):
    browser, base, token = lab
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    name = "01_verifier_walkthrough.ipynb"
    open_and_run(page, base, token, name)
    steppers = page.locator(f"{PANEL} .bpfnb-stepper")
    try:
        wait_idle(page)
        steppers.nth(2).wait_for(timeout=60_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "01-steppers-missing.png"), full_page=True)
        raise
    _screenshots(page, "01")
    accepted, rejected, pasted = steppers.nth(0), steppers.nth(1), steppers.nth(2)
    assert len({_scope(s) for s in (accepted, rejected, pasted)}) == 3

    # two steppers of the page stay independent
    accepted.scroll_into_view_if_needed()
    assert "visit 0 of" in _state(accepted)
    rejected_before = _state(rejected)
    assert _fill_of(page, accepted, 0) == CURRENT_FILL and _fill_of(page, rejected, 0) != CURRENT_FILL
    accepted.get_by_role("button", name="next ▶").click()
    page.wait_for_function(
        "(s) => document.querySelector('.' + s + ' .bpfnb-panes .state').textContent.includes('visit 1 of')",
        arg=_scope(accepted), timeout=20_000)
    assert _fill_of(page, accepted, 1) == CURRENT_FILL and _fill_of(page, accepted, 0) != CURRENT_FILL
    assert _fill_of(page, rejected, 1) != CURRENT_FILL and _state(rejected) == rejected_before
    page.screenshot(path=str(ARTIFACTS / "01-after-next.png"))

    # typing an instruction number jumps there (and the keys do not swallow the digits)
    box = accepted.locator(".widget-inline-hbox", has_text="insn").locator("input")
    box.click()
    box.fill("")
    box.type("17")
    box.press("Enter")
    page.wait_for_function(
        "(s) => /insn 17\\b/.test(document.querySelector('.' + s + ' .bpfnb-panes .state').textContent)",
        arg=_scope(accepted), timeout=20_000)
    assert box.input_value() == "17"
    assert _fill_of(page, accepted, 17) == CURRENT_FILL

    # the rejected stepper was shown at its error: its CFG is scrolled to the error row
    rejected.scroll_into_view_if_needed()
    error_visible = page.evaluate(
        """(s) => {
            const box = document.querySelector('.' + s + ' .bpfnb-panes .cfg');
            const row = document.querySelector('#' + CSS.escape('a_' + s + 't25'));
            const b = box.getBoundingClientRect(), r = row.getBoundingClientRect();
            return [box.scrollTop, r.top >= b.top && r.bottom <= b.bottom];
        }""", _scope(rejected))
    assert error_visible[0] > 0 and error_visible[1], error_visible
    assert _fill_of(page, rejected, 25) == CURRENT_FILL
    page.screenshot(path=str(ARTIFACTS / "01-rejected-at-error.png"))

    # clicking a register operand lights its def-use chain and dims the rest
    operand = rejected.locator(".ln.cur .op[data-name='R0']").first
    operand.click()
    page.wait_for_function(
        "(s) => document.querySelectorAll('.' + s + ' .ln.dim').length > 0", arg=_scope(rejected),
        timeout=20_000)
    lit = rejected.locator(".ln.def").all_inner_texts()
    assert any("bpf_map_lookup_elem(" in t for t in lit), lit
    assert "R0" in rejected.locator(".widget-html", has_text="def(s)").inner_text()
    dimmed = page.evaluate(
        "(s) => getComputedStyle(document.querySelector('#' + CSS.escape('a_' + s + 't0') + ' text')).opacity",
        _scope(rejected))
    assert float(dimmed) < 1  # insn 0 (r6 = r1) is not in R0's chain
    page.screenshot(path=str(ARTIFACTS / "01-chain.png"))

    # clicking a CFG row jumps to that instruction
    rejected.locator(f"#a_{_scope(rejected)}t19").click()
    page.wait_for_function(
        "(s) => /insn 19\\b/.test(document.querySelector('.' + s + ' .bpfnb-panes .state').textContent)",
        arg=_scope(rejected), timeout=20_000)

    # the pasted kernel log steps, with the keyboard once the stepper has focus
    pasted.scroll_into_view_if_needed()
    assert "(log)" in _state(pasted) and "insn 25" in _state(pasted)
    pasted.locator(".bpfnb-panes .state .step > div").first.click()  # the header: focus, no selection
    page.keyboard.press("Home")
    page.wait_for_function(
        "(s) => document.querySelector('.' + s + ' .bpfnb-panes .state').textContent.includes('visit 0 of')",
        arg=_scope(pasted), timeout=20_000)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "(s) => document.querySelector('.' + s + ' .bpfnb-panes .state').textContent.includes('visit 2 of')",
        arg=_scope(pasted), timeout=20_000)
    assert "visit 0 of" in _state(accepted) or "insn 17" in _state(accepted)  # not moved by those keys
    page.screenshot(path=str(ARTIFACTS / "01-pasted-log.png"))
    page.close()


@pytest.mark.browser
@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS[1:], ids=lambda p: p.stem)
def test_notebook_renders_at_1280px(lab, path):
    browser, base, token = lab
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    open_and_run(page, base, token, path.name)
    try:
        wait_idle(page)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"{path.stem[:2]}-not-idle.png"))
        raise
    errors = page.locator(f"{PANEL} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert not page.locator(f"{PANEL} .jp-OutputArea-output .ansi-red-fg").count(), errors.all_inner_texts()
    _screenshots(page, path.stem[:2])
    # nothing is wider than the notebook: wide content scrolls inside its own cell
    overflow = page.evaluate(
        """(panel) => [...document.querySelectorAll(panel + ' .jp-OutputArea-output')]
                  .filter(o => o.scrollWidth > o.clientWidth + 2).map(o => o.innerText.slice(0, 80))""", PANEL)
    assert overflow == []
    page.close()
