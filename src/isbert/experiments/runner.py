"""Run an experiment file: every run x seed in its own folder, reused while its settings are unchanged.

``RUNS_DIR/<experiment>/<run>/seed-<seed>/`` holds ``result.json`` (settings, hash, scores, timings, history,
machine) and the training log and curves; ``train/`` is the training run folder (models deleted once scored
unless ``keep_models``). A folder with a training run but no ``result.json`` was interrupted: it is resumed.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess  # nosec B404 # lscpu only, an argument list without a shell
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isbert.atomic import write_json_atomic
from isbert.errors import IsbertError
from isbert.experiments.config import (
    CORPUS_BASELINES,
    POOLING_BASELINES,
    SIF_BASELINES,
    Experiment,
)
from isbert.experiments.jobs import (
    DEFAULT_RESULTS_DIR,
    DEFAULT_RUNS_DIR,
    RESULT_FILE,
    SELECTIONS,
    TRAIN_DIR,
    TRAINED_FILE,
    Job,
    plan,
    read_json,
)
from isbert.throttle import Throttled
from isbert.training.selection import STSB_KEY, best_entry
from isbert.version import __version__

if TYPE_CHECKING:
    from isbert.training.result import TrainResult

INTERRUPTED = "interrupted; run the same command again: finished runs are reused and this one resumes"


class ExperimentInterrupted(IsbertError):
    """Ctrl-C during a run: the training checkpoint is saved and the next invocation resumes it."""


@cache
def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout  # nosec B603 B607 # a fixed command that reads the CPU model, from PATH like the user's shell
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_info(device: str | None) -> dict[str, Any]:
    import torch

    if device is None:
        if torch.cuda.is_available():
            device = "cuda"
        elif torch.backends.mps.is_available():  # as the Trainer picks it
            device = "mps"
        else:
            device = "cpu"
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": device,
        "platform": platform.platform(),
        "isbert": __version__,
    }
    with contextlib.suppress(OSError, AttributeError):  # other work slows a run down: keep the load beside timings
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def average(scores: dict[str, float], tasks: Iterable[str]) -> float | None:
    """Mean over the STS tasks present."""
    from isbert.evaluation.tasks import STS_TASKS

    values = [scores[t] for t in tasks if t in STS_TASKS and t in scores]
    return sum(values) / len(values) if values else None


def _scores(results: dict[str, Any], tasks: list[str]) -> dict[str, float]:
    compact = {t: float(results[t].get("spearman", results[t].get("accuracy"))) for t in tasks if t in results}
    avg = average(compact, tasks)
    if avg is not None:
        compact["avg"] = avg
    return compact


def _details(results: dict[str, Any], tasks: list[str]) -> dict[str, Any]:
    return {t: results[t] for t in tasks if t in results}


def _train(job: Job, resume: bool, show_progress: bool, log: Callable[[str], None], prefix: str) -> TrainResult:
    from isbert.training import run as training
    from isbert.training.run_folder import SettingsMismatch

    config = job.train_config(resume=resume, show_progress=show_progress)
    try:
        try:
            return training.train(config)
        except training.TrainingInterrupted:
            raise
        except SettingsMismatch as error:
            if not resume:
                raise
            log(f"{prefix}: the interrupted training run differs from the settings now ({error}); starting over")
            return training.train(job.train_config(resume=False, overwrite=True, show_progress=show_progress))
    except training.TrainingInterrupted:
        raise ExperimentInterrupted(INTERRUPTED) from None


def _models_exist(trained: dict[str, Any], train_dir: Path) -> bool:
    alternative = trained.get("alternative")
    return (train_dir / "modules.json").is_file() and (not alternative or Path(alternative["path"]).is_dir())


def _trained_record(job: Job, result: TrainResult) -> dict[str, Any]:
    return {
        "settings": job.train_settings,
        "select": job.config.get("select"),
        "steps": result.steps,
        "seconds": result.seconds,
        "sentences_per_second": result.sentences_per_second,
        "best": result.best,
        "alternative": result.alternative,
        "history": result.history,
        "agreement": result.agreement,
        "corpus": result.corpus.to_dict(),
    }


def _selections(trained: dict[str, Any], train_dir: Path) -> dict[str, dict[str, Any] | None]:
    """The models to score: ``{"labeled": {"step", "path"}, "label_free": ...}`` (None where not available)."""
    best = trained.get("best")
    chosen = {"step": best["step"] if best else trained["steps"], "path": str(train_dir)}
    if trained.get("select") != "stsb":
        return {"labeled": None, "label_free": chosen}
    alternative = trained.get("alternative")
    if alternative:
        label_free: dict[str, Any] | None = {"step": alternative["step"], "path": str(alternative["path"])}
    else:
        # No second model was saved; the label-free choice is still known from the history, and when it is the
        # labeled one, its scores are the labeled model's.
        free = best_entry(trained["history"], "label-free")
        step = free["step"] if free else None
        label_free = chosen if step == chosen["step"] else None
    if label_free is not None and label_free["step"] == chosen["step"]:
        label_free = chosen  # same step, same model: scored once
    return {"labeled": chosen, "label_free": label_free}


def _dev_at(history: list[dict[str, Any]], step: int | None) -> float | None:
    row = next((h for h in history if h["step"] == step and STSB_KEY in h), None)
    return 100 * row[STSB_KEY] if row else None


def _evaluate_trained(job: Job, trained: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    from isbert.evaluation import evaluate

    tasks = job.experiment.tasks
    chosen = _selections(trained, job.folder / TRAIN_DIR)
    scores: dict[str, dict[str, float] | None] = {}
    details: dict[str, dict[str, Any] | None] = {}
    started = time.perf_counter()
    done: dict[str, tuple[dict[str, float], dict[str, Any]]] = {}
    for kind in SELECTIONS:
        selection = chosen[kind]
        if selection is None:
            scores[kind] = details[kind] = None
            continue
        if selection["path"] not in done:
            results = evaluate(
                selection["path"], tasks, data_dir, show_progress=False, device=job.device,
                model_name=f"{job.label} ({kind}, step {selection['step']})",
            )  # fmt: skip
            done[selection["path"]] = (_scores(results, tasks), _details(results, tasks))
        scores[kind], details[kind] = done[selection["path"]]
    final = chosen["labeled"] or chosen["label_free"]
    speed = _speed(final["path"], data_dir) if final else None
    history = trained["history"]
    steps = {kind: (chosen[kind] or {}).get("step") for kind in SELECTIONS}
    posthoc = {"posthoc": _evaluate_posthoc(job, chosen, data_dir)} if job.spec.posthoc else {}
    return {
        "scores": scores,
        "steps": {"trained": trained["steps"], **steps},
        "stsb_dev": {"start": _dev_at(history, 0), **{kind: _dev_at(history, steps[kind]) for kind in SELECTIONS}},
        "train_seconds": trained["seconds"],
        "eval_seconds": time.perf_counter() - started,
        "sentences_per_second": trained["sentences_per_second"],
        "encode_sentences_per_second": speed,
        "history": history,
        "agreement": trained.get("agreement"),
        "corpus": trained.get("corpus"),
        "evaluation": details,
        **posthoc,
    }


def _evaluate_posthoc(job: Job, chosen: dict[str, dict[str, Any] | None], data_dir: Path) -> dict[str, Any]:
    """Each selected model with SIF added after training (:func:`isbert.sif_model.add_sif`, fitted on the run's
    corpus), scored as the trained models are: what the report's ``<run>+posthoc-sif`` row shows."""
    from isbert.evaluation import evaluate
    from isbert.model import load_torch
    from isbert.sif_model import add_sif

    config = job.train_config()  # for its corpus and how it reads it
    tasks = job.experiment.tasks
    out: dict[str, Any] = {"method": job.spec.posthoc, "scores": {}, "stsb_dev": {"start": None}, "evaluation": {}}
    done: dict[str, tuple[dict[str, float], dict[str, Any], float | None, Any]] = {}
    for kind in SELECTIONS:
        selection = chosen[kind]
        if selection is None:
            out["scores"][kind] = out["evaluation"][kind] = out["stsb_dev"][kind] = None
            continue
        if selection["path"] not in done:
            model = load_torch(selection["path"], device=job.device)
            fitted = add_sif(model, config.corpus, job.spec.sif_settings(), **_reader(config))
            results = evaluate(
                fitted.model, tasks, data_dir, show_progress=False,
                model_name=f"{job.label} ({kind}, step {selection['step']}, + {job.spec.posthoc})",
            )  # fmt: skip
            dev = _dev_score(fitted.model, data_dir) if job.settings.get("dev") == "stsb" else None
            done[selection["path"]] = (_scores(results, tasks), _details(results, tasks), dev, fitted)
        scores, details, dev, fitted = done[selection["path"]]
        out["scores"][kind], out["evaluation"][kind], out["stsb_dev"][kind] = scores, details, dev
        if "fit" not in out:  # the first model's fit and speed (setdefault would time every model, keeping one)
            out["fit"], out["encode_sentences_per_second"] = fitted.report.as_dict(), _speed(fitted.model, data_dir)
    return out


def _reader(config: Any) -> dict[str, Any]:
    """How the run reads its corpus (as training does)."""
    return {"text_field": config.text_field, "column": config.column, "encoding_errors": config.encoding_errors,
            "dedup": config.dedup}  # fmt: skip


def _dev_score(model: Any, data_dir: Path) -> float:
    from isbert.training.selection.evaluators import load_stsb_dev

    return 100 * load_stsb_dev(data_dir)(model)[STSB_KEY]


def _sif_baseline(job: Job, config: Any) -> tuple[Any, dict[str, Any]]:
    """A SIF-family baseline fitted on the run's corpus (ABTT alone reads none), and what the fit did."""
    from isbert.sif_model import fit_baseline

    settings = job.spec.sif_settings()
    fitted = fit_baseline(
        config.model, config.corpus if settings.weighted else None, settings, encoder_layers=config.encoder_layers,
        max_seq_length=config.max_seq_length, device=config.device, **_reader(config),
    )  # fmt: skip
    return fitted.model, fitted.report.as_dict()


def _evaluate_baseline(job: Job, data_dir: Path) -> dict[str, Any]:
    import torch

    from isbert.evaluation import evaluate
    from isbert.training.models import build_baseline, build_model

    started = time.perf_counter()
    config = job.train_config()  # what the baseline is built from
    baseline = job.spec.baseline
    fit = None
    if baseline in SIF_BASELINES:
        model, fit = _sif_baseline(job, config)
    elif baseline == "model2vec":
        from isbert.evaluation.distilled import distilled_model

        model = distilled_model(config.model, device=config.device)
    elif baseline in (*POOLING_BASELINES, "whitening"):
        model = build_baseline(config, "mean" if baseline == "whitening" else baseline)
    else:  # the model training would start from, with the seed's initial head weights
        torch.manual_seed(config.seed)
        model = build_model(config)
    dev = None
    if job.settings.get("dev") == "stsb" and baseline != "whitening":  # the dev evaluator does not whiten
        dev = _dev_score(model, data_dir)
    whiten = baseline == "whitening"
    results = evaluate(model, job.experiment.tasks, data_dir, whiten=whiten, show_progress=False, model_name=job.label)
    scores = _scores(results, job.experiment.tasks)
    speed = _speed(model, data_dir)
    return {
        "scores": {"labeled": scores, "label_free": scores},  # nothing to select: both columns are the model
        "steps": {"trained": 0, "labeled": None, "label_free": None},
        "stsb_dev": {"start": dev, "labeled": dev, "label_free": dev},
        "train_seconds": 0.0,
        "eval_seconds": time.perf_counter() - started,
        "sentences_per_second": None,
        "encode_sentences_per_second": speed,  # whitening: the encoder's (its projection is one matrix product)
        "history": [],
        "agreement": None,
        "corpus": None,
        "evaluation": {"labeled": _details(results, job.experiment.tasks), "label_free": None},
        **({"fit": fit} if fit else {}),
    }


def _speed(model: Any, data_dir: Path) -> float:
    """CPU sentences/s of a final model (a folder or a model object) on the fixed sample."""
    from isbert.experiments.speed import encoding_speed, speed_sample

    if isinstance(model, str):
        from isbert.model import load

        model = load(model, device="cpu")
    return encoding_speed(model, speed_sample(data_dir))


def _drop_models(folder: Path) -> None:
    """Keep result.json and the training log/curves; the model weights are what take the space."""
    from isbert.training.run_folder import RunFolder

    train_dir = folder / TRAIN_DIR
    if train_dir.is_dir():
        kept = RunFolder(train_dir).records()
        for child in train_dir.iterdir():
            if child in kept:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    (folder / TRAINED_FILE).unlink(missing_ok=True)


def _after_line(result: dict[str, Any]) -> str:
    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    scores, dev = result["scores"], result["stsb_dev"]
    parts = []
    if result["settings"].get("baseline"):
        if dev["start"] is not None:
            parts.append(f"STSb dev {num(dev['start'])}")
    else:
        parts.append(f"{result['steps']['trained']} steps")
        if dev["labeled"] is not None:
            parts.append(f"STSb dev {num(dev['start'])} -> {num(dev['labeled'])} (step {result['steps']['labeled']})")
    if scores["labeled"]:
        parts.append(f"avg {num(scores['labeled'].get('avg'))}")
    if scores["label_free"] and not result["settings"].get("baseline"):
        parts.append(f"label-free avg {num(scores['label_free'].get('avg'))} (step {result['steps']['label_free']})")
    return ", ".join(parts)


def run_job(
    job: Job,
    data_dir: Path,
    *,
    force: bool = False,
    keep_models: bool = False,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
    prefix: str = "",
) -> dict[str, Any]:
    """Reuse, resume or run one run x seed; returns its stored result."""
    folder, prefix = job.folder, prefix or job.label
    previous = read_json(folder / RESULT_FILE)
    if not force and job.matches(previous):
        log(f"{prefix}: reused ({_after_line(previous)})")
        return previous
    train_dir = folder / TRAIN_DIR
    trained = None if force else read_json(folder / TRAINED_FILE)
    if trained is not None and not (job.trained_matches(trained) and _models_exist(trained, train_dir)):
        trained = None
    if force or (previous is not None and trained is None):
        # A finished run of other settings (its models deleted): nothing in the folder can be reused or resumed.
        shutil.rmtree(folder, ignore_errors=True)
    elif previous is not None:
        (folder / RESULT_FILE).unlink()  # only the evaluation changed: score the kept models again
    if trained is None:
        (folder / TRAINED_FILE).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)

    from isbert.training.run_folder import RunFolder

    started = time.perf_counter()
    data_dir = Path(data_dir)
    if job.spec.baseline is not None:
        log(f"{prefix}: evaluating the {job.spec.baseline} baseline ...")
        outcome = _evaluate_baseline(job, data_dir)
    else:
        if trained is None:
            resume = RunFolder(train_dir).is_run()
            if train_dir.exists() and not resume:
                shutil.rmtree(train_dir)  # a folder train() never started in: nothing to resume
            config = job.train_config()
            amount = f"{config.max_steps} steps" if config.max_steps else f"{config.epochs:g} epoch(s)"
            log(f"{prefix}: {'resuming the interrupted training of' if resume else 'training'} {amount} ...")
            trained = _trained_record(job, _train(job, resume, show_progress, log, prefix))
            write_json_atomic(folder / TRAINED_FILE, trained)
        else:
            log(f"{prefix}: training finished before; evaluating ...")
        outcome = _evaluate_trained(job, trained, data_dir)
    machine = machine_info(job.device)
    result = {
        "experiment": job.experiment.name,
        "run": job.spec.name,
        "seed": job.seed,
        "settings": job.settings,
        "settings_hash": job.settings_hash,
        "resolved": job.config,
        **outcome,
        "wall_seconds": time.perf_counter() - started,
        "machine": machine,
        "isbert_version": machine["isbert"],
    }
    write_json_atomic(folder / RESULT_FILE, result)
    if not keep_models:
        _drop_models(folder)
    log(f"{prefix}: done in {result['wall_seconds'] / 60:.1f} min: {_after_line(result)}")
    return result


@dataclass
class ExperimentOutcome:
    """The jobs of one experiment, their stored results (None = none yet) and the report files written."""

    experiment: Experiment
    jobs: list[Job]
    results: list[dict[str, Any] | None]
    outputs: list[Path]


def run_experiment(
    experiment: Experiment,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    runs_dir: str | os.PathLike[str] = DEFAULT_RUNS_DIR,
    results_dir: str | os.PathLike[str] = DEFAULT_RESULTS_DIR,
    only: Iterable[str] | None = None,
    device: str | None = None,
    keep_models: bool = False,
    force: bool = False,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
    command: str | None = None,
    reuse_from: Iterable[str | os.PathLike[str]] = (),
) -> ExperimentOutcome:
    """Run (or reuse) the runs of ``experiment`` (``only``: a subset by name), then write the reports from every
    stored result: ``<results_dir>/<name>.json``, ``.md`` and ``_dev_curves.png``. ``reuse_from``: published results
    tables whose results of the same settings are stored first (see :mod:`isbert.experiments.reuse`)."""
    from isbert.evaluation.tasks import resolve_data_dir
    from isbert.experiments.report import write_reports
    from isbert.experiments.reuse import reuse_published

    root = resolve_data_dir(data_dir).resolve()
    wanted = set(only) if only is not None else None
    if wanted is not None:
        unknown = sorted(wanted - {spec.name for spec in experiment.runs})
        if unknown:
            raise IsbertError(
                f"{experiment.path}: no run named {', '.join(unknown)}; runs: "
                + ", ".join(spec.name for spec in experiment.runs)
            )
    jobs = plan(experiment, root, runs_dir, device)
    if not force:
        reuse_published(jobs, reuse_from, log)
    selected = [job for job in jobs if wanted is None or job.spec.name in wanted]
    _check_corpora([job for job in selected if force or job.stored() is None])
    command = command or f"isbert experiment {experiment.path}"

    def report(figures: bool = True) -> list[Path]:
        return write_reports(experiment, jobs, [j.stored() for j in jobs], results_dir, command, figures=figures)

    # the tables grow run by run, so a long experiment shows its results as they come; the figures too (about a second
    # for the three), unless drawing them would take more than about a tenth of the time
    figures = Throttled(report, expected=1.0)
    for number, job in enumerate(selected, start=1):
        reason = experiment.not_applicable(job.spec)
        if reason:
            log(f"[{number}/{len(selected)}] {job.label}: not applicable: {reason}")
            continue
        run_job(
            job, root, force=force, keep_models=keep_models, show_progress=show_progress, log=log,
            prefix=f"[{number}/{len(selected)}] {job.label}",
        )  # fmt: skip
        if number < len(selected) and not figures():
            report(figures=False)
    results = [job.stored() for job in jobs]
    outputs = write_reports(experiment, jobs, results, results_dir, command)
    return ExperimentOutcome(experiment, jobs, results, outputs)


def _check_corpora(jobs: list[Job]) -> None:
    """A missing corpus fails before any run (the baselines before it can take minutes), saying how to make it when
    isbert can (``isbert data download --unlabeled nli`` for the paper's corpus)."""
    from isbert.evaluation.unlabeled import corpus_hint
    from isbert.inputs import expand_inputs

    for job in jobs:
        reads_corpus = job.spec.baseline is None or job.spec.baseline in CORPUS_BASELINES
        for path in job.config.get("corpus", []) if reads_corpus else []:
            try:
                expand_inputs(path)  # files, folders and patterns, as `isbert train --input` takes them
            except IsbertError as error:
                raise IsbertError(
                    f"{job.experiment.path}: run '{job.spec.name}': corpus: {error}{corpus_hint(path)}"
                ) from None


def list_jobs(
    experiment: Experiment,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    runs_dir: str | os.PathLike[str] = DEFAULT_RUNS_DIR,
    device: str | None = None,
) -> list[tuple[Job, str]]:
    """Each run x seed with its state (see :meth:`Job.state`)."""
    from isbert.evaluation.tasks import resolve_data_dir

    jobs = plan(experiment, resolve_data_dir(data_dir).resolve(), runs_dir, device)
    return [(job, job.state()) for job in jobs]


__all__ = [
    "DEFAULT_RESULTS_DIR",
    "DEFAULT_RUNS_DIR",
    "ExperimentInterrupted",
    "ExperimentOutcome",
    "Job",
    "list_jobs",
    "plan",
    "run_experiment",
    "run_job",
]
