"""Scores, agreement per group, shortcomings, tag agreement and side by side on a small hand-checked study."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from analysis.agreement import cohen_kappa, krippendorff_alpha
from analysis.compare import compare, paired_test
from analysis.data import prepare, split_export
from analysis.report import analyse_export
from analysis.tables import (
    disagreement_rows,
    group_stats,
    item_types,
    pairwise_kappa,
    score_table,
    shortcoming_counts,
    tag_agreement,
)
from annotate.core.scale import DEFAULT_TAGS
from tests.analysis.analysis_helpers import RATINGS


def export_frame(ratings: dict = RATINGS) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": d, "sample_id": s, "config": c, "annotator": who, "rating": r, "tags": t}
                         for (d, s, c), by in ratings.items() for who, (r, t) in by.items()])


@pytest.fixture
def analysis():
    return analyse_export(export_frame(), study="pilot", tags=list(DEFAULT_TAGS))


def _cell(a, dataset: str, config: str):
    return next(s for s in a.cells if s.key == {"dataset": dataset, "config": config})


def test_cell_mean_and_kappa_by_hand(analysis) -> None:
    # esnli × full_ft: s1 yes/yes (1, 1), s2 weak yes/weak no (2/3, 1/3), s3 no/no (0, 0)
    # mean = (1 + 1 + 2/3 + 1/3 + 0 + 0) / 6 = 3/6 = 0.5
    # κ: p_o = 2/3; marginals alice (yes, wy, no) = 1 each, bob (yes, wn, no) = 1 each
    #    p_e = (yes 1·1 + no 1·1) / 9 = 2/9; κ = (2/3 − 2/9) / (1 − 2/9) = (4/9) / (7/9) = 4/7
    cell = _cell(analysis, "esnli", "full_ft")
    assert cell.n == 6 and cell.mean_score == pytest.approx(0.5)
    assert cell.kappas["cohen_kappa"].value == pytest.approx(4 / 7)
    assert cell.percent_agreement.value == pytest.approx(2 / 3) and cell.disagreements == 1
    # ecqa × att_q+layer_norm: q1 no/no, q2 weak no/yes, q3 weak yes/weak yes
    # mean = (0 + 0 + 1/3 + 1 + 2/3 + 2/3) / 6 = (8/3) / 6 = 4/9
    assert _cell(analysis, "ecqa", "att_q+layer_norm").mean_score == pytest.approx(4 / 9)


def test_means_per_dataset_config_and_overall_pool_all_ratings(analysis) -> None:
    df = export_frame()
    df["score"] = df["rating"].map({"yes": 1, "weak_yes": 2 / 3, "weak_no": 1 / 3, "no": 0})
    assert analysis.overall.mean_score == pytest.approx(df["score"].mean()) and analysis.overall.n == 24
    for s in analysis.by_dataset:
        assert s.mean_score == pytest.approx(df[df["dataset"] == s.key["dataset"]]["score"].mean())
    for s in analysis.by_config:
        assert s.mean_score == pytest.approx(df[df["config"] == s.key["config"]]["score"].mean())


def test_score_table_layout(analysis) -> None:
    table = score_table(analysis.cells, analysis.by_dataset, analysis.by_config, analysis.overall)
    assert list(table.columns) == ["esnli", "ecqa", "average"]
    assert list(table.index) == ["full_ft", "att_q+layer_norm", "all configurations"]
    assert table.loc["full_ft", "esnli"] == "50.0 (0.57)"  # 0.5 × 100, κ 4/7 = 0.571…
    assert table.loc["att_q+layer_norm", "ecqa"].startswith("44.4 (")


def test_undefined_kappa_in_a_cell_is_none_with_reason() -> None:
    frame = export_frame({("esnli", "1", "full_ft"): {"alice": ("yes", ""), "bob": ("yes", "")},
                          ("esnli", "2", "full_ft"): {"alice": ("yes", ""), "bob": ("yes", "")}})
    a = analyse_export(frame)
    cell = a.cells[0]
    assert cell.mean_score == 1.0
    for key in ("cohen_kappa", "cohen_kappa_linear", "cohen_kappa_quadratic", "cohen_kappa_binary"):
        assert cell.kappas[key].value is None and "same single answer" in cell.kappas[key].reason
        assert cell.kappa_cis[key].low is None
    assert cell.percent_agreement.value == 1.0
    assert score_table(a.cells, a.by_dataset, a.by_config, a.overall).loc["full_ft", "esnli"] == "100.0 (n/a)"


def test_shortcoming_counts_per_cell(analysis) -> None:
    counts = shortcoming_counts(analysis.prepared).set_index(["dataset", "config", "tag"])["count"]
    # esnli × full_ft: bob s2 inaccurate; alice and bob s3 nonsensical; bob s3 one word
    assert counts[("esnli", "full_ft", "nonsensical")] == 2
    assert counts[("esnli", "full_ft", "inaccurate")] == 1
    assert counts[("esnli", "full_ft", "one word")] == 1
    assert counts[("ecqa", "att_q+layer_norm", "empty")] == 2
    assert counts[("ecqa", "full_ft", "hallucination")] == 0  # zeros are listed
    assert len(counts) == 4 * len(DEFAULT_TAGS)


def test_tag_agreement_by_hand(analysis) -> None:
    t = tag_agreement(analysis.prepared).set_index("tag")
    # nonsensical: both on one item, neither on 11 → p_o = 1 → κ = 1
    assert t.loc["nonsensical", "kappa"] == pytest.approx(1.0)
    # inaccurate: both 1, bob only 1, neither 10 → p_o = 11/12; p_e = (1/12)(2/12) + (11/12)(10/12) = 112/144
    #   κ = (132/144 − 112/144) / (32/144) = 20/32
    assert t.loc["inaccurate", "kappa"] == pytest.approx(20 / 32)
    # one word: alice only 1, bob only 1, neither 10 → p_o = 10/12; p_e = 122/144 → κ = (−2/144)/(22/144) = −1/11
    assert t.loc["one word", "kappa"] == pytest.approx(-1 / 11)
    assert t.loc["contradiction", "kappa"] is None or np.isnan(t.loc["contradiction", "kappa"])
    assert "undefined" in t.loc["contradiction", "reason"]
    assert t.loc["inaccurate", "given_by_bob"] == 2


def test_disagreement_rows(analysis) -> None:
    rows = disagreement_rows(analysis.prepared)
    got = set(zip(rows["dataset"], rows["sample_id"], rows["config"], strict=True))
    assert got == {("esnli", "s2", "full_ft"), ("esnli", "s1", "att_q+layer_norm"), ("esnli", "s4", "att_q+layer_norm"),
                   ("ecqa", "q1", "full_ft"), ("ecqa", "q2", "att_q+layer_norm")}
    row = rows[rows["sample_id"] == "s2"].iloc[0]
    assert (row["alice"], row["bob"], row["bob tags"]) == ("weak_yes", "weak_no", "inaccurate")
    assert analysis.overall.disagreements == 5


def test_three_annotators_pairwise_light_and_alpha() -> None:
    frame = export_frame({(d, s, "c"): {"a": (ra, ""), "b": (rb, ""), "c": (rc, "")}
                          for d, s, ra, rb, rc in [("x", "1", "yes", "yes", "no"), ("x", "2", "no", "no", "no"),
                                                   ("x", "3", "weak_yes", "yes", "weak_yes"),
                                                   ("x", "4", "weak_no", "weak_no", "yes")]})
    a = analyse_export(frame)
    matrix, reasons = pairwise_kappa(a.prepared)
    assert matrix.shape == (3, 3) and np.allclose(matrix.to_numpy(), matrix.to_numpy().T)
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    cols = {n: frame[frame["annotator"] == n]["rating"].tolist() for n in "abc"}
    expected = [cohen_kappa(cols[x], cols[y]).value for x, y in pairs]
    for (x, y), v in zip(pairs, expected, strict=True):
        assert matrix.loc[x, y] == pytest.approx(v)
    # Light's κ: the mean of the pairwise values.
    assert a.overall.kappas["cohen_kappa"].value == pytest.approx(np.mean(expected))
    assert a.overall.alpha.value is not None and a.overall.disagreements == 3
    assert a.n_items_rated_by_all == 4


def test_percent_agreement_of_three_annotators_counts_every_pair_that_shares_an_item() -> None:
    # Two items: a, b, c answer (yes, yes, no) and (yes, yes, yes).
    #   a–b: yes/yes twice → κ undefined (one answer only), agreement 2/2 = 1
    #   a–c, b–c: yes/no, yes/yes → p_o = 1/2, p_e = 1 · 1/2 = 1/2, κ = 0; agreement 1/2
    # κ (Light's): the mean over the pairs where κ is defined = (0 + 0) / 2 = 0.
    # % agreement: the mean over every pair that shares an item = (1 + 1/2 + 1/2) / 3 = 2/3 (not 1/2: the a–b
    # pair agrees fully, it has no κ only because it used one answer).
    frame = export_frame({("x", str(i), "c"): {"a": (ra, ""), "b": (rb, ""), "c": (rc, "")}
                          for i, (ra, rb, rc) in enumerate([("yes", "yes", "no"), ("yes", "yes", "yes")])})
    a = analyse_export(frame)
    assert a.overall.kappas["cohen_kappa"].value == pytest.approx(0.0)
    assert a.overall.percent_agreement.value == pytest.approx(2 / 3)
    assert a.overall.contract()["percent_agreement"] == pytest.approx(2 / 3)


def test_prepare_rejects_bad_input() -> None:
    items, ratings = split_export(export_frame())
    bad = ratings.copy()
    bad["rating"] = bad["rating"].astype(str)
    bad.loc[0, "rating"] = "maybe"
    with pytest.raises(ValueError, match="unknown rating 'maybe'"):
        prepare(items, bad)
    with pytest.raises(ValueError, match="rated the same item twice"):
        prepare(items, pd.concat([ratings, ratings.iloc[:1]]))


# -- side by side ----------------------------------------------------------------------------------------------------


def test_compare_by_hand(analysis) -> None:
    c = compare(analysis.prepared, "full_ft", "att_q+layer_norm")
    # Common samples and per-sample means (full_ft vs att_q+layer_norm):
    #   esnli s1: 1 vs 1/6 (+5/6)   esnli s2: 1/2 vs 2/3 (−1/6)   ecqa q1: 5/6 vs 0 (+5/6)
    #   ecqa q2: 1/3 vs 2/3 (−1/3)  ecqa q3: 1 vs 2/3 (+1/3)
    assert c.n_pairs == 5 and (c.wins_a, c.ties, c.wins_b) == (3, 0, 2)
    assert c.paired_mean_a == pytest.approx(11 / 15)  # (1 + 1/2 + 5/6 + 1/3 + 1) / 5 = (22/6) / 5
    assert c.paired_mean_b == pytest.approx(13 / 30)  # (1/6 + 2/3 + 0 + 2/3 + 2/3) / 5 = (13/6) / 5
    # esnli s3 was rated only under full_ft, s4 only under att_q+layer_norm: Mann–Whitney on all 6 vs 6 samples.
    assert (c.only_a, c.only_b, c.n_a, c.n_b) == (1, 1, 6, 6) and c.test == "mann-whitney"
    # a: 1, 1/2, 0 (s3), 5/6, 1/3, 1; b: 1/6, 2/3, 5/6 (s4), 0, 2/3, 2/3. U_a counts pairs with a > b, ties 1/2:
    #   1 → 6, 1/2 → 2, 0 → 0.5, 5/6 → 5 + 0.5, 1/3 → 2, 1 → 6: U = 22
    assert c.statistic == pytest.approx(22.0) and 0 < c.p_value < 1
    # Fewer than 10 shared samples: no paired test next to it.
    assert c.paired is None and c.contract()["paired"] is None
    # The means are the score table's (all ratings of each configuration): 22/36 and 18/36.
    assert c.mean_a == pytest.approx(11 / 18) and c.mean_b == pytest.approx(0.5)
    assert c.mean_a == pytest.approx(next(s.mean_score for s in analysis.by_config if s.key["config"] == "full_ft"))
    assert "different samples" in c.note and "Mann–Whitney" in c.note
    assert c.mean_diff == pytest.approx(1 / 9) and c.mean_diff_ci.low <= c.mean_diff <= c.mean_diff_ci.high


def test_paired_test_exact_and_undefined() -> None:
    # Five positive, distinct differences: W− = 0 is the most extreme of 2⁵ sign patterns on each side,
    # so the exact two-sided p = 2 / 32 = 0.0625.
    stat, p, reason = paired_test(np.array([0.1, 0.2, 0.3, 0.4, 0.5]))
    assert stat == 0 and p == pytest.approx(0.0625) and reason is None
    assert paired_test(np.zeros(4)) == (None, None, "every paired difference is zero, so the signed-rank test is undefined")
    assert paired_test(np.zeros(0))[2] == "no sample was rated under both configurations"


def test_compare_unknown_or_same_config(analysis) -> None:
    c = compare(analysis.prepared, "full_ft", "bias")
    assert c.n_pairs == 0 and c.p_value is None and "'bias' has no ratings" in c.reason
    with pytest.raises(ValueError, match="two different configurations"):
        compare(analysis.prepared, "full_ft", "full_ft")


@pytest.mark.parametrize("seed, n_annotators", [(0, 2), (1, 2), (2, 3), (3, 4)])
def test_item_types_compression_matches_direct_computation(seed: int, n_annotators: int) -> None:
    # Random answers with gaps (-1: not rated): the per-type computation must equal the item-by-item one.
    rng = np.random.default_rng(seed)
    codes = rng.integers(-1, 4, (300, n_annotators)).astype(np.int8)
    codes = codes[(codes >= 0).any(axis=1)]
    (types, counts), = item_types(codes, np.zeros(len(codes), dtype=np.int64)).values()
    s = group_stats(types, counts, n_boot=50, seed=0)
    present = codes >= 0
    assert s.n == present.sum() and s.n_items == len(codes)
    assert s.mean_score == pytest.approx(np.where(present, 3 - codes, 0).sum() / (3 * present.sum()))
    pairs = list(combinations(range(n_annotators), 2))
    direct = [cohen_kappa(codes[m, x], codes[m, y], "linear").value
              for x, y in pairs for m in [present[:, x] & present[:, y]]]
    assert s.kappas["cohen_kappa_linear"].value == pytest.approx(np.mean(direct))
    multi = present.sum(axis=1) >= 2
    differ = [len(set(row[row >= 0])) > 1 for row in codes]
    assert s.disagreements == int(np.sum(multi & np.array(differ)))
    assert s.alpha.value == pytest.approx(krippendorff_alpha(codes).value)
