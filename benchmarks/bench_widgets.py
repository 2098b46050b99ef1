"""Interactivity of the notebook widgets on a 1,000-instruction program, and of the
stepper on a 990,003-step walk in a real browser.

Figures: the CFG's layout by graphviz ``dot`` (once per program), building a
``VerifierStepper`` (verification, the walk, the first render), and the
update per step (the register panel and the CFG's highlighting, no re-layout)
— against a reference measured in the same run: a plain ``dot`` run on the
same graph text (the floor for the layout) and 100 ms, the usual limit for a
response to feel immediate. How late an answer leaves the kernel when Python computes
after it in the same turn of the kernel's event loop, against the next turn (as the
stepper does).

In the browser (JupyterLab and headless Chromium, as tests/browser drives them): the
first paint of ``VerifierStepper(result)`` after the cell starts and, for every control
(next/back clicked, across a stream window's edge too, the ← key pressed and held, "next
visit of insn", the chain's buttons, the slider typed and dragged, the instruction box),
the time from the input until the panes show the new visit (moves the browser paints
from the visits it holds, as it times its inputs itself: Event Timing, until the frame
is presented; those Python answers, until the frame that painted them ended),
on tests/large_fixtures/million.bpf.o (990,003 visits) beside tests/fixtures/loops.bpf.o's
alu_loop_1000 (9,003) on the same page; measured with the lab as jupyter_server sets it
up (Nagle's algorithm on its kernel websocket) and with
bpfnb.widgets.server.NoDelayKernelConnection. Skipped, saying why, without Chromium or
Playwright.
"""

from __future__ import annotations

import pathlib
import re
import statistics
import subprocess
import time

from benchmarks.timing import best

INTERACTIVE_S = 0.100
ROOT = pathlib.Path(__file__).resolve().parents[1]
# the walks the browser steps through: (object, program), the small reference first
BROWSER_WALKS = [(ROOT / "tests/fixtures/loops.bpf.o", "alu_loop_1000"),
                 (ROOT / "tests/large_fixtures/million.bpf.o", "million_steps")]
CHAIN_WALK = (ROOT / "tests/fixtures/loops.bpf.o", "alu_loop_16000")  # 144,003 visits
CHAIN_REGISTERS = ("R0", "R10")
BROWSER_STEPS = 20
# a key held down ("key ← held"): a keyboard's auto-repeat at its fastest usual rate (30 a second)
KEY_REPEATS, KEY_REPEAT_S = 60, 1 / 30
BROWSER_TIMEOUT_MS = 1_200_000  # the 990k-step verification in the notebook's kernel
TARGET_PAINT_S, TARGET_STEP_MS = 5, 50
CONTROL_USES = 6  # each jump button clicked this many times in a row
SLIDER_AT = (0.1, 0.37, 0.5, 0.73, 0.9, 0.25)  # the visits typed into the slider's readout, of the walk
SLIDER_DRAGS = (0.3, 0.6, 0.2)  # where the slider's handle is dragged to, of the track
# instructions typed into the instruction box, one after the other: this many after the current one's
INSN_AHEAD = (2, 5, 3, 6, 2, 5)


def main() -> None:
    from benchmarks.bench_execution import straight_line_program
    from bpfnb.verifier import verify
    from bpfnb.viz.cfg import CfgView, cfg_graph
    from bpfnb.widgets import VerifierStepper

    prog = straight_line_program(1000)
    result = verify(prog, log_level=0)
    assert result.ok, result.error
    source = cfg_graph(prog).source
    dot_s = best(lambda: subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True, check=True))
    cfg_s = best(lambda: CfgView(prog))
    build_s = best(lambda: VerifierStepper(prog), 2)
    stepper = VerifierStepper(prog)
    steps = min(len(stepper.walk) - 1, 300)
    start = time.perf_counter()
    for k in range(1, steps + 1):
        stepper.show(k)
    step_s = (time.perf_counter() - start) / steps
    jump_s = best(lambda: stepper.jump_to_insn(len(prog.insns) - 1), 5)
    print(f"program          : {len(prog.insns)} insns, {result.processed} processed, {len(stepper.walk)} visits, "
          f"{len(stepper.cfg.blocks)} basic blocks")
    print(f"CFG layout       : {cfg_s * 1e3:8.1f} ms (plain `dot -Tsvg` on the same graph: {dot_s * 1e3:.1f} ms, "
          f"ratio {cfg_s / dot_s:.2f}x)")
    print(f"stepper built    : {build_s * 1e3:8.1f} ms (verification, walk, CFG layout, first render)")
    print(f"one step         : {step_s * 1e3:8.1f} ms ({step_s / INTERACTIVE_S:.2f}x the 100 ms budget)")
    print(f"jump to insn     : {jump_s * 1e3:8.1f} ms")
    chains()
    kernel_messages()
    for nodelay in (False, True):
        print(f"browser, Nagle's algorithm {'off' if nodelay else 'on (as jupyter_server leaves it)'} on the "
              "kernel's websocket:")
        browser(nodelay)


# kernel_messages: the Python work that follows an answer, and how often it is measured
FOLLOWING_WORK_S = 0.05
KERNEL_MESSAGES = 30
# a comm whose every message is answered at once, then followed by Python computing (as
# VerifierStepper answers a click with the visit's panes, then makes the stream's lines
# and the visits ahead) in the same turn of the kernel's event loop or in the next
KERNEL_COMM_TARGET = "bpfnb_bench_answer"
KERNEL_COMM_CODE = f"""
import asyncio, time
import comm

def opened(channel, _):
    def answer(msg):
        data = msg["content"]["data"]

        def work():
            end = time.perf_counter() + {FOLLOWING_WORK_S}
            while time.perf_counter() < end:
                pass
            channel.send({{"done": data["k"]}})

        channel.send({{"answer": data["k"]}})
        asyncio.get_running_loop().call_soon(work) if data["next_turn"] else work()

    channel.on_msg(answer)

comm.get_comm_manager().register_target({KERNEL_COMM_TARGET!r}, opened)
"""


def kernel_messages() -> None:
    """How late a comm message's answer leaves the kernel (ipykernel; as jupyter_client
    receives it, against the time the kernel made it) when Python computes after it: in
    the same turn of the kernel's event loop, or the next (as the stepper does),
    alternated in one kernel. ipykernel sends from a thread of its own, which needs the
    GIL: Python computing holds it, and hands it over only every
    ``sys.getswitchinterval()``; between two turns the loop lets go of it."""
    import datetime
    import uuid

    import jupyter_client

    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="python3")
    late: dict[bool, list[float]] = {False: [], True: []}
    comm_id = uuid.uuid4().hex

    def send(msg_type: str, content: dict) -> None:
        kc.shell_channel.send(kc.session.msg(msg_type, content))

    def received() -> dict:  # the comm's next message
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] == comm_id:
                return msg

    try:
        reply = kc.execute_interactive(KERNEL_COMM_CODE, timeout=60, output_hook=lambda msg: None)
        assert reply["content"]["status"] == "ok", reply["content"]
        send("comm_open", {"comm_id": comm_id, "target_name": KERNEL_COMM_TARGET, "data": {}})
        for k in range(KERNEL_MESSAGES):
            for next_turn in (False, True):
                send("comm_msg", {"comm_id": comm_id, "data": {"k": k, "next_turn": next_turn}})
                msg = received()
                got = datetime.datetime.now(datetime.UTC)
                assert msg["content"]["data"] == {"answer": k}  # both ways: the same answer
                late[next_turn].append((got - msg["header"]["date"]).total_seconds() * 1e3)
                assert received()["content"]["data"] == {"done": k}  # the kernel at rest again
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    same, after = statistics.median(late[False]), statistics.median(late[True])
    print(f"kernel message   : an answer followed by {FOLLOWING_WORK_S * 1e3:.0f} ms of Python left the kernel "
          f"{same:.1f} ms late (median) when the work ran in the same turn of the event loop, {after:.1f} ms when "
          f"in the next (as the stepper does): ratio {same / after:.1f}x")


def chains() -> None:
    """A def-use chain selected (a register row clicked) in the middle of a long loop's
    walk: one the loop redefines every iteration (r0), one it never writes (r10: its
    origin goes back to the entry), with the chain's panes painted."""
    import bpfnb
    from bpfnb.widgets import VerifierStepper

    path, name = CHAIN_WALK
    stepper = VerifierStepper(bpfnb.verify(bpfnb.load(path).program(name), log_level=0, progress=False))
    middle = len(stepper.walk) // 2
    stepper.show(middle)
    for register in CHAIN_REGISTERS:
        select_s = best(lambda register=register: stepper.select(register, middle), 3)
        chain = stepper.chain
        print(f"chain {register:<3} {name}: {select_s * 1e3:8.1f} ms at visit {middle:,} of {len(stepper.walk):,} "
              f"({len(chain.defs)} defs, {len(chain.uses)} uses; {select_s / INTERACTIVE_S:.2f}x the 100 ms budget)")


def _browser_cells() -> list[str]:
    cells = ["import json, time\nimport bpfnb\nfrom bpfnb.widgets import VerifierStepper\nresults = []\n"]
    for path, name in BROWSER_WALKS:
        cells.append(f"start = time.perf_counter()\nresults.append(bpfnb.verify(bpfnb.load({str(path)!r})"
                     f".program({name!r}), log_level=0, progress=False))\n"
                     "print('VERIFIED ' + json.dumps({'processed': results[-1].processed, "
                     "'verify_s': time.perf_counter() - start}))")
    for k in range(len(BROWSER_WALKS)):
        cells.append(f"shown = time.time()\nstepper{k} = VerifierStepper(results[{k}])\n"
                     f"print('SHOWN ' + json.dumps({{'shown': shown}}))\nstepper{k}")
    return cells


def browser(nodelay: bool = True) -> None:
    """The stepper in JupyterLab under headless Chromium: first paint and the time of
    each control (``nodelay``: Nagle's algorithm off on the kernel's websocket, see
    bpfnb.widgets.server; else the server as jupyter_server sets it up)."""
    import tempfile

    from tests.browser import lab

    reason = lab.missing()
    if reason:
        print(f"browser          : not measured ({reason})")
        return
    with tempfile.TemporaryDirectory() as tmp, lab.lab_and_chromium(pathlib.Path(tmp), nodelay=nodelay) as (chromium, base, token):
        lab.notebook(pathlib.Path(tmp) / "walks.ipynb", _browser_cells())
        page = lab.new_page(chromium)
        lab.run_steppers(page, base, token, "walks.ipynb", len(BROWSER_WALKS), BROWSER_TIMEOUT_MS)
        verified, shown = lab.printed(page, "VERIFIED"), lab.printed(page, "SHOWN")
        steppers = page.locator(f"{lab.PANEL} .bpfnb-stepper")
        rows = []
        lab.TIMED_BY.clear()
        for k, ((_path, name), done, made) in enumerate(zip(BROWSER_WALKS, verified, shown, strict=True)):
            stepper = steppers.nth(k)
            stepper.scroll_into_view_if_needed()
            paint_s = lab.painted(page, k) - made["shown"]
            MOVES.clear()
            rows.append((name, done, paint_s, _controls(page, stepper, done["processed"]), dict(MOVES)))
    timed_by = lab.TIMED_BY
    print(f"browser          : moves painted from held visits timed by the browser's Event Timing (from the input "
          f"until its frame is presented): {timed_by['presented']}, under its 16 ms floor: {timed_by['under 16 ms']}; "
          f"answered by Python, from the input until the frame that painted them ended: {timed_by['painted']}")
    for name, done, paint_s, controls, moves in rows:
        print(f"browser {name:16}: {done['processed']:7} visits (verified in {done['verify_s']:.1f} s), first paint "
              f"{paint_s:.2f} s (goal < {TARGET_PAINT_S} s); from the input until painted (goal < {TARGET_STEP_MS} ms):")
        for control, times in controls.items():
            held = moves.get(control)
            under = sum(t < TARGET_STEP_MS for t in times)
            print(f"  {control:36}: {statistics.median(times):5.0f} ms median, {max(times):5.0f} ms slowest, "
                  f"{under} of {len(times)} under {TARGET_STEP_MS} ms"
                  + (f"; painted from held visits {held[0]}, asked of Python {held[1]}" if held else ""))
    (_, _, small_paint, small, _), (_, _, big_paint, big, _) = rows
    print(f"browser, the 990k-step walk against the 9k-step one on the same page: first paint "
          f"{big_paint / small_paint:.2f}x, a step {statistics.median(big['step']) / statistics.median(small['step']):.2f}x")


def _pick_chain(page, stepper) -> str:
    """Select the def-use chain of the first register of the current visit made from at
    least ``CONTROL_USES`` visits before (its row clicked): the chain buttons then move
    back along it and forward again."""
    import re

    for name in [n for n in stepper.locator(".bpfnb-panes .state tr[data-name]").evaluate_all(
            "(rows) => rows.map(r => r.dataset.name)")]:
        stepper.locator(f".bpfnb-panes .state tr[data-name={name}]").click()
        info = stepper.locator(".widget-html", has_text=f"{name} after visit")
        info.wait_for()
        defs = re.search(r"(\d+) def\(s\)", info.text_content())
        if defs and int(defs.group(1)) >= CONTROL_USES:
            return name
    raise AssertionError("no register of this visit has enough definitions for the chain buttons")


# per control (the last stepper measured): the moves the browser painted from the visits
# it held, and those it asked Python for (the slider and the instruction box go through
# the kernel by their own widgets: neither)
MOVES: dict[str, list[int]] = {}


def _controls(page, stepper, visits: int) -> dict[str, list[float]]:
    """Each control of one stepper used a few times: the milliseconds each use took."""
    from bpfnb.widgets.listing import STRIDE
    from tests.browser import lab

    scope = lab.scope_of(stepper)
    times: dict[str, list[float]] = {}
    visit = 0

    def timed(control: str, act) -> None:
        nonlocal visit
        before = lab.moves(page, scope)
        ms, visit = lab.time_change(page, scope, act)
        times.setdefault(control, []).append(ms)
        held, asked = (after - was for after, was in zip(lab.moves(page, scope), before, strict=True))
        MOVES.setdefault(control, [0, 0])
        MOVES[control][0] += held
        MOVES[control][1] += asked

    def click(label: str):
        return lambda: stepper.get_by_role("button", name=label, exact=True).click()

    def steps(act) -> list[float]:  # from a page at rest, then one after another, as fast as a person clicks
        return [lab.time_change(page, scope, act, at_rest=k == 0)[0] for k in range(BROWSER_STEPS)]

    # the first click into a stepper whose cell is not the active one: JupyterLab makes it
    # active (its own work on every cell it changes, before the click's handlers run); a
    # click on the state pane's header, which moves nothing
    entered = lab.time_input(page, lambda: lab.focus(stepper))
    forward = steps(lab.press_button(stepper, "next ▶"))
    for _ in range(CONTROL_USES):
        timed("next visit of insn", click("next visit of insn"))
    _pick_chain(page, stepper)
    for _ in range(CONTROL_USES):
        timed("◀ chain", click("◀ chain"))
    for _ in range(CONTROL_USES):
        timed("chain ▶", click("chain ▶"))
    readout = stepper.locator(".widget-readout").first

    def slide(to: int) -> None:
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(str(to))
        page.keyboard.press("Enter")

    lab.wait_readout(page, scope, visit)  # typed once the slider followed the moves made in the browser
    for fraction in SLIDER_AT:
        timed("slider (typed)", lambda to=int(fraction * (visits - 1)): slide(to))
    # steps across the stream's window edge in the middle of the walk (the browser lists the
    # lines that came into it): from half the steps before it
    edge = (visits // 2 // STRIDE) * STRIDE
    lab.wait_readout(page, scope, visit)
    slide(edge - BROWSER_STEPS // 2)
    lab.wait_state(page, scope, f"visit {edge - BROWSER_STEPS // 2} of")
    across = steps(lab.press_button(stepper, "next ▶"))
    handle = stepper.locator(".noUi-handle").first
    for fraction in SLIDER_DRAGS:
        def drag(fraction=fraction):
            box = handle.bounding_box()
            track = stepper.locator(".widget-slider .noUi-target, .widget-hslider .noUi-target").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            for k in range(1, 11):
                page.mouse.move(track["x"] + track["width"] * fraction * k / 10, box["y"] + box["height"] / 2)
            page.mouse.up()
        timed("slider (dragged)", drag)
    box = stepper.locator(".widget-inline-hbox", has_text="insn").locator("input")
    insns = page.evaluate("(s) => document.querySelectorAll('.' + s + ' .cfg g[id^=a_' + s + 't]').length", scope)
    for ahead in INSN_AHEAD:
        def typed(ahead=ahead):  # another instruction than the current one's (the box stays on it)
            insn = (int(re.search(r"insn (\d+)", lab.state_of(stepper))[1]) + ahead) % insns
            box.click()
            box.fill("")
            box.type(str(insn))
            box.press("Enter")
        timed("instruction box", typed)
    lab.focus(stepper)  # for the End key
    page.keyboard.press("End")
    lab.wait_state(page, scope, f"visit {visits - 1} of", timeout=60_000)
    back = steps(lab.press_button(stepper, "◀ back"))
    keys = steps(lambda: page.keyboard.press("ArrowLeft"))
    held, asked = lab.hold_key(page, scope, "ArrowLeft", KEY_REPEATS, KEY_REPEAT_S)
    MOVES["key ← held"] = [KEY_REPEATS - asked, asked]
    return {"first click into it (its cell made active)": [entered],
            "step": forward + across + back + keys + held, "next ▶": forward,
            "next ▶ across a stream window's edge": across, "◀ back": back, "key ←": keys,
            "key ← held": held, **times}


if __name__ == "__main__":
    main()
