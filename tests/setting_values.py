"""A value of a TrainConfig setting other than its default, for tests that change every setting in turn."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, get_args

from isbert.training.config import TrainConfig, choices, setting_types


def default_of(name: str) -> Any:
    spec = next(f for f in fields(TrainConfig) if f.name == name)
    return spec.default_factory() if spec.default is MISSING else spec.default  # type: ignore[misc]


def other_value(name: str) -> Any:
    """Another allowed choice, the other boolean, half a float (0.5 for 0), another whole number or a new string;
    bounds are respected for the defaults TrainConfig declares (a whole number's default minus one, or 3)."""
    default, hint = default_of(name), setting_types()[name]
    allowed = [value for value in choices(hint) if value != default and value is not None]
    if allowed:
        return allowed[0]
    if name == "corpus":
        return ["other.txt"]
    if isinstance(default, bool):
        return not default
    if isinstance(default, float):
        return default / 2 if default else 0.5
    if isinstance(default, int) or (default is None and int in get_args(hint)):
        return 3 if default in (None, 1, 2) else default - 1
    return f"{default}-other"
