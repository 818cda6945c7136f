"""What a run reports: the summary printed at its end, its warnings when training made things worse, and the
model card saved beside the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from isbert.corpus import CorpusStats
from isbert.modules import STOCK_CNN_MASKS_FROM, MaskedCNN
from isbert.training import TrainConfig, TrainResult
from isbert.training.result import CARD_PATH, model_card, write_model_card

THREADS = "2 thread(s) (CPU affinity), OpenMP wait policy default (spinning)"


def corpus() -> CorpusStats:
    stats = CorpusStats(lines=10, used=8, skipped={"empty": 2}, heldout=2)
    stats.files = [
        {"path": "a.txt", "lines": 6, "used": 4, "skipped": {"empty": 2}},
        {"path": "b.txt", "lines": 4, "used": 4, "skipped": {}},
    ]
    return stats


def full_result(tmp_path: Path, **changes: Any) -> TrainResult:
    history = [
        {"step": 0, "stsb_dev_spearman": 0.80, "heldout_align_uniform": -3.5},
        {"step": 50, "stsb_dev_spearman": 0.81, "heldout_align_uniform": -3.55},
        {"step": 100, "stsb_dev_spearman": 0.78},
    ]
    settings: dict[str, Any] = dict(
        output_dir=tmp_path, steps=100, seconds=12.4, sentences_per_second=256.0, corpus=corpus(),
        best={"step": 50, "metric": "stsb_dev_spearman", "value": 0.81}, start=history[0], history=history,
        agreement={"text": "the two criteria agree"}, selection_warning="selection: a note", precision="bf16",
        threads=THREADS, training_free="against SIF: a line", verdict="verdict: a line",
    )  # fmt: skip
    return TrainResult(**{**settings, **changes})


def test_the_summary_of_a_run_line_by_line(tmp_path: Path) -> None:
    assert full_result(tmp_path).summary().splitlines() == [
        "corpus: 8 sentences used of 10 lines (skipped: 2 empty); 2 held out for the label-free criterion, 6 for "
        "training",
        "trained 100 steps in 12s (256.0 sentences/s in training steps, evaluations excluded; precision bf16; "
        f"{THREADS})",
        "selected step 50 by stsb_dev_spearman = 81.00",
        "STSb dev Spearman: 80.00 at the start, 81.00 for the saved model (+1.00)",
        "warning: training lowered STSb dev from 80.00 (start) to 78.00 (step 100); the objective is hurting this "
        "backbone (an already-tuned encoder?) - see README, Results",
        "selection: a note",
        "the two criteria agree",
        f"saved model: {tmp_path}  (isbert.load({str(tmp_path)!r}))",
        "against SIF: a line",
        "verdict: a line",
    ]


def test_the_summary_without_evaluations_or_optional_parts(tmp_path: Path) -> None:
    bare = full_result(
        tmp_path, best=None, start=None, history=[], agreement=None, selection_warning=None, threads="",
        training_free=None, verdict=None, precision="fp32",
    )  # fmt: skip
    assert bare.summary().splitlines()[1:] == [
        "trained 100 steps in 12s (256.0 sentences/s in training steps, evaluations excluded; precision fp32)",
        f"saved model: {tmp_path}  (isbert.load({str(tmp_path)!r}))",
    ]


def test_a_label_free_selection_at_the_start_is_named_so(tmp_path: Path) -> None:
    history = [{"step": 0, "heldout_align_uniform": -3.5}, {"step": 50, "heldout_align_uniform": -3.45}]
    best = {"step": 0, "metric": "heldout_align_uniform", "value": -3.5}
    lines = full_result(tmp_path, best=best, start=history[0], history=history).summary().splitlines()
    assert "selected the starting model (no evaluation beat it) by heldout_align_uniform = -3.5000" in lines
    assert not any(line.startswith("STSb dev Spearman") for line in lines)


def test_the_saved_models_stsb_without_a_start_score(tmp_path: Path) -> None:
    history = [{"step": 0, "heldout_align_uniform": -3.5}, {"step": 50, "stsb_dev_spearman": 0.7}]
    best = {"step": 50, "metric": "stsb_dev_spearman", "value": 0.7}
    lines = full_result(tmp_path, best=best, start=history[0], history=history).summary().splitlines()
    assert "STSb dev Spearman of the saved model: 70.00" in lines


@pytest.mark.parametrize(
    ("start", "last", "warns"),
    [
        ({"stsb_dev_spearman": 0.50}, {"stsb_dev_spearman": 0.49}, True),  # exactly one point
        ({"stsb_dev_spearman": 0.5}, {"stsb_dev_spearman": 0.4901}, False),
        ({"stsb_dev_spearman": 0.5}, {"stsb_dev_spearman": 0.49005}, False),  # 0.995 points: x100, not more
        ({"heldout_align_uniform": 0.0}, {"heldout_align_uniform": 0.1}, True),  # exactly 0.1 worse
        ({"heldout_align_uniform": 0.0}, {"heldout_align_uniform": 0.099}, False),
        ({"heldout_zero_fraction": 0.89}, {"heldout_zero_fraction": 0.9}, True),
        ({"heldout_zero_fraction": 0.9}, {"heldout_zero_fraction": 1.0}, False),  # sparse from the start
        ({"heldout_zero_fraction": 0.5}, {"heldout_zero_fraction": 0.89}, False),
    ],
)
def test_each_warning_begins_at_its_threshold(tmp_path: Path, start: dict, last: dict, warns: bool) -> None:
    history = [{"step": 0, **start}, {"step": 10, **last}]
    result = full_result(tmp_path, start=history[0], history=history, best=None)
    assert (result.degradation_warning() is not None) is warns


def test_all_three_warnings_word_for_word_one_per_line(tmp_path: Path) -> None:
    history = [
        {"step": 0, "stsb_dev_spearman": 0.8, "heldout_align_uniform": -3.5, "heldout_zero_fraction": 0.7},
        {"step": 40, "stsb_dev_spearman": 0.7, "heldout_align_uniform": -3.3, "heldout_zero_fraction": 0.95},
    ]
    result = full_result(tmp_path, start=history[0], history=history, best=None)
    assert result.degradation_warning() == (
        "warning: training lowered STSb dev from 80.00 (start) to 70.00 (step 40); the objective is hurting this "
        "backbone (an already-tuned encoder?) - see README, Results\n"
        "warning: the label-free criterion got worse, from -3.5000 (start) to -3.3000 (step 40; lower is better)\n"
        "warning: 95% of the local feature values are exactly zero (start: 70%): the ReLU head is collapsing into "
        "sparse codes, which lowered STS in our experiments; try --activation none"
    )


def test_a_fall_of_exactly_the_given_points_warns(tmp_path: Path) -> None:
    history = [{"step": 0, "stsb_dev_spearman": 0.5}, {"step": 10, "stsb_dev_spearman": 0.25}]  # exact in binary
    result = full_result(tmp_path, start=history[0], history=history, best=None)
    assert result.degradation_warning(points=25.0) is not None and result.degradation_warning(points=25.5) is None


def test_no_warning_from_one_evaluation_or_without_a_start(tmp_path: Path) -> None:
    fell = [{"step": 0, "stsb_dev_spearman": 0.8}, {"step": 10, "stsb_dev_spearman": 0.5}]
    assert full_result(tmp_path, start=fell[0], history=fell[1:], best=None).degradation_warning() is None
    assert full_result(tmp_path, start=None, history=fell, best=None).degradation_warning() is None
    assert full_result(tmp_path, start={"step": 0}, history=fell, best=None).degradation_warning() is None


def test_the_model_card_lists_every_skip_reason_and_nothing_for_a_missing_agreement(tmp_path: Path) -> None:
    stats = corpus()
    stats.files = [{"path": "a.txt", "lines": 9, "used": 6, "skipped": {"empty": 2, "too long": 1}}]
    card = model_card(TrainConfig(corpus=["a.txt"]), full_result(tmp_path, corpus=stats, agreement=None), masked=False)
    assert "- `a.txt`: 6 sentences used of 9 lines (skipped: 2 empty, 1 too long)\n" in card
    history = "| 0 | 80.00 | -3.5000 |\n| 50 | 81.00 | -3.5500 |\n| 100 | 78.00 | - |"
    assert f"|---|---|---|\n{history}\n\n\n\nTrained" in card  # no agreement: an empty line, no placeholder


def test_a_selection_missing_from_the_history_still_gets_its_summary(tmp_path: Path) -> None:
    """A log cut short can lose the selected step's evaluation: the summary names the selection, without a score."""
    best = {"step": 75, "metric": "stsb_dev_spearman", "value": 0.82}
    lines = full_result(tmp_path, best=best).summary().splitlines()
    assert "selected step 75 by stsb_dev_spearman = 82.00" in lines
    assert not any(line.startswith("STSb dev Spearman") for line in lines)


def test_the_model_card_names_the_runs_data_settings_and_selection(tmp_path: Path) -> None:
    config = TrainConfig(objective="is", corpus=["a.txt", "b.txt"], batch_size=16)
    history = [*full_result(tmp_path).history, {"step": 120, "heldout_align_uniform": -3.6}]
    card = model_card(config, full_result(tmp_path, history=history), masked=False)
    table = "\n".join(f"| `{key}` | `{value}` |" for key, value in config.trajectory().items())
    assert f"|---|---|\n{table}\n" in card and len(config.trajectory()) > 5
    assert "- `a.txt`: 4 sentences used of 6 lines (skipped: 2 empty)\n- `b.txt`: 4 sentences used of 4 lines\n" in card
    assert "\n2 sentences were held out (never trained on) for the label-free criterion.\n" in card
    assert "| `batch_size` | `16` |" in card and "| `objective` | `is` |" in card
    assert "Selected: step 50 by `stsb_dev_spearman` = 0.8100\n" in card
    assert "| 0 | 80.00 | -3.5000 |\n| 50 | 81.00 | -3.5500 |\n| 100 | 78.00 | - |\n| 120 | - | -3.6000 |\n" in card
    assert "\nthe two criteria agree\n" in card and "Trained 100 steps, 256.0 sentences/s." in card
    assert (
        "tags: [sentence-transformers, isbert, unsupervised" in card and "library_name: sentence-transformers" in card
    )
    assert f'model = isbert.load("{CARD_PATH}")' in card
    assert f'SentenceTransformer("{CARD_PATH}")' in card and "trust_remote_code" not in card


@pytest.mark.parametrize(
    ("best", "selected"),
    [
        (None, "Selected: nothing was evaluated; the last step is kept\n"),
        (
            {"step": 0, "metric": "heldout_align_uniform", "value": -3.5},
            "Selected: step 0 by `heldout_align_uniform` = -3.5000 (the starting model: no evaluation beat it)\n",
        ),
    ],
)
def test_the_model_card_says_what_was_selected(tmp_path: Path, best: dict | None, selected: str) -> None:
    card = model_card(TrainConfig(corpus=["a.txt"]), full_result(tmp_path, best=best), masked=False)
    assert selected in card


def test_a_masked_cnn_head_is_loaded_with_trust_remote_code(tmp_path: Path) -> None:
    (tmp_path / "modules.json").write_text(
        json.dumps([{"idx": 0, "name": "1", "path": "1_CNN", "type": f"{MaskedCNN.__module__}.{MaskedCNN.__name__}"}])
    )
    write_model_card(tmp_path, TrainConfig(corpus=["a.txt"]), full_result(tmp_path))
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert f'SentenceTransformer("{CARD_PATH}", trust_remote_code=True)' in card
    assert "the CNN head is the class `isbert.modules.MaskedCNN`" in card
    (tmp_path / "modules.json").write_text(json.dumps([{"type": "sentence_transformers.models.CNN"}]))
    write_model_card(tmp_path, TrainConfig(corpus=["a.txt"]), full_result(tmp_path))
    assert "trust_remote_code" not in (tmp_path / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("masked", [True, False])
def test_the_model_card_says_why_plain_sentence_transformers_can_load_it(tmp_path: Path, masked: bool) -> None:
    card = model_card(TrainConfig(corpus=["a.txt"]), full_result(tmp_path), masked=masked)
    why = (
        "with isbert installed: the CNN head is the class `isbert.modules.MaskedCNN`, and `trust_remote_code=True` "
        "lets sentence-transformers import that installed class (no code from this folder runs)"
        if masked
        else f"(version {STOCK_CNN_MASKS_FROM} or later, whose `CNN` keeps padding out of its windows): every module "
        "is sentence-transformers' own, so no isbert code is needed"
    )
    assert f"\nOr in plain sentence-transformers {why}.\n" in card


def test_summary_warns_when_training_lowers_the_dev_score(tmp_path) -> None:
    def result(scores: list[float]) -> TrainResult:
        history = [{"step": 50 * i, "stsb_dev_spearman": v} for i, v in enumerate(scores)]
        best = max(history, key=lambda h: h["stsb_dev_spearman"])
        return TrainResult(
            output_dir=tmp_path, steps=50 * (len(scores) - 1), seconds=1.0, sentences_per_second=1.0,
            corpus=CorpusStats(), best={"step": best["step"], "metric": "stsb_dev_spearman",
            "value": best["stsb_dev_spearman"]}, start=history[0], history=history, agreement=None,
        )  # fmt: skip

    fell = result([0.8666, 0.8616, 0.8548])
    assert "warning: training lowered STSb dev from 86.66 (start) to 85.48 (step 100)" in fell.summary()
    assert "STSb dev Spearman: 86.66 at the start, 86.66 for the saved model (+0.00)" in fell.summary()
    assert "STSb dev Spearman: 80.00 at the start, 81.00 for the saved model (+1.00)" in result([0.80, 0.81]).summary()
    assert result([0.80, 0.805, 0.81]).degradation_warning() is None
    assert result([0.8666, 0.8600]).degradation_warning() is None  # 0.66 points: within noise


def test_summary_warns_on_label_free_decline_and_sparse_collapse(tmp_path) -> None:
    def result(history: list[dict]) -> TrainResult:
        return TrainResult(
            output_dir=tmp_path, steps=history[-1]["step"], seconds=1.0, sentences_per_second=1.0,
            corpus=CorpusStats(), best=None, start=history[0], history=history, agreement=None,
        )  # fmt: skip

    worse = result([{"step": 0, "heldout_align_uniform": -3.5}, {"step": 100, "heldout_align_uniform": -3.3}])
    assert "label-free criterion got worse, from -3.5000 (start) to -3.3000" in worse.summary()
    sparse = result([{"step": 0, "heldout_zero_fraction": 0.5}, {"step": 100, "heldout_zero_fraction": 0.99}])
    assert "99% of the local feature values are exactly zero (start: 50%)" in sparse.summary()
    fine = result([{"step": 0, "heldout_align_uniform": -3.5, "heldout_zero_fraction": 0.0},
                   {"step": 100, "heldout_align_uniform": -3.6, "heldout_zero_fraction": 0.0}])  # fmt: skip
    assert fine.degradation_warning() is None
