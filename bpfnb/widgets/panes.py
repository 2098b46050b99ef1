"""The stepper's panes in the browser: state, instruction stream, CFG.

A small anywidget: Python renders the HTML (so a notebook saved as HTML, and
the tests, see the same), the browser side only paints it, keeps the current
line and CFG row in view, and reports clicks and keys back. Every class the
HTML uses is under the stepper's own scope class, every CFG id under its own
prefix: two steppers on a page never touch each other.

Stepping does not wait for the kernel: Python sends the visits the browser may
need next ahead (``ahead`` messages: each visit's state pane, instruction, CFG
rules and the step "next visit of insn" leads to), those around the current
one, the jumps' targets (the next visits of the current instruction, the
selected chain's visits each way, whose steps the browser holds, and the
error) and the walk's ends. The stepper's buttons next/back/first, "next visit
of insn", "to error", "chain ▶"/"◀ chain" and the keys → ← ↑ ↓ Home End v e n p
paint a visit from there at once, then tell Python (``{"kind": "shown"}``: at
once, then at most every ``SHOWN_MS`` while the steps go on), which moves the
slider and the instruction box and sends the visits that came into reach, a few
per turn of its event loop. The CFG's current instruction is marked here with
classes (``cfg_blocks`` gives each instruction's block), the CFG's other rules
are set only when they change. A move to a visit not (yet) there, a key or
click whose visit only Python knows, and a number typed into the slider or the
instruction box that the browser does not hold, are asked of Python with a
number it sends back (``answered``) once it painted the visit; until then every
move is asked of Python, in order (none lost, none painted over by an answer).
Python leaves the slider's readout and the instruction box as typed while focus
is in them (``{"kind": "typing", "control", "on"}`` on focus in and out). A round trip through
the kernel costs ~60 ms in JupyterLab as jupyter_server sets it up (Nagle's
algorithm on its websocket: see ``bpfnb.widgets.server``), ~20 ms without it;
painting a visit held here takes a frame: what moves change is painted at the
start of the next frame, once for all the moves made since. The stream's window,
once a view is ready, comes as ``lines`` messages: when it moves along, only the
lines that came in at its ends.

Keys act only while focus is inside the stepper and never while it is in a
text field (the instruction box stays typeable).
"""

from __future__ import annotations

import anywidget
import traitlets

# Python hears of the visits the browser painted from those it holds at most this often
# while the steps go on (each message costs the kernel a busy/idle round, the page the
# updates of the kernel's status, and brings visits ahead back)
SHOWN_MS = 100
# the current line of the stream and row of the CFG are left where they are while they
# stay at least this far (of the pane's height) from its top and bottom: steps one after
# another scroll a pane once a page, not at each step (a scroll repaints all the pane
# shows: scrolled at each step, a key held down had 93.9% of its repeats painted within
# 50 ms, once a page 97.2%; 360 repeats each way, alternated, on the 990k walk)
KEEP_MARGIN = 0.2
# the classes of the instruction box and the slider: Enter there paints the visit typed
# (the slider's), or the next visit of the instruction typed when the visits held run
# unbroken to it (the box's), when held; Python, which hears the control too, finds itself there
GOTO_CLASS, VISIT_CLASS = "bpfnb-goto", "bpfnb-visit"

# the keys the stepper answers (see VerifierStepper.KEYS)
ESM = (f"const SHOWN_MS = {SHOWN_MS};\nconst KEEP_MARGIN = {KEEP_MARGIN};\nconst GOTO_CLASS = {GOTO_CLASS!r};\n"
       f"const VISIT_CLASS = {VISIT_CLASS!r};\n"
       + r"""
const BUTTONS_OFF = ["bpfnb-back", "bpfnb-next", "bpfnb-again"];  // the buttons of ``buttons_off``, in order
const KEYS = new Set(["ArrowRight", "ArrowLeft", "ArrowDown", "ArrowUp", "Home", "End",
                      "e", "v", "b", "n", "p", "Escape"]);
// the stepper's buttons (by their class) do what these keys do
const BUTTON_KEYS = {
  "bpfnb-next": "ArrowRight", "bpfnb-back": "ArrowLeft", "bpfnb-first": "Home", "bpfnb-again": "v",
  "bpfnb-error": "e", "bpfnb-chain-next": "n", "bpfnb-chain-back": "p",
};
// what the keys do to the current visit, when the browser holds the visit they lead
// to: (current, at) => visit, where ``at`` has the walk's last visit, the error's, the
// current visit's next visit of its instruction and the selected chain's visits
// (undefined: Python decides)
const MOVES = {
  ArrowRight: (k) => k + 1, ArrowDown: (k) => k + 1, ArrowLeft: (k) => k - 1, ArrowUp: (k) => k - 1,
  Home: () => 0, End: (k, at) => at.last, v: (k, at) => at.again, e: (k, at) => at.error,
  n: (k, at) => along(at.chain, k, +1), p: (k, at) => along(at.chain, k, -1),
};

function along(steps, k, direction) {
  // the chain's next (previous) visit after (before) ``k``: steps are sorted
  let lo = 0, hi = steps.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (direction > 0 ? steps[mid] <= k : steps[mid] < k) lo = mid + 1; else hi = mid;
  }
  return direction > 0 ? steps[lo] : steps[lo - 1];
}

function keepInView(box, target) {
  // scroll ``box`` (only it, never the page) so that ``target`` is in view with some room
  // on both sides: a target that left that room for the next page moves to the other
  // side of it (the steps go on that way), one farther away to the middle (a jump)
  if (!box || !target) return;
  const b = box.getBoundingClientRect(), t = target.getBoundingClientRect();
  if (!b.height) return;  // not laid out (yet): the resize observer calls again
  const height = box.clientHeight;
  const room = Math.max(0, Math.min(KEEP_MARGIN * height, (height - t.height) / 2));
  const top = t.top - b.top - box.clientTop, bottom = top + t.height;  // in the box's view
  const below = bottom - (height - room), above = room - top;
  if (below > 0 && below <= height) box.scrollTop += top - room;
  else if (above > 0 && above <= height) box.scrollTop += bottom - (height - room);
  else if (below > 0 || above > 0) box.scrollTop += top - (height - t.height) / 2;
  // rows are wide: bring as much of the row in view as fits, its start first
  if (t.left < b.left) box.scrollLeft += t.left - b.left - 8;
  else if (t.right > b.right) box.scrollLeft += Math.min(t.right - b.right + 8, t.left - b.left - 8);
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "bpfnb-panes " + model.get("scope");
  root.tabIndex = 0;
  // the moves painted from the visits held here, and those Python was asked for (what a
  // person can read in the page, and the tests check)
  root.dataset.held = 0;
  root.dataset.asked = 0;
  root.dataset.moved = 0;  // the stream's windows moved along (their new lines listed alone)
  root.dataset.said = 0;  // the visits painted here that Python was told of (``shown`` messages)
  root.style.cssText = "display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:10px;" +
                       "outline:none;width:100%;box-sizing:border-box";
  const state = document.createElement("div");
  state.className = "state";
  // containment: what changes inside a pane is laid out inside it, never the page again
  state.style.cssText = "overflow:auto;max-height:720px;min-width:0;contain:content";
  const right = document.createElement("div");
  right.style.cssText = "display:flex;flex-direction:column;gap:6px;min-width:0";
  const listing = document.createElement("div");
  listing.className = "listing";
  listing.style.cssText = "overflow:auto;height:230px;border:1px solid #d0d7de;min-width:0;contain:strict";
  const legend = document.createElement("div");
  const cfg = document.createElement("div");
  cfg.className = "cfg";
  cfg.style.cssText = "overflow:auto;height:440px;border:1px solid #d0d7de;min-width:0;contain:strict";
  const css = document.createElement("style");
  const style = document.createElement("style");
  right.append(listing, legend, cfg);
  root.append(css, style, state, right);
  el.appendChild(root);

  // the current instruction's cells and block in the CFG are marked here, by classes
  let marked = [];
  const markCfg = () => {
    for (const [element, name] of marked) element.classList.remove(name);
    marked = [];
    const insn = (/t(\d+)$/.exec(model.get("cfg_follow")) || [])[1];
    if (insn === undefined) return;
    const scope = model.get("scope");
    for (const [id, name] of [[`a_${scope}i${insn}`, "cur"], [`a_${scope}t${insn}`, "cur"],
                              [model.get("cfg_blocks")[insn], "cur-block"]]) {
      const element = id && cfg.querySelector("#" + CSS.escape(id));
      if (element) { element.classList.add(name); marked.push([element, name]); }
    }
  };
  // the path to the current visit is marked here too: the classes that changed, not a
  // new style sheet (``cfg_marks``: "class id")
  let pathMarks = new Set();
  const markPath = () => {
    const marks = new Set(model.get("cfg_marks"));
    const each = (keys, change) => {
      for (const key of keys) {
        const [name, id] = key.split(" ");
        const element = cfg.querySelector("#" + CSS.escape(id));
        if (element) element.classList[change](name);
      }
    };
    each([...pathMarks].filter((key) => !marks.has(key)), "remove");
    each([...marks].filter((key) => !pathMarks.has(key)), "add");
    pathMarks = marks;
  };
  // the current line is marked here: stepping sends its number, not the stream again
  const markCurrent = () => {
    const old = listing.querySelector(".ln.cur");
    if (old) old.classList.remove("cur");
    const line = listing.querySelector(`.ln[data-step="${model.get("listing_current")}"]`);
    if (line) line.classList.add("cur");
  };
  const follow = () => {
    keepInView(listing, listing.querySelector(".ln.cur"));
    const id = model.get("cfg") && model.get("cfg_follow");
    if (id) keepInView(cfg, cfg.querySelector("#" + CSS.escape(id)));
  };
  // what a move changed is painted at the start of the next frame, once however many
  // moves came since the last one (a held key's repeats can outrun frames), and the
  // current line and CFG row are then kept in view
  const dirty = new Set();
  let framed = false;
  const later = () => {
    if (framed) return;
    framed = true;
    requestAnimationFrame(() => {
      framed = false;
      for (const fn of dirty) fn();
      dirty.clear();
      follow();
    });
  };
  const inFrame = (fn) => { dirty.add(fn); later(); };
  const paint = {
    state: () => { state.innerHTML = model.get("state"); },
    listing: () => { listing.innerHTML = model.get("listing"); markCurrent(); },
    // a style sheet set again costs a style recalculation over the page's sheets: only a new one
    cfg_style: () => { const rules = model.get("cfg_style"); if (style.textContent !== rules) style.textContent = rules; },
    cfg: () => {
      cfg.innerHTML = model.get("cfg");
      cfg.style.display = model.get("cfg") ? "" : "none";
      marked = [];
      pathMarks = new Set();
      markCfg();
      markPath();
    },
    css: () => { css.textContent = model.get("css"); },
    // the stepper's buttons back, next and "next visit of insn" as the current visit has
    // them (Python's own buttons follow later: their models are not told of these)
    buttons_off: () => {
      const host = el.closest(".bpfnb-stepper");
      (model.get("buttons_off") || []).forEach((off, k) => {
        const button = host && host.querySelector("button." + BUTTONS_OFF[k]);
        if (button) button.disabled = off;
      });
    },
    legend: () => { legend.innerHTML = model.get("legend"); },
  };
  // the stream's lines (a new window after a jump) are painted a frame after the visit's
  // state pane and CFG, which a person waits for
  const afterFrame = (then) => requestAnimationFrame(() => setTimeout(then, 0));
  for (const [name, fn] of Object.entries(paint)) {
    fn();
    model.on("change:" + name, name === "listing" ? () => afterFrame(() => { fn(); later(); }) : () => inFrame(fn));
  }
  model.on("change:cfg_follow", () => inFrame(markCfg));
  model.on("change:cfg_marks", () => inFrame(markPath));
  model.on("change:listing_current", () => inFrame(markCurrent));
  // an output scrolled into view, or a notebook tab shown, lays the panes out late
  const resized = new ResizeObserver(later);
  resized.observe(root);
  later();

  // the stream's lines once this view is ready (``lines`` messages, in their order): a
  // window moved along keeps the lines it had and lists those that came in at its ends
  const showLines = (lines) => {
    const first = listing.querySelector(".ln");
    if (lines.from !== undefined && first && Number(first.dataset.step) === lines.from) {
      for (const child of [...listing.children]) {
        const step = Number(child.dataset.step ?? child.dataset.for);  // a gap has neither
        if (!(step >= lines.lo && step < lines.hi)) child.remove();
      }
      listing.insertAdjacentHTML("afterbegin", lines.earlier + lines.before);
      listing.insertAdjacentHTML("beforeend", lines.after + lines.later);
      root.dataset.moved = Number(root.dataset.moved) + 1;
    } else {
      listing.innerHTML = lines.text;
    }
    model.set("listing", lines.text, { silent: true });  // what a view made later lists
    markCurrent();
  };
  // the visits Python sent ahead: step -> {state, insn, cfg_style, cfg_marks, again}, made for chain ``gen``
  const ahead = new Map();
  let gen = -1;
  // Python's answers: each message asking Python to move (to a visit not held here, or
  // where only Python knows) carries a number, which Python sends back once it painted
  // the visit (the panes' traits come before). Until the last one asked is answered the
  // browser does not know which visit will be shown: every move goes to Python too, in
  // order, so that none is lost and no answer paints over a later move.
  let asking = 0, answered = 0;
  model.on("msg:custom", (message) => {
    if (message.kind === "answered") answered = message.seq;
    if (message.kind === "lines") afterFrame(() => { showLines(message); later(); });
    if (message.kind !== "ahead") return;
    if (message.gen !== gen) { ahead.clear(); gen = message.gen; }
    for (const step of message.drop) ahead.delete(step);
    for (const [step, visit] of Object.entries(message.visits)) ahead.set(Number(step), visit);
  });
  // Python hears of the visits painted here at once, then at most every SHOWN_MS while
  // the steps go on (the last one when they pause): each message costs the kernel a
  // busy/idle round and this page the updates of the kernel's status. Whatever else is
  // sent, and any click or key in the stepper, goes after the visit shown last.
  let unsaid = null, saying = null;
  const flushShown = () => {
    if (unsaid === null) return;
    model.send(unsaid);
    unsaid = null;
    root.dataset.said = Number(root.dataset.said) + 1;
  };
  const tellShown = (message) => {
    unsaid = message;
    if (saying !== null) return;
    const say = () => {
      saying = null;
      if (unsaid === null) return;
      flushShown();
      saying = setTimeout(say, SHOWN_MS);
    };
    say();
  };
  const send = (message) => { flushShown(); model.send(message); };
  // a move asked of Python (the browser does not hold the visit it leads to, or waits for an answer)
  const askMove = (message) => {
    asking += 1;
    root.dataset.asked = Number(root.dataset.asked) + 1;
    send({ ...message, seq: asking });
  };
  const onPointer = (event) => {
    const host = el.closest(".bpfnb-stepper") || root;
    if (event.target instanceof Element && host.contains(event.target)) flushShown();
  };
  window.addEventListener("pointerdown", onPointer, true);
  // Python leaves the slider's readout and the instruction box alone while focus is in
  // them (ipywidgets would set them under the keys of a person typing a number)
  const typingIn = (target) => {
    const host = el.closest(".bpfnb-stepper");
    if (!(target instanceof Element) || !host || !host.contains(target)) return undefined;
    if (target.closest("." + GOTO_CLASS) && target.matches("input")) return "box";
    if (target.closest("." + VISIT_CLASS) && target.isContentEditable) return "slider";
    return undefined;
  };
  // ... and a value it sent before it heard of the focus, set under the person's keys,
  // is undone at their next key: what they typed is kept here (after the caret), or what
  // they found there (selected: typing replaces it, as a person who came to type a number)
  const typed = new WeakMap();
  const textOf = (target) => (target.matches("input") ? target.value : target.textContent);
  const keepTyped = (target) => {
    const kept = typed.get(target);
    if (kept === undefined || textOf(target) === kept.text) return;
    if (target.matches("input")) {
      target.value = kept.text;
      if (!kept.typed) target.select();
    } else {
      target.textContent = kept.text;
      window.getSelection().selectAllChildren(target);
      if (kept.typed) window.getSelection().collapseToEnd();
    }
  };
  const found = (target) => typed.set(target, { text: textOf(target), typed: false });
  const onFocus = (event) => {
    const control = typingIn(event.target);
    if (!control) return;
    if (event.type === "focusin") found(event.target);
    send({ kind: "typing", control, on: event.type === "focusin" });
  };
  const onInput = (event) => {
    if (typingIn(event.target)) typed.set(event.target, { text: textOf(event.target), typed: true });
  };
  window.addEventListener("focusin", onFocus, true);
  window.addEventListener("focusout", onFocus, true);
  window.addEventListener("input", onInput, true);
  // where the moves lead from visit ``k`` (see MOVES)
  const at = (k) => {
    const error = model.get("error_step"), held = ahead.get(k);
    return { last: model.get("last"), error: error >= 0 ? error : undefined,
             again: held && held.again !== null ? held.again : undefined, chain: model.get("chain_steps") };
  };
  // paint visit ``step`` from what was sent ahead, then tell Python (false: not held here)
  const move = (step) => {
    const visit = step === undefined ? undefined : ahead.get(step);
    if (visit === undefined) return false;
    root.dataset.held = Number(root.dataset.held) + 1;
    const last = model.get("last");
    // set here only: Python sets its traits the same from what it sent (``painted``)
    model.set({ state: visit.state, listing_current: step, cfg_style: visit.cfg_style, cfg_marks: visit.cfg_marks,
                cfg_follow: model.get("cfg") ? `a_${model.get("scope")}t${visit.insn}` : "",
                buttons_off: [step === 0, step === last, visit.again === null] });
    tellShown({ kind: "shown", step, gen });
    return true;
  };
  // the first visit of instruction ``insn`` at or after the current one, when the visits
  // held run unbroken from the current one to it (else undefined: Python finds it)
  const heldVisitOf = (insn) => {
    for (let k = model.get("listing_current"); ahead.has(k); k++) if (ahead.get(k).insn === insn) return k;
    return undefined;
  };
  // the move of ``key`` from the current visit: painted here when held, else Python is
  // asked for the visit it leads to (never for "the next one": Python may not have
  // heard of the last moves yet), or for the move itself when the browser does not know
  // where it leads or waits for an answer (Python then moves from the visit it painted)
  const go = (key) => {
    const k = model.get("listing_current"), last = model.get("last");
    const step = answered === asking && MOVES[key] ? MOVES[key](k, at(k)) : undefined;
    if (step === undefined) { askMove({ kind: "key", key }); return; }
    const clamped = Math.max(0, Math.min(step, last));
    if (clamped !== k && !move(clamped)) askMove({ kind: "step", step: clamped });
  };
  // the stepper's own buttons that move (ipywidgets): taken here, before their view
  // sends the click to Python, and done as their keys
  const onButton = (event) => {
    const host = el.closest(".bpfnb-stepper");
    const button = event.target instanceof Element && event.target.closest("button");
    if (!host || !button || !host.contains(button)) return;
    const name = Object.keys(BUTTON_KEYS).find((c) => button.classList.contains(c));
    if (name && !button.disabled) {
      event.stopPropagation();
      event.preventDefault();
      go(BUTTON_KEYS[name]);
    } else {
      flushShown();  // a click Python answers acts from the visit shown last
    }
  };
  window.addEventListener("click", onButton, true);
  try {
    model.send({ kind: "ready" });  // this view holds nothing yet: Python sends the visits ahead
  } catch (error) {
    console.debug("bpfnb: no kernel, no visits sent ahead", error);
  }

  root.addEventListener("click", (event) => {
    const target = event.target;
    const operand = target.closest("[data-name]");
    if (operand && root.contains(operand)) {
      const step = operand.closest("[data-step]");  // a stream line, or a register row
      askMove({ kind: "operand", step: Number(step.dataset.step), name: operand.dataset.name });
      return;
    }
    const line = target.closest("[data-step]");
    if (line && root.contains(line)) {
      askMove({ kind: "step", step: Number(line.dataset.step) });
      return;
    }
    const row = target.closest("g[id^='a_']");
    if (row && cfg.contains(row)) {
      event.preventDefault();  // the cell's xlink:href would move the page
      const match = row.id.match(/[it](\d+)$/);
      if (match) askMove({ kind: "insn", insn: Number(match[1]) });
    }
  });

  // Capture on window runs before JupyterLab's own shortcuts (arrows move
  // between cells there): take the key only when focus is in this stepper.
  const onKey = (event) => {
    const host = el.closest(".bpfnb-stepper") || root;
    const target = event.target;
    if (!(target instanceof Element) || !host.contains(target)) return;
    if (target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']")) {
      const control = typingIn(target);
      if (control) {
        keepTyped(target);
        // Enter: ipywidgets shows the value it takes (clamped) after this handler
        if (event.key === "Enter") setTimeout(() => found(target), 0);
      }
      const text = control ? textOf(target) : "";  // the box's input, the slider's readout
      if (event.key === "Enter" && control && /^\s*\d+\s*$/.test(text)) {
        const box = control === "box";
        // painted here when held; else Python is asked here (it hears the control too,
        // later, and finds itself there), so that the moves after wait for its answer
        const number = Number(text);
        const step = answered !== asking ? undefined : box ? heldVisitOf(number) : number;
        const asked = box ? { kind: "insn", insn: number } : { kind: "step", step: number };
        if (step !== model.get("listing_current") && (step === undefined || !move(step))) askMove(asked);
      }
      flushShown();  // a key typed in a control (box, slider) acts from the visit shown last
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || !KEYS.has(event.key)) return;
    event.preventDefault();
    event.stopPropagation();
    go(event.key);
  };
  window.addEventListener("keydown", onKey, true);
  return () => {
    window.removeEventListener("keydown", onKey, true);
    window.removeEventListener("click", onButton, true);
    window.removeEventListener("pointerdown", onPointer, true);
    window.removeEventListener("focusin", onFocus, true);
    window.removeEventListener("focusout", onFocus, true);
    window.removeEventListener("input", onInput, true);
    clearTimeout(saying);
    resized.disconnect();
  };
}

export default { render };
""")


class StepperPanes(anywidget.AnyWidget):
    """State, instruction stream and CFG of one stepper; ``on_message`` gets
    the browser's clicks and keys (``{"kind": "operand"|"step"|"insn"|"key", ...}``, each
    with a number ``seq`` sent back in an ``answered`` message once it was handled),
    ``{"kind": "ready"}`` when a view starts (it holds no visit ahead yet) and
    ``{"kind": "shown", "step": k, "gen": g}`` after it painted visit ``k`` from
    what was sent ahead for chain generation ``g`` (see ``send_ahead``).

    The traits the browser sets itself when it paints a visit held ahead are not sent
    back: Python sets them the same (``painted``) without sending them again."""

    _esm = ESM
    scope = traitlets.Unicode("").tag(sync=True)
    css = traitlets.Unicode("").tag(sync=True)  # the scope's style rules, sent once
    state = traitlets.Unicode("").tag(sync=True, echo_update=False)
    listing = traitlets.Unicode("").tag(sync=True)  # the stream's lines around the current one
    # the visit whose line the browser marks current (the current visit)
    listing_current = traitlets.Int(-1).tag(sync=True, echo_update=False)
    last = traitlets.Int(0).tag(sync=True)  # the walk's last visit
    error_step = traitlets.Int(-1).tag(sync=True)  # the error's visit (-1: none)
    # the selected chain's visits, sorted (ints: a chain can have tens of thousands, not checked one by one)
    chain_steps = traitlets.List().tag(sync=True)
    legend = traitlets.Unicode("").tag(sync=True)
    cfg = traitlets.Unicode("").tag(sync=True)  # the SVG, laid out once
    cfg_style = traitlets.Unicode("").tag(sync=True, echo_update=False)  # the current step's highlighting
    # back, next and "next visit of insn" disabled at the current visit: the browser sets them
    # on the stepper's buttons (itself when it paints a visit it holds, as Python does)
    buttons_off = traitlets.List().tag(sync=True, echo_update=False)
    # the classes the browser sets on the CFG's elements ("class id": the path to the current visit)
    cfg_marks = traitlets.List().tag(sync=True, echo_update=False)
    cfg_follow = traitlets.Unicode("").tag(sync=True, echo_update=False)  # id of the CFG row kept in view
    # per instruction, the id of its block in the CFG ("": none), sent once: the browser
    # marks the current instruction's cells and block with classes (CfgView.current_rules)
    cfg_blocks = traitlets.List(traitlets.Unicode()).tag(sync=True)

    def __init__(self, on_message, **kwargs):
        super().__init__(**kwargs)
        self._viewed = False  # a view said it is ready: it takes the stream's lines as messages

        def heard(_widget, content, _buffers):
            if content.get("kind") == "ready":
                self._viewed = True
            try:
                on_message(content)
            finally:  # the browser waits for this answer before it moves by itself again
                if "seq" in content:
                    self.send({"kind": "answered", "seq": content["seq"]})

        self.on_msg(heard)

    def painted(self, step: int, visit: dict, follow: str) -> None:
        """The browser painted visit ``step`` (``visit`` as sent ahead) and set the
        traits itself: the same values here, not sent back (ipywidgets' own lock for
        values that came from the browser)."""
        values = {"state": visit["state"], "listing_current": step, "cfg_style": visit["cfg_style"],
                  "cfg_marks": visit["cfg_marks"], "cfg_follow": follow,
                  "buttons_off": [step == 0, step == self.last, visit["again"] is None]}
        with self._lock_property(**values), self.hold_trait_notifications():
            for name, value in values.items():
                setattr(self, name, value)

    def show_lines(self, text: str, moved: dict | None) -> None:
        """The stream's lines, ``text`` (``StreamListing.moved``'s): sent as they are until a
        view said it is ready; after, as a ``lines`` message, with ``moved`` the lines that
        came into the window at its ends (the browser lists only those, then sets the trait
        itself: one channel, so these messages keep their order)."""
        if text == self.listing:
            return
        if not self._viewed:
            self.listing = text
            return
        with self._lock_property(listing=text), self.hold_trait_notifications():
            self.listing = text
        self.send({"kind": "lines", "text": text, **(moved or {})})

    def send_ahead(self, gen: int, visits: dict[int, dict], drop: list[int]) -> None:
        """Visits the browser may paint without asking (``{step: {"state", "insn",
        "cfg_style", "cfg_marks", "again"}}``, ``again`` the next visit of the same instruction), made for chain generation ``gen`` (a new one replaces all
        held before), and the steps it no longer needs to hold."""
        self.send({"kind": "ahead", "gen": gen, "visits": {str(k): v for k, v in visits.items()}, "drop": drop})
