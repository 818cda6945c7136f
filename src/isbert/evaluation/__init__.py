"""Evaluation harness: the paper's STS protocol (Table 1) and SentEval's transfer tasks, on any model.

Every distinct sentence of all requested tasks is encoded exactly once per model (optionally cached on disk,
keyed by the model and the text), then each task is scored from the shared embedding matrix.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from isbert.errors import IsbertError
from isbert.evaluation.baselines import POOLINGS, Whitening, pooled_encoder
from isbert.evaluation.data import (
    ALL_TASKS,
    ENV_VAR,
    STS_TASKS,
    TRANSFER_TASKS,
    UNLABELED_FILE,
    StsTask,
    TextVariant,
    canonical_task_names,
    checksums,
    load_task,
    read_lines,
    resolve_data_dir,
)
from isbert.evaluation.sts import check_finite, evaluate_sts
from isbert.evaluation.transfer import TransferConfig, evaluate_transfer
from isbert.glove import word_coverage

__all__ = [
    "ALL_TASKS",
    "ENV_VAR",
    "POOLINGS",
    "STS_TASKS",
    "TRANSFER_TASKS",
    "EmbeddingCache",
    "Encoder",
    "TransferConfig",
    "Whitening",
    "canonical_task_names",
    "encode_unique",
    "evaluate",
    "model_fingerprint",
]


class Encoder(Protocol):
    """What the harness needs from a model: sentence-transformers' ``encode``."""

    def encode(self, sentences: list[str], **kwargs: Any) -> Any: ...


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("isbert", "sentence-transformers", "transformers", "torch", "scikit-learn", "scipy", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def model_fingerprint(name_or_path: str) -> str:
    """Cache key of a model: its name plus, for a local folder, the size and mtime of its weight files,
    so that retraining into the same folder does not reuse stale embeddings."""
    from isbert.model import resolve_model_name

    path = Path(resolve_model_name(name_or_path))
    parts = [str(name_or_path)]
    if path.is_dir():
        for weights in sorted(path.rglob("*")):
            if weights.suffix in (".safetensors", ".bin", ".pt") and weights.is_file():
                stat = weights.stat()
                parts.append(f"{weights.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


class EmbeddingCache:
    """On-disk embeddings of one model, keyed by sha256 of the text: ``<dir>/<sha256(model key)>/NNNNN.npz``.

    Each :meth:`update` appends a shard, so an interrupted run keeps what it encoded and resumes from there.
    """

    def __init__(self, directory: str | os.PathLike[str], model_key: str) -> None:
        self.folder = Path(directory).expanduser() / hashlib.sha256(model_key.encode()).hexdigest()[:32]
        self.vectors: dict[bytes, np.ndarray] = {}
        self.shards = sorted(self.folder.glob("*.npz")) if self.folder.is_dir() else []
        for shard in self.shards:
            try:
                with np.load(shard) as stored:
                    self.vectors.update(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
            except (OSError, ValueError, KeyError) as error:
                raise IsbertError(f"unreadable embedding cache {shard}: {error}; delete it") from None

    @staticmethod
    def key(text: str) -> bytes:
        """Hex digest: numpy's fixed-width bytes drop trailing NULs, so raw digests would not round-trip."""
        return hashlib.sha256(text.encode("utf-8")).hexdigest().encode("ascii")

    def get(self, text: str) -> np.ndarray | None:
        return self.vectors.get(self.key(text))

    def update(self, texts: list[str], vectors: np.ndarray) -> None:
        keys = [self.key(text) for text in texts]
        self.vectors.update(zip(keys, vectors, strict=True))
        self.folder.mkdir(parents=True, exist_ok=True)
        shard = self.folder / f"{len(self.shards):05d}.npz"
        temporary = self.folder / f"{len(self.shards):05d}.tmp.npz"
        np.savez(temporary, keys=np.array(keys, dtype="S64"), vectors=np.asarray(vectors))
        temporary.replace(shard)
        self.shards.append(shard)


def encode_unique(
    model: Encoder,
    sentences: Iterable[str],
    *,
    batch_size: int = 64,
    cache: EmbeddingCache | None = None,
    show_progress: bool = True,
    chunk_size: int = 4096,
) -> tuple[dict[str, int], np.ndarray, int]:
    """Encode each distinct sentence once; returns (row of each sentence, embedding matrix, number encoded).

    Sentences go to ``model.encode`` in chunks (sorted by length inside each chunk by sentence-transformers);
    each chunk is written to the cache as soon as it is done.
    """
    unique = list(dict.fromkeys(sentences))
    index = {text: row for row, text in enumerate(unique)}
    cached = {text: vector for text in unique if cache is not None and (vector := cache.get(text)) is not None}
    missing = [text for text in unique if text not in cached]
    parts: list[np.ndarray] = []
    with tqdm(total=len(missing), desc="Encoding", unit="sent", disable=not show_progress or not missing) as bar:
        for start in range(0, len(missing), chunk_size):
            chunk = missing[start : start + chunk_size]
            vectors = np.asarray(
                model.encode(chunk, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
            )
            if vectors.ndim != 2 or len(vectors) != len(chunk):
                raise IsbertError(f"the model returned embeddings of shape {vectors.shape} for {len(chunk)} sentences")
            check_finite(vectors, "sentence embeddings")
            if cache is not None:
                cache.update(chunk, vectors)
            parts.append(vectors)
            bar.update(len(chunk))
    fresh = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    if not unique:
        raise IsbertError("no sentences to encode")
    dim = fresh.shape[1] if missing else len(next(iter(cached.values())))
    matrix = np.zeros((len(unique), dim), dtype=np.float32)
    fresh_rows = {text: i for i, text in enumerate(missing)}
    for text, row in index.items():
        matrix[row] = cached[text] if text in cached else fresh[fresh_rows[text]]
    return index, matrix, len(missing)


def evaluate(
    model: str | Encoder,
    tasks: str | Iterable[str] = "sts",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    text: TextVariant = "senteval",
    pooling: str | None = None,
    whiten: bool = False,
    whiten_dim: int | None = None,
    whiten_file: str | os.PathLike[str] | None = None,
    full: bool = False,
    standardize: bool = False,
    batch_size: int = 64,
    cache_dir: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
    device: str | None = None,
    show_progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` on ``tasks`` and return the results.

    Args:
        model: a model name/folder/``"offline-minilm"`` (loaded with :func:`isbert.load`) or an object with
            sentence-transformers' ``encode``.
        tasks: task names and groups (``sts``, ``transfer``, ``all``), a comma-separated string or a list.
        data_dir: the data folder (else ``$ISBERT_DATA_DIR``).
        text: ``senteval`` (tokenized STS files, as in the paper's tables) or ``raw`` (original sentences).
        pooling: build a training-free baseline: ``mean``/``cls``/``first-last-mean`` over the model's encoder.
        whiten, whiten_dim, whiten_file: BERT-whitening fitted on unlabeled sentences (default: the data
            folder's SNLI sentences), keeping ``whiten_dim`` components.
        full: SentEval's full transfer protocol instead of the fast default.
        cache_dir: keep embeddings on disk, keyed by model and text.

    Returns:
        ``{task: {"spearman" | "accuracy": x100, ...}, "model": ..., "settings": ..., "versions": ...,
        "checksums": ..., "timing": ...}``
    """
    say = log or (lambda message: None)
    started = time.perf_counter()
    if isinstance(model, str):
        from isbert.model import check_model_reference

        check_model_reference(model)
    names = canonical_task_names(tasks)
    root = resolve_data_dir(data_dir)
    if text not in ("senteval", "raw"):
        raise IsbertError(f"unknown text variant '{text}'; valid: senteval, raw")
    loaded = {name: load_task(name, root, text) for name in names}
    files = [path for task in loaded.values() for path in task.files]

    whiten_sentences: list[str] = []
    if whiten:
        whiten_path = Path(whiten_file) if whiten_file else root / UNLABELED_FILE
        whiten_sentences = [line.strip() for line in read_lines(whiten_path) if line.strip()]
        files.append(whiten_path)

    if isinstance(model, str):
        model_label = model if pooling is None else f"{model} ({pooling} pooling)"
        key = model_fingerprint(model) + f"|pooling={pooling}"
        if pooling is not None:
            encoder: Encoder = pooled_encoder(model, pooling, device=device)
        else:
            from isbert.model import load

            encoder = load(model, device=device)
    else:
        if pooling is not None:
            raise IsbertError("pooling baselines need a model name or folder, not a model object")
        encoder = model
        model_label = model_name or type(model).__name__
        key = model_name or ""
    if whiten:
        model_label += f" + whitening{f' ({whiten_dim} dims)' if whiten_dim else ''}"
    loading_done = time.perf_counter()

    sentences = [s for task in loaded.values() for s in task.sentences()] + whiten_sentences
    cache = EmbeddingCache(cache_dir, key) if cache_dir is not None and key else None
    say(f"encoding {len(set(sentences))} distinct sentences ({len(sentences)} in all) for {len(names)} task(s)")
    # A word-vector model drops the words it does not know: say how many, with every score it produces.
    coverage = word_coverage(encoder, sentences)
    if coverage is not None:
        say(coverage.summary())
    index, matrix, n_encoded = encode_unique(
        encoder, sentences, batch_size=batch_size, cache=cache, show_progress=show_progress
    )
    encoding_done = time.perf_counter()
    if whiten:
        whitening = Whitening.fit(matrix[[index[s] for s in whiten_sentences]], whiten_dim)
        matrix = whitening.transform(matrix)

    def embed(batch: list[str]) -> np.ndarray:
        return matrix[[index[s] for s in batch]]

    config = TransferConfig(full=full, standardize=standardize)
    results: dict[str, Any] = {}
    task_seconds: dict[str, float] = {}
    for name, task in loaded.items():
        began = time.perf_counter()
        results[name] = (
            evaluate_sts(task, embed) if isinstance(task, StsTask) else evaluate_transfer(task, embed, config)
        )
        task_seconds[name] = round(time.perf_counter() - began, 2)
        score = results[name].get("spearman", results[name].get("accuracy"))
        say(f"{name}: {score:.2f}")
    finished = time.perf_counter()
    results.update(
        {
            "model": model_label,
            "settings": {
                "tasks": names,
                "text": text,
                "pooling": pooling,
                "whiten": whiten,
                "whiten_dim": whiten_dim,
                "transfer": "full" if full else "fast",
                "standardize": standardize,
                "batch_size": batch_size,
                "data_dir": str(root),
            },
            **({"word_coverage": coverage.as_dict()} if coverage is not None else {}),
            "versions": library_versions(),
            "checksums": checksums(files, root),
            "timing": {
                "load_seconds": round(loading_done - started, 2),
                "encode_seconds": round(encoding_done - loading_done, 2),
                "tasks_seconds": task_seconds,
                "total_seconds": round(finished - started, 2),
                "distinct_sentences": len(index),
                "encoded_sentences": n_encoded,
            },
        }
    )
    return results
