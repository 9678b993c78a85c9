"""No silent failures in `nle-gen`: one-line errors before anything is written, warnings with counts, help
with defaults, --quiet and --threads, what run.json records, the model-family warning, FEB's resize."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from generation.cli import build_parser, main
from generation.config import model_family_warning
from generation.data import Example
from generation.generate import Scored, metrics_of, select_balanced, selection_warnings
from generation.prompts import parse

ROOT = Path(__file__).resolve().parents[2]


def _train_argv(model: str, data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--model", model, "--dataset", "esnli", "--data-dir", str(data), "--seed", "1",
            "--config", "att_q", "--out", str(out), "--n-train", "6", "--n-val", "3", "--max-steps", "2",
            "--quiet", *extra]


# --- help -----------------------------------------------------------------------------------------


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", ["params", "train", "generate", "sweep", "results"])
def test_every_option_has_help_and_shows_its_default(command: str) -> None:
    sub = _subparsers()[command]
    text = " ".join(sub.format_help().split())
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{command} {action.dest} has no help"
        if action.default not in (None, False, argparse.SUPPRESS) and not action.required:
            assert f"(default: {action.default})" in text, f"{command} {action.dest}"


# --- models that are not there --------------------------------------------------------------------


def test_missing_local_model_path_is_one_line_and_writes_nothing(esnli_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_train_argv(str(tmp_path / "models" / "t5-nope"), esnli_dir, out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "t5-nope" in err and "no such directory" in err
    assert not out.exists()


def test_directory_without_weights_is_one_line(tiny_t5: Path, esnli_dir: Path, tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_t5 / "config.json").read_text())
    assert main(_train_argv(str(broken), esnli_dir, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(broken) in err and "cannot be loaded" in err
    assert not (tmp_path / "run").exists()


def test_unreachable_hub_name_fails_at_once_without_traceback(esnli_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HOME": str(tmp_path / "hf"),
           "HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing listens on the discard port: refused at once
    env.pop("HF_HUB_OFFLINE", None)
    argv = _train_argv("no-such-org/no-such-model", esnli_dir, tmp_path / "run")
    done = subprocess.run([sys.executable, "-m", "generation.cli", *argv], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "nle-gen: error: model no-such-org/no-such-model: no local directory of that name, not in the Hugging "
        "Face cache, and the Hugging Face hub cannot be reached"]
    assert not (tmp_path / "run").exists()


def test_offline_hub_name_names_hf_hub_offline(esnli_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    assert main(_train_argv("t5-large", esnli_dir, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "t5-large" in err and "HF_HUB_OFFLINE" in err


def test_run_missing_its_weights_is_one_line(tiny_t5: Path, esnli_dir: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(_train_argv(str(tiny_t5), esnli_dir, run)) == 0
    (run / "trainable.safetensors").unlink()
    capsys.readouterr()
    assert main(["generate", "--run", str(run), "--out", str(tmp_path / "n.jsonl"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trainable.safetensors is missing" in err
    assert not (tmp_path / "n.jsonl").exists()


@pytest.mark.parametrize("bad", ["full-ft", "lora-128", "att_q+full_ft"])
def test_bad_config_lists_every_valid_name_and_writes_nothing(bad: str, tiny_t5: Path, esnli_dir: Path,
                                                              tmp_path: Path, capsys) -> None:
    argv = _train_argv(str(tiny_t5), esnli_dir, tmp_path / "run")
    argv[argv.index("att_q")] = bad
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    for name in ("full_ft", "lora", "lora_qkvo_r4", "adalora", "ia3", "att_q", "layer_norm", "encoder"):
        assert name in err
    assert not (tmp_path / "run").exists()


def test_generate_out_must_be_a_file_path(tiny_t5: Path, esnli_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["generate", "--run", str(tmp_path), "--out", str(tmp_path), "--quiet"]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_first_must_be_positive(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["generate", "--run", "r", "--out", "o", "--first", "0"])
    assert "must be >= 1" in capsys.readouterr().err


# --- warnings with counts per label ---------------------------------------------------------------


def _scored(label: str, output: str, k: int) -> Scored:
    ex = Example(str(k), "esnli", {"premise": "p", "hypothesis": "h"}, label, ["gold"])
    parsed = parse(output)
    return Scored(ex, "prompt", output, parsed, parsed.well_formed and parsed.label == label)


def _metrics(rows: list[Scored], first: int) -> dict:
    chosen = select_balanced(rows, "esnli", first)
    m = metrics_of(rows)
    m.update(first=first, selected=len(chosen), labels=["entailment", "neutral", "contradiction"],
             correct_per_label={}, selected_per_label=dict.fromkeys(["entailment", "neutral", "contradiction"], 0))
    for s in rows:
        if s.correct:
            m["correct_per_label"][s.example.label] = m["correct_per_label"].get(s.example.label, 0) + 1
    for s in chosen:
        m["selected_per_label"][s.example.label] += 1
    return m


def test_accuracy_without_nles_is_not_called_no_correct_prediction() -> None:
    rows = [_scored("neutral", "neutral because x", 0), _scored("neutral", "neutral because y", 1),
            _scored("entailment", "neutral because z", 2), _scored("contradiction", "neutral because w", 3),
            _scored("entailment", "neutral because v", 4)]
    m = _metrics(rows, first=1)  # quota 1 / 0 / 0: the only correct ones are neutral
    assert m["accuracy"] == pytest.approx(0.4) and m["selected"] == 0
    warnings = selection_warnings(m)
    assert not any("no correct prediction" in w for w in warnings)
    assert warnings[0] == ("wrote 0 NLEs, fewer than --first 1 (contradiction: 0 written of 0 correct, "
                           "entailment: 0 written of 0 correct, neutral: 0 written of 2 correct)")


def test_fewer_nles_and_a_single_class_are_warned_with_counts() -> None:
    rows = [_scored("entailment", "entailment because a", k) for k in range(3)]
    rows += [_scored("neutral", "entailment because b", 3)]
    warnings = selection_warnings(_metrics(rows, first=6))
    assert warnings == [
        "wrote 2 NLEs, fewer than --first 6 (contradiction: 0 written of 0 correct, entailment: 2 written of 3 "
        "correct, neutral: 0 written of 0 correct)",
        "the NLEs cover only one class (contradiction: 0 written of 0 correct, entailment: 2 written of 3 "
        "correct, neutral: 0 written of 0 correct)"]
    none = [_scored("entailment", "neutral because a", 0)]
    assert selection_warnings(_metrics(none, first=2))[0].startswith("no correct prediction among 1")


# --- quiet, threads, run.json ---------------------------------------------------------------------


def test_quiet_threads_and_what_run_json_records(tiny_t5: Path, esnli_dir: Path, tmp_path: Path, capfd) -> None:
    import torch

    before = torch.get_num_threads()
    run = tmp_path / "run"
    try:
        assert main(_train_argv(str(tiny_t5), esnli_dir, run, "--threads", "1")) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    out, err = capfd.readouterr()
    assert out.strip().splitlines() == [f"saved att_q run to {run.resolve()} "
                                        f"(mean training loss {out.split('loss ')[1].split(')')[0]})"]
    assert "it/s" not in err and "{'" not in out + err  # no progress bars, no metrics dicts

    info = json.loads((run / "run.json").read_text())
    assert info["versions"]["peft"] and info["versions"]["transformers"] and info["versions"]["torch"]
    assert info["git_commit"] is None or len(info["git_commit"]) == 40
    assert info["started"] <= info["ended"] and info["wall_seconds"] > 0
    assert info["device"].startswith("cpu") and info["bf16_used"] is False and info["torch_threads"] == 1
    assert Path(info["run_dir"]).is_absolute() and Path(info["train_config"]["out"]).is_absolute()
    assert Path(info["train_config"]["data_dir"]).is_absolute() and Path(info["base_model"]).is_absolute()
    assert info["train_flops_per_step"] > 0 and "forward" in info["flops_formula"]


def test_lora_percent_is_the_same_number_in_params_train_and_run_json(tiny_t5: Path, esnli_dir: Path,
                                                                     tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    argv = _train_argv(str(tiny_t5), esnli_dir, run)
    argv[argv.index("att_q")] = "lora"
    argv.remove("--quiet")
    assert main(argv) == 0
    train_out = capsys.readouterr().out
    info = json.loads((run / "run.json").read_text())
    assert main(["params", "--model", str(tiny_t5), "--config", "lora", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["configs"]["lora"]
    assert row["percent"] == info["percent"] and row["trainable"] == info["trainable"]
    assert row["percent_convention"] == info["percent_convention"]
    assert f"({info['percent']:.2f} % of {info['total']:,};" in train_out


# --- §4: the model family per dataset, and FEB's embedding resize -----------------------------------


@pytest.mark.parametrize(("model", "dataset", "warns"), [
    ("t5-large", "esnli", False), ("allenai/unifiedqa-t5-large", "comve", False),
    ("allenai/unifiedqa-t5-large", "esnli", True), ("t5-large", "ecqa", True), ("t5-base", "sbic", True),
    ("meta-llama/Llama-2-7b-hf", "esnli", False),
])
def test_model_family_warning(model: str, dataset: str, warns: bool) -> None:
    warning = model_family_warning(model, dataset)
    assert (warning is not None) is warns
    if warns:
        assert dataset in warning and "exp.py" in warning


def test_t5_embeddings_are_resized_to_the_tokenizer_as_feb_does(tiny_t5: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    from generation.modeling import load_base

    tok = AutoTokenizer.from_pretrained(tiny_t5)
    padded = tmp_path / "padded"
    cfg = T5Config.from_pretrained(tiny_t5)
    cfg.vocab_size = len(tok) + 28  # as t5-large: 32,128 rows for a 32,100-token tokenizer
    torch.manual_seed(0)
    T5ForConditionalGeneration(cfg).save_pretrained(padded)
    tok.save_pretrained(padded)
    model, _ = load_base(str(padded))
    assert model.get_input_embeddings().weight.shape[0] == len(tok) == model.lm_head.weight.shape[0]
    model, _ = load_base(str(padded), resize_embeddings=False)
    assert model.get_input_embeddings().weight.shape[0] == len(tok) + 28
