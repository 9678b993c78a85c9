"""What several benchmark scripts share (a helper module, not a benchmark: it has no `__main__`)."""

from __future__ import annotations

import argparse

# One input per FEB dataset, for the synthetic items the latency and load benchmarks store.
INPUTS = {
    "esnli": {"premise": "A man in a red shirt is playing a guitar on a stage.", "hypothesis": "A man performs."},
    "ecqa": {"question": "Where would you put a plate after washing it?",
             "choices": ["cupboard", "table", "restaurant", "dishwasher", "flea market"]},
    "sbic": {"post": "Can anyone recommend a good recipe for banana bread?"},
    "comve": {"sent0": "He put the elephant in the fridge.", "sent1": "He put the milk in the fridge."},
}


def seconds_range(text: str) -> tuple[float, float]:
    """An argparse type for `MIN,MAX` seconds: two numbers, 0 <= MIN <= MAX."""
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX seconds such as 5,20, got {text!r}") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"expected 0 <= MIN <= MAX, got {text!r}")
    return low, high
