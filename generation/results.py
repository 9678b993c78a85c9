"""`nle-gen results`: the paper's Tables 1-3 and Figure 1 from a sweep's run directories.

Only the `results` command imports this module; scipy and plotly are imported here, never by `train` or
`generate`. Accuracy and nBERTs are shown in percent (FEB's nBERTs: BERTScore F1 x 100, 0 for wrong
predictions); mean ± std over seeds with FEB's np.std (population, ddof 0) by default.
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from generation.layout import RUN_FILE, SPLIT_FILE, metrics_file

Test = Literal["paired", "welch"]
TEST_NAMES = {
    "paired": "two-sided paired t-test (scipy.stats.ttest_rel) over the seeds both configurations have "
              "(the same seed = the same few-shot split)",
    "welch": "two-sided Welch t-test (scipy.stats.ttest_ind, equal_var=False)",
}
SPARSE_BASELINE, PEFT_BASELINE = "full_ft", "att_q+layer_norm"
DASH = "—"


@dataclass
class Run:
    """One completed run's numbers."""

    path: str
    dataset: str
    model: str
    config: str
    kind: str
    seed: int
    accuracy: float  # percent
    nberts: float | None  # percent; None for label-only methods ("nle": null) or when not computed
    percent: float | None
    flops: float | None


@dataclass
class Row:
    """One dataset x model x configuration over its seeds."""

    dataset: str
    model: str
    config: str
    kind: str
    table: str  # "sparsefit" (vs full_ft) or "peft" (vs att_q+layer_norm)
    seeds: list[int]
    accuracy_mean: float
    accuracy_std: float | None
    nberts_mean: float | None
    nberts_std: float | None
    percent: float | None
    tradeoff: float | None
    flops_per_step: float | None
    baseline: str | None = None
    p_accuracy: float | None = None
    p_nberts: float | None = None
    mark_accuracy: str = ""
    mark_nberts: str = ""
    per_seed: dict[str, dict[str, float | None]] = field(default_factory=dict)


# --- statistics (pure) ----------------------------------------------------------------------------


def mean_std(values: list[float], ddof: int = 0) -> tuple[float, float | None]:
    """Mean and standard deviation (ddof 0 = population, as FEB's np.std; None when undefined)."""
    m = statistics.fmean(values)
    if len(values) - ddof <= 0:
        return m, None
    return m, (statistics.pstdev(values) if ddof == 0 else statistics.stdev(values))


def tradeoff(percent: float | None, nberts: float | None) -> float | None:
    """The paper's trade-off (1 - %params) x nBERTs, %params as a fraction."""
    if percent is None or nberts is None:
        return None
    return (1 - percent / 100) * nberts


def t_test(values: dict[int, float], baseline: dict[int, float], test: Test = "paired") -> float | None:
    """p-value of the configuration's per-seed values against the baseline's; None when undefined."""
    from scipy import stats

    if test == "paired":
        common = sorted(set(values) & set(baseline))
        if len(common) < 2:
            return None
        p = stats.ttest_rel([values[s] for s in common], [baseline[s] for s in common]).pvalue
    else:
        if len(values) < 2 or len(baseline) < 2:
            return None
        p = stats.ttest_ind(list(values.values()), list(baseline.values()), equal_var=False).pvalue
    return None if p is None or math.isnan(p) else float(p)


# --- reading run directories ----------------------------------------------------------------------


def nberts_of(metrics: dict) -> float | None:
    """nBERTs on FEB's 0-100 scale as `generate` writes it (`nbertscore`); None for a label-only method
    ("nle": null, DecT) or a run generated without --bertscore-model."""
    if "nle" in metrics and metrics["nle"] is None:
        return None
    value = metrics.get("nbertscore")
    return None if value is None else float(value)


def _is_run_dir(path: Path) -> bool:
    return (path / RUN_FILE).exists() or (path / SPLIT_FILE).exists() or path.name.startswith("seed-")


def find_run_dirs(root: Path) -> list[Path]:
    """Every run directory under root (run.json, split.json or a seed-S folder), not descending into them."""
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        path = Path(dirpath)
        if path != root and _is_run_dir(path):
            found.append(path)
            dirnames[:] = []
        else:
            dirnames.sort()
    return sorted(found)


def _json_or_reason(file: Path, run_dir: Path, incomplete: list[dict]) -> dict | None:
    """The JSON in `file`, or None with the reason appended to `incomplete`."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        incomplete.append({"path": str(run_dir),
                           "reason": f"{file.name} is not valid JSON ({exc.msg}, line {exc.lineno})"})
        return None


def read_runs(root: str | Path, split: str = "validation") -> tuple[list[Run], list[dict]]:
    """Completed runs, and {path, reason} for every run directory that is not complete for `split`."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: no such directory")
    runs, incomplete = [], []
    for path in find_run_dirs(root):
        info_path, metrics_path = path / RUN_FILE, path / metrics_file(split)
        if not info_path.is_file():
            incomplete.append({"path": str(path), "reason": "not trained (no run.json)"})
            continue
        info = _json_or_reason(info_path, path, incomplete)
        if info is None:
            continue
        if not info.get("complete"):
            incomplete.append({"path": str(path), "reason": "training did not finish (run.json not complete)"})
            continue
        if not metrics_path.is_file():
            incomplete.append({"path": str(path), "reason": f"not generated ({metrics_path.name} missing)"})
            continue
        metrics = _json_or_reason(metrics_path, path, incomplete)
        if metrics is None:
            continue
        tc = info.get("train_config", {})
        runs.append(Run(
            path=str(path), dataset=tc.get("dataset") or metrics.get("dataset", "?"),
            model=info.get("base_model", "?"), config=info.get("config", "?"), kind=info.get("kind", "?"),
            seed=int(tc.get("seed", metrics.get("split_seed", -1))), accuracy=100 * float(metrics["accuracy"]),
            nberts=nberts_of(metrics), percent=info.get("percent"), flops=info.get("train_flops_per_step"),
        ))
    return runs, incomplete


def missing_runs(runs: list[Run], incomplete: list[dict], root: Path) -> list[str]:
    """Seed folders absent from the sweep layout ROOT/DATASET/CONFIG/seed-S, for the configurations and
    seeds that the other runs of the same dataset have."""
    present = {Path(r.path) for r in runs} | {Path(i["path"]) for i in incomplete}
    out = []
    for dataset in sorted({r.dataset for r in runs}):
        mine = [r for r in runs if r.dataset == dataset]
        seeds = sorted({r.seed for r in mine})
        for config in sorted({r.config for r in mine}):
            for seed in seeds:
                expected = root / dataset / config / f"seed-{seed}"
                if expected not in present and not any(r.config == config and r.seed == seed for r in mine):
                    out.append(str(expected))
    return out


# --- aggregation ----------------------------------------------------------------------------------


def _mark(p: float | None, alpha: float, mean: float, baseline_mean: float) -> str:
    """▽ (the paper's mark) for significantly below the baseline; △ for significantly above, so that an
    improvement is never shown with the paper's downward mark."""
    if p is None or p >= alpha:
        return ""
    return "▽" if mean < baseline_mean else "△"


def aggregate(runs: list[Run], ddof: int = 0, alpha: float = 0.01, test: Test = "paired") -> list[Row]:
    """Rows per dataset x model x configuration, with the t-test against the table's baseline."""
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.dataset, r.model, r.config), []).append(r)
    rows: dict[tuple[str, str, str], Row] = {}
    for (dataset, model, config), rs in groups.items():
        rs = sorted(rs, key=lambda r: r.seed)
        acc_m, acc_s = mean_std([r.accuracy for r in rs], ddof)
        nb = [r.nberts for r in rs]
        nb_m, nb_s = mean_std([x for x in nb if x is not None], ddof) if all(x is not None for x in nb) else (None, None)
        percents = [r.percent for r in rs if r.percent is not None]
        percent = statistics.fmean(percents) if percents else None
        flops = [r.flops for r in rs if r.flops is not None]
        kind = rs[0].kind
        rows[(dataset, model, config)] = Row(
            dataset, model, config, kind, "sparsefit" if kind in ("sparse", "full") else "peft",
            [r.seed for r in rs], acc_m, acc_s, nb_m, nb_s, percent, tradeoff(percent, nb_m),
            statistics.fmean(flops) if flops else None,
            per_seed={str(r.seed): {"accuracy": r.accuracy, "nberts": r.nberts} for r in rs},
        )
    for (dataset, model, config), row in rows.items():
        base_name = SPARSE_BASELINE if row.table == "sparsefit" else PEFT_BASELINE
        base = rows.get((dataset, model, base_name))
        if base is None or config == base_name:
            continue
        row.baseline = base_name
        for metric in ("accuracy", "nberts"):
            mine = {int(s): v[metric] for s, v in row.per_seed.items() if v[metric] is not None}
            theirs = {int(s): v[metric] for s, v in base.per_seed.items() if v[metric] is not None}
            p = t_test(mine, theirs, test) if mine and theirs else None
            setattr(row, f"p_{metric}", p)
            if p is not None:
                setattr(row, f"mark_{metric}", _mark(p, alpha, getattr(row, f"{metric}_mean"),
                                                     getattr(base, f"{metric}_mean")))
    order = {"full": 0, "sparse": 1}
    return sorted(rows.values(), key=lambda r: (r.dataset, r.model, r.table != "sparsefit",
                                                order.get(r.kind, 2), r.config))


# --- output ---------------------------------------------------------------------------------------


def fmt_pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return DASH
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def fmt(x: float | None, spec: str = ".2f") -> str:
    return DASH if x is None else format(x, spec)


def table_rows(rows: list[Row]) -> list[tuple[tuple[str, str, str], list[Row]]]:
    """Rows per table (dataset, model, kind of table); a PEFT table starts with its baseline row."""
    out = []
    for key in dict.fromkeys((r.dataset, r.model, r.table) for r in rows):
        mine = [r for r in rows if (r.dataset, r.model, r.table) == key]
        if key[2] == "peft":
            base = [r for r in rows if (r.dataset, r.model, r.config) == (key[0], key[1], PEFT_BASELINE)]
            mine = base + mine
        out.append((key, mine))
    return out


def table_lines(rows: list[Row]) -> list[str]:
    """Markdown tables, one per dataset x model x table."""
    out = []
    for (dataset, model, table), mine in table_rows(rows):
        base = SPARSE_BASELINE if table == "sparsefit" else PEFT_BASELINE
        title = "SparseFit configurations vs full fine-tuning" if table == "sparsefit" else f"PEFT methods vs {base}"
        out += [f"### {dataset} · {model} · {title}", "",
                "| configuration | seeds | accuracy | nBERTs | % params | trade-off | FLOPs/step |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for r in mine:
            out.append(f"| {r.config} | {len(r.seeds)} | {fmt_pm(r.accuracy_mean, r.accuracy_std)}{r.mark_accuracy} "
                       f"| {fmt_pm(r.nberts_mean, r.nberts_std)}{r.mark_nberts} | {fmt(r.percent)} "
                       f"| {fmt(r.tradeoff)} | {fmt(r.flops_per_step, '.3g')} |")
        out.append("")
    return out


CSV_COLUMNS = ("dataset", "model", "config", "kind", "table", "n_seeds", "seeds", "accuracy_mean", "accuracy_std",
               "nberts_mean", "nberts_std", "percent", "tradeoff", "flops_per_step", "baseline", "p_accuracy",
               "p_nberts", "mark_accuracy", "mark_nberts")


def _csv_cell(value) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs cells starting with = + - @ as formulas; numbers may start with '-'.
    if text[:1] in ("=", "+", "@") or (text[:1] == "-" and not _is_number(text)):
        text = "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def write_csv(rows: list[Row], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            d = asdict(r)
            d["n_seeds"] = len(r.seeds)
            d["seeds"] = " ".join(map(str, r.seeds))
            w.writerow([_csv_cell(d[c]) for c in CSV_COLUMNS])


def figure_html(runs: list[Run]) -> str:
    """Figure 1: box plots of nBERTs over seeds per configuration, one panel per dataset (plotly, inline JS)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    datasets = sorted({r.dataset for r in runs if r.nberts is not None})
    if not datasets:
        return "<p>No nBERTs to plot (no run has NLE metrics).</p>"
    fig = make_subplots(rows=len(datasets), cols=1, subplot_titles=datasets, vertical_spacing=0.08)
    for k, dataset in enumerate(datasets, 1):
        mine = [r for r in runs if r.dataset == dataset and r.nberts is not None]
        for config in sorted({r.config for r in mine}):
            values = [r.nberts for r in mine if r.config == config]
            fig.add_trace(go.Box(y=values, name=config, boxpoints="all", showlegend=False), row=k, col=1)
        fig.update_yaxes(title_text="nBERTs", row=k, col=1)
    fig.update_layout(height=420 * len(datasets), title="Figure 1: nBERTs over seeds per configuration")
    return fig.to_html(full_html=False, include_plotlyjs=True)


def write_html(rows: list[Row], runs: list[Run], incomplete: list[dict], missing: list[str], note: str,
               path: Path) -> None:
    """A self-contained page: tables, Figure 1, and the runs that were missing or incomplete."""
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>nle-gen results</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}</style>",
             "</head><body><h1>Results</h1>", f"<p>{e(note)}</p>"]
    for (dataset, model, table), mine in table_rows(rows):
        base = SPARSE_BASELINE if table == "sparsefit" else PEFT_BASELINE
        parts.append(f"<h2>{e(dataset)} · {e(model)} · {'vs ' + e(base)}</h2><table><tr><th>configuration</th>"
                     "<th>seeds</th><th>accuracy</th><th>nBERTs</th><th>% params</th><th>trade-off</th>"
                     "<th>FLOPs/step</th></tr>")
        for r in mine:
            cells = [r.config, str(len(r.seeds)), fmt_pm(r.accuracy_mean, r.accuracy_std) + r.mark_accuracy,
                     fmt_pm(r.nberts_mean, r.nberts_std) + r.mark_nberts, fmt(r.percent), fmt(r.tradeoff),
                     fmt(r.flops_per_step, ".3g")]
            parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    parts.append("<h2>Figure 1</h2>" + figure_html(runs))
    parts.append(f"<h2>Missing or incomplete run directories ({len(missing) + len(incomplete)})</h2><ul>")
    parts += [f"<li>{e(m)}: missing</li>" for m in missing]
    parts += [f"<li>{e(i['path'])}: {e(i['reason'])}</li>" for i in incomplete]
    parts.append("</ul></body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")


def note_text(alpha: float, ddof: int, test: Test) -> str:
    return (f"mean ± std over seeds ({'population std, ddof 0, as FEB exp.py np.std' if ddof == 0 else 'sample std, ddof 1'}); "
            f"accuracy and nBERTs in percent; ▽ / △: significantly below / above the baseline, p < {alpha:g}, "
            f"{TEST_NAMES[test]}, against full_ft (SparseFit tables) or {PEFT_BASELINE} (PEFT tables); trade-off = (1 - %params/100) x nBERTs; "
            f"FLOPs/step from run.json train_flops_per_step (see generation/flops.py); {DASH} = not available "
            "(e.g. a label-only method has no nBERTs)")


def write_results(runs_dir: str | Path, out: str | Path, split: str = "validation", alpha: float = 0.01,
                  ddof: int = 0, test: Test = "paired") -> str:
    """Read every run under runs_dir and write tables.md, results.csv, results.json, results.html to out."""
    if test not in TEST_NAMES:
        raise ValueError(f"test must be one of {', '.join(TEST_NAMES)}")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")
    root = Path(runs_dir)
    runs, incomplete = read_runs(root, split)
    if not runs:
        raise ValueError(f"{root}: no completed run with {metrics_file(split)} "
                         f"({len(incomplete)} incomplete run directories)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a directory")
    rows = aggregate(runs, ddof, alpha, test)
    missing = missing_runs(runs, incomplete, root)
    note = note_text(alpha, ddof, test)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tables.md").write_text("\n".join([f"_{note}_", "", *table_lines(rows)]), encoding="utf-8")
    write_csv(rows, out / "results.csv")
    (out / "results.json").write_text(json.dumps({
        "split": split, "test": TEST_NAMES[test], "alpha": alpha, "ddof": ddof, "note": note,
        "rows": [asdict(r) for r in rows], "runs": [asdict(r) for r in runs],
        "missing": missing, "incomplete": incomplete,
    }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_html(rows, runs, incomplete, missing, note, out / "results.html")
    lines = table_lines(rows)
    lines.append(note)
    lines.append(f"{len(runs)} completed run(s); {len(missing)} missing, {len(incomplete)} incomplete"
                 + (" (listed in results.json and results.html)" if missing or incomplete else ""))
    lines.append(f"wrote {out / 'tables.md'}, results.csv, results.json, results.html")
    return "\n".join(lines)

