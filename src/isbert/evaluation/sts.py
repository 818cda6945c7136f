"""STS scoring, the paper's Table 1 protocol: cosine of the two embeddings, Spearman x100, no regressor.

For STS12-16 SentEval and SimCSE disagree on the aggregation, so all are reported: ``all`` (Spearman of
the pooled sub-datasets, the number the paper and SimCSE print), ``mean`` and size-weighted ``wmean``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import numpy as np
from scipy.stats import pearsonr, spearmanr

from isbert.errors import IsbertError
from isbert.evaluation.tasks import StsTask


def check_finite(embeddings: np.ndarray, what: str = "embeddings") -> None:
    """Raise on NaN/inf embeddings: they would silently turn every correlation into NaN."""
    finite = np.isfinite(embeddings)
    if not finite.all():
        rows = int((~finite.reshape(len(embeddings), -1).all(axis=1)).sum()) if embeddings.ndim > 1 else -1
        raise IsbertError(f"the model produced non-finite {what} ({rows} of {len(embeddings)} rows contain NaN/inf)")


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity; an all-zero embedding gets similarity 0 instead of a division by zero."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    check_finite(a)
    check_finite(b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.einsum("ij,ij->i", a, b)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def spearman(predicted: np.ndarray, gold: np.ndarray) -> float:
    """Spearman correlation x100; an error (not NaN) when it is undefined."""
    predicted, gold = np.asarray(predicted, dtype=np.float64), np.asarray(gold, dtype=np.float64)
    if len(predicted) != len(gold) or len(gold) < 2:
        raise IsbertError(f"cannot correlate {len(predicted)} predictions with {len(gold)} gold scores")
    with warnings.catch_warnings():  # a constant input is reported below as an error, not a warning + NaN
        warnings.simplefilter("ignore")
        value = float(spearmanr(predicted, gold).statistic)
    if not np.isfinite(value):
        raise IsbertError("Spearman correlation is undefined (constant predictions or gold scores)")
    return 100.0 * value


def pearson(predicted: np.ndarray, gold: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(pearsonr(np.asarray(predicted, np.float64), np.asarray(gold, np.float64)).statistic)
    return 100.0 * value if np.isfinite(value) else float("nan")


def aggregate(subsets: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, object]:
    """Scores of several sub-datasets given ``{name: (predicted, gold)}``.

    Returns ``spearman`` (= ``all``: pooled over the concatenation), ``mean``, ``wmean`` (weighted by pair
    count), ``pearson`` (pooled), ``n`` and ``subsets`` (``{name: {"spearman", "pearson", "n"}}``).
    """
    if not subsets:
        raise IsbertError("no sub-dataset to score")
    per: dict[str, dict[str, float | int]] = {}
    for name, (predicted, gold) in subsets.items():
        per[name] = {
            "spearman": spearman(predicted, gold),
            "pearson": pearson(predicted, gold),
            "n": len(gold),
        }
    pooled_pred = np.concatenate([np.asarray(p, np.float64) for p, _ in subsets.values()])
    pooled_gold = np.concatenate([np.asarray(g, np.float64) for _, g in subsets.values()])
    scores = np.array([v["spearman"] for v in per.values()])
    sizes = np.array([v["n"] for v in per.values()], dtype=np.float64)
    pooled = spearman(pooled_pred, pooled_gold)
    return {
        "spearman": pooled,
        "all": pooled,
        "mean": float(scores.mean()),
        "wmean": float((scores * sizes).sum() / sizes.sum()),
        "pearson": pearson(pooled_pred, pooled_gold),
        "n": len(pooled_gold),
        "subsets": per,
    }


def evaluate_sts(
    task: StsTask,
    embed: Callable[[list[str]], np.ndarray],
    record: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> dict[str, object]:
    """Score one STS task; ``embed`` maps sentences to embedding rows (already computed, de-duplicated); ``record``
    receives the pooled similarities and gold scores (for a paired comparison, :mod:`isbert.evaluation.verdict`)."""
    parts = {}
    for name, subset in task.subsets.items():
        similarity = cosine_rows(embed(subset.sentences1), embed(subset.sentences2))
        parts[name] = (similarity, subset.scores)
    if record is not None:
        record(*(np.concatenate([np.asarray(part[i], np.float64) for part in parts.values()]) for i in (0, 1)))
    result = aggregate(parts)
    if len(task.subsets) == 1:  # STSb, SICK-R: a single test file, no sub-dataset breakdown
        result.pop("subsets")
        for key in ("all", "mean", "wmean"):
            result.pop(key)
    return result
