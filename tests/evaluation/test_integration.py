"""A few checks on the real evaluation data (the `real_data_dir` fixture: skipped without it, except in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from isbert.evaluation import check, readers, tasks


@pytest.mark.parametrize("text", ["senteval", "raw"])
def test_real_sts_counts_match_senteval(real_data_dir: Path, text: tasks.TextVariant) -> None:
    sizes = {
        task: sum(len(s) for s in readers.load_task(task, real_data_dir, text).subsets.values())
        for task in tasks.STS_TASKS
    }
    assert sizes == {
        "STS12": 3108,
        "STS13": 1500,
        "STS14": 3750,
        "STS15": 3000,
        "STS16": 1186,
        "STSBenchmark": 1379,
        "SICK-R": 4927,
    }


def test_real_data_check_passes(real_data_dir: Path) -> None:
    lines = check.check_data(real_data_dir)
    assert all(line.ok for line in lines), [line.message for line in lines if not line.ok]


@pytest.mark.slow
def test_packaged_minilm_on_a_stsb_subset(real_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The packaged all-MiniLM-L6-v2 correlates well with STSb gold on its first 60 pairs."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import numpy as np

    import isbert
    from isbert.evaluation.sts import cosine_rows, spearman

    subset = readers.read_stsb(real_data_dir / "sts/STSBenchmark/senteval/sts-test.csv")
    model = isbert.load("offline-minilm", device="cpu")
    a = model.encode(subset.sentences1[:60], convert_to_numpy=True, show_progress_bar=False)
    b = model.encode(subset.sentences2[:60], convert_to_numpy=True, show_progress_bar=False)
    assert spearman(cosine_rows(a, b), np.asarray(subset.scores[:60])) > 60.0
