"""Which settings enter an experiment run's settings hash (what decides that a stored result is reused): every
TrainConfig field an experiment file may set is changed, one at a time, and each kind of run must see exactly the
changes its result depends on. A trained run depends on all of them but the device; a pooling baseline (no head, no
training) only on the model and what is evaluated; a SIF-family baseline also on the corpus and how it is read."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from setting_values import other_value as setting_value

from isbert.experiments.config import RUNNER_KEYS, load_experiment
from isbert.experiments.runner import plan
from isbert.training.config import TrainConfig

SETTABLE = [f for f in fields(TrainConfig) if f.name not in RUNNER_KEYS]
KIND = {f.name: f.metadata["kind"] for f in fields(TrainConfig)}


def other_value(name: str) -> Any:
    """Another value of the setting (in an experiment, dev is stsb unless the file sets none)."""
    return "none" if name == "dev" else setting_value(name)


TOML = """
[experiment]
seeds = [1]
tasks = ["stsb"]

[defaults]
corpus = ["c.txt"]
{extra}
[[run]]
name = "trained"

[[run]]
name = "mean"
baseline = "mean"

[[run]]
name = "sif"
baseline = "sif"
"""


def hashes(tmp_path: Path, name: str | None = None) -> dict[str, str]:
    extra = "" if name is None else f"{name} = {json.dumps(other_value(name))}\n"
    text = TOML.format(extra=extra)
    if name == "corpus":
        text = text.replace('corpus = ["c.txt"]\n', "")
    folder = tmp_path / (name or "defaults")
    folder.mkdir()
    (folder / "exp.toml").write_text(text, encoding="utf-8")
    jobs = plan(load_experiment(folder / "exp.toml"), tmp_path / "data", tmp_path / "runs")
    return {job.spec.name: job.settings_hash for job in jobs}


@pytest.mark.parametrize("name", [f.name for f in SETTABLE])
def test_each_setting_changes_the_hash_of_the_runs_that_depend_on_it(tmp_path: Path, name: str) -> None:
    before, after = hashes(tmp_path), hashes(tmp_path, name)
    changed = {run for run in before if before[run] != after[run]}
    kind = KIND[name]
    expected = set()
    if name != "device":  # where a run is computed is not what it means
        expected.add("trained")
        if kind in ("model", "evaluation"):
            expected |= {"mean", "sif"}
        if kind == "data":
            expected.add("sif")  # fitted on the corpus: its word probabilities and common direction
    assert changed == expected, f"{name} ({kind})"


def test_the_seed_changes_only_seeded_runs(tmp_path: Path) -> None:
    (tmp_path / "exp.toml").write_text(TOML.format(extra=""), encoding="utf-8")
    first = plan(load_experiment(tmp_path / "exp.toml"), tmp_path / "data", tmp_path / "runs")
    (tmp_path / "exp.toml").write_text(TOML.format(extra="").replace("seeds = [1]", "seeds = [2]"), encoding="utf-8")
    second = plan(load_experiment(tmp_path / "exp.toml"), tmp_path / "data", tmp_path / "runs")
    changed = {a.spec.name for a, b in zip(first, second, strict=True) if a.settings_hash != b.settings_hash}
    assert changed == {"trained"}  # baselines are not seeded (no head, no training)
