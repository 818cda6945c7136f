"""Evaluation harness: the paper's STS protocol (Table 1) and SentEval's transfer tasks, on any model.

Every distinct sentence of all requested tasks is encoded exactly once per model (optionally cached on disk,
keyed by the model and the text), then each task is scored from the shared embedding matrix.
"""

from __future__ import annotations

import functools
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

from isbert.atomic import atomic_open
from isbert.errors import IsbertError
from isbert.evaluation.baselines import Whitening
from isbert.evaluation.check import checksums
from isbert.evaluation.readers import load_task, read_labeled_pairs, read_lines
from isbert.evaluation.sts import check_finite, evaluate_sts
from isbert.evaluation.tasks import (
    PAIRS_TASK,
    UNLABELED_FILE,
    StsTask,
    TextVariant,
    TransferTask,
    canonical_task_names,
    resolve_data_dir,
)
from isbert.evaluation.transfer import TransferConfig, evaluate_transfer
from isbert.glove import word_coverage


class Encoder(Protocol):
    """What the harness needs from a model: sentence-transformers' ``encode``."""

    def encode(self, sentences: list[str], /, *args: Any, **kwargs: Any) -> Any: ...


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("isbert", "sentence-transformers", "transformers", "torch", "scikit-learn", "scipy", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def model_cache_key(name_or_path: str) -> str:
    """Cache key of a model: its name plus, for a local folder, the size and mtime of every file in it (weights,
    ONNX graphs, the configuration: ``max_seq_length``, pooling), so that retraining, re-exporting or reconfiguring
    the same folder does not reuse stale embeddings."""
    from isbert.model import resolve_model_name

    path = Path(resolve_model_name(name_or_path))
    parts = [str(name_or_path)]
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file():
                stat = file.stat()
                parts.append(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}")
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
        with atomic_open(shard) as handle:
            np.savez(handle, keys=np.array(keys, dtype="S64"), vectors=np.asarray(vectors))
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
    tasks: str | Iterable[str] | None = "sts",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    pairs: str | os.PathLike[str] | None = None,
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
    scored: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` on ``tasks`` and return the results.

    Args:
        model: a model name/folder/``"offline-minilm"`` (loaded with :func:`isbert.load`) or an object with
            sentence-transformers' ``encode``.
        tasks: task names and groups (``sts``, ``transfer``, ``all``), comma-separated or a list; None: only ``pairs``.
        data_dir: the data folder (else ``$ISBERT_DATA_DIR``).
        pairs: one's own scored pairs (``text1 TAB text2 TAB score`` lines), task ``pairs``, STS protocol.
        text: ``senteval`` (tokenized STS files, as in the paper's tables) or ``raw`` (original sentences).
        pooling: build a training-free baseline: ``mean``/``cls``/``first-last-mean`` over the model's encoder.
        whiten, whiten_dim, whiten_file: BERT-whitening fitted on unlabeled sentences (default: the data
            folder's SNLI sentences), keeping ``whiten_dim`` components.
        full: SentEval's full transfer protocol instead of the fast default.
        cache_dir: keep embeddings on disk, keyed by model and text.
        scored: filled with each STS-protocol task's pooled (similarities, gold scores), for a paired comparison.

    Returns:
        ``{task: {"spearman" | "accuracy": x100, ...}, "model": ..., "settings": ..., "versions": ...,
        "checksums": ..., "timing": ...}``
    """
    say = log or (lambda message: None)
    started = time.perf_counter()
    # 1. check the inputs and parse the tasks (and the whitening sentences)
    names, root, loaded, whiten_sentences, files = _inputs(model, tasks, pairs, data_dir, text, whiten, whiten_file)
    # 2. load the model
    encoder, model_label, key = _load_encoder(model, pooling, device, model_name)
    if whiten:
        model_label += f" + whitening{f' ({whiten_dim} dims)' if whiten_dim else ''}"
    loading_done = time.perf_counter()
    # 3. encode every distinct sentence once (whitened if asked)
    sentences = [s for task in loaded.values() for s in task.sentences()] + whiten_sentences
    cache = EmbeddingCache(cache_dir, key) if cache_dir is not None and key else None
    say(f"encoding {len(set(sentences))} distinct sentences ({len(sentences)} in all) for {len(loaded)} task(s)")
    coverage = _word_coverage(encoder, sentences, say)
    index, matrix, n_encoded = encode_unique(
        encoder, sentences, batch_size=batch_size, cache=cache, show_progress=show_progress
    )
    encoding_done = time.perf_counter()
    if whiten:
        matrix = Whitening.fit(matrix[[index[s] for s in whiten_sentences]], whiten_dim).transform(matrix)
    # 4. score each task from the shared matrix
    config = TransferConfig(full=full, standardize=standardize)
    embed = lambda batch: matrix[[index[s] for s in batch]]  # noqa: E731
    results, task_seconds = _score_tasks(loaded, embed, config, say, scored)
    finished = time.perf_counter()
    # 5. record what was run, on what, and how long it took
    settings: dict[str, Any] = {"tasks": names, "pairs": pairs and str(pairs), "text": text, "pooling": pooling}
    settings |= {"whiten": whiten, "whiten_dim": whiten_dim, "transfer": "full" if full else "fast"}
    settings |= {"standardize": standardize, "batch_size": batch_size, "data_dir": root and str(root)}
    timing = _timing((started, loading_done, encoding_done, finished), task_seconds, len(index), n_encoded)
    results |= {"model": model_label, "settings": settings, "versions": library_versions()}
    results |= {"checksums": checksums(files, root), "timing": timing}
    if coverage is not None:
        results["word_coverage"] = coverage.as_dict()
    return results


def _inputs(
    model: str | Encoder,
    tasks: str | Iterable[str] | None,
    pairs: str | os.PathLike[str] | None,
    data_dir: str | os.PathLike[str] | None,
    text: TextVariant,
    whiten: bool,
    whiten_file: str | os.PathLike[str] | None,
) -> tuple[list[str], Path | None, dict[str, StsTask | TransferTask], list[str], list[Path]]:
    """Every input checked and read before the model loads: the task names, the data folder, the parsed tasks, the
    whitening sentences (none unless ``whiten``) and every file read (for the checksums)."""
    if isinstance(model, str):
        from isbert.model import check_model_reference

        check_model_reference(model)
    names, root, loaded = _tasks_to_run(tasks, pairs, data_dir, text, needs_data=whiten and not whiten_file)
    whiten_path = Path(whiten_file) if whiten_file else (root or Path()) / UNLABELED_FILE
    whiten_sentences = _unlabeled_sentences(whiten_path) if whiten else []
    files = [path for task in loaded.values() for path in task.files] + ([whiten_path] if whiten else [])
    return names, root, loaded, whiten_sentences, files


def _word_coverage(encoder: Any, sentences: list[str], say: Callable[[str], None]) -> Any:
    """A word-vector model drops the words it does not know: say how many, with every score it produces."""
    coverage = word_coverage(encoder, sentences)
    if coverage is not None:
        say(coverage.summary())
    return coverage


def _timing(
    marks: tuple[float, float, float, float], task_seconds: dict[str, float], distinct: int, encoded: int
) -> dict[str, Any]:
    """Seconds spent loading, encoding, scoring and in all, from the (start, loaded, encoded, finished) marks."""
    started, loaded, encoded_at, finished = marks
    return {
        "load_seconds": round(loaded - started, 2),
        "encode_seconds": round(encoded_at - loaded, 2),
        "tasks_seconds": task_seconds,
        "total_seconds": round(finished - started, 2),
        "distinct_sentences": distinct,
        "encoded_sentences": encoded,
    }


def _tasks_to_run(
    tasks: str | Iterable[str] | None,
    pairs: str | os.PathLike[str] | None,
    data_dir: str | os.PathLike[str] | None,
    text: TextVariant,
    needs_data: bool,
) -> tuple[list[str], Path | None, dict[str, StsTask | TransferTask]]:
    """Task names, the data folder (None when only ``pairs`` are scored and nothing else needs it) and the tasks."""
    names = canonical_task_names(tasks or "sts") if tasks or pairs is None else []
    root = resolve_data_dir(data_dir) if names or needs_data else None
    return names, root, _load_tasks(names, root, text, pairs)


def _load_tasks(
    names: list[str], root: Path | None, text: TextVariant, pairs: str | os.PathLike[str] | None
) -> dict[str, StsTask | TransferTask]:
    """The data folder's tasks (``root`` is None when there are none), then one's own pairs, if given."""
    if text not in ("senteval", "raw"):
        raise IsbertError(f"unknown text variant '{text}'; valid: senteval, raw")
    loaded: dict[str, StsTask | TransferTask] = {name: load_task(name, root, text) for name in names if root}
    if pairs is not None:
        loaded[PAIRS_TASK] = read_labeled_pairs(pairs)
    return loaded


def _unlabeled_sentences(path: Path) -> list[str]:
    return [line.strip() for line in read_lines(path) if line.strip()]


def _load_encoder(
    model: str | Encoder, pooling: str | None, device: str | None, model_name: str | None
) -> tuple[Encoder, str, str]:
    """The encoder, its label in the results and its embedding-cache key (empty: no cache)."""
    if not isinstance(model, str):
        if pooling is not None:
            raise IsbertError("pooling baselines need a model name or folder, not a model object")
        return model, model_name or type(model).__name__, model_name or ""
    from isbert.model import load, pooled_encoder

    key = model_cache_key(model) + f"|pooling={pooling}"
    if pooling is not None:
        return pooled_encoder(model, pooling, device=device), f"{model} ({pooling} pooling)", key
    return load(model, device=device), model, key


def _keep(
    scored: dict[str, tuple[np.ndarray, np.ndarray]], name: str, similarity: np.ndarray, gold: np.ndarray
) -> None:
    scored[name] = (similarity, gold)


def _score_tasks(
    loaded: dict[str, StsTask | TransferTask],
    embed: Callable[[list[str]], np.ndarray],
    config: TransferConfig,
    say: Callable[[str], None],
    scored: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    results: dict[str, Any] = {}
    task_seconds: dict[str, float] = {}
    for name, task in loaded.items():
        began = time.perf_counter()
        if isinstance(task, StsTask):
            record = None if scored is None else functools.partial(_keep, scored, name)
            results[name] = evaluate_sts(task, embed, record)
        else:
            results[name] = evaluate_transfer(task, embed, config)
        task_seconds[name] = round(time.perf_counter() - began, 2)
        score = results[name].get("spearman", results[name].get("accuracy"))
        say(f"{name}: {score:.2f}")
    return results, task_seconds
