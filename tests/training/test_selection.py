"""Model selection in one module: the choice from a history against a plain reference, and the default rule."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isbert.training.selection import CRITERIA, LABEL_FREE_KEY, STSB_KEY, best_entry, default_criterion

VALUES = st.one_of(st.floats(-5, 5, allow_nan=False), st.just(math.nan), st.just(math.inf))


@given(st.lists(st.fixed_dictionaries({}, optional={STSB_KEY: VALUES, LABEL_FREE_KEY: VALUES}), max_size=12))
def test_the_choice_from_a_history_is_the_first_best_finite_evaluation(rows: list[dict[str, float]]) -> None:
    history = [{"step": 10 * i, **row} for i, row in enumerate(rows)]
    for criterion, (metric, greater) in CRITERIA.items():
        scored = [h for h in history if metric in h and math.isfinite(h[metric])]
        if not scored:
            assert best_entry(history, criterion) is None
            continue
        target = (max if greater else min)(h[metric] for h in scored)
        want = next(h for h in scored if h[metric] == target)
        assert best_entry(history, criterion) is want


@pytest.mark.parametrize(("dev", "criterion"), [("stsb", "stsb"), ("none", "label-free"), (None, "label-free")])
def test_a_run_selects_on_stsb_dev_only_where_it_is_evaluated(dev: str | None, criterion: str) -> None:
    assert default_criterion(dev) == criterion
