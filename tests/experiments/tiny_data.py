"""A tiny evaluation data folder for experiment tests: a few random STSb (dev, test) and SICK-R pairs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from tiny_models import WORDS

from isbert.evaluation import tasks

PAIRS = 24

TINY_RUN_DEFAULTS = """max_steps = 4
eval_steps = 2
batch_size = 8
max_seq_length = 16
out_channels = 8
heldout_size = 16
"""
"""The [defaults] keys that keep an experiment test's runs tiny (4 steps of the tiny model), shared by its tests."""


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))


def write_tiny_data(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """STSb (dev and test) and SICK-R with a few random pairs, sizes patched to match; ``root`` becomes the data
    directory of the environment."""
    rng = random.Random(0)
    stsb = root / "sts" / "STSBenchmark"
    (stsb / "senteval").mkdir(parents=True)
    for path in (stsb / "sts-dev.csv", stsb / "senteval" / "sts-test.csv"):
        rows = [f"g\tf\t2012\t{i:04d}\t{rng.uniform(0, 5):.2f}\t{sentence(rng)}\t{sentence(rng)}" for i in range(PAIRS)]
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    sick = root / "sts" / "SICK" / "senteval"
    sick.mkdir(parents=True)
    rows = [f"{i}\t{sentence(rng)}\t{sentence(rng)}\t{rng.uniform(1, 5):.2f}\tNEUTRAL" for i in range(PAIRS)]
    (sick / "SICK_test_annotated.txt").write_text("pair_ID\tA\tB\tscore\tlabel\n" + "\n".join(rows) + "\n")
    monkeypatch.setitem(tasks.EXPECTED_COUNTS, "STSBenchmark", PAIRS)
    monkeypatch.setitem(tasks.EXPECTED_COUNTS, "SICK-R", PAIRS)
    monkeypatch.setenv(tasks.ENV_VAR, str(root))
    return root
