"""Model-selection criteria: the metric each one reads from an evaluation, and which direction is better."""

STSB_KEY = "stsb_dev_spearman"
"""Labeled: Spearman (0-1) of cosine similarities on STS Benchmark dev."""
LABEL_FREE_KEY = "heldout_align_uniform"
"""Label-free: alignment + uniformity of held-out corpus sentences (lower is better)."""
CRITERIA: dict[str, tuple[str, bool]] = {"stsb": (STSB_KEY, True), "label-free": (LABEL_FREE_KEY, False)}
"""Selection criterion -> (metric name, greater is better)."""
