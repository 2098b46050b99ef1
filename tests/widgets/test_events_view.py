"""EventsView: sorting, filtering, the table and the plots it shows."""

import re

import numpy as np
import pandas as pd
import pytest

from bpfnb.widgets import EventsView
from bpfnb.widgets.events import frame_table_html


@pytest.fixture
def frame():
    return pd.DataFrame({
        "time_ns": np.array([10, 2_000_000_000, 30, 5_000_000_000], dtype=np.uint64),
        "reason": pd.Categorical(["NO_SOCKET", "SOCKET_RCVBUFF", "NO_SOCKET", "NO_SOCKET"]),
        "len": np.array([74, 1052, 60, 90], dtype=np.uint32),
        "ifindex": np.array([1, 1, 2, 1], dtype=np.int32),
        "packet": [b"\x45\x00" * 20, b"", b"\x01", b"\xff" * 3],
    })


def test_sorts_and_filters_without_touching_the_frame(frame):
    view = EventsView(frame)
    assert view.filter_column == "reason"
    view.sort_by.value = "len"
    assert list(view.view()["len"]) == [60, 74, 90, 1052]
    view.descending.value = True
    assert list(view.view()["len"]) == [1052, 90, 74, 60]
    view.only.value = "NO_SOCKET"
    assert list(view.view()["len"]) == [90, 74, 60]
    assert list(frame["len"]) == [74, 1052, 60, 90]


def test_the_table_follows_the_controls(frame):
    view = EventsView(frame, rows=5)
    view.only.value = "SOCKET_RCVBUFF"
    rows = re.findall(r"<tr><td>", view.table.value)
    assert len(rows) == 1 and "1052" in view.table.value and "<caption>1 events" in view.table.value
    view.only.value = "(all)"
    view.rows.value = 5
    assert view.table.value.count("<tr><td>") == 4


def test_bytes_are_hex_in_a_fixed_width_cell_that_scrolls(frame):
    table = frame_table_html(frame)
    cell = '<code style="display:block;max-width:26em;overflow-x:auto;white-space:nowrap">'
    assert cell + "45 00 " * 19 + "45 00</code>" in table  # all 40 bytes, on one line
    assert cell + "ff ff ff</code>" in table


def test_time_axis_unit_fits_the_span_and_every_bar_is_labelled():
    from bpfnb.viz.charts import counts_bar, counts_over_time, time_unit

    assert time_unit(4_000) == (1e3, "µs") and time_unit(2.5e9) == (1e9, "s") and time_unit(0) == (1.0, "ns")
    assert "µs since the first event" in counts_over_time(np.array([1000, 2000, 5000]), "t")
    svg = counts_bar(pd.Series(["lo", "", "lo", None]), "by ifname")
    assert "(empty)" in svg and "—" in svg and ">2<" in svg.replace("</text>", "<")  # counts on the bars


def test_location_is_symbolised_where_kallsyms_shows_addresses(frame):
    from bpfnb.widgets import kallsyms
    from bpfnb.widgets.events import symbolized

    if not kallsyms.available():
        pytest.skip("/proc/kallsyms shows no addresses here (not root, or kptr_restrict)")
    addresses, names = kallsyms._table()
    k = next(i for i in range(len(addresses) - 1) if addresses[i + 1] > addresses[i] + 0x10)
    named = symbolized(frame.assign(location=np.uint64(addresses[k] + 0x10)))
    (text,) = set(named["location"])
    name, offset = text.split("+")
    same_address = {n for a, n in zip(addresses, names, strict=True) if a == addresses[k]}
    assert name in same_address and offset == "0x10"  # aliases share an address


def test_static_render_has_three_charts_and_the_table(frame):
    page = EventsView(frame)._repr_html_()
    assert page.count("<svg") == 3  # over time, by reason, by ifindex
    assert "events by reason" in page and "events over time" in page and "events by ifindex" in page
    assert "<table" in page


def test_an_empty_frame_still_renders(frame):
    page = EventsView(frame.iloc[0:0])._repr_html_()
    assert "no events" in page and "<caption>0 events" in page
