"""Training-free baselines against known answers: whitening by hand, each pooling against the encoder's own outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModel, AutoTokenizer

from isbert.errors import IsbertError, error_line
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


def fit_error(embeddings: np.ndarray, dim: int | None = None) -> str:
    """The message of the error Whitening.fit raises, checked to be the one line the command line prints unchanged."""
    with pytest.raises(IsbertError) as caught:
        Whitening.fit(embeddings, dim)
    message = str(caught.value)
    assert error_line(message) == message
    return message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_embeddings_are_refused_with_a_message_naming_them(bad: float) -> None:
    x = np.ones((3, 4))
    x[1, 2] = bad
    assert fit_error(x) == "the model produced non-finite embeddings for whitening (1 of 3 rows contain NaN/inf)"


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(min_value=0, max_value=5), width=st.integers(min_value=1, max_value=5))
def test_whitening_needs_at_least_two_embeddings(rows: int, width: int) -> None:
    x = np.random.default_rng(rows * 10 + width).normal(size=(rows, width))
    if rows < 2:
        assert fit_error(x) == "whitening needs at least 2 unlabeled sentence embeddings"
    else:  # two rows are enough (a rank-1 covariance; eps keeps the kernel finite)
        white = Whitening.fit(x).transform(x)
        assert white.shape == (rows, width)
        assert np.isfinite(white).all()


@pytest.mark.parametrize("shape", [(5,), (2,), (1,), (3, 2, 2), ()])
def test_embeddings_that_are_not_a_matrix_are_refused(shape: tuple[int, ...]) -> None:
    x = np.arange(float(np.prod(shape))).reshape(shape)  # a single vector, a stack of matrices, a scalar
    assert fit_error(x) == "whitening needs at least 2 unlabeled sentence embeddings"


@settings(max_examples=40, deadline=None)
@given(width=st.integers(min_value=1, max_value=6), dim=st.integers(min_value=-2, max_value=8))
def test_whitening_dimension_is_accepted_exactly_from_1_to_the_width(width: int, dim: int) -> None:
    x = np.random.default_rng(width).normal(size=(50, width))
    if 1 <= dim <= width:
        cut = Whitening.fit(x, dim).transform(x)
        assert cut.shape == (50, dim)
        np.testing.assert_allclose(cut, Whitening.fit(x).transform(x)[:, :dim], atol=1e-9)
    else:
        assert fit_error(x, dim) == f"whitening dimension must be between 1 and {width}, got {dim}"


def test_single_dimension_embeddings_whiten_to_unit_variance() -> None:
    """np.cov returns a scalar for one column; the fit used to crash on it with numpy's LinAlgError."""
    x = np.random.default_rng(7).normal(loc=3.0, scale=2.0, size=(100, 1))
    white = Whitening.fit(x).transform(x)
    assert white.shape == (100, 1)
    np.testing.assert_allclose(white.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(white.std(ddof=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    "x",
    [
        np.repeat(np.random.default_rng(2).normal(size=(40, 2)), [1, 2], axis=1),  # a duplicated column
        np.random.default_rng(3).normal(size=(3, 6)),  # fewer embeddings than dimensions
        np.c_[np.random.default_rng(4).normal(size=(30, 2)), np.full(30, 7.0)],  # a constant dimension
    ],
    ids=["duplicate-column", "fewer-rows-than-dims", "constant-column"],
)
def test_a_rank_deficient_covariance_gives_finite_whitened_embeddings(x: np.ndarray) -> None:
    """eps keeps the null directions finite: they map to ~0, and the other directions are still whitened."""
    whitening = Whitening.fit(x)
    assert np.isfinite(whitening.kernel).all()
    white = whitening.transform(x)
    assert np.isfinite(white).all()
    rank = np.linalg.matrix_rank(x - x.mean(axis=0))
    np.testing.assert_allclose(
        np.cov(white, rowvar=False), np.diag([1.0] * rank + [0.0] * (x.shape[1] - rank)), atol=1e-6
    )


def test_float32_embeddings_are_fitted_and_whitened_in_float64() -> None:
    """Encoders return float32; the fit must equal the fit of the same values as float64 (a float32 mean of values
    around 1000 is off by ~1e-5)."""
    rng = np.random.default_rng(5)
    x32 = (1000.0 + rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4))).astype(np.float32)
    x64 = x32.astype(np.float64)
    got, reference = Whitening.fit(x32), Whitening.fit(x64)
    assert got.mean.dtype == got.kernel.dtype == np.float64
    np.testing.assert_allclose(got.mean, reference.mean, rtol=1e-13)
    np.testing.assert_allclose(got.kernel, reference.kernel, rtol=1e-10, atol=1e-12)
    white = got.transform(x32)
    assert white.dtype == np.float64
    np.testing.assert_allclose(white, reference.transform(x64), rtol=1e-10, atol=1e-10)


def test_a_large_common_offset_costs_no_precision() -> None:
    """Embeddings 1e8 away from the origin with a spread of 1e-2 whiten as their exactly centred copy does: the mean is
    removed before the covariance is formed, so no digit of the spread is lost to the offset."""
    rng = np.random.default_rng(6)
    x = 1e8 + 1e-2 * rng.normal(size=(400, 3)) @ rng.normal(size=(3, 3))
    centred = x - 1e8  # exact: x and 1e8 are within a factor 2 of each other
    offset, reference = Whitening.fit(x), Whitening.fit(centred)
    np.testing.assert_allclose(offset.mean - 1e8, reference.mean, atol=1e-6)  # summing 400 values near 1e8 costs ~1e-7
    # the kernel's columns may flip sign between fits; kernel @ kernel.T = (covariance + eps)^-1 does not
    np.testing.assert_allclose(offset.kernel @ offset.kernel.T, reference.kernel @ reference.kernel.T, rtol=1e-9)


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
