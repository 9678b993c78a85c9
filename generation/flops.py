"""FLOPs of one training step, from the model's forward FLOP count (the "2 N" rule: a multiply-add per weight
per token through the stack the token passes; attention-score FLOPs and embedding lookups are left out).

forward(example) = 2 * (N_encoder * input_tokens + (N_decoder + N_lm_head) * target_tokens)   (T5)
                 = 2 * (N_decoder + N_lm_head) * (prompt_tokens + target_tokens)               (decoder-only)
train step       = forward * (2 + trainable / total) summed over the batch: the forward pass, the backward
                   pass's activation gradients (about one forward; every configuration here has trainable
                   tensors in the first block or the input embedding, so they run through the whole network),
                   and weight gradients only for the trainable share. Full fine-tuning gives the usual 3x
                   forward (6 N per token). PEFT adapters' own forward FLOPs are left out (< 1 % of the base's
                   except LoRA r 128, about 5 %).
"""

from __future__ import annotations

import re

import torch

FORMULA = ("train FLOPs/step = batch_size x mean forward FLOPs per training example x (2 + trainable/total); "
           "forward = 2 x (encoder params x input tokens + (decoder + lm_head params) x target tokens)")


def stack_sizes(model: torch.nn.Module) -> dict[str, int]:
    """Parameters each token passes through: encoder stack, decoder stack, lm_head (tied or not)."""
    sizes = {"encoder": 0, "decoder": 0, "lm_head": 0}
    for name, p in model.named_parameters(remove_duplicate=False):
        if "embed_tokens" in name or name.startswith("shared."):
            continue
        if name.startswith("lm_head."):
            sizes["lm_head"] += p.numel()
        elif re.match(r"encoder\.", name):
            sizes["encoder"] += p.numel()
        elif re.match(r"(decoder|model)\.", name):
            sizes["decoder"] += p.numel()
    return sizes


def forward_flops(sizes: dict[str, int], input_tokens: int, target_tokens: int, decoder_only: bool) -> int:
    """Forward FLOPs of one example (see the module docstring)."""
    if decoder_only:  # prompt and target both run through the decoder stack and the head
        return 2 * (sizes["decoder"] + sizes["lm_head"]) * (input_tokens + target_tokens)
    return 2 * (sizes["encoder"] * input_tokens + (sizes["decoder"] + sizes["lm_head"]) * target_tokens)


def train_step_flops(forward_per_example: float, batch_size: int, trainable: int, total: int) -> float:
    """FLOPs of one optimizer step on a batch of average examples."""
    return batch_size * forward_per_example * (2 + trainable / total)
