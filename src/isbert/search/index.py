"""A semantic-search index folder: a faiss index, the texts it returns, and the identity of the model behind it.

Layout of an index folder::

    manifest.json          model reference, dimension, model fingerprint, index kind, current file names
    index-000001.faiss     the faiss index (inner product over unit vectors = cosine similarity)
    texts-000001.jsonl     one JSON object per vector: {"text": ..., "source": "corpus.txt:12"}
    offsets-000001.npy     byte offset of each line of the texts file, so a hit is read without loading all texts

Why a manifest with generations: adding to an index writes a complete new generation of files next to the old
one and then replaces ``manifest.json`` in one ``os.replace``; a reader sees either the old index or the new one,
and a crash or error mid-way leaves the old index intact. Old generation files are removed afterwards.

Why a fingerprint: vectors from two different models live in unrelated spaces, and searching one with the other
returns confident nonsense. The manifest keeps the embeddings of a few fixed probe sentences; a model whose probe
embeddings differ is refused. It also keeps the checksums of the model's files (:mod:`isbert.identity`), so the
model is recognised after it moved (the recorded path is only where to look first) and so is its ONNX export.
Indexes written before the checksums have only the path and the probes, and are read the same way.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import shutil
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from sentence_transformers import SentenceTransformer

from isbert.atomic import atomic_file, atomic_open, create_fresh, write_json_atomic
from isbert.confined import confined_path
from isbert.errors import IsbertError, printable
from isbert.inputs import InputFile, describe, expand_inputs
from isbert.search.corpus import Chunk, CorpusOptions, EmbedStats, count_records, embed_texts, iter_embedded_chunks

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
Kind = Literal["auto", "flat", "hnsw", "ivf"]
Storage = Literal["float32", "float16", "int8"]
KINDS: tuple[str, ...] = ("auto", "flat", "hnsw", "ivf")
STORAGES: tuple[str, ...] = ("float32", "float16", "int8")
AUTO_APPROXIMATE_FROM = 200_000
"""``auto`` uses exact search below this many vectors (a flat scan of 200k x 384 takes ~10 ms) and IVF above."""

PROBE_SENTENCES = (
    "A man is playing a guitar on the street.",
    "The stock market fell sharply today.",
    "Two dogs are running through a snowy field.",
    "How do I reset my password?",
)
FINGERPRINT_MIN_COSINE = 0.999
"""Probe embeddings of the same model agree to ~1e-6 across runs and BLAS builds; other models are far below this."""

MAX_RECORD_BYTES = 1 << 24
"""A stored record is one text and its source; reading stops here even if a damaged file has no line breaks."""

_SQ = {"float32": "Flat", "float16": "SQfp16", "int8": "SQ8"}


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


# ------------------------------------------------------------------------------------------------- faiss indexes
@dataclass
class IndexSpec:
    """Which faiss index to build and how to search it."""

    kind: str = "flat"
    storage: str = "float32"
    nlist: int = 0
    nprobe: int = 0
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64

    def factory_string(self) -> str:
        if self.storage not in _SQ:
            raise IsbertError(f"unknown storage {self.storage!r}; choose one of {', '.join(STORAGES)}")
        if self.kind == "flat":
            return _SQ[self.storage]
        if self.kind == "hnsw":
            return f"HNSW{self.hnsw_m}" + ("" if self.storage == "float32" else f"_{_SQ[self.storage]}")
        if self.kind == "ivf":
            return f"IVF{self.nlist},{_SQ[self.storage]}"
        raise IsbertError(f"unknown index kind {self.kind!r}; choose one of {', '.join(KINDS)}")

    def search_params(self) -> dict[str, int]:
        if self.kind == "hnsw":
            return {"efSearch": self.ef_search}
        if self.kind == "ivf":
            return {"nprobe": self.nprobe}
        return {}


def choose_spec(count: int, kind: str = "auto", storage: str = "float32", **overrides: int) -> IndexSpec:
    """Pick the index for ``count`` vectors: exact (flat) for small corpora, IVF for large ones, unless forced.

    IVF gets ``nlist ~ sqrt(n)`` lists (1000 for 1M vectors: training and assignment stay under a minute on two
    cores) and probes 1/16 of them (at least 8); see benchmarks/search_scale.py for recall and latency. HNSW needs
    no training and answers fastest, but builds slowly (minutes per million vectors on a small machine).
    """
    if kind not in KINDS:
        raise IsbertError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "auto":
        kind = "flat" if count < AUTO_APPROXIMATE_FROM else "ivf"
    spec = IndexSpec(kind=kind, storage=storage)
    if kind == "ivf":
        spec.nlist = max(1, min(int(math.sqrt(max(count, 1))), count // 39 or 1, 65536))
        spec.nprobe = min(spec.nlist, max(8, spec.nlist // 16))
    for key, value in overrides.items():
        if value:
            setattr(spec, key, int(value))
    spec.factory_string()  # validate early
    return spec


def new_faiss_index(dimension: int, spec: IndexSpec) -> faiss.Index:
    index = faiss.index_factory(dimension, spec.factory_string(), faiss.METRIC_INNER_PRODUCT)
    if spec.kind == "hnsw":
        faiss.downcast_index(index).hnsw.efConstruction = spec.ef_construction
    apply_search_params(index, spec.search_params())
    return index


def apply_search_params(index: faiss.Index, params: dict[str, int]) -> None:
    space = faiss.ParameterSpace()
    for name, value in params.items():
        space.set_index_parameter(index, name, value)


def training_size(index: faiss.Index, spec: IndexSpec, count: int) -> int:
    """How many vectors to collect before training (0 when the index needs no training)."""
    if index.is_trained:
        return 0
    wanted = max(spec.nlist * 40, 20_000) if spec.kind == "ivf" else 20_000
    return min(count, wanted)


class _Adder:
    """Feed vectors into a (possibly untrained) faiss index: the first ``train_size`` vectors train it."""

    def __init__(self, index: faiss.Index, train_size: int) -> None:
        self.index = index
        self.train_size = train_size
        self.pending: list[np.ndarray] = []
        self.pending_rows = 0

    def add(self, vectors: np.ndarray) -> None:
        if self.index.is_trained:
            self.index.add(vectors)
            return
        self.pending.append(vectors)
        self.pending_rows += len(vectors)
        if self.pending_rows >= self.train_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        sample = np.concatenate(self.pending)
        if not self.index.is_trained:
            if len(sample) < 1:
                raise IsbertError("no vectors to train the index on")
            self.index.train(sample)
        self.index.add(sample)
        self.pending, self.pending_rows = [], 0


# ---------------------------------------------------------------------------------------------- the index folder
@dataclass
class Hit:
    """One search result: rank from 1, vector id (row in the index), cosine score, stored text and source."""

    rank: int
    id: int
    score: float
    text: str | None
    source: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "id": self.id, "score": self.score, "text": self.text, "source": self.source}


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


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One writer at a time per index folder (an advisory lock; readers never wait).

    The lock file is opened without following a symlink and must have no other name, so a planted ``.lock`` link
    (symbolic or hard) cannot create, touch or lock a file elsewhere. Nothing is ever written to it.
    """
    try:
        fd = os.open(folder / ".lock", os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise IsbertError(f"{folder / '.lock'} is a link leading outside the index; refused") from None
        raise
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
            raise IsbertError(f"{folder / '.lock'} is not a plain file of the index (a hard link or device); refused")
        fcntl.flock(fd, fcntl.LOCK_EX)
        _remove_stale_partials(folder)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _remove_stale_partials(folder: Path) -> None:
    """Temporary files a killed writer left (``.NAME.XXXX.partial``, see :func:`isbert.atomic.atomic_file`); only
    the lock holder writes them, so under the lock none is in use. Plain files only: a link is unlinked, never
    followed."""
    for leftover in folder.glob(".*.partial"):
        if leftover.is_file() or leftover.is_symlink():
            leftover.unlink(missing_ok=True)


def _generation_files(generation: int) -> dict[str, str]:
    return {
        "index": f"index-{generation:06d}.faiss",
        "texts": f"texts-{generation:06d}.jsonl",
        "offsets": f"offsets-{generation:06d}.npy",
    }


class _TextWriter:
    """Write a generation's texts file, created fresh (a link planted at its name is unlinked, never followed):
    first the previous generation's records (``previous``), then new ones, remembering where each line starts."""

    def __init__(
        self, path: Path, offsets: list[int] | None = None, store_texts: bool = True, previous: Path | None = None
    ) -> None:
        self.handle = os.fdopen(create_fresh(path), "wb")
        if previous is not None:
            with previous.open("rb") as source:  # confined to the folder when the index was opened
                shutil.copyfileobj(source, self.handle)
        self.position = self.handle.tell()
        self.offsets = offsets if offsets is not None else []
        self.store_texts = store_texts

    def write(self, chunk: Chunk) -> None:
        for source, text in zip(chunk.sources, chunk.texts, strict=True):
            record: dict[str, Any] = {"source": source}
            if self.store_texts:
                record["text"] = text
            data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
            self.offsets.append(self.position)
            self.handle.write(data)
            self.position += len(data)

    def close(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()


class SearchIndex:
    """An opened index folder: search vectors or texts, read the stored texts, append a corpus atomically."""

    def __init__(self, folder: Path, manifest: dict[str, Any], index: faiss.Index, offsets: np.ndarray) -> None:
        self.folder = folder
        self.manifest = manifest
        self.index = index
        self.offsets = offsets
        self._texts_path = folder / manifest["files"]["texts"]

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, folder: str | Path) -> SearchIndex:
        folder = Path(folder)
        manifest = _read_manifest(folder)
        if manifest is None:
            raise IsbertError(f"not an index folder (no {MANIFEST}): {folder}; build one with `isbert index build`")
        files = manifest["files"]
        try:
            index = faiss.read_index(str(folder / files["index"]))
            offsets = np.load(folder / files["offsets"], allow_pickle=False)
        except (RuntimeError, OSError, ValueError) as error:
            raise IsbertError(f"{folder}: cannot read the index files ({' '.join(str(error).split())[:200]})") from None
        if offsets.ndim != 1 or offsets.dtype != np.int64:
            raise IsbertError(f"{folder / files['offsets']}: not a list of text offsets; rebuild the index")
        if index.ntotal != len(offsets) or index.ntotal != manifest["count"]:
            raise IsbertError(
                f"{folder}: index holds {index.ntotal} vectors but {len(offsets)} texts ({manifest['count']} in the "
                "manifest); rebuild it"
            )
        apply_search_params(index, manifest["spec"].get("search", {}))
        return cls(folder, manifest, index, offsets)

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])

    @property
    def model_ref(self) -> str:
        return str(self.manifest["model"])

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def describe(self) -> str:
        spec = self.manifest["spec"]
        search = ", ".join(f"{k}={v}" for k, v in spec.get("search", {}).items())
        return (
            f"{self.folder}: {len(self)} vectors of dimension {self.dimension}, {spec['kind']} index "
            f"({spec['factory']}, {spec['storage']}{', ' + search if search else ''}), model {self.model_ref}, "
            f"fingerprint {self.manifest['fingerprint']['sha256']}"
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
        """The stored records (``text``, ``source``) of vector ids, read by offset."""
        out = []
        with self._texts_path.open("rb") as handle:
            for row in ids:
                handle.seek(max(0, int(self.offsets[row])))
                try:
                    record = json.loads(handle.readline(MAX_RECORD_BYTES))
                except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # nested: not a record
                    record = None
                if not isinstance(record, dict):
                    raise IsbertError(f"{self._texts_path}: damaged record for vector {row}; rebuild the index")
                out.append(record)
        return out

    def search_vectors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids, each ``(len(queries), k)``; ids are -1 where fewer than ``k`` vectors exist."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dimension:
            raise IsbertError(f"queries must have shape (n, {self.dimension}), got {queries.shape}")
        return self.index.search(queries, k)

    def hits(self, scores: np.ndarray, ids: np.ndarray) -> list[list[Hit]]:
        results: list[list[Hit]] = []
        for row_scores, row_ids in zip(scores, ids, strict=True):
            valid = [(float(s), int(i)) for s, i in zip(row_scores, row_ids, strict=True) if i >= 0]
            records = self.records(i for _, i in valid)
            results.append(
                [
                    Hit(rank, i, s, record.get("text"), record.get("source"))
                    for rank, ((s, i), record) in enumerate(zip(valid, records, strict=True), start=1)
                ]
            )
        return results

    def search(self, model: SentenceTransformer, queries: list[str], k: int = 10) -> list[list[Hit]]:
        """The ``k`` nearest stored texts of each query (cosine similarity, best first)."""
        if k < 1:
            raise IsbertError(f"k must be at least 1, got {k}")
        for number, query in enumerate(queries, start=1):
            if not query.strip():
                raise IsbertError(f"query {number} is empty")
        scores, ids = self.search_vectors(embed_texts(model, queries), k)
        return self.hits(scores, ids)

    # ------------------------------------------------------------------ writing
    @classmethod
    def build(
        cls,
        folder: str | Path,
        model: SentenceTransformer,
        model_name: str,
        corpus: str | Path | Sequence[str | Path],
        *,
        options: CorpusOptions | None = None,
        kind: str = "auto",
        storage: str = "float32",
        store_texts: bool = True,
        overwrite: bool = False,
        batch_size: int = 32,
        show_progress: bool = True,
        **spec_overrides: int,
    ) -> BuildReport:
        """Embed ``corpus`` (files, folders, glob patterns: :func:`isbert.inputs.expand_inputs`) and write a new
        index folder (it must not exist, or be empty, unless ``overwrite``)."""
        folder = Path(folder)
        options = options or CorpusOptions()
        _check_build_folder(folder, overwrite)
        inputs = expand_inputs(corpus)
        count = count_records(inputs, options)
        if count == 0:
            raise IsbertError(f"{describe(inputs)}: no non-empty texts to index")
        dimension = model.get_embedding_dimension()
        if not dimension:
            raise IsbertError("the model does not report its embedding dimension")
        spec = choose_spec(count, kind, storage, **spec_overrides)
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder):
            try:
                previous = _read_manifest(folder)
            except IsbertError as error:
                raise IsbertError(
                    f"{error}; --overwrite removes only the files a sound manifest names, so delete {folder} "
                    "yourself to start over"
                ) from None
            generation = (previous["generation"] + 1) if previous else 1
            manifest = _new_manifest(generation, model, model_name, dimension, spec, store_texts)
            stats = EmbedStats()
            job = _EmbedJob(model, inputs, options, count, stats, batch_size, show_progress, store_texts)
            added = _write_generation(folder, manifest, new_faiss_index(dimension, spec), [], spec, job)
            if previous:
                _remove_generation(folder, previous)
        return BuildReport(folder, added, added, spec, stats)

    def add(
        self,
        model: SentenceTransformer,
        corpus: str | Path | Sequence[str | Path],
        *,
        options: CorpusOptions | None = None,
        batch_size: int = 32,
        show_progress: bool = True,
        model_name: str | None = None,
    ) -> BuildReport:
        """Append a corpus: new generation files are written in full, then the manifest is swapped atomically.

        ``model_name``: where ``model`` was loaded from (see :meth:`check_model`)."""
        options = options or CorpusOptions()
        self.check_model(model, model_name)
        inputs = expand_inputs(corpus)
        count = count_records(inputs, options)
        if count == 0:
            raise IsbertError(f"{describe(inputs)}: no non-empty texts to add")
        with _locked(self.folder):
            current = _read_manifest(self.folder)
            if current is None or current["generation"] != self.manifest["generation"]:
                raise IsbertError(f"{self.folder} changed since it was opened; open it again and retry")
            generation = current["generation"] + 1
            manifest = {**current, "generation": generation, "files": _generation_files(generation)}
            spec = IndexSpec(kind=current["spec"]["kind"], storage=current["spec"]["storage"])
            stats = EmbedStats()
            store_texts = bool(current.get("store_texts", True))
            job = _EmbedJob(model, inputs, options, count, stats, batch_size, show_progress, store_texts)
            try:
                added = _write_generation(
                    self.folder, manifest, faiss.clone_index(self.index), self.offsets.tolist(), spec, job,
                    previous_texts=self._texts_path,
                )  # fmt: skip
            except BaseException:
                _remove_generation(self.folder, manifest)
                raise
            _remove_generation(self.folder, current)
        reopened = SearchIndex.open(self.folder)
        self.manifest, self.index, self.offsets = reopened.manifest, reopened.index, reopened.offsets
        self._texts_path = reopened._texts_path
        return BuildReport(self.folder, added, len(self), spec, stats)


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest, checked: its file names must be the ones this module generates, inside the folder."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise IsbertError(f"{path}: damaged manifest ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise IsbertError(f"{path}: unsupported index format {found!r}")
    generation = manifest.get("generation")
    if not isinstance(generation, int) or isinstance(generation, bool) or not 0 < generation < 10**6:
        raise IsbertError(f"{path}: damaged manifest (generation {generation!r}); rebuild the index")
    files = manifest.get("files")
    expected = _generation_files(generation)
    if not isinstance(files, dict) or set(files) != set(expected):
        raise IsbertError(f"{path}: damaged manifest (its 'files' entry is not a generation's files); rebuild it")
    for role, name in files.items():
        confined_path(folder, name, str(path))
        if name != expected[role]:
            raise IsbertError(
                f"{path}: {role} file {printable(str(name))!r} is not the name this index generates "
                f"({expected[role]!r}); refused (the manifest was tampered with)"
            )
    for key in ("count", "dimension"):
        if not isinstance(manifest.get(key), int) or isinstance(manifest.get(key), bool) or manifest[key] < 0:
            raise IsbertError(f"{path}: damaged manifest ({key} {manifest.get(key)!r}); rebuild the index")
    return manifest


def _remove_generation(folder: Path, manifest: dict[str, Any]) -> None:
    for name in manifest["files"].values():
        (folder / name).unlink(missing_ok=True)
        (folder / f".{name}.partial").unlink(missing_ok=True)


@dataclass
class _EmbedJob:
    """What one generation embeds, and how: the model, the corpus and how it is read, its size, the statistics to
    fill, the batch size, whether to show progress and whether to store the texts."""

    model: SentenceTransformer
    inputs: Sequence[InputFile]
    options: CorpusOptions
    count: int
    stats: EmbedStats
    batch_size: int
    show_progress: bool
    store_texts: bool


def _check_build_folder(folder: Path, overwrite: bool) -> None:
    if (folder / MANIFEST).exists() and not overwrite:
        raise IsbertError(f"{folder} already holds an index; add to it with `isbert index add` or pass --overwrite")
    if folder.exists() and not folder.is_dir():
        raise IsbertError(f"not a folder: {folder}")
    if folder.is_dir() and not (folder / MANIFEST).exists() and any(p.name != ".lock" for p in folder.iterdir()):
        raise IsbertError(f"{folder} exists and is not an index folder; choose a new or empty folder")


def _new_manifest(
    generation: int, model: SentenceTransformer, model_name: str, dimension: int, spec: IndexSpec, store_texts: bool
) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "generation": generation,
        "model": model_reference(model_name),
        "model_checksums": model_checksums(model_name),
        "dimension": dimension,
        "max_seq_length": model.max_seq_length,
        "fingerprint": probe_fingerprint(model),
        "normalized": True,
        "metric": "inner_product",
        "store_texts": store_texts,
        "count": 0,
        "spec": {
            "kind": spec.kind,
            "storage": spec.storage,
            "factory": spec.factory_string(),
            "search": spec.search_params(),
        },
        "files": _generation_files(generation),
    }


def _write_generation(
    folder: Path,
    manifest: dict[str, Any],
    index: faiss.Index,
    offsets: list[int],
    spec: IndexSpec,
    job: _EmbedJob,
    previous_texts: Path | None = None,
) -> int:
    """Embed ``job.inputs`` into ``index`` and the generation's files (new files: a planted link is replaced), then
    publish them by replacing the manifest; ``previous_texts``: the records the new texts file starts with."""
    files = manifest["files"]
    before = index.ntotal
    adder = _Adder(index, training_size(index, spec, job.count))
    writer = _TextWriter(folder / files["texts"], offsets, job.store_texts, previous_texts)
    try:
        try:
            for chunk in iter_embedded_chunks(
                job.model,
                job.inputs,
                job.options,
                total=job.count,
                batch_size=job.batch_size,
                stats=job.stats,
                show_progress=job.show_progress,
                desc="index",
            ):
                if chunk.embeddings.shape[1] != manifest["dimension"]:
                    raise IsbertError(f"the model returned {chunk.embeddings.shape[1]}-d embeddings")
                adder.add(chunk.embeddings)
                writer.write(chunk)
            adder.flush()
        finally:
            writer.close()
        if index.ntotal != len(writer.offsets):
            raise IsbertError(f"{describe(job.inputs)} changed while it was being indexed")
        with atomic_file(folder / files["index"]) as partial:
            faiss.write_index(index, str(partial))
        with atomic_open(folder / files["offsets"]) as handle:
            np.save(handle, np.asarray(writer.offsets, dtype=np.int64))
        manifest["count"] = int(index.ntotal)
        write_json_atomic(folder / MANIFEST, manifest, indent=2)
    except BaseException:
        _remove_generation(folder, manifest)
        raise
    return int(index.ntotal - before)
