"""A verdict in words for ``isbert eval --compare``: is one model's STS average beyond the noise of the pairs?

The noise band is a paired bootstrap over the scored pairs (Efron and Tibshirani, 1993; for correlation metrics as in
Koehn, 2004): each resample draws every task's pairs with replacement, scores *both* models on the same draw, and
records the difference of their average Spearman x100 over the tasks. The difference is beyond noise when the central
95% of the resampled differences excludes zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from isbert.evaluation.sts import spearman

Scored = dict[str, tuple[np.ndarray, np.ndarray]]
"""Per STS-protocol task: the model's cosine similarity of each pair, and the gold score (pooled sub-datasets)."""

RESAMPLES = 300
"""The 2.5% and 97.5% quantiles rest on the 7-8 most extreme resamples each: enough to tell noise from a gain; about
45 ms a resample on the 7 STS tasks on 2 busy CPU cores."""
LEVEL = 0.95


@dataclass(frozen=True)
class Verdict:
    """The difference ``ours - theirs`` of the STS average and its bootstrap interval."""

    ours: str
    theirs: str
    tasks: tuple[str, ...]
    delta: float
    low: float
    high: float

    @property
    def beyond_noise(self) -> bool:
        return self.low > 0 or self.high < 0

    def sentence(self) -> str:
        band = f"{LEVEL:.0%} bootstrap interval over the pairs of {len(self.tasks)} task(s): {self.low:+.2f} to "
        band += f"{self.high:+.2f}"
        if not self.beyond_noise:
            return (
                f"verdict: {self.ours} and {self.theirs} differ by {self.delta:+.2f} STS points ({band}, which "
                f"includes 0): within noise; neither is shown better here, so keep the one that is cheaper to run."
            )
        better, worse = (self.ours, self.theirs) if self.delta > 0 else (self.theirs, self.ours)
        return (
            f"verdict: {better} beats {worse} by {abs(self.delta):.2f} STS points ({band}): beyond noise; use {better}."
        )


def _spearman_rows(predicted: np.ndarray, gold_ranks: np.ndarray) -> np.ndarray:
    """Spearman x100 of each row of ``predicted`` against the matching row of ``gold_ranks`` (already ranked)."""
    ranks = rankdata(predicted, axis=1)
    ranks -= ranks.mean(axis=1, keepdims=True)
    gold = gold_ranks - gold_ranks.mean(axis=1, keepdims=True)
    denominator = np.sqrt((ranks**2).sum(axis=1) * (gold**2).sum(axis=1))
    return 100.0 * np.divide((ranks * gold).sum(axis=1), denominator, out=np.zeros(len(ranks)), where=denominator > 0)


def compare(
    ours: Scored, theirs: Scored, names: tuple[str, str], resamples: int = RESAMPLES, seed: int = 0, chunk: int = 50
) -> Verdict | None:
    """The paired bootstrap of the average Spearman difference over the tasks both models were scored on (None when
    there is none). Resampled in chunks, so memory stays at ``chunk`` x the largest task."""
    tasks = tuple(task for task in ours if task in theirs and np.array_equal(ours[task][1], theirs[task][1]))
    if not tasks:
        return None
    rng = np.random.default_rng(seed)
    deltas = np.zeros(resamples)
    for task in tasks:
        (a, gold), (b, _) = ours[task], theirs[task]
        for start in range(0, resamples, chunk):
            draw = rng.integers(0, len(gold), size=(min(chunk, resamples - start), len(gold)))
            gold_ranks = rankdata(gold[draw], axis=1)
            deltas[start : start + len(draw)] += _spearman_rows(a[draw], gold_ranks) - _spearman_rows(
                b[draw], gold_ranks
            )
    deltas /= len(tasks)
    low, high = np.quantile(deltas, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Verdict(names[0], names[1], tasks, _average(ours, tasks) - _average(theirs, tasks), float(low), float(high))


def _average(scored: Scored, tasks: tuple[str, ...]) -> float:
    """The STS average as ``isbert eval`` reports it (each task's Spearman x100 over all its pairs)."""
    return float(np.mean([spearman(*scored[task]) for task in tasks]))


__all__ = ["LEVEL", "RESAMPLES", "Scored", "Verdict", "compare"]
