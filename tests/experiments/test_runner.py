"""The experiment runner on the tiny random BERT and a tiny data folder: reports, reuse, partial reruns, --only,
Ctrl-C and resume; and the CI subset experiments/quick.toml end to end on the real data."""

from __future__ import annotations

import json
import os
import random
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from isbert.cli import main
from isbert.experiments import ExperimentInterrupted, load_experiment, run_experiment
from isbert.training import run as training

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from helpers_training import assert_resumed_from, ctrl_c_at, latest_checkpoint_step

from experiments.tiny_data import TINY_RUN_DEFAULTS, sentence, write_tiny_data

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return write_tiny_data(tmp_path / "data", monkeypatch)


def write_experiment(folder: Path, backbone: Path, lr_b: float = 1e-3, name: str = "tiny.toml") -> Path:
    rng = random.Random(1)
    (folder / "corpus.txt").write_text("\n".join(sentence(rng) for _ in range(200)) + "\n", encoding="utf-8")
    path = folder / name
    path.write_text(
        f"""
[experiment]
description = "tiny runner test"
budget_minutes = 2
tasks = "stsb,sick-r"
tradeoff_task = "stsb"
seeds = [7]

[defaults]
model = "{backbone}"
corpus = ["corpus.txt"]       # relative to this file
{TINY_RUN_DEFAULTS}logging_steps = 2
lr = 1e-3
device = "cpu"

[[run]]
name = "mean"
baseline = "mean"

[[run]]
name = "is-a"
note = "the default objective"

[[run]]
name = "is-b"
activation = "relu"
lr = {lr_b}
""",
        encoding="utf-8",
    )
    return path


class TrainSpy:
    """Wraps the real train(): records each call's run folder and resume flag; ``fail`` makes any call an error."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, callbacks: list[Any] | None = None) -> None:
        self.real = training.train
        self.calls: list[tuple[str, bool]] = []
        self.callbacks = callbacks
        self.fail = False
        monkeypatch.setattr(training, "train", self)

    def __call__(self, config: Any) -> Any:
        self.calls.append((Path(config.output).parent.parent.name, config.resume))
        if self.fail:
            raise AssertionError("train() must not run")
        return self.real(config, callbacks=self.callbacks)


def table_rows(markdown: str, table: int = 0) -> dict[str, list[str]]:
    """Rows of the ``table``-th Markdown table (0 = the main one, 1 = the label-free selection), by run name."""
    tables: list[dict[str, list[str]]] = []
    inside = False
    for line in markdown.splitlines():
        if line.startswith("|") and not inside:
            tables.append({})
        inside = line.startswith("|")
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tables[-1][cells[0].strip("`")] = cells
    return tables[table]


def test_run_reuse_partial_rerun_and_only(
    tmp_path: Path, data_dir: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_experiment(tmp_path, tiny_backbone)
    runs, results = tmp_path / "runs", tmp_path / "results"
    spy = TrainSpy(monkeypatch)
    lines: list[str] = []
    outcome = run_experiment(load_experiment(config), runs_dir=runs, results_dir=results, log=lines.append)
    assert sorted(name for name, _ in spy.calls) == ["is-a", "is-b"]
    assert [p.name for p in outcome.outputs] == [
        "tiny.json", "tiny.md", "tiny_dev_curves.png", "tiny_quality_speed.png", "tiny_tradeoff.png"
    ]  # fmt: skip
    assert re.match(r"\[1/3\] tiny/mean: evaluating the mean baseline", lines[0])
    assert any(re.match(r"\[2/3\] tiny/is-a seed 7: training 4 steps \.\.\.$", line) for line in lines)

    summary = json.loads((results / "tiny.json").read_text())
    assert [r["name"] for r in summary["runs"]] == ["mean", "is-a", "is-b"] and summary["not_run"] == []
    result = summary["runs"][1]["results"]["7"]
    assert set(result["scores"]["labeled"]) == {"STSBenchmark", "SICK-R", "avg"}
    assert result["scores"]["labeled"]["avg"] == pytest.approx(
        (result["scores"]["labeled"]["STSBenchmark"] + result["scores"]["labeled"]["SICK-R"]) / 2
    )
    assert result["steps"]["trained"] == 4 and result["steps"]["labeled"] in (0, 2, 4)
    assert result["stsb_dev"]["start"] == pytest.approx(100 * result["history"][0]["stsb_dev_spearman"])
    assert result["machine"]["cpu_count"] == os.cpu_count() and result["settings"]["seed"] == 7
    assert result["scores"]["label_free"] is not None and result["steps"]["label_free"] in (0, 2, 4)
    if result["steps"]["label_free"] == result["steps"]["labeled"]:
        assert result["scores"]["label_free"] == result["scores"]["labeled"]
    baseline = summary["runs"][0]["results"]["none"]
    assert baseline["scores"]["labeled"] == baseline["scores"]["label_free"] and baseline["stsb_dev"]["start"]
    # The models are gone, the log and curves stay.
    folder = runs / "tiny" / "is-a" / "seed-7"
    assert sorted(p.name for p in (folder / "train").iterdir()) == [
        "training_curves.png", "training_log.jsonl", "training_run.json", "training_summary.json",
    ]  # fmt: skip

    markdown = (results / "tiny.md").read_text()
    assert "Reproduce: `isbert experiment" in markdown and "vs 2 min stated budget" in markdown
    assert "- `is-a`: the default objective" in markdown
    rows = table_rows(markdown)
    assert list(rows) == ["mean", "is-a", "is-b"]
    assert rows["is-b"][1] == "activation=relu, lr=0.001" and rows["mean"][1] == "baseline=mean"
    assert re.fullmatch(r"-?\d+\.\d\d → -?\d+\.\d\d \(step \d\)", rows["is-a"][3])
    assert re.fullmatch(r"-?\d+\.\d\d", rows["is-a"][6])  # avg of the labeled selection
    assert (results / "tiny_tradeoff.png").read_bytes().startswith(b"\x89PNG")  # tradeoff_task = "stsb"
    free = table_rows(markdown, table=1)  # the label-free selection's own table: trained runs only
    assert list(free) == ["is-a", "is-b"]
    result_a = summary["runs"][1]["results"]["7"]
    assert free["is-a"][1] == str(result_a["steps"]["label_free"])
    assert free["is-a"][-1] == f"{result_a['scores']['label_free']['avg']:.2f}"

    # Second run: everything reused, nothing trained, same JSON.
    spy.fail = True
    before = (results / "tiny.json").read_text()
    lines.clear()
    run_experiment(load_experiment(config), runs_dir=runs, results_dir=results, log=lines.append)
    assert all(": reused (" in line for line in lines) and len(lines) == 3
    assert (results / "tiny.json").read_text() == before

    # A changed setting retrains that run only; --only leaves the others alone and the table keeps them.
    spy.fail, spy.calls = False, []
    write_experiment(tmp_path, tiny_backbone, lr_b=2e-3)
    assert main(["experiment", str(config), "--runs-dir", str(runs), "--results-dir", str(results),
                 "--only", "is-a", "--no-progress"]) == 0  # fmt: skip
    assert spy.calls == []  # is-a is unchanged
    assert json.loads((results / "tiny.json").read_text())["not_run"] == ["is-b"]  # its result is stale
    assert main(["experiment", str(config), "--runs-dir", str(runs), "--results-dir", str(results),
                 "--no-progress", "--keep-models"]) == 0  # fmt: skip
    assert spy.calls == [("is-b", False)]
    summary = json.loads((results / "tiny.json").read_text())
    assert summary["runs"][2]["results"]["7"]["settings"]["lr"] == 2e-3

    # Other evaluation tasks: kept models are scored again without training.
    spy.fail = True
    config.write_text(
        config.read_text().replace('tasks = "stsb,sick-r"', 'tasks = "sick-r"').replace('"stsb"', '"sick-r"')
    )
    lines.clear()
    run_experiment(load_experiment(config), runs_dir=runs, results_dir=results, only=["is-b"], log=lines.append)
    assert "training finished before; evaluating" in lines[0]
    summary = json.loads((results / "tiny.json").read_text())
    assert [r["name"] for r in summary["runs"]] == ["is-b"]
    assert set(summary["runs"][0]["results"]["7"]["scores"]["labeled"]) == {"SICK-R", "avg"}


def test_list_and_only_validation(
    tmp_path: Path, data_dir: Path, tiny_backbone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_experiment(tmp_path, tiny_backbone)
    assert main(["experiment", str(config), "--runs-dir", str(tmp_path / "runs"), "--list"]) == 0
    out = capsys.readouterr().out
    assert "mean [baseline mean]: not run" in out and "is-b seed 7 [trained]: not run" in out
    assert main(["experiment", str(config), "--only", "nope", "--list"]) == 2
    assert "--only: no run named nope" in capsys.readouterr().err
    assert main(["experiment", str(tmp_path / "absent.toml")]) == 2
    assert "experiment file not found" in capsys.readouterr().err


def test_interrupted_run_resumes(
    tmp_path: Path, data_dir: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_experiment(tmp_path, tiny_backbone)
    runs, results = tmp_path / "runs", tmp_path / "results"
    experiment = load_experiment(config)
    spy = TrainSpy(monkeypatch, callbacks=[ctrl_c_at(2)])
    with pytest.raises(ExperimentInterrupted, match="interrupted; run the same command again"):
        run_experiment(experiment, runs_dir=runs, results_dir=results, only=["is-a"], log=lambda m: None)
    folder = runs / "tiny" / "is-a" / "seed-7"
    assert not (folder / "result.json").exists() and (folder / "train" / "checkpoints").is_dir()
    spy.callbacks, spy.calls = None, []
    newest = latest_checkpoint_step(folder / "train")
    lines: list[str] = []
    run_experiment(experiment, runs_dir=runs, results_dir=results, only=["is-a"], log=lines.append)
    assert spy.calls == [("is-a", True)]
    assert_resumed_from(folder / "train", newest, max_steps=4)
    assert any("resuming the interrupted training" in line for line in lines)
    result = json.loads((folder / "result.json").read_text())
    assert result["steps"]["trained"] == 4 and [h["step"] for h in result["history"]] == [0, 2, 4]
    summary = json.loads((results / "tiny.json").read_text())
    assert [r["name"] for r in summary["runs"]] == ["is-a"] and summary["not_run"] == ["mean", "is-b"]
    assert "not run yet: `mean`, `is-b`" in (results / "tiny.md").read_text()


@pytest.mark.slow
def test_quick_experiment_end_to_end(real_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    code = main(["experiment", str(REPO / "experiments" / "quick.toml"), "--data-dir", str(real_data_dir),
                 "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(results), "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    rows = table_rows((results / "quick.md").read_text())
    assert list(rows) == ["mean-pooling", "is-jsd", "simcse"]
    for cells in rows.values():
        assert len(cells) == 15
        assert all(re.fullmatch(r"-?\d+\.\d\d", cell) for cell in cells[4:12]), cells  # 7 STS columns and avg
        assert 0 < float(cells[11]) < 100
    assert (results / "quick_dev_curves.png").stat().st_size > 0


def test_task_corpus_entry_becomes_the_training_sentences(tmp_path: Path, data_dir: Path, tiny_backbone: Path) -> None:
    """``corpus = ["task:stsb-train"]`` trains on the task's training sentences, written once under the runs dir."""
    rng = random.Random(2)
    rows = [f"g\tf\t2012\t{i:04d}\t1.0\t{sentence(rng)}\t{sentence(rng)}" for i in range(60)]
    (data_dir / "sts" / "STSBenchmark" / "senteval" / "sts-train.csv").write_text("\n".join(rows) + "\n")
    path = tmp_path / "task.toml"
    path.write_text(
        f"""
[experiment]
tasks = "stsb"
[defaults]
model = "{tiny_backbone}"
corpus = ["task:stsb-train"]
max_steps = 2
eval_steps = 2
batch_size = 8
out_channels = 8
max_seq_length = 16
device = "cpu"
[[run]]
name = "in-domain"
""",
        encoding="utf-8",
    )
    outcome = run_experiment(
        load_experiment(path), runs_dir=tmp_path / "runs", results_dir=tmp_path / "results", show_progress=False,
        log=lambda message: None,
    )  # fmt: skip
    corpus = tmp_path / "runs" / "corpora" / "stsb-train.txt"
    expected = list(dict.fromkeys(text for row in rows for text in row.split("\t")[5:7]))
    assert corpus.read_text(encoding="utf-8").splitlines() == expected
    (result,) = outcome.results
    assert result is not None and result["resolved"]["corpus"] == [str(corpus)]
    assert result["settings"]["corpus"] == ["task:stsb-train"]  # the hash does not depend on where the runs live


@pytest.mark.parametrize("settings_changed", [True, False], ids=["settings-mismatch", "other-error"])
def test_an_interrupted_run_starts_over_only_when_its_settings_changed(
    monkeypatch: pytest.MonkeyPatch, settings_changed: bool
) -> None:
    """A resume refused for other settings (the typed error) trains again from scratch; any other error, even one
    whose message says something differs, is raised and nothing is overwritten."""
    from types import SimpleNamespace

    from isbert.errors import IsbertError
    from isbert.experiments.runner import _train
    from isbert.training.run_folder import SettingsMismatch

    error = SettingsMismatch(Path("run"), ["lr"]) if settings_changed else IsbertError("model.safetensors differs")
    calls: list[tuple[bool, bool]] = []

    def train(config: Any) -> str:
        calls.append((config.resume, config.overwrite))
        if config.resume:
            raise error
        return "trained"

    monkeypatch.setattr(training, "train", train)
    defaults = {"resume": False, "overwrite": False}
    job = SimpleNamespace(train_config=lambda **changes: SimpleNamespace(**{**defaults, **changes}))
    logged: list[str] = []
    if settings_changed:
        assert _train(job, True, False, logged.append, "run") == "trained"  # type: ignore[arg-type]
        assert calls == [(True, False), (False, True)] and "differs in: lr" in logged[0]
    else:
        with pytest.raises(IsbertError, match="differs"):
            _train(job, True, False, logged.append, "run")  # type: ignore[arg-type]
        assert calls == [(True, False)] and logged == []


def test_a_trained_run_s_models_exist_only_with_its_alternative_pick(tmp_path: Path) -> None:
    from isbert.experiments.runner import _models_exist

    run, other = tmp_path / "train", tmp_path / "train" / "checkpoints" / "best-label-free"
    with_other = {"alternative": {"step": 2, "path": str(other)}}
    other.mkdir(parents=True)
    assert not _models_exist({}, run) and not _models_exist(with_other, run)  # no saved model
    (run / "modules.json").write_text("[]")
    assert _models_exist({}, run) and _models_exist({"alternative": None}, run) and _models_exist(with_other, run)
    other.rmdir()
    assert not _models_exist(with_other, run)  # the other criterion's pick is gone: train again


def test_the_dev_score_is_stsb_dev_spearman_x100(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from isbert.experiments import runner
    from isbert.training.selection import STSB_KEY, evaluators

    asked: list[Any] = []
    monkeypatch.setattr(
        evaluators, "load_stsb_dev", lambda data_dir: asked.append(data_dir) or (lambda m: {STSB_KEY: 0.25})
    )
    assert runner._dev_score("a model", tmp_path) == 25.0 and asked == [tmp_path]


@pytest.mark.parametrize(("baseline", "reads_corpus"), [("sif", True), ("abtt", False)])
def test_a_sif_baseline_is_fitted_with_the_run_s_backbone_reader_and_device(
    baseline: str, reads_corpus: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    import isbert.sif_model
    from isbert.experiments import runner
    from isbert.experiments.jobs import plan

    path = tmp_path / "exp.toml"
    path.write_text(
        "[defaults]\nmodel = 'offline-glove'\ncorpus = ['c.txt']\nmax_seq_length = 17\nencoder_layers = 0\n"
        f"text_field = 'body'\nencoding_errors = 'skip'\n[[run]]\nname = 'b'\nbaseline = '{baseline}'\n",
        encoding="utf-8",
    )
    [job] = plan(load_experiment(path), tmp_path / "data", tmp_path / "runs", device="meta")
    fits: list[tuple[Any, ...]] = []

    def fit_baseline(model: str, corpus: Any, settings: Any, **options: Any) -> Any:
        fits.append((model, corpus, settings, options))
        return SimpleNamespace(model="fitted", report=SimpleNamespace(as_dict=lambda: {"components": 1}))

    monkeypatch.setattr(isbert.sif_model, "fit_baseline", fit_baseline)
    config = job.train_config()
    assert runner._sif_baseline(job, config) == ("fitted", {"components": 1})
    reader = {"text_field": "body", "column": "text", "encoding_errors": "skip", "dedup": False}
    assert fits == [(
        "offline-glove", config.corpus if reads_corpus else None, job.spec.sif_settings(),
        {"encoder_layers": 0, "max_seq_length": 17, "device": "meta", **reader},
    )]  # fmt: skip


def test_listing_the_runs_plans_them_with_the_given_data_folder_and_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from isbert.experiments.runner import list_jobs

    for folder in ("data", "elsewhere"):
        (tmp_path / folder).mkdir()
    monkeypatch.setenv("ISBERT_DATA_DIR", str(tmp_path / "elsewhere"))
    path = tmp_path / "exp.toml"
    path.write_text("[defaults]\nmodel = 'offline-glove'\n[[run]]\nname = 'm'\nbaseline = 'mean'\n", encoding="utf-8")
    [(job, state)] = list_jobs(load_experiment(path), data_dir=tmp_path / "data", runs_dir=tmp_path / "runs",
                               device="meta")  # fmt: skip
    assert (job.device, job.config["data_dir"], state) == ("meta", str((tmp_path / "data").resolve()), "not run")


@pytest.mark.parametrize(
    ("baseline", "built", "whiten"),
    [
        ("model2vec", ("distilled", "tiny-model", "meta"), False),
        ("whitening", ("pooled", "mean"), True),
        ("cls", ("pooled", "cls"), False),
        ("untrained", ("start", 7), False),
    ],
)
def test_each_baseline_is_built_as_named_and_scored_as_a_fixed_model(
    baseline: str, built: tuple[Any, ...], whiten: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which model a baseline row scores (the distilled backbone, the pooled encoder, the untrained start with the
    run's seed), whether it is whitened, and that the STSb dev score is of the model as scored (none for whitening)."""
    import torch

    import isbert.evaluation
    import isbert.evaluation.distilled
    import isbert.training.models
    from isbert.experiments import runner
    from isbert.experiments.jobs import plan

    path = tmp_path / "exp.toml"
    path.write_text("[experiment]\ntasks = 'stsb'\nseeds = [7]\n[defaults]\nmodel = 'tiny-model'\ndev = 'stsb'\n"
                    f"[[run]]\nname = 'b'\nbaseline = '{baseline}'\n", encoding="utf-8")  # fmt: skip
    [job] = plan(load_experiment(path), tmp_path / "data", tmp_path / "runs", device="meta")
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        isbert.evaluation.distilled, "distilled_model", lambda model, device=None: ("distilled", model, device)
    )
    monkeypatch.setattr(isbert.training.models, "build_baseline", lambda config, pooling: ("pooled", pooling))
    monkeypatch.setattr(isbert.training.models, "build_model", lambda config: ("start", torch.initial_seed()))
    monkeypatch.setattr(runner, "_dev_score", lambda model, data_dir: calls.append(("dev", model)) or 61.5)
    monkeypatch.setattr(runner, "_speed", lambda model, data_dir: calls.append(("speed", model)) or 900.0)

    def evaluate(model: Any, tasks: list[str], data_dir: Path, **options: Any) -> dict[str, Any]:
        calls.append(("evaluate", model, tasks, data_dir, options))
        return {"STSBenchmark": {"spearman": 50.0}}

    monkeypatch.setattr(isbert.evaluation, "evaluate", evaluate)
    out = runner._evaluate_baseline(job, tmp_path / "data")
    options = {"whiten": whiten, "show_progress": False, "model_name": job.label}
    evaluated = ("evaluate", built, ["STSBenchmark"], tmp_path / "data", options)
    assert calls == [*([] if whiten else [("dev", built)]), evaluated, ("speed", built)]
    dev = None if whiten else 61.5
    scores = {"STSBenchmark": 50.0, "avg": 50.0}
    assert 0 < out.pop("eval_seconds") < 60
    assert out == {
        "scores": {"labeled": scores, "label_free": scores},  # nothing to select: both columns are the model
        "steps": {"trained": 0, "labeled": None, "label_free": None},
        "stsb_dev": {"start": dev, "labeled": dev, "label_free": dev},
        "train_seconds": 0.0, "sentences_per_second": None, "encode_sentences_per_second": 900.0, "history": [],
        "agreement": None, "corpus": None,
        "evaluation": {"labeled": {"STSBenchmark": {"spearman": 50.0}}, "label_free": None},
    }  # fmt: skip
