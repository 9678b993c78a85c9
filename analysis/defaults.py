"""Defaults shared by the analysis and `nle-report`, in a module light enough for `nle-report --help`."""

BOOTSTRAP_DEFAULT = 1000
# The paper's comparison: full fine-tuning against self-attention query + layer norms.
DEFAULT_COMPARE = ("full_ft", "att_q+layer_norm")
# Power from a pilot (`nle-report --power`): simulations per sample size, test level, sample sizes tried.
POWER_SIMS_DEFAULT = 1000
POWER_ALPHA_DEFAULT = 0.05
POWER_SIZES_DEFAULT = (10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400, 500)
