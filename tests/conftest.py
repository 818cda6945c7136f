"""Shared fixtures: tiny random-weight models (see tiny_models.py), offline hub settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tiny_models import make_tiny_backbone

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_backbone(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_isbert_folder(tiny_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved IS-BERT model (tiny backbone, 8 filters per window) for CLI and loading tests."""
    import isbert

    model = isbert.build(str(tiny_backbone), out_channels=8, max_seq_length=16, device="cpu")
    folder = tmp_path_factory.mktemp("tiny-isbert")
    model.save(str(folder))
    return folder


@pytest.fixture
def tiny_isbert(tiny_backbone: Path):
    import isbert

    return isbert.build(str(tiny_backbone), out_channels=8, max_seq_length=32, device="cpu")
