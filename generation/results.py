"""`nle-gen results`: the paper's Tables 1-3 and Figure 1 from a sweep's run directories.

Only the `results` command imports this module; scipy and plotly are imported here, never by `train` or
`generate`. Accuracy and nBERTs are shown in percent (FEB's nBERTs: BERTScore F1 x 100, 0 for wrong
predictions); mean ± std over seeds with FEB's np.std (population, ddof 0) by default.

Each run counts once per dataset x model x configuration x seed (`deduplicate`); runs are grouped by the
model's hub name (run.json `model_name`), not by the path it was loaded from; nBERTs scored with different
settings (metrics.json `scoring`) never share a table.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
import math
import os
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from generation.hub import hub_name
from generation.rundir import RUN_FILE, SPLIT_FILE, metrics_file

Test = Literal["paired", "welch"]
Marks = Literal["paper", "direction"]
Duplicates = Literal["newest", "refuse"]
TEST_NAMES = {
    "paired": "two-sided paired t-test (scipy.stats.ttest_rel) over the seeds both configurations have "
              "(the same seed = the same few-shot split)",
    "welch": "two-sided Welch t-test (scipy.stats.ttest_ind, equal_var=False)",
}
MARKS = {
    "paper": "▽: significantly different from the baseline, better or worse (the paper's mark)",
    "direction": "▽ / △: significantly below / above the baseline",
}
SPARSE_BASELINE, PEFT_BASELINE = "full_ft", "att_q+layer_norm"
DASH = "—"

# The tables: Table 1 (T5: SparseFit configurations vs full fine-tuning), Table 2 (T5: PEFT methods vs
# SparseFit's Att.Q+LN), Table 3 (decoder-only models: every row vs the SparseFit row, as its caption says),
# and label-only methods (DecT), whose accuracy is a classifier's, never tested against generated answers.
SPARSEFIT, PEFT, DECODER_ONLY, LABEL_ONLY = "sparsefit", "peft", "decoder_only", "label_only"
BASELINE = {SPARSEFIT: SPARSE_BASELINE, PEFT: PEFT_BASELINE, DECODER_ONLY: PEFT_BASELINE, LABEL_ONLY: None}
TABLE_TITLE = {
    SPARSEFIT: "SparseFit configurations vs full_ft (Table 1)",
    PEFT: f"PEFT methods vs {PEFT_BASELINE} (Table 2)",
    DECODER_ONLY: f"decoder-only model: every configuration vs SparseFit's {PEFT_BASELINE} (Table 3)",
    LABEL_ONLY: "label-only methods (no explanation; accuracy not tested against generation)",
}
TABLE_ORDER = (SPARSEFIT, PEFT, DECODER_ONLY, LABEL_ONLY)
# The paper's column order and names.
DATASET_TITLE = {"comve": "ComVE", "ecqa": "ECQA", "sbic": "SBIC", "esnli": "e-SNLI"}
# Model types `generation.components` treats as decoder-only, for runs whose run.json predates `decoder_only`.
_DECODER_ONLY_NAMES = ("llama", "mistral", "qwen")
_UNIFIEDQA = re.compile(r"^(?:allenai/)?unifiedqa-(t5-(?:small|base|large|3b|11b))$")


@dataclass
class Run:
    """One completed run's numbers."""

    path: str
    dataset: str
    model: str  # the name runs are grouped by: run.json model_name, else the hub id, else the path
    config: str
    kind: str
    seed: int
    accuracy: float  # percent
    nberts: float | None  # percent; None for label-only methods ("nle": null) or when not computed
    percent: float | None
    flops: float | None
    base_model: str = ""  # as trained (a path for a local model)
    decoder_only: bool = False
    label_only: bool = False
    scoring: dict | None = None  # metrics.json `scoring` (None: nBERTs not computed, or not recorded)
    generated: str | None = None  # metrics.json `generated`
    ended: str | None = None  # run.json `ended`

    @property
    def table(self) -> str:
        if self.label_only:
            return LABEL_ONLY
        if self.decoder_only:
            return DECODER_ONLY
        return SPARSEFIT if self.kind in ("sparse", "full") else PEFT


@dataclass
class Row:
    """One dataset x model x configuration over its seeds."""

    dataset: str
    model: str
    config: str
    kind: str
    table: str  # sparsefit (vs full_ft), peft (vs att_q+layer_norm), decoder_only (vs att_q+layer_norm), label_only
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
    nberts_seeds: list[int] = field(default_factory=list)  # the seeds the nBERTs figures are over
    nberts_note: str = ""  # why nBERTs is missing or over fewer seeds
    baseline_note: str = ""  # why no test was made
    base_models: list[str] = field(default_factory=list)  # the models as trained (paths or hub ids)
    scoring: dict | None = None


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


def mark(p: float | None, alpha: float, mean: float, baseline_mean: float, marks: Marks = "paper") -> str:
    """The paper's ▽ on every difference with p < alpha, better or worse; marks="direction": ▽ below, △ above."""
    if p is None or p >= alpha:
        return ""
    return "△" if marks == "direction" and mean > baseline_mean else "▽"


# --- reading run directories ----------------------------------------------------------------------


class _Unusable(ValueError):
    """A completed run whose files cannot be counted (the reason names the file and field)."""


def nberts_of(metrics: dict) -> float | None:
    """nBERTs on FEB's 0-100 scale as `generate` writes it (`nbertscore`); None for a label-only method
    ("nle": null, DecT) or a run generated without --bertscore-model."""
    if "nle" in metrics and metrics["nle"] is None:
        return None
    value = metrics.get("nbertscore")
    return None if value is None else float(value)


def _number(value, where: str, low: float, high: float, required: bool = True) -> float | None:
    """A finite number in [low, high]; None when absent and optional; _Unusable otherwise."""
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Unusable(f"{where} is {'missing' if value is None else f'not a number ({value!r})'}")
    if not low <= value <= high:
        raise _Unusable(f"{where} = {value} is outside {low:g}..{high:g}")
    return float(value)


def _text(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Unusable(f"{where} is {'missing' if value is None else f'not a name ({value!r})'}")
    return value


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
    """The JSON object in `file`, or None with the reason appended to `incomplete`."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        reason = f"{file.name} is not valid JSON ({exc.msg}, line {exc.lineno})"
    except UnicodeDecodeError:
        reason = f"{file.name} is not UTF-8 text"
    except OSError as exc:
        reason = f"{file.name} cannot be read ({exc.strerror or exc})"
    else:
        if isinstance(data, dict):
            return data
        reason = f"{file.name} is not a JSON object"
    incomplete.append({"path": str(run_dir), "reason": reason})
    return None


def model_name_of(info: dict, aliases: dict[str, str] | None = None) -> str:
    """The name a run is grouped by: run.json `model_name` (train --model-name or the hub id), else the hub
    id of `base_model`, else `base_model` itself; then renamed by `aliases` (results --model-alias)."""
    tc = info.get("train_config") if isinstance(info.get("train_config"), dict) else {}
    base = str(info.get("base_model") or "?")
    name = info.get("model_name") or tc.get("model_name") or hub_name(base) or base
    aliases = aliases or {}
    return aliases.get(str(name), aliases.get(base, str(name)))


def _is_decoder_only(info: dict, model: str) -> bool:
    if isinstance(info.get("decoder_only"), bool):
        return info["decoder_only"]
    names = f"{model} {info.get('base_model', '')}".lower()
    return any(n in names for n in _DECODER_ONLY_NAMES)


def run_of(path: Path, info: dict, metrics: dict, metrics_name: str,
           aliases: dict[str, str] | None = None) -> Run:
    """A Run from run.json and the metrics file; _Unusable naming the file and field when they cannot count."""
    tc = info.get("train_config") if isinstance(info.get("train_config"), dict) else {}
    dataset = _text(tc.get("dataset") or metrics.get("dataset"), f"{RUN_FILE}: field 'train_config.dataset'")
    seed = tc.get("seed", metrics.get("split_seed"))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _Unusable(f"{RUN_FILE}: field 'train_config.seed' is {'missing' if seed is None else repr(seed)}")
    label_only = info.get("kind") == "dect" or ("nle" in metrics and metrics["nle"] is None)
    nberts = None if label_only else _number(metrics.get("nbertscore"), f"{metrics_name}: field 'nbertscore'",
                                             0, 100, required=False)
    scoring = metrics.get("scoring") if nberts is not None and isinstance(metrics.get("scoring"), dict) else None
    model = model_name_of(info, aliases)
    return Run(
        path=str(path), dataset=dataset, model=model,
        config=_text(info.get("config"), f"{RUN_FILE}: field 'config'"),
        kind=_text(info.get("kind"), f"{RUN_FILE}: field 'kind'"), seed=seed,
        accuracy=100 * _number(metrics.get("accuracy"), f"{metrics_name}: field 'accuracy'", 0, 1),
        nberts=nberts, percent=_number(info.get("percent"), f"{RUN_FILE}: field 'percent'", 0, 100, False),
        flops=_number(info.get("train_flops_per_step"), f"{RUN_FILE}: field 'train_flops_per_step'", 0,
                      math.inf, False),
        base_model=str(info.get("base_model") or "?"), decoder_only=_is_decoder_only(info, model),
        label_only=label_only, scoring=scoring,
        generated=metrics.get("generated") if isinstance(metrics.get("generated"), str) else None,
        ended=info.get("ended") if isinstance(info.get("ended"), str) else None,
    )


def read_runs(root: str | Path, split: str = "validation",
              aliases: dict[str, str] | None = None) -> tuple[list[Run], list[dict]]:
    """Completed runs, and {path, reason} for every run directory that is not complete for `split` or whose
    files cannot be counted."""
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
        try:
            runs.append(run_of(path, info, metrics, metrics_path.name, aliases))
        except _Unusable as exc:
            incomplete.append({"path": str(path), "reason": str(exc)})
    return runs, incomplete


def parse_aliases(pairs: list[str] | None) -> dict[str, str]:
    """--model-alias OLD=NEW pairs (a path or name, and the name to group it under)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ValueError(f"--model-alias {pair!r}: expected OLD=NEW, e.g. /models/t5-large=t5-large")
        out[old.strip()] = new.strip()
        out[str(Path(old.strip()).expanduser().resolve())] = new.strip()  # run.json stores local paths resolved
    return out


# --- one seed counts once -------------------------------------------------------------------------


def _time(text: str | None) -> dt.datetime | None:
    try:
        t = dt.datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return t.replace(tzinfo=dt.timezone.utc) if t is not None and t.tzinfo is None else t


def _recency(run: Run) -> tuple[dt.datetime, dt.datetime]:
    oldest = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return _time(run.generated) or oldest, _time(run.ended) or oldest


def deduplicate(runs: list[Run], rule: Duplicates = "newest") -> tuple[list[Run], list[dict]]:
    """One run per dataset x model x configuration x seed. Two run directories with the same key (a re-run
    kept aside) are never both counted: rule "newest" keeps the run generated last (metrics.json
    `generated`), then trained last (run.json `ended`), and refuses when neither tells them apart;
    rule "refuse" always refuses. Returns the runs kept and one record per key that had several."""
    groups: dict[tuple[str, str, str, int], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.dataset, r.model, r.config, r.seed), []).append(r)
    kept, duplicates = [], []
    for (dataset, model, config, seed), rs in groups.items():
        if len(rs) == 1:
            kept.append(rs[0])
            continue
        rs = sorted(rs, key=_recency, reverse=True)
        where = f"{dataset} · {model} · {config} · seed {seed}: {len(rs)} run directories ({', '.join(r.path for r in rs)})"
        if rule == "refuse":
            raise ValueError(f"{where}; a seed counts once: move all but one aside (or --duplicates newest)")
        if _recency(rs[0]) == _recency(rs[1]):
            raise ValueError(f"{where}, and their metrics.json `generated` and run.json `ended` times do not tell "
                             "which is newer; a seed counts once: move all but one aside")
        kept.append(rs[0])
        duplicates.append({"dataset": dataset, "model": model, "config": config, "seed": seed,
                           "kept": rs[0].path, "left_out": [r.path for r in rs[1:]],
                           "rule": "newest: the run generated last (metrics.json generated), then trained last "
                                   "(run.json ended)"})
    return sorted(kept, key=lambda r: r.path), duplicates


# --- which runs share a table ---------------------------------------------------------------------


def model_family(model: str) -> str:
    """UnifiedQA-T5 is T5 trained further: the paper prints its ComVE, ECQA and SBIC runs and T5's e-SNLI runs
    in one table (FEB's protocol pairs each dataset with one of them)."""
    found = _UNIFIEDQA.match(model)
    return found.group(1) if found else model


def table_groups(runs: list[Run]) -> dict[str, str]:
    """model -> the label of the paper-layout table its runs go to: a model family when each dataset has one
    model of that family (T5-large for e-SNLI with UnifiedQA-T5-large for the others), else the model itself."""
    by_family: dict[str, dict[str, set[str]]] = {}
    for r in runs:
        by_family.setdefault(model_family(r.model), {}).setdefault(r.dataset, set()).add(r.model)
    out = {}
    for fam, per_dataset in by_family.items():
        merge = all(len(models) == 1 for models in per_dataset.values())
        for models in per_dataset.values():
            for m in models:
                out[m] = fam if merge else m
    return out


_COMPARED = ("bertscore_model", "bertscore_layer", "broken_explanation", "lowercase")


def _scoring_key(run: Run) -> str:
    if run.scoring is None:
        return "not recorded (generated before metrics.json had `scoring`)"
    return ", ".join(f"{k} {run.scoring.get(k)!r}" for k in _COMPARED if k in run.scoring) or "not recorded"


def check_scoring(runs: list[Run], groups: dict[str, str]) -> None:
    """ValueError naming the runs when nBERTs in one table were computed with different settings (encoder,
    layer, broken-explanation mode): such numbers cannot be averaged or tested against each other."""
    per_table: dict[str, dict[str, list[Run]]] = {}
    for r in runs:
        if r.nberts is not None:
            per_table.setdefault(groups[r.model], {}).setdefault(_scoring_key(r), []).append(r)
    for table, variants in per_table.items():
        if len(variants) > 1:
            parts = []
            for key, rs in variants.items():
                shown = ", ".join(r.path for r in rs[:2]) + (f" and {len(rs) - 2} more" if len(rs) > 2 else "")
                parts.append(f"{key}: {shown}")
            raise ValueError(f"{table}: nBERTs scored with different settings cannot share a table ("
                             + "; ".join(parts) + "); generate these runs again with the same --bertscore-model, "
                             "--bertscore-layer and --broken-explanation")


# --- aggregation ----------------------------------------------------------------------------------


def _no_nberts_reason(rs: list[Run]) -> str:
    if all(r.label_only for r in rs):
        return "label only: no explanation to score"
    return "not scored: generated without --bertscore-model"


def _row(rs: list[Run], ddof: int) -> Row:
    rs = sorted(rs, key=lambda r: r.seed)
    first = rs[0]
    acc_m, acc_s = mean_std([r.accuracy for r in rs], ddof)
    scored = [r for r in rs if r.nberts is not None]
    nb_m, nb_s = mean_std([r.nberts for r in scored], ddof) if scored else (None, None)
    if not scored:
        note = _no_nberts_reason(rs)
    elif len(scored) < len(rs):
        note = (f"nBERTs over {len(scored)} of {len(rs)} seeds: seed(s) "
                f"{' '.join(str(r.seed) for r in rs if r.nberts is None)} generated without --bertscore-model")
    else:
        note = ""
    percents = [r.percent for r in rs if r.percent is not None]
    percent = statistics.fmean(percents) if percents else None
    flops = [r.flops for r in rs if r.flops is not None]
    return Row(
        first.dataset, first.model, first.config, first.kind, first.table, [r.seed for r in rs], acc_m, acc_s,
        nb_m, nb_s, percent, tradeoff(percent, nb_m), statistics.fmean(flops) if flops else None,
        per_seed={str(r.seed): {"accuracy": r.accuracy, "nberts": r.nberts} for r in rs},
        nberts_seeds=[r.seed for r in scored], nberts_note=note,
        base_models=sorted({r.base_model for r in rs}), scoring=scored[0].scoring if scored else None)


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or model.count("/") > 1


def aggregate(runs: list[Run], ddof: int = 0, alpha: float = 0.01, test: Test = "paired",
              marks: Marks = "paper") -> list[Row]:
    """Rows per dataset x model x configuration, with the t-test against the table's baseline. Give runs that
    count once (`deduplicate`)."""
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.dataset, r.model, r.config), []).append(r)
    rows = {key: _row(rs, ddof) for key, rs in groups.items()}
    for (dataset, model, config), row in rows.items():
        base_name = BASELINE[row.table]
        if base_name is None or config == base_name:
            continue
        base = rows.get((dataset, model, base_name))
        if base is None:
            hint = (f" (a local copy of a hub model? train --model-name, or results --model-alias {model}=NAME)"
                    if _looks_like_path(model) else "")
            row.baseline_note = f"no {base_name} run for {dataset} · {model}: not tested{hint}"
            continue
        row.baseline = base_name
        for metric in ("accuracy", "nberts"):
            mine = {int(s): v[metric] for s, v in row.per_seed.items() if v[metric] is not None}
            theirs = {int(s): v[metric] for s, v in base.per_seed.items() if v[metric] is not None}
            p = t_test(mine, theirs, test) if mine and theirs else None
            setattr(row, f"p_{metric}", p)
            if p is not None:
                setattr(row, f"mark_{metric}", mark(p, alpha, getattr(row, f"{metric}_mean"),
                                                    getattr(base, f"{metric}_mean"), marks))
    return sorted(rows.values(), key=lambda r: (r.dataset, r.model, TABLE_ORDER.index(r.table),
                                                _config_order(r.table, r.config), r.config))


def _config_order(table: str, config: str) -> int:
    """The baseline first; in Table 1 full_ft, in Table 3 the SparseFit row, then full_ft, the rest after."""
    if config == BASELINE[table]:
        return 0
    return 1 if config == SPARSE_BASELINE else 2


# --- output ---------------------------------------------------------------------------------------


def fmt_pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return DASH
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def fmt(x: float | None, spec: str = ".2f") -> str:
    return DASH if x is None else format(x, spec)


def accuracy_cell(r: Row, marks: bool = True) -> str:
    return fmt_pm(r.accuracy_mean, r.accuracy_std) + (r.mark_accuracy if marks else "")


def nberts_cell(r: Row, marks: bool = True) -> str:
    if r.nberts_mean is None:
        return DASH
    partial = f" ({len(r.nberts_seeds)}/{len(r.seeds)} seeds)" if len(r.nberts_seeds) < len(r.seeds) else ""
    return fmt_pm(r.nberts_mean, r.nberts_std) + (r.mark_nberts if marks else "") + partial


def table_rows(rows: list[Row]) -> list[tuple[tuple[str, str, str], list[Row]]]:
    """Rows per table (dataset, model, kind of table); a table starts with its baseline row."""
    out = []
    for key in dict.fromkeys((r.dataset, r.model, r.table) for r in rows):
        mine = [r for r in rows if (r.dataset, r.model, r.table) == key]
        base_name = BASELINE[key[2]]
        if base_name and not any(r.config == base_name for r in mine):
            mine = [r for r in rows if (r.dataset, r.model, r.config) == (key[0], key[1], base_name)] + mine
        out.append((key, mine))
    return out


def _notes(rows: list[Row]) -> list[str]:
    return list(dict.fromkeys(f"{r.config}: {n}" for r in rows for n in (r.baseline_note, r.nberts_note) if n))


def table_lines(rows: list[Row]) -> list[str]:
    """Markdown tables, one per dataset x model x table (the second view)."""
    out = []
    for (dataset, model, table), mine in table_rows(rows):
        out += [f"### {dataset} · {model} · {TABLE_TITLE[table]}", "",
                "| configuration | seeds | accuracy | nBERTs | % params | trade-off | FLOPs/step |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for r in mine:
            m = r.config != BASELINE[table]  # a table's baseline row carries no marks (they are from Table 1)
            out.append(f"| {r.config} | {len(r.seeds)} | {accuracy_cell(r, m)} | {nberts_cell(r, m)} | {fmt(r.percent)} "
                       f"| {fmt(r.tradeoff)} | {fmt(r.flops_per_step, '.3g')} |")
        out += [""] + [f"- {n}" for n in _notes(mine)] + ([""] if _notes(mine) else [])
    return out


@dataclass
class PaperTable:
    """One table in the paper's layout: datasets as columns plus their average, two lines per configuration."""

    label: str  # the model (family) the table is about
    table: str
    models: dict[str, list[str]]  # dataset -> the models its runs used
    datasets: list[str]
    configs: list[str]
    cells: dict[tuple[str, str], Row]  # (config, dataset) -> row

    def percent(self, config: str) -> str:
        values = sorted({round(r.percent, 2) for (c, _), r in self.cells.items() if c == config and r.percent is not None})
        if not values:
            return DASH
        return f"{values[0]:.2f}" if len(values) == 1 else f"{values[0]:.2f}–{values[-1]:.2f}"

    def average(self, config: str, metric: str) -> float | None:
        """The mean over the table's datasets of the configuration's means; None unless it has every one."""
        values = [getattr(self.cells[(config, d)], f"{metric}_mean") if (config, d) in self.cells else None
                  for d in self.datasets]
        return statistics.fmean(values) if values and all(v is not None for v in values) else None

    def lines(self, config: str) -> list[tuple[str, list[str], str]]:
        """(metric name, a cell per dataset, the average) for the configuration's Acc. and nBERTs lines."""
        out = []
        metrics = [("Acc.", "accuracy", accuracy_cell)]
        if self.table != LABEL_ONLY:
            metrics.append(("nBERTs", "nberts", nberts_cell))
        show = config != BASELINE[self.table]  # the baseline row carries no marks (in Table 2 they are Table 1's)
        for name, metric, cell in metrics:
            cells = [cell(self.cells[(config, d)], show) if (config, d) in self.cells else DASH
                     for d in self.datasets]
            out.append((name, cells, fmt(self.average(config, metric))))
        return out

    def title(self) -> str:
        models = "; ".join(f"{', '.join(DATASET_TITLE.get(d, d) for d in ds)}: {m}"
                           for m, ds in _invert(self.models).items())
        return f"{self.label} · {TABLE_TITLE[self.table]} · models: {models}"

    def notes(self) -> list[str]:
        return _notes([self.cells[(c, d)] for c in self.configs for d in self.datasets if (c, d) in self.cells])


def _invert(models: dict[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for dataset, ms in models.items():
        for m in ms:
            out.setdefault(m, []).append(dataset)
    return out


def _dataset_order(dataset: str) -> tuple[int, str]:
    order = list(DATASET_TITLE)
    return (order.index(dataset) if dataset in order else len(order), dataset)


def paper_tables(rows: list[Row], groups: dict[str, str]) -> list[PaperTable]:
    """The paper's layout: per model (family) and table, the datasets ComVE, ECQA, SBIC, e-SNLI as columns."""
    keys = dict.fromkeys((groups.get(r.model, r.model), r.table) for r in rows)
    out = []
    for label, table in sorted(keys, key=lambda k: (k[0], TABLE_ORDER.index(k[1]))):
        mine = [r for r in rows if groups.get(r.model, r.model) == label and r.table == table]
        base_name = BASELINE[table]
        if base_name and table == PEFT:  # Table 2 starts with the SparseFit row it tests against
            mine = [r for r in rows if groups.get(r.model, r.model) == label and r.config == base_name
                    and r.table == SPARSEFIT] + mine
        datasets = sorted({r.dataset for r in mine}, key=_dataset_order)
        configs = list(dict.fromkeys(r.config for r in sorted(
            mine, key=lambda r: (_config_order(table, r.config), r.table != table, r.config))))
        models: dict[str, list[str]] = {}
        for r in mine:
            models.setdefault(r.dataset, [])
            if r.model not in models[r.dataset]:
                models[r.dataset].append(r.model)
        out.append(PaperTable(label, table, {d: models[d] for d in datasets}, datasets, configs,
                              {(r.config, r.dataset): r for r in mine}))
    return out


def paper_lines(tables: list[PaperTable]) -> list[str]:
    """Markdown of the paper's layout (the first view)."""
    out = []
    for t in tables:
        heads = [DATASET_TITLE.get(d, d) for d in t.datasets]
        out += [f"### {t.title()}", "",
                "| configuration | % params | | " + " | ".join(heads) + " | Average |",
                "|---|---:|---|" + "---:|" * (len(heads) + 1)]
        for config in t.configs:
            for k, (name, cells, average) in enumerate(t.lines(config)):
                lead = f"| {config} | {t.percent(config)} |" if k == 0 else "| | |"
                out.append(f"{lead} {name} | " + " | ".join(cells) + f" | {average} |")
        out += [""] + [f"- {n}" for n in t.notes()] + ([""] if t.notes() else [])
    return out


def paper_json(t: PaperTable) -> dict:
    return {"title": t.title(), "model": t.label, "table": t.table, "models": t.models,
            "datasets": t.datasets,
            "rows": [{"config": c, "percent": t.percent(c),
                      **{name: {"cells": dict(zip(t.datasets, cells, strict=True)), "average": avg}
                         for name, cells, avg in t.lines(c)}} for c in t.configs],
            "notes": t.notes()}


CSV_COLUMNS = ("dataset", "model", "config", "kind", "table", "n_seeds", "seeds", "accuracy_mean", "accuracy_std",
               "nberts_mean", "nberts_std", "percent", "tradeoff", "flops_per_step", "baseline", "p_accuracy",
               "p_nberts", "mark_accuracy", "mark_nberts", "n_nberts_seeds", "nberts_note", "baseline_note")


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
            d["n_nberts_seeds"] = len(r.nberts_seeds)
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


def _html_notes(notes: list[str]) -> str:
    return "<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>" if notes else ""


def write_html(rows: list[Row], tables: list[PaperTable], runs: list[Run], incomplete: list[dict],
               missing: list[str], duplicates: list[dict], note: str, path: Path) -> None:
    """A self-contained page: the paper's tables, the per-dataset tables, Figure 1, and the run directories
    that were left out, missing or incomplete."""
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>nle-gen results</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1em}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
             ".notes{margin-bottom:2em}</style>",
             "</head><body><h1>Results</h1>", f"<p>{e(note)}</p>", "<h2>Tables in the paper's layout</h2>"]
    for t in tables:
        heads = "".join(f"<th>{e(DATASET_TITLE.get(d, d))}</th>" for d in t.datasets)
        parts.append(f"<h3>{e(t.title())}</h3><table><tr><th>configuration</th><th>% params</th><th></th>{heads}"
                     "<th>Average</th></tr>")
        for config in t.configs:
            lines = t.lines(config)
            for k, (name, cells, average) in enumerate(lines):
                lead = (f"<td rowspan='{len(lines)}'>{e(config)}</td><td rowspan='{len(lines)}'>"
                        f"{e(t.percent(config))}</td>" if k == 0 else "")
                parts.append(f"<tr>{lead}<td>{e(name)}</td>" + "".join(f"<td>{e(c)}</td>" for c in cells)
                             + f"<td>{e(average)}</td></tr>")
        parts.append("</table>" + _html_notes(t.notes()))
    parts.append("<h2>Per-dataset tables</h2>")
    for (dataset, model, table), mine in table_rows(rows):
        parts.append(f"<h3>{e(dataset)} · {e(model)} · {e(TABLE_TITLE[table])}</h3><table><tr><th>configuration</th>"
                     "<th>seeds</th><th>accuracy</th><th>nBERTs</th><th>% params</th><th>trade-off</th>"
                     "<th>FLOPs/step</th></tr>")
        for r in mine:
            m = r.config != BASELINE[table]
            cells = [r.config, str(len(r.seeds)), accuracy_cell(r, m), nberts_cell(r, m), fmt(r.percent),
                     fmt(r.tradeoff), fmt(r.flops_per_step, ".3g")]
            parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
        parts.append("</table>" + _html_notes(_notes(mine)))
    parts.append("<h2>Figure 1</h2>" + figure_html(runs))
    parts.append(f"<h2>Seeds counted once ({len(duplicates)})</h2><ul>")
    parts += [f"<li>{e(duplicate_line(d))}</li>" for d in duplicates]
    parts.append(f"</ul><h2>Missing or incomplete run directories ({len(missing) + len(incomplete)})</h2><ul>")
    parts += [f"<li>{e(m)}: missing</li>" for m in missing]
    parts += [f"<li>{e(i['path'])}: {e(i['reason'])}</li>" for i in incomplete]
    parts.append("</ul></body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")


def duplicate_line(d: dict) -> str:
    return (f"{d['dataset']} · {d['model']} · {d['config']} · seed {d['seed']}: counted {d['kept']}, left out "
            f"{', '.join(d['left_out'])} (the newest counts: generated last, then trained last)")


def note_text(alpha: float, ddof: int, test: Test, marks: Marks = "paper") -> str:
    return (f"mean ± std over seeds ({'population std, ddof 0, as FEB exp.py np.std' if ddof == 0 else 'sample std, ddof 1'}); "
            f"accuracy and nBERTs in percent; {MARKS[marks]}, p < {alpha:g}, {TEST_NAMES[test]}, against "
            f"full_ft (Table 1), {PEFT_BASELINE} (Table 2; Table 3 for decoder-only models); label-only methods "
            f"are not tested; Average = mean over the table's datasets; trade-off = (1 - %params/100) x nBERTs; "
            f"FLOPs/step from run.json train_flops_per_step (see generation/flops.py); {DASH} = not available "
            "(e.g. a label-only method has no nBERTs)")


def write_results(runs_dir: str | Path, out: str | Path, split: str = "validation", alpha: float = 0.01,
                  ddof: int = 0, test: Test = "paired", marks: Marks = "paper", duplicates: Duplicates = "newest",
                  model_aliases: list[str] | None = None) -> str:
    """Read every run under runs_dir and write tables.md, results.csv, results.json, results.html to out."""
    if test not in TEST_NAMES:
        raise ValueError(f"test must be one of {', '.join(TEST_NAMES)}")
    if marks not in MARKS:
        raise ValueError(f"marks must be one of {', '.join(MARKS)}")
    if duplicates not in ("newest", "refuse"):
        raise ValueError("duplicates must be newest or refuse")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")
    root = Path(runs_dir)
    runs, incomplete = read_runs(root, split, parse_aliases(model_aliases))
    if not runs:
        raise ValueError(f"{root}: no completed run with {metrics_file(split)} "
                         f"({len(incomplete)} incomplete run directories)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a directory")
    runs, dups = deduplicate(runs, duplicates)
    groups = table_groups(runs)
    check_scoring(runs, groups)
    rows = aggregate(runs, ddof, alpha, test, marks)
    tables = paper_tables(rows, groups)
    missing = missing_runs(runs, incomplete, root)
    note = note_text(alpha, ddof, test, marks)
    dup_lines = [duplicate_line(d) for d in dups]
    body = ["## Tables in the paper's layout", "", *paper_lines(tables), "## Per-dataset tables", "",
            *table_lines(rows)]
    try:
        out.mkdir(parents=True, exist_ok=True)
        counted_once = ["## Seeds counted once", "", *[f"- {d}" for d in dup_lines], ""] if dup_lines else []
        (out / "tables.md").write_text("\n".join([f"_{note}_", "", *body, *counted_once]), encoding="utf-8")
        write_csv(rows, out / "results.csv")
        (out / "results.json").write_text(json.dumps({
            "split": split, "test": TEST_NAMES[test], "alpha": alpha, "ddof": ddof, "marks": MARKS[marks],
            "note": note, "paper_tables": [paper_json(t) for t in tables], "rows": [asdict(r) for r in rows],
            "runs": [asdict(r) for r in runs], "duplicates": dups, "missing": missing, "incomplete": incomplete,
        }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        write_html(rows, tables, runs, incomplete, missing, dups, note, out / "results.html")
    except OSError as exc:
        raise ValueError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    lines = [*body, note]
    lines += [f"seed counted once: {d}" for d in dup_lines]
    lines.append(f"{len(runs)} completed run(s); {len(dups)} duplicate seed(s) left out; {len(missing)} missing, "
                 f"{len(incomplete)} incomplete"
                 + (" (listed in results.json and results.html)" if missing or incomplete or dups else ""))
    lines.append(f"wrote {out / 'tables.md'}, results.csv, results.json, results.html")
    return "\n".join(lines)


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
