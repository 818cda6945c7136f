"""Read corpus files and embed them in chunks of unit-length float32 vectors, so that inner product is cosine.

Every application here (index, cluster, similar) works on normalized embeddings: faiss' inner-product indexes and
the pair miner then rank by cosine similarity, which is what sentence-embedding models are trained for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from sentence_transformers import SentenceTransformer
from tqdm.auto import tqdm

from isbert.encode import count_truncated
from isbert.errors import IsbertError
from isbert.inputs import InputFile, describe, iter_input_texts
from isbert.io import EncodingErrors, ReadStats


@dataclass
class CorpusOptions:
    """How to read the corpus files (the same options as ``isbert encode``)."""

    text_field: str = "text"
    column: str = "text"
    encoding_errors: EncodingErrors = "strict"

    def read(self, files: Sequence[InputFile], stats: ReadStats | None = None) -> Iterator[tuple[str, str]]:
        """Non-empty texts with their ``label:line``; empty lines carry no meaning for search or clustering."""
        records = iter_input_texts(
            files,
            text_field=self.text_field,
            column=self.column,
            encoding_errors=self.encoding_errors,
            skip_empty=True,
            strip=True,
            stats=stats,
        )
        return ((f"{file.label}:{line}", text) for file, line, text in records)


@dataclass
class Chunk:
    """Consecutive corpus records (``label:line`` and text) and their normalized embeddings (row ``i`` is
    ``texts[i]``)."""

    sources: list[str]
    texts: list[str]
    embeddings: np.ndarray


@dataclass
class EmbedStats:
    """What the embedding pass saw: texts embedded, texts truncated to the model's limit, reader statistics."""

    texts: int = 0
    truncated: int = 0
    read: ReadStats = field(default_factory=ReadStats)

    def summary(self) -> str:
        notes = [self.read.summary()]
        if self.truncated:
            notes.append(f"{self.truncated} texts truncated to the model's maximum length")
        return "; ".join(notes)


def embed_texts(model: SentenceTransformer, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Normalized float32 embeddings of ``texts`` (shape ``(len(texts), dim)``)."""
    vectors = model.encode(
        texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
    )
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not np.isfinite(vectors).all():
        raise IsbertError("the model produced NaN or infinite embeddings")
    return vectors


def count_records(files: Sequence[InputFile], options: CorpusOptions) -> int:
    """Number of non-empty texts (a streaming pass), so that index types and progress bars can be chosen up front."""
    return sum(1 for _ in options.read(files))


def iter_embedded_chunks(
    model: SentenceTransformer,
    files: Sequence[InputFile],
    options: CorpusOptions,
    *,
    total: int | None = None,
    chunk_size: int = 4096,
    batch_size: int = 32,
    stats: EmbedStats | None = None,
    show_progress: bool = True,
    desc: str = "embed",
    expand: Callable[[str, str], Iterable[tuple[str, str]]] | None = None,
) -> Iterator[Chunk]:
    """Stream the corpus as embedded chunks: memory stays at one chunk whatever the file size. ``expand(source,
    text)``: the records to embed in its place (an index splits long texts into pieces and leaves out those it
    holds already)."""
    stats = stats if stats is not None else EmbedStats()
    records = options.read(files, stats.read)
    if expand is not None:
        records = (piece for record in records for piece in expand(*record))
    with tqdm(total=total, desc=desc, unit="text", disable=not show_progress) as progress:
        while True:
            sources: list[str] = []
            texts: list[str] = []
            for source, text in records:
                sources.append(source)
                texts.append(text)
                if len(texts) == chunk_size:
                    break
            if not texts:
                return
            stats.truncated += count_truncated(model, texts)
            embeddings = embed_texts(model, texts, batch_size)
            stats.texts += len(texts)
            progress.update(len(texts))
            yield Chunk(sources, texts, embeddings)


def embed_corpus(
    model: SentenceTransformer,
    files: Sequence[InputFile],
    options: CorpusOptions,
    *,
    batch_size: int = 32,
    show_progress: bool = True,
    stats: EmbedStats | None = None,
) -> tuple[list[str], list[str], np.ndarray]:
    """The whole corpus in memory: ``label:line`` sources, texts and an ``(n, dim)`` matrix (for clustering and
    mining)."""
    total = count_records(files, options)
    if total == 0:
        raise IsbertError(f"{describe(files)}: no non-empty texts")
    sources: list[str] = []
    texts: list[str] = []
    matrix = np.empty((total, model.get_embedding_dimension() or 0), dtype=np.float32)
    for chunk in iter_embedded_chunks(
        model, files, options, total=total, batch_size=batch_size, stats=stats, show_progress=show_progress
    ):
        start = len(texts)
        if start + len(chunk.texts) > total:
            raise IsbertError(f"{describe(files)} changed while it was being read")
        matrix[start : start + len(chunk.texts)] = chunk.embeddings
        sources.extend(chunk.sources)
        texts.extend(chunk.texts)
    if len(texts) != total:
        raise IsbertError(f"{describe(files)} changed while it was being read ({total} texts, then {len(texts)})")
    return sources, texts, matrix
