"""CPU encoding speed of a final model, measured the same way for every row of an experiment.

Quality alone does not pick a method: a static table (model2vec, average word vectors) encodes orders of magnitude
faster than a transformer. Every model of a run is timed on the same fixed sample, on the CPU, in the same process
that scores it, so the figures of one experiment compare (not across machines: the machine is stored beside them).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

SAMPLE_SIZE = 1024
BATCH_SIZE = 64


def speed_sample(data_dir: str | os.PathLike[str], size: int = SAMPLE_SIZE) -> list[str]:
    """The first ``size`` distinct sentences of the STS Benchmark test set (SentEval text): a fixed, public sample
    of everyday sentence lengths."""
    from isbert.evaluation.readers import load_task

    sentences = list(dict.fromkeys(load_task("STSBenchmark", Path(data_dir)).sentences()))
    return sentences[:size]


def encoding_speed(model: Any, sentences: list[str], batch_size: int = BATCH_SIZE) -> float:
    """Sentences per second for ``model.encode`` on the CPU, after one warm-up batch (best of two passes)."""
    import torch

    model = model.to("cpu")
    with torch.inference_mode():
        model.encode(sentences[:batch_size], batch_size=batch_size, show_progress_bar=False)
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            model.encode(sentences, batch_size=batch_size, show_progress_bar=False)
            best = min(best, time.perf_counter() - started)
    return len(sentences) / best
