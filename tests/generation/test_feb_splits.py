"""FEB's splits sample for sample: seeds, the RNG calls of make_splits, split files and `nle-gen splits`.

The oracle below re-types allenai/feb `scripts/preprocess_data.py::process_senmaking_data` and the
`sensemaking` branch of `scripts/feb_splits.py::make_splits` with pandas and transformers.set_seed, and the
project's numpy-only reproduction must select the same rows.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from generation.cli import main
from generation.data import Example, load_split
from generation.splits import (
    FEB_SEEDS,
    _datasets_shuffle,
    feb_split,
    few_shot_split,
    parse_seeds,
    read_split_files,
    split_json,
    write_split_files,
)

ROOT = Path(__file__).resolve().parents[2]
# ../shared/data/comve beside the checkout; a git worktree one level deeper (wt/<name>) looks one further up.
COMVE = next((p for p in (ROOT.parent / "shared" / "data" / "comve", ROOT.parents[1] / "shared" / "data" / "comve")
              if p.is_dir()), ROOT.parent / "shared" / "data" / "comve")
needs_comve = pytest.mark.skipif(not (COMVE / "train" / "subtaskA_data_all.csv").is_file(),
                                 reason="real ComVE files not present in ../shared/data/comve")


def feb_sensemaking_oracle(data_dir: Path, seed: int) -> dict[str, list[tuple[str, str]]]:
    """FEB's procedure, re-typed: (id, explanation) of the rows make_splits writes, in its order."""
    pd = pytest.importorskip("pandas")
    from transformers import set_seed

    frames = {}
    for split, folder, data, answers in (("Training", "train", "subtaskA_data_all", "subtaskA_answers_all"),
                                         ("Dev", "dev", "subtaskA_dev_data", "subtaskA_gold_answers")):
        inp = pd.read_csv(data_dir / folder / f"{data}.csv")
        out = pd.read_csv(data_dir / folder / f"{answers}.csv", header=None, names=["id", "NonsensicalSentence"])
        expl = pd.read_csv(data_dir / folder / f"{answers.replace('subtaskA', 'subtaskC')}.csv", header=None,
                           names=["id", "CorrectExplanation1", "CorrectExplanation2", "CorrectExplanation3"])
        if split == "Training":
            inp = pd.DataFrame(np.repeat(inp.values, 3, axis=0), columns=inp.columns)
            out = pd.DataFrame(np.repeat(out.values, 3, axis=0), columns=out.columns)
            explanations = []
            for _, row in expl.iterrows():
                explanations.extend([row["CorrectExplanation1"], row["CorrectExplanation2"], row["CorrectExplanation3"]])
        else:
            explanations = ["[SEP]".join(expl.loc[i, ["CorrectExplanation1", "CorrectExplanation2",
                                                      "CorrectExplanation3"]]) for i in range(len(expl))]
        # FEB drops the id column; it is carried here (it draws nothing) to name the chosen rows.
        frames[split] = pd.DataFrame({"id": inp["id"].astype(str).values, "sent0": inp["sent0"].values,
                                      "sent1": inp["sent1"].values, "label": out["NonsensicalSentence"].values,
                                      "explanation": explanations})
    set_seed(seed)
    chosen = {}
    for split, key, n in (("Training", "train", 24), ("Dev", "validation", 175)):
        df = frames[split]
        choice1, choice2 = df.loc[df["label"] == 0], df.loc[df["label"] == 1]
        a = choice1.sample(frac=n / len(choice1), replace=False)
        b = choice2.sample(frac=n / len(choice2), replace=False)
        both = pd.concat([a, b])
        chosen[key] = [(r["id"], " ".join(r["explanation"].lower().split())) for _, r in both.iterrows()]
    return chosen


@needs_comve
@pytest.mark.parametrize("seed", [FEB_SEEDS[0], FEB_SEEDS[1], FEB_SEEDS[14], 0])
def test_comve_split_equals_febs_on_the_real_files(seed: int) -> None:
    oracle = feb_sensemaking_oracle(COMVE, seed)
    ours = split_json(feb_split("comve", COMVE, seed))
    for split in ("train", "validation"):
        got = [(r["sample_id"], r["explanation"]) for r in ours[split]]
        assert got == oracle[split]  # same rows, same order
    assert len(ours["train"]) == 48 and len(ours["validation"]) == 350
    assert Counter(r["label"] for r in ours["validation"]) == {"choice1": 175, "choice2": 175}


@needs_comve
def test_comve_training_rows_are_one_per_explanation() -> None:
    train = load_split("comve", COMVE, "train")
    assert len(train) == 30_000
    assert [len(e.explanations) for e in train[:3]] == [1, 1, 1]
    assert train[0].id == train[1].id == train[2].id == "0"
    assert len(load_split("comve", COMVE, "validation")) == 997


@needs_comve
def test_splits_command_json_on_real_comve(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["splits", "--dataset", "comve", "--data-dir", str(COMVE), "--seed", "7004", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"dataset", "seed", "train", "validation"}
    assert (out["dataset"], out["seed"]) == ("comve", 7004)
    assert set(out["train"][0]) == {"sample_id", "label", "explanation", "input"}
    oracle = feb_sensemaking_oracle(COMVE, 7004)
    assert {(r["sample_id"], r["explanation"]) for r in out["validation"]} == set(oracle["validation"])


def test_splits_command_text_and_out(fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["splits", "--dataset", "comve", "--data-dir", str(fixtures_dir / "comve"), "--seed", "3", "--n-train", "2",
            "--n-val", "2"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "train (2)" in text and "validation (2)" in text
    assert main([*args, "--out", str(tmp_path / "feb")]) == 0
    assert sorted(p.name for p in (tmp_path / "feb").iterdir()) == ["sensemaking_train_3.json",
                                                                    "sensemaking_validation_3.json"]


@pytest.mark.parametrize(
    ("specs", "expected"),
    [(["feb:3"], [7004, 3639, 6290]), (["feb"], list(FEB_SEEDS)), (["1", "2", "1"], [1, 2]),
     (["0", "feb:1"], [0, 7004])],
)
def test_parse_seeds(specs: list[str], expected: list[int]) -> None:
    assert parse_seeds(specs) == expected


@pytest.mark.parametrize(("spec", "message"), [("feb:0", "feb:N must be 1..60"), ("feb:61", "feb:N must be 1..60"),
                                               ("x", "seed 'x' is not an integer"), ("-1", "must be >= 0")])
def test_parse_seeds_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_seeds([spec])


def test_feb_seed_list_is_febs() -> None:
    assert len(FEB_SEEDS) == len(set(FEB_SEEDS)) == 60
    assert FEB_SEEDS[:3] == (7004, 3639, 6290) and FEB_SEEDS[-1] == 4791


def _rows(n: int, label: str = "x") -> list[Example]:
    return [Example(str(i), "esnli", {"premise": "p", "hypothesis": "h"}, label, ["e"]) for i in range(n)]


@pytest.mark.parametrize("seed", [7004, 51])
def test_seedless_datasets_shuffle_reproduction(seed: int) -> None:
    """datasets' Dataset.shuffle() without a seed, re-typed from datasets' arrow_dataset.py (>= 2)."""
    np.random.seed(seed)
    expected = []
    for n in (50, 40, 30):
        _, key, pos, *_ = np.random.get_state()
        s = key[pos] if pos < 624 else key[0]
        _ = np.random.random()
        expected.append([str(i) for i in np.random.default_rng(s).permutation(n)[:5]])
    rs = np.random.RandomState(seed)
    got = [[e.id for e in _datasets_shuffle(rs, _rows(n), 5, "v2", "t")] for n in (50, 40, 30)]
    assert got == expected
    # The first shuffle after seeding uses the seed itself under both rules.
    rs1, rs2 = np.random.RandomState(seed), np.random.RandomState(seed)
    assert [e.id for e in _datasets_shuffle(rs1, _rows(50), 5, "v1", "t")] == got[0]
    assert [e.id for e in _datasets_shuffle(rs2, _rows(50), 5, "v2", "t")] == got[0]


def test_ecqa_split_is_pythons_random_sample_in_author_order(fixtures_dir: Path) -> None:
    train = load_split("ecqa", fixtures_dir / "ecqa", "train")
    val = load_split("ecqa", fixtures_dir / "ecqa", "validation")
    random.seed(11)  # what transformers.set_seed does for python's random
    expected_train, expected_val = random.sample(train, 4), random.sample(val, 2)
    split = feb_split("ecqa", fixtures_dir / "ecqa", 11, n_train=4, n_val=2)
    assert [e.id for e in split.train] == [e.id for e in expected_train]
    assert [e.id for e in split.validation] == [e.id for e in expected_val]


@pytest.mark.parametrize("dataset", ["esnli", "sbic", "comve", "ecqa"])
def test_split_files_round_trip(dataset: str, fixtures_dir: Path, tmp_path: Path) -> None:
    n_train = {"esnli": 6, "sbic": 4, "comve": 2, "ecqa": 4}[dataset]
    split = feb_split(dataset, fixtures_dir / dataset, 5, n_train=n_train, n_val=3 if dataset == "esnli" else 2)
    write_split_files(split, tmp_path)
    back = read_split_files(tmp_path, dataset, 5)
    assert split_json(back) == split_json(split)


def test_febs_own_files_without_ids_are_matched_to_the_data(fixtures_dir: Path, tmp_path: Path) -> None:
    split = feb_split("comve", fixtures_dir / "comve", 5, n_train=2, n_val=2)
    paths = write_split_files(split, tmp_path / "sensemaking")
    for path in paths:  # FEB's files carry no id column, and keep the release's spacing
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for r in rows:
            r["sent0"] = f" {r['sent0']}  "
        path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "sample_id"}) + "\n" for r in rows))
    back = read_split_files(tmp_path, "comve", 5, data_dir=fixtures_dir / "comve")
    assert [e.id for e in back.validation] == [e.id for e in split.validation]
    with pytest.raises(ValueError, match="sample_id"):
        read_split_files(tmp_path, "comve", 5)


def test_train_split_files_option_reuses_them(fixtures_dir: Path, tmp_path: Path) -> None:
    split = feb_split("esnli", fixtures_dir / "esnli", 9, n_train=6, n_val=3)
    write_split_files(split, tmp_path)
    again = few_shot_split("esnli", fixtures_dir / "esnli", 9, n_train=6, n_val=3)
    assert [e.id for e in again.train] == [e.id for e in split.train]


def test_sweep_takes_febs_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["sweep", "--model", "m", "--datasets", "comve", "--configs", "layer_norm", "--data-root", str(tmp_path),
            "--out-root", str(tmp_path / "runs")]
    assert main([*args, "--seeds", "feb:3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("--seed ")[1].split()[0] for line in lines] == ["7004", "3639", "6290"]
    assert main(args) == 0  # default: all 60
    assert len(capsys.readouterr().out.splitlines()) == 60
    assert main([*args, "--seeds", "feb:99"]) == 2
    assert "feb:N must be 1..60" in capsys.readouterr().err


def test_sweep_passes_generate_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--model", "m", "--datasets", "comve", "--configs", "layer_norm", "--seeds", "51",
                 "--data-root", str(tmp_path), "--out-root", str(tmp_path / "runs"),
                 "--generate-arg=--bertscore-model", "--generate-arg=roberta-large"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split(" && ")[1].endswith("--bertscore-model roberta-large")


def test_esnli_split_equals_datasets_library(fixtures_dir: Path) -> None:
    """FEB's e-SNLI branch run with the real `datasets` library (when installed; not a project dependency)."""
    datasets = pytest.importorskip("datasets")
    from transformers import set_seed

    rows = {split: load_split("esnli", fixtures_dir / "esnli", split) for split in ("train", "validation")}
    labels = ["entailment", "neutral", "contradiction"]
    for seed in (7004, 3639):
        set_seed(seed)
        chosen = {}
        for split, k in (("train", 2), ("validation", 1)):
            ds = datasets.Dataset.from_dict({"id": [e.id for e in rows[split]],
                                             "label": [labels.index(e.label) for e in rows[split]]})
            parts = []
            for label_int in range(3):
                subset = ds.filter(lambda x, li=label_int: x["label"] == li).shuffle()
                parts.append(subset.select(range(k)))
            chosen[split] = datasets.concatenate_datasets(parts)["id"]
        ours = feb_split("esnli", fixtures_dir / "esnli", seed, n_train=6, n_val=3)
        assert [e.id for e in ours.train] == chosen["train"]
        assert [e.id for e in ours.validation] == chosen["validation"]


def test_splits_command_bad_data_dir_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["splits", "--dataset", "sbic", "--data-dir", str(tmp_path), "--seed", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SBIC.v2.trn.csv" in err[0] and str(tmp_path) in err[0]
