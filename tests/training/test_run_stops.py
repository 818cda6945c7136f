"""How a training run stops before its end: Ctrl-C, a NaN loss, a failing disk, a hostile checkpoint on resume.

Each stop says where the last good checkpoint is, word for word, writes its reason into the log, and leaves the
caller's own Ctrl-C handler in place.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers_training import TINY, assert_resumed_from, ctrl_c_at, latest_checkpoint_step, log_records, write_corpus

import isbert
from isbert.errors import IsbertError
from isbert.training import TrainingInterrupted, train
from isbert.training.checkpoints import PARTIAL_PREFIX


def _settings(tmp_path: Path, backbone: Path, **more: Any) -> dict[str, Any]:
    corpus = write_corpus(tmp_path / "c.txt", 200)
    return {"model": str(backbone), "corpus": [str(corpus)], "output": str(tmp_path / "run"), "max_steps": 10,
            "batch_size": 8, "heldout_size": 0, "lr": 1e-3, **TINY, **more}  # fmt: skip


def _own_handler(signum: int, frame: Any) -> None:
    raise AssertionError("the caller's Ctrl-C handler ran")


def test_ctrl_c_stops_at_a_checkpoint_and_resume_continues_the_same_run(tmp_path: Path, tiny_backbone: Path) -> None:
    from transformers import TrainerCallback

    out = tmp_path / "run"
    settings = _settings(tmp_path, tiny_backbone, heldout_size=16, eval_steps=2, save_steps=100)
    curves_seen: list[bool] = []

    class CurvesAfterFirstEvaluation(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 3:  # evaluated at 0 and 2: the curves are drawn as the run goes, not at its end
                curves_seen.append((out / "training_curves.png").is_file())

    previous = signal.signal(signal.SIGINT, _own_handler)
    try:
        with pytest.raises(TrainingInterrupted) as stopped:
            train(callbacks=[ctrl_c_at(5), CurvesAfterFirstEvaluation()], **settings)
        assert signal.getsignal(signal.SIGINT) is _own_handler
        step = latest_checkpoint_step(out)
        assert str(stopped.value) == (
            f"interrupted at step {step}; checkpoint saved in {out / 'checkpoints'}. Continue with the same command "
            "plus --resume"
        )
        assert log_records(out)[-1] == {"event": "interrupted", "step": step}
        assert curves_seen == [True]
        result = train(resume=True, **settings)
        assert signal.getsignal(signal.SIGINT) is _own_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert result.steps == 10
    assert_resumed_from(out, step, max_steps=10)
    evaluated = [h["step"] for h in result.history]  # the evaluations before Ctrl-C are part of the resumed run's
    assert evaluated[:3] == [0, 2, 4] and evaluated[-1] == 10 and evaluated == sorted(set(evaluated))


@pytest.mark.parametrize(
    ("nan_from_call", "where"),
    [(6, "the last good checkpoint is {out}/checkpoints/checkpoint-4"), (2, "no checkpoint was written yet")],
)
def test_a_nan_loss_stops_the_run_and_names_its_last_good_checkpoint(
    nan_from_call: int, where: str, tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import isbert.losses as losses

    real = losses.mutual_information_loss
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls["n"] += 1  # call 1 is the frozen-parameter probe, then one call per step
        value = real(*args, **kwargs)
        return value * float("nan") if calls["n"] >= nan_from_call else value

    monkeypatch.setattr(losses, "mutual_information_loss", flaky)
    out = tmp_path / "run"
    step = nan_from_call - 1
    with pytest.raises(IsbertError) as stopped:
        train(**_settings(tmp_path, tiny_backbone, save_steps=2))
    reason = f"the loss became nan at step {step}"
    assert str(stopped.value) == (
        f"{reason}; training stopped ({where.format(out=out)}; it loads with isbert.load). Try a lower --lr or "
        "--precision fp32"
    )
    assert log_records(out)[-1] == {"event": "stopped", "step": step, "reason": reason}
    if step > 2:  # steps 2 and 4 were logged: their curves are drawn, and the checkpoint of step 4 loads
        assert (out / "training_curves.png").is_file()
        assert isbert.load(out / "checkpoints" / "checkpoint-4").encode(["a dog"]).shape == (1, 24)


@pytest.mark.parametrize(
    ("failing_save", "error", "reason"),
    [
        (2, OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
        (1, OSError(errno.EACCES, "Permission denied"), "Permission denied"),
        (2, OSError("the checkpoint folder vanished"), "the checkpoint folder vanished"),
    ],
)
def test_a_failing_disk_stops_the_run_at_its_last_complete_checkpoint(
    failing_save: int, error: OSError, reason: str, tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from isbert.training import trainer

    saves = {"count": 0}
    publish = trainer.publish_dir

    def failing(staged: Path, target: Path) -> None:
        saves["count"] += 1
        if saves["count"] == failing_save:
            raise error
        publish(staged, target)

    monkeypatch.setattr(trainer, "publish_dir", failing)
    out = tmp_path / "run"
    with pytest.raises(IsbertError) as stopped:
        train(**_settings(tmp_path, tiny_backbone, save_steps=4))
    step = 4 * failing_save
    where = (
        f"the last complete checkpoint is {out / 'checkpoints' / 'checkpoint-4'}; --resume continues from it"
        if failing_save == 2
        else "no checkpoint yet"
    )
    assert str(stopped.value) == f"training stopped at step {step}: {reason} ({where})"
    assert log_records(out)[-1] == {"event": "stopped", "step": step, "reason": reason}
    assert not [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith(PARTIAL_PREFIX)]


def test_resuming_from_a_checkpoint_whose_state_file_holds_more_than_tensors_is_refused(
    tmp_path: Path, tiny_backbone: Path
) -> None:
    settings = _settings(tmp_path, tiny_backbone, save_steps=100)
    with pytest.raises(TrainingInterrupted):
        train(callbacks=[ctrl_c_at(3)], **settings)
    checkpoint = tmp_path / "run" / "checkpoints" / f"checkpoint-{latest_checkpoint_step(tmp_path / 'run')}"
    torch.save({"state": {}, "param_groups": [], "call": os.getcwd}, checkpoint / "optimizer.pt")  # a function
    with pytest.raises(IsbertError) as refused:
        train(resume=True, **settings)
    assert str(refused.value) == (
        f"{checkpoint}: refused, a state file in the checkpoint holds objects other than tensors; remove the "
        "checkpoint to resume from an earlier one"
    )
