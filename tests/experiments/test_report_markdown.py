"""An experiment's report as a user reads it: ``<name>.json``'s summary, ``<name>.md`` word for word and the
figures' content, built from stored per-run results (tests/experiments/test_report_columns.py recomputes each
derived number from raw scores; tests/experiments/test_report.py draws the quality-vs-speed figure)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from isbert.experiments import report
from isbert.experiments.config import GENERAL_LABEL, TARGET_LABEL

TASKS = ["STSBenchmark", "SICK-R", "MR"]
MACHINE = {"cpu": "Xeon", "cpu_count": 2, "device": "cpu", "torch": "2.13.0", "isbert": "0.9", "load_average_1min": 1.5}


def spec(name: str, baseline: str | None = None, **fields: Any) -> SimpleNamespace:
    differs = fields.pop("differs", {"baseline": baseline} if baseline else {})
    return SimpleNamespace(
        name=name, baseline=baseline, note=fields.pop("note", None), posthoc=fields.pop("posthoc", None),
        differs=lambda: differs, **fields,
    )  # fmt: skip


LABELS = {
    "mean": {"method": "mean", "backbone": "minilm", "corpus": "-"},
    "is": {"method": "is", "backbone": "minilm", "corpus": GENERAL_LABEL},
    "is-target": {"method": "is", "backbone": "minilm", "corpus": TARGET_LABEL},
    "tsdae": {"method": "tsdae", "backbone": "glove", "corpus": GENERAL_LABEL},
    "later": {"method": "simcse", "backbone": "minilm", "corpus": GENERAL_LABEL},
}


def experiment(**changes: Any) -> SimpleNamespace:
    runs = [
        spec("mean", baseline="mean"),
        spec("is", posthoc="sif", note="  the paper's setting  ", differs={"lr": 2e-05, "corpus": ["a|b", "c"]}),
        spec("tsdae", differs={"objective": "tsdae"}),  # each run left out is followed by one that ran
        spec("later", differs={"objective": "simcse"}),
        spec("is-target", posthoc="sif", differs={"corpus": ["task:sts-test"]}),  # post-hoc not computed yet
    ]
    fields = {
        "name": "demo", "path": Path("experiments/demo.toml"), "description": "  Two methods.\n", "tasks": TASKS,
        "seeds": [1, 2], "defaults": {"batch_size": 32}, "budget_minutes": 30.0, "tradeoff_task": None,
        "paper_tables": False, "runs": runs,
    }  # fmt: skip
    return SimpleNamespace(
        **{**fields, **changes},
        labels=lambda run: dict(LABELS[run.name]),
        not_applicable=lambda run: "no transformer layers" if run.name == "tsdae" else None,
    )


def scores(sts: float, sick: float, mr: float) -> dict[str, float]:
    return {"STSBenchmark": sts, "SICK-R": sick, "MR": mr, "avg": (sts + sick) / 2}


def result(seed: int | None, shift: float, **changes: Any) -> dict[str, Any]:
    """A stored result.json of one seed: labeled and label-free scores, dev curve, timings, machine."""
    stored = {
        "seed": seed,
        "scores": {"labeled": scores(70 + shift, 60 + shift, 80 + shift), "label_free": scores(68 + shift, 61, 79)},
        "stsb_dev": {"start": 50.0, "labeled": 75.0 + shift},
        "steps": {"trained": 100, "labeled": 60 + int(shift), "label_free": 98 if seed == 2 else 100},
        "train_seconds": 120.0 + 60 * shift,
        "wall_seconds": 300.0,
        "encode_sentences_per_second": 1000.0 + 100 * shift,
        "machine": dict(MACHINE),
        "history": [
            {"step": 0, "stsb_dev_spearman": 0.5, "heldout_align_uniform": -1.0},
            {"step": 50, "stsb_dev_spearman": 0.75 + shift / 100},
            {"step": 100, "heldout_align_uniform": -2.0},
        ],
    }
    return {**stored, **changes}


def stored_results() -> tuple[list[SimpleNamespace], list[dict[str, Any] | None]]:
    """Jobs and their results as the runner hands them over: one per run x seed, ``None`` for a run not run yet."""
    baseline = result(
        None, 0, stsb_dev={"start": 55.0, "labeled": 55.0}, steps={"trained": 0, "labeled": None, "label_free": None},
        history=[], scores={"labeled": scores(65, 55, 75), "label_free": scores(65, 55, 75)},
        machine={**MACHINE, "load_average_1min": None}, reused_from={"file": "old.json", "experiment": "old",
        "run": "avg", "name": "mean"},
    )  # fmt: skip
    posthoc = {"scores": {"labeled": scores(72, 62, 81), "label_free": scores(71, 61, 80)}, "stsb_dev": None,
               "evaluation": {"x": 1}, "encode_sentences_per_second": 900.0}  # fmt: skip
    seed_two_machine = {**MACHINE, "cpu": "Epyc", "load_average_1min": 3.25}
    jobs_and_results = [
        ("mean", baseline),
        ("is", result(1, 0, posthoc=posthoc)),
        ("is", result(2, 2, posthoc=posthoc, machine=seed_two_machine)),
        ("is-target", result(1, 3)),
        ("is-target", None),
        ("tsdae", None),
        ("later", None),
    ]
    return [SimpleNamespace(spec=spec(name)) for name, _ in jobs_and_results], [r for _, r in jobs_and_results]


def summary(**changes: Any) -> dict[str, Any]:
    jobs, results = stored_results()
    return report.build_summary(experiment(**changes), jobs, results, "isbert experiment demo.toml")  # type: ignore[arg-type]


def test_the_summary_keeps_every_run_its_posthoc_row_and_what_did_not_run() -> None:
    made = summary()
    assert [run["name"] for run in made["runs"]] == ["mean", "is", "is+posthoc-sif", "is-target"]
    assert [run["method"] for run in made["runs"]] == ["mean", "is", "is+posthoc-sif", "is"]
    assert made["not_run"] == ["later"]
    assert made["not_applicable"] == [{"name": "tsdae", **LABELS["tsdae"], "reason": "no transformer layers"}]
    assert made["reused"] == [{"name": "mean", "file": "old.json", "experiment": "old", "run": "avg"}]
    assert made["measured_minutes"] == 4 * 300 / 60
    assert made["max_load"] == 3.25
    line = "Xeon, 2 CPUs, device cpu, torch 2.13.0, isbert 0.9"
    assert made["machines"] == [line, line.replace("Xeon", "Epyc")]  # one line per distinct machine, in order
    expected_keys = {"experiment": "demo", "file": "experiments/demo.toml", "description": "  Two methods.\n",
                     "command": "isbert experiment demo.toml", "tasks": TASKS, "seeds": [1, 2],
                     "defaults": {"batch_size": 32}, "budget_minutes": 30.0, "tradeoff_task": None,
                     "paper_tables": False}  # fmt: skip
    assert {key: made[key] for key in expected_keys} == expected_keys
    json.dumps(made)  # what <name>.json stores


def test_a_run_row_aggregates_its_seeds_and_a_posthoc_row_takes_the_posthoc_scores() -> None:
    runs = {run["name"]: run for run in summary()["runs"]}
    trained, posthoc = runs["is"], runs["is+posthoc-sif"]
    assert trained["sts_avg"] == pytest.approx((65 + 67) / 2)
    assert trained["encode_sentences_per_second"] == 1100.0
    assert trained["note"] == "  the paper's setting  " and posthoc["note"] is None
    assert list(trained["results"]) == ["1", "2"] and list(runs["mean"]["results"]) == ["none"]
    assert posthoc["sts_avg"] == 67.0 and posthoc["encode_sentences_per_second"] == 900.0
    assert all(r["history"] == [] and "posthoc" not in r for r in posthoc["results"].values())
    assert posthoc["results"]["1"]["evaluation"] == {"x": 1} and posthoc["results"]["1"]["stsb_dev"] is None
    assert posthoc["results"]["1"]["train_seconds"] == trained["results"]["1"]["train_seconds"]  # the same training
    assert runs["mean"]["aggregate"]["labeled"]["avg"] == {"mean": 60.0, "sd": None, "n": 1}
    aggregate = trained["aggregate"]
    assert aggregate["seeds"] == [1, 2] and runs["mean"]["aggregate"]["seeds"] == [None]
    assert aggregate["steps"] == {"mean": 100.0, "sd": 0.0, "n": 2}
    assert aggregate["minutes"] == {"mean": 5.0, "sd": 0.0, "n": 2}  # wall time: training and evaluation
    assert aggregate["train_minutes"]["mean"] == 3.0


EXPECTED_MARKDOWN = """\
# Experiment `demo`

Two methods.

Reproduce: `isbert experiment demo.toml` (data directory from `--data-dir` or `$ISBERT_DATA_DIR`).

Machine: Xeon, 2 CPUs, device cpu, torch 2.13.0, isbert 0.9.
Machine: Epyc, 2 CPUs, device cpu, torch 2.13.0, isbert 0.9.

Compute: 20.0 min measured (training + evaluation of the runs below) vs 30 min stated budget. Highest 1-min load \
average at the end of a run: 3.25.

Seeds: 1, 2 (cells: mean ± sample sd over the seeds). Scores: cosine Spearman x100 of the model selected by the \
labeled STSb dev criterion; *avg label-free*: the same average for the model selected by the label-free criterion \
(held-out alignment + uniformity); *gap* = label-free minus labeled. Baselines are not trained (both equal).

| run | differs from defaults | steps | STSb dev start → best | STSb | SICK-R | avg | avg label-free | gap | train min |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|
| `mean` | baseline=mean | - | 55.00 | 65.00 | 55.00 | 60.00 | 60.00 | +0.00 | - |
| `is` | lr=2e-05, corpus=[a\\|b, c] | 100 | 50.00 ± 0.00 → 76.00 ± 1.41 (step 60/62) | 71.00 ± 1.41 | 61.00 ± 1.41 \
| 66.00 ± 1.41 | 65.00 ± 0.71 | -1.00 ± 0.71 | 3.00 ± 1.41 |
| `is+posthoc-sif` | lr=2e-05, corpus=[a\\|b, c] | 100 | - | 72.00 ± 0.00 | 62.00 ± 0.00 | 67.00 ± 0.00 \
| 66.00 ± 0.00 | -1.00 ± 0.00 | 3.00 ± 1.41 |
| `is-target` | corpus=[task:sts-test] | 100 | 50.00 → 78.00 (step 63) | 73.00 | 63.00 | 68.00 | 66.00 | -2.00 \
| 5.00 |

The same runs, model chosen by the **label-free** criterion (no labels used anywhere):

| run | step chosen | STSb | SICK-R | avg |
|---|---|---:|---:|---:|
| `is` | 100/98 | 69.00 ± 1.41 | 61.00 ± 0.00 | 65.00 ± 0.71 |
| `is+posthoc-sif` | 100/98 | 71.00 ± 0.00 | 61.00 ± 0.00 | 66.00 ± 0.00 |
| `is-target` | 100 | 71.00 | 61.00 | 66.00 |

Transfer tasks (accuracy x100, labeled selection):

| run | MR | avg |
|---|---:|---:|
| `mean` | 75.00 | 75.00 |
| `is` | 81.00 ± 1.41 | 81.00 ± 1.41 |
| `is+posthoc-sif` | 81.00 ± 0.00 | 81.00 ± 0.00 |
| `is-target` | 83.00 | 83.00 |

Quality and CPU encoding speed (sentences/s on 1,024 STSb test sentences, batch 64, same run):

| run | method | backbone | corpus | STS avg | transfer avg | sentences/s |
|---|---|---|---|---:|---:|---:|
| `mean` | mean | minilm | - | 60.00 | 75.00 | 1000.00 |
| `is` | is | minilm | general | 66.00 ± 1.41 | 81.00 ± 1.41 | 1100.00 |
| `is+posthoc-sif` | is+posthoc-sif | minilm | general | 67.00 ± 0.00 | 81.00 ± 0.00 | 900.00 |
| `is-target` | is | minilm | target | 68.00 | 83.00 | 1300.00 |

Target-domain setting (trained on the STS test sentences, scores never read) vs the general corpus:

| method | backbone | general STS avg | target STS avg | gain |
|---|---|---:|---:|---:|
| is | minilm | 66.00 | 68.00 | +2.00 |

- `is`: the paper's setting
- `tsdae` (tsdae on glove): not applicable: no transformer layers
- reused from `old.json` (`--reuse-from`: the same settings, measured when those runs ran): `mean` (its `old/avg`)
- not run yet: `later`
"""


def test_the_markdown_report_word_for_word() -> None:
    assert report.format_markdown(summary()) == EXPECTED_MARKDOWN


EXPECTED_PAPER_TABLES = """
## Beside the paper

The paper's rows (IS-BERT-NLI: BERT-base on the SNLI + MultiNLI sentences) are its reported numbers, never computed \
here. Each trained run has two rows: the model chosen on labeled STSb dev and the one chosen without labels; `-`: not \
evaluated.

STS (cosine Spearman x100), the paper's Table 1:

| model | STS12 | STS13 | STS14 | STS15 | STS16 | STSb | SICK-R | avg |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
| IS-BERT-NLI (paper) | 56.77 | 69.24 | 61.21 | 75.23 | 70.16 | 69.21 | 64.25 | 66.58 |
| `mean` (no training) | - | - | - | - | - | 65.00 | 55.00 | - |
| `is` (labeled choice, step 60/62) | - | - | - | - | - | 71.00 | 61.00 | - |
| `is` (label-free choice, step 100/98) | - | - | - | - | - | 69.00 | 61.00 | - |
| `is+posthoc-sif` (labeled choice, step 60/62) | - | - | - | - | - | 72.00 | 62.00 | - |
| `is+posthoc-sif` (label-free choice, step 100/98) | - | - | - | - | - | 71.00 | 61.00 | - |
| `is-target` (labeled choice, step 63) | - | - | - | - | - | 73.00 | 63.00 | - |
| `is-target` (label-free choice, step 100) | - | - | - | - | - | 71.00 | 61.00 | - |

Transfer (accuracy x100), the paper's SentEval table:

| model | MR | CR | SUBJ | MPQA | SST | TREC | MRPC | avg |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
| IS-BERT-NLI (paper) | 81.09 | 87.18 | 94.96 | 88.75 | 85.96 | 88.64 | 74.24 | 85.83 |
| `mean` (no training) | 75.00 | - | - | - | - | - | - | - |
| `is` (labeled choice, step 60/62) | 81.00 | - | - | - | - | - | - | - |
| `is` (label-free choice, step 100/98) | 79.00 | - | - | - | - | - | - | - |
| `is+posthoc-sif` (labeled choice, step 60/62) | 81.00 | - | - | - | - | - | - | - |
| `is+posthoc-sif` (label-free choice, step 100/98) | 80.00 | - | - | - | - | - | - | - |
| `is-target` (labeled choice, step 63) | 83.00 | - | - | - | - | - | - | - |
| `is-target` (label-free choice, step 100) | 79.00 | - | - | - | - | - | - | - |"""


def test_paper_tables_put_every_run_and_selection_beside_the_papers_row() -> None:
    """Only with ``paper_tables = true``, after the main tables and before the notes."""
    markdown = report.format_markdown(summary(paper_tables=True))
    assert "\n".join(report.format_paper_tables(summary())) == EXPECTED_PAPER_TABLES
    before, after = EXPECTED_MARKDOWN.split("\nQuality and CPU encoding speed")
    assert markdown == before + EXPECTED_PAPER_TABLES + "\n\nQuality and CPU encoding speed" + after


def test_a_bare_experiment_says_what_it_lacks() -> None:
    """One seed, no description, no budget, no machine, no load, nothing left out: the plain sentences."""
    bare = {
        "experiment": "bare", "description": "", "command": "isbert experiment bare.toml", "machines": [],
        "tasks": ["STSBenchmark"], "budget_minutes": None, "measured_minutes": 0.25, "max_load": 0.0, "seeds": [7],
        "runs": [], "not_run": [], "paper_tables": False,
    }  # fmt: skip
    assert report.format_markdown(bare) == (
        "# Experiment `bare`\n\n"
        "Reproduce: `isbert experiment bare.toml` (data directory from `--data-dir` or `$ISBERT_DATA_DIR`).\n\n"
        "Machine: -.\n\n"
        "Compute: 0.2 min measured (training + evaluation of the runs below); no budget stated.\n\n"
        "Seeds: 7. Scores: cosine Spearman x100 of the model selected by the labeled STSb dev criterion; *avg "
        "label-free*: the same average for the model selected by the label-free criterion (held-out alignment + "
        "uniformity); *gap* = label-free minus labeled. Baselines are not trained (both equal).\n\n"
        "| run | differs from defaults | steps | STSb dev start → best | STSb | avg | avg label-free | gap "
        "| train min |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )


def row(run_results: list[dict[str, Any]], baseline: str | None = None) -> dict[str, Any]:
    spec_ = spec("r", baseline=baseline, differs={})
    return report._run_row("r", dict(LABELS["is"]), spec_, run_results, TASKS)  # type: ignore[arg-type]


def test_the_dev_cell_for_each_kind_of_run() -> None:
    assert report._dev(row([result(1, 0)])) == "50.00 → 75.00 (step 60)"
    assert report._dev(row([result(1, 0), result(2, 0)])) == "50.00 ± 0.00 → 75.00 ± 0.00 (step 60)"  # one step
    assert report._dev(row([result(None, 0)], baseline="whitening")) == "50.00"  # not trained: its one score
    added_later = [result(seed, seed, stsb_dev={"start": None, "labeled": 74.0}) for seed in (1, 2)]
    assert report._dev(row(added_later)) == "74.00 ± 0.00 (step 61/62)"  # the chosen steps only
    no_curve = result(1, 0, stsb_dev={"start": 50.0, "labeled": None})
    assert report._dev(row([no_curve])) == "-"


def test_the_steps_cell_lists_each_seeds_distinct_trained_steps_in_order() -> None:
    seeds = [result(1, 0), result(2, 0, steps={"trained": 80, "labeled": 40, "label_free": 80}), result(3, 0)]
    assert report._steps(row(seeds)) == "100/80"
    assert report._steps(row(seeds, baseline="mean")) == "-"


def test_the_summary_of_runs_without_a_load_or_a_result() -> None:
    jobs, results = stored_results()
    only_baseline = [r if job.spec.name == "mean" else None for job, r in zip(jobs, results, strict=True)]
    made = report.build_summary(experiment(), jobs, only_baseline, "c")  # type: ignore[arg-type]
    assert (made["max_load"], made["measured_minutes"]) == (0.0, 5.0)  # its load was not measured
    nothing = report.build_summary(experiment(), jobs, [None] * len(jobs), "c")  # type: ignore[arg-type]
    assert (nothing["max_load"], nothing["measured_minutes"], nothing["machines"]) == (0.0, 0, [])
    assert nothing["not_run"] == ["mean", "is", "later", "is-target"]


@pytest.mark.parametrize("missing", [{"label_free": None}, {"label_free": {"MR": 1.0}}, {"labeled": {"MR": 1.0}}])
def test_no_gap_without_both_averages(missing: dict[str, Any]) -> None:
    stored = result(1, 0)
    stored["scores"] = {**stored["scores"], **missing}
    assert report.summarize_run([stored], TASKS)["gap"] is None
    assert report.summarize_run([stored, result(2, 0)], TASKS)["gap"] == {"mean": -0.5, "sd": None, "n": 1}


def test_jobs_and_results_must_pair_up() -> None:
    """A result list of another length is a caller's bug: refused, never paired with the wrong runs."""
    jobs, results = stored_results()
    with pytest.raises(ValueError, match="zip"):
        report.build_summary(experiment(), jobs, results[:-1], "c")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="zip"):
        report._reused(jobs, results[:-1])  # type: ignore[arg-type]


REUSED = {"file": "pub.json", "experiment": "pub"}


@pytest.mark.parametrize(
    ("summary_part", "lines"),
    [
        ({"runs": [{"name": "a", "note": " n "}]}, ["", "- `a`: n"]),
        ({"not_run": ["a", "b"]}, ["", "- not run yet: `a`, `b`"]),
        (
            {"not_applicable": [{"name": "a", "method": "tsdae", "backbone": "glove", "reason": "why"}]},
            ["", "- `a` (tsdae on glove): not applicable: why"],
        ),
        (
            {"reused": [{**REUSED, "name": "a", "run": "a"}, {**REUSED, "name": "b", "run": "c"}]},
            ["", "- reused from `pub.json` (`--reuse-from`: the same settings, measured when those runs ran): `a`, `b` "
             "(its `pub/c`)"],
        ),
        ({}, []),
    ],
)  # fmt: skip
def test_the_notes_under_the_tables(summary_part: dict[str, Any], lines: list[str]) -> None:
    """Each kind of note alone still gets its blank line before it; nothing to say, no blank line."""
    assert report._note_lines({"runs": [], "not_run": [], **summary_part}) == lines


def test_the_by_backbone_block_word_for_word() -> None:
    def run(name: str, backbone: str, sts: float, **extra: Any) -> dict[str, Any]:
        aggregate = {"labeled": {"avg": {"mean": sts, "sd": None, "n": 1}}, "transfer_avg": None}
        return {"name": name, "method": "is", "backbone": backbone, "corpus": GENERAL_LABEL, "baseline": None,
                "aggregate": aggregate, **extra}  # fmt: skip

    runs = [run("a", "weak", 50.0), run("b", "tuned", 60.0), run("old", "", 70.0)]  # no backbone label: left out
    assert report._by_backbone_lines({"runs": runs, "seeds": [1]}) == [
        "",
        "By method and backbone (STS avg ± sd over seeds · transfer avg; labeled selection; n/a: not applicable):",
        "",
        "| method | weak | tuned |",
        "|---|---:|---:|",
        "| is | 50.00 | 60.00 |",
    ]


def test_values_in_the_differs_column() -> None:
    assert report._differs({}) == "(defaults)"
    assert report._differs({"lr": 3e-05, "layers": [1, 0.5], "name": "a|b"}) == "lr=3e-05, layers=[1, 0.5], name=a\\|b"
    assert report._value(2.0) == "2" and report._value([[0.25]]) == "[[0.25]]" and report._value(None) == "None"


def test_a_machine_line_names_what_is_missing() -> None:
    assert report.machine_line({}) == "unknown CPU, None CPUs, device None, torch None, isbert None"
    with_gpu = {**MACHINE, "gpu": "H200"}
    assert report.machine_line(with_gpu) == "Xeon, 2 CPUs, H200, device cpu, torch 2.13.0, isbert 0.9"


@contextmanager
def saved_figures(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The figures report.py would save, kept open here to be read (closed on the way out)."""
    import matplotlib.pyplot as plt

    figures: list[Any] = []

    def keep(figure: Any, path: Any, **options: Any) -> Path:
        assert options == {"dpi": 100}
        figures.append(figure)
        return Path(path)

    monkeypatch.setattr(report, "save_figure_atomic", keep)
    try:
        yield figures
    finally:
        for figure in figures:
            plt.close(figure)


def lines_of(axis: Any) -> dict[str, list[tuple[float, float]]]:
    return {line.get_label(): [tuple(xy) for xy in line.get_xydata().tolist()] for line in axis.get_lines()}


def test_dev_curves_draw_each_runs_first_seed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    made = summary()
    with saved_figures(monkeypatch) as figures:
        assert report.plot_dev_curves(made, tmp_path / "d.png") == tmp_path / "d.png"
        (figure,) = figures
        top, bottom = figure.axes
        curves = ["is (seed 1)", "is-target (seed 1)"]  # the post-hoc row shares its run's curve: not drawn twice
        assert lines_of(top) == {
            "is (seed 1)": [(0.0, 50.0), (50.0, 75.0)],
            "is-target (seed 1)": [(0.0, 50.0), (50.0, 78.0)],
        }
        assert lines_of(bottom) == {curve: [(0.0, -1.0), (100.0, -2.0)] for curve in curves}
        assert top.get_title() == "demo: model-selection curves"
        assert (top.get_ylabel(), bottom.get_ylabel(), bottom.get_xlabel()) == (
            "STSb dev Spearman x100", "held-out align + uniform (lower = better)", "step"
        )  # fmt: skip
        assert [t.get_text() for t in top.get_legend().get_texts()] == curves
        assert bottom.get_legend() is not None


def test_a_run_without_seeds_is_labelled_by_name_and_no_curve_draws_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    unseeded = {"experiment": "x", "runs": [row([result(None, 0)])]}
    with saved_figures(monkeypatch) as figures:
        report.plot_dev_curves(unseeded, tmp_path / "d.png")
        assert list(lines_of(figures[0].axes[0])) == ["r"]
    flat = {"experiment": "x", "runs": [row([result(1, 0, history=[])])]}
    assert report.plot_dev_curves(flat, tmp_path / "d.png") is None


def test_the_tradeoff_figure_has_a_point_per_run_and_selection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with saved_figures(monkeypatch) as figures:
        assert report.plot_tradeoff(summary(), "MR", tmp_path / "t.png") == tmp_path / "t.png"
        (axis,) = figures[0].axes
        points = {c.get_label(): tuple(c.get_offsets()[0].tolist()) for c in axis.collections}
        assert points == {
            "mean (labeled choice)": (60.0, 75.0),  # a baseline: one point, its score
            "is (labeled choice)": (66.0, 81.0),
            "is (label-free choice)": (65.0, 79.0),
            "is+posthoc-sif (labeled choice)": (67.0, 81.0),
            "is+posthoc-sif (label-free choice)": (66.0, 80.0),
            "is-target (labeled choice)": (68.0, 83.0),
            "is-target (label-free choice)": (66.0, 79.0),
        }
        assert (axis.get_xlabel(), axis.get_ylabel()) == ("7-task STS average (general)", "MR (target)")
        assert axis.get_title() == "demo: target task against general average (o labeled, ^ label-free choice)"
    assert report.plot_tradeoff(summary(), "SICK-E", tmp_path / "t.png") is None  # no run has it


def test_write_reports_writes_each_file_and_removes_figures_with_nothing_left_to_draw(tmp_path: Path) -> None:
    jobs, results = stored_results()
    nothing: list[dict[str, Any] | None] = [None] * len(results)
    fresh = tmp_path / "fresh"
    assert report.write_reports(experiment(), jobs, nothing, fresh, "c") == [fresh / "demo.json", fresh / "demo.md"]  # type: ignore[arg-type]
    folder = tmp_path / "nested" / "results"  # its parents are made too
    written = report.write_reports(experiment(tradeoff_task="MR"), jobs, results, folder, "cmd")  # type: ignore[arg-type]
    names = ["demo.json", "demo.md", "demo_dev_curves.png", "demo_quality_speed.png", "demo_tradeoff.png"]
    assert written == [folder / name for name in names]
    made = summary(tradeoff_task="MR") | {"command": "cmd"}
    assert json.loads((folder / "demo.json").read_text()) == json.loads(json.dumps(made))
    assert (folder / "demo.md").read_text() == report.format_markdown(made)
    assert all((folder / name).read_bytes().startswith(b"\x89PNG") for name in names[2:])
    drawn = {name: (folder / name).read_bytes() for name in names[2:]}
    tables = report.write_reports(experiment(), jobs, nothing, folder, "again", figures=False)  # type: ignore[arg-type]
    assert tables == [folder / name for name in names[:2]] and json.loads(written[0].read_text())["command"] == "again"
    assert {name: (folder / name).read_bytes() for name in names[2:]} == drawn  # the figures left as they are
    rewritten = report.write_reports(experiment(), jobs, nothing, folder, "cmd")  # type: ignore[arg-type]
    assert rewritten == [folder / name for name in names[:2]]
    assert sorted(p.name for p in folder.iterdir()) == names[:2]  # no figure left to contradict the tables


def marker_path(marker: str) -> list[list[float]]:
    from matplotlib.markers import MarkerStyle

    style = MarkerStyle(marker)
    return style.get_path().transformed(style.get_transform()).vertices.tolist()


def rgba(color: str) -> list[float]:
    from matplotlib.colors import to_rgba

    return list(to_rgba(color))


def assert_annotated(axis: Any, names: list[str], fontsize: float = 7) -> None:
    """Each name written beside its point, 4 points up and right, small."""
    assert [text.get_text() for text in axis.texts] == names
    for text in axis.texts:
        assert (text.get_anncoords(), tuple(text.xyann), text.get_fontsize()) == ("offset points", (4, 4), fontsize)


def test_the_quality_speed_figure_looks_as_designed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Colour per method, one of ten marker shapes per backbone (cycling), hollow for target runs, every name
    written at exactly the label limit; a legend of methods, backbones and the hollow marker; a log-scale grid."""
    runs = [
        {"name": f"r{i}", "method": f"m{i % 2}", "backbone": f"b{i}", "corpus": TARGET_LABEL if i == 1 else "general",
         "encode_sentences_per_second": 100.0 * (i + 1), "sts_avg": 50.0 + i}
        for i in range(report.MAX_POINT_LABELS)
    ]  # fmt: skip
    with saved_figures(monkeypatch) as figures:
        report.plot_quality_speed({"experiment": "x", "runs": runs}, tmp_path / "q.png")
        (figure,) = figures
        axis = figure.axes[0]
        assert figure.get_size_inches().tolist() == [9, 6.5]
        points = [c for c in axis.collections if len(c.get_offsets())]
        for i, point in enumerate(points):
            color = rgba(f"C{i % 2}")
            assert point.get_sizes().tolist() == [45] and point.get_edgecolor().tolist() == [color]
            assert point.get_facecolor().tolist() == ([] if i == 1 else [color])  # hollow: a target-corpus run
            assert point.get_paths()[0].vertices.tolist() == marker_path("osD^vP*Xph"[i % 10])
        assert_annotated(axis, [run["name"] for run in runs])
        legend = axis.get_legend()
        handles = legend.legend_handles
        assert [h.get_facecolor().tolist() for h in handles[:2]] == [[rgba("C0")], [rgba("C1")]]
        for i, handle in enumerate(handles[2:-1]):
            assert handle.get_facecolor().tolist() == [rgba("grey")]
            assert handle.get_paths()[0].vertices.tolist() == marker_path("osD^vP*Xph"[i % 10])
        assert handles[-1].get_edgecolor().tolist() == [rgba("grey")] and handles[-1].get_facecolor().tolist() == []
        assert {text.get_fontsize() for text in legend.get_texts()} == {7}
        assert axis.get_xlabel() == "CPU encoding speed (sentences/s, log scale)"
        assert axis.get_ylabel() == "7-task STS average (Spearman x100)"
        assert axis.xaxis.get_gridlines()[0].get_alpha() == 0.3
        assert all(tick.gridline.get_visible() for tick in axis.xaxis.get_minor_ticks())  # the log scale's too


def test_the_dev_curves_figure_looks_as_designed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with saved_figures(monkeypatch) as figures:
        report.plot_dev_curves(summary(), tmp_path / "d.png")
        (figure,) = figures
        top, bottom = figure.axes
        assert figure.get_size_inches().tolist() == [8, 7]
        assert top.get_shared_x_axes().joined(top, bottom)
        for axis, marker, style in ((top, "o", "-"), (bottom, "s", "--")):
            for line in axis.get_lines():
                assert (line.get_marker(), line.get_linestyle(), line.get_markersize(), line.get_linewidth()) == (
                    marker, style, 3, 1.2
                )  # fmt: skip
            assert axis.xaxis.get_gridlines()[0].get_alpha() == 0.3
            assert {text.get_fontsize() for text in axis.get_legend().get_texts()} == {8}


def test_the_tradeoff_figure_looks_as_designed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A colour per run, a circle for the labeled choice and a triangle for the label-free one."""
    with saved_figures(monkeypatch) as figures:
        report.plot_tradeoff(summary(), "MR", tmp_path / "t.png")
        (figure,) = figures
        (axis,) = figure.axes
        assert figure.get_size_inches().tolist() == [8, 6]
        runs = ["mean", "is", "is+posthoc-sif", "is-target"]
        for point in axis.collections:
            name, choice = point.get_label().split(" (")
            assert point.get_facecolor().tolist() == [rgba(f"C{runs.index(name)}")]
            assert point.get_sizes().tolist() == [50]
            assert point.get_paths()[0].vertices.tolist() == marker_path("o" if choice.startswith("labeled") else "^")
        assert_annotated(axis, [point.get_label().split(" (")[0] for point in axis.collections])
        assert axis.xaxis.get_gridlines()[0].get_alpha() == 0.3
        assert {text.get_fontsize() for text in axis.get_legend().get_texts()} == {7}
