"""Evaluation: the paper's STS protocol (Table 1) and SentEval's transfer tasks, on any model.

``tasks`` names the tasks and their files, ``readers`` parses them, ``check`` verifies them, ``download`` fetches
them, ``harness`` encodes and scores; this package re-exports the public names.
"""

from isbert.evaluation.baselines import POOLINGS, Whitening
from isbert.evaluation.harness import EmbeddingCache, Encoder, encode_unique, evaluate, model_cache_key
from isbert.evaluation.tasks import ALL_TASKS, ENV_VAR, STS_TASKS, TRANSFER_TASKS, canonical_task_names
from isbert.evaluation.transfer import TransferConfig

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
