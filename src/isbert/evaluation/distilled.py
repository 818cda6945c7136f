"""model2vec as a training-free peer: a static embedding table distilled from a sentence encoder.

Tulkens, van Dongen. "Model2Vec: Fast State-of-the-Art Static Embeddings" (2024). ``model2vec.distill`` encodes
every token of the encoder's vocabulary once through the whole encoder, reduces the vectors with PCA and weights
them by Zipf's law; a sentence is then the mean of its tokens' rows: no transformer runs at encoding time. It needs
only the encoder's folder, so it runs offline on the packaged all-MiniLM-L6-v2.

Through sentence-transformers' ``StaticEmbedding.from_distillation``, so the result is an ordinary
``SentenceTransformer`` that the evaluation harness scores like any other model. Needs the ``peers`` extra.
"""

from __future__ import annotations

from pathlib import Path

from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import StaticEmbedding

from isbert.errors import IsbertError
from isbert.model import resolve_model_name
from isbert.model_folder import read_model_config

PCA_DIMS = 256
"""model2vec's default output size."""


def not_applicable(model: str) -> str | None:
    """Why model2vec cannot distill ``model`` (None when it can): it needs a transformers encoder folder."""
    path = Path(resolve_model_name(model))
    if path.is_dir() and not (path / "config.json").is_file():
        return f"model2vec distils a transformers encoder; {model} is not one (word vectors are static already)"
    if (path / "config.json").is_file() and "vocab_size" not in read_model_config(path / "config.json"):
        return f"model2vec distils a transformers encoder with a vocabulary; {model} has none"
    return None


def distilled_model(model: str, *, device: str | None = None) -> SentenceTransformer:
    """The model2vec distillation of ``model`` (a name, folder or ``offline-minilm``), as a SentenceTransformer."""
    reason = not_applicable(model)
    if reason:
        raise IsbertError(reason)
    try:
        import model2vec  # noqa: F401  (sentence-transformers imports it lazily, with a message naming pip)
    except ImportError:
        raise IsbertError('model2vec is not installed; pip install -e ".[peers]"') from None
    static = StaticEmbedding.from_distillation(resolve_model_name(model), device=device, pca_dims=PCA_DIMS)
    return SentenceTransformer(modules=[static], device=device)
