"""nBERTs as FEB computes it: bert_score's greedy matching on hand-worked similarity matrices, the scorer on a
tiny local encoder against bert_score's batched algorithm (re-typed from Tiiiger/bert_score utils.py), and
FEB's normalisation (0 for a wrong prediction, mean over every item)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from generation.bertscore import BertScorer, greedy_match, nbertscore

WORDS = "a man plays guitar on stage the is playing music woman sings dog runs in park outside".split()


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-layer random-init BERT with a word-level vocabulary, saved to disk."""
    from transformers import BertConfig, BertModel, BertTokenizer

    out = tmp_path_factory.mktemp("tiny_bert")
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    tok = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=64)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=64))
    tok.save_pretrained(out)
    model.save_pretrained(out)
    return out


# Candidate tokens [CLS] x y [SEP] against reference [CLS] u v w [SEP]; weights 0 for the special tokens.
SIM = torch.tensor([
    [1.0, 0.2, 0.1, 0.0, 0.3],
    [0.1, 0.9, 0.4, 0.2, 0.0],
    [0.0, 0.3, 0.5, 0.7, 0.1],
    [0.2, 0.1, 0.0, 0.6, 0.8],
], dtype=torch.float64)


def test_greedy_match_hand_worked() -> None:
    hw, rw = torch.tensor([0.0, 1, 1, 0]), torch.tensor([0.0, 1, 1, 1, 0])
    p, r, f = greedy_match(SIM, hw, rw)
    # P: rows x, y -> best 0.9 and 0.7 -> 0.8. R: columns u, v, w -> best 0.9, 0.5, 0.7 -> 0.7.
    assert p == pytest.approx(0.8, abs=1e-12) and r == pytest.approx(0.7, abs=1e-12)
    assert f == pytest.approx(2 * 0.8 * 0.7 / 1.5, abs=1e-12)


def test_special_tokens_are_matched_against_but_weigh_nothing() -> None:
    # The [SEP] column holds the best match (0.95) of token x: bert_score keeps it in the max.
    sim = SIM.clone()
    sim[1, 4] = 0.95
    p, _, _ = greedy_match(sim, torch.tensor([0.0, 1, 1, 0]), torch.tensor([0.0, 1, 1, 1, 0]))
    assert p == pytest.approx((0.95 + 0.7) / 2, abs=1e-12)


def test_empty_candidate_scores_zero() -> None:
    assert greedy_match(SIM[[0, 3]], torch.tensor([0.0, 0.0]), torch.tensor([0.0, 1, 1, 1, 0])) == (0.0, 0.0, 0.0)


def bert_score_oracle(model_dir: Path, layer: int, cands: list[str], refs: list[str]) -> list[float]:
    """bert_score.utils get_model(num_layers=layer) + bert_cos_score_idf with idf off, re-typed: one padded
    batch of all pairs, masks, bmm, NaN -> 0."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    model.encoder.layer = torch.nn.ModuleList(list(model.encoder.layer[:layer]))
    idf = defaultdict(lambda: 1.0)
    idf[tok.sep_token_id] = idf[tok.cls_token_id] = 0

    def stats(sents: list[str]):
        ids = [tok(s.strip(), add_special_tokens=True)["input_ids"] for s in sents]
        width = max(map(len, ids))
        x = torch.tensor([i + [tok.pad_token_id] * (width - len(i)) for i in ids])
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids])
        with torch.no_grad():
            emb = model(x, attention_mask=mask)[0]
        w = torch.tensor([[float(idf[t]) for t in i] + [0.0] * (width - len(i)) for i in ids])
        return emb, mask, w

    h, hm, hw = stats(cands)
    r, rm, rw = stats(refs)
    h, r = h / h.norm(dim=-1, keepdim=True), r / r.norm(dim=-1, keepdim=True)
    sim = torch.bmm(h, r.transpose(1, 2)) * torch.bmm(hm.unsqueeze(2).float(), rm.unsqueeze(1).float())
    p = (sim.max(dim=2)[0] * (hw / hw.sum(dim=1, keepdim=True))).sum(dim=1)
    rr = (sim.max(dim=1)[0] * (rw / rw.sum(dim=1, keepdim=True))).sum(dim=1)
    f = 2 * p * rr / (p + rr)
    return f.masked_fill(torch.isnan(f), 0.0).tolist()


CANDS = ["a man plays guitar", "the dog runs in the park", "woman sings", "a man is playing music on stage", ""]
REFS = ["a man is playing guitar on stage", "dog runs outside", "a woman sings music", "man plays music", "guitar"]


@pytest.mark.parametrize("layer", [1, 2, 3])
def test_scorer_reproduces_bert_score(tiny_encoder: Path, layer: int) -> None:
    ours = BertScorer(str(tiny_encoder), layer=layer, lowercase=False, device="cpu", batch_size=2).f1(CANDS, REFS)
    theirs = bert_score_oracle(tiny_encoder, layer, CANDS, REFS)
    assert ours == pytest.approx(theirs, abs=1e-6)
    assert ours[-1] == 0.0  # empty candidate
    assert len({round(x, 4) for x in ours[:-1]}) == 4  # the layer's embeddings actually differ per pair


def test_scorer_best_over_references_and_lowercasing(tiny_encoder: Path) -> None:
    scorer = BertScorer(str(tiny_encoder), layer=2, device="cpu")
    one = scorer(["A Man plays guitar"], [["dog runs outside", "a man plays guitar"]])
    assert one == [pytest.approx(1.0, abs=1e-6)]  # identical after lowercasing: P = R = 1
    both = scorer.f1(["a man plays guitar"] * 2, ["dog runs outside", "the guitar"])
    assert scorer(["a man plays guitar"], [["dog runs outside", "the guitar"]]) == [pytest.approx(max(both))]


def test_layer_out_of_range_is_an_error(tiny_encoder: Path) -> None:
    with pytest.raises(ValueError, match="BERTScore layer 17 is out of range: .* has 3 layers"):
        BertScorer(str(tiny_encoder), layer=17)


@pytest.mark.parametrize(
    ("scores", "correct", "expected"),
    [([0.9, 0.8, 0.5], [True, False, True], (90 + 50) / 3), ([0.9], [False], 0.0), ([], [], 0.0),
     ([0.0, 0.7], [True, True], 35.0)],
)
def test_nbertscore(scores: list[float], correct: list[bool], expected: float) -> None:
    assert math.isclose(nbertscore(scores, correct), expected, abs_tol=1e-12)
