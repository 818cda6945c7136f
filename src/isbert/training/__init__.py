"""IS-BERT training: ``isbert.training.train(...)`` and the ``isbert train`` command (docs/training.md)."""

from isbert.training.corpus import CorpusStats
from isbert.training.run import TrainConfig, TrainingInterrupted, TrainResult, train

__all__ = ["CorpusStats", "TrainConfig", "TrainResult", "TrainingInterrupted", "train"]
