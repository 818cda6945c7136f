"""What the experiment runner records about each run, from fixed inputs: the machine, the models each criterion
picked, the dev scores at those steps, the trained record, the one-line summary, the files kept, the corpus check."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from isbert import __version__
from isbert.errors import IsbertError
from isbert.experiments import load_experiment, runner
from isbert.experiments.jobs import TRAIN_DIR, TRAINED_FILE, plan
from isbert.training.run_folder import RunFolder
from isbert.training.selection import LABEL_FREE_KEY, STSB_KEY


def _job(tmp_path: Path, run: str = "name = 'is'\n", defaults: str = "", device: str | None = None) -> Any:
    path = tmp_path / "exp.toml"
    path.write_text(f"[defaults]\nmodel = 'offline-glove'\n{defaults}[[run]]\n{run}", encoding="utf-8")
    [job] = plan(load_experiment(path), tmp_path / "data", tmp_path / "runs", device)
    return job


def test_the_machine_record_names_the_cpu_threads_versions_device_and_load(monkeypatch: pytest.MonkeyPatch) -> None:
    lscpu = "Architecture: x86_64\nModel name:   Some CPU @ 2.0GHz  \nThread(s) per core: 2\n"
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: SimpleNamespace(stdout=lscpu))
    monkeypatch.setattr(os, "getloadavg", lambda: (1.234, 0.5, 0.25))
    runner._cpu_model.cache_clear()
    try:
        info = runner.machine_info(None)
    finally:
        runner._cpu_model.cache_clear()
    assert info == {
        "cpu": "Some CPU @ 2.0GHz", "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "device": "cpu", "platform": platform.platform(), "isbert": __version__,
        "load_average_1min": 1.23,
    }  # fmt: skip
    assert runner.machine_info("meta")["device"] == "meta"  # a device given is recorded as given


@pytest.mark.parametrize("missing", ["unobtainable", "windows"])
def test_a_machine_without_a_load_average_is_recorded_without_one(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    def unobtainable() -> tuple[float, float, float]:
        raise OSError("Load averages are unobtainable")

    if missing == "windows":
        monkeypatch.delattr(os, "getloadavg")
    else:
        monkeypatch.setattr(os, "getloadavg", unobtainable)
    info = runner.machine_info("cpu")
    assert "load_average_1min" not in info and info["device"] == "cpu"
    assert "gpu" not in runner.machine_info("cuda:0")  # no GPU here to name


def test_on_a_gpu_machine_the_default_device_is_cuda_or_mps_and_a_cuda_gpu_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    named: list[Any] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: named.append(device) or "Some GPU 80GB")
    info = runner.machine_info(None)
    assert (info["device"], info["gpu"]) == ("cuda", "Some GPU 80GB") and named == [torch.device("cuda")]
    assert runner.machine_info("cuda:1")["gpu"] == "Some GPU 80GB" and named[1] == torch.device("cuda:1")
    assert "gpu" not in runner.machine_info("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert runner.machine_info(None)["device"] == "mps" and len(named) == 2  # an Apple GPU: named by nothing here


def test_without_lscpu_the_cpu_is_named_by_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise FileNotFoundError("lscpu")

    monkeypatch.setattr(subprocess, "run", missing)
    monkeypatch.setattr(platform, "processor", lambda: "")
    runner._cpu_model.cache_clear()
    try:
        assert runner._cpu_model() == (platform.machine() or "unknown CPU")
    finally:
        runner._cpu_model.cache_clear()


def test_the_average_is_over_the_sts_tasks_present_and_transfer_tasks_score_by_accuracy() -> None:
    tasks = ["STS12", "STSBenchmark", "MR", "SICK-R"]
    results = {"STS12": {"spearman": 40.0}, "STSBenchmark": {"spearman": 70.0}, "MR": {"accuracy": 80.0}}
    assert runner._scores(results, tasks) == {"STS12": 40.0, "STSBenchmark": 70.0, "MR": 80.0, "avg": 55.0}
    assert runner.average({"MR": 80.0}, ["MR"]) is None and runner._scores({"MR": {"accuracy": 1}}, ["MR"]) == {
        "MR": 1.0
    }


HISTORY = [
    {"step": 0, STSB_KEY: 0.5, LABEL_FREE_KEY: -1.0},
    {"step": 4, STSB_KEY: 0.7, LABEL_FREE_KEY: -2.0},
    {"step": 8, STSB_KEY: 0.6, LABEL_FREE_KEY: -3.0},
]


def test_each_criterion_s_pick_is_the_saved_model_its_other_pick_or_none(tmp_path: Path) -> None:
    train = tmp_path / "train"
    chosen = {"step": 4, "path": str(train)}
    best = {"step": 4}
    free = runner._selections({"select": "label-free", "best": {"step": 8}, "steps": 10}, train)
    assert free == {"labeled": None, "label_free": {"step": 8, "path": str(train)}}
    unscored = runner._selections({"select": None, "best": None, "steps": 10}, train)
    assert unscored == {"labeled": None, "label_free": {"step": 10, "path": str(train)}}  # nothing evaluated
    other = {"step": 8, "path": str(tmp_path / "best-label-free")}
    apart = runner._selections({"select": "stsb", "best": best, "alternative": other, "history": HISTORY}, train)
    assert apart == {"labeled": chosen, "label_free": other}
    same = runner._selections({"select": "stsb", "best": best, "alternative": {**other, "step": 4}}, train)
    assert same == {"labeled": chosen, "label_free": chosen}  # the same step: one model, scored once
    # no second model saved: the label-free pick is known from the history, and scored only if it is the same model
    known = runner._selections({"select": "stsb", "best": {"step": 8}, "history": HISTORY}, train)
    assert known == {"labeled": {"step": 8, "path": str(train)}, "label_free": {"step": 8, "path": str(train)}}
    lost = runner._selections({"select": "stsb", "best": best, "history": HISTORY}, train)
    assert lost == {"labeled": chosen, "label_free": None}
    blind = runner._selections({"select": "stsb", "best": best, "history": [{"step": 4, STSB_KEY: 0.7}]}, train)
    assert blind == {"labeled": chosen, "label_free": None}


def test_the_dev_score_at_a_step_is_its_stsb_dev_spearman_x100() -> None:
    assert runner._dev_at(HISTORY, 4) == pytest.approx(70.0) and runner._dev_at(HISTORY, 0) == pytest.approx(50.0)
    assert runner._dev_at(HISTORY, 6) is None and runner._dev_at(HISTORY, None) is None
    assert runner._dev_at([{"step": 4, LABEL_FREE_KEY: -1.0}], 4) is None  # evaluated without the dev set


def test_the_trained_record_keeps_what_evaluation_and_reuse_need(tmp_path: Path) -> None:
    job = _job(tmp_path, defaults="corpus = ['c.txt']\ndev = 'stsb'\n")  # selected by STSb dev
    corpus = SimpleNamespace(to_dict=lambda: {"used": 40})
    result = SimpleNamespace(steps=12, seconds=3.5, sentences_per_second=99.0, best={"step": 8}, alternative=None,
                             history=HISTORY, agreement={"text": "agree"}, corpus=corpus)  # fmt: skip
    assert runner._trained_record(job, result) == {
        "settings": job.train_settings, "select": "stsb", "steps": 12, "seconds": 3.5, "sentences_per_second": 99.0,
        "best": {"step": 8}, "alternative": None, "history": HISTORY, "agreement": {"text": "agree"},
        "corpus": {"used": 40},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("result", "line"),
    [
        ({"settings": {"baseline": "sif"}, "stsb_dev": {"start": 61.234}, "scores": {"labeled": {"avg": 55.0},
          "label_free": {"avg": 55.0}}}, "STSb dev 61.23, avg 55.00"),
        ({"settings": {"baseline": "mean"}, "stsb_dev": {"start": None}, "scores": {"labeled": {"avg": 50.0},
          "label_free": {"avg": 50.0}}}, "avg 50.00"),
        ({"settings": {"baseline": None}, "steps": {"trained": 12, "labeled": 8, "label_free": 4},
          "stsb_dev": {"start": 50.0, "labeled": 60.0}, "scores": {"labeled": {"avg": 55.0}, "label_free": {}}},
         "12 steps, STSb dev 50.00 -> 60.00 (step 8), avg 55.00"),
        ({"settings": {}, "steps": {"trained": 12, "labeled": None, "label_free": 4}, "stsb_dev": {"labeled": None},
          "scores": {"labeled": None, "label_free": {"avg": 54.0}}}, "12 steps, label-free avg 54.00 (step 4)"),
        ({"settings": {}, "steps": {"trained": 3, "labeled": 2, "label_free": 2},
          "stsb_dev": {"start": None, "labeled": 60.0},
          "scores": {"labeled": {"STS12": 1.0}, "label_free": {"avg": 1.0}}},
         "3 steps, STSb dev - -> 60.00 (step 2), avg -, label-free avg 1.00 (step 2)"),
    ],
)  # fmt: skip
def test_the_summary_line_of_a_run(result: dict[str, Any], line: str) -> None:
    assert runner._after_line(result) == line


def test_dropping_a_run_s_models_keeps_its_records_only(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    train = folder / TRAIN_DIR
    (train / "checkpoints" / "best").mkdir(parents=True)
    kept = RunFolder(train).records()
    for path in [*kept, train / "model.safetensors", train / "checkpoints" / "best" / "x"]:
        path.write_text("x")
    (train / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    (tmp_path / "outside").mkdir()
    (folder / TRAINED_FILE).write_text("{}")
    (folder / "result.json").write_text("{}")
    runner._drop_models(folder)
    assert sorted(train.iterdir()) == sorted(kept) and (tmp_path / "outside").is_dir()
    assert sorted(p.name for p in folder.iterdir()) == ["result.json", TRAIN_DIR]
    runner._drop_models(tmp_path / "never-trained")  # nothing there: nothing to do


def test_a_missing_corpus_is_refused_before_any_run_and_only_where_it_is_read(tmp_path: Path) -> None:
    trained = _job(tmp_path, defaults="corpus = ['missing.txt']\n")
    with pytest.raises(IsbertError) as refused:
        runner._check_corpora([trained])
    missing = trained.config["corpus"][0]
    assert str(refused.value) == f"{tmp_path / 'exp.toml'}: run 'is': corpus: input file not found: {missing}"
    runner._check_corpora([_job(tmp_path, "name = 'm'\nbaseline = 'mean'\n", "corpus = ['missing.txt']\n")])
    with pytest.raises(IsbertError, match="run 'sif': corpus: "):
        runner._check_corpora([_job(tmp_path, "name = 'sif'\nbaseline = 'sif'\n", "corpus = ['missing.txt']\n")])


@pytest.mark.parametrize("posthoc", [False, True])
def test_a_trained_run_is_scored_once_per_picked_model_with_its_history_and_speed(
    posthoc: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both criteria picked the model saved at step 8 of 12 (scored once, on the run's device); the STSb dev scores
    are the history's at steps 0 and 8; the speed is the saved model's; SIF after training only where asked."""
    import isbert.evaluation

    run = "name = 'is'\nposthoc = 'sif'\n" if posthoc else "name = 'is'\n"
    path = tmp_path / "exp.toml"
    path.write_text("[experiment]\ntasks = 'stsb'\n[defaults]\nmodel = 'offline-glove'\ncorpus = ['c.txt']\n"
                    f"dev = 'stsb'\n[[run]]\n{run}", encoding="utf-8")  # fmt: skip
    [job] = plan(load_experiment(path), tmp_path / "data", tmp_path / "runs", device="meta")
    calls: list[tuple[Any, ...]] = []

    def evaluate(model: Any, tasks: list[str], data_dir: Path, **options: Any) -> dict[str, Any]:
        calls.append(("evaluate", model, tasks, data_dir, options))
        return {"STSBenchmark": {"spearman": 50.0}}

    monkeypatch.setattr(isbert.evaluation, "evaluate", evaluate)
    monkeypatch.setattr(runner, "_speed", lambda model, data_dir: calls.append(("speed", model, data_dir)) or 900.0)
    monkeypatch.setattr(runner, "_evaluate_posthoc", lambda job, chosen, data_dir: {"picked": chosen})
    trained = {"select": "stsb", "steps": 12, "seconds": 3.5, "sentences_per_second": 99.0, "best": {"step": 8},
               "alternative": None, "history": HISTORY, "agreement": "agree", "corpus": {"used": 40}}  # fmt: skip
    out = runner._evaluate_trained(job, trained, tmp_path / "data")

    saved = str(job.folder / TRAIN_DIR)
    name = f"{job.label} (labeled, step 8)"
    assert calls == [
        ("evaluate", saved, ["STSBenchmark"], tmp_path / "data", {"show_progress": False, "device": "meta",
                                                                   "model_name": name}),
        ("speed", saved, tmp_path / "data"),
    ]  # fmt: skip
    assert 0 < out.pop("eval_seconds") < 60
    scores, details = {"STSBenchmark": 50.0, "avg": 50.0}, {"STSBenchmark": {"spearman": 50.0}}
    picked = {"step": 8, "path": saved}
    assert out == {
        "scores": {"labeled": scores, "label_free": scores}, "steps": {"trained": 12, "labeled": 8, "label_free": 8},
        "stsb_dev": {"start": 50.0, "labeled": 60.0, "label_free": 60.0}, "train_seconds": 3.5,
        "sentences_per_second": 99.0, "encode_sentences_per_second": 900.0, "history": HISTORY,
        "agreement": "agree", "corpus": {"used": 40}, "evaluation": {"labeled": details, "label_free": details},
        **({"posthoc": {"picked": {"labeled": picked, "label_free": picked}}} if posthoc else {}),
    }  # fmt: skip


def test_a_label_free_run_scores_only_its_label_free_pick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a dev set only the label-free criterion picks: no labeled column, and the speed is of its pick."""
    import isbert.evaluation

    job = _job(tmp_path, defaults="corpus = ['c.txt']\n")
    evaluated: list[tuple[Any, str]] = []

    def evaluate(model: Any, tasks: list[str], data_dir: Path, **options: Any) -> dict[str, Any]:
        evaluated.append((model, options["model_name"]))
        return {"STSBenchmark": {"spearman": 40.0}}

    monkeypatch.setattr(isbert.evaluation, "evaluate", evaluate)
    monkeypatch.setattr(runner, "_speed", lambda model, data_dir: evaluated.append((model, "speed")) or 700.0)
    trained = {"select": "label-free", "steps": 12, "seconds": 2.0, "sentences_per_second": 9.0, "best": {"step": 4},
               "alternative": None, "history": HISTORY}  # fmt: skip
    out = runner._evaluate_trained(job, trained, tmp_path / "data")
    saved = str(job.folder / TRAIN_DIR)
    assert evaluated == [(saved, f"{job.label} (label_free, step 4)"), (saved, "speed")]
    assert out["scores"] == {"labeled": None, "label_free": {"STSBenchmark": 40.0, "avg": 40.0}}
    assert out["evaluation"] == {"labeled": None, "label_free": {"STSBenchmark": {"spearman": 40.0}}}
    assert out["steps"] == {"trained": 12, "labeled": None, "label_free": 4}
    assert out["stsb_dev"] == {"start": 50.0, "labeled": None, "label_free": 70.0}
    assert out["encode_sentences_per_second"] == 700.0 and out["agreement"] is None and out["corpus"] is None


def test_a_run_trains_once_then_is_reused_rescored_or_started_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run_job`` with training and scoring recorded: a fresh run trains and stores both records; the same settings
    reuse its result; other tasks score the kept models again; ``force`` starts over in an emptied folder."""
    import itertools
    import json

    job = _job(tmp_path, defaults="corpus = ['c.txt']\nmax_steps = 4\n", device="meta")
    calls: list[tuple[Any, ...]] = []
    result = SimpleNamespace(steps=4, seconds=1.0, sentences_per_second=9.0, best={"step": 4}, alternative=None,
                             history=[], agreement=None, corpus=SimpleNamespace(to_dict=dict))  # fmt: skip

    def train(job: Any, resume: bool, show_progress: bool, log: Any, prefix: str) -> Any:
        calls.append(("train", resume, show_progress, prefix))
        (job.folder / TRAIN_DIR).mkdir(parents=True, exist_ok=True)
        (job.folder / TRAIN_DIR / "modules.json").write_text("[]")
        return result

    def evaluate(job: Any, trained: dict[str, Any], data_dir: Path) -> dict[str, Any]:
        calls.append(("evaluate", trained["steps"], data_dir))
        scores = {"avg": 50.0}
        return {"scores": {"labeled": scores, "label_free": scores}, "steps": {"trained": 4, "labeled": 4,
                "label_free": 4}, "stsb_dev": {"start": None, "labeled": None}}  # fmt: skip

    monkeypatch.setattr(runner, "_train", train)
    monkeypatch.setattr(runner, "_evaluate_trained", evaluate)
    monkeypatch.setattr(runner, "machine_info", lambda device: {"isbert": "v1", "device": device})
    clock = itertools.count(1000.0, 3000.0)  # each run takes 3000 s
    monkeypatch.setattr(runner, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    lines: list[str] = []
    first = runner.run_job(job, tmp_path / "data", keep_models=True, show_progress=False, log=lines.append, prefix="p")
    assert calls == [("train", False, False, "p"), ("evaluate", 4, tmp_path / "data")]
    after = "4 steps, avg 50.00, label-free avg 50.00 (step 4)"
    assert lines == ["p: training 4 steps ...", f"p: done in 50.0 min: {after}"]
    stored = json.loads((job.folder / "result.json").read_text())
    assert stored == first and first["run"] == "is" and first["seed"] == job.seed and first["resolved"] == job.config
    assert (first["settings_hash"], first["machine"], first["isbert_version"], first["wall_seconds"]) == (
        job.settings_hash,
        {"isbert": "v1", "device": "meta"},
        "v1",
        3000.0,
    )
    assert json.loads((job.folder / TRAINED_FILE).read_text()) == runner._trained_record(job, result)

    calls.clear(), lines.clear()
    assert runner.run_job(job, tmp_path / "data", log=lines.append, prefix="p") == first
    assert calls == [] and lines == ["p: reused (4 steps, avg 50.00, label-free avg 50.00 (step 4))"]

    job.settings["tasks"] = ["SICK-R"]  # other tasks: the kept models are scored again, not trained
    lines.clear()
    runner.run_job(job, tmp_path / "data", keep_models=True, log=lines.append)
    assert calls == [("evaluate", 4, tmp_path / "data")]
    assert lines[0] == f"{job.label}: training finished before; evaluating ..."  # no prefix: the run's label
    assert (job.folder / TRAINED_FILE).is_file()  # still the record of the kept models

    calls.clear()
    job.settings["tasks"] = ["STS12"]
    (job.folder / TRAIN_DIR / "modules.json").unlink()  # the record matches, but its model is gone: trained again
    runner.run_job(job, tmp_path / "data", keep_models=True, log=lines.append, prefix="p")
    assert calls == [("train", False, True, "p"), ("evaluate", 4, tmp_path / "data")]

    calls.clear()
    (job.folder / "stray.txt").write_text("x")
    runner.run_job(job, tmp_path / "data", force=True, log=lines.append, prefix="p")
    assert calls == [("train", False, True, "p"), ("evaluate", 4, tmp_path / "data")]
    assert not (job.folder / "stray.txt").exists() and not (job.folder / TRAINED_FILE).exists()  # models dropped
    (tmp_path / "other").mkdir()
    fresh = _job(tmp_path / "other", defaults="corpus = ['c.txt']\nmax_steps = 4\n")
    runner.run_job(fresh, tmp_path / "data", force=True, log=lines.append)  # forced, where nothing ran yet
    assert (fresh.folder / "result.json").is_file()


@pytest.mark.parametrize("draws", [True, False], ids=["figures-due", "figures-drawn-too-recently"])
def test_an_experiment_runs_its_chosen_applicable_runs_and_writes_the_tables_as_it_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, draws: bool
) -> None:
    import json

    from isbert.experiments import report, reuse

    (tmp_path / "data").mkdir()
    (tmp_path / "c.txt").write_text("a sentence\n")
    path = tmp_path / "exp.toml"
    path.write_text(
        "[defaults]\nmodel = 'offline-glove'\ncorpus = ['c.txt']\n[[run]]\nname = 'm2v'\nbaseline = 'model2vec'\n"
        "[[run]]\nname = 'mean'\nbaseline = 'mean'\n[[run]]\nname = 'sif'\nbaseline = 'sif'\n"
        "[[run]]\nname = 'cls'\nbaseline = 'cls'\n",
        encoding="utf-8",
    )
    experiment = load_experiment(path)
    ran: list[tuple[str, dict[str, Any]]] = []
    tables: list[tuple[list[str], list[str | None], Path, str, bool]] = []

    def run_job(job: Any, data_dir: Path, **options: Any) -> dict[str, Any]:
        ran.append((job.spec.name, {**options, "data_dir": data_dir}))
        stored = {"settings": job.settings, "settings_hash": job.settings_hash, "run": job.spec.name}
        job.folder.mkdir(parents=True)
        (job.folder / "result.json").write_text(json.dumps(stored))
        return stored

    def write_reports(
        experiment: Any, jobs: list[Any], results: list[Any], results_dir: Path, command: str, *, figures: bool = True
    ) -> list[Path]:
        tables.append(([j.spec.name for j in jobs], [r and r["run"] for r in results], results_dir, command, figures))
        return [results_dir / "exp.md"]

    expected: list[float] = []

    class Throttled:  # whether the figures are due between runs (isbert.throttle.Throttled decides it by the clock)
        def __init__(self, work: Any, **options: float) -> None:
            self.work = work
            expected.append(options["expected"])

        def __call__(self) -> bool:
            if draws:
                self.work()
            return draws

    published: list[Any] = []
    monkeypatch.setattr(runner, "run_job", run_job)
    monkeypatch.setattr(report, "write_reports", write_reports)
    monkeypatch.setattr(runner, "Throttled", Throttled)
    monkeypatch.setattr(reuse, "reuse_published", lambda jobs, paths, log: published.append(list(paths)) or 0)
    lines: list[str] = []
    outcome = runner.run_experiment(
        experiment, data_dir=tmp_path / "data", runs_dir=tmp_path / "runs", results_dir=tmp_path / "out",
        only=["m2v", "mean", "sif"], device="meta", keep_models=True, show_progress=False, log=lines.append,
        reuse_from=["published.json"],
    )  # fmt: skip
    reason = experiment.not_applicable(experiment.runs[0])
    assert reason and lines == [f"[1/3] exp/m2v: not applicable: {reason}"]
    options = {"force": False, "keep_models": True, "show_progress": False, "log": lines.append}
    data = (tmp_path / "data").resolve()
    assert ran == [
        ("mean", {**options, "prefix": "[2/3] exp/mean", "data_dir": data}),
        ("sif", {**options, "prefix": "[3/3] exp/sif", "data_dir": data}),
    ]
    names = ["m2v", "mean", "sif", "cls"]
    command = f"isbert experiment {path}"
    assert tables == [  # after each run but the last (the figures when due), then once at the end with the figures
        (names, [None, "mean", None, None], tmp_path / "out", command, draws),
        (names, [None, "mean", "sif", None], tmp_path / "out", command, True),
    ]
    assert expected == [1.0]  # the three figures take about a second: none before 10 s of runs
    assert outcome.outputs == [tmp_path / "out" / "exp.md"] and [job.device for job in outcome.jobs] == ["meta"] * 4
    assert published == [["published.json"]]
    runner.run_experiment(experiment, data_dir=tmp_path / "data", runs_dir=tmp_path / "again",
                          results_dir=tmp_path / "out", only=["mean"], log=lines.append)  # fmt: skip
    defaults = {"force": False, "keep_models": False, "show_progress": True, "log": lines.append}
    assert ran[-1] == ("mean", {**defaults, "prefix": "[1/1] exp/mean", "data_dir": data})
    with pytest.raises(IsbertError) as unknown:
        runner.run_experiment(experiment, data_dir=tmp_path / "data", only=["mean", "nope", "also"], log=lines.append)
    assert str(unknown.value) == f"{path}: no run named also, nope; runs: m2v, mean, sif, cls"


def test_the_speed_of_a_final_model_is_measured_on_the_cpu_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import isbert.model
    from isbert.experiments import speed

    measured: list[Any] = []
    monkeypatch.setattr(speed, "speed_sample", lambda data_dir: [f"sample of {data_dir}"])
    monkeypatch.setattr(speed, "encoding_speed", lambda model, sample: measured.append((model, sample)) or 12.5)
    monkeypatch.setattr(isbert.model, "load", lambda folder, device=None: f"{folder} on {device}")
    model = SimpleNamespace(name="a model in memory")
    assert runner._speed("folder", tmp_path) == 12.5 and runner._speed(model, tmp_path) == 12.5
    sample = [f"sample of {tmp_path}"]
    assert measured == [("folder on cpu", sample), (model, sample)]  # a folder is loaded on the CPU first


@pytest.mark.parametrize("show_progress", [True, False])
def test_a_resume_of_other_settings_starts_over_and_ctrl_c_becomes_the_experiment_s_interruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, show_progress: bool
) -> None:
    from isbert.training import run as training
    from isbert.training.run_folder import SettingsMismatch

    job = _job(tmp_path, defaults="corpus = ['c.txt']\n")
    calls: list[tuple[bool, bool, bool]] = []
    outcomes: list[Any] = []

    def train(config: Any) -> Any:
        calls.append((config.resume, config.overwrite, config.show_progress))
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(training, "train", train)
    lines: list[str] = []
    mismatch = SettingsMismatch(tmp_path, ["lr"])
    outcomes[:] = [mismatch, "the new run"]
    assert runner._train(job, True, show_progress, lines.append, "p") == "the new run"
    assert calls == [(True, False, show_progress), (False, True, show_progress)]
    assert lines == [f"p: the interrupted training run differs from the settings now ({mismatch}); starting over"]

    calls.clear()
    outcomes[:] = [mismatch]
    with pytest.raises(SettingsMismatch):  # not resuming: nothing to start over from
        runner._train(job, False, show_progress, lines.append, "p")
    assert calls == [(False, False, show_progress)] and len(lines) == 1
    for outcomes[:] in ([training.TrainingInterrupted("stop")], [mismatch, training.TrainingInterrupted("stop")]):
        with pytest.raises(runner.ExperimentInterrupted) as stopped:
            runner._train(job, True, show_progress, lines.append, "p")
        assert str(stopped.value) == runner.INTERRUPTED


def test_an_interrupted_training_resumes_a_stale_result_starts_over_and_a_baseline_is_evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _job(tmp_path, defaults="corpus = ['c.txt']\n")  # no max_steps: the epochs say how long
    resumed: list[bool] = []

    def train(job: Any, resume: bool, show_progress: bool, log: Any, prefix: str) -> Any:
        resumed.append(resume)
        return SimpleNamespace(steps=2, seconds=1.0, sentences_per_second=9.0, best=None, alternative=None, history=[],
                               agreement=None, corpus=SimpleNamespace(to_dict=dict))  # fmt: skip

    scored = {"scores": {"labeled": None, "label_free": None}, "stsb_dev": {"start": None, "labeled": None},
              "steps": {"trained": 2, "labeled": None, "label_free": None}}  # fmt: skip
    monkeypatch.setattr(runner, "_train", train)
    monkeypatch.setattr(runner, "_evaluate_trained", lambda job, trained, data_dir: scored)
    monkeypatch.setattr(runner, "_evaluate_baseline", lambda job, data_dir: scored)
    monkeypatch.setattr(runner, "machine_info", lambda device: {"isbert": "v1"})
    train_dir = job.folder / TRAIN_DIR
    RunFolder(train_dir).run_file.parent.mkdir(parents=True)
    RunFolder(train_dir).run_file.write_text("{}")  # training started here and was stopped
    lines: list[str] = []
    runner.run_job(job, tmp_path / "data", log=lines.append, prefix="p")
    assert resumed == [True] and lines[0] == "p: resuming the interrupted training of 1 epoch(s) ..."

    (job.folder / TRAINED_FILE).unlink(missing_ok=True)  # a result whose models are gone, of other settings now
    job.settings["lr"] = 0.5
    (job.folder / "stray.txt").write_text("x")
    lines.clear()
    runner.run_job(job, tmp_path / "data", log=lines.append, prefix="p")
    assert (
        resumed == [True, False]
        and lines[0] == "p: training 1 epoch(s) ..."
        and not (job.folder / "stray.txt").exists()
    )

    (train_dir).mkdir(parents=True, exist_ok=True)
    (train_dir / "partial.bin").write_text("x")  # a folder training never started in: removed, not resumed
    (job.folder / "result.json").unlink()
    (job.folder / TRAINED_FILE).unlink(missing_ok=True)
    runner.run_job(job, tmp_path / "data", log=lines.append, prefix="p")
    assert resumed == [True, False, False] and not (train_dir / "partial.bin").exists()

    (tmp_path / "b").mkdir()
    baseline = _job(tmp_path / "b", "name = 'mean'\nbaseline = 'mean'\n")
    lines.clear()
    assert runner.run_job(baseline, tmp_path / "data", log=lines.append, prefix="p")["steps"]["trained"] == 2
    assert lines[0] == "p: evaluating the mean baseline ..." and resumed == [True, False, False]


def test_the_corpus_is_checked_for_the_runs_still_to_run_and_for_all_with_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import re

    from isbert.experiments import report

    (tmp_path / "data").mkdir()
    path = tmp_path / "exp.toml"
    path.write_text("[defaults]\nmodel = 'offline-glove'\ncorpus = ['gone.txt']\n[[run]]\nname = 'mean'\n"
                    "baseline = 'mean'\n[[run]]\nname = 'is'\n", encoding="utf-8")  # fmt: skip
    experiment = load_experiment(path)
    ran: list[str] = []
    monkeypatch.setattr(runner, "run_job", lambda job, data_dir, **options: ran.append(job.spec.name))
    monkeypatch.setattr(report, "write_reports", lambda *args, **kwargs: [])

    def run(force: bool = False) -> None:
        runner.run_experiment(experiment, data_dir=tmp_path / "data", runs_dir=tmp_path / "runs",
                              results_dir=tmp_path / "out", force=force, log=lambda line: None)  # fmt: skip

    with pytest.raises(
        IsbertError, match=rf"^{re.escape(str(path))}: run 'is': corpus: input file not found: .*gone\.txt$"
    ):
        run()
    assert ran == []  # refused before the baseline ahead of it ran
    [_, trained] = plan(experiment, (tmp_path / "data").resolve(), tmp_path / "runs", None)
    trained.folder.mkdir(parents=True)
    stored = {"settings": trained.settings, "settings_hash": trained.settings_hash}
    (trained.folder / "result.json").write_text(json.dumps(stored), encoding="utf-8")
    run()  # its result is stored: reused, though its corpus has gone since
    assert ran == ["mean", "is"]
    with pytest.raises(IsbertError, match="run 'is': corpus: "):
        run(force=True)  # forced to run again, so it needs its corpus
    assert ran == ["mean", "is"]
