"""A JupyterLab server on a free loopback port and headless Chromium driving it."""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"  # screenshots and figures for a person (ignored by git)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTH, HEIGHT = 1280, 1300  # the page's viewport: a laptop's width, the notebook's cells tall
CURRENT_FILL = "rgb(255, 248, 197)"  # bpfnb.viz.cfg.CURRENT, as the browser computes it
# the notebook on show (JupyterLab reopens the tabs of the last session, hidden)
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
WORKSPACES = "workspaces"  # under the lab's root
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not os.path.exists(CHROMIUM):
        return "no Chromium (Debian package chromium; scripts/system-deps.sh installs it as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -e .[dev])"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_lab(root: Path, *, timeout: float = 60.0, nodelay: bool = True):
    """Yields the base URL (with token) of a JupyterLab serving ``root`` (with Nagle's
    algorithm off on the kernel websocket unless ``nodelay`` is false: see
    bpfnb.widgets.server)."""
    port, token = free_port(), secrets.token_hex(16)
    connection = []
    if nodelay:
        from bpfnb.widgets.server import CONNECTION_CLASS

        connection.append(f"--ServerApp.kernel_websocket_connection_class={CONNECTION_CLASS}")
    log = open(root / "jupyter-lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--allow-root",
         # the tabs a workspace reopens belong to this server only (never ~/.jupyter's)
         f"--LabApp.workspaces_dir={root / WORKSPACES}",
         "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate", *connection],
        stdout=log, stderr=subprocess.STDOUT, cwd=root,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start; see {root / 'jupyter-lab.log'}") from None
                time.sleep(0.3)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextlib.contextmanager
def lab_and_chromium(root: Path, *, nodelay: bool = True):
    """Yields ``(browser, base, token)``: headless Chromium beside a JupyterLab serving
    ``root`` (``nodelay``: see ``jupyter_lab``)."""
    from playwright.sync_api import sync_playwright

    with jupyter_lab(root, nodelay=nodelay) as (base, token), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser, base, token
        finally:
            browser.close()


def serve(tmp_path_factory, name: str, write):
    """A module fixture's body: skips saying why the browser cannot run here, else
    ``write(root)`` puts the notebooks in a fresh ``root`` and it yields ``(browser,
    base, token)`` of a lab serving it (``yield from serve(...)``)."""
    import pytest

    reason = missing()
    if reason:
        pytest.skip(reason)
    ARTIFACTS.mkdir(exist_ok=True)
    root = tmp_path_factory.mktemp(name)
    write(root)
    with lab_and_chromium(root) as session:
        yield session


def new_page(browser):
    return browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})


def dismiss_dialogs(page) -> list[str]:
    """Close any modal dialog the lab put up meanwhile (on a loaded machine: a kernel
    or file notice) with its reject button or Escape; returns their texts."""
    texts = []
    for _ in range(3):
        dialog = page.locator(".jp-Dialog")
        if not dialog.count():
            break
        texts.append(dialog.first.inner_text())
        reject = dialog.first.locator(".jp-Dialog-button.jp-mod-reject")
        if reject.count():
            reject.first.click()
        else:
            page.keyboard.press("Escape")
    return texts


def open_and_run(page, base, token, name):
    """Open notebook ``name`` in the lab, alone in a workspace of its own (a shared one
    reopens the notebooks opened before, and one of them can take the focus back from
    ``name`` while it loads), and Run All Cells."""
    workspace = "".join(c if c.isalnum() else "-" for c in Path(name).stem)
    page.goto(f"{base}/lab/workspaces/{workspace}/tree/{name}?reset&token={token}")
    page.wait_for_selector(f"{PANEL} .jp-Cell", timeout=60_000)
    # a fresh environment starts its kernel slowly: run only once it is idle
    page.wait_for_function("() => document.body.innerText.includes('| Idle')", timeout=120_000)
    dialogs = []
    for _attempt in range(3):  # a menu opened while the lab still lays out can miss the click
        dialogs += dismiss_dialogs(page)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        news = page.get_by_role("button", name="No", exact=True)  # "notified about Jupyter news?"
        if news.count():
            news.first.click()
        try:
            page.wait_for_function(
                """(panel) => [...document.querySelectorAll(panel + ' .jp-InputPrompt')]
                              .some(p => /\\[(\\*|\\d+)\\]/.test(p.innerText))""", arg=PANEL, timeout=15_000)
            return
        except Exception:
            page.keyboard.press("Escape")
    raise AssertionError(f"{name}: Run All Cells did not start (dialogs closed: {dialogs})")


def wait_idle(page, timeout: float = 300_000):
    """Every code cell has run: the last one has its execution count, none is
    queued (``[*]``) and the kernel is idle (cells off screen may not be in the
    DOM: JupyterLab renders a window of the notebook)."""
    page.wait_for_function(
        """(selector) => {
            const panel = document.querySelector(selector);
            if (!panel) return false;
            const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            const last = prompts[prompts.length - 1];
            return last && /\\[\\d+\\]/.test(last.innerText)
                && !prompts.some(p => p.innerText.includes('[*]'))
                && document.body.innerText.includes('| Idle');
        }""", arg=PANEL, timeout=timeout)


def notebook(path: Path, sources: list[str]) -> None:
    """Write a notebook of code cells (Python 3 kernel) to ``path``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, path)


def printed(page, tag: str) -> list[dict]:
    """The JSON objects the notebook printed on lines ``TAG {...}``, in order."""
    import json

    chunks = page.locator(f"{PANEL} .jp-OutputArea-output").all_text_contents()
    return [json.loads(line[len(tag) + 1:]) for chunk in chunks for line in chunk.splitlines()
            if line.startswith(tag + " ")]


def scope_of(stepper) -> str:
    """The scope class of a ``.bpfnb-stepper`` element (its CSS and ids are under it)."""
    return next(c for c in stepper.get_attribute("class").split() if c.startswith("bpfnbs"))


def state_of(stepper) -> str:
    """The text of a stepper's state pane (textContent: an output off screen is not
    rendered, and has no innerText)."""
    return stepper.locator(".bpfnb-panes .state").text_content()


def focus(stepper) -> None:
    """Give a stepper the focus (its keys act) by a click on its state pane's header
    (which selects nothing)."""
    stepper.locator(".bpfnb-panes .state .step > div").first.click()


def wait_state(page, scope: str, pattern: str, timeout: float = 30_000) -> None:
    """Wait until the state pane of the stepper ``scope`` matches the regex ``pattern``."""
    page.wait_for_function(
        "([s, p]) => new RegExp(p).test(document.querySelector('.' + s + ' .bpfnb-panes .state').textContent)",
        arg=[scope, pattern], timeout=timeout)


def wait_readout(page, scope: str, visit: int, timeout: float = 30_000) -> None:
    """Wait until the visit slider of the stepper ``scope`` says ``visit`` (it follows
    the steps the browser made by itself once Python heard of them)."""
    page.wait_for_function("([s, n]) => document.querySelector('.' + s + ' .widget-readout').textContent"
                           ".replace(/,/g, '').trim() === String(n)", arg=[scope, visit], timeout=timeout)


def cfg_fill(page, scope: str, insn: int) -> str:
    """The computed fill of instruction ``insn``'s row in the stepper ``scope``'s CFG."""
    return page.evaluate(
        "([id]) => { const e = document.querySelector('#' + CSS.escape(id) + ' polygon');"
        " return e ? getComputedStyle(e).fill : 'none'; }", [f"a_{scope}t{insn}"])


def run_steppers(page, base, token, name: str, count: int, timeout: float) -> None:
    """Run notebook ``name`` and wait until it is idle and its first ``count`` steppers
    have each shown a visit (``painted`` says when)."""
    open_and_run(page, base, token, name)
    watch_paints(page)
    wait_idle(page, timeout=timeout)
    page.locator(f"{PANEL} .bpfnb-stepper").nth(count - 1).wait_for(timeout=60_000)
    page.wait_for_function("(i) => i in window.__bpfnbPainted", arg=count - 1, timeout=60_000)


# Records when each stepper of the page first shows a visit (epoch ms, by the
# steppers' order on the page): a notebook prints when it began making each one.
WATCH_PAINTS = """() => {
  const painted = window.__bpfnbPainted = {};
  const tick = setInterval(() => {
    document.querySelectorAll('.bpfnb-stepper').forEach((el, i) => {
      const state = el.querySelector('.bpfnb-panes .state');
      if (!(i in painted) && state && state.textContent.includes('visit 0 of')) painted[i] = Date.now();
    });
  }, 5);
}"""


def watch_paints(page) -> None:
    page.evaluate(WATCH_PAINTS)


def painted(page, index: int) -> float | None:
    """When stepper ``index`` first showed a visit (epoch seconds), or None."""
    ms = page.evaluate("(i) => window.__bpfnbPainted[i] ?? null", index)
    return None if ms is None else ms / 1000


# Steps by the stepper's button (synthetic clicks, made in the page): from the click until
# the state pane says the new visit and the frame that painted it has ended. The first
# click waits until the page is at rest (its main thread idle: a person reads the pane
# before clicking), the others follow each other at once. (An input's latency as a
# person meets it is ``time_change``'s.)
TIME_CLICKS = """async ([scope, label, count, delta, timeout]) => {
  const root = document.querySelector('.' + scope);
  const state = root.querySelector('.bpfnb-panes .state');
  const button = [...root.querySelectorAll('button')].find(b => b.textContent.includes(label));
  const visit = () => Number(/visit (\\d+) of/.exec(state.textContent)[1]);
  const times = [];
  await new Promise((resolve) => requestIdleCallback(resolve, { timeout }));  // from a page at rest
  for (let k = 0; k < count; k++) {
    const want = `visit ${visit() + delta} of`;
    const start = performance.now();
    await new Promise((resolve, reject) => {
      const late = setTimeout(() => {  // never forever: say what the pane shows instead
        seen.disconnect();
        reject(new Error(`no "${want}" after ${timeout} ms: ${state.textContent.slice(0, 80)}`));
      }, timeout);
      const seen = new MutationObserver(() => {
        if (state.textContent.includes(want)) { seen.disconnect(); clearTimeout(late); resolve(); }
      });
      seen.observe(state, { childList: true, subtree: true, characterData: true });
      button.click();
    });
    await new Promise((resolve) => setTimeout(resolve, 0));  // the frame it was painted in ends first
    times.push(performance.now() - start);
  }
  return times;
}"""


def time_clicks(page, scope: str, label: str, count: int, delta: int = 1, timeout: float = 30_000) -> list[float]:
    """Click the stepper's button ``label`` ``count`` times, each once the last one's
    visit (the current one + ``delta``) is shown: the milliseconds each took (an error
    if one is not shown within ``timeout`` ms)."""
    return page.evaluate(TIME_CLICKS, [scope, label, count, delta, timeout])


# Arms a timer on the stepper ``scope``: from the last click, release of the pointer or
# Enter on the page (a button, the slider's handle, the instruction box; the time the
# event carries, as the browser's Event Timing counts an interaction) until the state
# pane shows another visit than now and the browser has painted a frame after it.
ARM_CHANGE = """([scope, timeout]) => {
  const state = document.querySelector('.' + scope + ' .bpfnb-panes .state');
  const visit = () => (/visit (\\d+) of/.exec(state.textContent) || [])[1];
  const before = visit();
  let start = null;
  // when the input happened (the event's own time: a stepper's button paints in its own
  // click listener, which runs before this one)
  const moves = /^(Enter|Arrow\\w+|Home|End)$/;  // keys that move (not those typed into a box)
  const mark = (event) => { if (event.type !== 'keydown' || moves.test(event.key)) start = event.timeStamp; };
  const kinds = ['click', 'pointerup', 'keydown'];
  kinds.forEach((k) => window.addEventListener(k, mark, true));
  const done = () => kinds.forEach((k) => window.removeEventListener(k, mark, true));
  window.__bpfnbChange = new Promise((resolve, reject) => {
    const late = setTimeout(() => { seen.disconnect(); done(); reject(new Error(
      `still visit ${before} after ${timeout} ms`)); }, timeout);
    const seen = new MutationObserver(() => {
      if (visit() === before) return;
      seen.disconnect(); clearTimeout(late);
      // the panes paint a visit at a frame's start (requestAnimationFrame): that frame's
      // own work, its style, layout and paint, runs before the next task
      setTimeout(() => { done(); resolve([performance.now() - start, Number(visit())]); }, 0);
    });
    seen.observe(state, { childList: true, subtree: true, characterData: true });
  });
}"""


# Resolves once the page's main thread is idle (or after ``timeout`` ms).
IDLE = "(timeout) => new Promise((resolve) => requestIdleCallback(resolve, { timeout }))"

# The browser's own measure of an input's latency (Event Timing, what INP is made of):
# from the input's timestamp until the frame painted after its handlers is presented.
# ``window.__bpfnbInput(since, timeout)`` resolves with the duration of the first click or
# keydown after ``since`` (performance.now() ms), null if none came within ``timeout`` ms
# (the browser reports only inputs of 16 ms or more).
WATCH_INPUTS = """() => {
  if (window.__bpfnbInput) return;
  const inputs = [], waiting = new Set();
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.name === 'click' || e.name === 'keydown') inputs.push(e);
    for (const check of [...waiting]) check();
  }).observe({ type: 'event', durationThreshold: 16 });
  // the durations of the keydowns after ``since`` reported so far
  window.__bpfnbKeydowns = (since) => inputs.filter((e) => e.name === 'keydown' && e.startTime >= since).map((e) => e.duration);
  window.__bpfnbInput = (since, timeout) => new Promise((resolve) => {
    const check = () => {
      const found = inputs.find((e) => e.startTime >= since);
      if (found) { waiting.delete(check); clearTimeout(late); resolve(found.duration); }
    };
    const late = setTimeout(() => { waiting.delete(check); resolve(null); }, timeout);
    waiting.add(check);
    check();
  });
}"""
EVENT_MIN_MS = 16  # the shortest input Event Timing reports
# how ``time_change`` timed each change: "presented" (Event Timing), "under 16 ms" (held, too
# quick for it), "painted" (answered by Python: until the frame that painted it ended)
TIMED_BY: collections.Counter = collections.Counter()
INPUT_TIMEOUT_MS = 2_000  # an input painted from held visits is reported within a few frames


def moves(page, scope: str) -> tuple[int, int]:
    """The stepper ``scope``'s counts of moves painted from the visits it holds, and of
    those it asked Python for (``data-held``/``data-asked``)."""
    return tuple(page.evaluate("(s) => { const r = document.querySelector('.' + s + ' .bpfnb-panes');"
                               " return [Number(r.dataset.held), Number(r.dataset.asked)]; }", scope))


def time_change(page, scope: str, act, timeout: float = 30_000, *, at_rest: bool = True) -> tuple[float, int]:
    """Run ``act()`` (real input by Playwright: clicks, keys) and wait until the stepper
    ``scope`` shows another visit: how long it took in milliseconds, and the visit shown.
    ``at_rest``: first wait until the page's main thread is idle (a person reads the pane
    before the next control); else go at once (steps one after another).

    A move the browser painted from the visits it holds is timed as the browser times
    its input (Event Timing: until the frame is presented); one Python answered (the
    slider, the instruction box, a visit not held), from the last click, release of the
    pointer or Enter until the frame that painted it ended."""
    if at_rest:
        page.evaluate(IDLE, timeout)
    page.evaluate(WATCH_INPUTS)
    page.evaluate(ARM_CHANGE, [scope, timeout])
    (held, _), since = moves(page, scope), page.evaluate("() => performance.now()")
    act()
    ms, visit = page.evaluate("() => window.__bpfnbChange")
    if moves(page, scope)[0] > held:
        presented = page.evaluate("([since, timeout]) => window.__bpfnbInput(since, timeout)", [since, INPUT_TIMEOUT_MS])
        ms, how = (presented, "presented") if presented is not None else (min(ms, EVENT_MIN_MS), "under 16 ms")
    else:
        how = "painted"
    TIMED_BY[how] += 1
    return ms, visit


def time_input(page, act, *, at_rest: bool = True) -> float:
    """Run ``act()`` (a click or key by Playwright) and return its latency as the browser
    times it (Event Timing: from the input until the frame after its handlers is
    presented; under its 16 ms floor counted as 16 ms), whatever it changed.
    ``at_rest``: first wait until the page's main thread is idle."""
    if at_rest:
        page.evaluate(IDLE, INPUT_TIMEOUT_MS)
    page.evaluate(WATCH_INPUTS)
    since = page.evaluate("() => performance.now()")
    act()
    presented = page.evaluate("([since, timeout]) => window.__bpfnbInput(since, timeout)", [since, INPUT_TIMEOUT_MS])
    TIMED_BY["presented" if presented is not None else "under 16 ms"] += 1
    return presented if presented is not None else EVENT_MIN_MS


def hold_key(page, scope: str, key: str, count: int, every_s: float) -> tuple[list[float], int]:
    """Hold ``key`` down in the stepper ``scope`` (focused) for ``count`` repeats, one every
    ``every_s`` seconds (a keyboard's auto-repeat: each a keydown, as the system sends
    them, whether or not the page kept up), then let go: each repeat's latency as the
    browser times it (Event Timing; those under its 16 ms floor counted as 16 ms), once
    the last one was presented, and how many of the moves the stepper asked of Python (a
    visit it did not hold yet: that repeat's time is its own frame's, the visit comes later)."""
    page.evaluate(WATCH_INPUTS)
    _, asked = moves(page, scope)
    since = page.evaluate("() => performance.now()")
    began = time.perf_counter()
    for k in range(count):
        if k == count - 1:
            last = page.evaluate("() => performance.now()")
        # the keyboard's pace (not a wait for the page): the k-th repeat at k * every_s
        time.sleep(max(0.0, began + k * every_s - time.perf_counter()))
        page.keyboard.down(key)  # a held key: Playwright sends each again as a repeat
    page.keyboard.up(key)
    page.evaluate("([since, timeout]) => window.__bpfnbInput(since, timeout)", [last, INPUT_TIMEOUT_MS])
    presented = page.evaluate("(since) => window.__bpfnbKeydowns(since)", since)
    TIMED_BY["presented"] += len(presented)
    TIMED_BY["under 16 ms"] += count - len(presented)
    asked = moves(page, scope)[1] - asked
    return presented + [EVENT_MIN_MS] * (count - len(presented)), asked


def press_button(stepper, label: str):
    """An act for ``time_change``: a real click on the stepper's button ``label``, at its
    middle (where it is now: the buttons do not move while stepping)."""
    box = stepper.get_by_role("button", name=label, exact=True).bounding_box()
    return lambda: stepper.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
