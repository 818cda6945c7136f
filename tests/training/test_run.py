"""The wiring of a training run: which sentences it trains on and which it holds out for the label-free criterion,
and which settings a resumed run must share with the interrupted one (its fingerprint)."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pytest
from helpers_training import write_corpus
from setting_values import other_value

import isbert.training.run as run_module
from isbert.errors import IsbertError
from isbert.training import TrainConfig, train
from isbert.training.corpus import build_corpus_dataset, split_heldout
from isbert.training.run import prepare_output
from isbert.training.selection.evaluators import LabelFreeEvaluator
from isbert.training.trainer import IsbertTrainer

NOT_TRAJECTORY = {
    # what is evaluated, when, and how the model is selected: never the weights' path
    "dev", "data_dir", "select", "eval_steps", "eval_batch_size",
    # checkpoints, logs and where the run lives
    "save_steps", "keep_checkpoints", "logging_steps", "device", "show_progress", "output", "resume", "overwrite",
    # fingerprinted apart, by the files' paths, sizes and modification times
    "corpus",
}  # fmt: skip


def test_the_fingerprint_is_every_setting_but_the_listed_ones() -> None:
    assert set(TrainConfig().trajectory()) == {f.name for f in fields(TrainConfig)} - NOT_TRAJECTORY


@pytest.mark.parametrize("name", sorted({f.name for f in fields(TrainConfig)} - {"output", "resume", "overwrite"}))
def test_resume_refuses_exactly_the_settings_that_change_training(tmp_path: Path, name: str) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("a sentence\n", encoding="utf-8")
    config = TrainConfig(corpus=[str(corpus)], output=str(tmp_path / "run"))
    fingerprint = [{"path": str(corpus), "size": 11, "mtime_ns": 1}]
    prepare_output(config, fingerprint)
    changed = TrainConfig(**{**asdict(config), "resume": True, name: other_value(name)})
    if name in NOT_TRAJECTORY and name != "corpus":
        prepare_output(changed, fingerprint)  # resumes
        return
    if name == "corpus":  # the files' fingerprint, not the list as written, is compared
        prepare_output(changed, fingerprint)
        changed = TrainConfig(**{**asdict(config), "resume": True})
        fingerprint = [{**fingerprint[0], "mtime_ns": 2}]
    with pytest.raises(IsbertError, match=rf"holds a different run \(differs in: {name}\)"):
        prepare_output(changed, fingerprint)


def test_the_run_trains_on_the_rest_and_scores_the_held_out_slice(
    tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The held-out sentences are the seeded slice, given to the label-free criterion and never to the trainer."""
    seen: dict[str, list[str]] = {}

    class Trainer(IsbertTrainer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            seen["trained"] = list(self.train_dataset["text"])

    class Criterion(LabelFreeEvaluator):
        def __init__(self, sentences: list[str], **kwargs: Any) -> None:
            super().__init__(sentences, **kwargs)
            seen["heldout"] = list(sentences)

    monkeypatch.setattr(run_module, "IsbertTrainer", Trainer)
    monkeypatch.setattr(run_module, "LabelFreeEvaluator", Criterion)
    corpus = write_corpus(tmp_path / "c.txt", 240, seed=3)
    settings = {"max_seq_length": 16, "out_channels": 8, "show_progress": False, "device": "cpu"}
    result = train(
        model=str(tiny_backbone), corpus=[str(corpus)], output=str(tmp_path / "run"), max_steps=1, batch_size=8,
        heldout_size=20, seed=7, dedup=True, **settings,
    )  # fmt: skip
    dataset, _ = build_corpus_dataset([corpus], tmp_path / "cache", dedup=True)
    train_set, heldout = split_heldout(dataset, 20, seed=7)
    assert seen["heldout"] == list(heldout["text"]) and len(seen["heldout"]) == 20
    assert sorted(seen["trained"]) == sorted(train_set["text"])
    assert not set(seen["trained"]) & set(seen["heldout"])
    assert sorted(seen["trained"] + seen["heldout"]) == sorted(dataset["text"])
    assert result.corpus.heldout == 20 and result.corpus.used == len(dataset)
    _, other_seed = split_heldout(dataset, 20, seed=8)
    assert list(other_seed["text"]) != seen["heldout"]  # the slice follows the run's seed
