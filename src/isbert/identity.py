"""Which model a folder holds, by the checksums of its files: a model moved or copied elsewhere is still itself.

An index records this checksum with its model's path (:mod:`isbert.search.index`), and an ONNX export records the
checksum of the model it was exported from (:mod:`isbert.onnx_backend`), so that an index built with a model
recognises the model in its new place and its ONNX export.

The checksum covers the weights, configuration and vocabulary files of the folder and of its module sub-folders
(``*.safetensors``, ``*.onnx``, ``*.json``, ``*.txt``, ``*.model``), not the model card or a run's checkpoints.
Where isbert saved the model, the sha256 of each file is read from ``isbert_checksums.json`` (which loading verifies)
instead of hashing the weights again; a copy without that file gets the same checksum by hashing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CHECKSUMS_FILE = "isbert_checksums.json"
"""The per-file sha256 list :func:`isbert.model.save` writes and :func:`isbert.model.load` verifies."""

IDENTITY_SUFFIXES = (".safetensors", ".onnx", ".json", ".txt", ".model")
_SKIPPED = {CHECKSUMS_FILE, "README.md"}
_SKIPPED_FOLDERS = {"checkpoints"}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, read in 1 MB blocks (the one file hasher of the project)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _counts(relative: str) -> bool:
    parts = relative.split("/")
    return (
        len(parts) <= 2
        and parts[-1] not in _SKIPPED
        and not any(part.startswith(".") for part in parts)
        and not (len(parts) == 2 and parts[0] in _SKIPPED_FOLDERS)
        and parts[-1].endswith(IDENTITY_SUFFIXES)
    )


def _listed(folder: Path) -> dict[str, str] | None:
    """The sha256 list isbert saved with the model, or None when there is none (or it is not a list of names)."""
    try:
        listed = json.loads((folder / CHECKSUMS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(listed, dict) or not all(isinstance(v, str) for v in listed.values()):
        return None
    return {name: sha for name, sha in listed.items() if _counts(name)}


def folder_checksum(folder: str | os.PathLike[str]) -> str | None:
    """The model checksum of a local folder; None for anything that is not a folder (a hub id)."""
    root = Path(folder)
    if not root.is_dir():
        return None
    entries = _listed(root)
    if entries is None:
        files = [*root.glob("*"), *root.glob("*/*")]
        entries = {
            path.relative_to(root).as_posix(): sha256_file(path)
            for path in sorted(files)
            if path.is_file() and _counts(path.relative_to(root).as_posix())
        }
    if not entries:
        return None
    text = "".join(f"{name}\t{sha}\n" for name, sha in sorted(entries.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
