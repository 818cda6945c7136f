"""What a training run produced: the result with its summary and warnings, how the two selection criteria
agreed, and the model card written beside the saved model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isbert.atomic import write_text_atomic
from isbert.corpus import CorpusStats
from isbert.errors import IsbertError
from isbert.modules import STOCK_CNN_MASKS_FROM, MaskedCNN
from isbert.objectives import objective
from isbert.training.config import TrainConfig


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
    selection_warning: str | None = None
    """Why the selection may not see harm (a tuned sentence encoder without a labeled dev set), or None."""
    precision: str = "fp32"
    """The arithmetic the training steps ran in (``--precision`` resolved on this machine: fp32, bf16 or fp16)."""
    threads: str = ""
    """The CPU thread plan the run used (:meth:`isbert.threads.ThreadPlan.describe`)."""
    verdict: str | None = None
    """The saved model against the start on STSb dev, in one sentence with its noise band (``--dev stsb``)."""
    training_free: str | None = None
    """The saved model against SIF on the same backbone, corpus and dev pairs (static backbones, ``--dev stsb``)."""

    def summary(self) -> str:
        lines = [self.corpus.summary()]
        lines.append(
            f"trained {self.steps} steps in {self.seconds:.0f}s "
            f"({self.sentences_per_second:.1f} sentences/s in training steps, evaluations excluded; "
            f"precision {self.precision}" + (f"; {self.threads}" if self.threads else "") + ")"
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
                lines.append(self._stsb_before_after(final["stsb_dev_spearman"]))
        if warning := self.degradation_warning():
            lines.append(warning)
        if self.selection_warning:
            lines.append(self.selection_warning)
        if self.agreement:
            lines.append(self.agreement["text"])
        lines.append(f"saved model: {self.output_dir}  (isbert.load({str(self.output_dir)!r}))")
        lines += [line for line in (self.training_free, self.verdict) if line]
        return "\n".join(lines)

    def _stsb_before_after(self, saved: float) -> str:
        start = (self.start or {}).get("stsb_dev_spearman")
        if start is None:
            return f"STSb dev Spearman of the saved model: {100 * saved:.2f}"
        return (
            f"STSb dev Spearman: {100 * start:.2f} at the start, {100 * saved:.2f} for the saved model "
            f"({100 * (saved - start):+.2f})"
        )

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


CARD_PATH = "PATH/TO/THIS/FOLDER"
"""Where the model card's loading examples put the model's folder."""


def _plain_loading(masked: bool) -> str:
    """How plain sentence-transformers loads the folder: isbert's MaskedCNN (ReLU, or special tokens excluded) needs
    ``trust_remote_code``; a head of sentence-transformers' own modules does not."""
    trust = ", trust_remote_code=True" if masked else ""
    why = (
        "with isbert installed: the CNN head is the class `isbert.modules.MaskedCNN`, and `trust_remote_code=True` "
        "lets sentence-transformers import that installed class (no code from this folder runs)"
        if masked
        else f"(version {STOCK_CNN_MASKS_FROM} or later, whose `CNN` keeps padding out of its windows): every module "
        "is sentence-transformers' own, so no isbert code is needed"
    )
    return f"""Or in plain sentence-transformers {why}.

```python
from sentence_transformers import SentenceTransformer
model = SentenceTransformer("{CARD_PATH}"{trust})
embeddings = model.encode(["A man is playing a guitar."])
```"""


def write_model_card(folder: Path, config: TrainConfig, result: TrainResult) -> None:
    """The saved model's ``README.md``."""
    masked = f"{MaskedCNN.__module__}.{MaskedCNN.__name__}" in (folder / "modules.json").read_text(encoding="utf-8")
    write_text_atomic(folder / "README.md", model_card(config, result, masked=masked))


def model_card(config: TrainConfig, result: TrainResult, *, masked: bool) -> str:
    """The model card of a run: its objective's title, text, paper and citation (from the objectives' registry),
    how to load it (``masked``: its head is isbert's MaskedCNN), its data, settings and selection."""
    trained = objective(config.objective)
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
    tags = ", ".join(("sentence-transformers", "isbert", "unsupervised", *trained.tags))
    return f"""---
tags: [{tags}]
library_name: sentence-transformers
---

# {trained.title} model trained with isbert

{trained.describe(config)}

```python
import isbert
model = isbert.load("{CARD_PATH}")
embeddings = model.encode(["A man is playing a guitar."])
```

{_plain_loading(masked)}

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
{trained.bibtex}
```
"""
