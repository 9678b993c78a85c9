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
         generated: bool = True) -> Path:
    d = root / dataset / config / f"seed-{seed}"
    d.mkdir(parents=True)
    (d / "split.json").write_text("{}")
    (d / "run.json").write_text(json.dumps({
        "complete": True, "base_model": "t5-large", "kind": kind, "config": config, "percent": percent,
        "train_config": {"dataset": dataset, "seed": seed}, "train_flops_per_step": flops}))
    if generated:
        metrics = {"accuracy": accuracy, "dataset": dataset, "split_seed": seed}
        # as generate writes them: nbertscore on FEB's 0-100 scale (and the same / 100); DecT: "nle": null
        if nle_null:
            metrics["nle"] = None
        elif nberts is not None:
            metrics.update(nbertscore=nberts, bertscore_normalized=nberts / 100)
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
    assert "paired t-test" in printed and "p < 0.01" in printed and "▽ / △" in printed
    assert "| att_q+layer_norm | 3 | 82.00 ± 2.16 | 12.00 ± 1.63▽ | 6.84 | 11.18 | 1.5e+12 |" in printed
    # accuracy 90, 92, 94 against 80, 81, 85: differences 10, 11, 9 -> p = 1 - sqrt(300/302), above: △
    assert "| dect | 3 | 92.00 ± 1.63△ | — | 0.01 | — | — |" in printed
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
