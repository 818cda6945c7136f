"""A finished run on a static backbone names the training-free SIF baseline of its own corpus beside its verdict."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from isbert import sif
from isbert.evaluation.sts import spearman
from isbert.sif_model import fit_baseline
from isbert.training.config import TrainConfig
from isbert.training.selection.evaluators import StsbDevEvaluator
from isbert.training.training_free import training_free_line

WORDS = "the a man woman dog cat plays runs eats guitar food park street sleeps quickly red small".split()


def sentences(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) for _ in range(n)]


def test_a_glove_run_is_compared_with_sif_fitted_on_its_own_corpus(tmp_path: Path) -> None:
    rng = random.Random(0)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(sentences(rng, 400)) + "\n", encoding="utf-8")
    s1, s2 = sentences(rng, 80), sentences(rng, 80)
    dev = StsbDevEvaluator(s1, s2, np.array([rng.uniform(0, 5) for _ in range(80)]))
    config = TrainConfig(model="offline-glove", corpus=[str(corpus)], output=str(tmp_path / "run"))
    reference = fit_baseline("offline-glove", [str(corpus)], sif.SifSettings("sif", probabilities="zipf")).model
    dev(reference, steps=100)  # the "saved model" here is SIF itself: within noise of the baseline
    line = training_free_line(config, dev, 100)
    expected = spearman(dev.pair_similarities(reference), dev.scores)
    assert line is not None and line.startswith(
        f"training-free baseline: SIF on this backbone and corpus (isbert baseline sif offline-glove --probabilities "
        f"zipf -i {corpus} -o FOLDER) scores {expected:.2f} on STSb dev; the saved model and SIF differ by +0.00"
    )
    assert "within noise" in line
    assert training_free_line(config, dev, 200) is None  # that step was not evaluated in this process


def test_a_backbone_with_context_has_no_sif_line(tiny_backbone: Path, tmp_path: Path) -> None:
    dev = StsbDevEvaluator(["a b"], ["b c"], np.array([1.0]))
    dev.similarities[10] = np.array([0.5])
    config = TrainConfig(model=str(tiny_backbone), corpus=[str(tmp_path / "c.txt")], output=str(tmp_path / "run"))
    assert training_free_line(config, dev, 10) is None
