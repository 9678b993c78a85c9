"""A rating study's report, as tables of text: agreement, per-tag agreement, pairwise κ and the side-by-side
summary, formatted for display (report.html and the app's Analysis page show the same)."""

from __future__ import annotations

import pandas as pd

from analysis.compare import MIN_PAIRS, Comparison
from analysis.data import GOLD_CONFIG
from analysis.formatting import fmt, x100
from analysis.report.compute import Analysis
from analysis.tables import GOLD_ROW

FLEISS_DEFINITION = ("FEB's κ: Fleiss' κ with uniform (free-marginal) chance agreement 1/2 on {yes, weak yes} vs "
                     "{weak no, no}, over the items with the most common number of ratings (allenai/feb "
                     "scripts/compute_kappa.py); items used in brackets.")

# With two annotators (the paper's set-up) both are the one pair's figure.
PAIRS_DEFINITION = ("With more than two annotators: κ is Light's κ, the mean over the annotator pairs where κ is "
                    "defined; % agreement is the mean over every annotator pair with an item rated by both, so a pair "
                    "that gave all its shared items one and the same answer counts with its 100 % although its κ is "
                    "undefined.")


def agreement_table(a: Analysis, footnotes: list[str] | None = None) -> pd.DataFrame:
    """Agreement per group, formatted for display: κ (plain, linear, quadratic, binary) with 95 % intervals and
    FEB's κ. An undefined value shows "n/a [k]"; its reason is appended, once, to `footnotes` as entry k."""
    notes: list[str] = [] if footnotes is None else footnotes

    def na(reason: str | None) -> str:
        reason = reason or "undefined"
        if reason not in notes:
            notes.append(reason)
        return f"n/a [{notes.index(reason) + 1}]"

    rows = []
    gold = [] if a.gold_overall is None else [a.gold_overall, *a.gold_by_dataset]
    for level, groups in (("overall", [a.overall]), ("dataset", a.by_dataset), ("config", a.by_config),
                          ("cell", a.cells), (GOLD_ROW, gold)):
        for s in groups:
            config = GOLD_CONFIG if level == GOLD_ROW else s.key.get("config", "all")
            row = {"level": level, "dataset": s.key.get("dataset", "all"), "config": config,
                   "ratings": s.n, "items rated by ≥2": s.n_pairs,
                   "mean ×100 [95 % CI]": f"{x100(s.mean_score)} [{x100(s.mean_score_ci.low)}, "
                                          f"{x100(s.mean_score_ci.high)}]"}
            for key, label in (("cohen_kappa", "κ"), ("cohen_kappa_linear", "κ linear"),
                               ("cohen_kappa_quadratic", "κ quadratic"), ("cohen_kappa_binary", "κ binary")):
                st, ci = s.kappas[key], s.kappa_cis[key]
                row[label] = (f"{fmt(st.value)} [{fmt(ci.low)}, {fmt(ci.high)}]" if st.value is not None
                              else na(st.reason))
            row["FEB κ (items)"] = (
                f"{fmt(s.fleiss.value)} ({s.fleiss.n})" if s.fleiss.value is not None else na(s.fleiss.reason))
            row["% agreement"] = x100(s.percent_agreement.value)
            row["disagreements"] = s.disagreements
            row["α ordinal"] = fmt(s.alpha.value) if s.alpha.value is not None else na(s.alpha.reason)
            rows.append(row)
    return pd.DataFrame(rows)


def tag_agreement_table(a: Analysis) -> pd.DataFrame:
    """The per-tag agreement formatted for display: κ to three decimals, "n/a" where undefined with its reason
    beside it (a blank reason: κ is defined)."""
    tags = a.tag_agreement
    if "kappa" not in tags.columns:  # a study without tags
        return tags
    return tags.assign(kappa=[fmt(v) for v in tags["kappa"]],
                       reason=[r if isinstance(r, str) else "" for r in tags["reason"]])


def pairwise_kappa_table(a: Analysis) -> pd.DataFrame:
    """Cohen's κ between every two annotators, formatted for display: three decimals, "n/a" where undefined."""
    return a.pairwise.map(fmt)


def _test_text(name: str, symbol: str, statistic: float | None, p: float | None, reason: str | None) -> str:
    if p is None:
        return f"{name}: {fmt(None, reason=reason)}"
    return f"{name}: {symbol} = {fmt(statistic, 1)}, p = {fmt(p, 4)}"


def comparison_table(c: Comparison) -> pd.DataFrame:
    """The side-by-side summary: the primary test (named, with its statistic) and, when samples differ, the
    paired test on the shared samples."""
    symbol = "W" if c.test == "wilcoxon" else "U"
    rows = [
        ("configurations", f"{c.a} (a) vs {c.b} (b)"),
        ("samples rated, a / b", f"{c.n_a} / {c.n_b}"),
        ("mean score ×100, a (all its samples)", x100(c.mean_a)),
        ("mean score ×100, b (all its samples)", x100(c.mean_b)),
        ("mean difference a − b ×100 [95 % CI]",
         f"{x100(c.mean_diff)} [{x100(c.mean_diff_ci.low)}, {x100(c.mean_diff_ci.high)}]"),
        ("primary test, two-sided", _test_text(c.test_name, symbol, c.statistic, c.p_value, c.reason)),
        ("samples rated under both", str(c.n_pairs)),
        ("wins a / ties / wins b (shared samples)", f"{c.wins_a} / {c.ties} / {c.wins_b}"),
    ]
    if c.test != "wilcoxon":
        if c.paired is not None:
            rows += [("paired subset: mean score ×100, a / b", f"{x100(c.paired.mean_a)} / {x100(c.paired.mean_b)}"),
                     ("paired subset: test, two-sided",
                      _test_text("Wilcoxon signed-rank", "W", c.paired.statistic, c.paired.p_value,
                                 "every paired difference is zero"))]
        else:
            rows.append(("paired subset: test", fmt(None, reason=f"fewer than {MIN_PAIRS} shared samples: {c.n_pairs}")))
    return pd.DataFrame(rows, columns=["figure", "value"])
