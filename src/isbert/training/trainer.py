"""Trainer pieces: evaluators for model selection, the seeded sampler, atomic checkpoints, NaN guard, callbacks.

Everything runs inside sentence-transformers' trainer (the Hugging Face Trainer), so ``torchrun`` (DDP) works
unchanged; the parts here only add what IS-BERT training needs on top.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.evaluation.evaluator import BaseEvaluator
from sentence_transformers.base.sampler import DefaultBatchSampler
from sentence_transformers.sentence_transformer import SentenceTransformerTrainer
from transformers import TrainerCallback

from isbert.errors import IsbertError
from isbert.losses import mutual_information_loss
from isbert.training import checkpoints as ckpt
from isbert.training.plots import plot_curves

STSB_KEY = "stsb_dev_spearman"
LABEL_FREE_KEY = "heldout_align_uniform"
CRITERIA: dict[str, tuple[str, bool]] = {"stsb": (STSB_KEY, True), "label-free": (LABEL_FREE_KEY, False)}
"""Selection criterion -> (metric name, greater is better)."""


# ----------------------------------------------------------------------------------------------------
# label-free criterion


def alignment(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean squared distance between L2-normalized positive pairs (Wang & Isola, ICML 2020); 0 = identical."""
    a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
    return float((a - b).pow(2).sum(-1).mean())


def uniformity(x: torch.Tensor, t: float = 2.0) -> float:
    """``log mean_{i<j} exp(-t ||x_i - x_j||^2)`` of L2-normalized vectors; lower = spread more evenly."""
    x = F.normalize(x.float(), dim=-1)
    if x.shape[0] < 2:
        raise ValueError("uniformity needs at least 2 vectors")
    return float(torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log())


class LabelFreeEvaluator(BaseEvaluator):
    """Alignment + uniformity of held-out corpus sentences, the held-out MI loss and the fraction of local feature
    values that are exactly zero (a ReLU head collapsing into sparse codes): no labels involved.

    Positives for alignment are two encodings of the same sentence under different dropout masks (as in SimCSE);
    the masks come from a fixed seed in a forked RNG, so the score is reproducible and training's RNG is untouched.
    ``heldout_align_uniform`` = alignment + uniformity (lower is better) is the selection metric.
    """

    def __init__(
        self,
        sentences: list[str],
        *,
        seed: int,
        batch_size: int = 64,
        estimator: str = "jsd",
        critic: str = "dot",
        temperature: float = 1.0,
        exclude_radius: int | None = None,
        mi: bool = True,
    ) -> None:
        super().__init__()
        self.sentences = sentences
        self.seed = seed
        self.batch_size = batch_size
        self.estimator, self.critic, self.temperature = estimator, critic, temperature
        self.exclude_radius = exclude_radius
        self.mi = mi
        self.greater_is_better = False
        self.primary_metric = LABEL_FREE_KEY

    def _batches(self) -> Iterator[list[str]]:
        for start in range(0, len(self.sentences), self.batch_size):
            yield self.sentences[start : start + self.batch_size]

    def _forward(self, model: SentenceTransformer, texts: list[str]) -> dict[str, torch.Tensor]:
        features = model.preprocess(texts)
        features = {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
        return model(features)

    @torch.no_grad()
    def compute(self, model: SentenceTransformer) -> dict[str, float]:
        was_training = model.training
        devices = [model.device.index] if model.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed)
                model.train()  # dropout on: two views of each sentence
                views = [
                    torch.cat([self._forward(model, b)["sentence_embedding"].float() for b in self._batches()])
                    for _ in range(2)
                ]
            model.eval()
            plain, losses, zeros, values = [], [], 0, 0
            for batch in self._batches():
                out = self._forward(model, batch)
                plain.append(out["sentence_embedding"].float())
                if self.mi:  # ReLU features that collapse into sparse codes show up here first
                    local = out["token_embeddings"][out["attention_mask"].bool()]
                    zeros, values = zeros + int((local == 0).sum()), values + local.numel()
                if self.mi and len(batch) >= 2:
                    loss = mutual_information_loss(
                        out["token_embeddings"],
                        out["attention_mask"],
                        out["sentence_embedding"],
                        self.estimator,  # type: ignore[arg-type]
                        self.critic,  # type: ignore[arg-type]
                        self.temperature,
                        self.exclude_radius,
                    )
                    losses.append(float(loss) * len(batch))
        finally:
            model.train(was_training)
        align, uniform = alignment(views[0], views[1]), uniformity(torch.cat(plain))
        metrics = {"heldout_alignment": align, "heldout_uniformity": uniform, LABEL_FREE_KEY: align + uniform}
        if losses:
            metrics["heldout_mi_loss"] = sum(losses) / sum(len(b) for b in self._batches() if len(b) >= 2)
        if values:
            metrics["heldout_zero_fraction"] = zeros / values
        return metrics

    def __call__(self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> dict:
        return self.compute(model)


class StsbDevEvaluator(BaseEvaluator):
    """Spearman correlation (cosine) on the labeled STS Benchmark dev set: what the paper's code selects on."""

    def __init__(self, sentences1: list[str], sentences2: list[str], scores: np.ndarray, batch_size: int = 64) -> None:
        super().__init__()
        self.sentences1, self.sentences2, self.scores = sentences1, sentences2, np.asarray(scores, dtype=float)
        self.batch_size = batch_size
        self.primary_metric = STSB_KEY

    def __call__(self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> dict:
        from isbert.evaluation.sts import cosine_rows, spearman

        texts = list(dict.fromkeys(self.sentences1 + self.sentences2))
        vectors = model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        index = {text: i for i, text in enumerate(texts)}
        a = vectors[[index[s] for s in self.sentences1]]
        b = vectors[[index[s] for s in self.sentences2]]
        # the harness's score (x100); training logs and histories keep it on the 0-1 scale
        return {STSB_KEY: spearman(cosine_rows(a, b), self.scores) / 100}


def load_stsb_dev(data_dir: str | os.PathLike[str] | None) -> StsbDevEvaluator:
    """STSb dev from ``sts/STSBenchmark/sts-dev.csv`` under the data directory (``--data-dir``/``ISBERT_DATA_DIR``)."""
    from isbert.evaluation.readers import read_stsb
    from isbert.evaluation.tasks import resolve_data_dir

    path = resolve_data_dir(data_dir) / "sts" / "STSBenchmark" / "sts-dev.csv"
    if not path.is_file():
        raise IsbertError(f"STSb dev file not found: {path} (needed by --dev stsb)")
    subset = read_stsb(path)
    return StsbDevEvaluator(subset.sentences1, subset.sentences2, subset.scores)


class CombinedEvaluator(BaseEvaluator):
    """Runs each evaluator and merges their metrics; the primary metric is the selection criterion's."""

    def __init__(self, evaluators: list[BaseEvaluator], primary: str, greater_is_better: bool) -> None:
        super().__init__()
        self.evaluators = evaluators
        self.primary_metric = primary
        self.greater_is_better = greater_is_better

    def __call__(self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> dict:
        metrics: dict[str, float] = {}
        for evaluator in self.evaluators:
            metrics.update(evaluator(model, output_path, epoch, steps))
        return metrics


# ----------------------------------------------------------------------------------------------------
# data order


class EpochSeededBatchSampler(DefaultBatchSampler):
    """Shuffled batches from a permutation seeded by ``seed + epoch``.

    The stock sampler draws each epoch from one generator that a resumed run cannot fast-forward; here the order of
    every epoch is a pure function of (seed, epoch), so resuming in any epoch sees exactly the same batches.
    """

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator()
        generator.manual_seed(int(self.seed) + int(self.epoch))
        order = torch.randperm(len(self.sampler), generator=generator).tolist()
        batch: list[int] = []
        for index in order:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


# ----------------------------------------------------------------------------------------------------
# the trainer


class NonFiniteLoss(IsbertError):
    """The loss became NaN or infinite."""

    def __init__(self, step: int, value: float) -> None:
        self.step, self.value = step, value
        super().__init__(f"the loss became {value} at step {step}")


class IsbertTrainer(SentenceTransformerTrainer):
    """sentence-transformers' trainer with a NaN/inf guard and crash-safe checkpoints (see :mod:`checkpoints`)."""

    def __init__(self, *args: Any, keep_last: int = 2, selection: SelectionCallback | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.keep_last = keep_last
        self.selection = selection
        self._staging_dir: str | None = None

    def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None):
        result = super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )
        loss = result[0] if isinstance(result, tuple) else result
        bad = (~torch.isfinite(loss.detach())).any().float().reshape(1)
        if self.args.world_size > 1:  # every rank must stop together, or the others hang in all-reduce
            torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
        if bad.item():
            raise NonFiniteLoss(self.state.global_step + 1, float(loss.detach().float().reshape(-1)[0]))
        return result

    def _get_output_dir(self, trial: Any) -> str:
        return self._staging_dir or super()._get_output_dir(trial)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        """Write the checkpoint under ``.partial-STEP/``, fsync it, then rename it to ``checkpoint-STEP``."""
        root = self.args.output_dir
        step = self.state.global_step
        staging = os.path.join(root, f"{ckpt.PARTIAL_PREFIX}{step}")
        if self.args.should_save:
            shutil.rmtree(staging, ignore_errors=True)
            os.makedirs(staging, exist_ok=True)
        self.accelerator.wait_for_everyone()
        self._staging_dir = staging
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_dir = None
        self.accelerator.wait_for_everyone()  # every rank has written its RNG state
        if self.args.should_save:
            folder = os.path.join(staging, f"checkpoint-{step}")
            # The Trainer pickles its arguments here for reference only; training_run.json records the settings,
            # and a run folder should hold nothing that needs unpickling.
            Path(folder, "training_args.bin").unlink(missing_ok=True)
            marker = {"step": step, "selection": self.selection.state_dict() if self.selection else None}
            Path(folder, ckpt.MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
            ckpt.publish_dir(folder, os.path.join(root, f"checkpoint-{step}"))
            shutil.rmtree(staging, ignore_errors=True)
            ckpt.rotate(root, self.keep_last)
        self.accelerator.wait_for_everyone()


# ----------------------------------------------------------------------------------------------------
# callbacks


class RunLog:
    """Append-only JSONL log of the run (main process only), flushed after every record."""

    def __init__(self, path: str | os.PathLike[str], enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"time": round(time.time(), 3), **record}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=float) + "\n")
            handle.flush()

    def truncate_after(self, step: int) -> None:
        """Drop records from after ``step`` (a resumed run writes them again)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("step", 0) <= step:
                kept.append(line)
        partial = self.path.with_name(f".{self.path.name}.partial")
        partial.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        os.replace(partial, self.path)


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
        shutil.rmtree(staged, ignore_errors=True)
        model.save(str(staged))
        (staged / "isbert_best.json").write_text(json.dumps(record), encoding="utf-8")
        ckpt.publish_dir(staged, folder)

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
    """One tqdm bar: step, loss, sentences/s and ETA (the Trainer's own bar and log lines are off)."""

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
        if self.bar is not None and any(k.startswith("eval_") for k in logs):
            parts = [f"step {state.global_step}:"]
            if f"eval_{STSB_KEY}" in logs:
                parts.append(f"STSb dev Spearman {100 * logs[f'eval_{STSB_KEY}']:.2f}")
            if f"eval_{LABEL_FREE_KEY}" in logs:
                parts.append(f"held-out align+uniform {logs[f'eval_{LABEL_FREE_KEY}']:.4f}")
            self.bar.write(" ".join(parts))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
