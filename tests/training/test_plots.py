"""The training-curve figure: a y range that shows the scale of a change, the start as a labeled reference line,
the saved step annotated, and a legend off the points."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from isbert.training.plots import draw_curves, plot_curves, read_log


def _log(stsb: list[float], free: list[float], chosen: int, metric: str = "stsb_dev_spearman") -> list[dict]:
    """A run's log as the trainer writes it: evaluations every 100 steps, the selection's best after the last."""
    records: list[dict] = [{"event": "train", "step": s, "loss": 1.0 - s / 1000} for s in range(10, 410, 10)]
    for i, (score, value) in enumerate(zip(stsb, free, strict=True)):
        records.append({"event": "eval", "step": 100 * i, "eval_stsb_dev_spearman": score,
                        "eval_heldout_align_uniform": value})  # fmt: skip
    best = {"step": chosen, "metric": metric,
            "value": stsb[chosen // 100] if metric == "stsb_dev_spearman" else free[chosen // 100]}  # fmt: skip
    records.append({"event": "selection", "step": 400, "new_best": False, "best": best})
    return records


def _laid_out(records: list[dict]):
    figure = draw_curves(records)
    figure.tight_layout()  # as save_figure_atomic lays it out
    figure.canvas.draw()
    return figure


def test_small_change_is_drawn_at_the_scale_of_points_with_start_and_choice_labeled() -> None:
    # the case of the issue: 86.66 -> 86.70 must not fill the axis
    figure = _laid_out(_log([0.8666, 0.8668, 0.8670, 0.8669, 0.8667], [-2.30, -2.31, -2.32, -2.31, -2.30], 200))
    _loss_axis, stsb_axis, free_axis = figure.axes
    low, high = stsb_axis.get_ylim()
    assert high - low >= 5.0 and low < 86.66 < 86.70 < high
    low, high = free_axis.get_ylim()
    assert high - low >= 0.5
    assert stsb_axis.get_ylabel() == "STSb dev Spearman x100" and stsb_axis.get_xlabel() == "step"
    references = [line for line in stsb_axis.get_lines() if line.get_label().startswith("STSb dev at the start")]
    assert len(references) == 1 and list(references[0].get_ydata()) == pytest.approx([86.66, 86.66])
    assert references[0].get_label() == "STSb dev at the start (86.66)"
    texts = [t.get_text() for t in stsb_axis.texts]
    assert "start 86.66" in texts and "saved: step 200, STSb dev 86.70" in texts
    assert "start -2.3000" in [t.get_text() for t in free_axis.texts]


def test_legend_hides_no_point() -> None:
    figure = _laid_out(
        _log([0.80, 0.82, 0.83, 0.84, 0.85], [-2.0, -2.1, -2.2, -2.3, -2.4], 400, "heldout_align_uniform")
    )
    legend = figure.axes[1].get_legend()
    assert legend is not None
    box = legend.get_window_extent()
    for axis in figure.axes[1:]:
        for line in axis.get_lines():
            for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
                px, py = axis.transData.transform((x, y))
                assert not box.contains(px, py), f"the legend covers ({x}, {y}) of {line.get_label()}"
    texts = [t.get_text() for t in figure.axes[2].texts]
    assert "saved: step 400, align+uniform -2.4000" in texts


def test_large_change_keeps_its_own_range_and_png_is_written(tmp_path: Path) -> None:
    records = _log([0.50, 0.60, 0.65, 0.66, 0.66], [-1.0, -1.5, -2.0, -2.2, -2.3], 300)
    figure = draw_curves(records)
    low, high = figure.axes[1].get_ylim()
    assert low <= 50 and high >= 66 and high - low < 25  # 16 points of change plus a margin
    log = tmp_path / "training_log.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in records) + '\n{"cut', encoding="utf-8")
    assert len(read_log(log)) == len(records)  # the line cut by a crash is skipped
    png = plot_curves(log, tmp_path / "curves.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_to_draw(tmp_path: Path) -> None:
    assert draw_curves([{"event": "start", "step": 0}]) is None
    assert plot_curves(tmp_path / "missing.jsonl", tmp_path / "x.png") is None


def test_a_short_runs_loss_points_are_visible() -> None:
    figure = draw_curves([{"event": "train", "step": 10, "loss": 1.5}])  # one logged step: a line would draw nothing
    (line,) = figure.axes[0].get_lines()
    assert line.get_marker() == "o"
