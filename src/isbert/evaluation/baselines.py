"""Training-free baselines, so the paper's comparison rows can be reproduced for any backbone.

* pooling over a raw encoder, built in the model layer (:func:`isbert.model.pooled_encoder`): ``mean``, ``cls`` or
  ``first-last-mean`` (only ``mean`` over word vectors: average GloVe for ``offline-glove``) (the mean over tokens of
  the average of the first transformer layer's and the last layer's outputs, as in BERT-flow/BERT-whitening/SimCSE's
  "first-last avg");
* BERT-whitening (Su et al., 2021): ``(x - mu) @ W`` with ``W = U diag(1/sqrt(s))`` from the SVD of the
  covariance of unlabeled sentences' embeddings, optionally cut to the first ``dim`` components.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isbert.errors import IsbertError
from isbert.evaluation.sts import check_finite


@dataclass
class Whitening:
    """BERT-whitening transform fitted on unlabeled sentence embeddings."""

    mean: np.ndarray
    kernel: np.ndarray

    @classmethod
    def fit(cls, embeddings: np.ndarray, dim: int | None = None, eps: float = 1e-8) -> Whitening:
        x = np.asarray(embeddings, dtype=np.float64)
        check_finite(x, "embeddings for whitening")
        if x.ndim != 2 or len(x) < 2:
            raise IsbertError("whitening needs at least 2 unlabeled sentence embeddings")
        if dim is not None and not 0 < dim <= x.shape[1]:
            raise IsbertError(f"whitening dimension must be between 1 and {x.shape[1]}, got {dim}")
        mean = x.mean(axis=0, keepdims=True)
        covariance = np.atleast_2d(np.cov(x - mean, rowvar=False))  # np.cov gives a scalar for a single column
        u, s, _ = np.linalg.svd(covariance)
        kernel = u / np.sqrt(s + eps)
        return cls(mean, kernel[:, :dim] if dim else kernel)

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        return (np.asarray(embeddings, dtype=np.float64) - self.mean) @ self.kernel
