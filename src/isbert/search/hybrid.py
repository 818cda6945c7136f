"""Keyword search (SQLite FTS5, ranked by BM25) and its fusion with vector search (reciprocal rank fusion).

Vector search finds texts that mean the same in other words; it misses a rare exact term (a product code, a name
the model never saw) that keyword search finds at once. Hybrid search runs both and fuses the two rankings by
reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009): each text scores ``sum 1 / (60 + rank)`` over the
rankings it appears in, which needs no score calibration between BM25 and cosine.

A user's query is never FTS5 syntax: each word is quoted as a string (inner quotes doubled) and the words are joined
by ``OR``, so ``"``, ``*``, ``NEAR``, ``:`` or ``-`` in a query are plain characters, never an error or an operator
(a NUL, which ends an FTS5 string early, separates words).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from isbert.errors import IsbertError
from isbert.search.store import database_error

Mode = Literal["vector", "keyword", "hybrid"]
MODES: tuple[str, ...] = ("vector", "keyword", "hybrid")
RRF_K = 60
"""The constant of reciprocal rank fusion (the paper's value): larger flattens the weight of the top ranks."""
MAX_QUERY_TERMS = 64
"""Words of a query kept for keyword search (each one an ``OR`` branch of the FTS5 query)."""
MAX_TERM_CHARS = 256
"""A longer word is cut to this length for keyword search."""


def fts_query(text: str) -> str | None:
    """``text`` as an FTS5 query that matches any of its words, every character literal; None without words."""
    terms = [word[:MAX_TERM_CHARS] for word in text.replace("\x00", " ").split()][:MAX_QUERY_TERMS]
    quoted = ['"' + term.replace('"', '""') + '"' for term in terms if term.replace('"', "")]
    return " OR ".join(quoted) or None


def keyword_ranking(
    connection: sqlite3.Connection, folder: Path, text: str, limit: int, source: str | None = None
) -> list[tuple[int, float]]:
    """The best ``limit`` records for ``text`` by BM25 (``(id, score)``, higher is better), within ``source``
    (a file label, or a folder prefix ending in ``/``) when given."""
    query = fts_query(text)
    if query is None:
        return []
    sql = "SELECT docs_fts.rowid, bm25(docs_fts) FROM docs_fts"
    arguments: list[object] = [query]
    where = " WHERE docs_fts MATCH ?"
    if source is not None:
        sql += " JOIN docs ON docs.id = docs_fts.rowid"
        where += " AND substr(docs.file, 1, ?) = ?" if source.endswith("/") else " AND docs.file = ?"
        arguments += [len(source), source] if source.endswith("/") else [source]
    try:
        sql = f"{sql}{where} ORDER BY bm25(docs_fts) LIMIT ?"  # fixed SQL; the values are bound
        rows = connection.execute(sql, [*arguments, limit]).fetchall()
    except sqlite3.Error as error:
        raise database_error(folder, error) from None
    return [(int(row_id), -float(score)) for row_id, score in rows]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], limit: int) -> list[tuple[int, float]]:
    """The ``limit`` best ids over ``rankings`` (each best first) by ``sum 1 / (RRF_K + rank)``; ties keep the
    order of first appearance."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])[:limit]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise IsbertError(f"unknown search mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode
