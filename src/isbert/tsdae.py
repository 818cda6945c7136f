"""TSDAE as a peer of IS-BERT: sentence-transformers' ``DenoisingAutoEncoderLoss`` with its word-deletion noise.

Wang, Reimers, Gurevych. "TSDAE: Using Transformer-based Sequential Denoising Auto-Encoder for Unsupervised
Sentence Embedding Learning". Findings of EMNLP 2021, arXiv:2104.06979 (it also benchmarks IS-BERT).

The encoder (the backbone with mean pooling, like isbert's SimCSE) embeds a damaged sentence; a transformer decoder
whose weights are tied to the encoder's must rebuild the original sentence from that one vector, through
cross-attention in its layers. Hence the one backbone condition: a transformers encoder *with layers*. Word vectors
(``offline-glove``) and an encoder cut to ``encoder_layers = 0`` have none (:func:`not_applicable` says so).

Inputs: one text column; :func:`with_deletion_noise` adds the damaged twin as the first column.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Transformer
from sentence_transformers.sentence_transformer.losses import DenoisingAutoEncoderLoss

from isbert.errors import IsbertError
from isbert.model import resolve_model_name, truncate_layers

DELETE_RATIO = 0.6
"""The TSDAE paper's (and sentence-transformers') deletion ratio."""


def delete_words(text: str, rng: np.random.Generator, ratio: float = DELETE_RATIO) -> str:
    """Delete each word with probability ``ratio``, keeping at least one: ``DenoisingAutoEncoderDataset.delete``.

    The rule is sentence-transformers'; words are split on white space instead of nltk's ``word_tokenize``, which
    needs the punkt data from outside PyPI (the corpora here are tokenized text already).
    """
    words = text.split()
    if not words:
        return text
    keep = rng.random(len(words)) > ratio
    if not keep.any():
        keep[rng.integers(len(words))] = True
    return " ".join(word for word, kept in zip(words, keep, strict=True) if kept)


def with_deletion_noise(dataset: Any, seed: int) -> Any:
    """``dataset`` (one ``text`` column) read as ``(noisy, text)`` pairs.

    A sentence's damage is a function of the seed and the sentence alone, not of a generator's state: the Trainer
    reads a batch ahead, so a stateful generator (even its checkpointed global one) would damage the sentences after a
    ``--resume`` differently from the uninterrupted run. The price: over several epochs a sentence keeps its damage
    (sentence-transformers' ``DenoisingAutoEncoderDataset`` draws anew each time; TSDAE trains one epoch).
    """

    def transform(batch: dict[str, list[str]]) -> dict[str, list[str]]:
        texts = batch["text"]
        return {"noisy": [delete_words(text, _sentence_rng(seed, text)) for text in texts], "text": texts}

    dataset.set_transform(transform, columns=["text"])
    return dataset


def _sentence_rng(seed: int, text: str) -> np.random.Generator:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return np.random.default_rng([seed, int.from_bytes(digest, "little")])


def not_applicable(model: str, encoder_layers: int | None) -> str | None:
    """Why TSDAE cannot train this backbone (None when it can), from the settings alone (nothing is loaded)."""
    if encoder_layers == 0:
        return "TSDAE needs transformer layers (its tied decoder cross-attends in them); encoder_layers = 0 has none"
    path = Path(resolve_model_name(model))
    config = path / "config.json"
    if path.is_dir() and not config.is_file():
        return f"TSDAE needs a transformers encoder with layers; {model} is not one (word vectors have no layers)"
    if config.is_file() and not json.loads(config.read_text(encoding="utf-8")).get("num_hidden_layers"):
        return f"TSDAE needs transformer layers (its tied decoder cross-attends in them); {model} has none"
    return None


def denoising_loss(model: SentenceTransformer) -> DenoisingAutoEncoderLoss:
    """sentence-transformers' TSDAE loss on ``model`` (a transformers encoder with pooling), decoder tied to it.

    The decoder is built from the encoder's own folder (offline: the packaged MiniLM's), then cut to the encoder's
    depth so that every decoder layer is tied to an encoder layer, as in the paper.
    """
    encoder = model[0]
    if not isinstance(encoder, Transformer):
        raise IsbertError(
            f"--objective tsdae needs a transformers encoder with layers; this model starts with "
            f"{type(encoder).__name__} (word vectors have no layers for the tied decoder)"
        )
    layers = int(encoder.auto_model.config.num_hidden_layers)
    if layers == 0:
        raise IsbertError(
            "--objective tsdae needs transformer layers (its tied decoder cross-attends in them); "
            "--encoder-layers 0 leaves none"
        )
    loss = DenoisingAutoEncoderLoss(model, tie_encoder_decoder=True)
    base = getattr(loss.decoder, loss.decoder.base_model_prefix)
    if int(base.config.num_hidden_layers) > layers:
        truncate_layers(base, layers)
        loss.decoder.config.num_hidden_layers = layers
    return loss
