"""Issue 29, item 7: every number that sizes memory or time is bounded, and checked when it is parsed.

Command-line flags are refused by argparse (a usage line and an error line naming the flag and its cap, exit 2)
before any file is read or model loaded; training settings declare their caps once (``setting(maximum=...)``), so
the flags, :func:`validate` and the experiment files all refuse the same values.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isbert.cli import _command_parsers, build_parser, main
from isbert.errors import IsbertError
from isbert.experiments.config import load_experiment
from isbert.training.config import TrainConfig, setting_types, validate

pytestmark = pytest.mark.reliability

NOT_FINITE = ("inf", "-inf", "nan", "1e309")
HUGE = "1" + "0" * 30


def _numeric_actions() -> list[tuple[str, argparse.Action]]:
    """Every option of every command whose type turns text into a number."""
    found = []
    for parser in _command_parsers(build_parser()):
        for action in parser._actions:
            if action.type is None or not action.option_strings:
                continue
            try:
                value = action.type("1")
            except (argparse.ArgumentTypeError, ValueError, TypeError):
                continue  # not a number (a path, a name): every numeric flag here accepts 1
            if isinstance(value, (int, float)):
                found.append((f"{parser.prog} {action.option_strings[0]}", action))
    return found


def test_every_numeric_flag_of_every_command_refuses_huge_values_when_parsed() -> None:
    """Whole numbers (counts, sizes, steps) have a finite cap; every number must be finite (a float that does not
    size memory or time, a temperature or a learning rate, may be large)."""
    actions = _numeric_actions()
    assert len(actions) > 40  # every command's numeric flags, not an empty walk
    unbounded = []
    for name, action in actions:
        whole = isinstance(action.type("1"), int)  # type: ignore[misc]
        for text in (HUGE, *NOT_FINITE) if whole else NOT_FINITE:
            try:
                value = action.type(text)  # type: ignore[misc]
            except (argparse.ArgumentTypeError, ValueError):
                continue
            if isinstance(value, (int, float)):
                unbounded.append(f"{name} {text}")
    assert not unbounded, unbounded


CAPPED = [  # (argv before the value, the flag as argparse names it, its cap)
    (["search", "IDX", "q", "-k"], "-k", "10,000"),
    (["cluster", "M", "-i", "c.txt", "--k"], "--k", "100,000"),
    (["encode", "M", "-i", "c.txt", "-o", "e.npy", "--batch-size"], "--batch-size", "16,384"),
    (["encode", "M", "-i", "c.txt", "-o", "e.npy", "--chunk-size"], "--chunk-size", "1,048,576"),
    (["eval", "M", "--batch-size"], "--batch-size", "16,384"),
    (["similar", "M", "-i", "c.txt", "-t", "0.9", "--block"], "--block", "16,384"),
    (["similar", "M", "-i", "c.txt", "-t", "0.9", "--max-pairs"], "--max-pairs", "10,000,000"),
    (["serve", "M", "--max-texts"], "--max-texts", "65,536"),
    (["baseline", "sif", "B", "-i", "c.txt", "-o", "o", "--sample"], "--sample", "10,000,000"),
    (["train", "-i", "c.txt", "-o", "o", "--max-steps"], "--max-steps", "100,000,000"),
    (["train", "-i", "c.txt", "-o", "o", "--max-seq-length"], "--max-seq-length", "8,192"),
    (["train", "-i", "c.txt", "-o", "o", "--batch-size"], "--batch-size", "16,384"),
    (["train", "-i", "c.txt", "-o", "o", "--eval-batch-size"], "--eval-batch-size", "16,384"),
]


@pytest.mark.parametrize(("argv", "flag", "cap"), CAPPED, ids=[c[1] + "@" + c[0][0] for c in CAPPED])
@settings(max_examples=15, deadline=None)
@given(excess=st.integers(min_value=1, max_value=10**40))
def test_a_value_over_the_cap_is_one_usage_error_naming_flag_and_cap(
    argv: list[str], flag: str, cap: str, excess: int
) -> None:
    value = int(cap.replace(",", "")) + excess
    stderr = io.StringIO()
    with pytest.raises(SystemExit) as stop, contextlib.redirect_stderr(stderr):
        main([*argv, str(value)])  # no file named here exists: only the parser can answer
    assert stop.value.code == 2
    error = stderr.getvalue().strip().splitlines()[-1]
    assert f"{flag}: must be at most {cap}, got {value}" in error, error


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["similar", "M", "-i", "c.txt", "-t", "1.5"], "--threshold/-t: must be from -1 to 1, got 1.5"),
        (["cluster", "M", "-i", "c.txt", "--distance-threshold", "inf"], "must be a finite number, got inf"),
        (["serve", "M", "--request-timeout", "1e9"], "--request-timeout: must be from 0 to 86400, got 1e9"),
        (["serve", "M", "--port", "70000"], "--port: must be at most 65,535, got 70000"),
        (["train", "-i", "c.txt", "-o", "o", "--epochs", "inf"], "--epochs: must be a finite number, got inf"),
        (["train", "-i", "c.txt", "-o", "o", "--lr", "inf"], "--lr: must be a finite number, got inf"),
        (["train", "-i", "c.txt", "-o", "o", "--batch-size", "1"], "--batch-size: must be at least 2, got 1"),
        (["train", "-i", "c.txt", "-o", "o", "--seed", "-1"], "--seed: must be at least 0, got -1"),
    ],
)
def test_floats_ranges_and_minimums_are_checked_when_parsed(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_every_whole_number_setting_and_the_epochs_declare_a_finite_maximum() -> None:
    hints = setting_types()
    numeric = [f for f in fields(TrainConfig) if int in (hints[f.name], *getattr(hints[f.name], "__args__", ()))]
    assert len(numeric) >= 12
    missing = [f.name for f in numeric if f.metadata["maximum"] is None]
    assert not missing, missing
    epochs = next(f for f in fields(TrainConfig) if f.name == "epochs")
    assert math.isfinite(epochs.metadata["maximum"])


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("max_steps", 10**12, "--max-steps must be at most 100,000,000"),
        ("batch_size", 10**9, "--batch-size must be at most 16,384"),
        ("max_seq_length", 10**6, "--max-seq-length must be at most 8,192"),
        ("out_channels", 10**9, "--out-channels must be at most 16,384"),
        ("epochs", 1e9, "--epochs must be at most 10,000"),
        ("temperature", math.inf, "--temperature must be a finite number"),
    ],
)
def test_validate_refuses_the_same_caps(setting: str, value: float, message: str) -> None:
    with pytest.raises(IsbertError, match=message):
        validate(TrainConfig(corpus=["c.txt"], **{setting: value}))


@pytest.mark.parametrize(
    ("head", "run", "message"),
    [
        ("", "max_steps = 1_000_000_000_000", "run 'r': key 'max_steps': --max-steps must be at most 100,000,000"),
        ("", "batch_size = 99999999", "key 'batch_size': --batch-size must be at most 16,384"),
        ("", "epochs = inf", "key 'epochs': --epochs must be"),
        ("", "heldout_size = 100_000_000_000", "key 'heldout_size': --heldout-size must be at most 10,000,000"),
        ("budget_minutes = inf", "", "key 'budget_minutes' must be a positive number up to 10,080"),
        ("seeds = [1, 99999999999]", "", "key 'seeds' must be a non-empty list of at most 1000"),
        ("", 'baseline = "sif"\nsif = { components = 1_000_000 }', "sif.components must be a whole number from 0"),
    ],
)
def test_experiment_files_refuse_numbers_over_the_caps_when_loaded(
    tmp_path: Path, head: str, run: str, message: str
) -> None:
    path = tmp_path / "e.toml"
    path.write_text(f'[experiment]\nname = "e"\n{head}\n[defaults]\ncorpus = ["c.txt"]\n[[run]]\nname = "r"\n{run}\n')
    with pytest.raises(IsbertError, match=message.replace("(", r"\(")):
        load_experiment(path)
