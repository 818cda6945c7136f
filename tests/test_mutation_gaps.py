"""Tests written for mutants of `make mutation` that survived the existing tests (see docs/testing.md).

Each test names the mutant it kills; the bug it stands for is a plausible one, and nothing else caught it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from isbert.errors import IsbertError
from isbert.evaluation.sts import cosine_rows
from isbert.search.serve import Batcher
from isbert.training.trainer import RunLog


def test_cosine_rows_rejects_nan_on_either_side() -> None:
    """Kills sts-second-side-unchecked: NaN in the second sentences' embeddings must not pass silently."""
    good, bad = np.array([[1.0, 1.0]]), np.array([[np.nan, 1.0]])
    for a, b in ((bad, good), (good, bad)):
        with pytest.raises(IsbertError, match="non-finite"):
            cosine_rows(a, b)


def test_merged_batches_stay_within_max_batch() -> None:
    """Kills batcher-size-not-counted: however many requests are queued, a merged batch stops at max_batch texts."""
    sizes: list[int] = []

    def encode(texts: list[str]) -> np.ndarray:
        sizes.append(len(texts))
        return np.asarray([[float(len(text))] for text in texts], dtype=np.float32)

    async def run() -> list[np.ndarray]:
        batcher = Batcher(encode, max_batch=4, batch_wait_s=0.05)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(["x" * n]) for n in range(1, 11)))
        await batcher.stop()
        return results

    results = asyncio.run(run())
    assert [float(row[0, 0]) for row in results] == [float(n) for n in range(1, 11)]  # each request its own row
    assert sum(sizes) == 10 and max(sizes) <= 4, sizes


def test_truncate_after_keeps_the_checkpoint_step_and_drops_later_records(tmp_path: Path) -> None:
    """Kills resume-log-drops-checkpoint-step: a resumed run rewrites what came after its checkpoint, and only that."""
    log = RunLog(tmp_path / "training_log.jsonl")
    for step, event in [(0, "start"), (4, "log"), (4, "evaluate"), (5, "log"), (8, "log")]:
        log.write({"event": event, "step": step})
    log.truncate_after(4)
    kept = [json.loads(line) for line in log.path.read_text(encoding="utf-8").splitlines()]
    assert [(r["step"], r["event"]) for r in kept] == [(0, "start"), (4, "log"), (4, "evaluate")]


def test_exclude_radius_zero_is_accepted_and_negative_refused(tiny_isbert) -> None:
    """Kills losses-radius-zero-refused: 0 ("all but the token itself") is a documented setting, -1 is not."""
    from isbert.losses import AnchoredObjective, MutualInformationLoss

    assert MutualInformationLoss(tiny_isbert, exclude_radius=0).exclude_radius == 0
    assert AnchoredObjective(tiny_isbert, exclude_radius=0).exclude_radius == 0
    with pytest.raises(ValueError, match="exclude_radius"):
        MutualInformationLoss(tiny_isbert, exclude_radius=-1)
