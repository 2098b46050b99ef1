"""Basic blocks and their edges on hand-assembled programs."""

from bpfnb.isa import Insn, ld_imm64
from bpfnb.isa import opcodes as op
from bpfnb.viz.cfg import Edge, basic_blocks

MOV0 = Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 0)
EXIT = Insn(op.BPF_JMP | op.BPF_EXIT)


def jeq(dst, imm, off):
    return Insn(op.BPF_JMP | op.BPF_JEQ | op.BPF_K, dst, 0, off, imm)


def test_a_diamond_has_four_blocks_with_labelled_edges():
    insns = [
        jeq(1, 0, 2),          # 0: if r1 == 0 goto 3
        MOV0,                  # 1
        Insn(op.BPF_JMP | op.BPF_JA, off=1),  # 2: goto 4
        MOV0,                  # 3
        EXIT,                  # 4
    ]
    blocks = basic_blocks(insns)
    assert [(b.start, b.end) for b in blocks] == [(0, 0), (1, 2), (3, 3), (4, 4)]
    assert blocks[0].edges == (Edge(3, "taken"), Edge(1, "not taken"))
    assert blocks[1].edges == (Edge(4, "goto"),)
    assert blocks[2].edges == (Edge(4, "next"),)
    assert blocks[3].edges == ()


def test_ld_imm64_is_one_row_and_its_second_slot_never_starts_a_block():
    lo, hi = ld_imm64(1, 0x1122334455667788)
    insns = [lo, hi, jeq(1, 5, -3), EXIT]  # 2: a back edge to 0
    blocks = basic_blocks(insns)
    assert [(b.start, b.end) for b in blocks] == [(0, 2), (3, 3)]
    assert blocks[0].slots(insns) == [0, 2]
    assert blocks[0].edges == (Edge(0, "taken"), Edge(3, "not taken"))


def test_bpf_to_bpf_call_edges_and_gotol():
    call = Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_CALL, 0, 2)  # 0: call pc+2 -> 3
    gotol = Insn(op.BPF_JMP32 | op.BPF_JA, imm=-3)                       # 4: gotol -> 2
    insns = [call, EXIT, MOV0, MOV0, gotol]
    blocks = basic_blocks(insns)
    assert blocks[0].edges == (Edge(3, "call"),)
    assert [(b.start, b.end) for b in blocks] == [(0, 1), (2, 2), (3, 4)]
    assert blocks[2].edges == (Edge(2, "goto"),)


def test_rendered_svg_has_blocks_rows_and_edges_and_highlighting_needs_no_relayout():
    from bpfnb import program
    from bpfnb.viz.cfg import CfgView

    insns = [jeq(1, 0, 2), MOV0, Insn(op.BPF_JMP | op.BPF_JA, off=1), MOV0, EXIT]
    view = CfgView(program(b"".join(i.encode() for i in insns)), scope="s_")
    base = view.base_svg
    for element in ('id="s_b0"', 'id="s_b3"', 'id="a_s_t4"', 'id="s_e0_3"', 'id="s_e2_4"'):
        assert element in base
    assert "if r1 == 0x0 goto pc+2" in base and "goto pc+1" in base
    lit = view.svg(current=3, path=[0, 3], visits={0: 1, 3: 2}, error=4)
    assert lit.replace(lit[lit.index("<style>"): lit.index("</style>") + 8], "") == base
    assert "#a_s_t3 polygon{fill:#fff8c5}" in lit and "#s_b3>polygon{stroke:#bf8700" in lit
    assert "#a_s_t4 text{fill:#a40e26" in lit
    chained = view.svg(current=3, chain=[0, 3])
    assert "#s_graph .node text{opacity:0.3}" in chained and "#s_graph #a_s_t0 text{opacity:1}" in chained


def test_two_views_of_one_program_share_no_id():
    import re

    from bpfnb import program
    from bpfnb.viz.cfg import CfgView

    prog = program(b"".join(i.encode() for i in [jeq(1, 0, 1), MOV0, EXIT]))
    ids = [set(re.findall(r'id="([^"]+)"', CfgView(prog).svg(current=0))) for _ in range(2)]
    assert len(ids[0]) == 13 and not ids[0] & ids[1]
    a, b = CfgView(prog), CfgView(prog)
    rules_a = a.svg(current=1, path=[0, 1])
    selectors = re.findall(r"#([a-z][\w-]*)[ >{,]", rules_a[rules_a.index("<style>"):rules_a.index("</style>")])
    assert selectors and all(s.startswith(("a_" + a.scope, a.scope)) for s in selectors)
    assert b.scope not in rules_a
