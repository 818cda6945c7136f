"""isbert's own cache folder: derived files that can always be rebuilt (the average-GloVe folder, ONNX exports)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$ISBERT_CACHE`` or ``~/.cache/isbert``."""
    return Path(os.environ.get("ISBERT_CACHE") or Path.home() / ".cache" / "isbert")
