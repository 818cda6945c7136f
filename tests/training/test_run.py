"""The wiring of a training run: which sentences it trains on and which it holds out for the label-free criterion,
and which settings a resumed run must share with the interrupted one (its fingerprint)."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pytest
from helpers_training import TINY, write_corpus
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
    result = train(
        model=str(tiny_backbone), corpus=[str(corpus)], output=str(tmp_path / "run"), max_steps=1, batch_size=8,
        heldout_size=20, seed=7, dedup=True, **TINY,
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


def test_a_run_s_summary_and_last_log_records_say_what_its_result_says(
    tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At ``lr=1e-30`` the float32 weights cannot move, so no evaluation beats the start and the note says so;
    ``keep_checkpoints=0`` leaves no checkpoint. The degradation warning, the agreement of the criteria and the other
    criterion's pick are planted: each must reach the result, the summary and the last records as it is."""
    import json

    from experiments.tiny_data import write_tiny_data

    from isbert.threads import current_plan
    from isbert.training.result import TrainResult
    from isbert.training.run_folder import SUMMARY_FILE
    from isbert.training.selection import default_criterion

    class OtherPick(run_module.SelectionCallback):
        """The other criterion picked step 1 (which criteria do disagree on cannot be forced on a tiny model)."""

        @property  # type: ignore[override]
        def secondary_best(self) -> dict[str, Any]:
            return {"step": 1, "value": 0.5, "path": "checkpoints/other"}

        @secondary_best.setter
        def secondary_best(self, value: Any) -> None:
            pass

    data = write_tiny_data(tmp_path / "data", monkeypatch)
    monkeypatch.setattr(TrainResult, "degradation_warning", lambda self: "a planted warning")
    monkeypatch.setattr(run_module, "SelectionCallback", OtherPick)
    monkeypatch.setattr(
        run_module, "selection_agreement", lambda history: {"text": f"planted, {len(history)} evaluations"}
    )
    out = tmp_path / "run"
    result = train(
        model=str(tiny_backbone), corpus=[str(write_corpus(tmp_path / "c.txt", 120))], output=str(out), max_steps=2,
        eval_steps=1, batch_size=8, lr=1e-30, dev="stsb", data_dir=str(data), keep_checkpoints=0, **TINY,
    )  # fmt: skip
    assert [h["step"] for h in result.history] == [0, 1, 2] and result.start == result.history[0]
    assert result.best is not None and result.best["step"] == 0 and not result.interrupted
    assert result.agreement == {"text": "planted, 3 evaluations"} and result.threads == current_plan().describe()
    assert result.alternative == {"step": 1, "value": 0.5, "path": None}  # its checkpoint is gone with the others
    assert not (out / "checkpoints").exists()

    def as_json(value: Any) -> Any:
        return json.loads(json.dumps(value, default=float))

    summary = {key: value for key, value in asdict(result).items() if key not in ("output_dir", "corpus")}
    summary |= {"output_dir": str(out), "corpus": result.corpus.to_dict(), "selection": default_criterion("stsb")}
    assert json.loads((out / SUMMARY_FILE).read_text()) == as_json(summary | {"no_improvement": True})
    records = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    NO_IMPROVEMENT = "no evaluation beat the starting model; the starting model is kept as the best"
    done = {"best": result.best, "sentences_per_second": result.sentences_per_second, "agreement": result.agreement}
    assert [{k: v for k, v in record.items() if k != "time"} for record in records[-3:]] == as_json([
        {"event": "note", "step": 2, "note": NO_IMPROVEMENT},
        {"event": "warning", "step": 2, "warning": "a planted warning"},
        {"event": "done", "step": 2, **done},
    ])  # fmt: skip


def test_the_label_free_criterion_takes_the_run_s_settings_from_two_held_out_sentences_on(
    tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[dict[str, Any]] = []

    class Criterion(LabelFreeEvaluator):
        def __init__(self, sentences: list[str], **kwargs: Any) -> None:
            super().__init__(sentences, **kwargs)
            made.append({"sentences": len(sentences), **kwargs})

    monkeypatch.setattr(run_module, "LabelFreeEvaluator", Criterion)
    corpus = str(write_corpus(tmp_path / "c.txt", 40))
    tiny = {"max_steps": 1, "batch_size": 8, **TINY}
    objective = {"estimator": "infonce", "critic": "cosine", "temperature": 0.3, "exclude_radius": 1}
    result = train(model=str(tiny_backbone), corpus=[corpus], output=str(tmp_path / "two"), heldout_size=2, seed=5,
                   eval_batch_size=5, **objective, **tiny)  # fmt: skip
    assert made == [{"sentences": 2, "seed": 5, "batch_size": 5, **objective, "mi": True}]
    assert result.best is not None and result.best["metric"] == "heldout_align_uniform"
    assert (tmp_path / "two" / "checkpoints").is_dir() and not (tmp_path / "two" / "checkpoints" / "eval").exists()
    none = train(model=str(tiny_backbone), corpus=[corpus], output=str(tmp_path / "none"), heldout_size=0, **tiny)
    assert len(made) == 1 and none.history == [] and none.best is None  # nothing to evaluate on: no evaluation
    with pytest.raises(IsbertError) as refused:
        train(model=str(tiny_backbone), corpus=[corpus], output=str(tmp_path / "asked"), heldout_size=0,
              select="label-free", **tiny)  # fmt: skip
    assert str(refused.value) == "--select label-free needs held-out sentences (--heldout-size of at least 2)"


class RecordedShuffle(run_module.EpochSeededBatchSampler):  # type: ignore[misc,valid-type]
    """The seeded random batch order, counting the batches of each epoch it makes (module level: it is pickled)."""

    made: list[int] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.made.append(len(self))


@pytest.mark.parametrize("batching", ["random", "length"])
def test_an_epoch_is_the_corpus_in_batches_of_the_run_s_size_in_the_order_asked(
    batching: str, tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """42 sentences in batches of 4 are 10 steps an epoch (the last partial batch is dropped)."""
    monkeypatch.setattr(run_module, "EpochSeededBatchSampler", RecordedShuffle)
    monkeypatch.setattr(RecordedShuffle, "made", [])
    corpus = str(write_corpus(tmp_path / "c.txt", 42))
    result = train(model=str(tiny_backbone), corpus=[corpus], output=str(tmp_path / "run"), heldout_size=0,
                   epochs=1, batch_size=4, batching=batching, **TINY)  # fmt: skip
    assert result.steps == 10
    assert RecordedShuffle.made == ([10] if batching == "random" else [])


def test_every_optimisation_setting_of_the_run_reaches_the_trainer(
    tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each value differs from transformers' default, so a setting left out of the arguments shows."""
    given: list[Any] = []

    class Trainer(IsbertTrainer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            given.append(self.args)

    monkeypatch.setattr(run_module, "IsbertTrainer", Trainer)
    settings = {"lr": 3e-4, "weight_decay": 0.05, "adam_epsilon": 1e-6, "lr_scheduler": "cosine", "warmup_ratio": 0.2,
                "max_grad_norm": 0.5, "seed": 11}  # fmt: skip
    train(model=str(tiny_backbone), corpus=[str(write_corpus(tmp_path / "c.txt", 24))], output=str(tmp_path / "run"),
          heldout_size=0, epochs=1, batch_size=8, **TINY, **settings)  # fmt: skip
    [args] = given
    assert (args.learning_rate, args.weight_decay, args.adam_epsilon, args.warmup_steps, args.max_grad_norm) == (
        3e-4, 0.05, 1e-6, 0.2, 0.5
    )  # fmt: skip
    assert (args.seed, args.lr_scheduler_type.value, args.optim.value) == (11, "cosine", "adamw_torch_fused")
    assert args.max_steps == -1  # no --max-steps: the epochs decide
    assert (args.save_strategy, args.save_total_limit, args.report_to) == ("steps", None, [])
    assert args.disable_tqdm and not args.logging_nan_inf_filter and not args.dataloader_pin_memory
    assert args.use_cpu and args.ddp_find_unused_parameters is False


@pytest.mark.parametrize(("select", "other"), [("stsb", "label-free"), ("label-free", "stsb")])
def test_a_run_keeps_the_other_criterion_s_pick_beside_its_own(
    select: str, other: str, tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from experiments.tiny_data import write_tiny_data

    from isbert.training.selection import CRITERIA

    data = write_tiny_data(tmp_path / "data", monkeypatch)
    out = tmp_path / "run"
    result = train(model=str(tiny_backbone), corpus=[str(write_corpus(tmp_path / "c.txt", 120))], output=str(out),
                   max_steps=2, eval_steps=1, batch_size=8, lr=1e-3, dev="stsb", data_dir=str(data), heldout_size=16,
                   select=select, **TINY)  # fmt: skip
    assert result.best is not None and result.best["metric"] == CRITERIA[select][0]
    assert result.alternative is not None and result.alternative["metric"] == CRITERIA[other][0]
    assert result.alternative["path"] == str(out / "checkpoints" / f"best-{other}")
    assert (out / "checkpoints" / f"best-{other}" / "modules.json").is_file()


def test_the_log_says_how_each_run_started_and_where_it_resumed(tmp_path: Path, tiny_backbone: Path) -> None:
    import json
    import shutil

    from isbert.threads import current_plan
    from isbert.training.run_folder import SUMMARY_FILE
    from isbert.training.selection import default_criterion

    out = tmp_path / "run"
    common = {"model": str(tiny_backbone), "corpus": [str(write_corpus(tmp_path / "c.txt", 40))], "output": str(out),
              "max_steps": 2, "batch_size": 8, "heldout_size": 0, "save_steps": 1, "train_parts": "head+embeddings",
              **TINY}  # fmt: skip

    def records() -> list[dict[str, Any]]:
        lines = (out / "training_log.jsonl").read_text(encoding="utf-8").splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]

    first = train(**common)
    start = records()[0]
    assert start == {
        "event": "start", "step": 0, "config": json.loads(json.dumps(asdict(TrainConfig(**common)))),
        "corpus": first.corpus.to_dict(), "frozen_parameters": start["frozen_parameters"], "world_size": 1,
        "selection": default_criterion(None), "eval_steps": start["eval_steps"], "precision": first.precision,
        "threads": current_plan().describe(),
    }  # fmt: skip
    assert start["frozen_parameters"] and all(".embeddings." not in name for name in start["frozen_parameters"])
    train(**common, resume=True)  # the finished run's last checkpoint: nothing left to train, said in the log
    assert {"event": "resume", "step": 2, "checkpoint": str(out / "checkpoints" / "checkpoint-2")} in records()
    (out / SUMMARY_FILE).unlink()  # a run killed before its first checkpoint: resuming starts it afresh
    shutil.rmtree(out / "checkpoints")
    train(**common, resume=True)
    fresh = {"event": "resume", "step": 0, "checkpoint": None, "note": "no complete checkpoint; fresh start"}
    events = records()
    assert fresh in events and events[events.index(fresh) + 1]["event"] == "start"
