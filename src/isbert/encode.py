"""Encode text files into a float32 ``.npy`` matrix, one row per input record, in input order, and each row's
``file:line`` beside it (``NAME.sources.csv``)."""

from __future__ import annotations

import csv
import json
import logging
import os
import stat
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
from sentence_transformers import SentenceTransformer
from tqdm.auto import tqdm

from isbert.atomic import check_own, create_fresh, fsync_parent, write_json_atomic
from isbert.errors import IsbertError
from isbert.inputs import InputFile, InputSpec, describe, expand_inputs, iter_input_texts
from isbert.io import EncodingErrors, ReadStats

if TYPE_CHECKING:
    from isbert.onnx_backend import OnnxEncoder

logger = logging.getLogger(__name__)


@dataclass
class EncodeReport:
    rows: int
    dimension: int
    empty: int
    truncated: int
    stats: ReadStats
    output: Path
    file_rows: dict[str, int] = field(default_factory=dict)
    """Rows per input file (by label), in row order."""

    def summary(self) -> str:
        notes = []
        if self.empty:
            notes.append(f"{self.empty} empty texts encoded as the empty string")
        if self.truncated:
            notes.append(f"{self.truncated} texts truncated to the model's maximum length")
        skipped = sum(self.stats.skipped.get(reason, 0) for reason in self.stats.skipped if reason != "empty")
        if skipped:
            notes.append(f"{skipped} lines skipped ({self.stats.summary()})")
        if len(self.file_rows) > 1:
            spans, start = [], 0
            for label, rows in self.file_rows.items():
                spans.append(f"{label} {start}-{start + rows - 1}")
                start += rows
            notes.append("rows of " + ", ".join(spans))
        tail = f"; {'; '.join(notes)}" if notes else ""
        where = f"{self.output} (each row's file:line in {sources_path(self.output).name})"
        return f"wrote {self.rows} x {self.dimension} float32 embeddings to {where}{tail}"


def _chunks(records: Iterator[tuple[InputFile, int, str]], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for *_, text in records:
        chunk.append(text)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def count_truncated(model: SentenceTransformer | OnnxEncoder, texts: list[str]) -> int:
    """How many texts have more tokens (special tokens included) than the model keeps."""
    limit = model.max_seq_length
    tokenizer = getattr(model, "tokenizer", None)
    if not limit or tokenizer is None:
        return 0
    lengths = tokenizer(texts, add_special_tokens=True, truncation=False, return_length=True)["length"]
    return int(sum(length > limit for length in lengths))


ChunkEncoder = Callable[[Iterator[list[str]]], Iterator[np.ndarray]]


def local_chunk_encoder(model: SentenceTransformer | OnnxEncoder, *, batch_size: int, normalize: bool) -> ChunkEncoder:
    def embed(chunks: Iterator[list[str]]) -> Iterator[np.ndarray]:
        for chunk in chunks:
            yield model.encode(
                chunk,
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=normalize,
                show_progress_bar=False,
            )

    return embed


def zip_chunks(chunks: Iterator[list[str]], embed_chunks: ChunkEncoder) -> Iterator[tuple[list[str], np.ndarray]]:
    """Pair each chunk with its embeddings; the chunk encoder may read ahead (a cluster keeps several in flight)."""
    pending: deque[list[str]] = deque()

    def remember(source: Iterator[list[str]]) -> Iterator[list[str]]:
        for chunk in source:
            pending.append(chunk)
            yield chunk

    for embeddings in embed_chunks(remember(chunks)):
        yield pending.popleft(), embeddings


def _job(files: list[InputFile], model: str, shape: tuple[int, int], settings: dict[str, Any]) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one: the same input files, model, shape and settings."""
    inputs = []
    for file in files:
        status = file.path.stat()
        inputs.append({"path": str(file.path.resolve()), "size": status.st_size, "mtime_ns": status.st_mtime_ns})
    return {"inputs": inputs, "model": model, "rows": shape[0], "dimension": shape[1], **settings}


def _read_progress(progress_file: Path) -> dict[str, Any]:
    """The saved progress; empty when absent, damaged, or not a plain file of the folder (a planted link)."""
    try:
        fd = os.open(progress_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return {}
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1 or status.st_size > _PROGRESS_MAX_BYTES:
            return {}
        try:
            saved = json.loads(handle.read())
        except (ValueError, RecursionError):
            return {}
    return saved if isinstance(saved, dict) else {}


_PROGRESS_MAX_BYTES = 1 << 20  # a progress file lists the input files: a few KB


def _open_own(partial: Path) -> BinaryIO | None:
    """``partial`` opened for update when it is a plain file with no other name; else None (never a link)."""
    try:
        fd = os.open(partial, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    return os.fdopen(fd, "r+b")


def _valid_done(done: object, rows: int) -> bool:
    keys = ("written", "empty", "truncated")
    return isinstance(done, dict) and all(type(done.get(key)) is int and 0 <= done[key] <= rows for key in keys)


def _resume_or_start(
    partial: Path, progress_file: Path, job: dict[str, Any], shape: tuple[int, int]
) -> tuple[BinaryIO, dict[str, int]]:
    """The partial matrix open for update, and the counts already done by this same job; or a new partial file
    (created fresh: a link planted at its name is unlinked, never written through) with a ``.npy`` header, and
    zeros."""
    saved = _read_progress(progress_file)
    rows_bytes = shape[0] * shape[1] * np.dtype(np.float32).itemsize
    # A partial file shorter than header + all rows was not made by this job (or was cut): start over.
    if saved.get("job") == job and _valid_done(saved.get("done"), shape[0]):
        output = _open_own(partial)
        if output is not None and os.fstat(output.fileno()).st_size > rows_bytes:
            return output, saved["done"]
        if output is not None:
            output.close()
    output = os.fdopen(create_fresh(partial, read=True), "r+b")
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(output, header)  # a 2-d shape fits version 1.0's 64 KiB header
    # A sparse file of the final size; rows are then written with plain file writes, not through a memory map,
    # whose written pages would count in this process's resident memory.
    output.truncate(output.tell() + rows_bytes)
    output.flush()
    return output, {"written": 0, "empty": 0, "truncated": 0}


def sources_path(output_path: str | Path) -> Path:
    """Where :func:`encode_file` writes the rows' provenance: a CSV beside the matrix whose one column, ``source``,
    holds ``label:line`` (the label as :func:`isbert.inputs.expand_inputs` gives it); its row ``i`` is matrix row
    ``i``."""
    return Path(output_path).with_suffix(".sources.csv")


def read_sources(output_path: str | Path) -> list[str]:
    """The ``label:line`` of every row of the matrix at ``output_path``, in row order."""
    with sources_path(output_path).open(newline="", encoding="utf-8") as handle:
        return [row["source"] for row in csv.DictReader(handle)]


def _count_rows(files: list[InputFile], read: dict[str, Any], sources: Path) -> dict[str, int]:
    """Rows per file (by label), in order; each row's source is written to ``sources`` on the way (CSV quotes
    any comma, quote or line break a file name holds)."""
    rows = dict.fromkeys((file.label for file in files), 0)
    try:
        with os.fdopen(create_fresh(sources), "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["source"])
            for file, line, _ in iter_input_texts(files, **read):
                rows[file.label] += 1
                writer.writerow([f"{file.label}:{line}"])
            handle.flush()
            os.fsync(handle.fileno())
        if not sum(rows.values()):
            raise IsbertError(f"{describe(files)}: no texts to encode (empty)")
    except BaseException:
        sources.unlink(missing_ok=True)
        raise
    return rows


def _embedding_dimension(model: SentenceTransformer | OnnxEncoder) -> int:
    dimension = model.get_embedding_dimension()
    if not dimension:
        raise IsbertError("the model does not report its embedding dimension")
    return dimension


def _check_request(batch_size: int, output_path: Path) -> None:
    if batch_size < 1:
        raise IsbertError(f"--batch-size must be at least 1, got {batch_size}")
    if output_path.suffix != ".npy":
        raise IsbertError(f"the output file must end in .npy: {output_path}")


def _write_durably(output: BinaryIO, offset: int, embeddings: np.ndarray) -> None:
    """Write float32 rows at ``offset`` and fsync: the progress file written next must never get ahead of the data."""
    output.seek(offset)
    output.write(np.ascontiguousarray(embeddings, dtype=np.float32).tobytes())
    output.flush()
    os.fsync(output.fileno())


def _check_chunk(embeddings: np.ndarray, texts: int, dimension: int, written: int) -> None:
    if embeddings.shape != (texts, dimension):
        raise IsbertError(f"the model returned shape {embeddings.shape} for {texts} texts")
    if not np.isfinite(embeddings).all():
        raise IsbertError(f"the model produced NaN or infinite embeddings near row {written + 1}")


def _publish(sources_partial: Path, sources: Path, partial: Path, output_path: Path) -> None:
    """Give the finished files their names: the sources first, so that once the matrix has its name, the rows'
    sources are there too. The matrix is complete and fsynced chunk by chunk: only the rename is left to make durable.
    """
    os.replace(sources_partial, sources)
    os.replace(partial, output_path)
    fsync_parent(output_path)


def encode_file(
    model: SentenceTransformer | OnnxEncoder,
    inputs: InputSpec | Sequence[InputSpec],
    output_path: str | Path,
    *,
    text_field: str = "text",
    column: str = "text",
    batch_size: int = 32,
    normalize: bool = False,
    encoding_errors: EncodingErrors = "strict",
    chunk_size: int = 8192,
    model_id: str = "",
    embed_chunks: ChunkEncoder | None = None,
    show_progress: bool = True,
) -> EncodeReport:
    """Encode every record of ``inputs`` (files, folders, patterns: :func:`isbert.inputs.expand_inputs`) and write
    a float32 ``(rows, dim)`` array to ``output_path``, the files' rows one after the other, and each row's
    ``file:line`` to :func:`sources_path` (``vectors.npy`` -> ``vectors.sources.csv``; see :func:`read_sources`).

    Streaming (read once to count rows for the ``.npy`` header, once to encode; written chunk by chunk), so memory
    stays flat; the file gets its final name only when complete. Empty lines are kept (encoded as ""), so row ``i``
    is record ``i``; lines skipped for undecodable bytes (``encoding_errors="skip"``) have no row and are counted.

    Resumable: after every chunk the partial matrix is flushed to disk and a small progress file records how many rows
    are done. Running again with the same input files (unchanged sizes and modification times), model id and options
    continues after the last finished chunk; anything else starts over. Chunks are the same either way, so a
    resumed output equals an uninterrupted one.

    ``embed_chunks`` maps chunks to embedding matrices, in order (default: ``model.encode`` here; a Ray cluster:
    :func:`isbert.distributed.ray_chunk_encoder`); ``model`` still gives the dimension and the tokenizer.
    """
    files, output_path = expand_inputs(inputs), Path(output_path)
    _check_request(batch_size, output_path)
    read = {"text_field": text_field, "column": column, "encoding_errors": encoding_errors}
    output_path.parent.mkdir(parents=True, exist_ok=True)
    partial = output_path.with_name(f".{output_path.name}.partial")
    sources = sources_path(output_path)
    sources_partial = sources.with_name(f".{sources.name}.partial")  # written again on every run, resumed or not
    file_rows, dimension = _count_rows(files, read, sources_partial), _embedding_dimension(model)
    rows = sum(file_rows.values())
    progress_file = output_path.with_name(f".{output_path.name}.progress.json")
    settings = {"normalize": normalize, "batch_size": batch_size, "chunk_size": chunk_size, **read}
    job = _job(files, model_id or type(model).__name__, (rows, dimension), settings)
    row_bytes = dimension * np.dtype(np.float32).itemsize
    output, done = _resume_or_start(partial, progress_file, job, (rows, dimension))
    if done["written"]:
        logger.info("resuming %s after %d of %d rows", output_path, done["written"], rows)
    data_offset = os.fstat(output.fileno()).st_size - rows * row_bytes
    stats = ReadStats()
    records = iter_input_texts(files, stats=stats, **read)
    skip_chunks = done["written"] // chunk_size
    embed_chunks = embed_chunks or local_chunk_encoder(model, batch_size=batch_size, normalize=normalize)
    try:
        with tqdm(total=rows, initial=done["written"], desc="encode", unit="text", disable=not show_progress) as bar:
            # Chunks finished before an interruption are read again but not encoded.
            todo = (chunk for index, chunk in enumerate(_chunks(records, chunk_size)) if index >= skip_chunks)
            for chunk, embeddings in zip_chunks(todo, embed_chunks):
                _check_chunk(embeddings, len(chunk), dimension, done["written"])
                _write_durably(output, data_offset + done["written"] * row_bytes, embeddings)
                done = {
                    "written": done["written"] + len(chunk),
                    "empty": done["empty"] + sum(1 for text in chunk if not text.strip()),
                    "truncated": done["truncated"] + count_truncated(model, chunk),
                }
                write_json_atomic(progress_file, {"job": job, "done": done}, indent=None)
                bar.update(len(chunk))
        check_own(output.fileno(), partial)  # the name to publish is still the file written, not a swapped-in link
    except IsbertError:
        output.close()
        for leftover in (partial, progress_file, sources_partial):
            leftover.unlink(missing_ok=True)
        raise
    finally:
        output.close()
    if done["written"] != rows:
        raise IsbertError(f"{describe(files)} changed while it was being encoded ({rows} rows, then {done['written']})")
    _publish(sources_partial, sources, partial, output_path)
    progress_file.unlink(missing_ok=True)
    return EncodeReport(done["written"], dimension, done["empty"], done["truncated"], stats, output_path, file_rows)
