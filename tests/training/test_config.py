"""TrainConfig is declared once: flags, validation, experiment checks, resume and docs all follow the fields."""

from __future__ import annotations

import argparse
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from isbert.errors import IsbertError
from isbert.losses import ANCHORS, CRITICS, ESTIMATORS
from isbert.modules import ACTIVATIONS
from isbert.objectives import OBJECTIVES
from isbert.sif import PROBABILITIES
from isbert.training.config import (
    LR_SCHEDULERS,
    TRAIN_PARTS,
    DefaultsOnceFormatter,
    TrainConfig,
    add_arguments,
    choices,
    flag_of,
    from_args,
    setting_types,
    settings_table,
    validate,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "training.md"
REQUIRED = ["--corpus", "c.txt", "--output", "out"]


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(formatter_class=DefaultsOnceFormatter)
    add_arguments(parser)
    return parser


def other_value(name: str, hint: Any, default: Any) -> tuple[list[str], Any]:
    """Command-line words that set ``name`` to a valid value other than its default, and that value."""
    allowed = [c for c in choices(hint) if c is not None and c != default]
    if allowed:
        return [flag_of(name), str(allowed[0])], allowed[0]
    if isinstance(default, bool):
        return [flag_of(name) if flag_of(name) != f"--{name.replace('_', '-')}" or not default
                else f"--no-{name.replace('_', '-')}"], not default  # fmt: skip
    if "str" in str(hint):
        return [flag_of(name), "x"], "x"
    if "float" in str(hint):
        return [flag_of(name), "0.5"], 0.5
    return [flag_of(name), "3"], 3


def test_every_setting_has_a_flag_that_sets_it() -> None:
    hints = setting_types()
    defaults = from_args(parser().parse_args(REQUIRED))
    assert defaults == TrainConfig(corpus=["c.txt"], output="out")
    for spec in fields(TrainConfig):
        if spec.name in ("corpus", "output"):
            continue
        words, value = other_value(spec.name, hints[spec.name], getattr(defaults, spec.name))
        config = from_args(parser().parse_args([*REQUIRED, *words]))
        assert getattr(config, spec.name) == value, (spec.name, words)
        assert config == TrainConfig(**{**vars(defaults), spec.name: value}), spec.name


def test_the_docs_table_is_the_declaration() -> None:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(r"<!-- settings -->\n(.*?)<!-- /settings -->", text, re.S)
    assert match, "docs/training.md lost its <!-- settings --> markers"
    assert match.group(1) == settings_table(), "regenerate it with: python -m isbert.training.config"


def test_choices_are_the_modules_own_option_lists() -> None:
    hints = setting_types()
    expected = {"activation": ACTIVATIONS, "estimator": ESTIMATORS, "objective": tuple(OBJECTIVES), "critic": CRITICS,
                "anchor": ANCHORS, "lr_scheduler": tuple(LR_SCHEDULERS), "train_parts": TRAIN_PARTS,
                "sif_probabilities": PROBABILITIES}  # fmt: skip
    for name, options in expected.items():
        assert set(choices(hints[name])) == set(options), name


def test_help_shows_each_default_once() -> None:
    text = parser().format_help()
    assert text.count("(default: 128)") == 1 and "default: 128) (default" not in text
    assert "--include-special-tokens, --no-include-special-tokens" in text
    assert "(default: None)" not in text and "--no-progress" in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch_size": 1}, "--batch-size must be at least 2"),
        ({"lr": 0.0}, "--lr must be positive"),
        ({"warmup_ratio": 1.0}, "--warmup-ratio must be below 1"),
        ({"warmup_ratio": float("nan")}, "--warmup-ratio must be at least 0"),
        ({"activation": "gelu"}, "--activation must be one of none, relu"),
        ({"select": "best"}, "--select must be one of stsb, label-free"),
        ({"exclude_radius": -1}, "--exclude-radius must be at least 0"),
        ({"corpus": []}, "no corpus given (--input FILE, FOLDER or 'PATTERN' ...)"),
        ({"objective": "simcse", "train_parts": "head"}, "no head to train"),
        ({"select": "stsb"}, "--select stsb needs --dev stsb"),
        ({"keep_checkpoints": -1}, "--keep-checkpoints must be at least 0"),
        ({"eval_steps": 0}, "--eval-steps must be at least 1"),
    ],
)
def test_validation_follows_the_declaration(change: dict[str, Any], message: str) -> None:
    with pytest.raises(IsbertError, match=re.escape(message)):
        validate(TrainConfig(**{"corpus": ["c.txt"], **change}))


def test_trajectory_holds_what_changes_training_and_nothing_else() -> None:
    trajectory = TrainConfig().trajectory()
    assert {"lr", "seed", "activation", "exclude_radius", "include_special_tokens", "heldout_size"} <= set(trajectory)
    assert not {"output", "resume", "eval_steps", "device", "dev", "show_progress", "corpus"} & set(trajectory)


def test_keep_checkpoints_zero_and_eval_steps_default_on_the_command_line() -> None:
    config = from_args(parser().parse_args([*REQUIRED, "--keep-checkpoints", "0"]))
    assert config.keep_checkpoints == 0 and config.eval_steps is None  # None: about five evaluations per run
    with pytest.raises(SystemExit):
        parser().parse_args([*REQUIRED, "--eval-steps", "0"])
