"""The frame every study kind's report shares: the self-contained HTML page around its sections, its tables and
notes, agreement.json's encoding, and writing the files into the output folder."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.literal import literal_frame
from annotate.core.text import show_controls

STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table.t{border-collapse:collapse;"
         "margin:1em 0}table.t td,table.t th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
         ".note{background:#fff3cd;padding:.5em}")


def escape(text: str) -> str:
    """Text from the study (names from files) for HTML: bidi controls made visible, then HTML-escaped."""
    return html.escape(show_controls(text))


def note(text: str, element_id: str | None = None) -> str:
    """A highlighted paragraph: something the reader must not miss (a dropped annotator, a design caveat)."""
    attr = "" if element_id is None else f" id='{element_id}'"
    return f"<p class='note'{attr}>{escape(text)}</p>"


def table_html(df: pd.DataFrame, *, index: bool = False, table_id: str | None = None) -> str:
    """A table of the report, every study string shown literally; a missing value reads "n/a"."""
    if index and df.index.name:
        # A named index makes pandas add a second, almost empty header row; put the name in the corner instead.
        df = df.rename_axis(None).rename_axis(df.index.name, axis="columns")
    out = literal_frame(df).to_html(index=index, escape=True, na_rep="n/a", border=0, classes="t")
    if table_id is not None:
        out = out.replace('class="dataframe t"', f'class="dataframe t" id="{table_id}"', 1)
    return out


def page(title: str, sections: Iterable[str]) -> str:
    """report.html: one self-contained page with the report's style around a study kind's sections."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>")


def json_safe(obj: Any) -> Any:
    """`obj` with numpy numbers as Python numbers and every NaN or infinity as None (JSON has neither), through
    nested dicts, lists and tuples."""
    if isinstance(obj, Mapping):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def json_bytes(obj: Any) -> bytes:
    """agreement.json's bytes: indented, UTF-8 as written, no NaN (an undefined figure is null)."""
    return json.dumps(json_safe(obj), indent=2, ensure_ascii=False, allow_nan=False).encode()


def write_files(files: Mapping[str, bytes], out_dir: str | Path) -> list[Path]:
    """Write each file into `out_dir` (created when missing); their paths, in order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        (out / name).write_bytes(data)
        paths.append(out / name)
    return paths
