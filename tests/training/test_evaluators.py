"""The trainer's STSb dev evaluator scores exactly as the evaluation harness (one STS scoring function)."""

from __future__ import annotations

import numpy as np
import pytest

from isbert.evaluation.sts import evaluate_sts
from isbert.evaluation.tasks import StsSubset, StsTask
from isbert.training.selection.evaluators import STSB_KEY, StsbDevEvaluator


class FixedEncoder:
    """Each text's embedding is drawn once from a seeded generator (repeated texts share theirs)."""

    def __init__(self, texts: list[str], dim: int = 8) -> None:
        rng = np.random.default_rng(0)
        self.table = {text: rng.normal(size=dim).astype(np.float32) for text in dict.fromkeys(texts)}

    def encode(self, sentences: list[str], **kwargs: object) -> np.ndarray:
        return np.stack([self.table[text] for text in sentences])


def test_dev_evaluator_equals_harness_scoring() -> None:
    rng = np.random.default_rng(1)
    s1 = [f"left {i}" for i in range(40)]
    s2 = [f"right {i % 25}" for i in range(40)]  # repeated sentences, as in STSb
    scores = rng.uniform(0, 5, size=40)
    model = FixedEncoder(s1 + s2)
    dev = StsbDevEvaluator(s1, s2, scores)(model)
    task = StsTask("STSBenchmark", {"STSBenchmark": StsSubset(s1, s2, scores)})
    harness = evaluate_sts(task, model.encode)
    assert set(dev) == {STSB_KEY}
    assert dev[STSB_KEY] == pytest.approx(harness["spearman"] / 100, abs=1e-12)


def test_a_collapsed_model_is_logged_as_nan_and_never_selected() -> None:
    """Constant predictions have no Spearman: the harness refuses them; training logs NaN and keeps going."""
    import math

    from isbert.training.selection import SelectionCallback

    s1, s2 = ["a", "b", "c"], ["d", "e", "f"]

    class Constant:
        def encode(self, sentences: list[str], **kwargs: object) -> np.ndarray:
            return np.ones((len(sentences), 4), dtype=np.float32)

    value = StsbDevEvaluator(s1, s2, np.array([1.0, 2.0, 3.0]))(Constant())[STSB_KEY]
    assert math.isnan(value)
    assert not SelectionCallback._better("stsb", value, None)


class NoisyGold:
    """Embeddings whose pair cosine follows the gold score more closely as ``noise`` shrinks (2-D, angle = score)."""

    def __init__(self, s1: list[str], s2: list[str], scores: np.ndarray, noise: float) -> None:
        rng = np.random.default_rng(3)
        angles = (5 - scores) / 5 * np.pi / 2 + noise * rng.normal(size=len(scores))
        self.table = {a: np.array([1.0, 0.0]) for a in s1}
        self.table |= {b: np.array([np.cos(t), np.sin(t)]) for b, t in zip(s2, angles, strict=True)}

    def encode(self, sentences: list[str], **kwargs: object) -> np.ndarray:
        return np.stack([self.table[text] for text in sentences]).astype(np.float32)


def test_the_verdict_compares_the_saved_step_with_the_start_on_the_same_pairs() -> None:
    rng = np.random.default_rng(2)
    s1, s2 = [f"l{i}" for i in range(300)], [f"r{i}" for i in range(300)]
    scores = rng.uniform(0, 5, size=300)
    dev = StsbDevEvaluator(s1, s2, scores)
    start = dev(NoisyGold(s1, s2, scores, noise=1.5), steps=0)[STSB_KEY]
    trained = dev(NoisyGold(s1, s2, scores, noise=0.2), steps=200)[STSB_KEY]
    assert sorted(dev.similarities) == [0, 200] and trained > start
    sentence = dev.verdict(200)
    assert sentence is not None
    assert sentence.startswith(
        f"verdict: the saved model (step 200) beats the starting model by {100 * (trained - start):.2f}"
    )
    assert sentence.endswith("beyond noise; use the saved model (step 200).")
    assert (
        dev.verdict(0) == "verdict: no step beat the starting model on STSb dev; training did not help: use the start."
    )
    assert dev.verdict(100) is None and dev.verdict(None) is None  # not evaluated here (a resumed run)
    dev(NoisyGold(s1, s2, scores, noise=1.5), steps=300)  # the same model again: within noise
    assert "within noise" in (dev.verdict(300) or "")
