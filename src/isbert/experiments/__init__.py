"""Experiment files: named runs over shared training settings, run and stored once, reported as one table.

``isbert experiment CONFIG`` on the command line; in Python::

    from isbert.experiments import load_experiment, run_experiment

    outcome = run_experiment(load_experiment("experiments/quick.toml"), data_dir="../shared/data")
"""

from isbert.experiments.config import Experiment, RunSpec, load_experiment
from isbert.experiments.runner import ExperimentInterrupted, ExperimentOutcome, list_jobs, run_experiment

__all__ = [
    "Experiment",
    "ExperimentInterrupted",
    "ExperimentOutcome",
    "RunSpec",
    "list_jobs",
    "load_experiment",
    "run_experiment",
]
