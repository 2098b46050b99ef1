"""The notebooks in a real JupyterLab under headless Chromium, at 1280 px.

Notebook 01 has three steppers on one page (accepted, rejected, a pasted kernel
log): stepping one leaves the others as they were; typing an instruction number
jumps there; clicking a register operand lights its chain and dims the rest;
the rejected one's CFG is scrolled to the error; the pasted log steps with the
keyboard. Every notebook is run and screenshotted cell by cell into
tests/artifacts/ (ignored by git) for a person to look at.
"""

import shutil

import pytest

from . import lab

NOTEBOOKS = sorted((lab.ROOT / "notebooks").glob("*.ipynb"))


def _screenshots(page, stem: str):
    for k, cell in enumerate(page.locator(f"{lab.PANEL} .jp-Cell").all()):
        if cell.locator(".jp-OutputArea-output").count():
            cell.scroll_into_view_if_needed()
            cell.screenshot(path=str(lab.ARTIFACTS / f"{stem}-cell{k:02d}.png"))


def _fill_of(page, stepper, insn: int) -> str:
    return lab.cfg_fill(page, lab.scope_of(stepper), insn)


def _copy_notebooks(root) -> None:
    for nb in NOTEBOOKS:
        shutil.copy(nb, root / nb.name)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    yield from lab.serve(tmp_path_factory, "lab", _copy_notebooks)


@pytest.mark.browser
@pytest.mark.kernel
@pytest.mark.slow
def test_steppers_on_one_page_are_independent_and_interactive(session):
    browser, base, token = session
    page = lab.new_page(browser)
    name = "01_verifier_walkthrough.ipynb"
    lab.open_and_run(page, base, token, name)
    steppers = page.locator(f"{lab.PANEL} .bpfnb-stepper")
    try:
        lab.wait_idle(page)
        steppers.nth(2).wait_for(timeout=60_000)
    except Exception:
        page.screenshot(path=str(lab.ARTIFACTS / "01-steppers-missing.png"), full_page=True)
        raise
    _screenshots(page, "01")
    accepted, rejected, pasted = steppers.nth(0), steppers.nth(1), steppers.nth(2)
    assert len({lab.scope_of(s) for s in (accepted, rejected, pasted)}) == 3

    # two steppers of the page stay independent
    accepted.scroll_into_view_if_needed()
    assert "visit 0 of" in lab.state_of(accepted)
    rejected_before = lab.state_of(rejected)
    assert _fill_of(page, accepted, 0) == lab.CURRENT_FILL and _fill_of(page, rejected, 0) != lab.CURRENT_FILL
    accepted.get_by_role("button", name="next ▶").click()
    lab.wait_state(page, lab.scope_of(accepted), "visit 1 of", timeout=20_000)
    assert _fill_of(page, accepted, 1) == lab.CURRENT_FILL and _fill_of(page, accepted, 0) != lab.CURRENT_FILL
    assert _fill_of(page, rejected, 1) != lab.CURRENT_FILL and lab.state_of(rejected) == rejected_before
    page.screenshot(path=str(lab.ARTIFACTS / "01-after-next.png"))

    # typing an instruction number jumps there (and the keys do not swallow the digits)
    box = accepted.locator(".widget-inline-hbox", has_text="insn").locator("input")
    box.click()
    box.fill("")
    box.type("17")
    box.press("Enter")
    lab.wait_state(page, lab.scope_of(accepted), "insn 17\\b", timeout=20_000)
    assert box.input_value() == "17"
    assert _fill_of(page, accepted, 17) == lab.CURRENT_FILL

    # the rejected stepper was shown at its error: its CFG is scrolled to the error row
    rejected.scroll_into_view_if_needed()
    error_visible = page.evaluate(
        """(s) => {
            const box = document.querySelector('.' + s + ' .bpfnb-panes .cfg');
            const row = document.querySelector('#' + CSS.escape('a_' + s + 't25'));
            const b = box.getBoundingClientRect(), r = row.getBoundingClientRect();
            return [box.scrollTop, r.top >= b.top && r.bottom <= b.bottom];
        }""", lab.scope_of(rejected))
    assert error_visible[0] > 0 and error_visible[1], error_visible
    assert _fill_of(page, rejected, 25) == lab.CURRENT_FILL
    page.screenshot(path=str(lab.ARTIFACTS / "01-rejected-at-error.png"))

    # clicking a register operand lights its def-use chain and dims the rest
    operand = rejected.locator(".ln.cur .op[data-name='R0']").first
    operand.click()
    page.wait_for_function(
        "(s) => document.querySelectorAll('.' + s + ' .ln.dim').length > 0", arg=lab.scope_of(rejected),
        timeout=20_000)
    lit = rejected.locator(".ln.def").all_inner_texts()
    assert any("bpf_map_lookup_elem(" in t for t in lit), lit
    assert "R0" in rejected.locator(".widget-html", has_text="def(s)").inner_text()
    dimmed = page.evaluate(
        "(s) => getComputedStyle(document.querySelector('#' + CSS.escape('a_' + s + 't0') + ' text')).opacity",
        lab.scope_of(rejected))
    assert float(dimmed) < 1  # insn 0 (r6 = r1) is not in R0's chain
    page.screenshot(path=str(lab.ARTIFACTS / "01-chain.png"))

    # clicking a CFG row jumps to that instruction
    rejected.locator(f"#a_{lab.scope_of(rejected)}t19").click()
    lab.wait_state(page, lab.scope_of(rejected), "insn 19\\b", timeout=20_000)

    # the pasted kernel log steps, with the keyboard once the stepper has lab.focus
    pasted.scroll_into_view_if_needed()
    assert "(log)" in lab.state_of(pasted) and "insn 25" in lab.state_of(pasted)
    lab.focus(pasted)
    page.keyboard.press("Home")
    lab.wait_state(page, lab.scope_of(pasted), "visit 0 of", timeout=20_000)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    lab.wait_state(page, lab.scope_of(pasted), "visit 2 of", timeout=20_000)
    # painted in the browser from the visits sent ahead; the slider follows once Python heard
    page.wait_for_function("(s) => document.querySelector('.' + s + ' .widget-readout').textContent.trim() === '2'",
                           arg=lab.scope_of(pasted), timeout=20_000)
    assert "visit 0 of" in lab.state_of(accepted) or "insn 17" in lab.state_of(accepted)  # not moved by those keys
    page.screenshot(path=str(lab.ARTIFACTS / "01-pasted-log.png"))
    page.close()


@pytest.mark.browser
@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS[1:], ids=lambda p: p.stem)
def test_notebook_renders_at_1280px(session, path):
    browser, base, token = session
    page = lab.new_page(browser)
    lab.open_and_run(page, base, token, path.name)
    try:
        lab.wait_idle(page)
    except Exception:
        page.screenshot(path=str(lab.ARTIFACTS / f"{path.stem[:2]}-not-idle.png"))
        raise
    errors = page.locator(f"{lab.PANEL} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert not page.locator(f"{lab.PANEL} .jp-OutputArea-output .ansi-red-fg").count(), errors.all_inner_texts()
    _screenshots(page, path.stem[:2])
    # nothing is wider than the notebook: wide content scrolls inside its own cell
    overflow = page.evaluate(
        """(panel) => [...document.querySelectorAll(panel + ' .jp-OutputArea-output')]
                  .filter(o => o.scrollWidth > o.clientWidth + 2).map(o => o.innerText.slice(0, 80))""", lab.PANEL)
    assert overflow == []
    page.close()
