"""Model-selection evaluators: the label-free criterion (held-out alignment + uniformity, MI loss, zero
fraction) and labeled STSb dev Spearman, and the criteria that pick the saved model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

from isbert.errors import IsbertError
from isbert.evaluation.sts import cosine_rows, spearman
from isbert.losses import mutual_information_loss
from isbert.training.selection import LABEL_FREE_KEY, STSB_KEY


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
        self.similarities: dict[int, np.ndarray] = {}
        """Each evaluated step's cosine of every pair (1,500 floats a step), for the verdict of the run."""

    def pair_similarities(self, model: Any) -> np.ndarray:
        """The cosine of every dev pair under ``model`` (each distinct sentence encoded once)."""
        texts = list(dict.fromkeys(self.sentences1 + self.sentences2))
        vectors = model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        index = {text: i for i, text in enumerate(texts)}
        return cosine_rows(vectors[[index[s] for s in self.sentences1]], vectors[[index[s] for s in self.sentences2]])

    def __call__(self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> dict:
        try:  # the harness's score (x100); training logs and histories keep it on the 0-1 scale
            similarity = self.pair_similarities(model)
            score = spearman(similarity, self.scores) / 100
        except IsbertError:  # a collapsed model (constant or non-finite embeddings): logged, never selected
            return {STSB_KEY: float("nan")}
        if steps >= 0:
            self.similarities[steps] = similarity
        return {STSB_KEY: score}

    def verdict(self, step: int | None) -> str | None:
        """One sentence on the saved model (evaluated at ``step``) against the starting model on STSb dev, with a
        paired bootstrap over its pairs; None when either was not evaluated in this process (a resumed run)."""
        from isbert.evaluation.verdict import compare

        if step is None or 0 not in self.similarities or step not in self.similarities:
            return None
        if step == 0:
            return "verdict: no step beat the starting model on STSb dev; training did not help: use the start."
        saved, start = ({"STSb dev": (self.similarities[s], self.scores)} for s in (step, 0))
        outcome = compare(saved, start, (f"the saved model (step {step})", "the starting model"))
        return outcome.sentence() if outcome else None


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

    def __init__(
        self, evaluators: list[LabelFreeEvaluator | StsbDevEvaluator], primary: str, greater_is_better: bool
    ) -> None:
        super().__init__()
        self.evaluators = evaluators
        self.primary_metric = primary
        self.greater_is_better = greater_is_better

    def __call__(self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> dict:
        metrics: dict[str, float] = {}
        for evaluator in self.evaluators:
            metrics.update(evaluator(model, output_path, epoch, steps))
        return metrics
