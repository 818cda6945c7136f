"""What the evaluation embedding cache is keyed on: the model (every file of its folder: weights, ONNX graphs,
configuration) and the pooling baseline; never the settings that leave the embeddings as they are (batch size,
device, tasks, whitening, the text variant). Each test evaluates twice and counts what the second run encoded."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import isbert.model
from isbert.evaluation import evaluate

PAIRS = [("a man walks", "a man is walking", 4.0), ("a dog runs", "a cat sleeps", 1.0), ("two kids", "kids", 3.0)]


class Counting:
    """An encoder that counts the sentences it is asked for (a hashed bag of characters: deterministic)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, sentences: list[str], **kwargs: Any) -> np.ndarray:
        self.seen += sentences
        return np.array([[s.count(c) + 1.0 for c in "aeiost "] for s in sentences], dtype=np.float32)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, list[Counting]]:
    """A model folder as a user has it, a pairs file, and ``isbert.load`` / the pooling baselines stubbed."""
    folder = tmp_path / "model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights v1")
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{a}\t{b}\t{s}\n" for a, b, s in PAIRS), encoding="utf-8")
    made: list[Counting] = []

    def new(*args: Any, **kwargs: Any) -> Counting:
        made.append(Counting())
        return made[-1]

    monkeypatch.setattr(isbert.model, "load", new)
    monkeypatch.setattr(isbert.model, "pooled_encoder", new)
    return folder, pairs, made


def encoded(folder: Path, pairs: Path, cache: Path, **settings: Any) -> int:
    results = evaluate(str(folder), None, pairs=pairs, cache_dir=cache, show_progress=False, **settings)
    return results["timing"]["encoded_sentences"]


DISTINCT = len({s for a, b, _ in PAIRS for s in (a, b)})


@pytest.mark.parametrize(
    "settings",
    [{"batch_size": 7}, {"device": "cpu"}, {"text": "raw"}, {"model_name": "a label"}, {"standardize": True}],
    ids=lambda s: next(iter(s)),
)
def test_settings_that_keep_the_embeddings_reuse_the_cache(setup, tmp_path: Path, settings: dict[str, Any]) -> None:
    folder, pairs, _ = setup
    assert encoded(folder, pairs, tmp_path / "cache") == DISTINCT
    assert encoded(folder, pairs, tmp_path / "cache", **settings) == 0


@pytest.mark.parametrize(
    "change",
    [
        "pooling",
        "weights rewritten",
        "weights added",
        "onnx graph rewritten",
        "max_seq_length",
        "pooling config",
        "another folder",
    ],
)
def test_what_changes_the_embeddings_misses_the_cache(setup, tmp_path: Path, change: str) -> None:
    folder, pairs, _ = setup
    (folder / "model.onnx").write_bytes(b"graph v1")
    assert encoded(folder, pairs, tmp_path / "cache") == DISTINCT
    settings: dict[str, Any] = {}
    later = os.stat(folder).st_mtime_ns + 10**9  # a later modification time, as a rewrite seconds later has
    rewritten = {
        "weights rewritten": folder / "model.safetensors",
        "onnx graph rewritten": folder / "model.onnx",
        "max_seq_length": folder / "sentence_bert_config.json",
        "pooling config": folder / "1_Pooling" / "config.json",
    }
    if change == "pooling":
        settings["pooling"] = "mean"
    elif change == "weights added":
        (folder / "2_Dense").mkdir()
        (folder / "2_Dense" / "model.safetensors").write_bytes(b"dense")
    elif change == "another folder":
        other = tmp_path / "other"
        other.mkdir()
        for file in folder.rglob("*"):
            if file.is_file():
                (other / file.relative_to(folder)).parent.mkdir(parents=True, exist_ok=True)
                (other / file.relative_to(folder)).write_bytes(file.read_bytes())
        folder = other
    else:
        path = rewritten[change]
        text = path.read_bytes()
        if path.suffix == ".json":
            data = json.loads(text)
            key = next(iter(data))
            data[key] = not data[key] if isinstance(data[key], bool) else data[key] // 2
            path.write_text(json.dumps(data))
        else:
            path.write_bytes(text.replace(b"v1", b"v2"))  # same size: only the content and the time differ
        os.utime(path, ns=(later, later))
    assert encoded(folder, pairs, tmp_path / "cache", **settings) == DISTINCT


def test_an_encoder_object_is_cached_under_its_name_only(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{a}\t{b}\t{s}\n" for a, b, s in PAIRS), encoding="utf-8")
    cache = tmp_path / "cache"

    def run(name: str | None) -> int:
        results = evaluate(Counting(), None, pairs=pairs, cache_dir=cache, model_name=name, show_progress=False)
        return results["timing"]["encoded_sentences"]

    assert (run("m"), run("m"), run("n"), run(None), run(None)) == (DISTINCT, 0, DISTINCT, DISTINCT, DISTINCT)
