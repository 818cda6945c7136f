"""IS-BERT training: ``isbert.training.train(...)`` and the ``isbert train`` command (docs/training.md).

Names are imported on first use, so that ``isbert train --help`` (which needs only the settings) starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from isbert.training.config import TrainConfig
    from isbert.training.corpus import CorpusStats
    from isbert.training.result import TrainingInterrupted, TrainResult
    from isbert.training.run import train

_EXPORTS = {
    "CorpusStats": "isbert.training.corpus",
    "TrainConfig": "isbert.training.config",
    "TrainResult": "isbert.training.result",
    "TrainingInterrupted": "isbert.training.result",
    "train": "isbert.training.run",
}
__all__ = ["CorpusStats", "TrainConfig", "TrainResult", "TrainingInterrupted", "train"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
