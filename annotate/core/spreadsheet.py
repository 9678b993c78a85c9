"""CSV cells that are safe to open in a spreadsheet (OWASP "CSV injection"): every CSV the project writes goes
through `escape_cell` / `escape_frame`, and `import-ratings` reverses it with `unescape_cell`.

A cell starting with =, +, -, @, tab or carriage return may be evaluated as a formula by Excel or LibreOffice;
prefixing a single quote makes it text. A cell already starting with a quote gets one more, so that removing one
leading quote before any of these characters (the quote included) gives back exactly the original text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The quote itself is escaped too: without it "'=1" and "=1" would both be written as "'=1".
_ESCAPED_STARTS = (*FORMULA_STARTS, "'")


def escape_cell(value: object) -> object:
    """`value` with a single quote in front when it is text starting with =, +, -, @, tab, CR or a quote."""
    if isinstance(value, str) and value.startswith(_ESCAPED_STARTS):
        return "'" + value
    return value


def unescape_cell(value: str) -> str:
    """Undo `escape_cell`: drop one leading quote when the next character is one that `escape_cell` protects."""
    if len(value) >= 2 and value[0] == "'" and value[1] in _ESCAPED_STARTS:
        return value[1:]
    return value


def escape_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` whose text cells and column names are escaped with `escape_cell` (numbers stay numbers)."""
    out = df.copy()
    out.columns = [escape_cell(c) for c in out.columns]
    for i in range(out.shape[1]):
        s = out.iloc[:, i]
        if isinstance(s.dtype, pd.CategoricalDtype):
            out.isetitem(i, s.cat.rename_categories([escape_cell(c) for c in s.cat.categories]))
        elif s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            values = s.to_numpy(dtype=object)
            hit = np.fromiter((isinstance(v, str) and v.startswith(_ESCAPED_STARTS) for v in values), bool, len(values))
            if hit.any():
                values = values.copy()
                values[hit] = ["'" + v for v in values[hit]]
                out.isetitem(i, pd.Series(values, index=s.index, dtype=s.dtype))
    return out
