"""encode_file: streaming, chunking, and resuming an interrupted run to the same output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tiny_models import WORDS

import isbert
from isbert.encode import encode_file


def write_corpus(path: Path, count: int) -> list[str]:
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(WORDS, size=rng.integers(1, 12))) for _ in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


class Interrupting:
    """Wraps a model and raises KeyboardInterrupt on the n-th encode call, counting the calls."""

    def __init__(self, model, interrupt_on: int | None) -> None:
        self.model, self.interrupt_on, self.calls = model, interrupt_on, 0

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def encode(self, texts, **kwargs):
        self.calls += 1
        if self.calls == self.interrupt_on:
            raise KeyboardInterrupt
        return self.model.encode(texts, **kwargs)


@pytest.mark.reliability
def test_interrupted_run_resumes_to_the_same_output(tiny_isbert_folder: Path, tmp_path: Path, reliability) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    source = tmp_path / "corpus.txt"
    write_corpus(source, 50)
    reference = tmp_path / "reference.npy"
    encode_file(model, source, reference, chunk_size=8, show_progress=False)

    output = tmp_path / "out.npy"
    first = Interrupting(model, interrupt_on=4)
    with pytest.raises(KeyboardInterrupt):
        encode_file(first, source, output, chunk_size=8, model_id="m", show_progress=False)
    assert not output.exists()
    progress = json.loads((tmp_path / ".out.npy.progress.json").read_text())
    assert progress["done"]["written"] == 24

    second = Interrupting(model, interrupt_on=None)
    report = encode_file(second, source, output, chunk_size=8, model_id="m", show_progress=False)
    assert second.calls == 4  # chunks 4..7 of 7 (the last one short), not the first three again
    assert report.rows == 50
    np.testing.assert_array_equal(np.load(output), np.load(reference))
    assert not list(tmp_path.glob(".out.npy*"))
    reliability.fault()


def test_changed_input_or_model_starts_over(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    source = tmp_path / "corpus.txt"
    write_corpus(source, 30)
    output = tmp_path / "out.npy"
    with pytest.raises(KeyboardInterrupt):
        encode_file(Interrupting(model, 3), source, output, chunk_size=8, model_id="m", show_progress=False)
    again = Interrupting(model, None)
    encode_file(again, source, output, chunk_size=8, model_id="another model", show_progress=False)
    assert again.calls == 4  # all four chunks: a different model id is a different job


@pytest.mark.slow
@pytest.mark.reliability
def test_sigkill_during_cli_encode_then_rerun_equals_uninterrupted(
    tiny_isbert_folder: Path, tmp_path: Path, reliability
) -> None:
    source = tmp_path / "corpus.txt"
    write_corpus(source, 3000)
    reference = tmp_path / "reference.npy"
    encode_file(isbert.load(tiny_isbert_folder, device="cpu"), source, reference, chunk_size=64, show_progress=False)
    output = tmp_path / "out.npy"
    command = [sys.executable, "-m", "isbert", "encode", str(tiny_isbert_folder), "-i", str(source)]
    command += ["-o", str(output), "--chunk-size", "64", "--no-progress", "--device", "cpu"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    progress_file = tmp_path / ".out.npy.progress.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if progress_file.is_file() and json.loads(progress_file.read_text())["done"]["written"] >= 640:
            break
        time.sleep(0.02)
    if process.poll() is not None:
        pytest.fail("the encode run ended before it could be killed; make the corpus larger")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not output.exists()
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    np.testing.assert_array_equal(np.load(output), np.load(reference))
    reliability.fault()
