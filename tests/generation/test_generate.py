"""Batched greedy generation, metrics, balanced selection, and the JSONL the annotation app imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from annotate.core.formats import read_nle_file
from generation.cli import main
from generation.config import TrainConfig
from generation.data import Example
from generation.generate import Scored, evaluate_run, generate_texts, metrics_of, select_balanced
from generation.modeling import load_base
from generation.prompts import is_correct, parse, prompt
from generation.splits import few_shot_split
from generation.train import train


def test_batched_generation_equals_one_by_one(tiny_model: Path, fixtures_dir: Path) -> None:
    model, tok = load_base(str(tiny_model))
    prompts = [prompt(e) for e in few_shot_split("esnli", fixtures_dir / "esnli", 0, 6, 6).train]
    prompts[1] = prompts[1] + " and a very long tail to change the length order"
    batched = generate_texts(model, tok, prompts, batch_size=4, max_new_tokens=10)
    single = [generate_texts(model, tok, [p], batch_size=1, max_new_tokens=10)[0] for p in prompts]
    assert batched == single
    assert all(len(tok(t, add_special_tokens=False)["input_ids"]) <= 10 for t in batched)
    if not model.config.is_encoder_decoder:  # the prompt is stripped from a decoder-only output
        assert not any(t.startswith(p) for t, p in zip(batched, prompts, strict=True))


@pytest.mark.parametrize("slack", [1, 6])
def test_max_length_counts_as_generate_does_for_one_input(tiny_model: Path, fixtures_dir: Path, slack: int) -> None:
    """FEB and the SparseFit authors call generate(max_length=...) one unpadded input at a time
    (scripts/metrics.py): batched generation with the same max_length gives each prompt the same output."""
    import torch

    model, tok = load_base(str(tiny_model))
    prompts = [prompt(e) for e in few_shot_split("esnli", fixtures_dir / "esnli", 0, 6, 6).train]
    prompts[1] = prompts[1] + " and a very long tail to change the length order"
    decoder_only = not model.config.is_encoder_decoder
    longest = max(len(tok(p)["input_ids"]) for p in prompts)
    max_length = longest + slack if decoder_only else 2 + slack  # decoder-only: the prompt counts
    got = generate_texts(model, tok, prompts, batch_size=4, max_new_tokens=None, max_length=max_length)
    for p, text in zip(prompts, got, strict=True):
        enc = tok(p, return_tensors="pt")
        with torch.no_grad():
            ids = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                 max_length=max_length, do_sample=False, num_beams=1, pad_token_id=tok.pad_token_id)
        if decoder_only:
            ids = ids[:, enc["input_ids"].shape[1]:]
        assert text == tok.decode(ids[0], skip_special_tokens=True).replace("\n", " ").strip()
    assert len({len(t.split()) for t in got}) > 1 or not decoder_only  # each prompt its own budget


def test_generate_records_its_numerics_and_length(memorized_run: Path, tmp_path: Path) -> None:
    metrics = evaluate_run(memorized_run, tmp_path / "n.jsonl", first=2, progress=False)
    # the run trained in fp32 (the paper's); T5 generates up to FEB's max_length 100 (scripts/metrics.py)
    assert metrics["generation"] == {"precision": "fp32", "tf32": False, "max_length": 100, "max_new_tokens": None}
    assert json.loads((memorized_run / "metrics.json").read_text())["generation"]["precision"] == "fp32"
    code = main(["generate", "--run", str(memorized_run), "--out", str(tmp_path / "m.jsonl"), "--first", "2",
                 "--max-new-tokens", "5", "--quiet"])
    assert code == 0
    assert json.loads((memorized_run / "metrics.json").read_text())["generation"] == {
        "precision": "fp32", "tf32": False, "max_length": None, "max_new_tokens": 5}
    with pytest.raises(SystemExit):  # alternatives
        main(["generate", "--run", str(memorized_run), "--out", "x", "--max-length", "5", "--max-new-tokens", "5"])


def _scored(label: str, output: str, k: int) -> Scored:
    ex = Example(str(k), "esnli", {"premise": "p", "hypothesis": "h"}, label, ["gold"])
    parsed = parse(output)
    return Scored(ex, "prompt", output, parsed, is_correct(parsed, label, "esnli"))


def test_select_balanced_takes_the_first_correct_per_label() -> None:
    rows = [_scored("entailment", "entailment because a", 0), _scored("entailment", "entailment because b", 1),
            _scored("neutral", "entailment because c", 2), _scored("neutral", "neutral because d", 3),
            _scored("entailment", "entailment because e", 4), _scored("contradiction", "contradiction", 5),
            _scored("contradiction", "contradiction because f", 6), _scored("neutral", "neutral because g", 7)]
    chosen = select_balanced(rows, "esnli", first=4)
    # quota 2/1/1 (remainder to the first label): entailment 0,1; neutral 3; contradiction 5 -- a label-only
    # output is correct (FEB metrics.py) and enters the selection with an empty explanation.
    assert [s.example.id for s in chosen] == ["0", "1", "3", "5"]
    assert chosen[-1].parsed.explanation == ""
    m = metrics_of(rows)
    assert m["accuracy"] == 7 / 8 and m["no_because"] == 1
    assert m["per_label_accuracy"]["neutral"] == 2 / 3


@pytest.fixture(scope="module")
def memorized_run(tiny_t5: Path, tmp_path_factory) -> Path:
    """A tiny T5 fine-tuned (full_ft) until it reproduces the six e-SNLI fixture targets it is scored on."""
    base = tmp_path_factory.mktemp("mem")
    data = base / "esnli"
    data.mkdir()
    fixtures = Path(__file__).parent / "fixtures" / "esnli"
    (data / "esnli_train_1.csv").write_text((fixtures / "esnli_train_1.csv").read_text())
    (data / "esnli_dev.csv").write_text((fixtures / "esnli_train_1.csv").read_text())
    ids = ["t01", "t02", "t05", "t06", "t09", "t10"]
    cfg = TrainConfig(model=str(tiny_t5), dataset="esnli", data_dir=str(data), seed=0, configuration="full_ft",
                      out=str(base / "run"), train_ids=ids, val_ids=ids, max_steps=150, learning_rate=1e-2,
                      batch_size=6, logging_steps=50)
    train(cfg, progress=False)
    return base / "run"


def test_generate_writes_jsonl_the_app_imports(memorized_run: Path, tmp_path: Path, store) -> None:
    out = tmp_path / "nles.jsonl"
    metrics = evaluate_run(memorized_run, out, first=4, progress=False)
    # 150 steps at lr 1e-2 take the training loss from ~4 to ~0.01 on these six examples (seeded): the model
    # reproduces every target, which is what a memorisation fixture guarantees, so its outputs are known exactly.
    assert metrics["n"] == 6 and metrics["accuracy"] == 1.0 and metrics["no_because"] == 0
    records = read_nle_file(out)  # the app's own validator
    assert len(records) == metrics["selected"] == 4
    labels = [r.predicted_label for r in records]
    assert labels.count("entailment") == 2 and labels.count("neutral") == 1 and labels.count("contradiction") == 1
    for r in records:
        assert r.config == "full_ft" and r.split_seed == 0 and r.model and r.prompt.startswith("explain nli")
        assert r.predicted_label == r.gold_label and set(r.input) == {"premise", "hypothesis"}
        assert r.explanation == r.gold_explanations[0]  # the memorised target, word for word
    saved = json.loads((memorized_run / "metrics.json").read_text())
    assert saved["accuracy"] == metrics["accuracy"] and saved["no_because"] == metrics["no_because"]

    # without a scorer there is no nBERTs and no per-item score
    assert "nbertscore" not in metrics and all(r.metrics == {} for r in records)
    assert not any("metrics" in json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())

    result = store.import_nles(out, "sparsefit")
    assert (result.added, result.unchanged) == (4, 0)
    items = store.items_frame("sparsefit")
    assert list(zip(items.sample_id, items.explanation, strict=True)) == [(r.sample_id, r.explanation) for r in records]


def test_generate_cli_then_nle_annotate_import(memorized_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "nles.jsonl"
    assert main(["generate", "--run", str(memorized_run), "--out", str(out), "--first", "2", "--quiet"]) == 0
    assert capsys.readouterr().out == (f"full_ft: validation accuracy 1.000 on 6, 0 without 'because'; wrote 2 NLEs to {out}; "
                                       f"metrics in {memorized_run / 'metrics.json'}\n")
    done = subprocess.run([sys.executable, "-m", "annotate.cli", "import", str(out), "--db", str(tmp_path / "a.db")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"imported {out}: study 'default', added: 2\n"
    assert len(read_nle_file(out)) == 2


def test_generate_writes_each_items_bertscore_f1_beside_nberts(memorized_run: Path, tmp_path: Path) -> None:
    """Whenever nBERTs is computed, each NLE line carries the F1 that nBERTs counts for its item, under the same
    scorer: the line's own score, though the selection reorders the items (a scorer that tells items apart)."""
    def scorer(candidates: list[str], references: list[list[str]]) -> list[float]:
        return [len(refs[0]) / 1000 for refs in references]

    out = tmp_path / "nles.jsonl"
    metrics = evaluate_run(memorized_run, out, first=4, scorer=scorer, progress=False)
    records = read_nle_file(out)
    assert len(records) == 4
    for r in records:
        assert r.metrics == {"bertscore_f1": pytest.approx(len(r.gold_explanations[0]) / 1000)}
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(set(line["metrics"]) == {"bertscore_f1"} for line in lines)
    # nBERTs is the same scores, x 100, over every validation item (all six correct here)
    generated = [json.loads(line) for line in (memorized_run / "generations.jsonl").read_text().splitlines()]
    assert len(generated) == 6 and all(g["correct"] for g in generated)
    assert metrics["nbertscore"] == pytest.approx(100 * sum(
        scorer([], [[e.explanations[0]]])[0] for e in _validation_examples(memorized_run)) / 6)


def _validation_examples(run: Path) -> list[Example]:
    from generation.rundir import read_run
    from generation.splits import run_examples

    return run_examples(run, read_run(run)["train_config"], "validation")


def tiny_bert_encoder(tiny_t5: Path, enc_dir: Path) -> Path:
    """A random-init one-layer BERT with the tiny T5's tokenizer, saved as a local BERTScore encoder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(tiny_t5)
    tok.save_pretrained(enc_dir)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(enc_dir)
    return enc_dir


def test_per_item_bertscore_is_the_best_over_the_gold_explanations(memorized_run: Path, tiny_t5: Path,
                                                                  tmp_path: Path) -> None:
    """e-SNLI has three gold explanations per validation item: as FEB's nBERTs (scripts/metrics.py: the max over
    `explanation_1..3`), the per-item F1 is the best over them, not the first one's."""
    import csv

    from generation.generate import bertscore_scorer

    enc_dir = tiny_bert_encoder(tiny_t5, tmp_path / "bert")
    scorer = bertscore_scorer(str(enc_dir), layer=1)
    # The validation file again, with the memorised explanation second, between two that differ from it.
    data = tmp_path / "esnli"
    data.mkdir()
    fixture = Path(__file__).parent / "fixtures" / "esnli" / "esnli_train_1.csv"
    (data / "esnli_train_1.csv").write_text(fixture.read_text())
    with fixture.open(newline="") as f:
        rows = list(csv.DictReader(f))
    with (data / "esnli_dev.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["pairID", "gold_label", "Sentence1", "Sentence2", "Explanation_1", "Explanation_2",
                               "Explanation_3"])
        w.writeheader()
        for r in rows:
            w.writerow({"pairID": r["pairID"], "gold_label": r["gold_label"], "Sentence1": r["Sentence1"],
                        "Sentence2": r["Sentence2"], "Explanation_1": "kids swim in a cold pool",
                        "Explanation_2": r["Explanation_1"], "Explanation_3": "the sky is blue"})
    out = tmp_path / "nles.jsonl"
    evaluate_run(memorized_run, out, first=4, scorer=scorer, progress=False, data_dir=str(data))
    records = read_nle_file(out)
    assert len(records) == 4
    for r in records:
        assert len(r.gold_explanations) == 3 and r.explanation == r.gold_explanations[1]
        first_only = scorer([r.explanation], [r.gold_explanations[:1]])[0]
        assert r.metrics["bertscore_f1"] == pytest.approx(1.0, abs=1e-5) and first_only < 0.99
        assert r.metrics["bertscore_f1"] == scorer([r.explanation], [r.gold_explanations])[0]


def test_generate_on_missing_run_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["generate", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "not a completed run" in capsys.readouterr().err


def test_bertscore_with_a_local_encoder(memorized_run: Path, tiny_t5: Path, tmp_path: Path) -> None:
    from generation.generate import bertscore_scorer

    enc_dir = tiny_bert_encoder(tiny_t5, tmp_path / "bert")
    scorer = bertscore_scorer(str(enc_dir), layer=1)
    same, other = scorer(["a man plays a guitar", "dogs run"], [["a man plays a guitar"], ["kids swim in a pool"]])
    assert same == pytest.approx(1.0, abs=1e-5) and other < same
    metrics = evaluate_run(memorized_run, tmp_path / "n.jsonl", first=2, scorer=scorer, progress=False)
    assert 0 < metrics["nbertscore"] <= 100 * metrics["accuracy"] + 1e-4
    assert metrics["bertscore_normalized"] == pytest.approx(metrics["nbertscore"] / 100)
    # how it was scored travels with the number, so `results` never mixes nBERTs computed differently
    assert metrics["scoring"] == {"bertscore_model": str(enc_dir.resolve()), "bertscore_layer": 1, "lowercase": True,
                                  "broken_explanation": "empty"}
    evaluate_run(memorized_run, tmp_path / "n.jsonl", first=2, scorer=scorer, progress=False, broken_explanation="unk")
    on_disk = json.loads((memorized_run / "metrics.json").read_text(encoding="utf-8"))
    assert on_disk["scoring"]["broken_explanation"] == "unk" and on_disk["generated"].endswith("+00:00")
