"""The peers comparison in the experiment runner: whitening and model2vec baselines, TSDAE/CT runs, rows a backbone
cannot run, the method/backbone/sts_avg fields, CPU encoding speed, the quality-speed figure, the target setting."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from experiments.tiny_data import TINY_RUN_DEFAULTS
from isbert.evaluation.tasks import UNLABELED_FILE
from isbert.experiments import load_experiment, run_experiment
from isbert.experiments.report import _target_lines

from .test_runner import data_dir, sentence  # noqa: F401  (the fixture)


def _write(folder: Path, backbone: Path) -> Path:
    rng = random.Random(1)
    (folder / "corpus.txt").write_text("\n".join(sentence(rng) for _ in range(200)) + "\n", encoding="utf-8")
    path = folder / "peers.toml"
    runs = [("mean", 'baseline = "mean"'), ("whitening", 'baseline = "whitening"'), ("ct", 'objective = "ct"'),
            ("tsdae", 'objective = "tsdae"'), ("tsdae-0", 'objective = "tsdae"\nencoder_layers = 0'),
            ("is", 'objective = "is"')]  # fmt: skip
    body = "".join(f'\n[[run]]\nname = "{name}"\n{keys}\n' for name, keys in runs)
    path.write_text(
        f"""
[experiment]
tasks = "stsb,sick-r"
seeds = [7]
[defaults]
model = "{backbone}"
corpus = ["corpus.txt"]
{TINY_RUN_DEFAULTS}lr = 1e-3
device = "cpu"
{body}""",
        encoding="utf-8",
    )
    return path


def test_peers_rows_speed_and_the_rows_a_backbone_cannot_run(
    tmp_path: Path,
    data_dir: Path,  # noqa: F811
    tiny_backbone: Path,
) -> None:
    rng = random.Random(3)
    (data_dir / UNLABELED_FILE).parent.mkdir(parents=True, exist_ok=True)
    (data_dir / UNLABELED_FILE).write_text("\n".join(sentence(rng) for _ in range(100)) + "\n", encoding="utf-8")
    messages: list[str] = []
    outcome = run_experiment(
        load_experiment(_write(tmp_path, tiny_backbone)), runs_dir=tmp_path / "runs",
        results_dir=tmp_path / "results", show_progress=False, log=messages.append,
    )  # fmt: skip
    summary = json.loads((tmp_path / "results" / "peers.json").read_text())
    rows = {run["name"]: run for run in summary["runs"]}
    assert {name: rows[name]["method"] for name in rows} == {
        "mean": "mean", "whitening": "whitening", "ct": "ct", "tsdae": "tsdae", "is": "is"
    }  # fmt: skip
    assert all(row["backbone"] == str(tiny_backbone) and row["sts_avg"] is not None for row in rows.values())
    assert all(row["encode_sentences_per_second"] > 0 for row in rows.values())
    assert rows["whitening"]["sts_avg"] != rows["mean"]["sts_avg"]  # the whitened vectors were scored
    (skipped,) = summary["not_applicable"]
    assert skipped["name"] == "tsdae-0" and "encoder_layers = 0" in skipped["reason"]
    assert any("tsdae-0" in m and "not applicable" in m for m in messages)
    assert not (tmp_path / "runs" / "peers" / "tsdae-0").exists()
    markdown = (tmp_path / "results" / "peers.md").read_text()
    assert "sentences/s" in markdown and "`tsdae-0` (tsdae on" in markdown
    assert (tmp_path / "results" / "peers_quality_speed.png").stat().st_size > 0
    assert len(outcome.results) == 6


def test_target_rows_report_their_gain_over_the_same_method_and_backbone() -> None:
    def row(name: str, method: str, corpus: str, avg: float) -> dict:
        return {"name": name, "method": method, "backbone": "b", "corpus": corpus, "sts_avg": avg}

    summary = {"runs": [row("s", "simcse", "general", 60.0), row("s-t", "simcse", "target", 63.5),
                        row("c-t", "ct", "target", 50.0)]}  # fmt: skip
    lines = _target_lines(summary)
    assert lines[-1] == "| simcse | b | 60.00 | 63.50 | +3.50 |"  # ct has no general run to compare with
    assert sum(line.startswith("| ") for line in lines) == 2


def test_target_corpus_is_the_sts_test_sentences(real_data_dir: Path) -> None:
    from isbert.evaluation.readers import load_task, task_corpus_sentences

    corpus = task_corpus_sentences("sts-test", real_data_dir)
    assert len(corpus) == len(set(corpus))
    assert set(load_task("SICK-R", real_data_dir).sentences()) <= set(corpus)
    assert set(load_task("STS12", real_data_dir).sentences()) <= set(corpus)


def test_model2vec_refuses_word_vectors_in_one_line(tmp_path: Path) -> None:
    from isbert.errors import IsbertError
    from isbert.evaluation.distilled import distilled_model

    (tmp_path / "modules.json").write_text("[]")
    with pytest.raises(IsbertError, match="not one") as error:
        distilled_model(str(tmp_path))
    assert "\n" not in str(error.value)


def test_model2vec_distils_the_backbone_into_a_static_model(tiny_backbone: Path) -> None:
    pytest.importorskip("model2vec")
    from isbert.evaluation.distilled import distilled_model

    model = distilled_model(str(tiny_backbone), device="cpu")
    assert type(model[0]).__name__ == "StaticEmbedding"
    vectors = model.encode(["a man walks the dog", "red car"])
    assert vectors.shape[0] == 2 and vectors.shape[1] <= 32
