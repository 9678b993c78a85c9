"""The README's "Quick start of a study", command by command, on a tiny local model and e-SNLI-format data.

The commands are read from README.md's block, so a changed README changes (or breaks) this test. Only what cannot
run here is substituted: `--model` (a hub name) becomes a tiny T5 built below, `--data-dir` a small e-SNLI
release-format folder written below, and `serve` (a browser session) becomes `nle-annotate import-ratings` of two
annotators' ratings. Everything else (dataset, seed, configuration, --first, --with-gold, --compare, the output
paths) is the README's.
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the generation extras (torch, transformers, peft) are not installed")

from analysis.cli import main as nle_report  # noqa: E402
from annotate.cli import main as nle_annotate  # noqa: E402
from annotate.core.formats import read_nle_file  # noqa: E402
from annotate.core.store import Store  # noqa: E402
from generation.cli import main as nle_gen  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
MAINS = {"nle-gen": nle_gen, "nle-annotate": nle_annotate, "nle-report": nle_report}

# A cue word in the hypothesis decides the label, so a tiny model learns the task from 48 examples and its
# predictions are right on every validation example (the selection of 30 balanced correct ones needs 10 per label).
CUES = {"entailment": "surely", "neutral": "maybe", "contradiction": "never"}
NOUNS = ["man", "woman", "dog", "child", "cook", "player", "farmer", "singer", "driver", "painter"]
PLACES = ["park", "kitchen", "street", "field", "stage", "garden"]


def quick_start() -> list[list[str]]:
    """The commands of README.md's quick-start block, as argument lists (comments dropped)."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"## Quick start of a study\n.*?```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no '## Quick start of a study' bash block"
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line.strip()]


def esnli_release(folder: Path) -> Path:
    """e-SNLI release CSVs (pairID, gold_label, Sentence1, Sentence2, Explanation_1): 20 training rows and 120
    validation rows per label (FEB's split takes 16 and 116 per label)."""
    folder.mkdir()
    for name, split, start, rows in (("esnli_train_1.csv", "t", 0, 60), ("esnli_dev.csv", "d", 3, 360)):
        with (folder / name).open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["pairID", "gold_label", "Sentence1", "Sentence2", "Explanation_1"])
            for i in range(rows):
                label = list(CUES)[i % 3]
                noun, place = NOUNS[(i + start) % len(NOUNS)], PLACES[(i // 3 + start) % len(PLACES)]
                w.writerow([f"{split}{i:03d}", label, f"a {noun} is in the {place} .",
                            f"the {noun} is {CUES[label]} outside .", f"the hypothesis says {CUES[label]}"])
    return folder


def tiny_base_model(out: Path, data: Path, work: Path) -> Path:
    """A tiny T5 made to know the task first (full fine-tuning), standing in for the README's pretrained model."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    from generation.config import TrainConfig
    from generation.data import load_split
    from generation.prompts import prompt, target
    from generation.train import train

    texts = [t for split in ("train", "validation") for ex in load_split("esnli", data, split)
             for t in (prompt(ex), target(ex))]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"]))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    random_init = work / "random-t5"
    fast.save_pretrained(random_init)
    torch.manual_seed(0)
    T5ForConditionalGeneration(T5Config(
        vocab_size=len(fast), d_model=32, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2, d_kv=16,
        relative_attention_num_buckets=8, dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )).save_pretrained(random_init)
    run = work / "pretraining"
    train(TrainConfig(model=str(random_init), dataset="esnli", data_dir=str(data), seed=0, configuration="full_ft",
                      out=str(run), max_steps=200, learning_rate=1e-2, batch_size=12), progress=False)
    shutil.copytree(run / "model", out)
    shutil.copytree(run / "tokenizer", out, dirs_exist_ok=True)
    return out


def two_annotators_ratings(db: Path, path: Path) -> Path:
    """A ratings CSV (the export's columns) for every item of the study, from ann1 and a second annotator."""
    with Store(db) as store:
        items = store.items_frame()
    answers = [("yes", ""), ("weak_yes", ""), ("weak_no", "incomplete explanation"), ("no", "inaccurate")]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "sample_id", "config", "annotator", "rating", "tags"])
        for i, (dataset, sample_id, config) in enumerate(zip(items.dataset, items.sample_id, items.config,
                                                             strict=True)):
            for annotator, shift in (("ann1", 0), ("ann2", i % 5 == 0)):
                rating, tags = answers[(i + shift) % 4]
                w.writerow([dataset, sample_id, config, annotator, rating, tags])
    return path


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_readme_quick_start_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    commands = quick_start()
    data = esnli_release(tmp_path / "esnli")
    model = tiny_base_model(tmp_path / "tiny-t5", data, tmp_path)
    work = tmp_path / "study"
    work.mkdir()
    monkeypatch.chdir(work)  # the README's relative paths (runs/, nles.jsonl, study.db, report/) land here
    ran = []
    for argv in commands:
        while argv and re.fullmatch(r"[A-Z_]+=.*", argv[0]):
            argv = argv[1:]  # an environment assignment in front of the command
        prog, args = argv[0], argv[1:]
        assert prog in MAINS, f"README quick start runs {prog!r}, which this test does not know"
        if prog == "nle-annotate" and args[0] == "serve":
            # Instead of annotating in the browser: two annotators' ratings through the CLI.
            db = args[args.index("--db") + 1]
            args = ["import-ratings", str(two_annotators_ratings(Path(db), work / "ratings.csv")), "--db", db]
        for option, local in (("--model", model), ("--data-dir", data)):
            if option in args:
                args[args.index(option) + 1] = str(local)
        code = MAINS[prog](args)
        out, err = capsys.readouterr()
        assert code == 0, f"{prog} {shlex.join(args)} exited {code}:\n{out}\n{err}"
        ran.append((prog, args[0], out))

    assert [(p, a) for p, a, _ in ran] == [
        ("nle-gen", "train"), ("nle-gen", "train"), ("nle-gen", "generate"), ("nle-gen", "generate"),
        ("nle-annotate", "import"), ("nle-annotate", "import"), ("nle-annotate", "annotators"),
        ("nle-annotate", "annotators"), ("nle-annotate", "import-ratings"), ("nle-report", "--db")]
    configs = [c[c.index("--config") + 1] for c in commands if c[1] == "train"]
    files = [c[c.index("--out") + 1] for c in commands if c[1] == "generate"]
    samples = set()
    for config, name in zip(configs, files, strict=True):
        nles = read_nle_file(work / name)
        # --first 30, all predicted correctly, all of the configuration trained for this file
        assert len(nles) == 30 and all(r.predicted_label == r.gold_label for r in nles)
        assert {r.config for r in nles} == {config}
        samples |= {(r.dataset, r.sample_id) for r in nles}
    assert "added: 30" in ran[4][2] and "added: 30" in ran[5][2] and "gold added: 30" in ran[4][2]
    assert "Access code" in ran[6][2] and "Access code" in ran[7][2]
    n_gold = len(samples)  # one gold reference item per sample
    assert f"ratings added: {2 * (60 + n_gold)}" in ran[8][2]
    assert (f"120 ratings of 60 items by 2 annotators (and {2 * n_gold} ratings of {n_gold} gold reference items)"
            in ran[9][2])
    report = Path(commands[-1][commands[-1].index("--out") + 1])
    assert (work / report / "report.html").is_file() and (work / report / "agreement.json").is_file()
    comparison = json.loads((work / report / "agreement.json").read_text())["comparison"]
    assert (comparison["a"], comparison["b"]) == tuple(configs)  # the README compares what it trained
    assert comparison["test"] in ("wilcoxon", "mann-whitney") and (comparison["n_a"], comparison["n_b"]) == (30, 30)
