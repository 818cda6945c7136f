"""``isbert.training.train``: one IS-BERT training run, from corpus files to a selected, saved model.

:func:`train` reads as its phases: settings, run folder, data, selection, model and loss, trainer arguments,
trainer and callbacks, the run itself, result and finalize; each phase is a function below it.
"""

from __future__ import annotations

import errno
import json
import math
import pickle  # nosec B403 # for UnpicklingError only; checkpoints load with weights_only=True
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import torch
import transformers
from accelerate import PartialState
from sentence_transformers.sentence_transformer import SentenceTransformerTrainingArguments
from torch import nn
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_callback import ProgressCallback as HFProgress

from isbert.atomic import fresh_dir, publish_entries, remove_path, write_json_atomic
from isbert.errors import IsbertError
from isbert.glove import word_coverage
from isbert.inputs import InputFile, expand_inputs
from isbert.model import load_torch
from isbert.objectives import objective
from isbert.threads import current_plan
from isbert.throttle import Throttled
from isbert.training import checkpoints as ckpt
from isbert.training.callbacks import ControlCallback, LogCallback, ProgressCallback
from isbert.training.config import LR_SCHEDULERS, TrainConfig, validate
from isbert.training.corpus import (
    CorpusStats,
    build_corpus_dataset,
    corpus_fingerprint,
    default_heldout_size,
    split_heldout,
)
from isbert.training.models import build_model, freeze_parts, freeze_unused_parameters, tuned_encoder_warning
from isbert.training.plots import plot_curves
from isbert.training.precision import resolve_precision, trainer_flags
from isbert.training.result import TrainingInterrupted, TrainResult, write_model_card
from isbert.training.run_folder import (
    BEST_MARKER,
    CORPUS_CACHE,
    LOG_FILE,
    PLOT_FILE,
    RUN_FILE,
    SUMMARY_FILE,
    RunFolder,
    SettingsMismatch,
)
from isbert.training.run_log import RunLog
from isbert.training.sampler import EpochSeededBatchSampler, LengthGroupedBatchSampler, token_lengths
from isbert.training.selection import CRITERIA, SelectionCallback, default_criterion, selection_agreement
from isbert.training.selection.evaluators import CombinedEvaluator, LabelFreeEvaluator, load_stsb_dev
from isbert.training.trainer import IsbertTrainer, NonFiniteLoss
from isbert.training.training_free import training_free_line

EVALUATIONS_PER_RUN = 5
"""Evaluations after step 0 when ``eval_steps`` is not set."""


@dataclass
class Run:
    """Where a run lives and what every phase needs to know about it."""

    config: TrainConfig
    select: str
    out: Path
    checkpoint_dir: Path
    resume_from: Path | None
    log: RunLog
    state: PartialState
    corpus: list[InputFile]
    """The corpus files, expanded once (folders, patterns), so the resume fingerprint covers what is read."""
    precision: str = "fp32"
    """What ``--precision`` resolved to on this machine (set with the trainer arguments)."""

    @property
    def main(self) -> bool:
        return bool(self.state.is_main_process)

    @property
    def plot(self) -> tuple[Path, Path]:
        return self.out / LOG_FILE, self.out / PLOT_FILE


@dataclass
class RunData:
    train_set: Any
    heldout: Any
    stats: CorpusStats


@dataclass
class Callbacks:
    selection: SelectionCallback
    control: ControlCallback
    progress: ProgressCallback


def train(config: TrainConfig | None = None, *, callbacks: list[Any] | None = None, **overrides: Any) -> TrainResult:
    """Train an IS-BERT model: ``train(TrainConfig(...))`` or ``train(model=..., corpus=[...], output=...)``.

    Streams the corpus into Arrow, holds out a slice for the label-free criterion, trains with sentence-transformers'
    trainer (DDP under ``torchrun``), evaluates at step 0, every ``eval_steps`` and at the end, keeps the best model
    and saves it into ``output``. Extra Hugging Face ``TrainerCallback`` objects can be passed in ``callbacks``.

    Raises:
        IsbertError: bad input or settings, a NaN/inf loss (after which the last checkpoint stays loadable).
        TrainingInterrupted: Ctrl-C, after saving a checkpoint (resume with ``resume=True``).
    """
    config = _settings(config, overrides)
    dev = load_stsb_dev(config.data_dir) if config.dev == "stsb" else None  # fail early on missing data
    run = _open_run(config)
    blind = tuned_encoder_warning(config)
    if blind and run.main:  # said at the start, before any time is spent, and again in the final summary
        print(blind, file=sys.stderr)
    data = _load_data(run)
    evaluator = _selection_evaluator(run, data, dev)
    torch.manual_seed(config.seed)  # the head's initial weights; on resume the anchor needs the very same start
    model, loss, frozen = _model_and_loss(config)
    # A word-vector backbone drops unknown words: say how many, instead of training on silently shortened sentences.
    coverage = word_coverage(model, data.train_set["text"])
    data.stats.word_coverage = coverage.as_dict() if coverage else None
    eval_steps = evaluation_interval(config, len(data.train_set), world=run.state.num_processes)
    sampler = _batch_sampler(config, model, data)
    args = _trainer_arguments(run, evaluate=evaluator is not None, eval_steps=eval_steps, sampler=sampler)
    train_set = objective(config.objective).training_columns(data.train_set, config.seed)
    trainer, parts = _trainer(run, model, loss, args, evaluator, train_set, callbacks)
    _log_start(run, data, frozen, world=max(1, args.world_size), eval_steps=eval_steps)
    if blind:
        run.log.write({"event": "warning", "step": trainer.state.global_step, "warning": blind})
    seconds = _train_steps(run, trainer, parts.control)
    result = _result(run, trainer, parts, data.stats, seconds)
    result.selection_warning = blind
    if parts.control.interrupted:
        run.log.write({"event": "interrupted", "step": result.steps})
        if run.main:
            plot_curves(*run.plot)
        raise TrainingInterrupted(
            f"interrupted at step {result.steps}; checkpoint saved in {run.checkpoint_dir}. Continue with the same "
            "command plus --resume"
        )
    if dev is not None and run.main:
        step = (result.best or {}).get("step")
        result.verdict, result.training_free = dev.verdict(step), training_free_line(config, dev, step)
    if run.main:
        _finalize(run, trainer.model, result)
    run.state.wait_for_everyone()
    return result


# ------------------------------------------------------------------------------------------ settings and folder
def _settings(config: TrainConfig | None, overrides: dict[str, Any]) -> TrainConfig:
    config = config or TrainConfig()
    if overrides:
        unknown = sorted(set(overrides) - {f.name for f in fields(TrainConfig)})
        if unknown:
            raise TypeError(f"unknown training settings: {', '.join(unknown)}")
        config = TrainConfig(**{**asdict(config), **overrides})
    config.corpus = [str(p) for p in config.corpus]
    validate(config)
    return config


def _open_run(config: TrainConfig) -> Run:
    """The run folder, created or checked (resume) on the main process, and where to resume from."""
    corpus = expand_inputs(config.corpus)
    fingerprint = corpus_fingerprint(corpus)
    state = PartialState(cpu=config.device == "cpu")
    if state.is_main_process:
        prepare_output(config, fingerprint)
    state.wait_for_everyone()
    out = Path(config.output)
    checkpoint_dir = RunFolder(out).checkpoints
    resume_from = ckpt.latest_checkpoint(checkpoint_dir) if config.resume else None
    if config.resume and resume_from is None:
        _nothing_to_resume(out, main=state.is_main_process)
    if state.is_main_process:
        ckpt.remove_partials(checkpoint_dir)
    select = config.select or default_criterion(config.dev)
    log = RunLog(out / LOG_FILE, enabled=state.is_main_process)
    return Run(config, select, out, checkpoint_dir, resume_from, log, state, corpus)


def _nothing_to_resume(out: Path, main: bool) -> None:
    """``--resume`` found no complete checkpoint: a finished run has nothing left to do, an early crash restarts."""
    if (out / SUMMARY_FILE).is_file():
        raise IsbertError(
            f"{out} holds a finished run with no checkpoint left (--keep-checkpoints 0): nothing to resume; its model "
            "is saved there, or pass --overwrite instead of --resume to train again"
        )
    if main:
        print(f"note: {out} has no complete checkpoint to resume from; training starts at step 0", file=sys.stderr)


def prepare_output(config: TrainConfig, fingerprint: list[dict[str, Any]]) -> None:
    """Create the run folder, or check that it holds this very run (``resume``), or clear it (``overwrite``)."""
    out = Path(config.output)
    run_file = out / RUN_FILE
    if config.resume and config.overwrite:
        raise IsbertError("choose one of --resume and --overwrite")
    wanted = {**config.trajectory(), "corpus": fingerprint}
    if out.exists() and not out.is_dir():
        raise IsbertError(f"--output {out} is a file, not a folder")
    has_files = out.is_dir() and any(out.iterdir())
    if has_files and not run_file.is_file():
        raise IsbertError(f"--output {out} is not empty and holds no isbert training run; choose another folder")
    if has_files and config.overwrite:
        remove_path(out)  # a link at --output is unlinked, never followed (rmtree refuses links with a cryptic error)
    elif has_files and config.resume:
        previous = json.loads(run_file.read_text(encoding="utf-8"))["trajectory"]
        changed = [k for k in set(previous) | set(wanted) if previous.get(k) != wanted.get(k)]
        if changed:
            raise SettingsMismatch(out, changed)
        return
    elif has_files:
        raise IsbertError(
            f"{out} already holds a training run; pass --resume to continue it or --overwrite to start over"
        )
    out.mkdir(parents=True, exist_ok=True)
    record = {"config": asdict(config), "trajectory": wanted, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_json_atomic(run_file, record)


# -------------------------------------------------------------------------------------------- data and selection
def _load_data(run: Run) -> RunData:
    """The corpus streamed into Arrow, with a seeded held-out slice for the label-free criterion."""
    config = run.config
    dataset, stats = build_corpus_dataset(
        run.corpus,
        run.out / CORPUS_CACHE / f"rank-{run.state.process_index}",
        text_field=config.text_field,
        column=config.column,
        encoding_errors=config.encoding_errors,
        dedup=config.dedup,
    )
    heldout_size = default_heldout_size(len(dataset)) if config.heldout_size is None else config.heldout_size
    train_set, heldout = split_heldout(dataset, heldout_size, config.seed)
    stats.heldout = 0 if heldout is None else len(heldout)
    if len(train_set) < config.batch_size:
        raise IsbertError(
            f"the corpus has {len(train_set)} training sentences"
            + (f" (after holding out {stats.heldout})" if stats.heldout else "")
            + f", fewer than --batch-size {config.batch_size}; lower --batch-size or add sentences"
        )
    return RunData(train_set, heldout, stats)


def _selection_evaluator(run: Run, data: RunData, dev: Any) -> CombinedEvaluator | None:
    """Labeled STSb dev and/or the label-free criterion, with the run's criterion as the primary metric."""
    config, evaluators = run.config, []
    if dev is not None:
        dev.batch_size = config.eval_batch_size
        evaluators.append(dev)
    if data.heldout is not None and len(data.heldout) >= 2:
        evaluators.append(
            LabelFreeEvaluator(
                list(data.heldout["text"]),
                seed=config.seed,
                batch_size=config.eval_batch_size,
                estimator=config.estimator,
                critic=config.critic,
                temperature=config.temperature,
                exclude_radius=config.exclude_radius,
                mi=not objective(config.objective).pooled,  # a mean-pooled encoder has no local features
            )
        )
    elif run.select == "label-free" and config.select == "label-free":
        raise IsbertError("--select label-free needs held-out sentences (--heldout-size of at least 2)")
    metric, greater = CRITERIA[run.select]
    return CombinedEvaluator(evaluators, metric, greater) if evaluators else None


# ------------------------------------------------------------------------------------------- model and trainer
def _model_and_loss(config: TrainConfig) -> tuple[Any, nn.Module, list[str]]:
    """The starting model, its objective, and the names of the parameters that do not learn."""
    # transformers' own bars ("Loading weights" here, "Writing model shards" at each save) would break a quiet run's
    # silence and a shown run's one bar (the trainer's progress callback)
    transformers.utils.logging.disable_progress_bar()
    model = build_model(config)
    # We write our own model card; sentence-transformers' widget sampling would print a bar and draw from `random`.
    model.model_card_data.set_widget_examples = lambda dataset: None
    frozen = freeze_parts(model, config.train_parts)
    trained = objective(config.objective)
    loss = trained.build_loss(model, config)
    return model, loss, frozen + freeze_unused_parameters(model, loss, len(trained.columns))


def evaluation_interval(config: TrainConfig, train_size: int, world: int = 1) -> int:
    """``eval_steps`` as set, else about :data:`EVALUATIONS_PER_RUN` evaluations over the run's steps.

    A fixed default interval either exceeds a short run (only step 0 and the last step are evaluated) or evaluates
    a long one every few seconds; a fixed count of evaluations suits both.
    """
    if config.eval_steps is not None:
        return config.eval_steps
    # without max_steps, as the Trainer counts: whole batches per epoch (the last partial one dropped), times epochs
    total = config.max_steps or math.ceil(config.epochs * (train_size // (config.batch_size * max(1, world))))
    return max(1, math.ceil(total / EVALUATIONS_PER_RUN))


def _batch_sampler(config: TrainConfig, model: Any, data: RunData) -> Any:
    """The batch order of ``--batching``: random, or length-grouped by the model's own token counts."""
    if config.batching == "random":
        return EpochSeededBatchSampler
    return partial(LengthGroupedBatchSampler, lengths=token_lengths(model, data.train_set["text"]))


def _trainer_arguments(run: Run, evaluate: bool, eval_steps: int, sampler: Any) -> SentenceTransformerTrainingArguments:
    config = run.config
    use_cuda = torch.cuda.is_available() and config.device != "cpu"
    run.precision = resolve_precision(config.precision, use_cuda)
    return SentenceTransformerTrainingArguments(
        output_dir=str(run.checkpoint_dir),
        per_device_train_batch_size=config.batch_size,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps else -1,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        adam_epsilon=config.adam_epsilon,
        # One fused kernel over all parameters: the per-tensor loop took a quarter of a CPU step (docs/training.md).
        optim="adamw_torch_fused",
        lr_scheduler_type=LR_SCHEDULERS[config.lr_scheduler],
        # transformers 5 reads a float below 1 as a fraction of the total steps (warmup_ratio was removed).
        warmup_steps=config.warmup_ratio,
        max_grad_norm=config.max_grad_norm,
        logging_steps=config.logging_steps,
        logging_nan_inf_filter=False,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=eval_steps,
        eval_on_start=evaluate and run.resume_from is None,
        save_strategy="steps",
        save_steps=config.save_steps or eval_steps,
        save_total_limit=None,
        seed=config.seed,
        dataloader_drop_last=True,
        batch_sampler=sampler,
        report_to="none",
        disable_tqdm=True,
        # Without an accelerator the Trainer must be told it is on CPU, or it refuses bf16 (CPU autocast) outright.
        use_cpu=config.device == "cpu" or not (use_cuda or torch.backends.mps.is_available()),
        dataloader_pin_memory=use_cuda,
        ddp_find_unused_parameters=False,
        **trainer_flags(run.precision),
    )


def _trainer(
    run: Run, model: Any, loss: Any, args: Any, evaluator: Any, train_set: Any, extra: list[Any] | None
) -> tuple[IsbertTrainer, Callbacks]:
    """sentence-transformers' trainer with isbert's callbacks (log, selection, Ctrl-C, progress) and no others."""
    other = "label-free" if run.select == "stsb" else "stsb"
    redraw = Throttled(partial(plot_curves, *run.plot)) if run.main else None  # the end and any stop always draw
    selection = SelectionCallback(
        run.select, RunFolder(run.out).best(), run.log, redraw,
        secondary=other,
        secondary_dir=RunFolder(run.out).best(other),
    )  # fmt: skip
    parts = Callbacks(
        selection=selection,
        control=ControlCallback(evaluate=evaluator is not None),
        progress=ProgressCallback(run.config.batch_size * max(1, args.world_size), enabled=run.config.show_progress),
    )
    trainer = IsbertTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        loss=loss,
        evaluator=evaluator,
        callbacks=[LogCallback(run.log), selection, parts.control, parts.progress, *(extra or [])],
        keep_last=run.config.keep_checkpoints,
        selection=selection,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(HFProgress)
    trainer.remove_callback(trainer.model_card_callback_class)  # isbert writes its own model card
    if run.resume_from is not None:
        marker = ckpt.read_marker(run.resume_from)
        selection.load_state_dict(marker.get("selection"))
        run.log.truncate_after(marker["step"])
        run.log.write({"event": "resume", "step": marker["step"], "checkpoint": str(run.resume_from)})
    return trainer, parts


def _log_start(run: Run, data: RunData, frozen: list[str], world: int, eval_steps: int) -> None:
    if run.resume_from is not None:
        return
    if run.config.resume and run.main:
        run.log.write({"event": "resume", "step": 0, "checkpoint": None, "note": "no complete checkpoint; fresh start"})
    run.log.write(
        {
            "event": "start",
            "step": 0,
            "config": asdict(run.config),
            "corpus": data.stats.to_dict(),
            "frozen_parameters": frozen,
            "world_size": world,
            "selection": run.select,
            "eval_steps": eval_steps,
            "precision": run.precision,
            "threads": current_plan().describe(),
        }
    )


# ------------------------------------------------------------------------------------------------------ the run
def _train_steps(run: Run, trainer: IsbertTrainer, control: ControlCallback) -> float:
    """Run the trainer (the first Ctrl-C stops at the next step with a checkpoint); seconds taken."""

    def on_sigint(signum: int, frame: Any) -> None:
        if control.interrupted:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        control.interrupted = True

    try:
        previous_handler = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: no Ctrl-C handling
        previous_handler = None
    started = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=str(run.resume_from) if run.resume_from else None)
    except NonFiniteLoss as error:
        last = ckpt.latest_checkpoint(run.checkpoint_dir)
        run.log.write({"event": "stopped", "step": error.step, "reason": str(error)})
        if run.main:
            plot_curves(*run.plot)
        where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        raise IsbertError(
            f"{error}; training stopped ({where}; it loads with isbert.load). Try a lower --lr or --precision fp32"
        ) from None
    except pickle.UnpicklingError:  # a checkpoint's optimizer or RNG file holds more than tensors: not loaded
        raise IsbertError(
            f"{run.resume_from}: refused, a state file in the checkpoint holds objects other than tensors; remove "
            "the checkpoint to resume from an earlier one"
        ) from None
    except OSError as error:  # a full disk or a vanished folder while writing a checkpoint or the log
        ckpt.remove_partials(run.checkpoint_dir)
        last = ckpt.latest_checkpoint(run.checkpoint_dir)
        reason = "the disk is full" if error.errno == errno.ENOSPC else (error.strerror or str(error))
        where = f"the last complete checkpoint is {last}; --resume continues from it" if last else "no checkpoint yet"
        run.log.write({"event": "stopped", "step": trainer.state.global_step, "reason": reason})
        raise IsbertError(f"training stopped at step {trainer.state.global_step}: {reason} ({where})") from None
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------- result and finalize
def _result(run: Run, trainer: IsbertTrainer, parts: Callbacks, stats: CorpusStats, seconds: float) -> TrainResult:
    history = sorted(parts.selection.history, key=lambda h: h["step"])
    return TrainResult(
        output_dir=run.out,
        steps=trainer.state.global_step,
        seconds=seconds,
        sentences_per_second=parts.progress.sentences_per_second(trainer.state),  # evaluations excluded
        corpus=stats,
        best=parts.selection.best,
        start=next((h for h in history if h["step"] == 0), None),
        history=history,
        agreement=selection_agreement(history),
        interrupted=parts.control.interrupted,
        alternative=parts.selection.secondary_best,
        precision=run.precision,
        threads=current_plan().describe(),
    )


def _finalize(run: Run, trainer_model: Any, result: TrainResult) -> None:
    """Save the selected model into the run folder, then the summary, the last log records and the curves."""
    _save_final(run.config, trainer_model, result)
    if run.config.keep_checkpoints == 0:  # the selected model is in the run folder now: no checkpoint, no copy
        shutil.rmtree(run.checkpoint_dir, ignore_errors=True)
        if result.alternative:
            result.alternative = {**result.alternative, "path": None}
    summary = {k: v for k, v in asdict(result).items() if k not in ("output_dir", "corpus")}
    summary.update(
        output_dir=str(run.out),
        corpus=result.corpus.to_dict(),
        selection=run.select,
        no_improvement=bool(result.best and result.best["step"] == 0),
    )
    if summary["no_improvement"]:
        note = "no evaluation beat the starting model; the starting model is kept as the best"
        run.log.write({"event": "note", "step": result.steps, "note": note})
    if warning := result.degradation_warning():
        run.log.write({"event": "warning", "step": result.steps, "warning": warning})
    run.log.write(
        {
            "event": "done",
            "step": result.steps,
            "best": result.best,
            "sentences_per_second": result.sentences_per_second,
            "agreement": result.agreement,
        }
    )
    write_json_atomic(run.out / SUMMARY_FILE, summary)
    plot_curves(*run.plot)
    shutil.rmtree(run.out / CORPUS_CACHE, ignore_errors=True)
    shutil.rmtree(run.checkpoint_dir / "eval", ignore_errors=True)  # sentence-transformers' empty eval folder


def _save_final(config: TrainConfig, trainer_model: Any, result: TrainResult) -> None:
    """The selected model goes into the output folder itself (staged, then published entry by entry)."""
    out = Path(config.output)
    best_dir = RunFolder(out).best()
    model = load_torch(str(best_dir), device="cpu") if best_dir.is_dir() and result.best else trainer_model
    staged = fresh_dir(out / f"{ckpt.PARTIAL_PREFIX}final")  # a planted link is unlinked, never written through
    model.save(str(staged), create_model_card=False)  # the card is isbert's own, written next
    (staged / BEST_MARKER).unlink(missing_ok=True)
    write_model_card(staged, config, result)
    publish_entries(staged, out)  # a planted link at a name is replaced, never followed
    shutil.rmtree(staged, ignore_errors=True)
