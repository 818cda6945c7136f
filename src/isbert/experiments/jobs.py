"""The jobs of an experiment: one per run x seed, with its folder, its settings (hashed) and the TrainConfig it uses.

``RUNS_DIR/<experiment>/<run>/seed-<seed>/`` holds ``result.json`` (settings, hash, scores, timings, history,
machine); ``trained.json`` is written when training finishes; ``train/`` is the training run folder. A stored result
is reused while its settings are the job's (:func:`same_settings`). :mod:`isbert.experiments.runner` runs the jobs;
:mod:`isbert.experiments.report` and :mod:`isbert.experiments.reuse` read them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeGuard

from isbert.atomic import write_text_atomic
from isbert.experiments.config import (
    CORPUS_BASELINES,
    FIXED_BASELINES,
    TASK_CORPUS_PREFIX,
    Experiment,
    RunSpec,
)
from isbert.training.config import names_of_kind

DEFAULT_RUNS_DIR = Path("runs/experiments")
DEFAULT_RESULTS_DIR = Path("experiments/results")
RESULT_FILE = "result.json"
TRAINED_FILE = "trained.json"
"""Written when training finishes, so an interruption during evaluation does not train again."""
TRAIN_DIR = "train"
SELECTIONS = ("labeled", "label_free")
"""The two models a result scores: the one the STSb dev score chose, and the one the label-free criterion chose."""

# TrainConfig fields that only shape training (by their declared kind): a baseline's result does not depend on
# them, so changing them in [defaults] must not re-evaluate baselines.
TRAINING_ONLY = names_of_kind("data", "objective", "optimisation", "selection", "run")
HEAD_ONLY = names_of_kind("head")
"""What a pooling baseline (no head) also ignores; the ``untrained`` baseline is built from them."""
DATA_SETTINGS = names_of_kind("data")
"""The corpus and how it is read: what the SIF-family baselines are fitted on, so part of what they mean."""
EVALUATION_ONLY = ("tasks", "posthoc", "sif")
"""Settings of a trained run that change only what is evaluated after training, never the training itself."""


def canonical_hash(settings: dict[str, Any]) -> str:
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@cache
def _settings_before_they_existed() -> dict[str, Any]:
    """Each setting as a stored run made before it existed behaved (its default, unless the default changed)."""
    from dataclasses import fields

    from isbert.training.config import TrainConfig

    return json.loads(json.dumps({f.name: f.metadata["before"] for f in fields(TrainConfig)}, default=str))


def same_settings(stored: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether a stored run is the run ``current`` describes.

    Equal settings, except that a setting the stored run did not have yet is accepted at the value that reproduces
    what that run did (its default, or the ``before`` of a setting whose default changed since): adding an option
    must not invalidate every stored result (code changes do not either). A setting that disappeared, or any other
    difference, is a different run.
    """
    current = json.loads(json.dumps(current, default=str))  # compare as stored: tuples are lists in JSON
    defaults = _settings_before_they_existed()
    for key in stored.keys() | current.keys():
        if key not in current:
            return False
        if key in stored:
            if stored[key] != current[key]:
                return False
        elif key not in defaults or current[key] != defaults[key]:
            return False
    return True


def read_json(path: Path) -> dict[str, Any] | None:
    """The stored object, or None when absent or unreadable (then the run is simply redone)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class Job:
    """One run x seed: where it lives, what it means (``settings``, hashed) and the TrainConfig it uses."""

    experiment: Experiment
    spec: RunSpec
    seed: int | None
    folder: Path
    settings: dict[str, Any]
    config: dict[str, Any] = field(repr=False)
    device: str | None = None

    @property
    def label(self) -> str:
        return f"{self.experiment.name}/{self.spec.name}" + (f" seed {self.seed}" if self.seed is not None else "")

    @property
    def result_path(self) -> Path:
        return self.folder / RESULT_FILE

    @property
    def settings_hash(self) -> str:
        return canonical_hash(self.settings)

    @property
    def train_settings(self) -> dict[str, Any]:
        """What training depends on: everything but the evaluation (tasks, a method added after training)."""
        return {k: v for k, v in self.settings.items() if k not in EVALUATION_ONLY}

    def matches(self, stored: dict[str, Any] | None) -> TypeGuard[dict[str, Any]]:
        """Whether a stored ``result.json`` is this run's (see :func:`same_settings`)."""
        if stored is None:
            return False
        return stored.get("settings_hash") == self.settings_hash or same_settings(
            stored.get("settings", {}), self.settings
        )

    def trained_matches(self, trained: dict[str, Any] | None) -> bool:
        return trained is not None and same_settings(trained.get("settings", {}), self.train_settings)

    def train_config(self, **changes: Any) -> Any:
        from isbert.training.config import TrainConfig

        return TrainConfig(**{**self.config, **changes})

    def stored(self) -> dict[str, Any] | None:
        result = read_json(self.folder / RESULT_FILE)
        return result if self.matches(result) else None

    def state(self) -> str:
        """What the next invocation does with this run, in words (starts with ``done`` when it is reused)."""
        result = read_json(self.folder / RESULT_FILE)
        if result is not None:
            return "done" if self.matches(result) else "stale (settings changed: runs again)"
        if (self.folder / TRAINED_FILE).is_file():
            return "trained, not evaluated yet"
        if (self.folder / TRAIN_DIR).is_dir():
            return "interrupted (resumes)"
        return "not run"


def plan(
    experiment: Experiment, data_dir: Path, runs_dir: str | os.PathLike[str], device: str | None = None
) -> list[Job]:
    """Every run x seed of the experiment (pooling baselines once: they do not depend on the seed)."""
    jobs = []
    for spec in experiment.runs:
        base = experiment.portable_settings(spec)
        run_device = device or experiment.device(spec)
        for seed in experiment.seeds_of(spec):
            leaf = f"seed-{seed}" if seed is not None else "no-seed"
            folder = Path(runs_dir).resolve() / experiment.name / spec.name / leaf
            settings = dict(base)
            if spec.baseline is not None:
                ignored = TRAINING_ONLY + (HEAD_ONLY if spec.baseline in FIXED_BASELINES else ())
                if spec.baseline in CORPUS_BASELINES:
                    ignored = tuple(k for k in ignored if k not in DATA_SETTINGS)
                settings = {k: v for k, v in settings.items() if k not in ignored}
            if spec.posthoc:
                settings["posthoc"] = spec.posthoc
            if spec.sif:
                settings["sif"] = dict(spec.sif)
            if seed is None:
                settings.pop("seed", None)
            else:
                settings["seed"] = seed
            settings["baseline"] = spec.baseline
            settings["tasks"] = list(experiment.tasks)
            config = experiment.resolve_paths(base, data_dir)
            config["corpus"] = [_task_corpus(c, data_dir, runs_dir) for c in config.get("corpus", [])]
            config.update(
                seed=seed if seed is not None else config.get("seed", 42),
                data_dir=str(data_dir),
                output=str(folder / TRAIN_DIR),
                device=run_device,
            )
            jobs.append(Job(experiment, spec, seed, folder, settings, config, run_device))
    return jobs


def _task_corpus(entry: str, data_dir: Path, runs_dir: str | os.PathLike[str]) -> str:
    """A ``task:NAME`` corpus entry becomes a text file of that task's training sentences (written once)."""
    if not entry.startswith(TASK_CORPUS_PREFIX):
        return entry
    from isbert.evaluation.readers import task_corpus_sentences

    name = entry.removeprefix(TASK_CORPUS_PREFIX)
    path = Path(runs_dir).resolve() / "corpora" / f"{name}.txt"
    if not path.is_file():
        text = "".join(f"{sentence}\n" for sentence in task_corpus_sentences(name, data_dir))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
    return str(path)
