"""Evaluation: the paper's STS protocol (Table 1) and SentEval's transfer tasks, on any model.

``tasks`` names the tasks and their files, ``readers`` parses them, ``check`` verifies them, ``download`` fetches
them, ``harness`` encodes and scores; this package re-exports the public names, importing each on first use (the
command line reads ``tasks`` without loading torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from isbert.evaluation.baselines import Whitening
    from isbert.evaluation.harness import EmbeddingCache, Encoder, encode_unique, evaluate, model_cache_key
    from isbert.evaluation.tasks import ALL_TASKS, ENV_VAR, STS_TASKS, TRANSFER_TASKS, canonical_task_names
    from isbert.evaluation.transfer import TransferConfig
    from isbert.model import POOLINGS

_EXPORTS = {
    "POOLINGS": "isbert.model",
    "Whitening": "baselines",
    "EmbeddingCache": "harness",
    "Encoder": "harness",
    "encode_unique": "harness",
    "evaluate": "harness",
    "model_cache_key": "harness",
    "ALL_TASKS": "tasks",
    "ENV_VAR": "tasks",
    "STS_TASKS": "tasks",
    "TRANSFER_TASKS": "tasks",
    "canonical_task_names": "tasks",
    "TransferConfig": "transfer",
}

__all__ = [
    "ALL_TASKS",
    "ENV_VAR",
    "POOLINGS",
    "STS_TASKS",
    "TRANSFER_TASKS",
    "EmbeddingCache",
    "Encoder",
    "TransferConfig",
    "Whitening",
    "canonical_task_names",
    "encode_unique",
    "evaluate",
    "model_cache_key",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = _EXPORTS[name]
        return getattr(importlib.import_module(module if "." in module else f"isbert.evaluation.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
