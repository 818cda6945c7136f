"""Model selection, in one place: the two criteria (the metric each reads from an evaluation and which direction is
better), the one a run uses unless told, the callback that keeps the best model by each, the choice read back from
a history, and how the label-free choice agrees with the labeled one.

The metrics themselves are computed by this package's :mod:`~isbert.training.selection.evaluators` (STS Benchmark
dev, and alignment + uniformity of held-out corpus sentences); the experiment runner scores both choices
(:mod:`isbert.experiments.runner`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scipy.stats import spearmanr
from transformers import TrainerCallback

from isbert.atomic import fresh_dir, publish_dir
from isbert.training import checkpoints as ckpt
from isbert.training.run_folder import BEST_MARKER
from isbert.training.run_log import RunLog

STSB_KEY = "stsb_dev_spearman"
"""Labeled: Spearman (0-1) of cosine similarities on STS Benchmark dev."""
LABEL_FREE_KEY = "heldout_align_uniform"
"""Label-free: alignment + uniformity of held-out corpus sentences (lower is better)."""
CRITERIA: dict[str, tuple[str, bool]] = {"stsb": (STSB_KEY, True), "label-free": (LABEL_FREE_KEY, False)}
"""Selection criterion -> (metric name, greater is better)."""


def default_criterion(dev: str | None) -> str:
    """The criterion of a run that does not name one: STSb dev where it is evaluated, else the label-free one."""
    return "stsb" if dev == "stsb" else "label-free"


def _improves(criterion: str, value: float, best: float) -> bool:
    greater = CRITERIA[criterion][1]
    return value > best if greater else value < best


def best_entry(history: list[dict[str, Any]], criterion: str) -> dict[str, Any] | None:
    """The evaluation the criterion picks from a history (the earliest of equals), None when none has its metric."""
    metric = CRITERIA[criterion][0]
    best = None
    for entry in history:
        if (
            metric in entry
            and math.isfinite(entry[metric])
            and (best is None or _improves(criterion, entry[metric], best[metric]))
        ):
            best = entry
    return best


@dataclass
class SelectionCallback(TrainerCallback):
    """Keeps the best model by the chosen criterion in ``best_dir`` (written atomically), including step 0.

    A later evaluation must be strictly better to replace the best, so when training never beats the starting
    model the starting model stays selected. With ``secondary``, the best model by that other criterion is kept too
    (in ``secondary_dir``), so both choices can be evaluated afterwards.
    """

    criterion: str
    best_dir: Path
    log: RunLog
    redraw: Callable[[], object] | None = None
    """Called after each evaluation on the main process (the run redraws its curves)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    secondary: str | None = None
    secondary_dir: Path | None = None
    secondary_best: dict[str, Any] | None = None

    @property
    def metric(self) -> str:
        return CRITERIA[self.criterion][0]

    def state_dict(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "history": self.history,
            "best": self.best,
            "secondary": self.secondary_best,
        }

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state:
            self.history = list(state.get("history", []))
            self.best = state.get("best")
            self.secondary_best = state.get("secondary")

    @staticmethod
    def _better(criterion: str, value: float, best: dict[str, Any] | None) -> bool:
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        return _improves(criterion, value, best["value"])

    @staticmethod
    def _save(model: Any, folder: Path, record: dict[str, Any]) -> None:
        staged = folder.with_name(f"{ckpt.PARTIAL_PREFIX}{folder.name}")
        fresh_dir(staged)  # a link planted at the name is unlinked, never written through
        model.save(str(staged), create_model_card=False)  # the final model gets isbert's card (result.py)
        (staged / BEST_MARKER).write_text(json.dumps(record), encoding="utf-8")
        publish_dir(staged, folder)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any) -> None:
        metrics = {k.removeprefix("eval_"): v for k, v in (metrics or {}).items()}
        if self.metric not in metrics:
            return
        entry = {"step": state.global_step, **{k: v for k, v in metrics.items() if isinstance(v, (int, float))}}
        self.history = [h for h in self.history if h["step"] != state.global_step] + [entry]
        value = float(metrics[self.metric])
        new_best = self._better(self.criterion, value, self.best)
        if new_best:
            self.best = {"step": state.global_step, "metric": self.metric, "value": value}
            if state.is_world_process_zero:
                self._save(kwargs["model"], self.best_dir, self.best)
        other = CRITERIA[self.secondary][0] if self.secondary else None
        if other in metrics and self.secondary_dir is not None:
            other_value = float(metrics[other])
            if self._better(self.secondary, other_value, self.secondary_best):  # type: ignore[arg-type]
                self.secondary_best = {
                    "step": state.global_step, "metric": other, "value": other_value, "path": str(self.secondary_dir)
                }  # fmt: skip
                if state.is_world_process_zero:
                    self._save(kwargs["model"], self.secondary_dir, self.secondary_best)
        if state.is_world_process_zero:
            self.log.write(
                {
                    "event": "selection",
                    "step": state.global_step,
                    "criterion": self.criterion,
                    "metric": self.metric,
                    "value": value,
                    "new_best": new_best,
                    "best": self.best,
                }
            )
            if self.redraw:
                self.redraw()


def selection_agreement(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How the label-free choice compares with the labeled STSb dev choice over the same evaluations."""
    rows = [h for h in history if STSB_KEY in h and LABEL_FREE_KEY in h]
    if len(rows) < 2:
        return None
    labeled, free = best_entry(rows, "stsb"), best_entry(rows, "label-free")
    assert labeled is not None and free is not None  # nosec B101 # rows hold both metrics
    rho = float(
        spearmanr([h["stsb_dev_spearman"] for h in rows], [-h["heldout_align_uniform"] for h in rows]).statistic
    )
    loss_rows = [h for h in rows if "heldout_mi_loss" in h]
    result = {
        "evaluations": len(rows),
        "labeled_choice_step": labeled["step"],
        "label_free_choice_step": free["step"],
        "same_choice": labeled["step"] == free["step"],
        "stsb_of_labeled_choice": labeled["stsb_dev_spearman"],
        "stsb_of_label_free_choice": free["stsb_dev_spearman"],
        "rank_correlation": rho,
    }
    if len(loss_rows) >= 2:
        result["rank_correlation_mi_loss"] = float(
            spearmanr([h["stsb_dev_spearman"] for h in loss_rows], [-h["heldout_mi_loss"] for h in loss_rows]).statistic
        )
    result["text"] = (
        f"label-free choice: step {free['step']} (STSb dev {100 * free['stsb_dev_spearman']:.2f}); labeled choice: "
        f"step {labeled['step']} (STSb dev {100 * labeled['stsb_dev_spearman']:.2f}); rank correlation of "
        f"-(align+uniform) with STSb over {len(rows)} evaluations: {rho:+.2f}"
    )
    return result
