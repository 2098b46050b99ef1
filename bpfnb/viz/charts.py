"""Small static charts as SVG text, for widgets and exported notebooks.

Figures are made with matplotlib's object interface (no pyplot state), so
they render the same in a kernel, a test or an HTML export.
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

WIDTH_IN, HEIGHT_IN = 4.2, 2.6


def _svg(fig: Figure) -> str:
    out = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text as text: smaller, selectable
        FigureCanvasSVG(fig).print_svg(out)
    text = out.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog: inline in HTML


def _figure(title: str) -> tuple[Figure, object]:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    return fig, ax


def counts_bar(values: pd.Series, title: str, *, top: int = 12) -> str:
    """Horizontal bars of the ``top`` most frequent values (the rest summed as 'other')."""
    counts = values.astype("object").fillna("—").astype(str).replace("", "(empty)").value_counts()
    if len(counts) > top:
        counts = pd.concat([counts.iloc[:top], pd.Series({"other": counts.iloc[top:].sum()})])
    fig, ax = _figure(title)
    if counts.empty:
        ax.text(0.5, 0.5, "no events", ha="center", va="center", transform=ax.transAxes)
    else:
        bars = ax.barh(counts.index[::-1], counts.to_numpy()[::-1], color="#4c72b0")
        ax.bar_label(bars, fontsize=7, padding=2)  # every bar says its count
        ax.set_xlabel("events", fontsize=8)
        ax.margins(x=0.15)
    return _svg(fig)


# The time axis's unit: the largest in which the events' span is at least 1.
TIME_UNITS = ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns"))


def time_unit(span_ns: float) -> tuple[float, str]:
    """(nanoseconds per unit, unit name) for a span of ``span_ns``."""
    return next(((scale, name) for scale, name in TIME_UNITS if span_ns >= scale), TIME_UNITS[-1])


def counts_over_time(time_ns: np.ndarray, title: str, *, bins: int = 40) -> str:
    """Event counts per time bin since the first event, in the unit that fits the span."""
    fig, ax = _figure(title)
    times = np.asarray(time_ns, dtype=np.float64)
    if times.size == 0:
        ax.text(0.5, 0.5, "no events", ha="center", va="center", transform=ax.transAxes)
    else:
        offsets = times - times.min()
        scale, unit = time_unit(offsets.max())
        counts, edges = np.histogram(offsets / scale, bins=bins if offsets.max() > 0 else 1)
        ax.stairs(counts, edges, fill=True, color="#55a868")
        ax.set_xlabel(f"{unit} since the first event", fontsize=8)
        ax.set_ylabel("events", fontsize=8)
    return _svg(fig)
