"""A model folder on disk: saved atomically with a checksum manifest, verified, and checked before it is opened.

:func:`save` writes a sentence-transformers folder with ``isbert_checksums.json``; :func:`verify_model_folder`
refuses a torn or changed one. A hostile folder can name a FIFO or a device ``config.json`` (opening it waits
forever), or ask in ``config.json`` for a billion hidden units (the loaders allocate the model before reading its
weights). :func:`check_model_folder` refuses both in one line: every entry must be a regular file or a folder, files
that are read whole (JSON, the tokenizer's files) have a size cap, and the sizes a config declares are capped one by
one and together. Nothing here loads a model: :mod:`isbert.model` does, and the GloVe backbone saves through here.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isbert.atomic import publishing_dir
from isbert.confined import confined_path
from isbert.errors import IsbertError
from isbert.identity import CHECKSUMS_FILE, sha256_file

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MAX_ENTRIES = 10_000
"""Files and folders in a model folder: a saved model has about twenty."""
MAX_READ_WHOLE_BYTES = 256 * 1024 * 1024
"""JSON and tokenizer files, read whole by the loaders: the largest real tokenizer.json files are tens of MB."""
READ_WHOLE = (".json", ".txt", ".model", ".vocab")
"""Suffixes of files the loaders read whole (configs, vocabularies, merges, sentencepiece models)."""

SIZE_CAPS = {
    "num_hidden_layers": 1_024,
    "num_layers": 1_024,
    "n_layer": 1_024,
    "num_attention_heads": 1_024,
    "n_head": 1_024,
    "hidden_size": 65_536,
    "d_model": 65_536,
    "n_embd": 65_536,
    "embedding_size": 65_536,
    "word_embedding_dimension": 65_536,
    "in_word_embedding_dimension": 65_536,
    "out_channels": 65_536,
    "intermediate_size": 262_144,
    "d_ff": 262_144,
    "n_inner": 262_144,
    "vocab_size": 4_194_304,
    "type_vocab_size": 65_536,
    "max_position_embeddings": 1_048_576,
    "n_positions": 1_048_576,
    "max_seq_length": 1_048_576,
}
"""Sizes a config may declare: each well above the largest released model (hidden 16,384, vocabulary ~256k,
~130k positions), so a folder that asks for more is refused before the loaders allocate it."""
MAX_PARAMETERS = 2**35
"""Parameters a config's sizes imply together (embeddings plus layers): 34 billion, 137 GB in float32."""


def check_model_folder(folder: str | os.PathLike[str]) -> None:
    """Refuse a folder holding anything but regular files and folders, files read whole beyond their cap, or a
    config asking for sizes beyond :data:`SIZE_CAPS` or :data:`MAX_PARAMETERS`; nothing is opened but regular
    files, and only JSON configs are read."""
    root = Path(folder)
    configs = []
    for path in _entries(root):
        try:  # follows a link (a Hugging Face cache snapshot links to its blobs); opens nothing
            info = os.stat(path)
        except OSError as error:
            raise IsbertError(f"{path}: {error.strerror or error}; the model folder is refused") from None
        if stat.S_ISDIR(info.st_mode):
            continue
        if not stat.S_ISREG(info.st_mode):
            raise IsbertError(f"{path}: not a regular file (a FIFO, device or socket); the model folder is refused")
        if path.suffix in READ_WHOLE and info.st_size > MAX_READ_WHOLE_BYTES:
            raise IsbertError(f"{path}: {info.st_size:,} bytes, over the cap of {MAX_READ_WHOLE_BYTES:,} for a file "
                              "read whole; the model folder is refused")  # fmt: skip
        if path.name == "config.json" or (path.name.endswith("_config.json") and "tokenizer" not in path.name):
            configs.append(path)
    for path in configs:
        check_config_sizes(path, read_model_json(path))


def _entries(root: Path) -> list[Path]:
    """Every path under ``root`` (links to folders are not walked into), at most :data:`MAX_ENTRIES`."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        found.extend(Path(folder, name) for name in (*dirs, *files))
        if len(found) > MAX_ENTRIES:
            raise IsbertError(f"{root}: more than {MAX_ENTRIES:,} files and folders; not a model folder")
    return found


def read_capped_bytes(path: Path, cap: int) -> bytes:
    """At most ``cap + 1`` bytes of ``path``: one byte more than the cap tells a file over it."""
    with open(path, "rb") as handle:
        return handle.read(cap + 1)


def read_model_json(path: Path) -> Any:
    """A JSON file of a model folder, parsed only when within :data:`MAX_READ_WHOLE_BYTES` (at most one byte more is
    read); over the cap, or not JSON, is one line."""
    data = read_capped_bytes(path, MAX_READ_WHOLE_BYTES)
    if len(data) > MAX_READ_WHOLE_BYTES:
        raise IsbertError(f"{path}: over {MAX_READ_WHOLE_BYTES:,} bytes, the cap of a file read whole; refused")
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise IsbertError(f"{path}: corrupt or truncated JSON ({error}); the model folder is damaged") from None


def read_model_config(path: Path) -> dict[str, Any]:
    """A model folder's ``config.json`` (:func:`read_model_json`), which must be a JSON object."""
    config = read_model_json(path)
    if not isinstance(config, dict):
        raise IsbertError(f"{path}: not a JSON object; the model folder is damaged")
    return config


def check_config_sizes(path: Path, config: Any) -> None:
    """Each size in ``config`` (and in the configs nested in it) within :data:`SIZE_CAPS`, and their product
    within :data:`MAX_PARAMETERS`."""
    if isinstance(config, list):
        for item in config:
            check_config_sizes(path, item)
        return
    if not isinstance(config, dict):
        return
    for key, value in config.items():
        if key in SIZE_CAPS and value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SIZE_CAPS[key]:
                raise IsbertError(f"{path}: {key} must be a whole number from 0 to {SIZE_CAPS[key]:,}, got "
                                  f"{str(value)[:40]}; the model folder is refused")  # fmt: skip
        elif isinstance(value, (dict, list)):
            check_config_sizes(path, value)
    parameters = _parameters(config)
    if parameters > MAX_PARAMETERS:
        raise IsbertError(f"{path}: its sizes imply about {parameters:,} parameters, over the cap of "
                          f"{MAX_PARAMETERS:,}; the model folder is refused")  # fmt: skip


def _size(config: dict[str, Any], *keys: str) -> int:
    values = [config.get(key) for key in keys]
    return next((v for v in values if isinstance(v, int) and not isinstance(v, bool)), 0)


def _parameters(config: dict[str, Any]) -> int:
    """About how many parameters a transformer config's sizes imply (embeddings, attention and feed-forward)."""
    hidden = _size(config, "hidden_size", "d_model", "n_embd")
    rows = _size(config, "vocab_size") + _size(config, "max_position_embeddings", "n_positions")
    layers = _size(config, "num_hidden_layers", "num_layers", "n_layer")
    inner = _size(config, "intermediate_size", "d_ff", "n_inner") or 4 * hidden
    return rows * hidden + layers * (4 * hidden * hidden + 2 * hidden * inner)


def save(model: SentenceTransformer, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Save ``model`` as a sentence-transformers folder, atomically: a crash or a full disk never leaves a
    half-written folder under ``path``, and an existing model there stays intact until the new one is complete.

    The model is written to a hidden sibling folder with a sha256 manifest of its files (``isbert_checksums.json``,
    checked by :func:`verify_model_folder`), verified, then published by :func:`isbert.atomic.publishing_dir`
    (fsynced, swapped into place in one atomic rename on Linux, the old copy removed after).
    """
    target = Path(path)
    try:
        with publishing_dir(target, "saving") as staging:
            model.save(str(staging), safe_serialization=True, **kwargs)
            files = sorted(file for file in staging.rglob("*") if file.is_file())
            checksums = {file.relative_to(staging).as_posix(): sha256_file(file) for file in files}
            (staging / CHECKSUMS_FILE).write_text(json.dumps(checksums, indent=1), encoding="utf-8")
            verify_model_folder(staging)
    except OSError as error:
        reason = "the disk is full" if error.errno == errno.ENOSPC else error.strerror or str(error)
        raise IsbertError(f"could not save the model to {target}: {reason}; nothing there was changed") from error
    return target


def verify_model_folder(folder: str | os.PathLike[str]) -> None:
    """Refuse a folder whose files are truncated or corrupt, naming the file.

    Where the folder has a checksum manifest (written by :func:`save`), every file listed must exist and match its
    sha256. Otherwise only the JSON files and the safetensors headers are read (which also checks that each file
    covers every tensor). Without this a torn file fails deep inside the loaders, or loads silently wrong.
    """
    from safetensors import SafetensorError, safe_open

    root = Path(folder)
    check_model_folder(root)
    manifest = root / CHECKSUMS_FILE
    if manifest.is_file():
        try:
            checksums = json.loads(manifest.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise IsbertError(f"{manifest}: corrupt checksum manifest ({error}); the model folder is damaged") from None
        if not isinstance(checksums, dict):
            raise IsbertError(f"{manifest}: corrupt checksum manifest (not an object); the model folder is damaged")
        for relative, expected in checksums.items():
            path = confined_path(root, relative, str(manifest))
            if not path.is_file():
                raise IsbertError(f"{path}: missing (listed in {CHECKSUMS_FILE}); the model folder is damaged")
            if sha256_file(path) != expected:
                raise IsbertError(
                    f"{path}: checksum mismatch, the file was changed or corrupted; the model folder is damaged"
                )
    for path in sorted(root.glob("*.json")) + sorted(root.glob("*/*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise IsbertError(f"{path}: corrupt or truncated JSON ({error}); the model folder is damaged") from None
    for path in sorted(root.glob("*.safetensors")) + sorted(root.glob("*/*.safetensors")):
        try:
            with safe_open(str(path), framework="pt") as handle:
                handle.keys()
        except (SafetensorError, OSError) as error:
            raise IsbertError(f"{path}: corrupt or truncated weights ({error}); the model folder is damaged") from None
