"""Trainer callbacks: the log, model selection (best model kept atomically), Ctrl-C and progress."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from isbert.atomic import fresh_dir, publish_dir
from isbert.training import checkpoints as ckpt
from isbert.training.criteria import CRITERIA, LABEL_FREE_KEY, STSB_KEY
from isbert.training.plots import plot_curves
from isbert.training.run_folder import BEST_MARKER
from isbert.training.run_log import RunLog


class LogCallback(TrainerCallback):
    """Every logged step and evaluation goes to the JSONL log."""

    def __init__(self, log: RunLog) -> None:
        self.log = log

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        if any(key.startswith("eval_") for key in logs):
            event = "eval"
        elif "loss" in logs:
            event = "train"
        else:
            event = "end"
        self.log.write({"event": event, "step": state.global_step, "epoch": state.epoch, **logs})


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
    plot: tuple[Path, Path] | None = None
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
        greater = CRITERIA[criterion][1]
        return value > best["value"] if greater else value < best["value"]

    @staticmethod
    def _save(model: Any, folder: Path, record: dict[str, Any]) -> None:
        staged = folder.with_name(f"{ckpt.PARTIAL_PREFIX}{folder.name}")
        fresh_dir(staged)  # a link planted at the name is unlinked, never written through
        model.save(str(staged))
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
            if self.plot:
                plot_curves(*self.plot)


class ControlCallback(TrainerCallback):
    """Evaluate and save at the last step; on Ctrl-C save a checkpoint and stop cleanly."""

    def __init__(self, evaluate: bool) -> None:
        self.evaluate = evaluate
        self.interrupted = False

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step >= state.max_steps:
            control.should_evaluate = self.evaluate
            control.should_save = True
        if self.interrupted:
            control.should_save = True
            control.should_training_stop = True


class ProgressCallback(TrainerCallback):
    """One tqdm bar (step, loss, sentences/s and ETA) and one line per evaluation, printed with or without the bar
    (the Trainer's own bar and log lines are off)."""

    def __init__(self, sentences_per_step: int, enabled: bool = True) -> None:
        self.sentences_per_step = sentences_per_step
        self.enabled = enabled
        self.bar: Any = None
        self.loss: float | None = None
        self._start_step = 0
        self._train_seconds = 0.0  # time inside training steps only: evaluations and saves are not counted
        self._step_began = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.enabled and state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=state.max_steps,
                initial=state.global_step,
                desc="isbert train",
                unit="step",
                dynamic_ncols=True,
                smoothing=0.1,
            )
        self._start_step, self._train_seconds = state.global_step, 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._step_began = time.perf_counter()

    def sentences_per_second(self, state: Any) -> float:
        steps = state.global_step - self._start_step
        return steps * self.sentences_per_step / self._train_seconds if self._train_seconds > 0 else 0.0

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._train_seconds += time.perf_counter() - self._step_began
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
            postfix = {"sent/s": f"{self.sentences_per_second(state):.1f}"}
            if self.loss is not None:
                postfix = {"loss": f"{self.loss:.4f}", **postfix}
            self.bar.set_postfix(postfix, refresh=False)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" in logs:
            self.loss = float(logs["loss"])
        if not state.is_world_process_zero or not any(k.startswith("eval_") for k in logs):
            return
        parts = [f"step {state.global_step}:"]
        if f"eval_{STSB_KEY}" in logs:
            parts.append(f"STSb dev Spearman {100 * logs[f'eval_{STSB_KEY}']:.2f}")
        if f"eval_{LABEL_FREE_KEY}" in logs:
            parts.append(f"held-out align+uniform {logs[f'eval_{LABEL_FREE_KEY}']:.4f}")
        # --no-progress hides the bar, not the scores: they are what a run is watched for
        if self.bar is not None:
            self.bar.write(" ".join(parts))
        else:
            print(" ".join(parts), flush=True)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
