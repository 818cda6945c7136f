"""Index folders of the first format (before the SQLite store), read once by ``isbert index migrate``.

Layout::

    manifest.json          model reference, dimension, fingerprint, index kind, current file names
    index-000001.faiss     the faiss index (ids are row numbers)
    texts-000001.jsonl     one JSON object per vector: {"text": ..., "source": "corpus.txt:12"}
    offsets-000001.npy     byte offset of each line of the texts file

The manifest is data anyone may have edited: its file names must be the ones that format generates for its
generation, inside the folder (``confined_path``), and every record is read with a length cap.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from isbert.confined import confined_path
from isbert.errors import IsbertError, printable
from isbert.io import MAX_RECORD_BYTES

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 1 << 22


def generation_files(generation: int) -> dict[str, str]:
    return {
        "index": f"index-{generation:06d}.faiss",
        "texts": f"texts-{generation:06d}.jsonl",
        "offsets": f"offsets-{generation:06d}.npy",
    }


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest, checked: its file names must be the ones this format generates, inside the folder."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        with path.open("rb") as handle:
            manifest = json.loads(handle.read(MAX_MANIFEST_BYTES + 1)[:MAX_MANIFEST_BYTES])
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise IsbertError(f"{path}: damaged manifest ({' '.join(str(error).split())[:120]})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise IsbertError(f"{path}: unsupported index format {printable(repr(found))}")
    generation = manifest.get("generation")
    if not isinstance(generation, int) or isinstance(generation, bool) or not 0 < generation < 10**6:
        raise IsbertError(f"{path}: damaged manifest (generation {printable(repr(generation))}); rebuild the index")
    files = manifest.get("files")
    expected = generation_files(generation)
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


def read_vectors(folder: Path, manifest: dict[str, Any]) -> np.ndarray:
    """Every stored vector, in row order (decoded from the index's storage: exact for float32)."""
    try:
        index = faiss.read_index(str(folder / manifest["files"]["index"]))
    except (RuntimeError, OSError) as error:
        raise IsbertError(f"{folder}: cannot read the index files ({' '.join(str(error).split())[:200]})") from None
    if index.ntotal != manifest["count"] or index.d != manifest["dimension"]:
        raise IsbertError(f"{folder}: the index holds {index.ntotal} vectors, the manifest says {manifest['count']}")
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIVF):
        inner.make_direct_map()
    return np.asarray(inner.reconstruct_n(0, index.ntotal), dtype=np.float32)


def parse_record(line: bytes, where: str) -> dict[str, Any]:
    """One stored record (``{"source": ..., "text": ...}``), or a one-line error naming ``where``."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # nested: not a record
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("source"), str):
        raise IsbertError(f"{where}: damaged record; rebuild the index")
    if not isinstance(record.get("text", ""), str):
        raise IsbertError(f"{where}: damaged record; rebuild the index")
    return record


def iter_records(folder: Path, manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The stored records in row order, each line read with a cap of :data:`MAX_RECORD_BYTES`."""
    path = folder / manifest["files"]["texts"]
    with path.open("rb") as handle:
        for row in range(manifest["count"]):
            yield parse_record(handle.readline(MAX_RECORD_BYTES), f"{path}: record {row}")
