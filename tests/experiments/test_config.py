"""Experiment files: merging, paths, the portable settings hash, and one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from isbert.errors import IsbertError
from isbert.experiments.config import load_experiment
from isbert.experiments.jobs import plan, same_settings
from isbert.training.config import TrainConfig

GOOD = """
[experiment]
description = "two runs"
budget_minutes = 5
tasks = ["stsb", "sick-r"]
seeds = [1, 2]

[defaults]
model = "offline-minilm"
corpus = ["{data}/unlabeled/s.txt", "local.txt"]
max_steps = 10
lr = 1                       # an integer where a float is expected is fine

[[run]]
name = "mean-pooling"
baseline = "mean"

[[run]]
name = "relu"
activation = "relu"
lr = 1e-3
note = "paper activation"
"""


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file_merges_defaults_and_runs(tmp_path: Path) -> None:
    experiment = load_experiment(write(tmp_path, GOOD))
    assert experiment.name == "exp" and experiment.budget_minutes == 5.0 and experiment.seeds == [1, 2]
    assert experiment.tasks == ["STSBenchmark", "SICK-R"]
    baseline, relu = experiment.runs
    assert baseline.baseline == "mean" and not baseline.seeded and baseline.differs() == {"baseline": "mean"}
    assert relu.note == "paper activation" and relu.differs() == {"activation": "relu", "lr": 1e-3}
    settings = experiment.portable_settings(relu)
    assert settings["lr"] == 1e-3 and settings["activation"] == "relu" and settings["max_steps"] == 10
    assert settings["dev"] == "stsb" and settings["select"] == "stsb"  # forced: both selections are reported
    assert isinstance(experiment.portable_settings(baseline)["lr"], float)
    assert "output" not in settings and "device" not in settings


def test_paths_and_hash_are_portable(tmp_path: Path) -> None:
    experiment = load_experiment(write(tmp_path, GOOD))
    first, second = tmp_path / "data-a", tmp_path / "data-b"
    jobs_a, jobs_b = plan(experiment, first, tmp_path / "runs"), plan(experiment, second, tmp_path / "runs")
    assert [j.folder.name for j in jobs_a] == ["no-seed", "seed-1", "seed-2"]  # the pooling baseline runs once
    trained = jobs_a[1]
    assert trained.config["corpus"] == [str(first / "unlabeled" / "s.txt"), str((tmp_path / "local.txt").resolve())]
    assert trained.config["data_dir"] == str(first) and trained.config["seed"] == 1
    assert trained.settings["corpus"] == ["{data}/unlabeled/s.txt", "local.txt"]
    assert [j.settings_hash for j in jobs_a] == [j.settings_hash for j in jobs_b]  # the data may move
    assert jobs_a[1].settings_hash != jobs_a[2].settings_hash  # seeds differ
    assert "lr" not in jobs_a[0].settings  # baselines do not depend on training settings


C = "[defaults]\ncorpus = ['c.txt']\n"
R = "[[run]]\nname = 'a'\n"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (f"[defaults]\nlrr = 1e-3\n{R}", r"\[defaults\]: unknown key 'lrr' \(did you mean 'lr'"),
        (f"{C}{R}bogus = 1\n", r"run 'a': unknown key 'bogus'"),
        (f"{C}{R}{R}", r"run 'a': duplicate run name"),
        (f"{C}{R}lr = 'fast'\n", r"run 'a': key 'lr' must be a number, got 'fast'"),
        (f"{C}{R}max_steps = 2.5\n", r"run 'a': key 'max_steps' must be a whole number"),
        (f"{C}{R}activation = 'gelu'\n", r"run 'a': key 'activation' must be one of 'none', 'relu'"),
        (f"{C}{R}corpus = 'x.txt'\n", r"run 'a': key 'corpus' must be a list of a string"),
        (f"{C}{R}dedup = 1\n", r"run 'a': key 'dedup' must be true or false"),
        (f"{C}{R}seed = 3\n", r"run 'a': key 'seed' cannot be set here \(seeds come from"),
        (f"[defaults]\noutput = 'x'\n{R}", r"\[defaults\]: key 'output' cannot be set here"),
        (f"{C}{R}baseline = 'max'\n", r"run 'a': key 'baseline' must be one of mean, cls"),
        (f"{C}[[run]]\nname = 'a b'\n", r"run #1: name must be"),
        (f'{C}[[run]]\nname = "a\\n"\n', r"run #1: name must be"),  # `$` matches before a final newline
        (f"{C}[[run]]\nlr = 1.0\n", r"run #1 has no name"),
        (f"[experiment]\nseeds = []\n{C}{R}", r"\[experiment\]: key 'seeds' must be"),
        (f"[experiment]\ntasks = 'nope'\n{C}{R}", r"\[experiment\]: key 'tasks': unknown task 'nope'"),
        (f"[experiment]\nbudget = 3\n{C}{R}", r"\[experiment\]: unknown key\(s\) budget"),
        (f"[extra]\n{C}{R}", r"unknown top-level key\(s\) extra"),
        ("[experiment]\nname = 'a'\n", r"no runs"),
        (R, r"run 'a': no corpus"),
        (f"[experiment]\nname = 'x'\n[[run]\n{C}", r"invalid TOML: .*line 3"),
    ],
)
def test_errors_name_the_file_run_and_key(tmp_path: Path, text: str, match: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(IsbertError, match=match) as error:
        load_experiment(path)
    assert str(path) in str(error.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IsbertError, match=r"absent\.toml: experiment file not found"):
        load_experiment(tmp_path / "absent.toml")


def test_a_new_setting_at_its_default_keeps_stored_results() -> None:
    stored = {"lr": 1e-3, "tasks": ["SICK-R"]}
    assert same_settings(stored, {"lr": 1e-3, "tasks": ("SICK-R",)})
    assert same_settings(stored, {"lr": 1e-3, "tasks": ["SICK-R"], "warmup_ratio": 0.1})  # new field, default
    assert not same_settings(stored, {"lr": 1e-3, "tasks": ["SICK-R"], "warmup_ratio": 0.2})
    assert not same_settings(stored, {"lr": 1e-3, "tasks": ["SICK-R"], "not_a_field": 1})
    assert not same_settings(stored, {"lr": 2e-3, "tasks": ["SICK-R"]})
    assert not same_settings(stored, {"tasks": ["SICK-R"]})  # a setting that disappeared


def test_a_stored_run_older_than_a_changed_default_is_read_as_it_ran() -> None:
    """Length-grouped batches became the default; runs stored before --batching existed used random batches."""
    assert TrainConfig().batching == "length"
    stored = {"lr": 1e-3, "tasks": ["SICK-R"]}
    assert same_settings(stored, {"lr": 1e-3, "tasks": ["SICK-R"], "batching": "random"})
    assert not same_settings(stored, {"lr": 1e-3, "tasks": ["SICK-R"], "batching": "length"})


def test_tradeoff_task_must_be_an_evaluated_task(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    body = '[defaults]\ncorpus = ["c.txt"]\n[[run]]\nname = "a"\n'
    path.write_text('[experiment]\ntasks = "stsb,sick-r"\ntradeoff_task = "stsb"\n' + body)
    assert load_experiment(path).tradeoff_task == "STSBenchmark"
    path.write_text('[experiment]\ntasks = "sick-r"\ntradeoff_task = "stsb"\n' + body)
    with pytest.raises(IsbertError, match=r"t\.toml: \[experiment\]: key 'tradeoff_task' must name one of"):
        load_experiment(path)


def test_no_dev_set_and_no_heldout_split_keeps_the_last_step(tmp_path: Path) -> None:
    """dev = "none" with heldout_size = 0: no selection at all (the run's last step is the model)."""
    text = GOOD + '\n[[run]]\nname = "last"\ndev = "none"\nheldout_size = 0\n'
    experiment = load_experiment(write(tmp_path, text))
    settings = experiment.portable_settings(experiment.run("last"))
    assert settings["dev"] == "none" and settings["select"] is None
    assert experiment.portable_settings(experiment.run("relu"))["select"] == "stsb"
