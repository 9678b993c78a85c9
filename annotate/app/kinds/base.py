"""The interface every study kind implements in the app: its annotate page and its Side by side view.

Each kind is one module of `annotate.app.kinds` holding one `KindPage`, registered in that package's `PAGES` under
the kind's name in `annotate.core.kinds.KINDS`. The Annotate page (pages/annotate.py) is the same for every kind:
progress, the item's heading, the errors and Back / Skip / Submit are drawn there, the item and its answer widgets
by the kind (`draw`), and the walk through the queue is the kind's `Queue` (annotate/app/queue.py).
"""

from __future__ import annotations

from typing import Any

from streamlit.delta_generator import DeltaGenerator

from annotate.app.queue import Queue
from annotate.core.store import Store


class KindPage:
    """One study kind in the app."""

    name: str = ""  # the kind's name in annotate.core.kinds.KINDS
    item_noun: str = "item"  # "Item 3 in your queue"; the finished screen's "items"
    # The widget-key prefix of the radio that number keys tick in the browser (render.keep_shortcuts_after_clicks).
    shortcut_prefix: str = ""

    def queue(self, store: Store, annotator: dict[str, Any]) -> Queue:
        """The annotator's walk through their queue in this browser session."""
        raise NotImplementedError

    def draw(self, queue: Queue, item: dict[str, Any], study: dict[str, Any]) -> DeltaGenerator:
        """Draw the item under its heading and its answer widgets in a form; the form, for the page to add the
        errors and the buttons to."""
        raise NotImplementedError

    def side_by_side(self, store: Store, study: str) -> None:
        """The researcher's Side by side page for a study of this kind, under the page's title and study picker."""
        raise NotImplementedError
