"""``EventsView``: traced events as a sortable, filterable table with plots."""

from __future__ import annotations

import html

import ipywidgets as w
import pandas as pd

from ..viz.charts import counts_bar, counts_over_time

# Columns plotted as "events by ...", in order of preference; those present are used.
BY_COLUMNS = ("reason", "ifname", "ifindex", "l4proto", "protocol", "cpu")
TIME_COLUMN = "time_ns"
LOCATION_COLUMN = "location"  # a kernel return address: named from /proc/kallsyms
HEX_CELL_EM = 26  # packet bytes scroll sideways inside a cell this wide, one line per row


def _cell(value) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value).hex(" ")
        return (f'<code style="display:block;max-width:{HEX_CELL_EM}em;overflow-x:auto;'
                f'white-space:nowrap">{text}</code>')
    if pd.isna(value) if not isinstance(value, list | tuple) else False:
        return ""
    return html.escape(str(value))


def symbolized(frame: pd.DataFrame) -> pd.DataFrame:
    """``location`` as ``function+0xoff`` where /proc/kallsyms names it (else unchanged)."""
    from .kallsyms import available, symbolize

    if LOCATION_COLUMN not in frame.columns or not available():
        return frame
    names = frame[LOCATION_COLUMN].map(lambda a: symbolize(a) or f"{int(a):#x}")
    return frame.assign(**{LOCATION_COLUMN: names})


def frame_table_html(frame: pd.DataFrame, *, rows: int = 50) -> str:
    """The first ``rows`` rows as an HTML table (bytes as hex scrolling in a fixed-width
    cell, ``location`` symbolised)."""
    shown = symbolized(frame.head(rows))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False, name=None)
    )
    more = len(frame) - len(shown)
    foot = f"<caption>{len(frame)} events" + (f", first {len(shown)} shown" if more > 0 else "") + "</caption>"
    return (
        '<div style="max-width:100%;overflow-x:auto">'
        '<table class="bpfnb-events" style="font-size:12px;border-collapse:collapse;white-space:nowrap">'
        f"{foot}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


class EventsView(w.VBox):
    """Events (one row per sample) with sort, a filter on one column, and plots.

    ``frame`` is any events DataFrame; for the drops frame the plots are
    counts over time and by drop reason, interface and protocol.
    """

    def __init__(self, frame: pd.DataFrame, *, rows: int = 50, filter_column: str | None = None):
        self.frame = frame
        self.filter_column = filter_column or next((c for c in BY_COLUMNS if c in frame.columns), None)
        columns = [c for c in frame.columns if c != "packet"]
        self.sort_by = w.Dropdown(options=["(arrival)", *columns], value="(arrival)", description="sort by")
        self.descending = w.ToggleButton(value=False, description="descending", icon="sort-amount-desc")
        values = ["(all)"]
        if self.filter_column:
            values += sorted(map(str, frame[self.filter_column].dropna().unique()))
        self.only = w.Dropdown(options=values, value="(all)", description=self.filter_column or "filter",
                               disabled=self.filter_column is None)
        self.rows = w.IntSlider(value=rows, min=5, max=500, step=5, description="rows")
        self.table = w.HTML()
        self.plots = w.HTML()
        for control in (self.sort_by, self.descending, self.only, self.rows):
            control.observe(self._update, "value")
        super().__init__([w.HBox([self.sort_by, self.descending, self.only, self.rows]), self.plots, self.table])
        self._update()

    def view(self) -> pd.DataFrame:
        """The events as currently filtered and sorted."""
        frame = self.frame
        if self.filter_column and self.only.value != "(all)":
            frame = frame[frame[self.filter_column].astype(str) == self.only.value]
        if self.sort_by.value != "(arrival)":
            frame = frame.sort_values(self.sort_by.value, ascending=not self.descending.value, kind="stable")
        return frame

    def plots_html(self, frame: pd.DataFrame | None = None) -> str:
        frame = self.view() if frame is None else frame
        charts = []
        if TIME_COLUMN in frame.columns:
            charts.append(counts_over_time(frame[TIME_COLUMN].to_numpy(), "events over time"))
        for column in [c for c in BY_COLUMNS if c in frame.columns][:3]:
            charts.append(counts_bar(frame[column], f"events by {column}"))
        cells = "".join(f'<div style="flex:0 0 auto">{svg}</div>' for svg in charts)
        return f'<div style="display:flex;flex-wrap:wrap;gap:8px">{cells}</div>'

    def _update(self, _change=None) -> None:
        frame = self.view()
        self.table.value = frame_table_html(frame, rows=self.rows.value)
        self.plots.value = self.plots_html(frame)

    def _repr_html_(self) -> str:
        return self.plots.value + self.table.value

    def __str__(self) -> str:
        return f"EventsView({len(self.frame)} events, {len(self.frame.columns)} columns)"
