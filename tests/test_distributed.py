"""Encoding on a local 2-worker Ray instance gives the same rows, in the same order, as encoding locally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_models import WORDS

import isbert
from isbert.cli import main

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture
def ray_instance():
    yield
    ray.shutdown()


def test_cli_engine_ray_matches_local(ray_instance, tiny_isbert_folder: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    lines = [" ".join(rng.choice(WORDS, size=rng.integers(1, 10))) for _ in range(230)]
    source = tmp_path / "corpus.txt"
    source.write_text("\n".join(lines) + "\n")
    output = tmp_path / "ray.npy"
    args = ["encode", str(tiny_isbert_folder), "-i", str(source), "-o", str(output), "--no-progress"]
    assert main([*args, "--engine", "ray", "--workers", "2", "--chunk-size", "20"]) == 0
    local = isbert.load(tiny_isbert_folder, device="cpu").encode(lines)
    np.testing.assert_allclose(np.load(output), local, atol=1e-5)
