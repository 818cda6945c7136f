"""Contrastive Tension through sentence-transformers' ContrastiveTensionLossInBatchNegatives."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from isbert.objectives.ct import CT_SCALE, contrastive_tension_loss
from isbert.training import TrainConfig
from isbert.training.models import build_baseline


def test_loss_equals_the_symmetric_in_batch_cross_entropy(tiny_backbone: Path) -> None:
    """Against a plain reference: both copies agree at the start, so row i must pick column i at scale 20."""
    model = build_baseline(TrainConfig(model=str(tiny_backbone), device="cpu"), "mean").eval()
    loss = contrastive_tension_loss(model).eval()
    features = model.preprocess(["a man walks the dog", "the red car is fast", "she reads"])
    with torch.no_grad():
        value = loss([features], None)
        vectors = F.normalize(model(dict(features))["sentence_embedding"], dim=-1)
    scores = CT_SCALE * vectors @ vectors.T
    target = torch.arange(3)
    expected = (F.cross_entropy(scores, target) + F.cross_entropy(scores.T, target)) / 2
    torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-5)


def test_the_second_copy_is_independent_of_the_model(tiny_backbone: Path) -> None:
    model = build_baseline(TrainConfig(model=str(tiny_backbone), device="cpu"), "mean")
    loss = contrastive_tension_loss(model)
    assert loss.model2 is model and loss.model1 is not model
    ours = {id(p) for p in model.parameters()}
    assert not any(id(p) in ours for p in loss.model1.parameters())
