"""VerifierStepper on a hand-made walk of a small program with two paths."""

import pathlib

import pytest

from bpfnb.isa import Insn
from bpfnb.isa import opcodes as op
from bpfnb.program import Program
from bpfnb.viz.cfg import CURRENT, PATH
from bpfnb.widgets.stepper import VerifierStepper
from bpfnb.widgets.walk import Visit, Walk, btf_type_of, pointer_kind

INSNS = (
    Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 6, 1),            # 0: r6 = r1
    Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_W, 0, 6, 0),           # 1: r0 = *(u32 *)(r6 +0)
    Insn(op.BPF_STX | op.BPF_MEM | op.BPF_DW, 10, 0, -8),        # 2: *(u64 *)(r10 -8) = r0
    Insn(op.BPF_JMP | op.BPF_JGT | op.BPF_K, 0, 0, 2, 10),       # 3: if r0 > 0xa goto pc+2
    Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_DW, 1, 10, -8),        # 4: r1 = *(u64 *)(r10 -8)
    Insn(op.BPF_JMP | op.BPF_EXIT),                              # 5: exit
    Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 0),      # 6: r0 = 0
    Insn(op.BPF_JMP | op.BPF_EXIT),                              # 7: exit
)
CTX = {"R1": "ctx()", "R10": "fp0"}
LEN = "scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))"
SMALL = "scalar(smin=smin32=0,smax=umax=smax32=umax32=10,var_off=(0x0; 0xf))"
BIG = "scalar(smin=umin=umin32=11,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))"


@pytest.fixture
def walk():
    r6 = {**CTX, "R6": "ctx()"}
    r0 = {**r6, "R0": LEN}
    visits = [
        Visit(0, 0, None, r6),
        Visit(1, 1, 0, r0),
        Visit(2, 2, 1, r0, {"fp-8": LEN}),
        Visit(3, 3, 2, {**r0, "R0": SMALL}, {"fp-8": LEN}, "branch"),
        Visit(4, 4, 3, {**r0, "R0": SMALL, "R1": LEN}, {"fp-8": LEN}),
        Visit(5, 5, 4, {**r0, "R0": SMALL, "R1": LEN}, {"fp-8": LEN}, "exit"),
        Visit(6, 6, 3, {**r0, "R0": "0"}, {"fp-8": BIG}, note="from 3 to 6",
              entry_regs={**r0, "R0": BIG}, entry_stack={"fp-8": BIG}),
        Visit(7, 7, 6, {**r0, "R0": "0"}, {"fp-8": BIG}, "exit"),
    ]
    return Walk(Program("two_paths", INSNS), visits)


def test_provenance_goes_through_the_fill_and_the_spill(walk):
    chain = walk.origin(5, "R1")
    assert [(o.insn, o.name, o.how) for o in chain] == [
        (4, "R1", "filled from fp-8"), (2, "fp-8", "spilled from R0"), (1, "R0", "loaded from the context at +0")]
    assert [(o.insn, o.how) for o in walk.origin(1, "r6")] == [(0, "copied from R1"), (-1, "entry")]


def test_history_follows_the_branch_that_pushed_the_path(walk):
    assert walk.history(7) == [0, 1, 2, 3, 6, 7]
    assert walk.before(6)["R0"] == BIG  # the taken side's state, not the fall-through's
    assert walk.changed(6) == {"R0": (BIG, "0")}
    assert walk.visit_counts()[3] == 1 and sum(walk.visit_counts().values()) == 8


def test_stepping_and_jumping(walk):
    s = VerifierStepper(walk)
    assert s.step == 0 and s.back.disabled and s.to_error.disabled
    s.next.click()
    s.next.click()
    assert s.step == 2 and s.slider.value == 2
    s.back.click()
    assert s.step == 1
    s.goto.value = 6
    assert s.step == 6 and "insn <b>6</b>" in s.panes.state
    s.show(4)
    assert s.goto.value == 4  # the box follows the current instruction
    s.first.click()
    s.show(3)
    s.follow_branch()
    assert s.step == 6
    s.show(100)
    assert s.step == 7 and s.next.disabled


def test_register_table_marks_changes_reads_and_writes(walk):
    s = VerifierStepper(walk)
    s.show(1)
    table = s.registers_html(1)
    row_r0 = next(r for r in table.split("<tr") if "<td>R0</td>" in r)
    assert 'class="changed"' in row_r0 and '<td class="mark">w</td>' in row_r0
    assert "— → <b>scalar(" in row_r0
    row_r6 = next(r for r in table.split("<tr") if "<td>R6</td>" in r)
    assert '<td class="mark">r</td>' in row_r6 and "changed" not in row_r6
    assert "fp-8" in s.stack_html(2) and "changed" in s.stack_html(2)


def test_cfg_highlights_the_current_insn_and_the_path(walk):
    s = VerifierStepper(walk)
    s.show(7)
    p = s.scope
    rules, marks = s.panes.cfg_style, s.panes.cfg_marks
    # the path: classes the browser sets, styled once by the page's rules
    assert f"taken {p}e3_6" in marks  # the taken edge walked on this path
    assert not any(f"{p}e3_4" in m for m in marks)  # the other side was not walked on this path
    assert f"on-path a_{p}t6" in marks and f"path-block {p}b{s.cfg.block_of(7)}" in marks
    assert f':where(#{p}graph) g.taken path{{stroke:{PATH};stroke-width:2.5}}' in s.panes.css
    assert all(f'id="{m.split()[1]}"' in s.panes.cfg for m in marks)
    assert s.panes.cfg_follow == f"a_{p}t7" and f'id="a_{p}t7"' in s.panes.cfg
    # the current instruction: marked by the browser with classes the page's rules style
    # once (no rule of its own: steps through a loop leave the style sheet as it is), nor
    # the path's
    assert f"#a_{p}i7 polygon" not in rules and f"{p}e3_6" not in rules and (rules, marks) == s._cfg_look(7)
    s.show(6)
    assert s.panes.cfg_style == rules and s.panes.cfg_marks != marks  # along the path: the marks change
    assert f"#{p}graph g.cur polygon{{fill:{CURRENT}}}" in s.panes.css
    assert s.panes.cfg_blocks[7] == f"{p}b{s.cfg.block_of(7)}" and f'id="{p}b{s.cfg.block_of(7)}"' in s.panes.cfg
    assert all(f'id="{i}"' in s.panes.cfg for i in s.cfg.cell_ids(7))
    # ... and drawn in the SVG a notebook saved as HTML shows
    assert f"#a_{p}i7 polygon,#a_{p}t7 polygon{{fill:{CURRENT}}}" in s.graph_svg(7)
    assert f"#{p}e3_6 path{{stroke:{PATH};stroke-width:2.5}}" in s.graph_svg(7)


def test_two_steppers_share_no_scope_id_or_rule(walk):
    import re

    a, b = VerifierStepper(walk), VerifierStepper(walk)
    assert a.scope != b.scope and a.scope in a._dom_classes
    ids_a = set(re.findall(r'id="([^"]+)"', a.panes.cfg))
    ids_b = set(re.findall(r'id="([^"]+)"', b.panes.cfg))
    assert ids_a and not ids_a & ids_b
    for s in (a, b):  # every rule of each stepper is under its own scope
        css = re.findall(r"^(\S+)", s.panes.css, re.M)
        assert css and all(sel.startswith((f".{s.scope}", f"#{s.scope}graph", f":where(#{s.scope}graph)")) for sel in css)
        assert all(s.scope in sel for sel in re.findall(r"#([a-z][\w]*)[ >{,]", s.panes.cfg_style))


def test_clicking_an_operand_selects_its_chain_through_the_fill_and_the_spill(walk):
    s = VerifierStepper(walk)
    s.show(5)
    s._message({"kind": "operand", "step": 4, "name": "R1"})  # r1 = *(u64 *)(r10 -8)
    chain = s.chain
    assert chain.defs == (4, 2, 1, 0)  # fill of fp-8, spill of r0, load through r6, r6 = r1
    assert chain.uses == () and chain.entry == ("R1",)
    listing = s.panes.listing
    assert 'class="ln def" data-step="2"' in listing and 'class="ln dim" data-step="5"' in listing
    assert s.panes.listing_current == 5 and 'class="ln cur dim" data-step="5"' in s._repr_html_()
    assert 'class="ln sel" data-step="4"' in listing
    assert all(f"#{s.scope}graph #a_{s.scope}t{i} text{{opacity:1}}" in s.panes.cfg_style for i in (0, 1, 2, 4))
    s.show(0)
    s.along_chain(+1)
    assert s.step == 1
    s._message({"kind": "key", "key": "n"})
    assert s.step == 2
    s._message({"kind": "key", "key": "Escape"})
    assert s.chain is None and " dim" not in s.panes.listing
    r0 = s.select("R0", 1)  # the value insn 1 made: read by the spill, the branch and one exit
    assert r0.defs == (1, 0) and r0.uses == (2, 3, 5)  # the exit on the path where it lives


def test_the_stream_marks_paths_and_clicks_jump(walk):
    s = VerifierStepper(walk)
    assert s.panes.listing.count('class="ln') == 8 and '<div class="path" data-for="6">from 3 to 6</div>' in s.panes.listing
    assert ('data-step="2" style="padding-left:0px"><span class="no">2</span><span class="pc">2:</span>'
            '<span class="op" data-name="fp-8">*(u64 *)(r10 -8)</span>') in s.panes.listing
    s._message({"kind": "step", "step": 6})
    assert s.step == 6
    s._message({"kind": "insn", "insn": 4})  # a click on a CFG row
    assert s.step == 4
    s._message({"kind": "key", "key": "ArrowRight"})
    assert s.step == 5


def test_the_browser_is_sent_the_visits_around_the_current_one_and_steps_on_them(walk, monkeypatch):
    from bpfnb.widgets import stepper as stepper_module

    monkeypatch.setattr(stepper_module, "AHEAD", 1)
    monkeypatch.setattr(stepper_module, "FIRST_AHEAD", 1)
    monkeypatch.setattr(stepper_module, "NEAR", 0)
    s = VerifierStepper(walk)
    sent = []
    monkeypatch.setattr(s.panes, "send_ahead", lambda gen, visits, drop: sent.append((gen, visits, drop)))
    s.show(3)
    assert sent == []  # no view has started: nothing made ahead
    s._message({"kind": "ready"})
    (gen, visits, drop), = sent
    assert (gen, sorted(visits), drop) == (0, [0, 1, 2, 3, 4, 6, 7], [])  # 3 ± 1, the ends ± 1
    style, marks = s._cfg_look(4)
    assert visits[4] == {"state": s.panel_html(4), "insn": 4, "cfg_style": style, "cfg_marks": marks,
                         "again": None}  # no loop: no next visit of an instruction
    # the browser painted visit 4 from them: the controls follow, visit 5 is sent, 2 forgotten
    s.panes.state, s.panes.cfg_style = visits[4]["state"], visits[4]["cfg_style"]  # as the browser set them
    s._message({"kind": "shown", "step": 4, "gen": 0})
    assert s.step == 4 and s.slider.value == 4 and s.goto.value == 4 and not s.back.disabled
    assert (sorted(sent[-1][1]), sent[-1][2]) == ([5], [2])
    # a chain selected: every visit held is made again (a new generation), the chain's
    # visits each side of the current one with them, and the browser has the chain's visits
    s.select("R0", 1)
    gen, visits, drop = sent[-1]
    assert s.chain.steps == (0, 1, 2, 3, 5) and s.panes.chain_steps == [0, 1, 2, 3, 5]
    assert gen == 1 and sorted(visits) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert f"#{s.scope}graph .node text" in visits[5]["cfg_style"]  # the others dimmed
    # ... and a visit the browser painted from an older one is painted again by Python
    s._message({"kind": "shown", "step": 5, "gen": 0})
    assert s.step == 5 and s.panes.state == s.panel_html(5) and s.panes.listing_current == 5
    for button, name in ((s.next, "next"), (s.again, "again"), (s.to_error, "error"), (s.chain_next, "chain-next")):
        assert f"bpfnb-{name}" in button._dom_classes  # the buttons the browser moves on itself


def test_a_move_the_browser_asks_for_is_answered_after_the_visit_it_leads_to(walk, monkeypatch):
    s = VerifierStepper(walk)
    out = []  # the comm's messages, in order: the panes' traits, then the answer
    monkeypatch.setattr(s.panes, "_send", lambda message, buffers=None: out.append(message))
    s.panes._handle_custom_msg({"kind": "key", "key": "End", "seq": 7}, [])
    *painted, answer = out
    assert answer == {"method": "custom", "content": {"kind": "answered", "seq": 7}}
    assert s.step == len(walk) - 1
    assert any(m["method"] == "update" and m["state"].get("listing_current") == len(walk) - 1 for m in painted)
    # answered even when the move fails (the browser would wait for it for ever)
    monkeypatch.setattr(s, "show", lambda step: 1 / 0)
    s.panes._handle_custom_msg({"kind": "step", "step": 2, "seq": 8}, [])  # ipywidgets logs the error
    assert out[-1] == {"method": "custom", "content": {"kind": "answered", "seq": 8}}
    # the browser's own news (a visit it painted) asks nothing: no answer
    out.clear()
    s.panes._handle_custom_msg({"kind": "shown", "step": 3, "gen": 0}, [])
    assert all(m["content"]["kind"] != "answered" for m in out if m["method"] == "custom")


def test_a_visit_python_paints_sets_the_buttons_off_in_the_same_message(walk):
    import asyncio

    s = VerifierStepper(walk)

    async def show_last():
        s.show(len(walk) - 1)
        return list(s.panes.buttons_off), s.next.disabled  # before the kernel loop's next turn

    # the page's buttons with the visit (a click at once acts on them); the models follow
    assert asyncio.run(show_last()) == ([False, True, True], False)
    assert s.next.disabled


def test_a_control_being_typed_into_is_left_as_typed_until_focus_leaves_it(walk):
    s = VerifierStepper(walk)
    s._message({"kind": "typing", "control": "box", "on": True})
    s.show(4)
    assert (s.slider.value, s.goto.value) == (4, 0)  # the box as the person left it
    s._message({"kind": "typing", "control": "slider", "on": True})
    s.show(2)
    assert (s.slider.value, s.goto.value) == (4, 0)
    s._message({"kind": "typing", "control": "box", "on": False})
    assert (s.slider.value, s.goto.value) == (4, 2)
    s._message({"kind": "typing", "control": "slider", "on": False})
    assert (s.slider.value, s.goto.value) == (2, 2)


def test_a_visit_the_browser_painted_that_python_forgot_is_not_painted_again(walk, monkeypatch):
    from bpfnb.widgets import stepper as stepper_module

    monkeypatch.setattr(stepper_module, "AHEAD", 1)
    monkeypatch.setattr(stepper_module, "FIRST_AHEAD", 1)
    monkeypatch.setattr(stepper_module, "NEAR", 0)
    s = VerifierStepper(walk)
    monkeypatch.setattr(s.panes, "send_ahead", lambda gen, visits, drop: None)
    s.show(3)
    s._message({"kind": "ready"})
    assert 5 not in s._ahead  # forgotten here (the browser, told later, still held it)
    out = []
    monkeypatch.setattr(s.panes, "_send", lambda message, buffers=None: out.append(message))
    s._message({"kind": "shown", "step": 5, "gen": 0})
    # Python is there, with the panes the browser set; nothing painted over later moves
    assert s.step == 5 and s.panes.listing_current == 5 and s.panes.state == s.panel_html(5)
    assert not [m for m in out if m["method"] == "update" and {"state", "listing_current"} & set(m["state"])]


def test_the_visits_ahead_go_a_batch_per_turn_of_the_kernels_event_loop(walk, monkeypatch):
    import asyncio

    from bpfnb.widgets import stepper as stepper_module

    s = VerifierStepper(walk)
    sent = []
    monkeypatch.setattr(s.panes, "send_ahead", lambda gen, visits, drop: sent.append(sorted(visits)))

    async def ready_then_turns():
        s._message({"kind": "ready"})
        first = list(sent)
        for _ in range(len(walk)):
            await asyncio.sleep(0)
        return first

    first = asyncio.run(ready_then_turns())
    assert first == [[0, 1, 2, 3]]  # the current visit and the nearest first, AHEAD_BATCH of them
    assert len(sent[0]) == stepper_module.AHEAD_BATCH
    assert sent == [[0, 1, 2, 3], [4, 5, 6, 7]]  # the rest on the next turn


def test_jumps_lead_where_the_browser_holds_them():
    """On a loop, the next visits of the current instruction are held, each with where
    "next visit of insn" leads from it."""
    from bpfnb.widgets.stepper import AGAIN_AHEAD

    insns = (Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 0), Insn(op.BPF_JMP | op.BPF_JA, 0, 0, -2),
             Insn(op.BPF_JMP | op.BPF_EXIT))
    visits = [Visit(k, k % 2, k - 1 if k else None, {**CTX, "R0": "0"}) for k in range(40)]
    s = VerifierStepper(Walk(Program("spin", insns), visits))
    sent = {}
    s.panes.send_ahead = lambda gen, made, drop: sent.update(made)
    s._message({"kind": "ready"})
    assert [s.walk.next_visit(k) for k in (0, 1, 38, 39)] == [2, 3, None, None]
    assert s.walk.visit_from(1, 20) == 21 and s.walk.visit_from(2, 0) is None
    assert sent[0]["again"] == 2 and sent[39]["again"] is None
    assert {2 * k for k in range(AGAIN_AHEAD + 1)} <= set(sent)


def test_error_step_shows_the_explanation():
    insns = (Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 5),
             Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_DW, 0, 0, 0), Insn(op.BPF_JMP | op.BPF_EXIT))
    walk = Walk(Program("bad", insns), [Visit(0, 0, None, {**CTX, "R0": "5"}),
                                         Visit(1, 1, 0, {**CTX, "R0": "5"}, event="error")],
                error="R0 invalid mem access 'scalar'")
    s = VerifierStepper(walk)
    s.to_error.click()
    assert s.step == 1
    assert "A number was used as a pointer" in s.panes.state
    p = s.scope
    assert f"#a_{p}i1 polygon,#a_{p}t1 polygon{{fill:#ffcecb}}" in s.panes.cfg_style
    assert "rejected" in s._repr_html_()


def test_kernel_column_marks_differences(walk):
    theirs = Walk(walk.prog, [*walk.visits[:1], Visit(1, 1, 0, {**walk.visits[1].regs, "R0": "scalar()"}),
                              *walk.visits[2:]], source="kernel")
    s = VerifierStepper(walk, kernel_walk=theirs)
    table = s.registers_html(1)
    row_r0 = next(r for r in table.split("<tr") if "<td>R0</td>" in r)
    assert "differs" in row_r0 and "<td>scalar()</td>" in row_r0
    assert "differs" not in s.registers_html(0)


def test_btf_type_of_typed_pointers():
    assert btf_type_of("trusted_ptr_sk_buff()") == "struct sk_buff"
    assert btf_type_of("untrusted_ptr_net_device()") == "struct net_device"
    assert btf_type_of("ptr_sock_or_null(id=2)") == "struct sock"
    assert btf_type_of("trusted_ptr_or_null_sock(id=1)") == "struct sock"  # as Linux 6.18 prints it
    assert btf_type_of("rdonly_untrusted_mem(sz=0)") is None
    assert [pointer_kind(t) for t in ("trusted_ptr_sk_buff()", "rcu_ptr_or_null_sock(id=1)", "ptr_tcp_sock()",
                                      "ptr_sock_or_null(id=2)", "scalar()")] == \
        ["trusted_ptr_", "rcu_ptr_or_null_", "ptr_", "ptr_or_null_", None]
    assert btf_type_of("map_value(map=counts,ks=4,vs=8)") is None
    assert btf_type_of("ctx()") is None


def test_source_lines_and_helper_arguments_on_a_compiled_program():
    import bpfnb
    from bpfnb import examples

    prog = bpfnb.load(examples.path("count_protocols")).program()
    stepper = VerifierStepper(prog, cfg=False)
    lines = [value for _, value in stepper.source.options[1:]]
    assert 19 in lines and not stepper.source.disabled
    stepper.source.value = 19  # "__u8 proto = 0;"
    visit = stepper.walk.visits[stepper.step]
    assert prog.source_line(visit.insn).line == 19
    call = next(v.step for v in stepper.walk.visits if prog.insns[v.insn].code == op.BPF_JMP | op.BPF_CALL)
    html = stepper.call_html(call)
    assert html.startswith('<div class="call">bpf_skb_load_bytes(<b>skb</b>=R1 ctx(), <b>offset</b>=R2 ')
    assert "<b>to</b>=R3 fp-" in html and "<b>len</b>=R4 1" in html
    stepper.show(call)
    assert "bpf_skb_load_bytes(" in stepper.panes.state
    assert '</span> = bpf_skb_load_bytes(skb: <span class="op"' in stepper.panes.listing  # named in the stream
    assert stepper.call_html(0) == ""  # not a call


def test_subprogram_calls_are_indented_by_frame():
    import re

    import bpfnb

    prog = bpfnb.load(pathlib.Path(__file__).parents[1] / "fixtures" / "bpf2bpf.bpf.o").program()
    s = VerifierStepper(prog, cfg=False)
    depths = [s.walk.depth(v.step) for v in s.walk.visits]
    assert depths[:11] == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0]  # call at insn 2, the callee 9-15, back at 3
    assert re.findall(r"padding-left:(\d+)px", s.panes.listing)[2:4] == ["0", "18"]
    s.show(4)
    assert "frame 1" in s.panes.state


@pytest.mark.kernel
def test_a_program_the_kernel_refuses_steps_with_the_refusal_said():
    """fentry loads are refused here (EPERM): the stepper shows bpfnb's walk and says the
    kernel would not load the program, which is no verdict."""
    import bpfnb
    from bpfnb.isa import encode

    exit0 = encode([Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 0), Insn(op.BPF_JMP | op.BPF_EXIT)])
    s = VerifierStepper(bpfnb.program(exit0, section="fentry/tcp_connect"), vs_kernel=True, cfg=False)
    assert s.kernel is None and "EPERM" in s.kernel_refusal
    s.show(1)
    assert "accepted (bpfnb) · the kernel refused to load it: " in s.panel_html(1)


def test_the_controls_follow_the_browsers_steps_once_for_several(walk, monkeypatch):
    import asyncio

    from bpfnb.widgets import stepper as stepper_module

    s = VerifierStepper(walk)
    monkeypatch.setattr(s.panes, "send_ahead", lambda gen, visits, drop: None)
    moved = []
    s.slider.observe(lambda change: moved.append(change["new"]), "value")

    async def steps_then_wait():
        s._message({"kind": "ready"})
        for step in (1, 2, 3):
            s._message({"kind": "shown", "step": step, "gen": 0})
        now = (s.step, s.panes.listing_current, list(moved))
        await asyncio.sleep(stepper_module.FOLLOW_S * 2)
        return now

    # Python knows the step and the panes at once; the slider moves once, to the last
    assert asyncio.run(steps_then_wait()) == (3, 3, [])
    assert moved == [3] and s.goto.value == 3 and s.panes.state == s.panel_html(3)
