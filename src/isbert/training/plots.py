"""A PNG of the training loss and the model-selection curves, drawn from the JSONL training log."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from isbert.atomic import save_figure_atomic


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash
                continue
    return records


def plot_curves(log_path: str | os.PathLike[str], png_path: str | os.PathLike[str]) -> Path | None:
    """Loss (top) and dev STSb Spearman / held-out alignment+uniformity (bottom) against the step.

    Written to a temporary file and renamed, so a reader never sees half a PNG. Returns the path, or None when the
    log has nothing to draw.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    records = read_log(log_path)
    train = [r for r in records if r.get("event") == "train" and "loss" in r]
    evals = [r for r in records if r.get("event") == "eval"]
    if not train and not evals:
        return None
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    if train:
        top.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:blue", lw=1.2)
    top.set_ylabel("training loss (MI estimator)")
    top.grid(alpha=0.3)
    stsb = [(r["step"], 100 * r["eval_stsb_dev_spearman"]) for r in evals if "eval_stsb_dev_spearman" in r]
    free = [(r["step"], r["eval_heldout_align_uniform"]) for r in evals if "eval_heldout_align_uniform" in r]
    handles = []
    if stsb:
        (line,) = bottom.plot(*zip(*stsb, strict=True), "o-", color="tab:green", label="STSb dev Spearman x100")
        handles.append(line)
        bottom.set_ylabel("STSb dev Spearman x100")
    if free:
        axis = bottom.twinx() if stsb else bottom
        (line,) = axis.plot(
            *zip(*free, strict=True), "s--", color="tab:red", label="held-out align+uniform (lower=better)"
        )
        handles.append(line)
        axis.set_ylabel("alignment + uniformity")
    best = [r for r in records if r.get("event") == "selection" and r.get("new_best")]
    if best:
        bottom.axvline(best[-1]["step"], color="gray", ls=":", lw=1)
    if handles:
        bottom.legend(handles=handles, loc="best", fontsize=8)
    bottom.set_xlabel("step")
    bottom.grid(alpha=0.3)
    return save_figure_atomic(figure, png_path, dpi=100)
