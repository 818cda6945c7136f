"""A semantic-search index folder: the records in SQLite (:mod:`isbert.search.store`), the vectors in faiss, and the
identity of the model behind them.

A folder that changes: ``add`` skips records it holds already (same ``file:line`` and content) and can replace a
file's records (``replace``), ``delete`` removes a file's or some ids' records, ``sync`` brings the index in line
with a folder (new, changed and removed files), ``build_from_vectors`` reuses ``isbert encode``'s matrix. Searches
are by vector, by keyword (BM25) or both fused (:mod:`isbert.search.hybrid`), optionally within one file or folder.

Every write is one SQLite transaction that ends by publishing the next generation of the vectors file: a reader
(``search``, ``serve --index``) keeps answering from what it opened and reloads the vectors when it sees a new
generation, so an ``index add`` beside a running service never makes it fail.

Why a fingerprint: vectors from two different models live in unrelated spaces, and searching one with the other
returns confident nonsense. The folder keeps the embeddings of a few fixed probe sentences; a model whose probe
embeddings differ is refused. It also keeps the checksums of the model's files (:mod:`isbert.identity`), so the
model is recognised after it moved (the recorded path is only where to look first) and so is its ONNX export.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from sentence_transformers import SentenceTransformer

from isbert.atomic import atomic_open
from isbert.cli_types import MAX_K
from isbert.errors import IsbertError
from isbert.identity import sha256_file
from isbert.inputs import InputFile, InputSpec, describe, expand_inputs
from isbert.search import legacy, store
from isbert.search.chunking import Chunking
from isbert.search.corpus import Chunk, CorpusOptions, EmbedStats, count_records, embed_texts, iter_embedded_chunks
from isbert.search.hybrid import check_mode, keyword_ranking, reciprocal_rank_fusion
from isbert.search.store import DATABASE
from isbert.search.vectors import AUTO_APPROXIMATE_FROM as AUTO_APPROXIMATE_FROM  # re-exported, as before the split
from isbert.search.vectors import (
    KINDS,
    STORAGES,
    IndexSpec,
    VectorAdder,
    apply_search_params,
    choose_spec,
    filtered_params,
    new_vectors,
    training_size,
    without,
)
from isbert.search.vectors import Kind as Kind
from isbert.search.vectors import Storage as Storage
from isbert.search.vectors import new_faiss_index as new_faiss_index

PROBE_SENTENCES = (
    "A man is playing a guitar on the street.",
    "The stock market fell sharply today.",
    "Two dogs are running through a snowy field.",
    "How do I reset my password?",
)
FINGERPRINT_MIN_COSINE = 0.999
"""Probe embeddings of the same model agree to ~1e-6 across runs and BLAS builds; other models are far below this."""
MAX_DIMENSION = 65_536
CHUNK_ROWS = 4096
"""Records inserted (and vectors added) per step of a build from vectors or a migration."""
HYBRID_POOL = 50
"""Candidates each ranking contributes to a hybrid search (at least; ``2 k`` when larger)."""


# --------------------------------------------------------------------------------------------------- fingerprint
def probe_fingerprint(model: SentenceTransformer) -> dict[str, Any]:
    """The probe embeddings (rounded) and their hash: enough to tell one model's vector space from another's."""
    probes = embed_texts(model, list(PROBE_SENTENCES))
    rounded = np.round(probes.astype(np.float64), 5)
    digest = hashlib.sha256(np.round(probes, 3).astype(np.float32).tobytes()).hexdigest()[:16]
    return {"sha256": digest, "probes": rounded.tolist()}


def fingerprint_agreement(stored: dict[str, Any], model: SentenceTransformer) -> float:
    """The lowest cosine between the stored probe embeddings and ``model``'s (1.0 = same model)."""
    stored_probes = np.asarray(stored["probes"], dtype=np.float32)
    current = embed_texts(model, list(PROBE_SENTENCES))
    if stored_probes.shape != current.shape:
        return -1.0
    norms = np.linalg.norm(stored_probes, axis=1) * np.linalg.norm(current, axis=1)
    return float(np.min(np.sum(stored_probes * current, axis=1) / np.maximum(norms, 1e-12)))


def model_reference(name_or_path: str) -> str:
    """What the manifest records to reload the model: an absolute path for a folder, else the name (or alias)."""
    return str(Path(name_or_path).resolve()) if os.path.isdir(name_or_path) else str(name_or_path)


def model_checksums(name_or_path: str | None) -> dict[str, str | None]:
    """The checksum of a model's files and, for an ONNX export, of the model it came from (None where unknown)."""
    from isbert.identity import folder_checksum
    from isbert.model import resolve_model_name
    from isbert.onnx_backend import export_source_checksum

    if not name_or_path:
        return {"checksum": None, "source_checksum": None}
    path = resolve_model_name(name_or_path)
    return {"checksum": folder_checksum(path), "source_checksum": export_source_checksum(path)}


def _related_by_export(stored: dict[str, Any], given: dict[str, str | None]) -> bool:
    """One of the two is an ONNX export of the other (or both are exports of the same model)."""
    ours = {stored.get("checksum"), stored.get("source_checksum")}
    theirs = {given["checksum"], given["source_checksum"]}
    return bool((ours & theirs) - {None})


# ---------------------------------------------------------------------------------------------- the index folder
@dataclass
class Hit:
    """One search result: rank from 1, record id, score (cosine, BM25 or fused rank), stored text, ``file:line``
    and the chunk of that line (0 unless the index splits long texts)."""

    rank: int
    id: int
    score: float
    text: str | None
    source: str | None
    chunk: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.id,
            "score": self.score,
            "text": self.text,
            "source": self.source,
            "chunk": self.chunk,
        }


@dataclass
class BuildReport:
    folder: Path
    added: int
    total: int
    spec: IndexSpec
    stats: EmbedStats

    def summary(self) -> str:
        return (
            f"{self.folder}: added {self.added} texts ({self.stats.summary()}); index holds {self.total} vectors "
            f"({self.spec.kind}, {self.spec.storage})"
        )


@dataclass
class SyncReport:
    """What ``index sync`` changed: files by kind, and records added and removed."""

    folder: Path
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    added: int = 0
    deleted: int = 0
    total: int = 0

    def summary(self) -> str:
        return (
            f"{self.folder}: {len(self.new)} new, {len(self.changed)} changed, {len(self.removed)} removed and "
            f"{self.unchanged} unchanged files; added {self.added} texts, removed {self.deleted}; index holds "
            f"{self.total} vectors"
        )


@dataclass
class _Plan:
    """What one write embeds: the corpus, how it is read, the statistics to fill, the batching and whether texts are
    stored; ``skip``: leave out records the index holds already."""

    inputs: Sequence[InputFile]
    options: CorpusOptions
    count: int
    stats: EmbedStats
    batch_size: int
    show_progress: bool
    store_texts: bool = True
    skip: bool = False
    chunking: Chunking = field(default_factory=Chunking)


def _check_meta(meta: dict[str, Any], folder: Path) -> None:
    """The settings a reader relies on, with the right types (a hostile database is one line, not a traceback)."""
    spec = meta.get("spec")
    fingerprint = meta.get("fingerprint")
    dimension = meta.get("dimension")
    sound = (
        isinstance(dimension, int)
        and not isinstance(dimension, bool)
        and 0 < dimension <= MAX_DIMENSION
        and isinstance(meta.get("model"), str)
        and isinstance(spec, dict)
        and spec.get("kind") in KINDS
        and spec.get("storage") in STORAGES
        and isinstance(spec.get("search", {}), dict)
        and all(isinstance(v, int) and 0 < v <= 1 << 20 for v in spec.get("search", {}).values())
        and isinstance(fingerprint, dict)
        and isinstance(fingerprint.get("sha256"), str)
        and isinstance(fingerprint.get("probes"), list)
        and isinstance(meta.get("model_checksums", {}), dict)
    )
    if not sound:
        raise IsbertError(f"{folder / DATABASE}: damaged settings (model, dimension, spec or fingerprint); rebuild it")
    try:
        Chunking.of(meta)
    except IsbertError as error:
        raise IsbertError(f"{folder / DATABASE}: {error}") from None


def _read_vectors(folder: Path, generation: int, dimension: int, count: int) -> faiss.IndexIDMap2 | None:
    """The generation's vectors file: a plain file of the folder (not a link), an ``IndexIDMap2`` of the right
    shape; None when it is missing (a writer replaced it: read the generation again)."""
    path = folder / store.vectors_name(generation)
    refused = IsbertError(f"{path} is a link leading outside the index (or not a file); refused")
    try:  # faiss reads the file checked here, through this handle: a name swapped after the check is never followed
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:  # a symbolic link
            raise refused from None
        raise IsbertError(f"{path}: cannot open the vectors ({error.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise refused
        index = faiss.read_index(name := _through(fd, path))
    except RuntimeError as error:
        raise IsbertError(f"{path}: cannot read the vectors ({_faiss_reason(error, name, path)})") from None
    finally:
        os.close(fd)
    if not isinstance(index, faiss.IndexIDMap2) or index.d != dimension or index.ntotal != count:
        raise IsbertError(
            f"{path}: not the index's vectors ({index.ntotal} of dimension {index.d}; the database holds {count} of "
            f"dimension {dimension}); rebuild the index"
        )
    return index


def _through(fd: int, path: Path) -> str:
    """A name that opens the file behind ``fd`` (Linux's ``/proc/self/fd``), for readers that only take a name."""
    proc = f"/proc/self/fd/{fd}"
    return proc if os.path.exists(proc) else str(path)


def _faiss_reason(error: RuntimeError, name: str, path: Path) -> str:
    """faiss's message in one line of at most 200 characters: what follows its C++ location (the last "Error: "),
    naming ``path`` where faiss names the handle it read through."""
    return " ".join(str(error).split()).rpartition("Error: ")[2].replace(name, str(path))[:200]


def _load(connection: sqlite3.Connection, folder: Path) -> tuple[dict[str, Any], faiss.IndexIDMap2, int]:
    """The settings, the vectors and the generation, consistent with each other."""
    for _ in range(10):  # a writer may publish (and retire the file just read about) between the two reads
        meta = store.read_meta(connection, folder)
        _check_meta(meta, folder)
        generation, count, _ = store.read_state(connection, folder)
        if generation == 0:
            raise IsbertError(f"{folder}: an unfinished index; replace it with `isbert index build ... --overwrite`")
        index = _read_vectors(folder, generation, meta["dimension"], count)
        if index is not None:
            inner = faiss.downcast_index(index.index)
            if isinstance(inner, faiss.IndexIVF):
                inner.make_direct_map()  # so that a vector can be reconstructed by id (deletes)
            apply_search_params(index, meta["spec"].get("search", {}))
            return meta, index, generation
    raise IsbertError(f"{folder}: the vectors file of the current generation is missing; rebuild the index")


class SearchIndex:
    """An opened index folder: search by vector, keyword or both; add, replace, delete and sync records."""

    def __init__(
        self,
        folder: Path,
        connection: sqlite3.Connection,
        meta: dict[str, Any],
        index: faiss.IndexIDMap2,
        generation: int,
    ) -> None:
        self.folder = folder
        self._db = connection
        self.manifest = meta
        self.index = index
        self.generation = generation
        self._lock = threading.Lock()  # the connection and the swap of vectors are shared by the service's threads

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, folder: str | Path) -> SearchIndex:
        folder = Path(folder)
        if folder.is_dir() and not (folder / DATABASE).exists() and (folder / legacy.MANIFEST).exists():
            raise IsbertError(
                f"{folder} is an index of the first format; convert it once with: isbert index migrate {folder}"
            )
        connection = store.connect(folder)
        try:
            return cls(folder, connection, *_load(connection, folder))
        except BaseException:
            connection.close()
            raise

    def close(self) -> None:
        self._db.close()

    def current(self) -> faiss.IndexIDMap2:
        """The vectors of the latest committed generation: reloaded when a writer published a new one since."""
        with self._lock:
            generation, _, _ = store.read_state(self._db, self.folder)
            if generation != self.generation:
                meta, index, generation = _load(self._db, self.folder)
                if meta["fingerprint"] != self.manifest["fingerprint"] or meta["dimension"] != self.dimension:
                    raise IsbertError(
                        f"{self.folder} was rebuilt with another model since it was opened; open it again"
                    )
                self.manifest, self.index, self.generation = meta, index, generation
            return self.index

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])

    @property
    def model_ref(self) -> str:
        return str(self.manifest["model"])

    @property
    def stores_texts(self) -> bool:
        return bool(self.manifest.get("store_texts", True))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def describe(self) -> str:
        spec = self.manifest["spec"]
        search = ", ".join(f"{k}={v}" for k, v in spec.get("search", {}).items())
        with self._lock:
            files = self._db.execute("SELECT count(DISTINCT file) FROM docs").fetchone()[0]
        return (
            f"{self.folder}: {len(self)} vectors of dimension {self.dimension} from {files} files, {spec['kind']} "
            f"index ({spec['factory']}, {spec['storage']}{', ' + search if search else ''}), generation "
            f"{self.generation}, model {self.model_ref}, fingerprint {self.manifest['fingerprint']['sha256']}"
        )

    # ------------------------------------------------------------------ the model
    def check_model(self, model: SentenceTransformer, name: str | None = None) -> str | None:
        """Refuse a model whose embeddings are not the ones this index was built with; a note, or None.

        The same files (by checksum, wherever the folder now is) pass at once; an ONNX export of the index's model
        (or the model of the index's export) passes with a note, as its int8 vectors differ slightly; any other
        model must give the stored embeddings of the probe sentences. ``name`` is the path or name it was loaded
        from (it names the model in messages and gives its checksum).
        """
        label = name or "the model"
        how = (
            f"pass the index's model with --model PATH (found by its files' checksums wherever it now is), or rebuild "
            f"the index with it: isbert index build {self.folder} --model {label} --input ... --overwrite"
        )
        dimension = model.get_embedding_dimension()
        if dimension != self.dimension:
            raise IsbertError(
                f"{label} makes {dimension}-d embeddings but the index {self.folder} holds {self.dimension}-d "
                f"vectors from {self.model_ref}; {how}"
            )
        stored = self.manifest.get("model_checksums") or {}
        given = model_checksums(name)
        if stored.get("checksum") and given["checksum"] == stored["checksum"]:
            return None
        agreement = fingerprint_agreement(self.manifest["fingerprint"], model)
        if _related_by_export(stored, given):
            return (
                f"{label} and the index's model ({self.model_ref}) are the same model, one of them an ONNX export; "
                f"their vectors differ slightly (cosine {agreement:.4f} on the probe sentences), so scores may shift"
            )
        if agreement < FINGERPRINT_MIN_COSINE:
            raise IsbertError(
                f"{label} is not the model the index {self.folder} was built with ({self.model_ref}): its embeddings "
                f"of the probe sentences differ (cosine {agreement:.3f} < {FINGERPRINT_MIN_COSINE}); {how}"
            )
        return None

    # ------------------------------------------------------------------ reading
    def records(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        """The stored records (``text``, ``source``) of those ids still present."""
        wanted = [int(i) for i in ids]
        with self._lock:
            found = store.fetch_records(self._db, self.folder, wanted)
        return [{"source": found[i][0], "text": found[i][1], "chunk": found[i][2]} for i in wanted if i in found]

    def search_vectors(self, queries: np.ndarray, k: int, source: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids, each ``(len(queries), k)``; ids are -1 where fewer than ``k`` vectors (of ``source``, a
        file label or a folder prefix ending in ``/``) exist."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dimension:
            raise IsbertError(f"queries must have shape (n, {self.dimension}), got {queries.shape}")
        if not 1 <= k <= MAX_K:
            raise IsbertError(f"k must be from 1 to {MAX_K}, got {k}")
        index = self.current()
        if source is None:
            return index.search(queries, k)
        with self._lock:
            ids = store.ids_where(self._db, file=source)
        if not ids:
            return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        selector = faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))
        return index.search(queries, k, params=filtered_params(self.manifest["spec"], selector))

    def _hits(self, ranked: list[tuple[int, float]]) -> list[Hit]:
        with self._lock:
            found = store.fetch_records(self._db, self.folder, [i for i, _ in ranked])
        present = [(i, score) for i, score in ranked if i in found]  # a concurrent delete may have removed some
        return [Hit(rank, i, s, found[i][1], found[i][0], found[i][2]) for rank, (i, s) in enumerate(present, start=1)]

    def hits(self, scores: np.ndarray, ids: np.ndarray) -> list[list[Hit]]:
        return [
            self._hits([(int(i), float(s)) for s, i in zip(row_scores, row_ids, strict=True) if i >= 0])
            for row_scores, row_ids in zip(scores, ids, strict=True)
        ]

    def search_embedded(
        self, queries: list[str], vectors: np.ndarray | None, k: int, *, mode: str = "vector", source: str | None = None
    ) -> list[list[Hit]]:
        """The ``k`` best records of each query: by cosine (``vector``, ``vectors`` the queries' unit embeddings),
        by BM25 (``keyword``) or both fused by reciprocal rank (``hybrid``); within ``source`` when given."""
        check_mode(mode)
        if not 1 <= k <= MAX_K:
            raise IsbertError(f"k must be from 1 to {MAX_K}, got {k}")
        if mode != "vector" and not self.stores_texts:
            raise IsbertError(f"{self.folder} stores no texts (built with --ids-only); search it with --mode vector")
        if mode == "vector":
            return self.hits(*self.search_vectors(_given(vectors, mode), k, source))
        pool = k if mode == "keyword" else min(MAX_K, max(2 * k, HYBRID_POOL))
        ids = self.search_vectors(_given(vectors, mode), pool, source)[1] if mode == "hybrid" else None
        results = []
        for row, text in enumerate(queries):
            with self._lock:
                keyword = keyword_ranking(self._db, self.folder, text, pool, source)
            if ids is not None:
                keyword = reciprocal_rank_fusion([[int(i) for i in ids[row] if i >= 0], [i for i, _ in keyword]], k)
            results.append(self._hits(keyword[:k]))
        return results

    def search(
        self,
        model: SentenceTransformer | None,
        queries: list[str],
        k: int = 10,
        *,
        mode: str = "vector",
        source: str | None = None,
    ) -> list[list[Hit]]:
        """The ``k`` best stored texts of each query (``mode``: see :meth:`search_embedded`; ``keyword`` needs no
        model)."""
        if k < 1:
            raise IsbertError(f"k must be at least 1, got {k}")
        for number, query in enumerate(queries, start=1):
            if not query.strip():
                raise IsbertError(f"query {number} is empty")
        vectors = None if check_mode(mode) == "keyword" or model is None else embed_texts(model, queries)
        if vectors is None and mode != "keyword":
            raise IsbertError(f"a {mode} search needs the model")
        return self.search_embedded(queries, vectors, k, mode=mode, source=source)

    # ------------------------------------------------------------------ writing
    @classmethod
    def build(
        cls,
        folder: str | Path,
        model: SentenceTransformer,
        model_name: str,
        corpus: InputSpec | Sequence[InputSpec],
        *,
        options: CorpusOptions | None = None,
        kind: str = "auto",
        storage: str = "float32",
        store_texts: bool = True,
        overwrite: bool = False,
        batch_size: int = 32,
        show_progress: bool = True,
        chunking: Chunking | None = None,
        **spec_overrides: int,
    ) -> BuildReport:
        """Embed ``corpus`` (files, folders, glob patterns: :func:`isbert.inputs.expand_inputs`) and write a new
        index folder (it must not exist, or be empty, unless ``overwrite``: an index, or what a killed build left).
        ``chunking``: split long texts (:mod:`isbert.search.chunking`); later adds and syncs split the same way."""
        folder = Path(folder)
        options = options or CorpusOptions()
        _check_build_folder(folder, overwrite)
        inputs = expand_inputs(corpus)
        count = count_records(inputs, options)
        if count == 0:
            raise IsbertError(f"{describe(inputs)}: no non-empty texts to index")
        dimension = _dimension(model)
        spec = choose_spec(count, kind, storage, **spec_overrides)
        chunking = chunking or Chunking()
        plan = _Plan(inputs, options, count, EmbedStats(), batch_size, show_progress, store_texts, chunking=chunking)

        def fill(connection: sqlite3.Connection, index: faiss.Index) -> int:
            _record_files(connection, inputs)
            return _embed_into(connection, index, model, plan, 0, spec)

        meta = {**_new_meta(model, model_name, dimension, spec, store_texts), "chunking": chunking.as_meta()}
        added = _replace_folder(folder, overwrite, meta, new_vectors(dimension, spec), fill)
        return BuildReport(folder, added, added, spec, plan.stats)

    @classmethod
    def build_from_vectors(
        cls,
        folder: str | Path,
        model: SentenceTransformer,
        model_name: str,
        vectors_path: str | Path,
        corpus: InputSpec | Sequence[InputSpec] | None = None,
        *,
        options: CorpusOptions | None = None,
        kind: str = "auto",
        storage: str = "float32",
        overwrite: bool = False,
        **spec_overrides: int,
    ) -> BuildReport:
        """An index of the matrix ``isbert encode`` wrote (``vectors.npy``, its rows' sources beside it), made by
        ``model``; with ``corpus`` (the files encoded) the texts are stored too, else only each row's source."""
        folder, options = Path(folder), options or CorpusOptions()
        _check_build_folder(folder, overwrite)
        dimension = _dimension(model)
        matrix, sources = _read_encoded(Path(vectors_path), dimension)
        texts = dict(options.read(expand_inputs(corpus))) if corpus is not None else None
        rows = [row for row, source in enumerate(sources) if texts is None or source in texts]
        if not rows:
            raise IsbertError(f"{vectors_path}: no row has a text in the corpus given (are they the files encoded?)")
        spec = choose_spec(len(rows), kind, storage, **spec_overrides)
        stats = EmbedStats()

        def fill(connection: sqlite3.Connection, index: faiss.Index) -> int:
            if corpus is not None:
                _record_files(connection, expand_inputs(corpus))
            adder, next_id = VectorAdder(index, training_size(index, spec, len(rows))), 0
            for start in range(0, len(rows), CHUNK_ROWS):
                part = rows[start : start + CHUNK_ROWS]
                vectors = _unit(np.asarray(matrix[part], dtype=np.float32), Path(vectors_path), part)
                names = [sources[row] for row in part]
                chunk = Chunk(names, [texts[name] for name in names] if texts else [""] * len(names), vectors)
                next_id = _insert(connection, adder, chunk, next_id, texts is not None)
            adder.flush()
            stats.texts = next_id
            return next_id

        meta = _new_meta(model, model_name, dimension, spec, texts is not None)
        added = _replace_folder(folder, overwrite, meta, new_vectors(dimension, spec), fill)
        return BuildReport(folder, added, added, spec, stats)

    def _write(
        self, change: Callable[[sqlite3.Connection, faiss.IndexIDMap2, int], tuple[faiss.IndexIDMap2, int]]
    ) -> None:
        """One write: under the writer lock and in one transaction, ``change(connection, vectors, next_id)`` edits
        the records and returns the new vectors and next id; the next generation is published, then committed. A
        change that changed nothing (every text indexed already, a folder in sync) publishes no generation."""
        with store.writer_lock(self.folder):
            connection = store.connect(self.folder, write=True)
            try:
                with store.transaction(connection, self.folder):
                    _, index, generation = _load(connection, self.folder)
                    next_id = store.read_state(connection, self.folder)[2]
                    before, unchanged = connection.total_changes, index
                    try:
                        index, next_id = change(connection, index, next_id)
                        if connection.total_changes == before and index is unchanged:
                            return
                        _publish(connection, self.folder, index, generation + 1, next_id)
                    except BaseException:
                        (self.folder / store.vectors_name(generation + 1)).unlink(missing_ok=True)
                        raise
                store.remove_stale_vectors(self.folder, {generation, generation + 1})
            finally:
                connection.close()
        self.current()

    def add(
        self,
        model: SentenceTransformer,
        corpus: InputSpec | Sequence[InputSpec],
        *,
        options: CorpusOptions | None = None,
        batch_size: int = 32,
        show_progress: bool = True,
        model_name: str | None = None,
        replace: bool = False,
    ) -> BuildReport:
        """Add a corpus in one transaction. Records the index holds already (same ``file:line`` and text) are
        skipped; with ``replace``, the records of every file given are deleted first (an upsert by file).

        ``model_name``: where ``model`` was loaded from (see :meth:`check_model`)."""
        options = options or CorpusOptions()
        self.check_model(model, model_name)
        inputs = expand_inputs(corpus)
        count = count_records(inputs, options)
        if count == 0:
            raise IsbertError(f"{describe(inputs)}: no non-empty texts to add")
        spec = _spec_of(self.manifest)
        plan = _Plan(
            inputs, options, count, EmbedStats(), batch_size, show_progress, self.stores_texts, not replace,
            Chunking.of(self.manifest),
        )  # fmt: skip
        added = 0

        def change(
            connection: sqlite3.Connection, index: faiss.IndexIDMap2, next_id: int
        ) -> tuple[faiss.IndexIDMap2, int]:
            nonlocal added
            if replace:
                index, _ = _drop_files(connection, index, [file.label for file in inputs])
            _record_files(connection, inputs)
            after = _embed_into(connection, index, model, plan, next_id, spec)
            added = after - next_id
            return index, after

        self._write(change)
        return BuildReport(self.folder, added, len(self), spec, plan.stats)

    def delete(self, *, source: str | None = None, ids: Sequence[int] | None = None) -> int:
        """Remove the records of a file (``source``: its label as the hits show it, or a folder prefix ending in
        ``/``) or those of ``ids``; how many were removed."""
        if (source is None) == (ids is None):
            raise IsbertError("delete either by source file (--source FILE) or by id (--id ID)")
        deleted = 0

        def change(
            connection: sqlite3.Connection, index: faiss.IndexIDMap2, next_id: int
        ) -> tuple[faiss.IndexIDMap2, int]:
            nonlocal deleted
            doomed = store.ids_where(connection, file=source, ids=None if source is not None else list(ids or []))
            if not doomed:
                what = f"records of {source!r}" if source is not None else "records with those ids"
                raise IsbertError(f"{self.folder} holds no {what}; nothing was deleted")
            store.delete_records(connection, doomed)
            deleted = len(doomed)
            return without(index, doomed), next_id

        self._write(change)
        return deleted

    def sync(
        self,
        model: SentenceTransformer,
        corpus: InputSpec | Sequence[InputSpec],
        *,
        options: CorpusOptions | None = None,
        batch_size: int = 32,
        show_progress: bool = True,
        model_name: str | None = None,
    ) -> SyncReport:
        """Bring the index in line with ``corpus`` (a folder, as it was given to ``build``): files it does not hold
        are added, files whose bytes changed are replaced, files no longer there are deleted; one transaction."""
        options = options or CorpusOptions()
        self.check_model(model, model_name)
        inputs = expand_inputs(corpus)
        digests = {file.label: sha256_file(file.path) for file in inputs}
        report, spec = SyncReport(self.folder), _spec_of(self.manifest)

        def change(
            connection: sqlite3.Connection, index: faiss.IndexIDMap2, next_id: int
        ) -> tuple[faiss.IndexIDMap2, int]:
            known = store.file_hashes(connection)
            report.removed = sorted(set(known) - set(digests))
            report.changed = [f.label for f in inputs if f.label in known and known[f.label] != digests[f.label]]
            report.new = [f.label for f in inputs if f.label not in known]
            report.unchanged = len(inputs) - len(report.changed) - len(report.new)
            index, report.deleted = _drop_files(connection, index, report.removed + report.changed)
            todo = [file for file in inputs if file.label in {*report.changed, *report.new}]
            _record_files(connection, todo, digests)
            if todo:
                count = count_records(todo, options)
                plan = _Plan(
                    todo, options, count, EmbedStats(), batch_size, show_progress, self.stores_texts,
                    chunking=Chunking.of(self.manifest),
                )  # fmt: skip
                after = _embed_into(connection, index, model, plan, next_id, spec)
                report.added, next_id = after - next_id, after
            return index, next_id

        self._write(change)
        report.total = len(self)
        return report

    @classmethod
    def migrate(cls, folder: str | Path) -> BuildReport:
        """Convert an index folder of the first format (manifest, texts and offsets files) in place: the same ids,
        texts, sources and vectors in the database and a vectors file; the old files are removed once it is
        committed. A migration stopped half-way is simply run again (the old files are the index until then)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise IsbertError(f"not an index folder: {folder}")
        with store.writer_lock(folder):
            manifest = legacy.read_manifest(folder)
            if manifest is None:
                state = "already in the current format" if (folder / DATABASE).exists() else "not an index folder"
                raise IsbertError(f"{folder}: nothing to migrate ({legacy.MANIFEST} missing; {state})")
            vectors = legacy.read_vectors(folder, manifest)
            old = stored if isinstance(stored := manifest.get("spec"), dict) else {}
            spec = choose_spec(len(vectors), str(old.get("kind", "flat")), str(old.get("storage", "float32")))
            store_texts = bool(manifest.get("store_texts", True))
            keys = ("model", "model_checksums", "dimension", "max_seq_length", "fingerprint", "normalized", "metric")
            meta = {**{key: manifest[key] for key in keys if key in manifest}, **_meta_spec(spec, store_texts)}
            _check_meta(meta, folder)
            index = new_vectors(manifest["dimension"], spec)
            if not index.is_trained:
                index.train(vectors)
            store.remove_database(folder)  # what a stopped migration left; the old files are still the index
            _migrate_records(folder, manifest, meta, index, vectors)
            (folder / legacy.MANIFEST).unlink()
            for name in manifest["files"].values():
                (folder / name).unlink(missing_ok=True)
        return BuildReport(folder, len(vectors), len(vectors), spec, EmbedStats(texts=len(vectors)))


# ----------------------------------------------------------------------------------------------- write helpers
def _dimension(model: SentenceTransformer) -> int:
    dimension = model.get_embedding_dimension()
    if not dimension:
        raise IsbertError("the model does not report its embedding dimension")
    return int(dimension)


def _spec_of(meta: dict[str, Any]) -> IndexSpec:
    return IndexSpec(kind=meta["spec"]["kind"], storage=meta["spec"]["storage"])


def _meta_spec(spec: IndexSpec, store_texts: bool) -> dict[str, Any]:
    return {
        "format": store.FORMAT_VERSION,
        "store_texts": store_texts,
        "spec": {
            "kind": spec.kind,
            "storage": spec.storage,
            "factory": spec.factory_string(),
            "search": spec.search_params(),
        },
    }


def _new_meta(
    model: SentenceTransformer, model_name: str, dimension: int, spec: IndexSpec, store_texts: bool
) -> dict[str, Any]:
    return {
        "model": model_reference(model_name),
        "model_checksums": model_checksums(model_name),
        "dimension": dimension,
        "max_seq_length": model.max_seq_length,
        "fingerprint": probe_fingerprint(model),
        "normalized": True,
        "metric": "inner_product",
        **_meta_spec(spec, store_texts),
    }


def _check_build_folder(folder: Path, overwrite: bool) -> None:
    """A new or empty folder, or (with ``overwrite``) an index folder of either format or what a killed build left;
    a first-format manifest is checked here, so that a tampered one stops the build before anything changes."""
    if folder.exists() and not folder.is_dir():
        raise IsbertError(f"not a folder: {folder}")
    if (folder / DATABASE).exists() or (folder / DATABASE).is_symlink():
        if not overwrite:
            raise IsbertError(
                f"{folder} already holds an index (or one a stopped build left); add to it with `isbert index add`, "
                "or replace it with --overwrite"
            )
    elif (folder / legacy.MANIFEST).exists():
        if not overwrite:
            raise IsbertError(
                f"{folder} already holds an index; migrate it (`isbert index migrate`) or pass --overwrite"
            )
        legacy.read_manifest(folder)
    elif folder.is_dir() and any(path.name != ".lock" for path in folder.iterdir()):
        raise IsbertError(f"{folder} exists and is not an index folder; choose a new or empty folder")


def _connect_for_build(folder: Path, overwrite: bool) -> sqlite3.Connection:
    """The folder's database for a build: created fresh when absent; with ``overwrite`` an unusable one (not
    SQLite, a planted link) is removed and created again."""
    path = folder / DATABASE
    if not path.exists() and not path.is_symlink():
        return store.connect(folder, create=True, write=True)
    try:
        return store.connect(folder, write=True)
    except IsbertError:
        if not overwrite:
            raise
        store.remove_database(folder)
        return store.connect(folder, create=True, write=True)


def _replace_folder(
    folder: Path,
    overwrite: bool,
    meta: dict[str, Any],
    index: faiss.Index,
    fill: Callable[[sqlite3.Connection, faiss.Index], int],
) -> int:
    """Write a whole index in one transaction (``fill`` inserts the records and vectors, returning the next id),
    replacing what the folder held: readers of the old index keep reading it until the commit. A first build that
    fails (bad input, Ctrl-C) leaves no database, so the same command can run again; a killed one leaves a database
    without tables (``--overwrite`` replaces it)."""
    folder.mkdir(parents=True, exist_ok=True)
    old_manifest = None
    with store.writer_lock(folder):
        fresh = not (folder / DATABASE).exists() and not (folder / DATABASE).is_symlink()
        if not (folder / DATABASE).exists():
            old_manifest = legacy.read_manifest(folder)
        connection = _connect_for_build(folder, overwrite)
        try:
            try:
                previous = store.read_state(connection, folder)[0]
            except IsbertError:
                previous = 0  # a database a stopped build left
            try:
                with store.transaction(connection, folder):
                    _drop_tables(connection)
                    store.create_schema(connection, meta)
                    next_id = fill(connection, index)
                    _publish(connection, folder, index, previous + 1, next_id)
            except BaseException:
                (folder / store.vectors_name(previous + 1)).unlink(missing_ok=True)
                connection.close()
                if fresh and old_manifest is None:  # a first build that failed leaves no index (rerun as is)
                    store.remove_database(folder)
                raise
            store.remove_stale_vectors(folder, {previous, previous + 1})
        finally:
            connection.close()
        if old_manifest is not None:  # --overwrite of a first-format index: its files go once the new one is in
            (folder / legacy.MANIFEST).unlink()
            for name in old_manifest["files"].values():
                (folder / name).unlink(missing_ok=True)
    return int(index.ntotal)


def _drop_tables(connection: sqlite3.Connection) -> None:
    for statement in (
        "DROP TRIGGER IF EXISTS docs_added",
        "DROP TRIGGER IF EXISTS docs_removed",
        "DROP TABLE IF EXISTS docs_fts",
        "DROP TABLE IF EXISTS docs",
        "DROP TABLE IF EXISTS files",
        "DROP TABLE IF EXISTS state",
        "DROP TABLE IF EXISTS meta",
    ):
        connection.execute(statement)


def _given(vectors: np.ndarray | None, mode: str) -> np.ndarray:
    """The queries' vectors, which a vector or hybrid search needs (only a keyword search goes without)."""
    if vectors is None:  # search_vectors would refuse None too: an array of shape (1,) is not (n, dimension)
        raise IsbertError(f"a {mode} search needs the queries' vectors")
    return vectors


def _publish(connection: sqlite3.Connection, folder: Path, index: faiss.Index, generation: int, next_id: int) -> None:
    """Write the vectors as ``generation``'s file (a new file, renamed into place) and record the generation, in
    the open transaction: the commit that follows makes both visible at once."""
    count = connection.execute("SELECT count(*) FROM docs").fetchone()[0]
    if count != index.ntotal:
        raise IsbertError(f"{folder}: {count} records but {index.ntotal} vectors; nothing was changed")
    with atomic_open(folder / store.vectors_name(generation)) as handle:
        # the handle, never the name reopened (faiss's stubs, 1.15, omit PyCallbackIOWriter)
        faiss.write_index(index, faiss.PyCallbackIOWriter(handle.write))  # type: ignore[attr-defined]
    connection.execute(
        "UPDATE state SET generation = ?, count = ?, next_id = ? WHERE one = 1", (generation, count, next_id)
    )


def _insert(connection: sqlite3.Connection, adder: VectorAdder, chunk: Chunk, next_id: int, store_texts: bool) -> int:
    if chunk.embeddings.shape[1] != adder.index.d:
        raise IsbertError(f"{chunk.embeddings.shape[1]}-d vectors for an index of {adder.index.d}-d vectors")
    ids = store.insert_records(connection, next_id, chunk.sources, chunk.texts, store_texts)
    adder.add(chunk.embeddings, np.asarray(ids, dtype=np.int64))
    return next_id + len(ids)


def _embed_into(
    connection: sqlite3.Connection,
    index: faiss.Index,
    model: SentenceTransformer,
    plan: _Plan,
    next_id: int,
    spec: IndexSpec,
) -> int:
    """Embed ``plan``'s corpus into ``index`` and the records table (ids from ``next_id``); the next free id."""
    adder = VectorAdder(index, training_size(index, spec, plan.count))
    tokenizer = getattr(model, "tokenizer", None)

    def expand(source: str, text: str) -> Iterator[tuple[str, str]]:
        for piece_source, piece in plan.chunking.pieces(tokenizer, source, text):
            if not plan.skip or not store.is_indexed(connection, piece_source, piece):
                yield piece_source, piece

    for chunk in iter_embedded_chunks(
        model,
        plan.inputs,
        plan.options,
        total=plan.count,
        batch_size=plan.batch_size,
        stats=plan.stats,
        show_progress=plan.show_progress,
        desc="index",
        expand=expand,
    ):
        next_id = _insert(connection, adder, chunk, next_id, plan.store_texts)
    adder.flush()
    return next_id


def _record_files(
    connection: sqlite3.Connection, inputs: Sequence[InputFile], digests: dict[str, str] | None = None
) -> None:
    for file in inputs:
        digest = digests[file.label] if digests is not None else sha256_file(file.path)
        store.set_file_hash(connection, store.split_source(f"{file.label}:1")[0], digest)


def _drop_files(
    connection: sqlite3.Connection, index: faiss.IndexIDMap2, labels: list[str]
) -> tuple[faiss.IndexIDMap2, int]:
    """Delete every record of the files ``labels`` (records and vectors); the new vectors and how many went."""
    doomed = [row for label in labels for row in store.ids_where(connection, file=label)]
    if not doomed:
        return index, 0
    store.delete_records(connection, doomed)
    return without(index, doomed), len(doomed)


def _read_encoded(path: Path, dimension: int) -> tuple[np.ndarray, list[str]]:
    """The matrix ``isbert encode`` wrote (memory-mapped) and its rows' sources, checked against each other."""
    from isbert.encode import sources_path
    from isbert.io import iter_texts

    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise IsbertError(f"{path}: not a .npy matrix ({' '.join(str(error).split())[:160]})") from None
    if matrix.ndim != 2 or matrix.dtype.kind != "f" or matrix.shape[1] != dimension:
        raise IsbertError(
            f"{path}: a {matrix.dtype} matrix of shape {matrix.shape}; the model makes {dimension}-d float vectors"
        )
    listed = sources_path(path)
    if not listed.is_file():
        raise IsbertError(f"{listed}: missing; `isbert encode` writes each row's file:line there, beside the matrix")
    sources = [text for _, text in iter_texts(listed, column="source")]
    if len(sources) != len(matrix):
        raise IsbertError(f"{listed}: {len(sources)} sources for {len(matrix)} rows of {path}")
    return matrix, sources


def _unit(vectors: np.ndarray, path: Path, rows: list[int]) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    bad = np.flatnonzero(~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0))
    if len(bad):
        raise IsbertError(f"{path}: row {rows[int(bad[0])]} is zero or not finite; encode the corpus again")
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def _migrate_records(
    folder: Path, manifest: dict[str, Any], meta: dict[str, Any], index: faiss.Index, vectors: np.ndarray
) -> None:
    """The first-format records and vectors into a new database and generation 1, ids kept (row numbers)."""
    records = legacy.iter_records(folder, manifest)
    connection = store.connect(folder, create=True, write=True)
    try:
        try:
            with store.transaction(connection, folder):
                store.create_schema(connection, meta)
                for start in range(0, len(vectors), CHUNK_ROWS):
                    batch = [record for _, record in zip(range(CHUNK_ROWS), records, strict=False)]
                    sources = [record["source"] for record in batch]
                    texts = [record.get("text", "") for record in batch]
                    ids = store.insert_records(connection, start, sources, texts, bool(meta["store_texts"]))
                    part = np.ascontiguousarray(vectors[start : start + len(ids)])
                    index.add_with_ids(part, np.asarray(ids, dtype=np.int64))
                _publish(connection, folder, index, 1, len(vectors))
        except BaseException:
            (folder / store.vectors_name(1)).unlink(missing_ok=True)
            raise
    finally:
        connection.close()
