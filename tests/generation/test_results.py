"""`nle-gen results` on synthetic run directories: means, stds, t-tests (hand-worked and scipy), the files."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats

from generation.cli import main
from generation.results import aggregate, mean_std, nberts_of, read_runs, t_test, tradeoff, write_results

ROOT = Path(__file__).resolve().parents[2]


def _run(root: Path, dataset: str, config: str, seed: int, accuracy: float, nberts: float | None,
         kind: str = "sparse", percent: float = 6.84, flops: float | None = 1.5e12, nle_null: bool = False,
         generated: bool = True, folder: str | None = None, model: str = "t5-large", run_extra: dict | None = None,
         metrics_extra: dict | None = None) -> Path:
    d = root / dataset / (folder or config) / f"seed-{seed}"
    d.mkdir(parents=True)
    (d / "split.json").write_text("{}")
    (d / "run.json").write_text(json.dumps({
        "complete": True, "base_model": model, "kind": kind, "config": config, "percent": percent,
        "train_config": {"dataset": dataset, "seed": seed}, "train_flops_per_step": flops, **(run_extra or {})}))
    if generated:
        metrics = {"accuracy": accuracy, "dataset": dataset, "split_seed": seed}
        # as generate writes them: nbertscore on FEB's 0-100 scale (and the same / 100); DecT: "nle": null
        if nle_null:
            metrics["nle"] = None
        elif nberts is not None:
            metrics.update(nbertscore=nberts, bertscore_normalized=nberts / 100)
        metrics.update(metrics_extra or {})
        (d / "metrics.json").write_text(json.dumps(metrics))
    return d


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    for seed, acc, nb in [(1, 0.80, 20), (2, 0.82, 21), (3, 0.84, 25)]:
        _run(root, "comve", "full_ft", seed, acc, nb, kind="full", percent=100.0, flops=3e12)
    for seed, acc, nb in [(1, 0.80, 10), (2, 0.81, 12), (3, 0.85, 14)]:
        _run(root, "comve", "att_q+layer_norm", seed, acc, nb)
    for seed, acc, nb in [(1, 0.70, 11), (2, 0.72, 12)]:  # seed 3 missing
        _run(root, "comve", "lora", seed, acc, nb, kind="peft", percent=4.8684)
    for seed, acc in [(1, 0.90), (2, 0.92), (3, 0.94)]:  # a label-only method: no NLE metrics
        _run(root, "comve", "dect", seed, acc, None, kind="dect", percent=0.01, flops=None, nle_null=True)
    _run(root, "comve", "att_q+layer_norm", 4, 0, 0, generated=False)  # trained, not generated
    (root / "comve" / "layer_norm" / "seed-1").mkdir(parents=True)  # never trained
    return root


@pytest.mark.parametrize(("metrics", "expected"), [
    ({"accuracy": 0.8, "nbertscore": 21.5, "bertscore_normalized": 0.215}, 21.5),  # generate's keys
    ({"accuracy": 0.8, "nbertscore": 0.0}, 0.0),  # every prediction wrong or label-only: a real 0, not missing
    ({"accuracy": 0.8, "nle": None, "nle_note": "labels only"}, None),  # DecT
    ({"accuracy": 0.8}, None),  # generated without --bertscore-model
])
def test_nberts_read_from_generates_metrics(metrics: dict, expected: float | None) -> None:
    assert nberts_of(metrics) == expected


def test_hand_worked_statistics() -> None:
    m, s = mean_std([10, 12, 14])
    assert m == 12 and s == pytest.approx(math.sqrt(8 / 3))  # population std, as FEB's np.std
    assert mean_std([10, 12, 14], ddof=1)[1] == pytest.approx(2.0)
    assert tradeoff(6.84, 12.0) == pytest.approx((1 - 0.0684) * 12)
    # paired, differences -10, -9, -11: t = -10 / (1 / sqrt 3) = -sqrt 300, df 2, where
    # P(|T| > t) = 1 - t / sqrt(t^2 + 2) exactly, so p = 1 - sqrt(300 / 302)
    p = t_test({1: 10, 2: 12, 3: 14}, {1: 20, 2: 21, 3: 25})
    assert p == pytest.approx(1 - math.sqrt(300 / 302), rel=1e-9)
    # two common seeds, differences 1 and 0: t = 1, df 1 (Cauchy): p = 1 - 2 atan(1) / pi = 0.5
    assert t_test({1: 11, 2: 12}, {1: 10, 2: 12, 3: 14}) == pytest.approx(0.5, rel=1e-9)
    assert t_test({1: 11}, {1: 10}) is None  # one pair: undefined


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_t_tests_agree_with_scipy(seed: int) -> None:
    import random

    rng = random.Random(seed)
    a = {s: rng.uniform(0, 50) for s in range(8)}
    b = {s: rng.uniform(0, 50) for s in range(8)}
    assert t_test(a, b, "paired") == pytest.approx(stats.ttest_rel(list(a.values()), list(b.values())).pvalue)
    assert t_test(a, b, "welch") == pytest.approx(
        stats.ttest_ind(list(a.values()), list(b.values()), equal_var=False).pvalue)


def test_aggregate_rows(sweep: Path) -> None:
    runs, incomplete = read_runs(sweep)
    rows = {r.config: r for r in aggregate(runs)}
    full, sparse, lora, dect = rows["full_ft"], rows["att_q+layer_norm"], rows["lora"], rows["dect"]
    assert full.accuracy_mean == pytest.approx(82) and full.accuracy_std == pytest.approx(math.sqrt(8 / 3))
    assert full.nberts_mean == pytest.approx(22) and full.nberts_std == pytest.approx(math.sqrt(14 / 3))
    assert sparse.nberts_mean == pytest.approx(12) and sparse.baseline == "full_ft"
    assert sparse.p_nberts == pytest.approx(1 - math.sqrt(300 / 302)) and sparse.mark_nberts == "▽"
    assert sparse.p_accuracy == pytest.approx(1.0) and sparse.mark_accuracy == ""  # differences 0, -1, 1
    assert sparse.tradeoff == pytest.approx((1 - 0.0684) * 12) and sparse.flops_per_step == 1.5e12
    assert lora.baseline == "att_q+layer_norm" and lora.p_nberts == pytest.approx(0.5) and lora.mark_nberts == ""
    assert lora.seeds == [1, 2]
    assert dect.nberts_mean is None and dect.tradeoff is None and dect.p_nberts is None
    assert dect.accuracy_mean == pytest.approx(92)
    assert {Path(i["path"]).parts[-2:] for i in incomplete} == {("att_q+layer_norm", "seed-4"), ("layer_norm", "seed-1")}


def test_results_command_writes_tables_csv_json_html(sweep: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["results", str(sweep), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "paired t-test" in printed and "p < 0.01" in printed and "▽: significantly different" in printed
    assert "| att_q+layer_norm | 3 | 82.00 ± 2.16 | 12.00 ± 1.63▽ | 6.84 | 11.18 | 1.5e+12 |" in printed
    # DecT picks a label: its own table, its accuracy never tested against generated answers
    assert "| dect | 3 | 92.00 ± 1.63 | — | 0.01 | — | — |" in printed
    peft_table = printed.split("PEFT methods vs att_q+layer_norm")[1]
    assert peft_table.index("| att_q+layer_norm |") < peft_table.index("| lora |")
    assert "1 missing, 2 incomplete" in printed

    with (out / "results.csv").open(encoding="utf-8") as f:
        rows = {r["config"]: r for r in csv.DictReader(f)}
    assert float(rows["att_q+layer_norm"]["nberts_mean"]) == pytest.approx(12)
    assert rows["att_q+layer_norm"]["mark_nberts"] == "▽" and rows["dect"]["nberts_mean"] == ""

    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert "paired t-test" in data["test"] and data["ddof"] == 0
    assert data["missing"] == [str(sweep / "comve" / "lora" / "seed-3")]
    assert {i["reason"].split(" (")[0] for i in data["incomplete"]} == {"not generated", "not trained"}

    page = (out / "results.html").read_text(encoding="utf-8")
    assert "Figure 1" in page and "plotly" in page.lower() and '"type":"box"' in page.replace(" ", "")
    assert "<script src=\"http" not in page  # self-contained: plotly.js is inline
    assert "seed-3: missing" in page and "not generated" in page


def test_results_ddof_option_and_empty_dir(sweep: Path, tmp_path: Path, capsys) -> None:
    summary = write_results(sweep, tmp_path / "o", ddof=1)
    assert "12.00 ± 2.00" in summary  # sample std of 10, 12, 14
    assert main(["results", str(tmp_path / "nothing"), "--out", str(tmp_path / "o2")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_train_and_generate_do_not_import_the_heavy_libraries() -> None:
    code = ("import sys, generation.cli, generation.train, generation.generate, generation.sweep; "
            "print(sorted({'pandas', 'plotly', 'streamlit', 'sqlite_utils'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- one seed counts once; nBERTs over the seeds that have it; one model under one name ------------------------


def _pair(root: Path, dataset: str = "esnli", model: str = "t5-large", **extra) -> None:
    """full_ft and att_q over seeds 1-3 (att_q above full_ft in accuracy: differences 5, 5.1, 4.9)."""
    for seed, acc, nb in [(1, 0.80, 20), (2, 0.82, 21), (3, 0.84, 25)]:
        _run(root, dataset, "full_ft", seed, acc, nb, kind="full", percent=100.0, model=model, **extra)
    for seed, acc, nb in [(1, 0.85, 10), (2, 0.871, 12), (3, 0.889, 14)]:
        _run(root, dataset, "att_q", seed, acc, nb, percent=6.82, model=model, **extra)


def test_a_rerun_kept_aside_counts_once_the_newest(tmp_path: Path, capsys) -> None:
    root = tmp_path / "runs"
    _pair(root, metrics_extra={"generated": "2024-05-01T10:00:00+00:00"})
    # the same seed re-run into another folder, generated later: it replaces seed 3, it is not a fourth seed
    rerun = _run(root, "esnli", "att_q", 3, 0.70, 30, percent=6.82, folder="att_q_rerun",
                 metrics_extra={"generated": "2024-06-01T10:00:00+00:00"})
    out = tmp_path / "out"
    assert main(["results", str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    row = next(r for r in data["rows"] if r["config"] == "att_q")
    assert row["seeds"] == [1, 2, 3] and row["accuracy_mean"] == pytest.approx((85 + 87.1 + 70) / 3)
    assert row["p_accuracy"] == pytest.approx(stats.ttest_rel([85, 87.1, 70], [80, 82, 84]).pvalue)
    kept = str(root / "esnli" / "att_q" / "seed-3")
    assert data["duplicates"] == [{"dataset": "esnli", "model": "t5-large", "config": "att_q", "seed": 3,
                                   "kept": str(rerun), "left_out": [kept], "rule": data["duplicates"][0]["rule"]}]
    assert f"counted {rerun}, left out {kept}" in printed and "1 duplicate seed(s) left out" in printed


def test_duplicates_refused_when_asked_or_when_nothing_says_which_is_newer(tmp_path: Path, capsys) -> None:
    root = tmp_path / "runs"
    _pair(root)
    _run(root, "esnli", "att_q", 3, 0.70, 30, percent=6.82, folder="att_q_rerun")  # no timestamps at all
    for argv in ([], ["--duplicates", "refuse"]):
        assert main(["results", str(root), "--out", str(tmp_path / "o"), *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "seed 3" in err
        assert str(root / "esnli" / "att_q" / "seed-3") in err and str(root / "esnli" / "att_q_rerun" / "seed-3") in err
    assert not (tmp_path / "o").exists()


def test_one_seed_without_nberts_reports_the_others_with_the_count(tmp_path: Path, capsys) -> None:
    root = tmp_path / "runs"
    _pair(root)
    # seed 4 of both generated without --bertscore-model: accuracy counts, nBERTs is over seeds 1-3
    _run(root, "esnli", "full_ft", 4, 0.86, None, kind="full", percent=100.0)
    _run(root, "esnli", "att_q", 4, 0.92, None, percent=6.82)
    _run(root, "comve", "att_q", 1, 0.5, None)  # and a configuration scored on no seed
    assert main(["results", str(root), "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out
    row = {(r.dataset, r.config): r for r in aggregate(read_runs(root)[0])}
    att_q = row[("esnli", "att_q")]
    assert att_q.seeds == [1, 2, 3, 4] and att_q.nberts_seeds == [1, 2, 3] and att_q.nberts_mean == pytest.approx(12)
    assert att_q.p_nberts == pytest.approx(1 - math.sqrt(300 / 302))  # the three seeds both have
    assert "12.00 ± 1.63▽ (3/4 seeds)" in printed and "nBERTs over 3 of 4 seeds: seed(s) 4" in printed
    assert row[("comve", "att_q")].nberts_mean is None
    assert "not scored: generated without --bertscore-model" in printed


def test_a_local_copy_groups_with_its_hub_name(tmp_path: Path, capsys) -> None:
    root = tmp_path / "runs"
    for seed, acc, nb in [(1, 0.80, 20), (2, 0.82, 21), (3, 0.84, 25)]:
        _run(root, "esnli", "full_ft", seed, acc, nb, kind="full", percent=100.0)  # trained from the hub id
    for seed, acc, nb in [(1, 0.80, 10), (2, 0.81, 12), (3, 0.85, 14)]:  # from a local copy, named by train
        _run(root, "esnli", "att_q", seed, acc, nb, model="/models/t5-large", run_extra={"model_name": "t5-large"})
    rows = {r.config: r for r in aggregate(read_runs(root)[0])}
    assert rows["att_q"].model == "t5-large" and rows["att_q"].baseline == "full_ft"
    assert rows["att_q"].mark_nberts == "▽" and rows["att_q"].base_models == ["/models/t5-large"]


def test_a_group_without_baseline_says_so_and_an_alias_joins_it(tmp_path: Path, capsys) -> None:
    root = tmp_path / "runs"
    for seed, acc, nb in [(1, 0.80, 20), (2, 0.82, 21), (3, 0.84, 25)]:
        _run(root, "esnli", "full_ft", seed, acc, nb, kind="full", percent=100.0)
    for seed, acc, nb in [(1, 0.80, 10), (2, 0.81, 12), (3, 0.85, 14)]:  # run.json from before model_name
        _run(root, "esnli", "att_q", seed, acc, nb, model="/models/t5-large")
    assert main(["results", str(root), "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out
    assert "no full_ft run for esnli · /models/t5-large: not tested" in printed and "--model-alias" in printed
    assert main(["results", str(root), "--out", str(tmp_path / "o"), "--model-alias", "/models/t5-large=t5-large"]) == 0
    data = json.loads((tmp_path / "o" / "results.json").read_text(encoding="utf-8"))
    row = next(r for r in data["rows"] if r["config"] == "att_q")
    assert row["model"] == "t5-large" and row["baseline"] == "full_ft" and row["mark_nberts"] == "▽"
    assert main(["results", str(root), "--out", str(tmp_path / "o"), "--model-alias", "t5-large"]) == 2
    assert "expected OLD=NEW" in capsys.readouterr().err


@pytest.mark.parametrize(("path", "name"), [
    ("t5-large", "t5-large"),
    ("allenai/unifiedqa-t5-large", "allenai/unifiedqa-t5-large"),
    ("/root/.cache/huggingface/hub/models--allenai--unifiedqa-t5-large/snapshots/0a1b2c", "allenai/unifiedqa-t5-large"),
    ("/models/t5-large", None),  # a local folder may hold anything: no name is guessed
    ("./t5-large", None),
])
def test_hub_name(path: str, name: str | None) -> None:
    from generation.hub import hub_name

    assert hub_name(path) == name


def test_train_records_the_model_name(tmp_path: Path) -> None:
    from generation.cli import build_parser, train_config_from_args
    from generation.modeling import run_model_name

    argv = ["train", "--dataset", "esnli", "--data-dir", str(tmp_path), "--seed", "1", "--config", "att_q",
            "--out", str(tmp_path / "r")]
    local = tmp_path / "t5-large"
    local.mkdir()
    cfg = train_config_from_args(build_parser().parse_args([*argv, "--model", str(local)]))
    assert cfg.model == str(local) and run_model_name(cfg) is None
    named = train_config_from_args(build_parser().parse_args([*argv, "--model", str(local), "--model-name", "t5-large"]))
    assert run_model_name(named) == "t5-large" and named.to_dict()["model_name"] == "t5-large"
    assert run_model_name(train_config_from_args(build_parser().parse_args([*argv, "--model", "t5-large"]))) == "t5-large"
    with pytest.raises(ValueError, match="model_name"):
        train_config_from_args(build_parser().parse_args([*argv, "--model", "t5-large", "--model-name", " "]))


# --- scoring settings ---------------------------------------------------------------------------------------


def test_nberts_scored_differently_are_refused_naming_the_runs(tmp_path: Path, capsys) -> None:
    root = tmp_path / "runs"
    feb = {"bertscore_model": "roberta-large", "bertscore_layer": 17, "lowercase": True, "broken_explanation": "empty"}
    _pair(root, metrics_extra={"scoring": feb})
    other = _run(root, "esnli", "att_q", 4, 0.9, 15, percent=6.82,
                 metrics_extra={"scoring": {**feb, "broken_explanation": "unk"}})
    assert main(["results", str(root), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scored with different settings" in err
    assert str(other) in err and "'unk'" in err and "'empty'" in err
    other.joinpath("metrics.json").write_text(json.dumps({"accuracy": 0.9, "nbertscore": 15, "scoring": feb}))
    assert main(["results", str(root), "--out", str(tmp_path / "o")]) == 0  # the same settings: one table
    data = json.loads((tmp_path / "o" / "results.json").read_text(encoding="utf-8"))
    assert next(r for r in data["rows"] if r["config"] == "att_q")["scoring"] == feb


# --- marks, layout, tables ----------------------------------------------------------------------------------


def test_marks_as_the_paper_prints_them(tmp_path: Path, capsys) -> None:
    """Table 1: Decoder e-SNLI 86.6 ▽ against the baseline's 84.8: the paper marks a significant improvement
    with ▽ too. --marks direction keeps ▽ below / △ above."""
    root = tmp_path / "runs"
    _pair(root)  # att_q accuracy 85, 87.1, 88.9 against 80, 82, 84: above, p < 0.01
    rows = {r.config: r for r in aggregate(read_runs(root)[0])}
    assert rows["att_q"].p_accuracy < 0.01 and rows["att_q"].mark_accuracy == "▽"
    assert rows["att_q"].nberts_mean < rows["full_ft"].nberts_mean and rows["att_q"].mark_nberts == "▽"
    rows = {r.config: r for r in aggregate(read_runs(root)[0], marks="direction")}
    assert rows["att_q"].mark_accuracy == "△" and rows["att_q"].mark_nberts == "▽"
    assert main(["results", str(root), "--out", str(tmp_path / "o"), "--marks", "direction"]) == 0
    assert "▽ / △: significantly below / above" in capsys.readouterr().out


def _four_datasets(root: Path) -> None:
    """The protocol's models: T5-large for e-SNLI, UnifiedQA-T5-large for the other three."""
    jitter = {1: 0.1, 2: -0.2, 3: 0.1}  # differences that are not all equal (and sum to 0: the means stay)
    for k, dataset in enumerate(["esnli", "ecqa", "sbic", "comve"]):
        model = "t5-large" if dataset == "esnli" else "allenai/unifiedqa-t5-large"
        for seed in (1, 2, 3):
            _run(root, dataset, "full_ft", seed, 0.60 + 0.05 * k + 0.01 * seed, 40 + k + seed, kind="full",
                 percent=100.0, model=model)
            _run(root, dataset, "att_q+layer_norm", seed, 0.50 + 0.05 * k + 0.01 * seed + jitter[seed] / 100,
                 30 + k + seed + jitter[seed], model=model)
            _run(root, dataset, "lora", seed, 0.40 + 0.05 * k, 20 + k + seed - jitter[seed], kind="peft",
                 percent=4.8684, model=model)


def test_the_papers_layout_in_tables_md_and_html(tmp_path: Path, capsys) -> None:
    root = tmp_path / "runs"
    _four_datasets(root)
    out = tmp_path / "o"
    assert main(["results", str(root), "--out", str(out)]) == 0
    md = (out / "tables.md").read_text(encoding="utf-8")
    paper, per_dataset = md.split("## Per-dataset tables")
    assert paper.count("| configuration | % params | | ComVE | ECQA | SBIC | e-SNLI | Average |") == 2  # Tables 1, 2
    assert "### t5-large · SparseFit configurations vs full_ft (Table 1) · models: ComVE, ECQA, SBIC: " \
           "allenai/unifiedqa-t5-large; e-SNLI: t5-large" in paper
    # dataset means (accuracy): comve 77, ecqa 67, sbic 72, esnli 62 for full_ft; Average = their mean 69.5
    assert "| full_ft | 100.00 | Acc. | 77.00 ± 0.82 | 67.00 ± 0.82 | 72.00 ± 0.82 | 62.00 ± 0.82 | 69.50 |" in paper
    assert "| | | nBERTs | 45.00 ± 0.82 | 43.00 ± 0.82 | 44.00 ± 0.82 | 42.00 ± 0.82 | 43.50 |" in paper
    assert "| att_q+layer_norm | 6.84 | Acc. | 67.00 ± 0.83▽ | 57.00 ± 0.83▽ |" in paper
    table2 = paper.split("(Table 2)")[1]
    assert "| att_q+layer_norm | 6.84 | Acc. | 67.00 ± 0.83 |" in table2  # the baseline row carries no marks
    assert "| lora | 4.87 | Acc. | 55.00 ± 0.00▽ |" in table2
    assert "### comve · allenai/unifiedqa-t5-large · SparseFit" in per_dataset  # the second view stays
    page = (out / "results.html").read_text(encoding="utf-8")
    assert "<th>ComVE</th><th>ECQA</th><th>SBIC</th><th>e-SNLI</th><th>Average</th>" in page
    assert "<td>Acc.</td>" in page and "<td>nBERTs</td>" in page and "<td>69.50</td>" in page
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    first = data["paper_tables"][0]
    assert first["datasets"] == ["comve", "ecqa", "sbic", "esnli"] and first["rows"][0]["Acc."]["average"] == "69.50"


def test_table3_decoder_only_rows_are_tested_against_sparsefit(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    llama = "meta-llama/Llama-2-7b-hf"
    for seed, acc, nb in [(1, 0.50, 30), (2, 0.52, 31), (3, 0.55, 35)]:
        _run(root, "esnli", "att_q+layer_norm", seed, acc, nb, percent=7.97, model=llama,
             run_extra={"decoder_only": True})
    for seed, acc, nb in [(1, 0.40, 20), (2, 0.41, 22), (3, 0.45, 24)]:
        _run(root, "esnli", "full_ft", seed, acc, nb, kind="full", percent=100.0, model=llama,
             run_extra={"decoder_only": True})
        _run(root, "esnli", "adalora", seed, acc, nb, kind="peft", percent=0.30, model=llama)  # older run.json
    rows = {r.config: r for r in aggregate(read_runs(root)[0])}
    assert {r.table for r in rows.values()} == {"decoder_only"}
    for config in ("full_ft", "adalora"):
        assert rows[config].baseline == "att_q+layer_norm" and rows[config].mark_nberts == "▽"
        assert rows[config].p_nberts == pytest.approx(1 - math.sqrt(300 / 302))
    assert rows["att_q+layer_norm"].baseline is None


def test_dect_has_its_own_table_and_no_test(sweep: Path) -> None:
    rows = {r.config: r for r in aggregate(read_runs(sweep)[0])}
    dect = rows["dect"]
    assert dect.table == "label_only" and dect.baseline is None
    assert dect.p_accuracy is None and dect.mark_accuracy == "" and dect.nberts_note.startswith("label only")


# --- input-shaped failures: one line, exit 2, or the run listed with the reason ------------------------------


@pytest.mark.parametrize(("run_json", "metrics", "reason"), [
    ([1, 2], {"accuracy": 0.5}, "run.json is not a JSON object"),
    (None, {"accuracy": "high"}, "metrics.json: field 'accuracy' is not a number ('high')"),
    (None, {}, "metrics.json: field 'accuracy' is missing"),
    (None, {"accuracy": 80}, "metrics.json: field 'accuracy' = 80 is outside 0..1"),
    (None, {"accuracy": 0.5, "nbertscore": "NaN"}, "metrics.json: field 'nbertscore' is not a number"),
    ({"complete": True, "config": "att_q", "kind": "sparse", "train_config": {"dataset": "esnli", "seed": "7"}},
     {"accuracy": 0.5}, "run.json: field 'train_config.seed' is '7'"),
    ({"complete": True, "config": "att_q", "kind": "sparse", "percent": "6.8",
      "train_config": {"dataset": "esnli", "seed": 7}}, {"accuracy": 0.5}, "run.json: field 'percent' is not a number"),
])
def test_unusable_files_are_listed_with_the_reason(run_json, metrics, reason, tmp_path: Path, capsys) -> None:
    root = tmp_path / "runs"
    _pair(root)
    bad = _run(root, "esnli", "att_q", 7, 0.5, 10)
    if run_json is not None:
        (bad / "run.json").write_text(json.dumps(run_json))
    (bad / "metrics.json").write_text(json.dumps(metrics).replace('"NaN"', "NaN"))
    assert main(["results", str(root), "--out", str(tmp_path / "o")]) == 0
    data = json.loads((tmp_path / "o" / "results.json").read_text(encoding="utf-8"))
    assert data["incomplete"] == [{"path": str(bad), "reason": data["incomplete"][0]["reason"]}]
    assert data["incomplete"][0]["reason"].startswith(reason)


def test_an_unwritable_out_is_one_line(tmp_path: Path, capsys) -> None:
    root = tmp_path / "runs"
    _pair(root)
    (tmp_path / "a-file").write_text("")
    assert main(["results", str(root), "--out", str(tmp_path / "a-file" / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err and "a-file" in err
