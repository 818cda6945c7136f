"""The wiring of a training run: which sentences it trains on and which it holds out for the label-free criterion,
which settings reach the corpus reader, the criterion and the trainer, what it writes (the folder's record, the log,
the summary, the selected model), and which settings a resumed run must share with the interrupted one (its
fingerprint). How a run stops early is in test_run_stops.py."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pytest
from helpers_training import TINY, log_records, write_corpus
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
    NO_IMPROVEMENT = "no evaluation beat the starting model; the starting model is kept as the best"
    done = {"best": result.best, "sentences_per_second": result.sentences_per_second, "agreement": result.agreement}
    assert log_records(out)[-3:] == as_json([
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
                "max_grad_norm": 0.5, "seed": 11, "precision": "bf16"}  # fmt: skip
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
    assert (args.bf16, args.fp16) == (True, False)  # CPU autocast


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

    first = train(**common)
    start = log_records(out)[0]
    assert start == {
        "event": "start", "step": 0, "config": json.loads(json.dumps(asdict(TrainConfig(**common)))),
        "corpus": first.corpus.to_dict(), "frozen_parameters": start["frozen_parameters"], "world_size": 1,
        "selection": default_criterion(None), "eval_steps": start["eval_steps"], "precision": first.precision,
        "threads": current_plan().describe(),
    }  # fmt: skip
    assert start["frozen_parameters"] and all(".embeddings." not in name for name in start["frozen_parameters"])
    train(**common, resume=True)  # the finished run's last checkpoint: nothing left to train, said in the log
    assert {"event": "resume", "step": 2, "checkpoint": str(out / "checkpoints" / "checkpoint-2")} in log_records(out)
    (out / SUMMARY_FILE).unlink()  # a run killed before its first checkpoint: resuming starts it afresh
    shutil.rmtree(out / "checkpoints")
    train(**common, resume=True)
    fresh = {"event": "resume", "step": 0, "checkpoint": None, "note": "no complete checkpoint; fresh start"}
    events = log_records(out)
    assert fresh in events and events[events.index(fresh) + 1]["event"] == "start"


def test_a_run_takes_the_config_and_the_keywords_and_prints_nothing_when_quiet(
    tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """No --dev: STSb is never read; no held-out slice: nothing is evaluated; a fresh quiet run writes no stderr."""
    import time

    import transformers

    def no_stsb(data_dir: Any) -> None:
        raise AssertionError("STSb dev was read by a run without --dev")

    transformers.utils.logging.enable_progress_bar()  # as in a fresh process (an earlier run here turned it off)

    monkeypatch.setattr(run_module, "load_stsb_dev", no_stsb)
    out = tmp_path / "run"
    config = TrainConfig(model=str(tiny_backbone), corpus=[str(write_corpus(tmp_path / "c.txt", 40))],
                         output=str(out), heldout_size=0, batch_size=8, **TINY)  # fmt: skip
    capfd.readouterr()
    began = time.perf_counter()
    result = train(config, max_steps=2)
    took = time.perf_counter() - began
    assert capfd.readouterr().err == ""  # no resume note, no progress bar, no warning
    assert result.steps == 2 and result.output_dir == out and 0 < result.seconds < took
    assert result.corpus.heldout == 0 and result.history == [] and result.best is None
    assert "eval" not in {record["event"] for record in log_records(out)}
    with pytest.raises(TypeError) as unknown:
        train(config, max_step=3, bogus=1)
    assert str(unknown.value) == "unknown training settings: bogus, max_step"


def test_the_corpus_is_read_with_the_run_s_reader_settings(
    tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[dict[str, Any]] = []
    real = run_module.build_corpus_dataset

    def recorded(corpus: Any, cache_dir: Any, **reader: Any) -> Any:
        asked.append(reader)
        return real(corpus, cache_dir)

    monkeypatch.setattr(run_module, "build_corpus_dataset", recorded)
    reader = {"text_field": "body", "column": "sentence", "encoding_errors": "replace", "dedup": True}
    train(model=str(tiny_backbone), corpus=[str(write_corpus(tmp_path / "c.txt", 40))], output=str(tmp_path / "run"),
          max_steps=1, batch_size=8, heldout_size=0, **TINY, **reader)  # fmt: skip
    assert asked == [reader]


@pytest.mark.parametrize(
    ("heldout", "batch", "refusal"),
    [
        (16, 32, "the corpus has 24 training sentences (after holding out 16), fewer than --batch-size 32"),
        (0, 48, "the corpus has 40 training sentences, fewer than --batch-size 48"),
        (0, 40, None),
    ],
)
def test_a_corpus_of_fewer_training_sentences_than_one_batch_is_refused(
    heldout: int, batch: int, refusal: str | None, tmp_path: Path, tiny_backbone: Path
) -> None:
    settings = {
        "model": str(tiny_backbone),
        "corpus": [str(write_corpus(tmp_path / "c.txt", 40))],
        "output": str(tmp_path / "run"),
        "heldout_size": heldout,
        "batch_size": batch,
        "epochs": 1,
        **TINY,
    }
    if refusal is None:  # exactly one batch: one step
        assert train(**settings).steps == 1
        return
    with pytest.raises(IsbertError) as refused:
        train(**settings)
    assert str(refused.value) == f"{refusal}; lower --batch-size or add sentences"


def test_the_run_folder_is_made_recorded_and_refused_word_for_word(tmp_path: Path) -> None:
    import json
    import re

    from isbert.training.run_folder import RUN_FILE, SettingsMismatch

    corpus = tmp_path / "c.txt"
    corpus.write_text("a sentence\n", encoding="utf-8")
    fingerprint = [{"path": str(corpus), "size": 11, "mtime_ns": 1}]
    out = tmp_path / "new" / "deeper" / "run"
    config = TrainConfig(corpus=[str(corpus)], output=str(out))
    prepare_output(config, fingerprint)  # the missing parents are made
    record = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
    assert record["config"] == json.loads(json.dumps(asdict(config)))
    assert record["trajectory"] == json.loads(json.dumps({**config.trajectory(), "corpus": fingerprint}))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", record["started"])
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_output(TrainConfig(corpus=[str(corpus)], output=str(empty)), fingerprint)  # an empty folder is taken
    assert (empty / RUN_FILE).is_file()

    def refusal(**settings: Any) -> str:
        with pytest.raises(IsbertError) as refused:
            prepare_output(TrainConfig(**{**asdict(config), **settings}), fingerprint)
        return str(refused.value)

    assert refusal(resume=True, overwrite=True) == "choose one of --resume and --overwrite"
    assert refusal(output=str(corpus)) == f"--output {corpus} is a file, not a folder"
    # a run folder of another version: a setting its record lacks and one this version lacks both differ
    record["trajectory"].pop("lr")
    record["trajectory"]["retired_setting"] = 1
    (out / RUN_FILE).write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(SettingsMismatch) as mismatch:
        prepare_output(TrainConfig(**{**asdict(config), "resume": True}), fingerprint)
    assert sorted(mismatch.value.changed) == ["lr", "retired_setting"]


def test_a_run_with_a_dev_set_wires_its_data_coverage_and_training_free_line(
    tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STSb dev comes from --data-dir; the backbone's word coverage of the training sentences and the training-free
    line of the saved step reach the result."""
    from experiments.tiny_data import write_tiny_data
    from sentence_transformers import SentenceTransformer

    data = write_tiny_data(tmp_path / "data", monkeypatch)
    monkeypatch.delenv("ISBERT_DATA_DIR")  # only --data-dir says where the data is
    loaded: list[Any] = []
    load = run_module.load_stsb_dev
    monkeypatch.setattr(run_module, "load_stsb_dev", lambda data_dir: loaded.append(data_dir) or load(data_dir))

    class Coverage:
        def as_dict(self) -> dict[str, int]:
            return {"words": 7}

    covered: list[tuple[Any, list[str]]] = []

    def coverage(model: Any, texts: Any) -> Coverage:
        covered.append((model, list(texts)))
        return Coverage()

    monkeypatch.setattr(run_module, "word_coverage", coverage)
    monkeypatch.setattr(run_module, "training_free_line", lambda config, dev, step: f"SIF beside step {step}")
    corpus = write_corpus(tmp_path / "c.txt", 40)
    result = train(model=str(tiny_backbone), corpus=[str(corpus)], output=str(tmp_path / "run"), max_steps=2,
                   eval_steps=1, batch_size=8, heldout_size=0, dev="stsb", data_dir=str(data), **TINY)  # fmt: skip
    assert loaded == [str(data)]
    [(model, texts)] = covered
    assert isinstance(model, SentenceTransformer) and sorted(texts) == sorted(corpus.read_text().split("\n")[:-1])
    assert result.corpus.word_coverage == {"words": 7}
    assert result.best is not None and result.training_free == f"SIF beside step {result.best['step']}"


def test_the_saved_model_is_the_selected_one_not_the_last(
    tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The criterion is scripted to pick step 2 of 6; the run keeps one checkpoint and counts sentences per step."""
    from helpers_training import parameter_digest

    import isbert
    from isbert.training.checkpoints import list_checkpoints
    from isbert.training.selection import LABEL_FREE_KEY

    scripted = {0: 1.0, 2: -5.0, 4: 0.0, 6: 0.0}  # lower is better

    class Scripted(LabelFreeEvaluator):
        def __call__(self, model: Any, output_path: Any = None, epoch: float = -1, steps: int = -1) -> dict:
            return {LABEL_FREE_KEY: scripted[steps]}

    bars: list[Any] = []

    class Progress(run_module.ProgressCallback):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(run_module, "LabelFreeEvaluator", Scripted)
    monkeypatch.setattr(run_module, "ProgressCallback", Progress)
    out = tmp_path / "run"
    result = train(model=str(tiny_backbone), corpus=[str(write_corpus(tmp_path / "c.txt", 120))], output=str(out),
                   max_steps=6, eval_steps=2, save_steps=2, keep_checkpoints=1, batch_size=8, heldout_size=16,
                   lr=1e-2, **TINY)  # fmt: skip
    assert result.best is not None and result.best["step"] == 2
    saved, best = parameter_digest(isbert.load(out)), parameter_digest(isbert.load(out / "checkpoints" / "best"))
    assert saved == best != parameter_digest(isbert.load(out / "checkpoints" / "checkpoint-6"))
    assert [step for step, _ in list_checkpoints(out / "checkpoints")] == [6]  # --keep-checkpoints 1
    [bar] = bars
    assert bar.sentences_per_step == 8 and bar.enabled is False


def test_the_probe_for_unused_parameters_feeds_every_column_the_loss_reads(
    tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TSDAE's loss reads two columns (the noisy text and the text): the probe's pass must give it both."""
    from isbert.training.models import freeze_unused_parameters

    probed: list[int] = []

    def recorded(model: Any, loss: Any, columns: int = 1) -> list[str]:
        probed.append(columns)
        return freeze_unused_parameters(model, loss, columns)

    monkeypatch.setattr(run_module, "freeze_unused_parameters", recorded)
    for objective in ("is", "tsdae"):
        config = TrainConfig(model=str(tiny_backbone), corpus=[], output=str(tmp_path), objective=objective, **TINY)
        run_module._model_and_loss(config)
    assert probed == [1, 2]
