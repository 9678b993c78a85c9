"""Side ratings of a pairwise study (`--rate-sides`) against hand-worked values: per configuration mean and κ, the
paired test, the preference/rating consistency, per dataset and overall; nle-report's agreement.json keys and
report section; the Side by side page's table (AppTest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score
from streamlit.testing.v1 import AppTest

from analysis.cli import main as report_main
from analysis.pairwise import CONTRACT_KEYS as PAIRWISE_KEYS
from analysis.pairwise import analyse_pairwise_store
from analysis.pairwise_sides import CONSISTENCY_KEYS, CONTRACT_KEYS, SIDE_KEYS
from analysis.tables import level_stats
from annotate.core.scale import RATINGS
from annotate.core.store import Store
from tests.helpers import nle, overlap_all

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "streamlit_app.py"
A, B = "full_ft", "att_q+ln"
PASSWORD = "sides-admin-pw"

# Four pairs, two annotators; each answer: (rating of A, rating of B, preference). Scores: yes 1, weak yes 2/3,
# weak no 1/3, no 0.
#   pair  dataset  x: A         B          pref   y: A         B          pref
#   s1    esnli       yes       weak_no    A         yes       no         A
#   s2    esnli       weak_yes  weak_yes   tie       weak_yes  yes        A    <- y prefers the side rated lower
#   s3    comve       no        weak_yes   B         weak_no   weak_yes   B
#   s4    comve       yes       no         B         yes       no         A    <- x prefers the side rated lower
ANSWERS = {
    "x": {"s1": ("yes", "weak_no", "a"), "s2": ("weak_yes", "weak_yes", "tie"), "s3": ("no", "weak_yes", "b"),
          "s4": ("yes", "no", "b")},
    "y": {"s1": ("yes", "no", "a"), "s2": ("weak_yes", "yes", "a"), "s3": ("weak_no", "weak_yes", "b"),
          "s4": ("yes", "no", "a")},
}
DATASET = {"s1": "esnli", "s2": "esnli", "s3": "comve", "s4": "comve"}


def pair_study(store: Store, write_jsonl, *, rate_sides: bool = True) -> None:
    lines = [nle(DATASET[s], s, c, explanation=f"{c} on {s}") for s in DATASET for c in (A, B)]
    store.import_pairwise(write_jsonl(lines), A, B, "pw", rate_sides=rate_sides)
    overlap_all(store, "pw")  # answer_all reads each annotator's queue by position
    for name in ANSWERS:
        store.add_annotator(name, "pw", code=f"code-{name}")


def answer_all(store: Store, *, rated: bool = True) -> None:
    """Every answer of ANSWERS given on screen: the ratings and the choice go by the side each annotator saw first,
    so the store's side mapping is what turns them back into A and B."""
    for a in store.annotators("pw"):
        for pos in range(len(DATASET)):
            item = store.annotator_pair(a["id"], pos)
            sample = store.conn.execute("SELECT sample_id FROM items WHERE id = ?", (item["item_id"],)).fetchone()[0]
            ra, rb, pref = ANSWERS[a["name"]][sample]
            a_first = item["explanations"][0] == f"{A} on {sample}"
            first, second = (ra, rb) if a_first else (rb, ra)
            choice = "tie" if pref == "tie" else ("1" if (pref == "a") == a_first else "2")
            store.submit_preference(a["id"], item["item_id"], choice, rating_1=first if rated else None,
                                    rating_2=second if rated else None)


@pytest.fixture
def rated(store: Store, write_jsonl) -> Store:
    pair_study(store, write_jsonl)
    answer_all(store)
    return store


def by_config(sides: list[dict]) -> dict[str, dict]:
    return {s["config"]: s for s in sides}


def test_overall_side_ratings_by_hand(rated: Store) -> None:
    j = analyse_pairwise_store(rated, "pw", n_boot=200).agreement_json()
    s = j["pairwise_side_ratings"]
    assert (s["a"], s["b"]) == (A, B)
    a, b = by_config(s["sides"])[A], by_config(s["sides"])[B]
    assert (a["side"], b["side"]) == ("a", "b")
    # A: x 1 + 2/3 + 0 + 1 = 8/3, y 1 + 2/3 + 1/3 + 1 = 3: 17/3 over 8 ratings = 17/24.
    # B: x 1/3 + 2/3 + 2/3 + 0 = 5/3, y 0 + 1 + 2/3 + 0 = 5/3: 10/3 over 8 = 10/24.
    assert (a["n_items"], a["n"], a["n_items_both"]) == (4, 8, 4)
    assert a["mean_score"] == pytest.approx(17 / 24) and b["mean_score"] == pytest.approx(10 / 24)
    assert a["mean_score_low"] <= a["mean_score"] <= a["mean_score_high"]
    # κ on A (codes yes 0 … no 3): x 0 1 3 0, y 0 1 2 0: p_o = 3/4; marginals x (0: 2, 1: 1, 3: 1),
    # y (0: 2, 1: 1, 2: 1): p_e = (4 + 1) / 16; κ = (12/16 − 5/16) / (11/16) = 7/11.
    assert a["cohen_kappa"] == pytest.approx(7 / 11)
    # κ on B: x 2 1 1 3, y 3 0 1 3: p_o = 2/4; marginals x (1: 2, 2: 1, 3: 1), y (0: 1, 1: 1, 3: 2):
    # p_e = (2 + 2) / 16; κ = (1/2 − 1/4) / (3/4) = 1/3.
    assert b["cohen_kappa"] == pytest.approx(1 / 3)
    code = {r: i for i, r in enumerate(RATINGS)}
    for side, k in ((0, 7 / 11), (1, 1 / 3)):
        x = [code[ANSWERS["x"][p][side]] for p in DATASET]
        y = [code[ANSWERS["y"][p][side]] for p in DATASET]
        assert cohen_kappa_score(x, y) == pytest.approx(k)
    # Every pair has both sides rated: Wilcoxon on per-pair means A − B: s1 1 − 1/6 = 5/6, s2 2/3 − 5/6 = −1/6,
    # s3 1/6 − 2/3 = −1/2, s4 1 − 0 = 1. |d| ranks 1/6 → 1, 1/2 → 2, 5/6 → 3, 1 → 4: W+ = 7, W− = 3, W = 3.
    # Exact two-sided p: subsets of {1, 2, 3, 4} with sum ≤ 3 are {}, {1}, {2}, {3}, {1, 2}: 2 · 5/16 = 10/16.
    c = s["comparison"]
    assert (c["test"], c["statistic"], c["p_value"]) == ("wilcoxon", 3.0, pytest.approx(10 / 16))
    assert (c["n_pairs"], c["wins_a"], c["ties"], c["wins_b"]) == (4, 2, 0, 2)
    assert (c["mean_a"], c["mean_b"]) == (pytest.approx(17 / 24), pytest.approx(10 / 24))
    # Answers that chose a side: x s1, s3, s4; y s1 … s4 = 7; preferred side rated lower: x s4, y s2.
    assert s["consistency"] == {"n_answers": 7, "inconsistent": 2, "inconsistent_share": pytest.approx(2 / 7)}


def test_side_ratings_per_dataset_by_hand(rated: Store) -> None:
    j = analyse_pairwise_store(rated, "pw", n_boot=200).agreement_json()
    by = {d["dataset"]: d for d in j["pairwise_side_ratings_by_dataset"]}
    assert list(by) == ["comve", "esnli"]
    e, c = by["esnli"], by["comve"]
    ea, eb = by_config(e["sides"])[A], by_config(e["sides"])[B]
    # e-SNLI A: yes, weak yes by both: (1 + 2/3) · 2 / 4 = 5/6; same answers, two categories: κ = 1.
    # e-SNLI B: x weak no, weak yes; y no, yes: 2/4 = 1/2; no agreement and no shared category: κ = 0.
    assert (ea["mean_score"], ea["cohen_kappa"]) == (pytest.approx(5 / 6), pytest.approx(1.0))
    assert (eb["mean_score"], eb["cohen_kappa"]) == (pytest.approx(1 / 2), pytest.approx(0.0))
    # ComVE A: x no, yes; y weak no, yes: (0 + 1 + 1/3 + 1) / 4 = 7/12; p_o = 1/2, p_e = 1/4: κ = 1/3.
    # ComVE B: weak yes, no by both: 1/3; κ = 1.
    ca, cb = by_config(c["sides"])[A], by_config(c["sides"])[B]
    assert (ca["mean_score"], ca["cohen_kappa"]) == (pytest.approx(7 / 12), pytest.approx(1 / 3))
    assert (cb["mean_score"], cb["cohen_kappa"]) == (pytest.approx(1 / 3), pytest.approx(1.0))
    # Two pairs each, differences of opposite sign and ranks 1 and 2: W = 1, p = 1.
    for d in (e, c):
        assert (d["comparison"]["test"], d["comparison"]["statistic"], d["comparison"]["p_value"]) == \
            ("wilcoxon", 1.0, pytest.approx(1.0))
    assert e["consistency"] == {"n_answers": 3, "inconsistent": 1, "inconsistent_share": pytest.approx(1 / 3)}
    assert c["consistency"] == {"n_answers": 4, "inconsistent": 1, "inconsistent_share": pytest.approx(1 / 4)}


def test_interval_is_the_rating_analysis_interval_and_seeded(rated: Store) -> None:
    p = analyse_pairwise_store(rated, "pw", n_boot=300, seed=5)
    again = analyse_pairwise_store(rated, "pw", n_boot=300, seed=5)
    assert p.agreement_json() == again.agreement_json()
    # The same figures as the rating analysis of the side ratings laid out as a two-configuration rating study.
    from analysis.pairwise_sides import side_ratings_prepared

    prepared = side_ratings_prepared(rated.preferences_frame("pw"), A, B)
    ref = {s.key["config"]: s for s in level_stats(prepared, "config", n_boot=300, seed=5)}
    for side in p.side_ratings.sides:
        assert side.stats.mean_score_ci == ref[side.config].mean_score_ci


def test_one_annotator_gives_an_undefined_kappa_with_its_reason(store: Store, write_jsonl) -> None:
    pair_study(store, write_jsonl)
    answer_all(store)
    store.conn.execute("DELETE FROM preferences WHERE annotator_id = (SELECT id FROM annotators WHERE name = 'y')")
    p = analyse_pairwise_store(store, "pw", n_boot=50)
    sides = p.agreement_json()["pairwise_side_ratings"]["sides"]
    assert [s["cohen_kappa"] for s in sides] == [None, None]
    assert "n/a (undefined: only one annotator)" in p.side_table()[f"Cohen's κ {A}"].tolist()


def test_answers_that_rate_one_side_only_give_a_consistency_of_0_of_0(store: Store, write_jsonl,
                                                                      tmp_path: Path) -> None:
    pair_study(store, write_jsonl)
    answer_all(store)
    store.conn.execute("UPDATE preferences SET rating_b = NULL")  # each answer rated A only
    p = analyse_pairwise_store(store, "pw", n_boot=50)
    assert p.agreement_json()["pairwise_side_ratings"]["consistency"]["n_answers"] == 0
    assert p.side_table()["preferred side rated lower"].tolist() == ["0 of 0"] * 3
    assert report_main(["--db", store.path, "--study", "pw", "--out", str(tmp_path / "o"), "--n-boot", "50"]) == 0


def test_nle_report_keeps_every_key_and_adds_the_side_ratings(rated: Store, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert report_main(["--db", rated.path, "--study", "pw", "--out", str(out), "--n-boot", "100"]) == 0
    j = json.loads((out / "agreement.json").read_text())
    assert list(j) == ["study", "annotators", "pairwise", "pairwise_by_dataset", "pairwise_side_ratings",
                       "pairwise_side_ratings_by_dataset"]
    assert tuple(j["pairwise"]) == PAIRWISE_KEYS
    assert all(tuple(d) == ("dataset", *PAIRWISE_KEYS) for d in j["pairwise_by_dataset"])
    s = j["pairwise_side_ratings"]
    assert tuple(s) == CONTRACT_KEYS and tuple(s["consistency"]) == CONSISTENCY_KEYS
    assert [tuple(x) for x in s["sides"]] == [SIDE_KEYS, SIDE_KEYS]
    assert all(tuple(d) == ("dataset", *CONTRACT_KEYS) for d in j["pairwise_side_ratings_by_dataset"])
    html = (out / "report.html").read_text()
    assert "<h2 id='side-ratings'>Side ratings</h2>" in html and "2 of 7 (0.286)" in html


def test_keys_are_absent_without_side_ratings_and_null_with_a_reason_when_asked_for(store: Store, write_jsonl
                                                                                     ) -> None:
    pair_study(store, write_jsonl, rate_sides=False)
    answer_all(store, rated=False)
    j = analyse_pairwise_store(store, "pw", n_boot=50).agreement_json()
    assert list(j) == ["study", "annotators", "pairwise", "pairwise_by_dataset"]
    store.set_rate_sides("pw", True)
    p = analyse_pairwise_store(store, "pw", n_boot=50)
    j = p.agreement_json()
    assert (j["pairwise_side_ratings"], j["pairwise_side_ratings_by_dataset"]) == (None, None)
    assert j["pairwise_side_ratings_reason"] == "the study asks for a rating of each side, but no answer has one yet"
    assert p.side_table() is None


def test_side_by_side_page_shows_the_side_rating_table(rated: Store, db_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NLE_DB", str(db_path))
    monkeypatch.setenv("NLE_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.delenv("NLE_DEMO", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.text_input(key="admin_password").input(PASSWORD)
    at.button(key="admin_sign_in").click().run()
    at = at.switch_page("annotate/app/pages/side_by_side.py").run()
    assert not at.exception, at.exception
    assert "Side ratings" in [h.value for h in at.subheader]
    table = next(d.value for d in at.dataframe if "preferred side rated lower" in d.value.columns)
    rows = table.set_index("dataset")
    assert list(rows.index) == ["comve", "esnli", "all"]
    assert rows.loc["all", f"mean ×100 {A} [95 % CI]"].startswith("70.8 [")
    assert rows.loc["all", f"mean ×100 {B} [95 % CI]"].startswith("41.7 [")
    assert rows.loc["all", f"Cohen's κ {A}"] == "0.636" and rows.loc["all", f"Cohen's κ {B}"] == "0.333"
    assert rows.loc["all", "paired comparison"] == "Wilcoxon signed-rank: p = 0.6250"
    assert rows.loc["all", "preferred side rated lower"] == "2 of 7 (0.286)"
    assert rows.loc["esnli", "preferred side rated lower"] == "1 of 3 (0.333)"
    # Each answer's side ratings under the pair, by configuration.
    texts = [t.value for t in at.text]
    assert f"y: {A} — rated {A}: Weak yes — rated {B}: Yes" in texts
