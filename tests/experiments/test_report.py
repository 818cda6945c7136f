"""The quality-vs-speed figure: every point identifiable by colour (method), shape (backbone) and fill (corpus)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from experiments.test_report_markdown import saved_figures
from isbert.experiments import report


def _run(index: int, backbone: str, corpus: str) -> dict[str, Any]:
    method = ["mean", "simcse", "is"][index % 3]
    return {
        "name": f"{backbone}-{method}-{index}",
        "method": method,
        "backbone": backbone,
        "corpus": corpus,
        "encode_sentences_per_second": 1000.0 + index,
        "sts_avg": 60.0 + index / 10,
    }


def _drawn(monkeypatch: pytest.MonkeyPatch, runs: list[dict[str, Any]], tmp_path: Path) -> Any:
    """The figure's axes (the figure is closed; its artists stay readable)."""
    with saved_figures(monkeypatch) as figures:
        assert report.plot_quality_speed({"experiment": "x", "runs": runs}, tmp_path / "x.png") == tmp_path / "x.png"
        (figure,) = figures
        return figure.axes[0]


def test_few_points_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runs = [_run(i, "weak", "general") for i in range(3)]
    axis = _drawn(monkeypatch, runs, tmp_path)
    assert sorted(text.get_text() for text in axis.texts) == sorted(r["name"] for r in runs)
    assert "trained on the target corpus" not in [t.get_text() for t in axis.get_legend().get_texts()]


def test_many_points_drop_names_and_keep_backbone_shapes_and_hollow_targets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runs = [
        _run(i, ["weak", "tuned"][i % 2], ["general", "target"][i // 10]) for i in range(report.MAX_POINT_LABELS + 5)
    ]
    axis = _drawn(monkeypatch, runs, tmp_path)
    assert len(axis.texts) == 0
    legend = [t.get_text() for t in axis.get_legend().get_texts()]
    assert legend == ["mean", "simcse", "is", "weak", "tuned", "trained on the target corpus"]
    points = [c for c in axis.collections if len(c.get_offsets())]
    assert len(points) == len(runs)
    paths = {run["backbone"]: points[i].get_paths()[0].vertices.shape for i, run in enumerate(runs)}
    assert paths["weak"] != paths["tuned"]  # a circle and a square
    hollow = [len(p.get_facecolors()) == 0 or p.get_facecolors()[0][3] == 0 for p in points]
    assert hollow == [run["corpus"] == "target" for run in runs]


def test_no_timed_run_draws_nothing(tmp_path: Path) -> None:
    runs = [{**_run(0, "weak", "general"), "encode_sentences_per_second": None}]
    assert report.plot_quality_speed({"experiment": "x", "runs": runs}, tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()


def _scored(
    name: str, method: str, backbone: str, corpus: str, sts: float, transfer: float | None, seeds: int = 2
) -> dict[str, Any]:
    aggregate = {
        "labeled": {"avg": {"mean": sts, "sd": 0.5 if seeds > 1 else None, "n": seeds}},
        "transfer_avg": {"mean": transfer, "sd": 0.1} if transfer is not None else None,
    }
    baseline = method if method in ("mean", "whitening") else None
    run = {"name": name, "method": method, "backbone": backbone, "corpus": corpus, "baseline": baseline}
    return {**run, "aggregate": aggregate}


def test_by_backbone_table_puts_each_method_under_its_backbone_and_corpus() -> None:
    runs = [
        _scored("w-mean", "mean", "weak", "-", 50.0, 70.0, seeds=1),
        _scored("w-is", "is", "weak", "general", 60.0, 71.0),
        _scored("w-is-target", "is", "weak", "target", 62.0, None),
        _scored("t-is", "is", "tuned", "general", 78.0, 80.0),
    ]
    skipped = [{"name": "w-tsdae", "method": "tsdae", "backbone": "weak", "corpus": "general", "reason": "no layers"}]
    lines = report._by_backbone_lines({"runs": runs, "not_applicable": skipped, "seeds": [1, 2]})
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == "| method | weak | weak, target corpus | tuned |"
    assert table[2:] == [
        "| mean | 50.00 · 70.00 | - | - |",
        "| is | 60.00 ± 0.50 · 71.00 | 62.00 ± 0.50 | 78.00 ± 0.50 · 80.00 |",
    ]
    one_backbone = {"runs": runs[:2], "not_applicable": skipped, "seeds": [1, 2]}
    assert report._by_backbone_lines(one_backbone) == []  # one backbone: no table


def test_by_backbone_table_marks_a_method_that_cannot_apply() -> None:
    runs = [
        _scored("w-is", "is", "weak", "general", 60.0, None),
        _scored("t-ts", "tsdae", "tuned", "general", 70.0, None),
    ]
    skipped = [{"name": "w-ts", "method": "tsdae", "backbone": "weak", "corpus": "general", "reason": "no layers"}]
    summary = {"runs": runs, "not_applicable": skipped, "seeds": [1, 2]}
    table = [line for line in report._by_backbone_lines(summary) if line[:1] == "|"]
    assert table[-1] == "| tsdae | n/a | 70.00 ± 0.50 |"


def test_by_backbone_table_gives_two_runs_of_one_method_a_row_each() -> None:
    runs = [
        _scored("is-relu", "is", "weak", "general", 55.0, None),
        _scored("is-linear", "is", "weak", "general", 60.0, None),
        _scored("t-is", "is", "tuned", "general", 78.0, None),
    ]
    summary = {"runs": runs, "not_applicable": [], "seeds": [1, 2]}
    table = [line for line in report._by_backbone_lines(summary) if line[:1] == "|"]
    assert table[2:] == [
        "| is (`is-relu`) | 55.00 ± 0.50 | - |",
        "| is (`is-linear`) | 60.00 ± 0.50 | - |",
        "| is | - | 78.00 ± 0.50 |",
    ]


def test_by_backbone_table_says_when_a_trained_row_has_fewer_seeds_than_the_experiment() -> None:
    runs = [
        _scored("w-mean", "mean", "weak", "-", 50.0, 70.0, seeds=1),  # untrained: one value is all there is
        _scored("w-is", "is", "weak", "general", 60.0, 71.0, seeds=1),
        _scored("t-is", "is", "tuned", "general", 78.0, None),
    ]
    table = report._by_backbone_lines({"runs": runs, "not_applicable": [], "seeds": [42, 43]})
    assert "| mean | 50.00 · 70.00 | - |" in table
    assert "| is | 60.00 (1 of 2 seeds) · 71.00 | 78.00 ± 0.50 |" in table
