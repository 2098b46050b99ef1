"""Notebook 02 in a real JupyterLab under headless Chromium: run it, click the
stepper's "next", and see the register table and the CFG change."""

import pathlib
import shutil

import pytest

from .lab import CHROMIUM, CHROMIUM_ARGS, jupyter_lab, missing

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.mark.browser
@pytest.mark.kernel
@pytest.mark.slow
def test_stepper_steps_in_jupyterlab(tmp_path):
    reason = missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(ROOT / "notebooks" / "02_btf_type_tracking.ipynb", tmp_path / "nb.ipynb")
    with jupyter_lab(tmp_path) as (base, token), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            page.goto(f"{base}/lab/tree/nb.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            # a fresh environment starts its kernel slowly: run only once it is idle
            page.wait_for_function("() => document.body.innerText.includes('| Idle')", timeout=120_000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_text("Run All Cells", exact=True).click()
            stepper = page.locator(".bpfnb-stepper").first
            try:
                stepper.wait_for(timeout=180_000)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "stepper-missing.png"), full_page=True)
                raise
            stepper.scroll_into_view_if_needed()
            info = stepper.locator(".bpfnb-step").first
            graph_before = stepper.locator("svg").first.inner_html()
            table_before = info.inner_text()
            assert "visit 0 of" in table_before
            page.screenshot(path=str(ARTIFACTS / "stepper-before.png"))
            stepper.get_by_role("button", name="next ▶").click()
            page.wait_for_function(
                "() => document.querySelector('.bpfnb-stepper .bpfnb-step').innerText.includes('visit 1 of')",
                timeout=20_000)
            table_after = info.inner_text()
            graph_after = stepper.locator("svg").first.inner_html()
            page.screenshot(path=str(ARTIFACTS / "stepper-after.png"))
        finally:
            browser.close()
    assert "trusted_ptr_sk_buff()" in table_after  # r1 = *(u64 *)(r1 +0): the typed argument
    assert table_after != table_before
    current = "#a_i1 polygon,#a_t1 polygon{fill:#fff8c5}"  # the highlight of the current insn
    assert current in graph_after and current not in graph_before
