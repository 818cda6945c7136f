"""Every derived number of an experiment's report, recomputed here from the raw per-task, per-seed scores: the STS
average (over the STS tasks only), mean ± sample sd over the seeds, the gap (label-free minus labeled, signed), the
transfer average, training minutes, and the target-corpus gain (target minus general)."""

from __future__ import annotations

import statistics
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from isbert.evaluation.tasks import STS_TASKS, TRANSFER_TASKS
from isbert.experiments import report
from isbert.experiments.config import GENERAL_LABEL, TARGET_LABEL
from isbert.experiments.runner import _scores

SCORE = st.floats(0, 100, allow_nan=False)


def cell(values: list[float], signed: bool = False) -> str:
    """What a table cell must say for these per-seed values: the mean, then ± the sample sd for several seeds."""
    mean = statistics.fmean(values)
    text = f"{mean:+.2f}" if signed else f"{mean:.2f}"
    return text + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else "")


@st.composite
def experiments(draw: st.DrawFn) -> tuple[list[str], list[dict[str, Any]], list[dict[str, dict[str, float]]]]:
    """Tasks, and per seed the raw harness results of both selections plus the run's timings."""
    sts = draw(st.lists(st.sampled_from(STS_TASKS), min_size=1, max_size=4, unique=True))
    transfer = draw(st.lists(st.sampled_from(TRANSFER_TASKS), max_size=3, unique=True))
    tasks = [t for t in (*STS_TASKS, *TRANSFER_TASKS) if t in sts + transfer]
    seeds = draw(st.integers(1, 3))
    raw = []
    results = []
    for seed in range(seeds):
        per_kind = {}
        for kind in ("labeled", "label_free"):
            per_kind[kind] = {t: {"spearman" if t in STS_TASKS else "accuracy": draw(SCORE)} for t in tasks}
        raw.append(per_kind)
        results.append(
            {
                "seed": seed,
                "scores": {kind: _scores(per_kind[kind], tasks) for kind in per_kind},
                "steps": {"trained": 10, "labeled": 5, "label_free": 10},
                "stsb_dev": {"start": 50.0, "labeled": 60.0},
                "train_seconds": draw(st.floats(1, 10_000)),
                "wall_seconds": 1.0,
                "encode_sentences_per_second": None,
            }
        )
    return tasks, results, raw


def value(raw: dict[str, float]) -> float:
    return raw.get("spearman", raw.get("accuracy"))  # type: ignore[return-value]


def main_table_row(markdown: str, name: str) -> dict[str, str]:
    header = next(line for line in markdown.splitlines() if line.startswith("| run | differs"))
    rows = [line for line in markdown.splitlines() if line.startswith(f"| `{name}` |")]
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    return dict(zip([c.strip() for c in header.strip("|").split("|")], cells, strict=True))


@settings(max_examples=60, deadline=None)
@given(experiment=experiments())
def test_every_column_is_recomputed_from_the_raw_scores(experiment) -> None:
    tasks, results, raw = experiment
    sts = [t for t in tasks if t in STS_TASKS]
    transfer = [t for t in tasks if t in TRANSFER_TASKS]
    avg = {kind: [statistics.fmean(value(seed[kind][t]) for t in sts) for seed in raw] for kind in raw[0]}
    summary = report.summarize_run(results, tasks)
    for t in tasks:
        per_seed = [value(seed["labeled"][t]) for seed in raw]
        assert abs(summary["labeled"][t]["mean"] - statistics.fmean(per_seed)) < 1e-9
        assert summary["labeled"][t]["n"] == len(raw)
    gaps = [free - labeled for free, labeled in zip(avg["label_free"], avg["labeled"], strict=True)]
    assert abs(summary["gap"]["mean"] - statistics.fmean(gaps)) < 1e-9
    if transfer:
        transfer_avg = [statistics.fmean(value(seed["labeled"][t]) for t in transfer) for seed in raw]
        assert abs(summary["transfer_avg"]["mean"] - statistics.fmean(transfer_avg)) < 1e-9
    else:
        assert summary["transfer_avg"] is None

    spec = SimpleNamespace(name="run", baseline=None, note=None, differs=lambda: {"lr": 1e-3})
    labels = {"method": "is", "backbone": "b", "corpus": GENERAL_LABEL}
    row = report._run_row("run", labels, spec, results, tasks)
    assert abs(row["sts_avg"] - statistics.fmean(avg["labeled"])) < 1e-9
    summary_file = {
        "experiment": "x", "description": "", "command": "isbert experiment x", "machines": [], "tasks": tasks,
        "budget_minutes": None, "measured_minutes": 1.0, "max_load": 0.0, "seeds": list(range(len(raw))),
        "runs": [row], "not_run": [], "paper_tables": False,
    }  # fmt: skip
    cells = main_table_row(report.format_markdown(summary_file), "run")
    for t in sts:
        assert cells[report.TASK_HEADERS.get(t, t)] == cell([value(seed["labeled"][t]) for seed in raw])
    assert cells["avg"] == cell(avg["labeled"])
    assert cells["avg label-free"] == cell(avg["label_free"])
    assert cells["gap"] == cell(gaps, signed=True)
    assert cells["train min"] == cell([r["train_seconds"] / 60 for r in results])


def test_the_gap_is_label_free_minus_labeled() -> None:
    result = {"scores": {"labeled": {"avg": 70.0}, "label_free": {"avg": 65.5}}}
    assert report._gap(result) == -4.5
    assert report._cell(report.aggregate([-4.5]), signed=True) == "-4.50"
    assert report._cell(report.aggregate([1.0, 3.0]), signed=True) == "+2.00 ± 1.41"


def test_the_sts_average_leaves_transfer_tasks_out() -> None:
    raw = {"STSBenchmark": {"spearman": 80.0}, "SICK-R": {"spearman": 70.0}, "MR": {"accuracy": 10.0}}
    assert _scores(raw, ["STSBenchmark", "SICK-R", "MR"]) == {"STSBenchmark": 80.0, "SICK-R": 70.0, "MR": 10.0,
                                                             "avg": 75.0}  # fmt: skip


def test_the_target_gain_is_target_minus_general() -> None:
    def run(name: str, corpus: str, avg: float) -> dict[str, Any]:
        return {"name": name, "method": "is", "backbone": "b", "corpus": corpus, "sts_avg": avg}

    lines = report._target_lines({"runs": [run("g", GENERAL_LABEL, 70.0), run("t", TARGET_LABEL, 67.25)]})
    assert lines[-1] == "| is | b | 70.00 | 67.25 | -2.75 |"
    lines = report._target_lines({"runs": [run("t", TARGET_LABEL, 71.5), run("g", GENERAL_LABEL, 70.0)]})
    assert lines[-1] == "| is | b | 70.00 | 71.50 | +1.50 |"
