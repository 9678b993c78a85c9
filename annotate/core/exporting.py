"""The ratings export: one function writes it, for `nle-annotate export` and the researcher page's download.
CSV cells are escaped for spreadsheets (annotate.core.spreadsheet) unless `raw`."""

from __future__ import annotations

import csv

import pandas as pd

from annotate.core.spreadsheet import escape_frame

EXPORT_COLUMNS = [
    "dataset", "sample_id", "config", "annotator", "rating", "score", "tags", "comment", "seconds", "submitted_at",
]
FORMATS = ("csv", "jsonl")


def ratings_bytes(df: pd.DataFrame, fmt: str = "csv", columns: list[str] | None = None, *, raw: bool = False) -> bytes:
    """One row per rating as CSV or JSONL (UTF-8), the columns of EXPORT_COLUMNS (or `columns`) in that order. CSV
    text cells that a spreadsheet could run as a formula get a leading quote unless `raw`; JSONL is written as is."""
    df = df[columns or EXPORT_COLUMNS]
    if fmt == "csv":
        if not raw:
            # Comments and model outputs are untrusted; import-ratings removes exactly this prefix again.
            df = escape_frame(df)
        # Python's csv writer leaves a bare "\r" unquoted under QUOTE_MINIMAL with "\n" line ends, which
        # splits the row on reading; quote every field in the rare file that has one.
        text = df.select_dtypes(exclude="number")
        has_cr = any(text[c].astype(str).str.contains("\r", regex=False).any() for c in text.columns)
        return df.to_csv(index=False, quoting=csv.QUOTE_ALL if has_cr else csv.QUOTE_MINIMAL,
                         lineterminator="\n").encode("utf-8")
    if fmt == "jsonl":
        return df.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")
    raise ValueError(f"unknown export format {fmt!r}; expected {' or '.join(FORMATS)}")
