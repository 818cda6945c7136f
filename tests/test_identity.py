"""A model's checksum: the same files give the same checksum wherever they are, with or without isbert's list."""

from __future__ import annotations

import shutil
from pathlib import Path

import isbert
from isbert.identity import CHECKSUMS_FILE, folder_checksum


def test_same_files_same_checksum_anywhere(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    isbert.save(isbert.load(tiny_isbert_folder, device="cpu"), saved)
    assert (saved / CHECKSUMS_FILE).is_file()
    copy = tmp_path / "somewhere" / "else"
    shutil.copytree(saved, copy)
    assert folder_checksum(copy) == folder_checksum(saved) is not None
    (copy / CHECKSUMS_FILE).unlink()  # hashed instead of read from the list: the same checksum
    (copy / "README.md").write_text("a different card")
    (copy / "checkpoints").mkdir()
    (copy / "checkpoints" / "state.json").write_text("{}")
    assert folder_checksum(copy) == folder_checksum(saved)
    weights = next(copy.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    assert folder_checksum(copy) != folder_checksum(saved)
    assert folder_checksum("sentence-transformers/all-MiniLM-L6-v2") is None  # a hub id: no files to hash
