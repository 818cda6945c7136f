"""Experiment files: named runs over shared training settings, run and stored once, reported as one table.

``isbert experiment CONFIG`` on the command line; in Python::

    from isbert.experiments import load_experiment, run_experiment

    outcome = run_experiment(load_experiment("experiments/quick.toml"), data_dir="../shared/data")
"""

from __future__ import annotations

import importlib
from typing import Any

from isbert.experiments.config import Experiment, RunSpec, load_experiment

_RUNNER_NAMES = ("ExperimentInterrupted", "ExperimentOutcome", "list_jobs", "run_experiment")
"""Loaded on first use: the runner imports the trainer (transformers, torch), which `isbert --help` must not pay."""

__all__ = ["Experiment", "RunSpec", "load_experiment", *_RUNNER_NAMES]


def __getattr__(name: str) -> Any:
    if name in _RUNNER_NAMES:
        return getattr(importlib.import_module("isbert.experiments.runner"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
