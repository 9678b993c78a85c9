"""Text from files and users, made safe to show: bidirectional-control characters become visible marks."""

from __future__ import annotations

import re

# Characters that reorder the text around them (U+202E turns "txt.exe" into "exe.txt" on screen) or are invisible
# marks; shown as a visible tag such as ⟦U+202E⟧ so that what is drawn is what is stored.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")


def show_controls(text: str) -> str:
    """`text` with every bidirectional control character replaced by a visible ⟦U+XXXX⟧ tag."""
    return _BIDI.sub(lambda m: f"⟦U+{ord(m.group()):04X}⟧", str(text))
