"""A PNG of the training loss and the model-selection curves, drawn from the JSONL training log."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isbert.atomic import save_figure_atomic
from isbert.training.selection import LABEL_FREE_KEY, STSB_KEY


@dataclass(frozen=True)
class Curve:
    """One model-selection metric as the plot draws it."""

    key: str
    label: str
    short: str
    scale: float
    min_span: float
    """The smallest y range shown: an auto-scaled axis makes a change of 0.04 points fill the plot."""
    style: str
    color: str
    fmt: str
    greater: bool
    """Higher is better: the saved step's label goes above its point, on the side away from the start line."""


STSB = Curve(STSB_KEY, "STSb dev Spearman x100", "STSb dev", 100.0, 5.0, "o-", "tab:green", ".2f", True)
LABEL_FREE = Curve(
    LABEL_FREE_KEY, "held-out align+uniform (lower=better)", "align+uniform", 1.0, 0.5, "s--", "tab:red", ".4f", False
)


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
    figure = draw_curves(read_log(log_path))
    return None if figure is None else save_figure_atomic(figure, png_path, dpi=100)


def draw_curves(records: list[dict[str, Any]]) -> Any:
    """The figure of :func:`plot_curves` (None when there is nothing to draw), for saving or inspecting.

    Each selection metric has a y range of at least its ``min_span``, its starting value as a labeled horizontal
    line, and the saved model's step is annotated with its score; the legend sits above the axes, off the points.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("event") == "train" and "loss" in r]
    evals = [r for r in records if r.get("event") == "eval"]
    if not train and not evals:
        return None
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    if train:
        marker = "o" if len(train) < 20 else None  # a short run's few points (one is no line at all)
        top.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:blue", lw=1.2, marker=marker)
    top.set_ylabel("training loss (MI estimator)")
    top.grid(alpha=0.3)
    chosen = next((r["best"] for r in reversed(records) if r.get("event") == "selection" and r.get("best")), None)
    handles: list[Any] = []
    axis = bottom
    for curve in (STSB, LABEL_FREE):
        points = [(r["step"], curve.scale * r[f"eval_{curve.key}"]) for r in evals if f"eval_{curve.key}" in r]
        if not points:
            continue
        if handles:  # a second metric gets its own y axis on the right
            axis = bottom.twinx()
        handles += _draw_metric(axis, curve, points, right=bool(handles))
        if chosen and chosen.get("metric") == curve.key:
            _annotate_choice(axis, curve, chosen, max(step for step, _ in points))
    if chosen:
        bottom.axvline(chosen["step"], color="gray", ls=":", lw=1)
    if handles:
        bottom.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.02), ncol=2, fontsize=8,
                      borderaxespad=0, frameon=False)  # fmt: skip
    bottom.set_xlabel("step")
    bottom.grid(alpha=0.3)
    return figure


def _draw_metric(axis: Any, curve: Curve, points: list[tuple[int, float]], right: bool) -> list[Any]:
    """The metric's curve, its start as a labeled reference line, and a y range of at least ``min_span``."""
    steps, values = zip(*sorted(points), strict=True)
    (line,) = axis.plot(steps, values, curve.style, color=curve.color, label=curve.label)
    start = values[0]
    reference = axis.axhline(start, color=curve.color, ls=(0, (1, 3)), lw=1, alpha=0.8,
                             label=f"{curve.short} at the start ({start:{curve.fmt}})")  # fmt: skip
    # labeled between the first two evaluations, off their markers; the second metric's label goes below its line
    middle = (steps[0] + steps[1]) / 2 if len(steps) > 1 else steps[0]
    axis.annotate(f"start {start:{curve.fmt}}", xy=(middle, start), xytext=(0, -3 if right else 3),
                  textcoords="offset points", ha="center", va="top" if right else "bottom", fontsize=8,
                  color=curve.color)  # fmt: skip
    axis.set_ylim(*_limits([*values, start], curve.min_span))
    axis.set_ylabel(curve.label)
    return [line, reference]


def _limits(values: list[float], min_span: float) -> tuple[float, float]:
    """A y range around ``values``: their own with a 10% margin, widened to ``min_span`` about their middle."""
    low, high = min(values), max(values)
    half = max(min_span, 1.2 * (high - low)) / 2
    middle = (low + high) / 2
    return middle - half, middle + half


def _annotate_choice(axis: Any, curve: Curve, chosen: dict[str, Any], last_step: int) -> None:
    value = curve.scale * float(chosen["value"])
    late = chosen["step"] > last_step / 2  # put the label on the side with room
    axis.annotate(
        f"saved: step {chosen['step']}, {curve.short} {value:{curve.fmt}}",
        xy=(chosen["step"], value),
        xytext=(-12 if late else 12, 18 if curve.greater else -18),
        textcoords="offset points",
        ha="right" if late else "left",
        va="bottom" if curve.greater else "top",
        fontsize=8,
        arrowprops={"arrowstyle": "->", "color": "gray"},
    )
