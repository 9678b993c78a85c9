"""How things are drawn: item inputs by dataset, literal text from files, guidelines, plain-text summaries.

Everything that comes from an NLE file or a user is shown with `st.text`, which never interprets markdown or
HTML; labels we must build from such text go through `md_escape`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import streamlit as st

from annotate.core.scale import RATING_LABELS
from annotate.core.text import show_controls

# How each known dataset's input is laid out: (field in `input`, label shown).
INPUT_LAYOUT: dict[str, list[tuple[str, str]]] = {
    "esnli": [("premise", "Premise"), ("hypothesis", "Hypothesis")],
    "ecqa": [("question", "Question"), ("choices", "Choices")],
    "sbic": [("post", "Post")],
    "comve": [("sent0", "Statement 1"), ("sent1", "Statement 2")],
}
# Shown above the input of every item of these datasets, before the text itself (FEB's questionnaire warns likewise).
CONTENT_NOTES: dict[str, str] = {
    "sbic": "Content note: this post comes from the internet and may be offensive, hateful or rude.",
}


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return json.dumps(value, ensure_ascii=False)


def input_fields(dataset: str, inputs: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, literal text) pairs of an item's input: the dataset's layout first, then any other field by name."""
    out: list[tuple[str, str]] = []
    layout = INPUT_LAYOUT.get(dataset, [])
    for key, label in layout:
        if key not in inputs:
            continue
        value = inputs[key]
        if key == "choices" and isinstance(value, list):
            text = "\n".join(f"({chr(ord('A') + i)}) {_as_text(c)}" for i, c in enumerate(value))
        else:
            text = _as_text(value)
        out.append((label, text))
    shown = {key for key, _ in layout}
    out.extend((key, _as_text(value)) for key, value in inputs.items() if key not in shown)
    return out


def progress_text(answered: int, total: int) -> str:
    """The progress line, e.g. "37 of 120"."""
    return f"{answered} of {total}"


# What is drawn of one text from a file: the browser takes seconds to lay out a 200,000-character line without
# spaces, so longer texts are cut here with a note (the store keeps the full text; exports carry it).
MAX_DRAWN_CHARS = 10_000


def drawn_text(text: str) -> str:
    """The text as drawn: bidi controls made visible, cut after MAX_DRAWN_CHARS with a note of what is left out."""
    text = str(text)
    if len(text) > MAX_DRAWN_CHARS:
        text = text[:MAX_DRAWN_CHARS] + f"\n[… {len(text) - MAX_DRAWN_CHARS:,} more characters not shown]"
    return show_controls(text)


def show_literal(label: str, text: str) -> None:
    """A caption (escaped) over text from the file, shown exactly as written (st.text: no markdown, no HTML)."""
    st.caption(md_escape(label))
    st.text(drawn_text(text))
    if not text.strip():
        st.caption("(empty)")


def show_item(item: dict[str, Any]) -> None:
    """The task input laid out by dataset, the predicted answer and the explanation; all literal."""
    if item["dataset"] in CONTENT_NOTES:
        st.caption(CONTENT_NOTES[item["dataset"]])
    with st.container(border=True):
        for label, text in input_fields(item["dataset"], item["input"]):
            show_literal(label, text)
    show_literal("Predicted answer", item["predicted_label"])
    with st.container(border=True):
        show_literal("Explanation", item["explanation"])


def guidelines_markdown(study: dict[str, Any]) -> str:
    """The study's guidelines as one escaped markdown text: intro, then each answer and each tag with its
    meaning and one example (one element to draw, so the popover costs little on every rerun)."""
    g = study["guidelines"]
    e = md_escape

    def entry(label: str, guide: dict[str, str]) -> str:
        line = f"**{e(label)}**"
        if guide.get("meaning"):
            line += f" — {e(guide['meaning'])}"
        if guide.get("example"):
            line += f"  \n*Example:* {e(guide['example'])}"
        return line

    parts = [e(g["intro"])] if g.get("intro") else []
    parts.append(f"#### The answers\n{e(study['question'])}")
    parts += [entry(RATING_LABELS.get(r, r), g.get("scale", {}).get(r, {})) for r in study["scale"]]
    parts.append("#### Shortcoming tags")
    parts += [entry(t, g.get("tags", {}).get(t, {})) for t in study["tags"]]
    return "\n\n".join(parts)


def show_guidelines(study: dict[str, Any]) -> None:
    """The scale and each shortcoming tag with its meaning and one example, and the guidelines version."""
    st.caption(f"Guidelines version {md_escape(str(study['guidelines_version']))}")
    st.markdown(guidelines_markdown(study))


GUIDELINES_KEY = "_guidelines_open"


def item_head(where: str, answered: bool, notice: str | None, study: dict[str, Any]) -> None:
    """The line over an item: its place in the queue, whether it was answered before, a notice of our own ("Saved.")
    and the Guidelines popover, whose text is drawn only while it is open: drawn into the closed popover on every
    item, it cost the browser time on every item (docs/benchmarks.md)."""
    head = st.container(horizontal=True, horizontal_alignment="distribute", vertical_alignment="center")
    head.caption(" · ".join([where, *(["answered earlier; you may revise it"] if answered else []),
                             *([notice] if notice else [])]))
    guide = head.popover("Guidelines", icon=":material/menu_book:", key=GUIDELINES_KEY, on_change="rerun")
    if guide.open:
        with guide:
            show_guidelines(study)


def tag_help(tag_guide: dict[str, dict[str, str]], tag: str) -> str | None:
    """A tag's tooltip (its meaning from the guidelines), escaped: Streamlit draws tooltips as markdown."""
    meaning = tag_guide.get(tag, {}).get("meaning")
    return md_escape(meaning) if meaning else None


def rating_label(rating: str) -> str:
    """The label shown for a rating value, e.g. "Weak yes"."""
    return RATING_LABELS.get(rating, rating)


def format_input(value: Any) -> str:
    """A task input (dict of fields, list or string) as plain lines "field: value"."""
    if isinstance(value, dict):
        lines = []
        for key, v in value.items():
            if isinstance(v, list):
                v = " | ".join(str(x) for x in v)
            lines.append(f"{key}: {v}")
        return "\n".join(lines) if lines else "(no input stored)"
    if isinstance(value, list):
        return " | ".join(str(x) for x in value)
    return "(no input stored)" if value in (None, "") else str(value)


def answer_line(answer: dict[str, Any]) -> str:
    """'alice: Weak no — tags: inaccurate, one word' for one annotator's answer."""
    tags = ", ".join(answer.get("tags") or []) or "none"
    return f"{answer['annotator']}: {RATING_LABELS.get(answer['rating'], answer['rating'])} — tags: {tags}"


def config_choices(configs: list[str], preferred: tuple[str, str]) -> tuple[int, int]:
    """Default selectbox indexes for two configurations: the preferred pair when present, else the first two."""
    first = configs.index(preferred[0]) if preferred[0] in configs else 0
    second = configs.index(preferred[1]) if preferred[1] in configs else (1 if len(configs) > 1 and first != 1 else 0)
    if second == first and len(configs) > 1:
        second = next(i for i in range(len(configs)) if i != first)
    return first, second


# "/" too: Streamlit's browser side rewrites every ":material/" in the source into an icon before parsing.
_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:/")
# Streamlit's markdown links bare URLs and e-mail addresses (GFM autolink literals) in the decoded text, so
# backslash escapes cannot stop it; a whitespace-free run holding one of these is drawn as inline code instead,
# which is never linked and shows every character as it is.
_AUTOLINK = re.compile(r"https?://|www\.|@", re.IGNORECASE)
_ICON_SOURCE = re.compile(r"(?<=:material)/")
_BACKTICKS = re.compile(r"`+")


def _code_span(text: str) -> str:
    """`text` (no whitespace) as one inline code span: a fence longer than any run of backticks inside it, padded
    with a space on both sides (which markdown removes) when the text starts or ends with a backtick."""
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _literal_run(run: str) -> str:
    if not _AUTOLINK.search(run):
        return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in run)
    # Inside inline code the ":material/" rewrite would still apply: the "/" after it goes between two spans.
    return "\\/".join(_code_span(piece) if piece else "" for piece in _ICON_SOURCE.split(run))


def md_escape(text: str) -> str:
    """Markdown that Streamlit draws as exactly `text` (cut after MAX_DRAWN_CHARS, bidi controls made visible):
    special characters backslash-escaped ("full_ft" stays so), bare URLs and e-mail addresses as inline code so that
    nothing becomes a link or an image. For every name, id or text that st.info/st.success/captions/labels show."""
    shown = show_controls(str(text)[:MAX_DRAWN_CHARS])
    return "".join(_literal_run(part) for part in re.split(r"(\s+)", shown))


# Streamlit ignores shortcut keys while an <input> has focus, and a checkbox or radio keeps focus after a mouse
# click; so "click a tag, press Enter" would do nothing (and Enter on a clicked button would press it again).
# Dropping focus after a *pointer* click fixes both while
# keyboard users (Tab, Space) keep their place. Our own constant script, never built from file content.
_RELEASE_FOCUS_JS = """<script>
// The answer radio of the page on screen (its widget key's prefix); set on every page, read by the key handler.
window.__nleAnswerRadio = "__PREFIX__";
if (!window.__nleReleaseFocus) {
  window.__nleReleaseFocus = true;
  document.addEventListener("pointerup", () => setTimeout(() => {
    const el = document.activeElement;
    const ticked = el && el.tagName === "INPUT" && (el.type === "checkbox" || el.type === "radio");
    if (ticked || (el && el.tagName === "BUTTON")) el.blur();
  }, 0), true);
  // A key pressed before that release ran (Enter at once after a click) would still target the checkbox, where
  // Streamlit ignores shortcuts: hand it on to the page instead.
  document.addEventListener("keydown", (e) => {
    const el = e.target;
    const ticked = el && el.tagName === "INPUT" && (el.type === "checkbox" || el.type === "radio");
    if (!ticked || !e.isTrusted || !["Enter", "1", "2", "3", "4"].includes(e.key)) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    el.blur();
    document.body.dispatchEvent(new KeyboardEvent("keydown", {key: e.key, code: e.code, bubbles: true}));
  }, true);
  // Keys 1-4 tick the answer radio right here in the browser: the radio sits in the item's form, so the key starts
  // no server run and the Enter that follows sends the answer with the tags and comment. Only the answer radio
  // (found by its widget key): a pairwise page also has a rating radio per side above it, which keys must never
  // tick.
  document.addEventListener("keydown", (e) => {
    const el = e.target;
    const typing = el && (el.tagName === "TEXTAREA" || (el.tagName === "INPUT" && el.type !== "checkbox"
                                                        && el.type !== "radio"));
    if (typing || e.ctrlKey || e.metaKey || e.altKey || !["1", "2", "3", "4"].includes(e.key)) return;
    const group = `[data-testid="stMain"] [class*="st-key-${window.__nleAnswerRadio}"]`;
    const radio = document.querySelectorAll(`${group} input[type="radio"]`)[Number(e.key) - 1];
    if (radio && !radio.checked) radio.click();
  }, true);
}
</script>"""
_RADIO_PREFIX = re.compile(r"[A-Za-z_]+")


def keep_shortcuts_after_clicks(answer_radio_prefix: str) -> None:
    """Install (once per browser tab) the focus release that keeps keys 1–4 and Enter working after mouse clicks,
    and keys 1–4 ticking the radio whose widget key starts with `answer_radio_prefix`."""
    if not _RADIO_PREFIX.fullmatch(answer_radio_prefix):  # our own constant; never text from a file
        raise ValueError(f"not a widget key prefix: {answer_radio_prefix!r}")
    st.html(_RELEASE_FOCUS_JS.replace("__PREFIX__", answer_radio_prefix), unsafe_allow_javascript=True)
