"""The training run folder: what ``isbert train --output DIR`` writes there, for training and for its readers.

Training (:mod:`isbert.training.run`) writes the folder; the experiment runner resumes, scores and trims it. Both
read the names here, never string literals, and a resume refused for other settings is a :class:`SettingsMismatch`,
never a message to search.

``DIR/`` holds the selected model itself (so ``isbert.load(DIR)`` works), ``training_run.json`` (the settings; its
presence makes the folder a run), ``training_log.jsonl``, ``training_curves.png``, ``training_summary.json`` (written
when the run ends) and ``checkpoints/`` (``checkpoint-STEP/``, ``best/`` and ``best-CRITERION/``, each best model
with its ``isbert_best.json``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from isbert.errors import IsbertError

RUN_FILE = "training_run.json"
LOG_FILE = "training_log.jsonl"
PLOT_FILE = "training_curves.png"
SUMMARY_FILE = "training_summary.json"
CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"
BEST_MARKER = "isbert_best.json"
"""Written into a best-model folder with the step and score that made it best; not part of the final model."""
CORPUS_CACHE = ".corpus-cache"


@dataclass(frozen=True)
class RunFolder:
    """The paths of one training run folder."""

    root: Path

    @property
    def run_file(self) -> Path:
        return self.root / RUN_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINT_DIR

    def best(self, criterion: str | None = None) -> Path:
        """The best model by the run's criterion (``criterion`` None), or by the other one it also tracked."""
        return self.checkpoints / (BEST_DIR if criterion is None else f"{BEST_DIR}-{criterion}")

    def is_run(self) -> bool:
        """Whether training started here (``--resume`` continues it)."""
        return self.run_file.is_file()

    def records(self) -> tuple[Path, ...]:
        """What a run keeps when its models are dropped: settings, log, curves and summary."""
        return tuple(self.root / name for name in (RUN_FILE, LOG_FILE, PLOT_FILE, SUMMARY_FILE))


class SettingsMismatch(IsbertError):
    """``--resume`` on a run folder that holds a run of other settings (``changed``: the settings that differ)."""

    def __init__(self, folder: Path, changed: Iterable[str]) -> None:
        self.folder = folder
        self.changed = sorted(changed)
        super().__init__(
            f"{folder} holds a different run (differs in: {', '.join(self.changed)}); resume with the same settings, "
            "or pass --overwrite to start over"
        )
