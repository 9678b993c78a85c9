"""Plotly figures that show every string literally: plotly.js reads tags such as <a href=…>, <b> and <br> in
labels, names and titles, so a configuration named `<a href=…>` would become a live link in a chart."""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go

from annotate.core.text import show_controls

_TRACE_TEXT = ("x", "y", "name", "text", "labels")


def literal_text(value: Any) -> Any:
    """A string HTML-escaped (plotly.js shows the entities as the original characters) with bidi controls made
    visible; anything else unchanged."""
    return html.escape(show_controls(value), quote=False) if isinstance(value, str) else value


def _literal_seq(values: Any) -> Any:
    if values is None or isinstance(values, str):
        return literal_text(values)
    try:
        items = list(values)
    except TypeError:
        return values
    return [literal_text(v) for v in items] if any(isinstance(v, str) for v in items) else values


def literal_figure(fig: go.Figure) -> go.Figure:
    """Escape the data strings (categories, trace names, texts) and titles of a figure built from study data."""
    for trace in fig.data:
        for attr in _TRACE_TEXT:
            if attr in trace and trace[attr] is not None:
                trace[attr] = _literal_seq(trace[attr])
    title = fig.layout.title.text
    if title:
        fig.layout.title.text = literal_text(title)
    return fig
