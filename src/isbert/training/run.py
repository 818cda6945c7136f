"""``isbert.training.train``: one IS-BERT training run, from corpus files to a selected, saved model."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from isbert.errors import IsbertError
from isbert.glove import word_coverage
from isbert.training import checkpoints as ckpt
from isbert.training.corpus import (
    CorpusStats,
    build_corpus_dataset,
    corpus_fingerprint,
    default_heldout_size,
    split_heldout,
)
from isbert.training.plots import plot_curves

RUN_FILE = "training_run.json"
LOG_FILE = "training_log.jsonl"
PLOT_FILE = "training_curves.png"
SUMMARY_FILE = "training_summary.json"
CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"
CORPUS_CACHE = ".corpus-cache"

# Settings that change the training trajectory: a run can only be resumed with the same values.
_TRAJECTORY = (
    "model", "max_steps", "epochs", "batch_size", "lr", "weight_decay", "adam_epsilon", "warmup_ratio",
    "max_grad_norm", "max_seq_length", "seed", "activation", "estimator", "include_special_tokens", "out_channels",
    "text_field", "column", "encoding_errors", "dedup", "heldout_size", "precision", "objective", "critic",
    "temperature", "exclude_radius", "simcse_temperature", "anchor", "anchor_weight", "train_parts", "encoder_layers",
    "lr_scheduler",
)  # fmt: skip
TRAIN_PARTS = ("all", "head", "head+embeddings")
LR_SCHEDULERS = {"linear": "linear", "constant": "constant_with_warmup", "cosine": "cosine"}


@dataclass
class TrainConfig:
    """Settings of a training run. Defaults follow the released IS-BERT code unless noted (docs/training.md).

    Attributes:
        model: backbone (Hugging Face id, local folder, ``offline-minilm``, ``offline-glove``) or a saved isbert model
            to continue.
        corpus: text files, one sentence per line (``.txt``/``.txt.gz``), ``.jsonl`` or ``.csv``/``.tsv``.
        output: run folder; the selected model is saved in it, checkpoints in ``checkpoints/``.
        max_steps: stop after this many optimizer steps (overrides ``epochs``); None = ``epochs`` epochs.
        epochs: passes over the corpus (released code: 1).
        batch_size: sentences per step and device (released code: 32); the other sentences are the negatives.
        lr, adam_epsilon, weight_decay: AdamW (decay on all weights except biases and LayerNorm).
        warmup_ratio: linear warm-up over this fraction of the steps, then linear decay to 0.
        max_grad_norm: gradient clipping.
        activation: CNN activation: ``none`` (released code, default) or ``relu`` (the paper).
        objective: ``is`` (IS-BERT), ``simcse`` (unsupervised SimCSE on the encoder with mean pooling, no CNN) or
            ``is+simcse`` (both terms on the IS-BERT model); see :class:`isbert.losses.AnchoredObjective`.
        estimator: MI estimator: ``jsd`` (paper), ``infonce`` or ``dv``.
        critic, temperature: IS critic: ``dot`` (paper) or ``cosine`` divided by ``temperature``.
        exclude_radius: None (paper): a token's positive is its own sentence vector; r: the mean of the sentence's
            local features more than r positions away (see :func:`isbert.losses.mutual_information_loss`).
        simcse_temperature: temperature of the SimCSE term (0.05 in its paper).
        anchor, anchor_weight: keep the model near its start: ``distill`` (relational distillation toward the frozen
            starting model) or ``l2sp`` (squared distance to the initial weights), times ``anchor_weight``.
        train_parts: ``all``, ``head`` (the CNN only, encoder frozen) or ``head+embeddings`` (the CNN and the
            encoder's embedding layer; transformer layers frozen).
        encoder_layers: keep only the encoder's first N transformer layers (0 = static token embeddings); None = all.
        lr_scheduler: ``linear`` decay (released code), ``constant`` or ``cosine``, after the warm-up.
        dev: ``stsb`` evaluates labeled STS Benchmark dev (needs the data directory) or ``none``.
        select: ``stsb`` or ``label-free`` (held-out alignment+uniformity); None = ``stsb`` with ``dev="stsb"``.
        heldout_size: corpus sentences held out for the label-free criterion; None = 1% (16..1,000), 0 = off.
        eval_steps, save_steps: evaluate / checkpoint every N steps (and at step 0 / the last step).
        keep_checkpoints: complete checkpoints to keep (the best model is kept separately).
        precision: ``auto`` (fp32 on CPU, bf16/fp16 mixed precision on GPU), ``fp32``, ``bf16``, ``fp16``.
        resume: continue the run in ``output`` from its last complete checkpoint.
        overwrite: delete a previous run in ``output`` first.
    """

    model: str = "offline-minilm"
    corpus: list[str] = field(default_factory=list)
    output: str = "isbert-output"
    max_steps: int | None = None
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 2e-6
    weight_decay: float = 0.01
    adam_epsilon: float = 1e-7
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_seq_length: int = 128
    seed: int = 42
    activation: Literal["relu", "none"] = "none"
    objective: Literal["is", "simcse", "is+simcse"] = "is"
    estimator: Literal["jsd", "infonce", "dv"] = "jsd"
    critic: Literal["dot", "cosine"] = "dot"
    temperature: float = 1.0
    exclude_radius: int | None = None
    simcse_temperature: float = 0.05
    anchor: Literal["none", "distill", "l2sp"] = "none"
    anchor_weight: float = 0.0
    train_parts: Literal["all", "head", "head+embeddings"] = "all"
    encoder_layers: int | None = None
    lr_scheduler: Literal["linear", "constant", "cosine"] = "linear"
    include_special_tokens: bool = True
    out_channels: int = 256
    text_field: str = "text"
    column: str = "text"
    encoding_errors: Literal["strict", "replace", "skip"] = "strict"
    dedup: bool = False
    dev: Literal["none", "stsb"] = "none"
    data_dir: str | None = None
    select: Literal["stsb", "label-free"] | None = None
    heldout_size: int | None = None
    eval_steps: int = 250
    save_steps: int | None = None
    logging_steps: int = 10
    keep_checkpoints: int = 2
    eval_batch_size: int = 64
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: str | None = None
    resume: bool = False
    overwrite: bool = False
    show_progress: bool = True

    def trajectory(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _TRAJECTORY}


@dataclass
class TrainResult:
    """What a run produced. ``best`` is the selected evaluation (``{"step", "metric", "value"}``) or None."""

    output_dir: Path
    steps: int
    seconds: float
    sentences_per_second: float
    corpus: CorpusStats
    best: dict[str, Any] | None
    start: dict[str, Any] | None
    history: list[dict[str, Any]]
    agreement: dict[str, Any] | None
    interrupted: bool = False
    alternative: dict[str, Any] | None = None
    """The best model by the other criterion (``{"step", "metric", "value", "path"}``), saved at ``path``."""

    def summary(self) -> str:
        lines = [self.corpus.summary()]
        lines.append(
            f"trained {self.steps} steps in {self.seconds:.0f}s "
            f"({self.sentences_per_second:.1f} sentences/s in training steps, evaluations excluded)"
        )
        if self.best is not None:
            value = self.best["value"]
            shown = f"{100 * value:.2f}" if self.best["metric"].startswith("stsb") else f"{value:.4f}"
            where = (
                "the starting model (no evaluation beat it)" if self.best["step"] == 0 else f"step {self.best['step']}"
            )
            lines.append(f"selected {where} by {self.best['metric']} = {shown}")
            final = next((h for h in self.history if h["step"] == self.best["step"]), {})
            if "stsb_dev_spearman" in final:
                lines.append(f"STSb dev Spearman of the saved model: {100 * final['stsb_dev_spearman']:.2f}")
        if warning := self.degradation_warning():
            lines.append(warning)
        if self.agreement:
            lines.append(self.agreement["text"])
        lines.append(f"saved model: {self.output_dir}  (isbert.load({str(self.output_dir)!r}))")
        return "\n".join(lines)

    def degradation_warning(self, points: float = 1.0) -> str | None:
        """Warnings when training made things worse than at the start, one per line, or None:

        - STSb dev ended ``points`` x100 or more below the starting model's;
        - the label-free criterion (held-out alignment + uniformity, lower is better) ended 0.1 or more above its
          start;
        - the local features collapsed into sparse codes (90% or more exact zeros, from fewer at the start): the
          pattern of the paper's ReLU head that lowered every STS score in experiments/weak-backbone.toml.
        """
        warnings = []
        first, last = self._first_and_last("stsb_dev_spearman")
        if (
            first is not None
            and last is not None
            and 100 * (first["stsb_dev_spearman"] - last["stsb_dev_spearman"]) >= points
        ):
            warnings.append(
                f"warning: training lowered STSb dev from {100 * first['stsb_dev_spearman']:.2f} (start) to "
                f"{100 * last['stsb_dev_spearman']:.2f} (step {last['step']}); the objective is hurting this backbone "
                "(an already-tuned encoder?) - see README, Results"
            )
        first, last = self._first_and_last("heldout_align_uniform")
        if (
            first is not None
            and last is not None
            and last["heldout_align_uniform"] - first["heldout_align_uniform"] >= 0.1
        ):
            warnings.append(
                f"warning: the label-free criterion got worse, from {first['heldout_align_uniform']:.4f} (start) to "
                f"{last['heldout_align_uniform']:.4f} (step {last['step']}; lower is better)"
            )
        first, last = self._first_and_last("heldout_zero_fraction")
        if (
            first is not None
            and last is not None
            and first["heldout_zero_fraction"] < 0.9 <= last["heldout_zero_fraction"]
        ):
            warnings.append(
                f"warning: {100 * last['heldout_zero_fraction']:.0f}% of the local feature values are exactly zero "
                f"(start: {100 * first['heldout_zero_fraction']:.0f}%): the ReLU head is collapsing into sparse codes, "
                "which lowered STS in our experiments; try --activation none"
            )
        return "\n".join(warnings) or None

    def _first_and_last(self, metric: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        scored = [h for h in self.history if metric in h]
        if self.start is None or metric not in self.start or len(scored) < 2:
            return None, None
        return self.start, scored[-1]


class TrainingInterrupted(IsbertError):
    """Ctrl-C: a checkpoint was saved; the message says how to resume."""


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


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
        shutil.rmtree(out)
    elif has_files and config.resume:
        previous = json.loads(run_file.read_text(encoding="utf-8"))["trajectory"]
        changed = sorted(k for k in set(previous) | set(wanted) if previous.get(k) != wanted.get(k))
        if changed:
            raise IsbertError(
                f"{out} holds a different run (differs in: {', '.join(changed)}); resume with the same settings, "
                "or pass --overwrite to start over"
            )
        return
    elif has_files:
        raise IsbertError(
            f"{out} already holds a training run; pass --resume to continue it or --overwrite to start over"
        )
    out.mkdir(parents=True, exist_ok=True)
    record = {"config": asdict(config), "trajectory": wanted, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    partial = out / f".{RUN_FILE}.partial"
    partial.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(partial, run_file)


def build_model(config: TrainConfig) -> Any:
    """The model a run starts from: a fresh IS-BERT model (``objective`` ``is``/``is+simcse``) or the encoder with
    mean pooling (``simcse``); a saved isbert model is continued as it is. Seed torch first for a reproducible head.
    """
    import isbert

    path = isbert.resolve_model_name(config.model)
    if config.objective == "simcse":
        return build_baseline(config, "mean")
    if os.path.isfile(os.path.join(path, "modules.json")) and "MaskedCNN" in Path(path, "modules.json").read_text():
        model = isbert.load(path, device=config.device)
        model.max_seq_length = config.max_seq_length
        if config.encoder_layers is not None:
            isbert.model.truncate_encoder(model[0], config.encoder_layers)
        return model
    return isbert.build(
        config.model,
        out_channels=config.out_channels,
        activation=config.activation,
        include_special_tokens=config.include_special_tokens,
        max_seq_length=config.max_seq_length,
        encoder_layers=config.encoder_layers,
        device=config.device,
    )


def build_baseline(config: TrainConfig, pooling: str) -> Any:
    """A training-free baseline: the (possibly truncated) encoder of ``config.model`` with ``pooling``
    (``mean``, ``cls`` or ``first-last-mean``) and no head."""
    import isbert
    from isbert.evaluation.baselines import pooled_encoder

    model = pooled_encoder(isbert.resolve_model_name(config.model), pooling, device=config.device)
    model.max_seq_length = config.max_seq_length
    if hasattr(model[0], "emb_layer"):
        # sentence-transformers loads a word-vector table frozen; train_parts decides what trains (SimCSE here).
        model[0].emb_layer.weight.requires_grad_(True)
    if config.encoder_layers is not None:
        isbert.model.truncate_encoder(model[0], config.encoder_layers)
    return model


def freeze_parts(model: Any, parts: str) -> list[str]:
    """Freeze what ``train_parts`` leaves out: the encoder (``head``) or its transformer layers
    (``head+embeddings``). Returns the frozen parameter names."""
    if parts == "all":
        return []
    encoder = model[0]
    frozen = []
    # A word-vector encoder is all embeddings: head+embeddings trains it whole.
    whole_embeddings = type(encoder).__name__ == "WordEmbeddings"
    for name, parameter in encoder.named_parameters():
        if parts == "head" or (".embeddings." not in f".{name}" and not whole_embeddings):
            parameter.requires_grad_(False)
            frozen.append(f"0.{name}")
    if not any(p.requires_grad for p in model.parameters()):
        raise IsbertError(f"--train-parts {parts} leaves nothing to train in this model (no head after the encoder)")
    return frozen


def freeze_unused_parameters(model: Any, loss: Any) -> list[str]:
    """Freeze parameters that get no gradient from the IS-BERT loss (e.g. BERT's pooler), so DDP does not fail.

    Found with one forward/backward pass on two fixed sentences, in a forked RNG so training's randomness is intact.
    """
    import torch

    texts = ["a probe sentence .", "another probe sentence here ."]
    features = model.preprocess(texts)
    features = {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
    devices = [model.device.index] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        loss([features], None).backward()
    frozen = []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad and parameter.grad is None:
            parameter.requires_grad_(False)
            frozen.append(name)
        parameter.grad = None
    return frozen


def _precision_flags(precision: str, use_cuda: bool) -> dict[str, bool]:
    import torch

    if precision == "auto":
        if not use_cuda:
            return {}
        return {"bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True}
    if precision == "fp16" and not use_cuda:
        raise IsbertError("--precision fp16 needs a GPU; on CPU use bf16 or fp32")
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def _agreement(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How the label-free choice compares with the labeled STSb dev choice over the same evaluations."""
    rows = [h for h in history if "stsb_dev_spearman" in h and "heldout_align_uniform" in h]
    if len(rows) < 2:
        return None
    from scipy.stats import spearmanr

    labeled = max(rows, key=lambda h: h["stsb_dev_spearman"])
    free = min(rows, key=lambda h: h["heldout_align_uniform"])
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


def _write_model_card(folder: Path, config: TrainConfig, result: TrainResult) -> None:
    rows = "\n".join(f"| `{k}` | `{v}` |" for k, v in config.trajectory().items())
    history = "\n".join(
        f"| {h['step']} | "
        + (f"{100 * h['stsb_dev_spearman']:.2f}" if "stsb_dev_spearman" in h else "-")
        + " | "
        + (f"{h['heldout_align_uniform']:.4f}" if "heldout_align_uniform" in h else "-")
        + " |"
        for h in result.history
    )
    files = "\n".join(
        f"- `{f['path']}`: {f['used']} sentences used of {f['lines']} lines"
        + (f" (skipped: {', '.join(f'{n} {r}' for r, n in f['skipped'].items())})" if f["skipped"] else "")
        for f in result.corpus.files
    )
    best = result.best
    if best is None:
        selected = "nothing was evaluated; the last step is kept"
    else:
        selected = f"step {best['step']} by `{best['metric']}` = {best['value']:.4f}"
        if best["step"] == 0:
            selected += " (the starting model: no evaluation beat it)"
    card = f"""---
tags: [sentence-transformers, isbert, unsupervised, mutual-information]
library_name: sentence-transformers
---

# IS-BERT model trained with isbert

IS-BERT (Zhang et al., EMNLP 2020, arXiv:2009.12061): a `{config.model}` encoder, a masked multi-window CNN
(activation `{config.activation}`) and mean pooling, trained without labels by maximizing the `{config.estimator}`
mutual-information estimate between each sentence vector and its local n-gram features.

```python
import isbert
model = isbert.load("PATH/TO/THIS/FOLDER")
embeddings = model.encode(["A man is playing a guitar."])
```

## Training data

{files}

{result.corpus.heldout} sentences were held out (never trained on) for the label-free criterion.

## Hyper-parameters

| setting | value |
|---|---|
{rows}

## Model selection

Selected: {selected}
| step | STSb dev Spearman x100 (labeled) | held-out alignment+uniformity (label-free, lower = better) |
|---|---|---|
{history}

{result.agreement["text"] if result.agreement else ""}

Trained {result.steps} steps, {result.sentences_per_second:.1f} sentences/s.

## Citation

```bibtex
@inproceedings{{zhang-etal-2020-unsupervised,
    title = "An Unsupervised Sentence Embedding Method by Mutual Information Maximization",
    author = "Zhang, Yan and He, Ruidan and Liu, Zuozhu and Lim, Kwan Hui and Bing, Lidong",
    booktitle = "Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing (EMNLP)",
    year = "2020",
}}
```
"""
    (folder / "README.md").write_text(card, encoding="utf-8")


def _save_final(config: TrainConfig, trainer_model: Any, result: TrainResult) -> None:
    """The selected model goes into the output folder itself (staged, then moved in file by file)."""
    import isbert

    out = Path(config.output)
    best_dir = out / CHECKPOINT_DIR / BEST_DIR
    model = isbert.load(str(best_dir), device="cpu") if best_dir.is_dir() and result.best else trainer_model
    staged = out / f"{ckpt.PARTIAL_PREFIX}final"
    shutil.rmtree(staged, ignore_errors=True)
    model.save(str(staged))
    (staged / "isbert_best.json").unlink(missing_ok=True)
    _write_model_card(staged, config, result)
    ckpt.fsync_tree(staged)
    for child in staged.iterdir():
        target = out / child.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(child, target)
    shutil.rmtree(staged, ignore_errors=True)


def train(config: TrainConfig | None = None, *, callbacks: list[Any] | None = None, **overrides: Any) -> TrainResult:
    """Train an IS-BERT model: ``train(TrainConfig(...))`` or ``train(model=..., corpus=[...], output=...)``.

    Streams the corpus into Arrow, holds out a slice for the label-free criterion, trains with sentence-transformers'
    trainer (DDP under ``torchrun``), evaluates at step 0, every ``eval_steps`` and at the end, keeps the best model
    and saves it into ``output``. Extra Hugging Face ``TrainerCallback`` objects can be passed in ``callbacks``.

    Raises:
        IsbertError: bad input or settings, a NaN/inf loss (after which the last checkpoint stays loadable).
        TrainingInterrupted: Ctrl-C, after saving a checkpoint (resume with ``resume=True``).
    """
    config = config or TrainConfig()
    if overrides:
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown training settings: {', '.join(unknown)}")
        config = TrainConfig(**{**asdict(config), **overrides})
    config.corpus = [str(p) for p in config.corpus]
    _validate(config)
    select = config.select or ("stsb" if config.dev == "stsb" else "label-free")
    if select == "stsb" and config.dev != "stsb":
        raise IsbertError("--select stsb needs --dev stsb")

    import torch
    from accelerate import PartialState

    from isbert.losses import AnchoredObjective
    from isbert.training.trainer import (
        CRITERIA,
        CombinedEvaluator,
        ControlCallback,
        EpochSeededBatchSampler,
        IsbertTrainer,
        LabelFreeEvaluator,
        LogCallback,
        NonFiniteLoss,
        ProgressCallback,
        RunLog,
        SelectionCallback,
        load_stsb_dev,
    )

    fingerprint = corpus_fingerprint(config.corpus)
    dev_evaluator = load_stsb_dev(config.data_dir) if config.dev == "stsb" else None  # fail early on missing data
    state = PartialState(cpu=config.device == "cpu")
    main = state.is_main_process
    if main:
        prepare_output(config, fingerprint)
    state.wait_for_everyone()

    out = Path(config.output)
    checkpoint_dir = out / CHECKPOINT_DIR
    resume_from = ckpt.latest_checkpoint(checkpoint_dir) if config.resume else None
    if main:
        ckpt.remove_partials(checkpoint_dir)
    log = RunLog(out / LOG_FILE, enabled=main)

    dataset, stats = build_corpus_dataset(
        config.corpus,
        out / CORPUS_CACHE / f"rank-{state.process_index}",
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
    if config.batch_size < 2:
        raise IsbertError("--batch-size must be at least 2: the other sentences of a batch are the negatives")

    evaluators = []
    if dev_evaluator is not None:
        dev_evaluator.batch_size = config.eval_batch_size
        evaluators.append(dev_evaluator)
    if heldout is not None and len(heldout) >= 2:
        evaluators.append(
            LabelFreeEvaluator(
                list(heldout["text"]),
                seed=config.seed,
                batch_size=config.eval_batch_size,
                estimator=config.estimator,
                critic=config.critic,
                temperature=config.temperature,
                exclude_radius=config.exclude_radius,
                mi=config.objective != "simcse",  # a mean-pooled encoder has no local features to score
            )
        )
    elif select == "label-free" and config.select == "label-free":
        raise IsbertError("--select label-free needs held-out sentences (--heldout-size of at least 2)")
    metric, greater = CRITERIA[select]
    evaluator = CombinedEvaluator(evaluators, metric, greater) if evaluators else None

    # The CNN's initial weights; also on resume, where the anchor needs the very same starting model again.
    torch.manual_seed(config.seed)
    model = build_model(config)
    # We write our own model card; sentence-transformers' widget sampling would print a bar and draw from `random`.
    model.model_card_data.set_widget_examples = lambda dataset: None
    # A word-vector backbone drops unknown words: say how many, instead of training on silently shortened sentences.
    coverage = word_coverage(model, dataset["text"])
    stats.word_coverage = coverage.as_dict() if coverage else None
    frozen = freeze_parts(model, config.train_parts)
    loss = AnchoredObjective(
        model,
        config.objective,
        estimator=config.estimator,
        critic=config.critic,
        temperature=config.temperature,
        exclude_radius=config.exclude_radius,
        simcse_temperature=config.simcse_temperature,
        anchor=config.anchor,
        anchor_weight=config.anchor_weight,
    )
    frozen += freeze_unused_parameters(model, loss)

    from sentence_transformers.sentence_transformer import SentenceTransformerTrainingArguments

    use_cuda = torch.cuda.is_available() and config.device != "cpu"
    save_steps = config.save_steps or config.eval_steps
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=config.batch_size,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps else -1,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        adam_epsilon=config.adam_epsilon,
        optim="adamw_torch",
        lr_scheduler_type=LR_SCHEDULERS[config.lr_scheduler],
        warmup_steps=config.warmup_ratio,
        max_grad_norm=config.max_grad_norm,
        logging_steps=config.logging_steps,
        logging_nan_inf_filter=False,
        eval_strategy="steps" if evaluator else "no",
        eval_steps=config.eval_steps,
        eval_on_start=evaluator is not None and resume_from is None,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=None,
        seed=config.seed,
        dataloader_drop_last=True,
        batch_sampler=EpochSeededBatchSampler,
        report_to="none",
        disable_tqdm=True,
        use_cpu=config.device == "cpu",
        dataloader_pin_memory=use_cuda,
        ddp_find_unused_parameters=False,
        **_precision_flags(config.precision, use_cuda),
    )
    plot = (out / LOG_FILE, out / PLOT_FILE)
    other = "label-free" if select == "stsb" else "stsb"
    selection = SelectionCallback(
        select, checkpoint_dir / BEST_DIR, log, plot if main else None, secondary=other,
        secondary_dir=checkpoint_dir / f"{BEST_DIR}-{other}",
    )  # fmt: skip
    control = ControlCallback(evaluate=evaluator is not None)
    world = max(1, args.world_size)
    progress = ProgressCallback(config.batch_size * world, enabled=config.show_progress)
    trainer = IsbertTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        loss=loss,
        evaluator=evaluator,
        callbacks=[LogCallback(log), selection, control, progress, *(callbacks or [])],
        keep_last=config.keep_checkpoints,
        selection=selection,
    )
    import transformers
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_callback import ProgressCallback as HFProgress

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(HFProgress)
    trainer.remove_callback(trainer.model_card_callback_class)  # isbert writes its own model card
    transformers.utils.logging.disable_progress_bar()  # no per-save "Writing model shards" bars

    if resume_from is not None:
        marker = ckpt.read_marker(resume_from)
        selection.load_state_dict(marker.get("selection"))
        log.truncate_after(marker["step"])
        log.write({"event": "resume", "step": marker["step"], "checkpoint": str(resume_from)})
    else:
        if config.resume and main:
            log.write({"event": "resume", "step": 0, "checkpoint": None, "note": "no complete checkpoint; fresh start"})
        log.write(
            {
                "event": "start",
                "step": 0,
                "config": asdict(config),
                "corpus": stats.to_dict(),
                "frozen_parameters": frozen,
                "world_size": world,
                "selection": select,
            }
        )

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
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except NonFiniteLoss as error:
        last = ckpt.latest_checkpoint(checkpoint_dir)
        log.write({"event": "stopped", "step": error.step, "reason": str(error)})
        if main:
            plot_curves(*plot)
        where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        raise IsbertError(
            f"{error}; training stopped ({where}; it loads with isbert.load). Try a lower --lr or --precision fp32"
        ) from None
    except pickle.UnpicklingError:  # a checkpoint's optimizer or RNG file holds more than tensors: not loaded
        raise IsbertError(
            f"{resume_from}: refused, a state file in the checkpoint holds objects other than tensors; remove the "
            "checkpoint to resume from an earlier one"
        ) from None
    except OSError as error:  # a full disk or a vanished folder while writing a checkpoint or the log
        ckpt.remove_partials(checkpoint_dir)
        last = ckpt.latest_checkpoint(checkpoint_dir)
        reason = "the disk is full" if error.errno == errno.ENOSPC else (error.strerror or str(error))
        where = f"the last complete checkpoint is {last}; --resume continues from it" if last else "no checkpoint yet"
        log.write({"event": "stopped", "step": trainer.state.global_step, "reason": reason})
        raise IsbertError(f"training stopped at step {trainer.state.global_step}: {reason} ({where})") from None
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
    seconds = time.perf_counter() - started
    steps = trainer.state.global_step
    speed = progress.sentences_per_second(trainer.state)  # training steps only, evaluations excluded
    history = sorted(selection.history, key=lambda h: h["step"])
    result = TrainResult(
        output_dir=out,
        steps=steps,
        seconds=seconds,
        sentences_per_second=speed,
        corpus=stats,
        best=selection.best,
        start=next((h for h in history if h["step"] == 0), None),
        history=history,
        agreement=_agreement(history),
        interrupted=control.interrupted,
        alternative=selection.secondary_best,
    )
    if control.interrupted:
        log.write({"event": "interrupted", "step": steps})
        if main:
            plot_curves(*plot)
        raise TrainingInterrupted(
            f"interrupted at step {steps}; checkpoint saved in {checkpoint_dir}. Continue with the same command "
            "plus --resume"
        )
    if main:
        _save_final(config, trainer.model, result)
        summary = {k: v for k, v in asdict(result).items() if k not in ("output_dir", "corpus")}
        summary.update(
            output_dir=str(out),
            corpus=stats.to_dict(),
            selection=select,
            no_improvement=bool(result.best and result.best["step"] == 0),
        )
        if summary["no_improvement"]:
            log.write(
                {
                    "event": "note",
                    "step": steps,
                    "note": "no evaluation beat the starting model; the starting model is kept as the best",
                }
            )
        if warning := result.degradation_warning():
            log.write({"event": "warning", "step": steps, "warning": warning})
        log.write(
            {
                "event": "done",
                "step": steps,
                "best": result.best,
                "sentences_per_second": speed,
                "agreement": result.agreement,
            }
        )
        (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, default=float), encoding="utf-8")
        plot_curves(*plot)
        shutil.rmtree(out / CORPUS_CACHE, ignore_errors=True)
        shutil.rmtree(checkpoint_dir / "eval", ignore_errors=True)  # sentence-transformers' empty eval folder
    state.wait_for_everyone()
    return result


def _validate(config: TrainConfig) -> None:
    from isbert.losses import ANCHORS, CRITICS, ESTIMATORS, OBJECTIVES
    from isbert.modules import ACTIVATIONS

    if not config.corpus:
        raise IsbertError("no corpus files given (--corpus FILE ...)")
    checks = [
        (config.batch_size >= 2, "--batch-size must be at least 2: the other sentences of a batch are the negatives"),
        (config.max_steps is None or config.max_steps >= 1, "--max-steps must be at least 1"),
        (config.epochs > 0, "--epochs must be positive"),
        (config.lr > 0, "--lr must be positive"),
        (0 <= config.warmup_ratio < 1, "--warmup-ratio must be in [0, 1)"),
        (config.eval_steps >= 1, "--eval-steps must be at least 1"),
        (config.save_steps is None or config.save_steps >= 1, "--save-steps must be at least 1"),
        (config.keep_checkpoints >= 1, "--keep-checkpoints must be at least 1"),
        (config.heldout_size is None or config.heldout_size >= 0, "--heldout-size must not be negative"),
        (config.activation in ACTIVATIONS, f"--activation must be one of {', '.join(ACTIVATIONS)}"),
        (config.estimator in ESTIMATORS, f"--estimator must be one of {', '.join(ESTIMATORS)}"),
        (config.objective in OBJECTIVES, f"--objective must be one of {', '.join(OBJECTIVES)}"),
        (config.critic in CRITICS, f"--critic must be one of {', '.join(CRITICS)}"),
        (config.temperature > 0 and config.simcse_temperature > 0, "temperatures must be positive"),
        (config.anchor in ANCHORS, f"--anchor must be one of {', '.join(ANCHORS)}"),
        (config.anchor_weight >= 0, "--anchor-weight must not be negative"),
        (config.train_parts in TRAIN_PARTS, f"--train-parts must be one of {', '.join(TRAIN_PARTS)}"),
        (config.encoder_layers is None or config.encoder_layers >= 0, "--encoder-layers must not be negative"),
        (config.exclude_radius is None or config.exclude_radius >= 0, "--exclude-radius must not be negative"),
        (config.lr_scheduler in LR_SCHEDULERS, f"--lr-scheduler must be one of {', '.join(LR_SCHEDULERS)}"),
        (config.objective != "simcse" or config.train_parts != "head", "--objective simcse has no head to train"),
        (config.dev in ("none", "stsb"), "--dev must be none or stsb"),
    ]
    for ok, message in checks:
        if not ok:
            raise IsbertError(message)
