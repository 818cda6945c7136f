"""Training-free baselines against known answers: whitening by hand, each pooling against the encoder's own outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from isbert.errors import IsbertError
from isbert.evaluation.baselines import Whitening
from isbert.model import pooled_encoder


def test_whitening_of_a_diagonal_covariance_is_a_known_rescaling() -> None:
    rng = np.random.default_rng(0)
    standard = rng.normal(size=(4000, 2))
    standard = (standard - standard.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(standard, rowvar=False))).T
    x = standard * np.array([2.0, 0.5]) + np.array([3.0, -1.0])  # covariance diag(4, 0.25), mean (3, -1)
    whitening = Whitening.fit(x)
    np.testing.assert_allclose(whitening.mean, [[3.0, -1.0]], atol=1e-9)
    np.testing.assert_allclose(np.abs(whitening.kernel), np.diag([0.5, 2.0]), atol=1e-6)  # 1/sqrt of the variances
    np.testing.assert_allclose(np.abs(whitening.transform(x)), np.abs(standard), atol=1e-6)


def test_whitened_embeddings_have_zero_mean_and_identity_covariance() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6)) + rng.normal(size=6)
    white = Whitening.fit(x).transform(x)
    np.testing.assert_allclose(white.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(6), atol=1e-6)
    cut = Whitening.fit(x, dim=3).transform(x)
    assert cut.shape == (500, 3)
    np.testing.assert_allclose(cut, white[:, :3], atol=1e-9)  # the leading components, largest variance first
    with pytest.raises(IsbertError, match="between 1 and 6"):
        Whitening.fit(x, dim=7)


def encoder_outputs(backbone: Path, texts: list[str]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The attention mask and every hidden state of the plain transformers model (the reference)."""
    tokenizer = AutoTokenizer.from_pretrained(str(backbone))
    model = AutoModel.from_pretrained(str(backbone)).eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch, output_hidden_states=True).hidden_states
    return batch["attention_mask"], hidden


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).float()
    return (values * weights).sum(1) / weights.sum(1)


@pytest.mark.parametrize("pooling", ["mean", "cls", "first-last-mean"])
def test_each_pooling_equals_its_definition_on_the_encoder_outputs(tiny_backbone: Path, pooling: str) -> None:
    texts = ["the man runs", "a dog sleeps in the park with many more tokens", "hi"]  # padded to different lengths
    mask, hidden = encoder_outputs(tiny_backbone, texts)
    expected = {
        "mean": masked_mean(hidden[-1], mask),
        "cls": hidden[-1][:, 0],
        "first-last-mean": masked_mean((hidden[1] + hidden[-1]) / 2, mask),
    }[pooling]
    got = pooled_encoder(str(tiny_backbone), pooling, device="cpu").encode(texts, convert_to_tensor=True)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
