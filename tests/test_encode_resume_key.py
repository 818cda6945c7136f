"""What ``isbert encode`` resumes on: an interrupted run continues only when every setting that shapes the output is
the same (the input files, the model id, normalization, batch and chunk size, how records are read); a setting that
does not (the progress bar) resumes. A fake model counts the chunks it encodes, so a restart and a resume differ."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from isbert.encode import encode_file

ROWS, CHUNK = 20, 4  # five chunks; the first run is interrupted on its third


class CountingModel:
    """Deterministic 4-d vectors from the text; raises KeyboardInterrupt on the ``interrupt_on``-th chunk."""

    max_seq_length = None  # no tokenizer: nothing counted as truncated

    def __init__(self, interrupt_on: int | None = None) -> None:
        self.interrupt_on, self.calls = interrupt_on, 0

    def get_embedding_dimension(self) -> int:
        return 4

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        self.calls += 1
        if self.calls == self.interrupt_on:
            raise KeyboardInterrupt
        vectors = np.array([[len(t), t.count("a"), t.count("e"), 1.0] for t in texts], dtype=np.float32)
        if kwargs.get("normalize_embeddings"):
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors


BASE: dict[str, Any] = {
    "text_field": "text",
    "batch_size": 32,
    "normalize": False,
    "encoding_errors": "strict",
    "chunk_size": CHUNK,
    "model_id": "model-a|torch|None",
    "show_progress": False,
}


def write_input(path: Path) -> None:
    records = [{"text": f"sentence {i} " + "ab" * i, "title": f"title {i}"} for i in range(ROWS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def interrupted(source: Path, output: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        encode_file(CountingModel(interrupt_on=3), source, output, **BASE)
    assert json.loads(output.with_name(f".{output.name}.progress.json").read_text())["done"]["written"] == 2 * CHUNK


@pytest.mark.parametrize(
    "change",
    [
        {"model_id": "model-b|torch|None"},  # another model
        {"model_id": "model-a|onnx|int8"},  # the same model on another backend or quantization
        {"normalize": True},
        {"batch_size": 16},  # other padding: other low-order bits
        {"chunk_size": CHUNK + 1},  # the rows done so far are counted in chunks
        {"text_field": "title"},  # other texts
        {"encoding_errors": "skip"},  # other rows for undecodable lines
    ],
    ids=lambda change: "-".join(f"{k}={v}" for k, v in change.items()),
)
def test_a_changed_setting_starts_over(tmp_path: Path, change: dict[str, Any]) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.npy"
    write_input(source)
    interrupted(source, output)
    again = CountingModel()
    encode_file(again, source, output, **{**BASE, **change})
    chunk = change.get("chunk_size", CHUNK)
    assert again.calls == -(-ROWS // chunk)  # every chunk encoded again
    reference = tmp_path / "reference.npy"
    encode_file(CountingModel(), source, reference, **{**BASE, **change})
    np.testing.assert_array_equal(np.load(output), np.load(reference))


def test_the_same_settings_resume_and_the_progress_bar_does_not_matter(tmp_path: Path) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.npy"
    write_input(source)
    interrupted(source, output)
    again = CountingModel()
    encode_file(again, source, output, **{**BASE, "show_progress": True})
    assert again.calls == 3  # chunks 3, 4 and 5 only
    reference = tmp_path / "reference.npy"
    encode_file(CountingModel(), source, reference, **BASE)
    np.testing.assert_array_equal(np.load(output), np.load(reference))


@pytest.mark.parametrize("edit", ["append", "touch"])
def test_a_changed_input_file_starts_over(tmp_path: Path, edit: str) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.npy"
    write_input(source)
    interrupted(source, output)
    if edit == "append":
        with source.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"text": "one more"}) + "\n")
    else:  # same size, newer modification time: rewritten in place
        status = source.stat()
        os.utime(source, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
    again = CountingModel()
    report = encode_file(again, source, output, **BASE)
    assert again.calls == -(-report.rows // CHUNK)


def test_the_command_resumes_only_on_the_same_model_folder_contents(tmp_path: Path, monkeypatch) -> None:
    """``isbert encode MODEL_FOLDER`` keys its resume on the folder's files, not only its name: a model retrained or
    re-exported into the same folder between two runs must not continue the first model's rows."""
    import isbert.encode
    import isbert.model
    from isbert.cli import main

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights v1")
    (folder / "config.json").write_text("{}")
    source = tmp_path / "in.txt"
    source.write_text("one\ntwo\n", encoding="utf-8")
    ids: list[str] = []

    class Report:
        def summary(self) -> str:
            return "encoded"

    def encode_file(model: Any, files: Any, output: Any, **kwargs: Any) -> Report:
        ids.append(kwargs["model_id"])
        return Report()

    monkeypatch.setattr(isbert.model, "load", lambda *args, **kwargs: CountingModel())
    monkeypatch.setattr(isbert.encode, "encode_file", encode_file)
    command = ["encode", str(folder), "-i", str(source), "-o", str(tmp_path / "out.npy"), "--no-progress"]
    assert main(command) == 0 and main(command) == 0
    later = (folder / "model.safetensors").stat().st_mtime_ns + 10**9
    (folder / "model.safetensors").write_bytes(b"weights v2")  # retrained in place: same size
    os.utime(folder / "model.safetensors", ns=(later, later))
    assert main(command) == 0
    assert ids[0] == ids[1] != ids[2]
