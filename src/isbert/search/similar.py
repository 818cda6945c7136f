"""Paraphrase mining: all pairs of texts with cosine similarity at or above a threshold, without an n x n matrix.

The similarity matrix of 1M texts would take 4 TB; instead the upper triangle is computed in tiles of
``block x block`` (64 MB for the default 4096), and only the pairs above the threshold are kept. When more than
``max_pairs`` pairs qualify (a low threshold on a large corpus), only the best ``max_pairs`` are kept, pruned as
the scan goes, so memory stays bounded by ``block^2 + 2 * max_pairs`` whatever the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from isbert.errors import IsbertError


@dataclass
class PairReport:
    """Found pairs (``first < second``, sorted by score, best first) and how many qualified in all."""

    first: np.ndarray
    second: np.ndarray
    scores: np.ndarray
    qualified: int

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def truncated(self) -> bool:
        return self.qualified > len(self.scores)


@dataclass
class TextGroups:
    """Identical texts collapsed: the row of each distinct text's first occurrence, and how often it occurs."""

    first_rows: np.ndarray
    counts: np.ndarray

    @property
    def repeated(self) -> int:
        """How many distinct texts occur more than once."""
        return int((self.counts > 1).sum())


def group_identical(texts: list[str]) -> TextGroups:
    """Group identical texts (one sentence repeated 8 times would otherwise fill 28 pairs of score 1.0)."""
    first: dict[str, int] = {}
    counts: dict[str, int] = {}
    for row, text in enumerate(texts):
        first.setdefault(text, row)
        counts[text] = counts.get(text, 0) + 1
    return TextGroups(np.fromiter(first.values(), dtype=np.int64), np.array([counts[t] for t in first], dtype=np.int64))


def _prune(first: np.ndarray, second: np.ndarray, scores: np.ndarray, keep: int) -> tuple[np.ndarray, ...]:
    if len(scores) <= keep:
        return first, second, scores
    best = np.argpartition(-scores, keep - 1)[:keep]
    return first[best], second[best], scores[best]


def mine_pairs(
    embeddings: np.ndarray,
    threshold: float,
    *,
    block: int = 4096,
    max_pairs: int = 100_000,
    show_progress: bool = False,
) -> PairReport:
    """Pairs ``(i, j)``, ``i < j``, of rows of normalized ``embeddings`` with ``embeddings[i] . embeddings[j] >= T``."""
    if not -1.0 <= threshold <= 1.0:
        raise IsbertError(f"--threshold must be a cosine similarity between -1 and 1, got {threshold}")
    if max_pairs < 1 or block < 1:
        raise IsbertError("max_pairs and block must be at least 1")
    matrix = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = len(matrix)
    starts = list(range(0, n, block))
    tiles = len(starts) * (len(starts) + 1) // 2
    first_parts: list[np.ndarray] = []
    second_parts: list[np.ndarray] = []
    score_parts: list[np.ndarray] = []
    held = qualified = 0
    with tqdm(total=tiles, desc="pairs", unit="tile", disable=not show_progress) as progress:
        for row_start in starts:
            rows = matrix[row_start : row_start + block]
            for col_start in range(row_start, n, block):
                tile = rows @ matrix[col_start : col_start + block].T
                if col_start == row_start:
                    # -inf puts the diagonal and below (self pairs, (j, i) twins) under every threshold; triu's 0
                    # did not: a threshold of 1e-46 is 0 in float32, and 0 >= 0 listed them all
                    steps = np.arange(len(tile))
                    tile = np.where(steps[:, None] >= steps, -np.inf, tile)
                i, j = np.nonzero(tile >= threshold)
                if len(i):
                    qualified += len(i)
                    first_parts.append(i.astype(np.int64) + row_start)
                    second_parts.append(j.astype(np.int64) + col_start)
                    score_parts.append(tile[i, j].astype(np.float32))
                    held += len(i)
                    if held > 2 * max_pairs:
                        merged = _prune(
                            np.concatenate(first_parts),
                            np.concatenate(second_parts),
                            np.concatenate(score_parts),
                            max_pairs,
                        )
                        first_parts, second_parts, score_parts = [merged[0]], [merged[1]], [merged[2]]
                        held = len(merged[2])
                progress.update(1)
    if not score_parts:
        empty = np.empty(0, dtype=np.int64)
        return PairReport(empty, empty, np.empty(0, dtype=np.float32), 0)
    first, second, scores = _prune(
        np.concatenate(first_parts), np.concatenate(second_parts), np.concatenate(score_parts), max_pairs
    )
    order = np.lexsort((second, first, -scores))
    return PairReport(first[order], second[order], scores[order], qualified)
