"""BERTScore as FEB computes it (nBERTs), reproducing the `bert-score` package's algorithm.

FEB `scripts/metrics.py`: for each validation item, BERTScore F1 x 100 of the lowercased predicted explanation
against each lowercased gold explanation (`datasets.load_metric("bertscore").compute(..., lang="en")`, i.e.
bert_score 0.3.x defaults: roberta-large, layer 17, idf off, no baseline rescaling), the best over the gold
explanations; nBERTs (`bertscore_correct_normalized`) = the mean over the whole validation set with 0 for a
wrong prediction.

The `bert-score` package itself is not a dependency (it requires matplotlib); this module follows its
`bert_score/utils.py` step by step (Tiiiger/bert_score): `sent_encode` (strip; an empty sentence is just the
special tokens; RoBERTa/GPT-2 tokenizers with a prefix space; truncation at model_max_length), the hidden
states of layer `num_layers`, `greedy_cos_idf` (cosine similarity of every candidate token with every
reference token, special tokens included in the matrix; precision = weighted mean over candidate tokens of
their best match, recall likewise over reference tokens; with idf off every token weighs 1 except the [CLS]/<s>
and [SEP]/</s> ids, which weigh 0; F = 2PR/(P+R), NaN -> 0; an empty candidate or reference scores 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

FEB_MODEL = "roberta-large"
FEB_LAYER = 17  # bert_score model2layers["roberta-large"]


def greedy_match(sim: torch.Tensor, hyp_weights: torch.Tensor, ref_weights: torch.Tensor) -> tuple[float, float, float]:
    """(P, R, F) of one candidate/reference pair from their token cosine-similarity matrix (candidate tokens x
    reference tokens) and per-token weights, as bert_score's greedy_cos_idf; a side with only its two special
    tokens scores 0."""
    sim = sim.double()
    hw, rw = hyp_weights.double(), ref_weights.double()
    p = (sim.max(dim=1).values * (hw / hw.sum())).sum()  # 0/0 = NaN when every weight is 0, as in bert_score
    r = (sim.max(dim=0).values * (rw / rw.sum())).sum()
    f = 2 * p * r / (p + r)
    if sim.shape[0] == 2 or sim.shape[1] == 2:  # bert_score: "Empty candidate/reference sentence detected"
        p, r = p * 0, r * 0
    f = torch.nan_to_num(f, nan=0.0)
    return float(torch.nan_to_num(p, nan=0.0)), float(torch.nan_to_num(r, nan=0.0)), float(f)


@dataclass
class BertScorer:
    """A local encoder scored the bert_score way; call it with candidates and lists of references."""

    model_path: str
    layer: int = FEB_LAYER
    lowercase: bool = True  # FEB lowercases both sides before scoring
    batch_size: int = 64
    device: str | None = None

    def __post_init__(self) -> None:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        arch = AutoConfig.from_pretrained(self.model_path)
        n_layers = getattr(arch, "num_hidden_layers", None)
        if n_layers is not None and not 0 <= self.layer <= n_layers:
            raise ValueError(f"BERTScore layer {self.layer} is out of range: {self.model_path} has {n_layers} layers")
        # bert_score encodes with add_prefix_space=True for RoBERTa and GPT-2 tokenizers.
        prefix = arch.model_type in ("roberta", "gpt2", "xlm-roberta", "longformer", "bart")
        kwargs = {"add_prefix_space": True} if prefix and arch.model_type != "xlm-roberta" else {}
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, **kwargs)
        self.model = AutoModel.from_pretrained(self.model_path).eval()
        self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        special = {self.tokenizer.cls_token_id, self.tokenizer.sep_token_id} - {None}
        self._zero_weight = special

    def settings(self) -> dict:
        """What makes two nBERTs comparable, as metrics.json records it (`scoring`): the encoder by hub name when
        it has one (a cache snapshot counts as its hub name), else by path, and the layer."""
        from generation.hub import hub_name

        return {"bertscore_model": hub_name(self.model_path) or str(Path(self.model_path).resolve()),
                "bertscore_layer": self.layer, "lowercase": self.lowercase}

    def encode(self, sentence: str) -> list[int]:
        """bert_score sent_encode."""
        sentence = sentence.strip()
        if not sentence:  # bert_score: build_inputs_with_special_tokens([]), gone in transformers 5
            return self.tokenizer("", add_special_tokens=True)["input_ids"]
        limit = self.tokenizer.model_max_length
        if limit > 1_000_000:  # "no limit" sentinel of tokenizers saved without one
            return self.tokenizer(sentence, add_special_tokens=True)["input_ids"]
        return self.tokenizer(sentence, add_special_tokens=True, truncation=True, max_length=limit)["input_ids"]

    @torch.no_grad()
    def embed(self, sentences: Sequence[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Unit-normalized token embeddings of layer `layer` and token weights, per distinct sentence."""
        unique = sorted(set(sentences), key=lambda s: len(s.split(" ")), reverse=True)
        out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for start in range(0, len(unique), self.batch_size):
            batch = unique[start:start + self.batch_size]
            ids = [self.encode(s) for s in batch]
            width = max(len(i) for i in ids)
            input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
            mask = torch.zeros((len(ids), width), dtype=torch.long)
            for row, seq in enumerate(ids):
                input_ids[row, :len(seq)] = torch.tensor(seq)
                mask[row, :len(seq)] = 1
            hidden = self.model(input_ids.to(self.device), attention_mask=mask.to(self.device),
                                output_hidden_states=True).hidden_states[self.layer].float().cpu()
            for row, (sentence, seq) in enumerate(zip(batch, ids, strict=True)):
                emb = hidden[row, :len(seq)]
                emb = emb / emb.norm(dim=-1, keepdim=True)
                weights = torch.tensor([0.0 if t in self._zero_weight else 1.0 for t in seq])
                out[sentence] = (emb, weights)
        return out

    def f1(self, candidates: Sequence[str], references: Sequence[str]) -> list[float]:
        """BERTScore F1 of each candidate against the reference at the same position."""
        if self.lowercase:
            candidates, references = [c.lower() for c in candidates], [r.lower() for r in references]
        stats = self.embed([*candidates, *references])
        scores = []
        for c, r in zip(candidates, references, strict=True):
            (ce, cw), (re_, rw) = stats[c], stats[r]
            scores.append(greedy_match(ce @ re_.T, cw, rw)[2])
        return scores

    def __call__(self, candidates: list[str], references: list[list[str]]) -> list[float]:
        """Per item, the best F1 over its references (FEB: max over the gold explanations)."""
        flat_c = [c for c, refs in zip(candidates, references, strict=True) for _ in refs]
        flat_r = [r for refs in references for r in refs]
        flat = self.f1(flat_c, flat_r)
        scores, k = [], 0
        for refs in references:
            scores.append(max(flat[k:k + len(refs)], default=0.0))
            k += len(refs)
        return scores


def nbertscore(scores: Sequence[float], correct: Sequence[bool]) -> float:
    """FEB's bertscore_correct_normalized: mean over all items of 100 x F1 when correct, else 0."""
    if len(scores) != len(correct):
        raise ValueError(f"{len(scores)} scores for {len(correct)} predictions")
    if not scores:
        return 0.0
    return sum(100.0 * s if ok else 0.0 for s, ok in zip(scores, correct, strict=True)) / len(scores)


def bertscore_scorer(model_path: str, layer: int = FEB_LAYER, batch_size: int = 64,
                     lowercase: bool = True) -> Callable[[list[str], list[list[str]]], list[float]]:
    """A scorer for `evaluate_run`: best BERTScore F1 (0..1) per item, FEB's settings by default."""
    return BertScorer(model_path, layer=layer, lowercase=lowercase, batch_size=batch_size)
