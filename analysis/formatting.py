"""The one way a figure is shown as text, in report.html, the CSV files of a pairwise study and the app: so that a κ,
a p-value, a mean ×100 or an undefined value reads the same wherever it appears."""

from __future__ import annotations

import math
from numbers import Real
from typing import Literal

NA = "n/a"
# "f": `digits` decimals; "g": `digits` significant digits; "%": a share as a percentage with `digits` decimals.
Style = Literal["f", "g", "%"]


def fmt(value: object, digits: int = 3, *, scale: float = 1, style: Style = "f", reason: str | None = None) -> str:
    """`value` × `scale` as text in `style`; "n/a" when it is undefined (None or NaN), followed by "(reason)" when a
    reason is given. Anything that is not a number is shown as its text."""
    if value is None or (isinstance(value, Real) and math.isnan(value)):
        return NA if reason is None else f"{NA} ({reason})"
    if isinstance(value, Real) and not isinstance(value, bool):
        return f"{scale * value:.{digits}{style}}"
    return str(value)


def x100(value: object, digits: int = 1) -> str:
    """A score or share in [0, 1] on the 0-100 scale of the report's tables, one decimal."""
    return fmt(value, digits, scale=100)
