"""TSDAE (``--objective tsdae``): sentence-transformers' ``DenoisingAutoEncoderLoss`` with its word-deletion noise.

Wang, Reimers, Gurevych. "TSDAE: Using Transformer-based Sequential Denoising Auto-Encoder for Unsupervised
Sentence Embedding Learning". Findings of EMNLP 2021, arXiv:2104.06979 (it also benchmarks IS-BERT).

The encoder (the backbone with mean pooling, like isbert's SimCSE) embeds a damaged sentence; a transformer decoder
whose weights are tied to the encoder's must rebuild the original sentence from that one vector, through
cross-attention in its layers. Hence the one backbone condition: a transformers encoder *with layers*. Word vectors
(``offline-glove``) and an encoder cut to ``encoder_layers = 0`` have none (``OBJECTIVE.not_applicable`` says so).

Inputs: one text column; :func:`with_deletion_noise` adds the damaged twin as the first column.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from isbert.errors import IsbertError
from isbert.objectives.base import Objective, Settings, encoder_of

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import DenoisingAutoEncoderLoss

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


def denoising_loss(model: SentenceTransformer, settings: Settings | None = None) -> DenoisingAutoEncoderLoss:
    """sentence-transformers' TSDAE loss on ``model`` (a transformers encoder with pooling), decoder tied to it.

    The decoder is built from the encoder's own folder (offline: the packaged MiniLM's), then cut to the encoder's
    depth so that every decoder layer is tied to an encoder layer, as in the paper. No setting changes it.
    """
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.losses import DenoisingAutoEncoderLoss

    from isbert.model import truncate_layers

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


PAPER = "Wang, Reimers and Gurevych, Findings of EMNLP 2021, arXiv:2104.06979"
BIBTEX = """@inproceedings{wang-etal-2021-tsdae-using,
    title = "{TSDAE}: Using Transformer-based Sequential Denoising Auto-Encoder for Unsupervised Sentence
             Embedding Learning",
    author = "Wang, Kexin and Reimers, Nils and Gurevych, Iryna",
    booktitle = "Findings of the Association for Computational Linguistics: EMNLP 2021",
    year = "2021",
    pages = "671--688",
    url = "https://arxiv.org/abs/2104.06979",
}"""


def describe(settings: Settings) -> str:
    return (
        f"TSDAE ({PAPER}): the {encoder_of(settings)} with mean pooling and no head, trained without labels as the "
        f"encoder of a denoising auto-encoder: a transformer decoder tied to its weights rebuilds each sentence from "
        f"the vector of a copy with each word deleted with probability {DELETE_RATIO}."
    )


OBJECTIVE = Objective(
    name="tsdae",
    help="TSDAE (denoising auto-encoder, needs transformer layers) on the encoder + mean pooling",
    title="TSDAE",
    paper=PAPER,
    bibtex=BIBTEX,
    describe=describe,
    build_loss=denoising_loss,
    pooled=True,
    needs_layers=True,
    columns=("noisy", "text"),
    add_columns=with_deletion_noise,
    tags=("tsdae", "denoising-auto-encoder"),
)
