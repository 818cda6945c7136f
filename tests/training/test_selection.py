"""Model selection in one module: the choice from a history against a plain reference, and the default rule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import spearmanr
from transformers import TrainerState

from isbert.training.run_folder import BEST_MARKER
from isbert.training.run_log import RunLog
from isbert.training.selection import (
    CRITERIA,
    LABEL_FREE_KEY,
    STSB_KEY,
    SelectionCallback,
    best_entry,
    default_criterion,
    selection_agreement,
)

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


class SavedModel:
    """Stands in for the trained model: ``save`` writes which evaluation it was saved at."""

    def __init__(self) -> None:
        self.step = -1

    def save(self, folder: str, create_model_card: bool = True) -> None:
        (Path(folder) / "weights.txt").write_text(str(self.step), encoding="utf-8")
        if create_model_card:  # as sentence-transformers writes its card
            (Path(folder) / "README.md").write_text("card", encoding="utf-8")


def evaluate(callback: SelectionCallback, model: SavedModel, step: int, main: bool = True, **metrics: object) -> None:
    state = TrainerState(global_step=step)
    state.is_world_process_zero = main
    model.step = step
    callback.on_evaluate(None, state, None, metrics={f"eval_{k}": v for k, v in metrics.items()}, model=model)


def saved(folder: Path) -> tuple[str, dict]:
    return (folder / "weights.txt").read_text(), json.loads((folder / BEST_MARKER).read_text())


def test_the_callback_keeps_the_first_best_by_each_criterion(tmp_path: Path) -> None:
    redraws: list[int] = []
    callback = SelectionCallback(
        "stsb", tmp_path / "best", RunLog(tmp_path / "log.jsonl"), redraw=lambda: redraws.append(1),
        secondary="label-free", secondary_dir=tmp_path / "best-label-free",
    )  # fmt: skip
    model = SavedModel()
    evaluate(callback, model, 0, stsb_dev_spearman=0.5, heldout_align_uniform=-3.0, note="text")
    evaluate(callback, model, 10, stsb_dev_spearman=0.5, heldout_align_uniform=-3.5)  # equal: the earlier stays
    evaluate(callback, model, 20, stsb_dev_spearman=0.6, heldout_align_uniform=-3.2)
    evaluate(callback, model, 30, stsb_dev_spearman=math.nan, heldout_align_uniform=math.inf)
    assert callback.best == {"step": 20, "metric": STSB_KEY, "value": 0.6}
    assert saved(tmp_path / "best") == ("20", callback.best)
    secondary = {"step": 10, "metric": LABEL_FREE_KEY, "value": -3.5, "path": str(tmp_path / "best-label-free")}
    assert callback.secondary_best == secondary and saved(tmp_path / "best-label-free") == ("10", secondary)
    assert callback.history[0] == {"step": 0, STSB_KEY: 0.5, LABEL_FREE_KEY: -3.0}  # numbers only
    assert [h["step"] for h in callback.history] == [0, 10, 20, 30] and len(redraws) == 4
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert {r["event"] for r in log} == {"selection"}
    steps = [(r["step"], r["new_best"], r["best"]["step"]) for r in log]
    assert steps == [(0, True, 0), (10, False, 0), (20, True, 20), (30, False, 20)]
    assert log[2]["criterion"] == "stsb" and log[2]["metric"] == STSB_KEY and log[2]["value"] == 0.6
    assert not list(tmp_path.glob(".partial-*")) and not list(tmp_path.rglob("README.md"))  # no card: result.py's


def test_the_label_free_criterion_keeps_the_lowest(tmp_path: Path) -> None:
    callback = SelectionCallback("label-free", tmp_path / "best", RunLog(tmp_path / "log.jsonl"))
    model = SavedModel()
    for step, value in ((0, -3.0), (10, -3.4), (20, -3.1)):
        evaluate(callback, model, step, heldout_align_uniform=value, stsb_dev_spearman=0.9 - step / 100)
    assert callback.best == {"step": 10, "metric": LABEL_FREE_KEY, "value": -3.4}
    assert callback.secondary_best is None and not (tmp_path / "best-label-free").exists()


def test_an_evaluation_again_at_a_step_replaces_its_history_entry_and_without_the_metric_is_ignored(
    tmp_path: Path,
) -> None:
    callback = SelectionCallback("stsb", tmp_path / "best", RunLog(tmp_path / "log.jsonl"))
    model = SavedModel()
    evaluate(callback, model, 10, stsb_dev_spearman=0.5)
    evaluate(callback, model, 10, stsb_dev_spearman=0.55)  # a resumed run evaluates its last step again
    evaluate(callback, model, 20, heldout_align_uniform=-3.0)
    assert callback.history == [{"step": 10, STSB_KEY: 0.55}] and callback.best["value"] == 0.55


def test_other_processes_select_but_neither_save_nor_log(tmp_path: Path) -> None:
    callback = SelectionCallback("stsb", tmp_path / "best", RunLog(tmp_path / "log.jsonl"))
    evaluate(callback, SavedModel(), 0, main=False, stsb_dev_spearman=0.5)
    assert callback.best is not None and not (tmp_path / "best").exists() and not (tmp_path / "log.jsonl").exists()


def test_the_selection_state_survives_a_resume(tmp_path: Path) -> None:
    callback = SelectionCallback("stsb", tmp_path / "best", RunLog(tmp_path / "log.jsonl"), secondary="label-free",
                                 secondary_dir=tmp_path / "other")  # fmt: skip
    evaluate(callback, SavedModel(), 0, stsb_dev_spearman=0.5, heldout_align_uniform=-3.0)
    resumed = SelectionCallback("stsb", tmp_path / "best", RunLog(tmp_path / "log.jsonl"))
    assert callback.state_dict()["criterion"] == "stsb"  # the checkpoint says which criterion its best is by
    resumed.load_state_dict(json.loads(json.dumps(callback.state_dict())))
    assert (resumed.history, resumed.best, resumed.secondary_best) == (
        callback.history, callback.best, callback.secondary_best
    )  # fmt: skip
    resumed.load_state_dict(None)  # a checkpoint without selection state changes nothing
    assert resumed.best == callback.best


def test_the_agreement_of_the_two_choices_against_scipy() -> None:
    history = [
        {"step": 0, STSB_KEY: 0.70, LABEL_FREE_KEY: -3.0, "heldout_mi_loss": 0.9},
        {"step": 10, STSB_KEY: 0.75, LABEL_FREE_KEY: -3.4, "heldout_mi_loss": 0.7},
        {"step": 20, STSB_KEY: 0.74, LABEL_FREE_KEY: -3.1, "heldout_mi_loss": 0.8},
        {"step": 30, STSB_KEY: 0.72},  # one metric only: not compared
        {"step": 40, STSB_KEY: 0.80, LABEL_FREE_KEY: -3.2},
    ]
    result = selection_agreement(history)
    assert result is not None
    rows = [h for h in history if LABEL_FREE_KEY in h]
    rho = spearmanr([h[STSB_KEY] for h in rows], [-h[LABEL_FREE_KEY] for h in rows]).statistic
    loss_rho = spearmanr([h[STSB_KEY] for h in rows[:3]], [-h["heldout_mi_loss"] for h in rows[:3]]).statistic
    assert {k: v for k, v in result.items() if k != "text"} == {
        "evaluations": 4, "labeled_choice_step": 40, "label_free_choice_step": 10, "same_choice": False,
        "stsb_of_labeled_choice": 0.80, "stsb_of_label_free_choice": 0.75, "rank_correlation": pytest.approx(rho),
        "rank_correlation_mi_loss": pytest.approx(loss_rho),
    }  # fmt: skip
    assert result["text"] == (
        "label-free choice: step 10 (STSb dev 75.00); labeled choice: step 40 (STSb dev 80.00); rank correlation of "
        f"-(align+uniform) with STSb over 4 evaluations: {rho:+.2f}"
    )
    without_loss = [{k: v for k, v in h.items() if k != "heldout_mi_loss"} for h in rows]
    assert "rank_correlation_mi_loss" not in (selection_agreement(without_loss) or {})
    assert selection_agreement(rows[:1]) is None
    two = selection_agreement(rows[:2])  # two evaluations are enough to compare, the MI loss's included
    assert two is not None and two["evaluations"] == 2 and two["rank_correlation_mi_loss"] == pytest.approx(1.0)
