"""The researcher pages (Side by side, Disagreements, Analysis) through Streamlit's runtime (AppTest)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from google.protobuf.json_format import MessageToDict
from streamlit.testing.v1 import AppTest

from annotate.core.store import Store
from tests.analysis.analysis_helpers import RATINGS, fill_store, write_ratings_csv
from tests.annotate.test_app import walk
from tests.helpers import nle, unescape, walk_queue

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "streamlit_app.py"
PAGES = ROOT / "annotate" / "app" / "pages"
PASSWORD = "pilot-admin-pw"


@pytest.fixture
def pilot(monkeypatch: pytest.MonkeyPatch, store: Store, db_path: Path, write_jsonl, tmp_path: Path) -> Store:
    """The app's database holds the rated pilot study (alice and bob on 12 items); admin password set."""
    monkeypatch.setenv("NLE_DB", str(db_path))
    monkeypatch.setenv("NLE_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.delenv("NLE_DEMO", raising=False)
    return fill_store(store, write_jsonl, write_ratings_csv(tmp_path / "r.csv"))


def page(name: str) -> AppTest:
    """The app, signed in as researcher with the admin password, opened on a researcher page."""
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.text_input(key="admin_password").input(PASSWORD)
    at.button(key="admin_sign_in").click().run()
    return at.switch_page(f"annotate/app/pages/{name}.py").run()


def frame_with(at: AppTest, column: str):
    """The first st.dataframe on the page that has `column` (AppTest does not expose dataframe keys)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text] + [c.value for c in at.code]


@pytest.mark.parametrize("name", ["side_by_side", "disagreements", "results"])
def test_pages_are_for_researchers_only(pilot: Store, name: str) -> None:
    # Not routed to anyone but the researcher...
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(f"annotate/app/pages/{name}.py")
    # ...and the page itself stops on require_admin(), even with a crafted admin flag, showing no data.
    # (Run through runpy, as st.navigation runs it, so the repository root stays first on sys.path.)
    direct = AppTest.from_string(f"import runpy\nrunpy.run_path({str(PAGES / (name + '.py'))!r})",
                                 default_timeout=60)
    direct.session_state["is_admin"] = True
    direct.run()
    assert [e.value for e in direct.error] == ["This page is for researchers. Sign in with the admin password."]
    shown = " ".join(texts(direct) + [m.value for m in direct.markdown])
    assert "expl " not in shown and "alice" not in shown and not direct.dataframe and not direct.selectbox


def test_side_by_side_shows_both_explanations_and_answers(pilot: Store) -> None:
    at = page("side_by_side")
    assert not at.exception
    assert at.selectbox(key="sbs_a").value == "full_ft" and at.selectbox(key="sbs_b").value == "att_q+layer_norm"
    shown = texts(at)
    # Five samples rated under both; both explanations of esnli/s1 side by side, and each annotator's answer.
    assert "expl esnli/s1 by full_ft" in shown and "expl esnli/s1 by att_q+layer_norm" in shown
    assert "alice: Weak no — tags: hallucination" in shown and "bob: No — tags: hallucination" in shown
    assert "5 samples" in [c.value for c in at.caption]
    # The note about samples rated under one configuration only, names shown literally.
    assert any("rated on different samples" in i.value and r"att\_q" in i.value for i in at.info)
    assert [m.value for m in at.metric][:1] == ["5"]


def test_side_by_side_filters(pilot: Store) -> None:
    at = page("side_by_side")
    at.checkbox(key="sbs_disagree").check().run()
    shown = texts(at)
    # Annotators disagree on esnli s1 (att), s2 (full_ft), ecqa q1 (full_ft), q2 (att); they agree on ecqa q3.
    assert "4 samples" in [c.value for c in at.caption]
    assert "expl ecqa/q3 by full_ft" not in shown and "expl ecqa/q1 by full_ft" in shown
    at.selectbox(key="sbs_dataset").select("ecqa").run()
    assert "2 samples" in [c.value for c in at.caption]
    assert not any(t.startswith("esnli ·") for t in texts(at))


def test_disagreements_page_records_an_adjudication(pilot: Store) -> None:
    at = page("disagreements")
    assert not at.exception
    assert any(t.startswith("5 items where annotators disagree; 0 adjudicated") for t in texts(at))
    item = at.selectbox(key="dis_item")
    labels = list(item.options)  # as shown: "dataset / sample / config"
    assert set(labels) == {"esnli / s2 / full_ft", "esnli / s1 / att_q+layer_norm", "esnli / s4 / att_q+layer_norm",
                           "ecqa / q1 / full_ft", "ecqa / q2 / att_q+layer_norm"}
    item.select_index(labels.index("esnli / s2 / full_ft")).run()
    assert "expl esnli/s2 by full_ft" in texts(at)
    assert "alice: Weak yes — tags: none" in texts(at) and "bob: Weak no — tags: inaccurate" in texts(at)
    item_id = at.selectbox(key="dis_item").value
    at.radio(key=f"dis_final_{item_id}").set_value("weak_yes")
    at.selectbox(key=f"dis_kind_{item_id}").select("position")
    at.text_area(key=f"dis_note_{item_id}").input("scale read differently")
    at.button(key="dis_save").click().run()
    assert not at.exception
    adj = pilot.adjudications_frame("pilot")
    assert adj[["sample_id", "config", "final_rating", "kind", "note", "decided_by"]].values.tolist() == [
        ["s2", "full_ft", "weak_yes", "position", "scale read differently", "researcher"]]
    assert any(t.startswith("5 items where annotators disagree; 1 adjudicated") for t in texts(at))
    counts = frame_with(at, "kind").set_index("kind")["count"].to_dict()
    assert counts == {"perception": 0, "position": 1, "expectation": 0, "other": 0}


def test_analysis_page_shows_tables_and_downloads(pilot: Store) -> None:
    at = page("results")
    assert not at.exception
    table = frame_with(at, "esnli")
    assert table.loc["full_ft", "esnli"] == "50.0 (0.57)"
    downloads = [b.proto.label for b in at.get("download_button")]
    assert sorted(downloads) == sorted(["report.html", "agreement.json", "scores.csv", "shortcomings.csv", "disagreements.csv"])
    comparison = frame_with(at, "value")
    assert "3 / 0 / 2" in comparison["value"].tolist()


@pytest.mark.parametrize("name, key", [("results", "analysis_a"), ("side_by_side", "sbs_a")])
def test_gold_is_never_offered_for_comparison(pilot: Store, tmp_path: Path, name: str, key: str) -> None:
    gold = {("esnli", "s1", "gold"): {"alice": ("yes", ""), "bob": ("yes", "")}}
    pilot.import_ratings(write_ratings_csv(tmp_path / "gold.csv", gold), "pilot")
    at = page(name)
    assert not at.exception
    assert at.selectbox(key=key).options == ["full_ft", "att_q+layer_norm"]


def test_analysis_page_gives_the_reasons_for_n_a_below_the_agreement_table(pilot: Store, tmp_path: Path) -> None:
    same = {("sbic", s, "full_ft"): {"alice": ("yes", ""), "bob": ("yes", "")} for s in ("x1", "x2")}
    pilot.import_ratings(write_ratings_csv(tmp_path / "same.csv", same), "pilot")
    at = page("results")
    assert not at.exception
    table = frame_with(at, "FEB κ (items)")
    assert "n/a [1]" in table["κ"].tolist()
    captions = [c.value.replace("\\", "") for c in at.caption]  # shown Markdown-escaped
    assert any(c.startswith("[1] undefined: both annotators gave every item the same single answer") for c in captions)


def test_analysis_page_shows_n_a_where_a_kappa_is_undefined(pilot: Store, tmp_path: Path) -> None:
    carol = {("esnli", "s1", "full_ft"): {"carol": ("yes", "")}}  # as alice and bob: κ with either is undefined
    pilot.import_ratings(write_ratings_csv(tmp_path / "carol.csv", carol), "pilot")
    at = page("results")
    assert not at.exception
    tags = frame_with(at, "given_by_alice").set_index("tag")
    # Nobody gave "contradiction": its κ is undefined, shown as n/a (with the reason), never None.
    assert tags.loc["contradiction", "kappa"] == "n/a" and "undefined" in tags.loc["contradiction", "reason"]
    assert tags.loc["nonsensical", "kappa"] == "1.000"
    pairwise = frame_with(at, "carol")  # three annotators: the pairwise κ matrix
    assert pairwise.loc["alice", "carol"] == "n/a" and pairwise.loc["carol", "carol"] == "1.000"
    assert pairwise.loc["alice", "bob"] not in ("n/a", "1.000")
    captions = [c.value.replace("\\", "") for c in at.caption]
    assert any("% agreement is the mean over every annotator pair with an item rated by both" in c for c in captions)


# -- names and texts from files and workers, on every researcher page ------------------------------------------------

RTL = "\u202e"
IMAGE = "![x](http://127.0.0.1:9/t.png)"  # a worker id that made the researcher's browser fetch the URL
BONUS = "[Click to claim bonus](https://evil.example/x)"  # a worker id that became a live link
HOSTILE_STUDY = "pilot [s](https://evil.example/s)"
HOSTILE = {"alice": IMAGE, "bob": BONUS, "full_ft": f"full{RTL}ft", "att_q+layer_norm": "[att](https://evil.example/c)",
           "ecqa": f"ec{RTL}qa"}
# What markdown turns into a link or an image: [text](url) and ![alt](url) unescaped, and (GFM autolink literals,
# found in the decoded text whatever the escapes) bare URLs and e-mail addresses; inline code is never either.
UNESCAPED_LINK = re.compile(r"(?<!\\)\]\((?!\))|(?<!\\)!\[")
AUTOLINK = re.compile(r"https?://|www\.|@", re.IGNORECASE)
CODE_SPAN = re.compile(r"(`+).+?\1(?!`)")


def live_markdown(markdown: str) -> bool:
    outside_code = CODE_SPAN.sub(" ", markdown)
    return bool(UNESCAPED_LINK.search(outside_code) or AUTOLINK.search(re.sub(r"\\(.)", r"\1", outside_code)))


def _strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{where}.{k}" if where else k)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, where)


def shown_strings(at: AppTest) -> Iterator[tuple[str, str, str]]:
    """(element type, field, string) of every string the page sends the browser, dataframe cells and headers
    included."""
    for el in walk(at):
        proto = getattr(el, "proto", None)
        if proto is not None and el.type != "arrow_data_frame":
            for field, value in _strings(MessageToDict(proto)):
                yield el.type, field, value
    for frame in at.dataframe:
        df = frame.value
        for value in map(str, [*df.columns, *df.index, *df.to_numpy().ravel()]):
            yield "dataframe", "cell", value


# Strings Streamlit draws as markdown: message bodies, captions, and every label and tooltip.
MARKDOWN_FIELDS = {"body", "label", "help"}
# What the researcher types into a field and gets back as typed (the study to import into).
EDITABLE_FIELDS = {"value", "default"}


def assert_literal(at: AppTest, where: str) -> None:
    assert not at.exception, at.exception
    for kind, field, value in shown_strings(at):
        if field.rsplit(".", 1)[-1] in EDITABLE_FIELDS and kind in ("text_input", "text_area"):
            continue
        assert RTL not in value, f"{where}: U+202E drawn raw in {kind}.{field}: {value!r}"
        if field.rsplit(".", 1)[-1] in MARKDOWN_FIELDS and kind not in ("text", "code"):
            assert not live_markdown(value), f"{where}: a link or image in {kind}.{field}: {value!r}"


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch, store: Store, db_path: Path, write_jsonl, tmp_path: Path) -> Store:
    """The pilot study (under a name holding a markdown link) rated by workers whose ids are a markdown image and
    a markdown link and by a third annotator with a U+202E in their name, over configurations, a dataset, sample
    ids, inputs and explanations holding U+202E and markdown."""
    monkeypatch.setenv("NLE_DB", str(db_path))
    monkeypatch.setenv("NLE_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.delenv("NLE_DEMO", raising=False)
    ratings = {(HOSTILE.get(d, d), f"{s}{RTL}", HOSTILE[c]): {HOSTILE[w]: v for w, v in by.items()} | {
        f"car{RTL}ol": by["alice"]} for (d, s, c), by in RATINGS.items()}
    lines = [nle(d, s, c, explanation=f"expl{RTL} [more](https://evil.example/e) {d}/{s}",
                 input={"text": f"in{RTL}put ![i](http://127.0.0.1:9/i.png)"}) for d, s, c in ratings]
    store.import_nles(write_jsonl(lines), HOSTILE_STUDY)
    store.import_ratings(write_ratings_csv(tmp_path / "r.csv", ratings), HOSTILE_STUDY)
    return store


def test_every_researcher_page_draws_hostile_names_literally(hostile: Store) -> None:
    at = page("researcher")
    assert_literal(at, "Researcher")
    assert BONUS in [r for r in frame_with(at, "annotator")["annotator"]]
    # Adding an annotator whose name is a link, then a new code for the worker whose id is one: the messages
    # name them, escaped.
    at.text_input(key="new_annotator").input(f"{BONUS} new{RTL}")
    at.button(key="add_annotator").click().run()
    assert_literal(at, "Researcher, after adding an annotator")
    assert [unescape(s.value) for s in at.success][:1] == [
        f"Added {BONUS} new⟦U+202E⟧. Their access code is shown only now; give it to them:"]
    next(s for s in at.selectbox if s.label == "Issue a new access code for").select(BONUS)
    next(b for b in at.button if b.label.startswith("Issue new code")).click().run()
    assert_literal(at, "Researcher, after a new code")
    assert [unescape(s.value) for s in at.success] == [f"New access code for {BONUS}, shown only now:"]

    for name, key in (("results", "analysis_study"), ("side_by_side", "sbs_study"), ("disagreements", "dis_study")):
        at = page(name)
        assert at.selectbox(key=key).value == HOSTILE_STUDY
        assert_literal(at, name)
    shown = " ".join(texts(page("side_by_side")))
    assert "full⟦U+202E⟧ft — predicted" in shown and f"{IMAGE}: " in shown and "car⟦U+202E⟧ol: " in shown
    at = page("disagreements")
    assert any("ec⟦U+202E⟧qa / " in o for o in at.selectbox(key="dis_item").options)
    at.button(key="dis_save").click().run()
    assert_literal(at, "Disagreements, after saving")
    assert any(s.value.startswith("Saved the adjudication of ") for s in at.success)


def test_the_pairwise_side_by_side_view_draws_hostile_names_literally(monkeypatch: pytest.MonkeyPatch, store: Store,
                                                                      db_path: Path, write_jsonl) -> None:
    monkeypatch.setenv("NLE_DB", str(db_path))
    monkeypatch.setenv("NLE_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.delenv("NLE_DEMO", raising=False)
    a, b = HOSTILE["full_ft"], HOSTILE["att_q+layer_norm"]
    lines = [nle(f"d{RTL}s", f"s{i}{RTL}", cfg, explanation=f"expl{RTL} ![e](http://127.0.0.1:9/e.png) {i}",
                 input={"text": f"in{RTL}put"}) for i in range(4) for cfg in (a, b)]
    store.import_pairwise(write_jsonl(lines), a, b, HOSTILE_STUDY)
    for name in (IMAGE, f"car{RTL}ol"):
        store.add_annotator(name, HOSTILE_STUDY)
        aid = next(x["id"] for x in store.annotators(HOSTILE_STUDY) if x["name"] == name)
        for n, position in enumerate(walk_queue(store, aid)):
            item = store.annotator_pair(aid, position)
            store.submit_preference(aid, item["item_id"], ("1", "2", "tie")[n % 3], tags_1=["hallucination"])
    at = page("side_by_side")
    assert_literal(at, "Side by side, pairwise")
    shown = " ".join(texts(at))
    assert "full⟦U+202E⟧ft wins: " in shown and f"{IMAGE}: " in shown and "car⟦U+202E⟧ol: " in shown


def test_analysis_page_shows_the_power_of_the_chosen_pair(pilot: Store) -> None:
    from analysis.power import PowerSettings, pilot_power
    from analysis.report import analyse_store
    from analysis.report.power import power_table

    at = page("results")
    assert not at.exception and not any("power" in str(d.value.columns.tolist()) for d in at.dataframe)
    at.toggle(key="analysis_power").set_value(True).run()
    at.number_input(key="power_sims").set_value(200).run()
    assert not at.exception
    shown = frame_with(at, "n for 80%")
    # The same numbers as the analysis functions give for this pair, seed and settings.
    a = analyse_store(pilot, "pilot")
    expected = power_table(pilot_power(a.prepared, "full_ft", "att_q+layer_norm", PowerSettings(n_sim=200)))
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), expected)
    assert shown["dataset"].tolist() == ["esnli", "ecqa", "overall"]
    assert shown["test"].tolist() == ["Mann–Whitney U", "Wilcoxon signed-rank", "Mann–Whitney U"]
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    power_chart = next(c for c in charts if c["layout"]["title"]["text"].startswith("Power to tell"))
    assert [t["name"] for t in power_chart["data"]] == ["esnli", "ecqa", "overall"]
    # Another pair, a chosen difference and one rating per sample: the table follows.
    at.selectbox(key="analysis_a").select("att_q+layer_norm").run()
    at.selectbox(key="analysis_b").select("full_ft").run()
    at.number_input(key="power_effect").set_value(40.0).run()
    at.number_input(key="power_raters").set_value(1).run()
    shown = frame_with(at, "n for 80%")
    expected = power_table(pilot_power(a.prepared, "att_q+layer_norm", "full_ft", PowerSettings(
        n_sim=200, effect_points=40.0, raters=(1,))))
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), expected)
    assert set(shown["simulated a − b ×100"]) == {"40.0"} and set(shown["ratings per sample"]) == {"1"}
