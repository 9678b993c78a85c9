"""Pairwise figures against hand-worked values, and against scipy / scikit-learn / krippendorff as oracles."""

from __future__ import annotations

import itertools

import krippendorff
import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta
from sklearn.metrics import cohen_kappa_score

from analysis.pairwise import CONTRACT_KEYS, analyse_preferences, group_stats, sign_test, win_rate

# Eight pairs, two annotators; x saw A first everywhere, y saw B first everywhere.
#   pair  dataset  x    y      net (A − B)
#   1     esnli    a    a      +2
#   2     esnli    a    a      +2
#   3     esnli    a    tie    +1
#   4     esnli    b    b      −2
#   5     esnli    tie  tie     0
#   6     comve    a    b       0
#   7     comve    a    a      +2
#   8     comve    b    tie    −1
X = ["a", "a", "a", "b", "tie", "a", "a", "b"]
Y = ["a", "a", "tie", "b", "tie", "b", "a", "tie"]
DATASETS = ["esnli"] * 5 + ["comve"] * 3


def frame(x: list[str] = X, y: list[str] = Y) -> pd.DataFrame:
    rows = []
    for i, (px, py) in enumerate(zip(x, y, strict=True)):
        rows.append({"item_id": i + 1, "dataset": DATASETS[i], "annotator": "x", "preference": px, "a_first": 1})
        rows.append({"item_id": i + 1, "dataset": DATASETS[i], "annotator": "y", "preference": py, "a_first": 0})
    return pd.DataFrame(rows)


def test_counts_win_rate_sign_test_and_kappa_by_hand() -> None:
    s = group_stats(frame(), "A", "B", n_boot=200)
    # Answers: A 5 (x) + 3 (y) = 8, B 2 + 2 = 4, tie 1 + 3 = 4; 16 answers on 8 pairs.
    assert (s.wins_a, s.ties, s.wins_b, s.n_items, s.n_answers) == (8, 4, 4, 8, 16)
    # Ties count half: (8 + 4/2) / 16 = 0.625.
    assert s.win_rate_a == pytest.approx(0.625)
    # Pairs by net preference: A on 1, 2, 3, 7; B on 4, 8; ties 5, 6.
    assert (s.items_a, s.items_tie, s.items_b) == (4, 2, 2)
    # Exact two-sided sign test, 4 of 6: outcomes at most as likely as 4 are 0, 1, 2, 4, 5, 6:
    # (1 + 6 + 15 + 15 + 6 + 1) / 64 = 44 / 64.
    assert s.sign_test_p.value == pytest.approx(44 / 64)
    # κ: p_o = 5/8 (pairs 1, 2, 4, 5, 7); marginals x (A 5, B 2, tie 1), y (A 3, B 2, tie 3):
    # p_e = (15 + 4 + 3) / 64 = 22/64; κ = (40/64 − 22/64) / (42/64) = 18/42 = 3/7.
    assert s.cohen_kappa.value == pytest.approx(3 / 7)
    codes = {"a": 0, "b": 1, "tie": 2}
    assert s.cohen_kappa.value == pytest.approx(cohen_kappa_score([codes[v] for v in X], [codes[v] for v in Y]))


def test_position_check_by_hand_with_exact_interval() -> None:
    s = group_stats(frame(), "A", "B", n_boot=50)
    # x (A first) chose a side 7 times, "Explanation 1" = A on 5 of them; y (B first) chose a side 5 times,
    # "Explanation 1" = B on 2 of them (pairs 4 and 6): 7 of 12.
    assert (s.first_position_rate, s.n_positioned) == (pytest.approx(7 / 12), 12)
    # Clopper-Pearson bounds from the beta distribution.
    assert s.first_position_low == pytest.approx(beta.ppf(0.025, 7, 6))
    assert s.first_position_high == pytest.approx(beta.ppf(0.975, 8, 5))


def test_answers_with_unknown_sides_are_left_out_of_the_position_check() -> None:
    df = frame()
    df.loc[df["annotator"] == "y", "a_first"] = np.nan  # e.g. imported without `shown_first`
    s = group_stats(df, "A", "B", n_boot=50)
    assert (s.first_position_rate, s.n_positioned) == (pytest.approx(5 / 7), 7)


def test_per_dataset_and_contract_keys() -> None:
    p = analyse_preferences(frame(), "A", "B", study="s", n_boot=100)
    j = p.agreement_json()
    assert tuple(j["pairwise"]) == CONTRACT_KEYS
    by = {d["dataset"]: d for d in j["pairwise_by_dataset"]}
    assert set(by) == {"comve", "esnli"}
    assert all(tuple(d) == ("dataset", *CONTRACT_KEYS) for d in by.values())
    # e-SNLI: A 3 + 2 = 5, B 1 + 1 = 2, tie 1 + 2 = 3: (5 + 1.5) / 10 = 0.65.
    assert (by["esnli"]["wins_a"], by["esnli"]["ties"], by["esnli"]["wins_b"]) == (5, 3, 2)
    assert by["esnli"]["win_rate_a"] == pytest.approx(0.65)
    # ComVE: A 2 + 1 = 3, B 1 + 1 = 2, tie 1; pairs by net: A (7), tie (6), B (8): sign test 1 of 2 → p = 1.
    assert (by["comve"]["wins_a"], by["comve"]["ties"], by["comve"]["wins_b"]) == (3, 1, 2)
    assert by["comve"]["sign_test_p"] == pytest.approx(1.0)
    o = j["pairwise"]
    assert o["win_rate_a_low"] <= o["win_rate_a"] <= o["win_rate_a_high"]


def test_bootstrap_interval_is_seeded_and_degenerate_when_every_pair_agrees() -> None:
    df = frame()
    one = group_stats(df, "A", "B", n_boot=300, seed=7).win_rate_ci
    two = group_stats(df, "A", "B", n_boot=300, seed=7).win_rate_ci
    assert (one.low, one.high) == (two.low, two.high)
    all_a = group_stats(frame(["a"] * 8, ["a"] * 8), "A", "B", n_boot=100)
    assert (all_a.win_rate_a, all_a.win_rate_ci.low, all_a.win_rate_ci.high) == (1.0, 1.0, 1.0)
    assert all_a.sign_test_p.value == pytest.approx(2 / 2**8)  # 8 of 8, two-sided
    assert all_a.cohen_kappa.value is None and "same" in all_a.cohen_kappa.reason


@pytest.mark.parametrize(("wins_a", "ties", "wins_b", "rule", "expected"), [
    (8, 4, 4, "half", 10 / 16),
    (8, 4, 4, "exclude", 8 / 12),
    (0, 3, 0, "half", 0.5),
    (0, 3, 0, "exclude", None),
    (0, 0, 0, "half", None),
])
def test_win_rate_rules(wins_a: int, ties: int, wins_b: int, rule: str, expected: float | None) -> None:
    assert win_rate(wins_a, ties, wins_b, rule) == (pytest.approx(expected) if expected is not None else None)


def test_sign_test_all_ties_is_undefined_with_a_reason() -> None:
    s = sign_test(0, 0)
    assert s.value is None and s.reason == "undefined: every pair is a tie"


def test_three_annotators_alpha_matches_krippendorff_and_kappa_is_the_pairwise_mean() -> None:
    rng = np.random.default_rng(3)
    answers = rng.choice(["a", "b", "tie"], size=(3, 20)).astype(object)
    answers[2, :4] = None  # z skipped four pairs
    rows = [{"item_id": i, "dataset": "esnli", "annotator": n, "preference": answers[k, i], "a_first": 1}
            for k, n in enumerate("xyz") for i in range(20) if answers[k, i] is not None]
    s = group_stats(pd.DataFrame(rows), "A", "B", n_boot=50)
    codes = {"a": 0, "b": 1, "tie": 2}
    data = np.array([[codes.get(v, np.nan) if v is not None else np.nan for v in row] for row in answers], float)
    assert s.alpha.value == pytest.approx(krippendorff.alpha(reliability_data=data,
                                                             level_of_measurement="nominal"))
    kappas = []
    for p, q in itertools.combinations(range(3), 2):
        both = ~np.isnan(data[p]) & ~np.isnan(data[q])
        kappas.append(cohen_kappa_score(data[p][both], data[q][both]))
    assert s.cohen_kappa.value == pytest.approx(np.mean(kappas))


def test_no_answers_and_unknown_preferences_are_refused() -> None:
    with pytest.raises(ValueError, match="has no pairwise answers yet"):
        analyse_preferences(frame().iloc[0:0], "A", "B", study="s")
    df = frame()
    df.loc[0, "preference"] = "left"
    with pytest.raises(ValueError, match="unknown preference 'left'"):
        group_stats(df, "A", "B", n_boot=10)


def test_report_html_shows_bidi_controls_as_visible_tags() -> None:
    """As in the rating report: a U+202E in a configuration, dataset or annotator name is drawn as ⟦U+202E⟧."""
    from analysis.report.pairwise import outputs

    prefs = frame().replace({"x": "x\u202e1", "esnli": "es\u202enli"})
    files = outputs(analyse_preferences(prefs, "full\u202eft", "att_q", study="p\u202ew", n_boot=20))
    page = files["report.html"].decode()
    assert "\u202e" not in page
    assert "full⟦U+202E⟧ft (A) against att_q (B). Annotators: x⟦U+202E⟧1, y." in page
    assert "<td>es⟦U+202E⟧nli</td>" in page and "<title>Pairwise — p⟦U+202E⟧w</title>" in page


def test_pairwise_csv_has_no_name_a_spreadsheet_would_evaluate() -> None:
    """As in every CSV the project writes (annotate/core/spreadsheet.py): a dataset named like a formula is written
    as text with a leading quote; the figures stay numbers, a negative κ included."""
    import csv
    import io

    from analysis.report.pairwise import outputs
    from annotate.core.spreadsheet import FORMULA_STARTS, unescape_cell

    evil = '=HYPERLINK("http://x")'
    flipped = ["b" if v == "a" else "a" if v == "b" else v for v in X]  # y answers against x: κ < 0
    p = analyse_preferences(frame(X, flipped).replace({"esnli": evil}), "A", "B", study="s", n_boot=20)
    rows = list(csv.reader(io.StringIO(outputs(p)["pairwise.csv"].decode())))
    table = p.table()
    assert rows[0] == list(table.columns) and len(rows) == 1 + len(table)
    assert [r[0] for r in rows[1:]] == ["'" + evil, "comve", "all"]
    assert [unescape_cell(r[0]) for r in rows[1:]] == table["dataset"].tolist()
    assert rows[1:] == [[r[0], *(str(v) for v in row[1:])] for r, row in zip(rows[1:], table.itertuples(index=False),
                                                                               strict=True)]
    assert all(float(r[rows[0].index("Cohen's κ")]) < 0 for r in rows[1:])
    risky = [c for r in rows for c in r if c.startswith(FORMULA_STARTS)]
    assert risky and all(float(c) < 0 for c in risky)  # only the negative figures, which a spreadsheet reads as numbers
