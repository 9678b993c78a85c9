"""Defaults shared by the analysis and `nle-report`, in a module light enough for `nle-report --help`."""

BOOTSTRAP_DEFAULT = 1000
# The paper's comparison: full fine-tuning against self-attention query + layer norms.
DEFAULT_COMPARE = ("full_ft", "att_q+layer_norm")
