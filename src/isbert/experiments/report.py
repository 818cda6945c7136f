"""The results of an experiment: ``<name>.json`` (every run, per seed and aggregated), ``<name>.md`` (one table
row per run) and ``<name>_dev_curves.png``, all made from the stored per-run ``result.json`` files."""

from __future__ import annotations

import os
import statistics
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isbert.atomic import save_figure_atomic, write_json_atomic, write_text_atomic
from isbert.evaluation.report import _HEADERS as TASK_HEADERS
from isbert.evaluation.report import PAPER_STS, PAPER_TRANSFER
from isbert.evaluation.report import _row as table_row
from isbert.evaluation.tasks import STS_TASKS, TRANSFER_TASKS
from isbert.experiments.config import GENERAL_LABEL, TARGET_LABEL
from isbert.experiments.jobs import SELECTIONS

if TYPE_CHECKING:
    from isbert.experiments.config import Experiment, RunSpec
    from isbert.experiments.jobs import Job

MAX_POINT_LABELS = 15
"""Above this many points the quality-vs-speed figure drops the run names (colour, shape and fill still tell them)."""


def _on_target(row: dict[str, Any]) -> bool:
    """Whether a summary row was trained on the evaluation's own test sentences (corpus ``target``)."""
    return row.get("corpus") == TARGET_LABEL


def aggregate(values: list[float | None]) -> dict[str, Any] | None:
    """``{"mean", "sd", "n"}`` over the seeds that have a value; ``sd`` (sample) is None for one value."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    sd = statistics.stdev(present) if len(present) > 1 else None
    return {"mean": statistics.fmean(present), "sd": sd, "n": len(present)}


def _gap(result: dict[str, Any]) -> float:
    """Label-free minus labeled STS average; a KeyError or TypeError where a selection has none (``over`` skips it)."""
    return result["scores"]["label_free"]["avg"] - result["scores"]["labeled"]["avg"]


def summarize_run(results: list[dict[str, Any]], tasks: list[str]) -> dict[str, Any]:
    """Mean and sd over the seeds of one run, for every number the table shows."""

    def over(get: Any) -> dict[str, Any] | None:
        values = []
        for result in results:
            try:
                values.append(get(result))
            except (KeyError, TypeError, ValueError):  # a selection or task this run does not have
                values.append(None)
        return aggregate(values)

    summary: dict[str, Any] = {"seeds": [r["seed"] for r in results]}
    for kind in SELECTIONS:
        per_task = {task: over(lambda r, task=task, kind=kind: r["scores"][kind][task]) for task in [*tasks, "avg"]}
        summary[kind] = {task: agg for task, agg in per_task.items() if agg is not None} or None
    summary["gap"] = over(_gap)
    transfer = [t for t in TRANSFER_TASKS if t in tasks]
    summary["transfer_avg"] = over(lambda r: statistics.fmean(r["scores"]["labeled"][t] for t in transfer))
    summary["stsb_dev_start"] = over(lambda r: r["stsb_dev"]["start"])
    summary["stsb_dev_labeled"] = over(lambda r: r["stsb_dev"]["labeled"])
    summary["steps"] = over(lambda r: r["steps"]["trained"])
    summary["train_minutes"] = over(lambda r: r["train_seconds"] / 60)
    summary["minutes"] = over(lambda r: r["wall_seconds"] / 60)
    summary["encode_speed"] = over(lambda r: r["encode_sentences_per_second"])
    return summary


def machine_line(machine: dict[str, Any]) -> str:
    parts = [machine.get("cpu", "unknown CPU"), f"{machine.get('cpu_count')} CPUs"]
    if machine.get("gpu"):
        parts.append(machine["gpu"])
    parts += [f"device {machine.get('device')}", f"torch {machine.get('torch')}", f"isbert {machine.get('isbert')}"]
    return ", ".join(str(p) for p in parts)


def build_summary(
    experiment: Experiment, jobs: list[Job], results: list[dict[str, Any] | None], command: str
) -> dict[str, Any]:
    """The content of ``<name>.json``: nothing in it depends on when it was made, so reusing gives the same file."""
    runs = []
    not_run = []
    not_applicable = []
    for spec in experiment.runs:
        stored = [r for job, r in zip(jobs, results, strict=True) if job.spec.name == spec.name and r is not None]
        reason = experiment.not_applicable(spec)
        if reason:
            not_applicable.append({"name": spec.name, **experiment.labels(spec), "reason": reason})
            continue
        if not stored:
            not_run.append(spec.name)
            continue
        runs.append(_run_row(spec.name, experiment.labels(spec), spec, stored, experiment.tasks))
        posthoc = [_posthoc_result(r) for r in stored if r.get("posthoc")]
        if spec.posthoc and posthoc:
            labels = experiment.labels(spec)
            labels["method"] += f"+posthoc-{spec.posthoc}"
            runs.append(_run_row(f"{spec.name}+posthoc-{spec.posthoc}", labels, spec, posthoc, experiment.tasks))
    done = [r for r in results if r is not None]
    machines = list(dict.fromkeys(machine_line(r["machine"]) for r in done))
    return {
        "experiment": experiment.name,
        "file": str(experiment.path),
        "description": experiment.description,
        "command": command,
        "tasks": experiment.tasks,
        "seeds": experiment.seeds,
        "defaults": experiment.defaults,
        "budget_minutes": experiment.budget_minutes,
        "tradeoff_task": experiment.tradeoff_task,
        "paper_tables": experiment.paper_tables,
        # What the stored runs cost when they ran (training + evaluation); a resumed run counts its last part.
        "measured_minutes": sum(r["wall_seconds"] for r in done) / 60,
        "machines": machines,
        "max_load": max((r["machine"].get("load_average_1min") or 0.0 for r in done), default=0.0),
        "runs": runs,
        "not_run": not_run,
        "not_applicable": not_applicable,
        "reused": _reused(jobs, results),
    }


def _reused(jobs: list[Job], results: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Which runs took a published result of the same settings instead of running (``--reuse-from``), and whose."""
    reused: dict[str, dict[str, Any]] = {}
    for job, result in zip(jobs, results, strict=True):
        origin = (result or {}).get("reused_from")
        if origin:
            reused.setdefault(job.spec.name, {"name": job.spec.name, **origin})
    return list(reused.values())


def _run_row(
    name: str, labels: dict[str, str], spec: RunSpec, stored: list[dict[str, Any]], tasks: list[str]
) -> dict[str, Any]:
    """One row of the summary: a run's labels and its results over the seeds, aggregated."""
    aggregate = summarize_run(stored, tasks)
    return {
        "name": name,
        **labels,
        # the 7-task STS average (labeled selection) and the encoding speed, mean over seeds, for other tools
        "sts_avg": ((aggregate["labeled"] or {}).get("avg") or {}).get("mean"),
        "encode_sentences_per_second": (aggregate["encode_speed"] or {}).get("mean"),
        "baseline": spec.baseline,
        "note": spec.note if name == spec.name else None,
        "differs": spec.differs(),
        "aggregate": aggregate,
        "results": {("none" if r["seed"] is None else str(r["seed"])): r for r in stored},
    }


def _posthoc_result(result: dict[str, Any]) -> dict[str, Any]:
    """A trained run's result as its post-hoc method scored it: the same training, the post-hoc model's scores."""
    posthoc = result["posthoc"]
    keys = ("scores", "stsb_dev", "evaluation", "encode_sentences_per_second")
    scored = {k: posthoc.get(k) for k in keys}
    # the training curve is the run's own: drawn once, under the run's name
    return {**{k: v for k, v in result.items() if k != "posthoc"}, **scored, "history": []}


def _cell(agg: dict[str, Any] | None, signed: bool = False) -> str:
    if agg is None:
        return "-"
    text = f"{agg['mean']:+.2f}" if signed else f"{agg['mean']:.2f}"
    return text + (f" ± {agg['sd']:.2f}" if agg.get("sd") is not None else "")


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


def _differs(differs: dict[str, Any]) -> str:
    if not differs:
        return "(defaults)"
    return ", ".join(f"{key}={_value(value)}" for key, value in differs.items()).replace("|", "\\|")


def _dev(run: dict[str, Any]) -> str:
    agg = run["aggregate"]
    start, best = _cell(agg["stsb_dev_start"]), _cell(agg["stsb_dev_labeled"])
    if run["baseline"]:
        return start  # not trained: its one score
    steps = sorted({r["steps"]["labeled"] for r in run["results"].values() if r["steps"]["labeled"] is not None})
    if start == "-" and best != "-":
        return f"{best} (step {'/'.join(map(str, steps))})"  # a method added after training: the chosen step only
    if "-" in (start, best):
        return "-"  # dev = "none": no labeled curve
    return f"{start} → {best} (step {'/'.join(map(str, steps))})"


def _steps(run: dict[str, Any]) -> str:
    if run["baseline"]:
        return "-"
    return "/".join(str(s) for s in dict.fromkeys(r["steps"]["trained"] for r in run["results"].values()))


def format_markdown(summary: dict[str, Any]) -> str:
    """Description, command, machine and cost, then one row per run (labeled selection's tasks), then notes."""
    tasks = summary["tasks"]
    sts = [t for t in STS_TASKS if t in tasks]
    transfer = [t for t in TRANSFER_TASKS if t in tasks]
    lines = [f"# Experiment `{summary['experiment']}`", ""]
    if summary["description"]:
        lines += [summary["description"].strip(), ""]
    lines.append(f"Reproduce: `{summary['command']}` (data directory from `--data-dir` or `$ISBERT_DATA_DIR`).")
    lines.append("")
    for machine in summary["machines"] or ["-"]:
        lines.append(f"Machine: {machine}.")
    budget = summary["budget_minutes"]
    lines.append("")
    lines.append(
        f"Compute: {summary['measured_minutes']:.1f} min measured (training + evaluation of the runs below)"
        + (f" vs {budget:g} min stated budget." if budget else "; no budget stated.")
        + (
            f" Highest 1-min load average at the end of a run: {summary['max_load']:.2f}."
            if summary["max_load"]
            else ""
        )
    )
    seeds = summary["seeds"]
    lines += [
        "",
        f"Seeds: {', '.join(map(str, seeds))}"
        + (" (cells: mean ± sample sd over the seeds)" if len(seeds) > 1 else "")
        + ". Scores: cosine Spearman x100 of the model selected by the labeled STSb dev criterion; "
        "*avg label-free*: the same average for the model selected by the label-free criterion (held-out "
        "alignment + uniformity); *gap* = label-free minus labeled. Baselines are not trained (both equal).",
        "",
    ]
    header = ["run", "differs from defaults", "steps", "STSb dev start → best", *(TASK_HEADERS.get(t, t) for t in sts)]
    header += ["avg", "avg label-free", "gap", "train min"]
    lines += ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for run in summary["runs"]:
        agg = run["aggregate"]
        labeled, free = agg["labeled"] or {}, agg["label_free"] or {}
        cells = [f"`{run['name']}`", _differs(run["differs"]), _steps(run), _dev(run)]
        cells += [_cell(labeled.get(t)) for t in sts]
        cells += [_cell(labeled.get("avg")), _cell(free.get("avg")), _cell(agg["gap"], signed=True)]
        cells.append("-" if run["baseline"] else _cell(agg["train_minutes"]))
        lines.append("| " + " | ".join(cells) + " |")
    trained = [run for run in summary["runs"] if not run["baseline"] and (run["aggregate"]["label_free"] or {})]
    if trained:
        lines += ["", "The same runs, model chosen by the **label-free** criterion (no labels used anywhere):", ""]
        header = ["run", "step chosen", *(TASK_HEADERS.get(t, t) for t in sts), "avg"]
        lines += ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
        for run in trained:
            free = run["aggregate"]["label_free"]
            chosen = dict.fromkeys(r["steps"].get("label_free") for r in run["results"].values())
            cells = [f"`{run['name']}`", "/".join(str(step) for step in chosen)]
            lines.append("| " + " | ".join([*cells, *(_cell(free.get(t)) for t in sts), _cell(free.get("avg"))]) + " |")
    if transfer:
        lines += ["", "Transfer tasks (accuracy x100, labeled selection):", ""]
        header = ["run", *(TASK_HEADERS.get(t, t) for t in transfer), "avg"]
        lines += ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        for run in summary["runs"]:
            labeled = run["aggregate"]["labeled"] or {}
            avg = _cell(run["aggregate"]["transfer_avg"])
            lines.append(
                "| " + " | ".join([f"`{run['name']}`", *(_cell(labeled.get(t)) for t in transfer), avg]) + " |"
            )
    if summary.get("paper_tables"):
        lines += format_paper_tables(summary)
    lines += _speed_lines(summary) + _target_lines(summary) + _by_backbone_lines(summary)
    lines += _note_lines(summary)
    return "\n".join(lines) + "\n"


def _note_lines(summary: dict[str, Any]) -> list[str]:
    """The list under the tables: each run's note, the runs not applicable, where reused runs came from, what is
    not run yet."""
    lines: list[str] = []
    notes = [(run["name"], run["note"]) for run in summary["runs"] if run["note"]]
    skipped = summary.get("not_applicable", [])
    reused = summary.get("reused", [])
    if notes or summary["not_run"] or skipped or reused:
        lines.append("")
    for name, note in notes:
        lines.append(f"- `{name}`: {note.strip()}")
    for row in skipped:
        lines.append(f"- `{row['name']}` ({row['method']} on {row['backbone']}): not applicable: {row['reason']}")
    for source in dict.fromkeys(row["file"] for row in reused):
        names = [
            f"`{row['name']}`" + ("" if row["run"] == row["name"] else f" (its `{row['experiment']}/{row['run']}`)")
            for row in reused
            if row["file"] == source
        ]
        lines.append(f"- reused from `{source}` (`--reuse-from`: the same settings, measured when those runs ran): "
                     + ", ".join(names))  # fmt: skip
    if summary["not_run"]:
        lines.append(f"- not run yet: {', '.join(f'`{n}`' for n in summary['not_run'])}")
    return lines


PAPER_ROW = "IS-BERT-NLI"
"""The paper's own model (BERT-base trained on the SNLI + MultiNLI sentences): the row the tables compare with."""


def format_paper_tables(summary: dict[str, Any]) -> list[str]:
    """The paper's STS table (Table 1) and SentEval transfer table: its IS-BERT-NLI row as reported, then one row per
    run and selection of this experiment. An average is shown only over all seven tasks, as the paper's is."""
    lines = ["", "## Beside the paper", ""]
    lines.append(
        f"The paper's rows ({PAPER_ROW}: BERT-base on the SNLI + MultiNLI sentences) are its reported numbers, never "
        "computed here. Each trained run has two rows: the model chosen on labeled STSb dev and the one chosen "
        "without labels; `-`: not evaluated."
    )
    for title, tasks, paper in (
        ("STS (cosine Spearman x100), the paper's Table 1", STS_TASKS, PAPER_STS[PAPER_ROW]),
        ("Transfer (accuracy x100), the paper's SentEval table", TRANSFER_TASKS, PAPER_TRANSFER[PAPER_ROW]),
    ):
        header = ["model", *(TASK_HEADERS.get(t, t) for t in tasks), "avg"]
        lines += ["", f"{title}:", "", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        lines.append(_paper_row(f"{PAPER_ROW} (paper)", list(paper)))
        for label, scores in _selection_rows(summary):
            lines.append(_paper_row(label, [scores.get(t, {}).get("mean") for t in tasks]))
    return lines


def _selection_rows(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for run in summary["runs"]:
        agg = run["aggregate"]
        if run["baseline"]:
            rows.append((f"`{run['name']}` (no training)", agg["labeled"] or {}))
            continue
        for kind, words in (("labeled", "labeled choice"), ("label_free", "label-free choice")):
            steps = "/".join(str(s) for s in dict.fromkeys(r["steps"].get(kind) for r in run["results"].values()))
            rows.append((f"`{run['name']}` ({words}, step {steps})", agg[kind] or {}))
    return rows


def _paper_row(label: str, values: list[float | None]) -> str:
    return "| " + " | ".join(table_row(label, values)) + " |"  # the average only over all tasks, as `isbert eval`


def _speed_lines(summary: dict[str, Any]) -> list[str]:
    """Quality against CPU encoding speed, one row per run (the figure ``<name>_quality_speed.png`` plots it)."""
    timed = [run for run in summary["runs"] if run.get("encode_sentences_per_second")]
    if not timed:
        return []
    lines = ["", "Quality and CPU encoding speed (sentences/s on 1,024 STSb test sentences, batch 64, same run):", ""]
    lines += [
        "| run | method | backbone | corpus | STS avg | transfer avg | sentences/s |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for run in timed:
        agg = run["aggregate"]
        cells = [
            f"`{run['name']}`",
            run["method"],
            run["backbone"],
            run["corpus"],
            _cell((agg["labeled"] or {}).get("avg")),
        ]
        cells += [_cell(agg["transfer_avg"]), _cell(agg["encode_speed"]).split(" ±")[0]]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _target_lines(summary: dict[str, Any]) -> list[str]:
    """Each target-corpus run's STS average minus that of the same method and backbone on the general corpus."""
    general = {(r["method"], r["backbone"]): r for r in summary["runs"] if r.get("corpus") == GENERAL_LABEL}
    pairs = [(r, general.get((r["method"], r["backbone"]))) for r in summary["runs"] if _on_target(r)]
    rows = [(t, g) for t, g in pairs if g is not None and t["sts_avg"] is not None and g["sts_avg"] is not None]
    if not rows:
        return []
    title = "Target-domain setting (trained on the STS test sentences, scores never read) vs the general corpus:"
    lines = [
        "",
        title,
        "",
        "| method | backbone | general STS avg | target STS avg | gain |",
        "|---|---|---:|---:|---:|",
    ]
    for target, base in rows:
        gain = target["sts_avg"] - base["sts_avg"]
        cells = [target["method"], target["backbone"], f"{base['sts_avg']:.2f}", f"{target['sts_avg']:.2f}"]
        lines.append("| " + " | ".join([*cells, f"{gain:+.2f}"]) + " |")
    return lines


def _by_backbone_lines(summary: dict[str, Any]) -> list[str]:
    """One row per method, one column per backbone (and corpus): ``STS avg ± sd · transfer avg``, the comparison at
    a glance. Only for experiments over more than one backbone; training-free rows sit in the general column."""
    runs = [r for r in summary["runs"] if r.get("method") and r.get("backbone")]
    if len({r["backbone"] for r in runs}) < 2:
        return []

    def column(row: dict[str, Any]) -> tuple[str, bool]:
        return row["backbone"], _on_target(row)

    columns = list(dict.fromkeys(column(r) for r in runs))
    shared = Counter((r["method"], column(r)) for r in runs)
    # Two runs of one method in one column (say, two settings of IS-BERT) get a row each, named after the run.
    label = {r["name"]: r["method"] + (f" (`{r['name']}`)" if shared[r["method"], column(r)] > 1 else "") for r in runs}
    cells: dict[tuple[str, tuple[str, bool]], str] = {}
    seeds = len(summary["seeds"])
    for run in runs:
        sts, transfer = (run["aggregate"]["labeled"] or {}).get("avg"), run["aggregate"]["transfer_avg"]
        partial = not run["baseline"] and sts is not None and sts["n"] < seeds
        cells[label[run["name"]], column(run)] = (
            _cell(sts)
            + (f" ({sts['n']} of {seeds} seeds)" if partial and sts is not None else "")
            + (f" · {transfer['mean']:.2f}" if transfer else "")
        )
    for row in summary.get("not_applicable", []):
        cells.setdefault((row["method"], column(row)), "n/a")
    heads = [f"{backbone}{', target corpus' if on_target else ''}" for backbone, on_target in columns]
    title = "By method and backbone (STS avg ± sd over seeds · transfer avg; labeled selection; n/a: not applicable):"
    lines = ["", title, "", "| method | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(columns)]
    for row_label in dict.fromkeys(label[r["name"]] for r in runs):
        lines.append(f"| {row_label} | " + " | ".join(cells.get((row_label, c), "-") for c in columns) + " |")
    return lines


def plot_quality_speed(summary: dict[str, Any], path: str | os.PathLike[str]) -> Path | None:
    """7-task STS average (y) against CPU sentences/s (log x), one point per run: the trade-off one picks on.
    Colour is the method, marker shape the backbone, a hollow marker a target-corpus run; names are written beside
    the points only while they stay readable."""
    runs = [r for r in summary["runs"] if r["encode_sentences_per_second"] and r["sts_avg"] is not None]
    if not runs:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 6.5))
    colors = {method: f"C{i % 10}" for i, method in enumerate(dict.fromkeys(r["method"] for r in runs))}
    markers = {name: "osD^vP*Xph"[i % 10] for i, name in enumerate(dict.fromkeys(r["backbone"] for r in runs))}
    for run in runs:
        color, fill = colors[run["method"]], "none" if _on_target(run) else colors[run["method"]]
        point = (run["encode_sentences_per_second"], run["sts_avg"])
        axis.scatter(*point, marker=markers[run["backbone"]], s=45, edgecolors=color, facecolors=fill)
        if len(runs) <= MAX_POINT_LABELS:
            axis.annotate(run["name"], point, textcoords="offset points", xytext=(4, 4), fontsize=7)
    handles = [axis.scatter([], [], color=color, label=method) for method, color in colors.items()]
    handles += [axis.scatter([], [], marker=m, color="grey", label=name) for name, m in markers.items()]
    if any(_on_target(r) for r in runs):
        handles.append(axis.scatter([], [], edgecolors="grey", facecolors="none", label="trained on the target corpus"))
    axis.set_xscale("log")
    axis.set_xlabel("CPU encoding speed (sentences/s, log scale)")
    axis.set_ylabel("7-task STS average (Spearman x100)")
    axis.set_title(f"{summary['experiment']}: quality against encoding speed")
    axis.grid(alpha=0.3, which="both")
    axis.legend(handles=handles, loc="best", fontsize=7)
    return save_figure_atomic(figure, path, dpi=100)


def plot_dev_curves(summary: dict[str, Any], path: str | os.PathLike[str]) -> Path | None:
    """STSb dev (x100, top) and the label-free metric (bottom) against the step, one line per trained run (its
    first seed). None when no run has a curve."""
    curves = []
    for run in summary["runs"]:
        first = next(iter(run["results"].values()))
        if first["history"]:
            curves.append((run["name"], first["seed"], first["history"]))
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for name, seed, history in curves:
        dev = [(h["step"], 100 * h["stsb_dev_spearman"]) for h in history if "stsb_dev_spearman" in h]
        free = [(h["step"], h["heldout_align_uniform"]) for h in history if "heldout_align_uniform" in h]
        label = name if seed is None else f"{name} (seed {seed})"
        if dev:
            top.plot(*zip(*dev, strict=True), "o-", ms=3, lw=1.2, label=label)
        if free:
            bottom.plot(*zip(*free, strict=True), "s--", ms=3, lw=1.2, label=label)
    top.set_ylabel("STSb dev Spearman x100")
    top.set_title(f"{summary['experiment']}: model-selection curves")
    bottom.set_ylabel("held-out align + uniform (lower = better)")
    bottom.set_xlabel("step")
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
        if axis.get_lines():
            axis.legend(loc="best", fontsize=8)
    return save_figure_atomic(figure, path, dpi=100)


def write_reports(
    experiment: Experiment,
    jobs: list[Job],
    results: list[dict[str, Any] | None],
    results_dir: str | os.PathLike[str],
    command: str,
    *,
    figures: bool = True,
) -> list[Path]:
    """Write ``<name>.json``, ``<name>.md`` and the figures that have something to draw, atomically (a figure with
    nothing to draw is removed); returns the paths written. ``figures=False``: the tables only, the figures left as
    they are."""
    folder = Path(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    summary = build_summary(experiment, jobs, results, command)
    json_path, md_path = folder / f"{experiment.name}.json", folder / f"{experiment.name}.md"
    write_json_atomic(json_path, summary)
    write_text_atomic(md_path, format_markdown(summary))
    written = [json_path, md_path]
    if not figures:
        return written
    tradeoff = experiment.tradeoff_task
    drawings = {
        "dev_curves": lambda path: plot_dev_curves(summary, path),
        "quality_speed": lambda path: plot_quality_speed(summary, path),
        "tradeoff": lambda path: plot_tradeoff(summary, tradeoff, path) if tradeoff else None,
    }
    for kind, draw in drawings.items():
        path = folder / f"{experiment.name}_{kind}.png"
        drawn = draw(path)
        if drawn is None:  # nothing to draw (any more): a previous figure would contradict the tables
            path.unlink(missing_ok=True)
        else:
            written.append(drawn)
    return written


def plot_tradeoff(summary: dict[str, Any], task: str, path: str | os.PathLike[str]) -> Path | None:
    """One point per run and selection: ``task`` (y) against the STS average (x), so what a run gains on its target
    task can be read against what it costs in general. None when no run has both numbers."""
    points = []
    for run in summary["runs"]:
        for kind, marker in (("labeled", "o"), ("label_free", "^")):
            scores = run["aggregate"][kind] or {}
            if task in scores and "avg" in scores and not (run["baseline"] and kind == "label_free"):
                points.append((run["name"], kind, marker, scores["avg"]["mean"], scores[task]["mean"]))
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 6))
    colors = {name: f"C{i % 10}" for i, name in enumerate(dict.fromkeys(p[0] for p in points))}
    for name, kind, marker, x, y in points:
        label = f"{name} ({'labeled' if kind == 'labeled' else 'label-free'} choice)"
        axis.scatter([x], [y], marker=marker, color=colors[name], s=50, label=label)
        axis.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    axis.set_xlabel("7-task STS average (general)")
    axis.set_ylabel(f"{TASK_HEADERS.get(task, task)} (target)")
    axis.set_title(f"{summary['experiment']}: target task against general average (o labeled, ^ label-free choice)")
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize=7)
    return save_figure_atomic(figure, path, dpi=100)
