"""Word-weighted averaging baselines for static token vectors: SIF, uSIF and all-but-the-top, as plain numpy math.

A sentence is the weighted mean of its token vectors, ``v_s = sum_w f(p(w)) v_w / sum_w f(p(w))``, with a weight
``f`` that falls with the word's probability ``p(w)``, followed by the removal of the directions all sentences
share. The functions here hold the math, each as its paper writes it; :mod:`isbert.sif_model` assembles them into
plain sentence-transformers folders (encoder -> ``WordWeights`` -> mean ``Pooling`` -> ``Dense``).

* SIF: Arora, Liang and Ma, "A Simple but Tough-to-Beat Baseline for Sentence Embeddings", ICLR 2017.
  Weight ``a / (a + p(w))``; remove the projection on the first principal direction(s) of the sentence vectors.
* uSIF: Ethayarajh, "Unsupervised Random Walk Sentence Embeddings: A Strong but Simple Baseline", RepL4NLP 2018.
  Weight ``a / (a/2 + p(w))`` with ``a`` derived from the vocabulary and the sentence length (no tuning), unit
  word vectors, and a piecewise removal of 5 components weighted by their share of the variance. The released uSIF
  code also divides each dimension of a sentence's token vectors by that dimension's norm over the sentence's tokens
  (``v_t * (1 / np.linalg.norm(v_t, axis=0))``), which the paper does not describe: that quirk is *not*
  reproduced here; word vectors are unit-normalised per word, as the paper says (where the backbone is a word-vector
  table; a 0-layer transformer's token vectors, LayerNorm(word + position), are used as they are).
* All-but-the-top (ABTT): Mu and Viswanath, "All-but-the-Top: Simple and Effective Postprocessing for Word
  Representations", ICLR 2018. Subtract the mean word vector and remove the top ``D`` principal components.

One difference from both papers, on purpose: the sentence vector divides by the summed weights (sentence-transformers'
``Pooling`` after ``WordWeights``), not by the number of words. The two differ per sentence by a positive factor,
which cosine similarity ignores; the common directions are fitted on the vectors exactly as the saved model
computes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from isbert.errors import IsbertError

DEFAULT_A = 1e-3
"""SIF's ``a``. The paper found ``a`` in 1e-3 .. 1e-4 best (its Figure 1; 1e-3 for GloVe with enwiki frequencies).
Measured here on STSb **dev** only (never test), GloVe 6B 50-d, one component removed, p(w) counted on the 25,741
SNLI dev+test sentences: a = 1e-3 scores 63.69, a = 1e-4 60.33 (average GloVe: 53.00). p(w) from so small a corpus
is coarse, and 1e-4 pushes every seen word far below the unseen ones (weight 1); 1e-3 is the default. With Zipf
probabilities instead, 1e-4 was better (69.12 vs 67.28): set ``a`` explicitly there."""

SIF_COMPONENTS = 1
"""SIF removes the first principal direction (the paper's setting)."""

USIF_COMPONENTS = 5
"""uSIF removes 5 directions, piecewise (the paper's m = 5)."""

ABTT_AUTO: Literal["auto"] = "auto"
"""``abtt = "auto"``: ABTT's default number of removed components, ``max(1, round(dim / 100))``."""

Method = Literal["sif", "usif", "abtt"]
Probabilities = Literal["corpus", "zipf"]
PROBABILITIES: tuple[Probabilities, ...] = ("corpus", "zipf")


# ------------------------------------------------------------------------------------------- word probabilities
def corpus_probabilities(counts: np.ndarray) -> np.ndarray:
    """``p(w) = c(w) / sum_v c(v)``: relative frequencies of token ids counted on an unlabeled corpus."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise IsbertError("no token counted: cannot estimate word probabilities")
    return counts / total


def zipf_probabilities(vocab_size: int, skip: int = 0) -> np.ndarray:
    """``p(w_r) = (1 / r) / sum_{q=1..V} (1 / q)`` for the word of rank ``r`` in a frequency-sorted vocabulary.

    The first ``skip`` rows are not words (GloVe's row 0 is the padding token) and get ``p = 0``; rank 1 is row
    ``skip``. Valid only where the vocabulary is sorted by frequency (GloVe's, word2vec's, fastText's files are).
    """
    if not 0 <= skip < vocab_size:
        raise IsbertError(f"a vocabulary of {vocab_size} rows has no word after skipping {skip}")
    p = np.zeros(vocab_size, dtype=np.float64)
    p[skip:] = 1.0 / np.arange(1, vocab_size - skip + 1, dtype=np.float64)
    return p / p.sum()


# ------------------------------------------------------------------------------------------------- word weights
def sif_weights(p: np.ndarray, a: float = DEFAULT_A) -> np.ndarray:
    """SIF's smooth inverse frequency ``a / (a + p(w))``: 1 for an unseen word, small for a frequent one."""
    if not a > 0:
        raise IsbertError(f"SIF's a must be positive, got {a}")
    p = np.asarray(p, dtype=np.float64)
    return a / (a + p)


def usif_parameter(p: np.ndarray, sentence_length: float) -> float:
    """uSIF's ``a = (1 - alpha) / (alpha * Z)``, with no tuning.

    ``V`` is the number of words with a probability (``p(w) > 0``: the words of the frequency table), ``Z = V / 2``,
    ``n`` the average sentence length in tokens, and ``alpha`` the share of words with
    ``p(w) > 1 - (1 - 1/V)^n`` (the probability that a word of uniform frequency appears in a sentence of n
    words). Returns ``inf`` where no word passes the threshold (alpha = 0): the weights are then all equal.
    """
    p = np.asarray(p, dtype=np.float64)
    vocab_size = int(np.count_nonzero(p > 0))
    if vocab_size == 0 or not sentence_length > 0:
        raise IsbertError("uSIF needs word probabilities and a positive average sentence length")
    threshold = 1.0 - (1.0 - 1.0 / vocab_size) ** sentence_length
    alpha = np.count_nonzero(p > threshold) / vocab_size
    z = vocab_size / 2
    return math.inf if alpha == 0 else (1.0 - alpha) / (alpha * z)


def usif_weights(p: np.ndarray, a: float) -> np.ndarray:
    """uSIF's ``a / (a/2 + p(w))`` (2 for an unseen word; the limit 2 everywhere when ``a`` is infinite)."""
    p = np.asarray(p, dtype=np.float64)
    if math.isinf(a):
        return np.full_like(p, 2.0)
    return a / (a / 2 + p)


# ----------------------------------------------------------------------------------------------- common directions
@dataclass(frozen=True)
class Directions:
    """The first principal directions of a set of vectors, as rows of ``vectors`` (k, dim), and the squared
    singular values ``energy`` of every direction (dim,), largest first."""

    vectors: np.ndarray
    energy: np.ndarray

    @property
    def explained(self) -> float:
        """Share of the total squared norm along the kept directions."""
        total = float(self.energy.sum())
        return float(self.energy[: len(self.vectors)].sum()) / total if total > 0 else 0.0


def principal_directions(x: np.ndarray, k: int) -> Directions:
    """The first ``k`` right singular vectors of ``x`` (n, dim), *uncentred*, as SIF's TruncatedSVD computes them.

    Computed from the (dim, dim) Gram matrix ``x^T x``, whose eigenvalues are the squared singular values: cheap for
    100k sentences of any width.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or not 0 <= k <= x.shape[1]:
        raise IsbertError(f"cannot take {k} principal directions of vectors of shape {x.shape}")
    if not np.isfinite(x).all():
        raise IsbertError("the sentence vectors hold NaN or infinite values")
    eigenvalues, eigenvectors = np.linalg.eigh(x.T @ x)
    order = np.argsort(eigenvalues)[::-1]
    return Directions(eigenvectors[:, order[:k]].T.copy(), np.clip(eigenvalues[order], 0.0, None))


def removal_map(directions: np.ndarray) -> np.ndarray:
    """SIF's common-component removal ``x <- x - U^T U x`` as one linear map ``I - U^T U`` (rows of U orthonormal)."""
    u = np.asarray(directions, dtype=np.float64).reshape(-1, np.shape(directions)[-1])
    return np.eye(u.shape[1]) - u.T @ u


def piecewise_removal_map(directions: Directions) -> np.ndarray:
    """uSIF's piecewise removal ``x <- x - sum_i lambda_i (x . u_i) u_i`` as the map ``I - sum_i lambda_i u_i u_i^T``,
    with ``lambda_i = s_i^2 / sum_j s_j^2`` over the m removed components."""
    u = directions.vectors
    top = directions.energy[: len(u)]
    if len(u) == 0 or top.sum() <= 0:
        return np.eye(u.shape[1])
    weights = top / top.sum()
    return np.eye(u.shape[1]) - (u.T * weights) @ u


# ----------------------------------------------------------------------------------------------- all-but-the-top
def default_abtt_components(dim: int) -> int:
    """ABTT's rule of thumb ``D = d / 100``, at least 1 (GloVe 50-d: 1; a 768-d table: 8)."""
    return max(1, round(dim / 100))


def all_but_the_top(vectors: np.ndarray, d: int) -> tuple[np.ndarray, Directions]:
    """ABTT: ``v~ = v - mean``, then ``v' = v~ - sum_{i<=D} (u_i . v~) u_i`` over the top ``D`` principal
    components of the centred vectors. Returns the processed vectors (float64) and the removed directions."""
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or len(v) < 2:
        raise IsbertError("all-but-the-top needs a table of at least 2 word vectors")
    if not 0 <= d < v.shape[1]:
        raise IsbertError(f"all-but-the-top removes between 0 and {v.shape[1] - 1} components, got {d}")
    centred = v - v.mean(axis=0)
    directions = principal_directions(centred, d)
    return centred @ removal_map(directions.vectors) if d else centred, directions


# --------------------------------------------------------------------------------------------------- what to fit
@dataclass(frozen=True)
class SifSettings:
    """What one baseline fits: the options of ``isbert baseline`` and the experiment files' baseline names.

    ``components=None`` and ``abtt="auto"`` take the method's defaults; ``abtt=None`` (or 0) leaves the word vectors
    as they are.
    """

    method: Method
    a: float = DEFAULT_A
    """SIF only: uSIF derives its own (:func:`usif_parameter`)."""
    components: int | None = None
    """Common directions removed: SIF 1, uSIF 5 by default; 0 removes none. ABTT alone pools plain means."""
    probabilities: Probabilities = "corpus"
    abtt: int | Literal["auto"] | None = None
    """ABTT components removed from the word-vector table first (``abtt`` always; ``sif`` when set)."""

    def __post_init__(self) -> None:
        if self.method not in ("sif", "usif", "abtt"):
            raise IsbertError(f"unknown baseline method {self.method!r}; choose sif, usif or abtt")
        if not self.a > 0:
            raise IsbertError(f"a must be positive, got {self.a}")
        if self.components is not None and self.components < 0:
            raise IsbertError(f"components must be 0 or more, got {self.components}")
        if self.probabilities not in PROBABILITIES:
            raise IsbertError(f"probabilities must be corpus or zipf, got {self.probabilities!r}")
        if self.method == "usif" and self.abtt:
            raise IsbertError("uSIF normalises the word vectors itself; ABTT combines with sif only")
        if self.method == "abtt" and self.components:
            raise IsbertError("abtt alone pools plain means: no common components to remove (use sif --abtt)")

    @property
    def removed(self) -> int:
        """Common directions removed from the sentence vectors."""
        if self.components is not None:
            return self.components
        return {"sif": SIF_COMPONENTS, "usif": USIF_COMPONENTS, "abtt": 0}[self.method]

    @property
    def weighted(self) -> bool:
        """Whether word probabilities (and so a corpus) are needed: ABTT alone averages without weights."""
        return self.method != "abtt"

    def abtt_components(self, dim: int) -> int:
        """ABTT components for word vectors of width ``dim`` (0: no ABTT)."""
        if self.abtt == ABTT_AUTO or (self.abtt is None and self.method == "abtt"):
            return default_abtt_components(dim)
        return int(self.abtt or 0)

    def with_options(self, *, a: float | None = None, components: int | None = None) -> SifSettings:
        """These settings with ``a`` and ``components`` changed where given; refused where they do not apply."""
        if a is not None and self.method != "sif":
            raise IsbertError(f"a applies to SIF only ({self.method} has none to set)")
        if components is not None and self.method == "abtt":
            raise IsbertError("components do not apply to abtt alone (it pools plain means)")
        return replace(
            self, a=self.a if a is None else a, components=self.components if components is None else components
        )

    def describe(self) -> str:
        parts: list[str] = [self.method if self.method != "abtt" else "all-but-the-top"]
        if self.method == "sif":
            parts.append(f"a={self.a:g}")
        if self.weighted:
            parts.append(f"p(w) from {'the corpus' if self.probabilities == 'corpus' else 'Zipf ranks'}")
        return ", ".join(parts)


NAMED_BASELINES: dict[str, SifSettings] = {
    "sif": SifSettings("sif"),
    "sif-zipf": SifSettings("sif", probabilities="zipf"),
    "usif": SifSettings("usif"),
    "abtt": SifSettings("abtt"),
    "sif-abtt": SifSettings("sif", abtt=ABTT_AUTO),
}
"""The baselines experiment files name (``baseline = "sif"``): fitted on the run's ``corpus``, evaluated once."""
