"""Training-free baselines, so the paper's comparison rows can be reproduced for any backbone.

* pooling over a raw encoder: ``mean``, ``cls`` or ``first-last-mean`` (only ``mean`` over word vectors: average
  GloVe for ``offline-glove``) (the mean over tokens of the average of the
  first transformer layer's and the last layer's outputs, as in BERT-flow/BERT-whitening/SimCSE's "first-last avg");
* BERT-whitening (Su et al., 2021): ``(x - mu) @ W`` with ``W = U diag(1/sqrt(s))`` from the SVD of the
  covariance of unlabeled sentences' embeddings, optionally cut to the first ``dim`` components.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Transformer
from sentence_transformers.sentence_transformer.modules import Pooling, WordEmbeddings

from isbert.errors import IsbertError
from isbert.evaluation.sts import check_finite

POOLINGS = ("mean", "cls", "first-last-mean")


class FirstLastAverage(torch.nn.Module):
    """Replace the token embeddings by the average of the first layer's and the last layer's outputs.

    ``hidden_states[0]`` is the embedding layer, so the first *transformer* layer is ``hidden_states[1]``.
    """

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        layers = features.get("all_layer_embeddings")
        if layers is None or len(layers) < 2:
            raise IsbertError("first-last-mean pooling needs the encoder's hidden states (output_hidden_states)")
        features["token_embeddings"] = (layers[1] + layers[-1]) / 2
        return features


def pooled_encoder(
    name_or_path: str | os.PathLike[str], pooling: str, *, device: str | None = None
) -> SentenceTransformer:
    """The encoder (first module) of a model, followed by the chosen pooling, with no trained head after it."""
    from isbert.model import load

    if pooling not in POOLINGS:
        raise IsbertError(f"unknown pooling '{pooling}'; valid: {', '.join(POOLINGS)}")
    encoder = load(name_or_path, device=device)[0]
    if isinstance(encoder, WordEmbeddings) and pooling == "mean":
        # Average word vectors (e.g. average GloVe for offline-glove); cls and first-last have no meaning here.
        return SentenceTransformer(modules=[encoder, Pooling(encoder.get_embedding_dimension())], device=device)
    if isinstance(encoder, WordEmbeddings):
        raise IsbertError(f"{name_or_path}: a word-vector model has only '--pooling mean' (no [CLS], no layers)")
    if not isinstance(encoder, Transformer):
        raise IsbertError(f"{name_or_path}: the first module is {type(encoder).__name__}, not a Transformer encoder")
    modules: list[torch.nn.Module] = [encoder]
    if pooling == "first-last-mean":
        encoder.model.config.output_hidden_states = True
        modules.append(FirstLastAverage())
    modules.append(Pooling(encoder.get_embedding_dimension(), pooling_mode="cls" if pooling == "cls" else "mean"))
    return SentenceTransformer(modules=modules, device=device)


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
        covariance = np.cov(x - mean, rowvar=False)
        u, s, _ = np.linalg.svd(covariance)
        kernel = u / np.sqrt(s + eps)
        return cls(mean, kernel[:, :dim] if dim else kernel)

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        return (np.asarray(embeddings, dtype=np.float64) - self.mean) @ self.kernel
