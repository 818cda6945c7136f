"""The run's JSONL log: records in order, and truncation for a resumed run."""

from __future__ import annotations

import json
from pathlib import Path

from isbert.training.run_log import RunLog


def test_truncate_after_keeps_the_checkpoint_step_and_drops_later_records(tmp_path: Path) -> None:
    """Kills resume-log-drops-checkpoint-step: a resumed run rewrites what came after its checkpoint, and only that."""
    log = RunLog(tmp_path / "training_log.jsonl")
    for step, event in [(0, "start"), (4, "log"), (4, "evaluate"), (5, "log"), (8, "log")]:
        log.write({"event": event, "step": step})
    log.truncate_after(4)
    kept = [json.loads(line) for line in log.path.read_text(encoding="utf-8").splitlines()]
    assert [(r["step"], r["event"]) for r in kept] == [(0, "start"), (4, "log"), (4, "evaluate")]
