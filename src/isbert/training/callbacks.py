"""Trainer callbacks: the log, Ctrl-C and progress (model selection's is in :mod:`isbert.training.selection`)."""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback

from isbert.training.run_log import RunLog
from isbert.training.selection import LABEL_FREE_KEY, STSB_KEY


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
