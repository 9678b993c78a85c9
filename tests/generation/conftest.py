"""Fixtures for generation tests: raw-format data fixtures, a word-level tokenizer trained on them,
and tiny random-init T5 and Llama models saved to disk (so from_pretrained on a local path is exercised)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the generation extras (torch, transformers, peft) are not installed")

FIXTURES = Path(__file__).parent / "fixtures"

torch.set_num_threads(1)  # two cores are shared with other jobs; tiny models gain nothing from threads


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def esnli_dir(tmp_path: Path) -> Path:
    """A writable copy of the e-SNLI fixture."""
    return Path(shutil.copytree(FIXTURES / "esnli", tmp_path / "esnli"))


@pytest.fixture
def esnli_memorize_dir(tmp_path: Path) -> Path:
    """e-SNLI fixture whose dev file repeats the training rows, so a model can be scored on what it memorized."""
    d = Path(shutil.copytree(FIXTURES / "esnli", tmp_path / "esnli_mem"))
    shutil.copy(d / "esnli_train_1.csv", d / "esnli_dev.csv")
    return d


def _all_texts() -> list[str]:
    from generation.data import DATASETS, load_split
    from generation.prompts import prompt, target

    texts = []
    for name in DATASETS:
        for split in ("train", "validation"):
            for ex in load_split(name, FIXTURES / name, split):
                # FEB's UnifiedQA inputs end in "</s>" glued to the last word; the special token splits it off
                # when encoding. It stays out of the training texts: counted as a word, it would take another id
                # and leave a gap at 1, so len(tokenizer) would be one less than the largest id + 1.
                texts += [prompt(ex).replace("</s>", " "), target(ex), *ex.explanations]
    return texts


def _make_tokenizer(out: Path, decoder_only: bool) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(_all_texts(), trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>", "<s>"]))
    if decoder_only:  # Llama style: BOS in front
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 3)])
    else:  # T5 style: EOS at the end
        tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   bos_token="<s>")
    fast.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> Path:
    """A 2-layer, d_model 32 T5 (v1.0 layout, tied lm_head) with the fixture tokenizer, saved to a directory."""
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    out = tmp_path_factory.mktemp("tiny_t5")
    _make_tokenizer(out, decoder_only=False)
    vocab = len(AutoTokenizer.from_pretrained(out))
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=vocab, d_model=32, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2, d_kv=16,
                   relative_attention_num_buckets=8, dropout_rate=0.0, tie_word_embeddings=True,
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    T5ForConditionalGeneration(cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A 2-layer, hidden 32 Llama with the fixture tokenizer (BOS-prefixed), saved to a directory."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny_llama")
    _make_tokenizer(out, decoder_only=True)
    vocab = len(AutoTokenizer.from_pretrained(out))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=0, eos_token_id=1, bos_token_id=3, tie_word_embeddings=False)
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


@pytest.fixture(params=["t5", "llama"])
def tiny_model(request, tiny_t5: Path, tiny_llama: Path) -> Path:
    return tiny_t5 if request.param == "t5" else tiny_llama
