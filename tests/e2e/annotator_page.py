"""What a person does on the app's pages, as Playwright steps: sign in, read the item, answer, submit.

Each action waits for the visible outcome (Streamlit reruns asynchronously), never for a fixed time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from playwright.sync_api import Page, expect

QUESTION = "Does the explanation justify the answer?"
RATING_LABEL = {"yes": "Yes", "weak_yes": "Weak yes", "weak_no": "Weak no", "no": "No"}
RATING_KEY = {"yes": "1", "weak_yes": "2", "weak_no": "3", "no": "4"}
CONFIG_NAMES = ("full_ft", "att_q", "layer_norm", "gold")
_ITEM_CAPTION = re.compile(r"^Item (\d+)\b")  # "Item 3 in your queue", position + 1


@dataclass
class Shown:
    """The item on an annotator's screen, as read from the page."""

    position: int  # 0-based, from the caption "Item N ..."
    texts: list[str]  # every literal text block: the input fields, the predicted answer, the explanation
    checked_rating: str | None
    checked_tags: list[str] = field(default_factory=list)
    comment: str = ""

    @property
    def explanation(self) -> str:
        return self.texts[-1]

    @property
    def predicted_label(self) -> str:
        return self.texts[-2]


def sign_in(page: Page, url: str, name: str, code: str) -> None:
    """Open the app (or use the sign-in page already shown) and sign in as an annotator."""
    if url:
        page.goto(url)
    page.get_by_label("Name").fill(name)
    page.get_by_label("Access code").fill(code)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text(QUESTION)).to_be_visible()


_SETTLED = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app && app.getAttribute("data-test-script-state") === "notRunning"
      && !document.querySelector('[data-stale="true"]');
}"""


def settle(page: Page) -> None:
    """Wait until the script run has finished and no element from the previous run is left on screen.

    Streamlit redraws element by element: without this a new caption can sit above the old item's text.
    """
    page.wait_for_function(_SETTLED)


def wait_for_item(page: Page, position: int | None = None) -> None:
    caption = page.get_by_text(_ITEM_CAPTION)
    if position is None:
        expect(caption).to_be_visible()
    else:
        expect(caption).to_have_text(re.compile(rf"^Item {position + 1}\b"))
    settle(page)
    # As a person would: keys 1–4 act on the answer radio on screen, so wait until it is there. Right after sign-in
    # on a busy machine the caption has been seen settled a moment before the form below it was drawn.
    expect(page.get_by_role("radio", name=RATING_LABEL["yes"], exact=True)).to_be_visible()


def shown(page: Page, tags: list[str]) -> Shown:
    """Read the item on screen: its position, literal texts, and the state of the answer widgets."""
    settle(page)
    m = _ITEM_CAPTION.match(page.get_by_text(_ITEM_CAPTION).inner_text())
    assert m, "no 'Item N' caption on the page"
    rating = next((r for r, label in RATING_LABEL.items()
                   if page.get_by_role("radio", name=label, exact=True).is_checked()), None)
    return Shown(
        position=int(m.group(1)) - 1,
        texts=page.locator('[data-testid="stMain"] [data-testid="stText"]').all_inner_texts(),
        checked_rating=rating,
        checked_tags=[t for t in tags if page.get_by_role("checkbox", name=t, exact=True).is_checked()],
        comment=page.get_by_label("Comment (optional)").input_value(),
    )


def progress(page: Page) -> str:
    return page.locator('[data-testid="stProgress"]').inner_text().strip()


def leave_field(page: Page) -> None:
    """Click on plain text, as a person does after typing, so the next key press is not typed into the field."""
    page.get_by_text("Shortcoming tags", exact=True).click()


def answer(page: Page, rating: str, tags: list[str], comment: str = "") -> None:
    """Pick the answer with its key (1–4), tick tags with the mouse, type the comment: not yet submitted."""
    page.keyboard.press(RATING_KEY[rating])
    expect(page.get_by_role("radio", name=RATING_LABEL[rating], exact=True)).to_be_checked()
    for tag in tags:
        box = page.get_by_role("checkbox", name=tag, exact=True)
        if not box.is_checked():
            page.get_by_text(tag, exact=True).click()
        expect(box).to_be_checked()
        settle(page)
    if comment:
        page.get_by_label("Comment (optional)").fill(comment)
        leave_field(page)


def submit_with_enter(page: Page, next_position: int, answered: int, total: int) -> None:
    """Press Enter (right after a mouse click on a tag, too) and wait for the next item and the new progress."""
    page.keyboard.press("Enter")
    wait_for_item(page, next_position)
    expect(page.locator('[data-testid="stProgress"]')).to_have_text(f"{answered} of {total}")
