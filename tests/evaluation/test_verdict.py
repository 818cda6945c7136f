"""The verdict of ``isbert eval --compare``: a paired bootstrap over the scored pairs, said in one sentence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isbert.evaluation.sts import spearman
from isbert.evaluation.verdict import Verdict, _spearman_rows, compare


def scored_pairs(seed: int, n: int = 400, noise: float = 0.3) -> tuple[np.ndarray, dict[str, tuple]]:
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 6, size=n).astype(np.float64)  # ties, as in real STS scores
    return gold, {"good": gold + noise * rng.normal(size=n) * gold.std(), "random": rng.normal(size=n)}


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-3, 3)), min_size=3, max_size=40))
def test_the_vectorized_spearman_is_scipys(rows: list[tuple[int, int]]) -> None:
    gold, predicted = (np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))
    if np.ptp(gold) == 0 or np.ptp(predicted) == 0:
        return  # undefined: spearman() raises, the bootstrap counts it as 0
    from scipy.stats import rankdata

    assert _spearman_rows(predicted[None], rankdata(gold)[None])[0] == pytest.approx(spearman(predicted, gold))


def test_a_clearly_better_model_is_beyond_noise_whichever_side_it_is_on() -> None:
    gold, models = scored_pairs(0)
    ours = {"STSb": (models["good"], gold), "SICK-R": (models["good"][::-1].copy(), gold[::-1].copy())}
    theirs = {"STSb": (models["random"], gold), "SICK-R": (models["random"][::-1].copy(), gold[::-1].copy())}
    verdict = compare(ours, theirs, ("new", "old"), resamples=300)
    assert verdict is not None and verdict.tasks == ("STSb", "SICK-R") and verdict.beyond_noise
    expected = np.mean([spearman(*ours[t]) - spearman(*theirs[t]) for t in verdict.tasks])
    assert verdict.delta == pytest.approx(expected) and verdict.low < verdict.delta < verdict.high
    assert verdict.sentence().startswith(f"verdict: new beats old by {verdict.delta:.2f} STS points (95% bootstrap")
    assert verdict.sentence().endswith("beyond noise; use new.")
    swapped = compare(theirs, ours, ("old", "new"), resamples=300)
    assert swapped is not None and swapped.delta == pytest.approx(-verdict.delta)
    assert swapped.sentence().endswith("beyond noise; use new.")


def test_the_same_model_twice_is_within_noise_and_tasks_must_share_their_pairs() -> None:
    gold, models = scored_pairs(1)
    same = {"STSb": (models["good"], gold)}
    verdict = compare(same, same, ("a", "b"), resamples=100)
    assert verdict == Verdict("a", "b", ("STSb",), 0.0, 0.0, 0.0) and not verdict.beyond_noise
    assert "within noise; neither is shown better here" in verdict.sentence()
    slightly = {"STSb": (models["good"] + 0.01 * np.random.default_rng(2).normal(size=len(gold)), gold)}
    close = compare(slightly, same, ("a", "b"), resamples=200)
    assert close is not None and close.low < 0 < close.high and "within noise" in close.sentence()
    other_pairs = {"STSb": (models["good"], gold[::-1].copy())}
    assert compare(same, other_pairs, ("a", "b")) is None  # not the same pairs: nothing to compare pair by pair
    assert compare(same, {"SICK-R": same["STSb"]}, ("a", "b")) is None
