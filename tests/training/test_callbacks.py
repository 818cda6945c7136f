"""The Trainer callbacks, driven directly with the Trainer's state and control objects (no training run): what the
log records, when a run evaluates, saves and stops, and what the progress line and the evaluation lines say."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from transformers import TrainerControl, TrainerState

from isbert.training import callbacks as callbacks_module
from isbert.training.callbacks import ControlCallback, LogCallback, ProgressCallback
from isbert.training.run_log import RunLog


def state(step: int, max_steps: int = 10, main: bool = True) -> TrainerState:
    made = TrainerState(global_step=step, max_steps=max_steps, epoch=step / max_steps)
    made.is_world_process_zero = main
    return made


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_log_names_each_record_by_what_it_holds(tmp_path: Path) -> None:
    log = LogCallback(RunLog(tmp_path / "log.jsonl"))
    log.on_log(None, state(2), None, logs={"loss": 0.5, "learning_rate": 1e-3})
    log.on_log(None, state(4), None, logs={"eval_stsb_dev_spearman": 0.8, "loss": 0.4})  # eval wins over loss
    log.on_log(None, state(10), None, logs={"train_runtime": 3.0})
    written = records(tmp_path / "log.jsonl")
    assert [(r["event"], r["step"], r["epoch"]) for r in written] == [
        ("train", 2, 0.2),
        ("eval", 4, 0.4),
        ("end", 10, 1.0),
    ]
    assert written[0]["loss"] == 0.5 and written[0]["learning_rate"] == 1e-3
    assert written[1]["eval_stsb_dev_spearman"] == 0.8 and written[2]["train_runtime"] == 3.0


def test_the_log_skips_empty_logs_and_other_processes(tmp_path: Path) -> None:
    log = LogCallback(RunLog(tmp_path / "log.jsonl"))
    log.on_log(None, state(2), None, logs={})
    log.on_log(None, state(2), None, logs=None)
    log.on_log(None, state(2, main=False), None, logs={"loss": 0.5})
    assert not (tmp_path / "log.jsonl").exists()


@pytest.mark.parametrize("evaluate", [True, False])
def test_the_last_step_saves_and_evaluates_only_when_asked(evaluate: bool) -> None:
    control = ControlCallback(evaluate=evaluate)
    before_last = TrainerControl()
    control.on_step_end(None, state(9), before_last)
    assert not before_last.should_save and not before_last.should_evaluate and not before_last.should_training_stop
    last = TrainerControl()
    control.on_step_end(None, state(10), last)
    assert last.should_save and last.should_evaluate is evaluate and not last.should_training_stop


def test_an_interrupted_run_saves_and_stops_at_the_next_step_end() -> None:
    control = ControlCallback(evaluate=True)
    control.interrupted = True
    flags = TrainerControl()
    control.on_step_end(None, state(3), flags)
    assert flags.should_save and flags.should_training_stop and not flags.should_evaluate


def test_sentences_per_second_counts_steps_since_the_start_over_time_inside_steps(monkeypatch) -> None:
    clock = iter([100.0, 100.5, 200.0, 200.5, 300.0, 301.0])  # begin/end of three steps; the gaps are evaluations
    monkeypatch.setattr(callbacks_module.time, "perf_counter", lambda: next(clock))
    progress = ProgressCallback(sentences_per_step=32, enabled=False)
    progress.on_train_begin(None, state(5), None)  # a resumed run: steps before 5 are not this run's
    assert progress.sentences_per_second(state(5)) == 0.0
    for step in (6, 7, 8):
        progress.on_step_begin(None, state(step - 1), None)
        progress.on_step_end(None, state(step), None)
    assert progress.sentences_per_second(state(8)) == pytest.approx(3 * 32 / 2.0)


def test_less_than_a_second_of_steps_still_has_a_speed(monkeypatch) -> None:
    clock = iter([0.0, 0.25])
    monkeypatch.setattr(callbacks_module.time, "perf_counter", lambda: next(clock))
    progress = ProgressCallback(sentences_per_step=32, enabled=False)
    progress.on_train_begin(None, state(0), None)
    progress.on_step_begin(None, state(0), None)
    progress.on_step_end(None, state(1), None)
    assert progress.sentences_per_second(state(1)) == pytest.approx(128.0)


def test_the_bar_shows_step_loss_and_speed_from_where_a_resumed_run_starts(monkeypatch) -> None:
    clock = iter([0.0, 2.0, 2.0, 4.0])
    monkeypatch.setattr(callbacks_module.time, "perf_counter", lambda: next(clock))
    progress = ProgressCallback(sentences_per_step=8)
    progress.on_train_begin(None, state(3, max_steps=10), None)
    bar = progress.bar
    assert (bar.total, bar.n, bar.desc, bar.unit, bar.smoothing) == (10, 3, "isbert train", "step", 0.1)
    assert bar.dynamic_ncols  # the bar follows the terminal's width
    redraws: list[int] = []
    monkeypatch.setattr(bar, "refresh", lambda *args, **kwargs: redraws.append(1))
    progress.on_log(None, state(4), None, logs={"loss": 1.23456})
    for step in (4, 5):
        progress.on_step_begin(None, state(step - 1), None)
        progress.on_step_end(None, state(step), None)
    assert bar.n == 5 and bar.postfix == "loss=1.2346, sent/s=4.0"
    assert not redraws  # the postfix waits for the bar's own rate-limited redraw: no redraw forced each step
    progress.on_train_end(None, state(10), None)
    assert progress.bar is None


def test_with_the_bar_an_evaluation_line_is_written_above_it(monkeypatch) -> None:
    progress = ProgressCallback(sentences_per_step=8)
    progress.on_train_begin(None, state(0), None)
    written: list[str] = []
    monkeypatch.setattr(progress.bar, "write", written.append)
    progress.on_log(None, state(50), None, logs={"eval_stsb_dev_spearman": 0.5})
    assert written == ["step 50: STSb dev Spearman 50.00"]
    progress.on_train_end(None, state(50), None)


class Stdout:
    def __init__(self) -> None:
        self.text, self.flushed_at = "", []

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        self.flushed_at.append(len(self.text))


def test_without_the_bar_each_evaluation_line_is_flushed_at_once(monkeypatch) -> None:
    """Piped to a log file (``isbert train ... | tee``), a score must not wait in a buffer until the run ends."""
    stdout = Stdout()
    monkeypatch.setattr(sys, "stdout", stdout)
    ProgressCallback(sentences_per_step=8, enabled=False).on_log(
        None, state(5), None, logs={"eval_stsb_dev_spearman": 0.5}
    )
    assert stdout.text == "step 5: STSb dev Spearman 50.00\n" and stdout.flushed_at == [len(stdout.text)]


def test_no_bar_on_other_processes_or_when_disabled() -> None:
    for progress, main in ((ProgressCallback(8, enabled=False), True), (ProgressCallback(8), False)):
        progress.on_train_begin(None, state(0, main=main), None)
        assert progress.bar is None


def test_each_evaluation_prints_one_line_with_its_scores_even_without_the_bar(capsys) -> None:
    progress = ProgressCallback(sentences_per_step=8, enabled=False)
    progress.on_log(None, state(50), None, logs={"eval_stsb_dev_spearman": 0.81234, "eval_heldout_align_uniform": -3.5})
    progress.on_log(None, state(60), None, logs={"eval_heldout_align_uniform": -3.25})
    progress.on_log(None, state(70), None, logs={"loss": 0.5})  # a training log prints nothing
    progress.on_log(None, state(80, main=False), None, logs={"eval_stsb_dev_spearman": 0.9})
    assert capsys.readouterr().out.splitlines() == [
        "step 50: STSb dev Spearman 81.23 held-out align+uniform -3.5000",
        "step 60: held-out align+uniform -3.2500",
    ]
    assert progress.loss == 0.5
