"""Figures and tables that show every string literally: plotly.js reads tags such as <a href=…>, <b> and <br> in
labels, names and titles, so a configuration named `<a href=…>` would become a live link in a chart; and in both,
bidirectional control characters are made visible (⟦U+202E⟧) by the one function that does so."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
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


def _visible(value: Any) -> Any:
    return show_controls(value) if isinstance(value, str) else value


def _visible_index(index: pd.Index) -> pd.Index:
    names = [_visible(n) for n in index.names]
    if isinstance(index, pd.MultiIndex):
        return pd.MultiIndex.from_tuples([tuple(_visible(v) for v in key) for key in index], names=names)
    if index.dtype == object or isinstance(index.dtype, (pd.CategoricalDtype, pd.StringDtype)):
        return pd.Index([_visible(v) for v in index], dtype=object, name=names[0])
    return index.rename(names[0])


def literal_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of a table built from study data with bidi controls made visible in every text cell, row label and
    column header: st.dataframe and report.html draw them, and a U+202E there would reorder what the reader sees."""
    out = df.copy()
    for i in range(out.shape[1]):
        column = out.iloc[:, i]
        if column.dtype == object or isinstance(column.dtype, (pd.CategoricalDtype, pd.StringDtype)):
            out.isetitem(i, column.astype(object).map(_visible))
    out.index = _visible_index(out.index)
    out.columns = _visible_index(out.columns)
    return out
