"""Researcher page: the study's results — the score table, answers and shortcomings per configuration,
agreement, the side-by-side summary (and, on request, its power from these ratings), how automatic metrics track
the ratings (when the study has metric scores) and adjudications — with the report files to download."""

import streamlit as st

from analysis.compare import DEFAULT_COMPARE, compare
from analysis.defaults import POWER_SIMS_DEFAULT
from analysis.literal import literal_frame
from analysis.metric_correlation import MIN_CONFIGURATIONS, metric_report
from analysis.power import MAX_RATERS, MAX_SIMS, PowerSettings, pilot_power
from analysis.report import (
    FLEISS_DEFINITION,
    PAIRS_DEFINITION,
    agreement_table,
    analyse_store,
    comparison_table,
    figures,
    outputs,
    pairwise_kappa_table,
    tag_agreement_table,
)
from analysis.report.metrics import (
    LARGE_STUDY_RESAMPLES,
    LARGE_STUDY_SCORES,
    METRIC_DEFINITION,
    NO_RATED_METRICS,
    correlation_table,
    metric_figure,
    system_defined,
    system_table,
    system_text,
)
from analysis.report.power import power_figure, power_table
from analysis.tables import adjudication_counts
from annotate.app.admin import choose_study
from annotate.app.render import config_choices, drawn_text, md_escape
from annotate.app.session import require_admin
from annotate.core.store import DISAGREEMENT_KINDS

store = require_admin()
st.title("Analysis")

study = choose_study(store, key="analysis_study")
seed = int(st.number_input("Bootstrap seed", min_value=0, value=0, step=1, key="analysis_seed"))
try:
    a = analyse_store(store, study, seed=seed)
except ValueError as exc:
    st.info(md_escape(str(exc)))
    st.stop()

configs = a.prepared.model_configs  # gold is the human ceiling, never one side of a comparison
if len(configs) >= 2:
    i, j = config_choices(configs, DEFAULT_COMPARE)
    left, right = st.columns(2)
    ca = left.selectbox("Compare configuration", configs, index=i, format_func=drawn_text, key="analysis_a")
    cb = right.selectbox("with", configs, index=j, format_func=drawn_text, key="analysis_b")
    if ca != cb:
        a.comparison = compare(a.prepared, ca, cb, n_boot=a.n_boot, seed=seed)

c1, c2, c3 = st.columns(3)
c1.metric("Annotators", len(a.annotators))
c2.metric("Items with a rating", a.n_items)
c3.metric("Rated by every annotator", a.n_items_rated_by_all)
for note in a.notes:
    st.warning(md_escape(note))

figs = figures(a)
st.subheader("Scores")
st.caption("Mean score ×100 over all ratings (yes 1, weak yes 2/3, weak no 1/3, no 0); Cohen's κ in brackets.")
st.dataframe(literal_frame(a.score_table()), key="score_table")
st.plotly_chart(figs["rating_distribution"], key="fig_distribution")

st.subheader("Shortcomings")
st.plotly_chart(figs["shortcomings_by_config"], key="fig_short_config")
st.plotly_chart(figs["shortcomings_by_dataset"], key="fig_short_dataset")

st.subheader("Agreement")
st.caption("κ on the four answers, weighted (linear, quadratic), binary ({yes, weak yes} vs {weak no, no}); "
           "95 % bootstrap intervals in brackets; n/a [k] when undefined, for reason k below the table.")
st.caption(md_escape(FLEISS_DEFINITION))
if len(a.annotators) > 2:
    st.caption(md_escape(PAIRS_DEFINITION))
footnotes: list[str] = []
st.dataframe(literal_frame(agreement_table(a, footnotes)), hide_index=True, key="agreement_table")
for k, reason in enumerate(footnotes, start=1):
    st.caption(md_escape(f"[{k}] {reason}"))
st.plotly_chart(figs["kappa_per_cell"], key="fig_kappa")
if len(a.annotators) > 2:
    st.dataframe(literal_frame(pairwise_kappa_table(a)), key="pairwise")
st.caption("Agreement on each shortcoming tag (κ on presence)")
st.dataframe(literal_frame(tag_agreement_table(a)), hide_index=True, key="tag_agreement")

st.subheader("Side by side")
st.dataframe(literal_frame(comparison_table(a.comparison)), hide_index=True, key="comparison_table")
if a.comparison.note:
    st.info(md_escape(a.comparison.note))
if "comparison" in figs:
    st.plotly_chart(figs["comparison"], key="fig_comparison")

st.subheader("Power")
if st.toggle("Estimate how many samples this comparison needs, by simulation from these ratings",
             key="analysis_power"):
    left, mid, right = st.columns(3)
    sims = left.number_input("Simulations per sample size", min_value=1, max_value=MAX_SIMS,
                             value=POWER_SIMS_DEFAULT, step=100, key="power_sims")
    effect = mid.number_input("Difference a − b to detect, points of 0–100 (empty: this pilot's)",
                              min_value=-100.0, max_value=100.0, value=None, step=1.0, key="power_effect")
    raters = right.number_input("Ratings per sample (empty: as rated)", min_value=1, max_value=MAX_RATERS,
                                value=None, step=1, key="power_raters")
    a.power = pilot_power(a.prepared, a.comparison.a, a.comparison.b, PowerSettings(
        n_sim=int(sims), effect_points=effect, raters=(None if raters is None else int(raters),), seed=seed))
    figs["power"] = power_figure(a.power)
    st.caption("Power in % ± its Monte-Carlo standard error: how often the test above would find p < 0.05 with n "
               "samples per configuration like these (resampled with replacement; seed: the one above).")
    st.dataframe(power_table(a.power), hide_index=True, key="power_table")
    for c in a.power.curves:
        if c.reason:
            st.info(md_escape(f"{c.dataset}: {c.reason}"))
    st.plotly_chart(figs["power"], key="fig_power")

metric_scores = store.metrics_frame(a.study)
if not metric_scores.empty:
    st.subheader("Automatic metrics")
    # The page reruns on every click: a large study starts with fewer resamples (shown, and the input raises them).
    large = len(metric_scores) > LARGE_STUDY_SCORES
    resamples = st.number_input("Bootstrap resamples for the metric intervals (0: none)", min_value=0,
                                max_value=100_000, value=LARGE_STUDY_RESAMPLES if large else a.n_boot, step=100,
                                key="metric_resamples")
    if large:
        st.caption(f"{len(metric_scores):,} metric scores: {LARGE_STUDY_RESAMPLES} resamples to start with (the cost "
                   "grows with resamples × items); nle-report uses --metric-resamples, default 1000.")
    a.metrics = metric_report(a.prepared, metric_scores, n_resamples=int(resamples), seed=seed)
    st.caption(md_escape(METRIC_DEFINITION))
    if a.metrics.rows:
        st.dataframe(literal_frame(correlation_table(a.metrics)), hide_index=True, key="metric_table")
        st.caption(md_escape(system_text()))
        if system_defined(a.metrics):
            st.dataframe(literal_frame(system_table(a.metrics)), hide_index=True, key="metric_system_table")
        else:
            st.info(f"Fewer than {MIN_CONFIGURATIONS} configurations: no system-level correlation.")
        figs["metric_correlation"] = metric_figure(a.metrics)
        st.plotly_chart(figs["metric_correlation"], key="fig_metrics")
    else:
        st.info(NO_RATED_METRICS)

st.subheader("Disagreements and adjudication")
st.write(f"{len(a.disagreements)} items where annotators gave different answers.")
st.dataframe(adjudication_counts(a.adjudications, DISAGREEMENT_KINDS), hide_index=True, key="adjudication_counts")

st.subheader("Downloads")
mimes = {"html": "text/html", "json": "application/json", "csv": "text/csv"}
cols = st.columns(3)
for k, (name, data) in enumerate(outputs(a, figs).items()):
    cols[k % 3].download_button(name, data, file_name=name, mime=mimes[name.rsplit(".", 1)[1]], key=f"dl_{name}")
