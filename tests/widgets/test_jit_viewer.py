"""JitViewer: one slider for both panes, the lddw second slot, the kernel's image disassembled."""

import pytest

from bpfnb.widgets import JitViewer


def _prog():
    import bpfnb
    from bpfnb import examples

    return bpfnb.load(examples.path("typecast_ok")).program()


def test_the_second_slot_of_a_64_bit_load_selects_the_load():
    viewer = JitViewer(_prog())
    viewer.insn.value = 6  # 5: r2 = 0x0 (lddw), 6 is its second slot
    assert viewer.selected == 5
    assert 'background:#d6eaff"><td><code>5: (18) r2 = 0x0' in viewer.listing.value
    assert viewer.selected_code() == ["mov esi, 0x10001000"]  # r2 is esi; the map address fits 32 bits
    assert viewer.scope in viewer._dom_classes and f".{viewer.scope} td" in viewer._repr_html_()


@pytest.mark.kernel
def test_the_kernel_pane_is_disassembled_aligned_and_follows_the_slider():
    from bpfnb.kernel import available

    if available():
        pytest.skip(available())
    viewer = JitViewer(_prog(), vs_kernel=True)
    viewer.insn.value = 2
    side = viewer.side.value
    assert 'background:#d6eaff"><td><code>2: (61) r1 = *(u32 *)(r1 +224)' in side
    row = side.split('background:#d6eaff">')[1].split("</tr>")[0]
    ours, kernel = row.split("<td class='x86'>")[1:3]
    assert kernel.count("<br>") == 9  # ten x86 instructions, one per line: the PROBE_MEM guard and the load
    assert "mov edi, dword ptr [rdi + 0xe0]" in kernel and "ja .+0x4" in kernel  # disassembled, not hex
    assert ours == kernel.split("<td>")[0]  # byte-equal here
    viewer.insn.value = 6  # the lddw's second slot: the map load, its address masked the same on both sides
    row = viewer.side.value.split('background:#d6eaff">')[1].split("</tr>")[0]
    assert row.count("‹map›") == 3 and "(map address masked)" in row  # BPF text, ours, the kernel's
