"""SIF-family baselines and SIF added after training in experiment files: what the file may say, what each run
depends on, and the rows the runner and the report produce (tiny 0-layer BERT, tiny data folder)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from experiments.tiny_data import TINY_RUN_DEFAULTS, sentence, write_tiny_data
from isbert.errors import IsbertError
from isbert.experiments import load_experiment, run_experiment
from isbert.experiments.config import SIF_BASELINES
from isbert.experiments.runner import plan
from isbert.sif import NAMED_BASELINES

C = "[defaults]\nmodel = 'offline-glove'\ncorpus = ['c.txt']\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_config_names_every_sif_baseline_of_the_library() -> None:
    assert set(SIF_BASELINES) == set(NAMED_BASELINES) == {"sif", "sif-zipf", "usif", "abtt", "sif-abtt"}


def test_sif_runs_are_fixed_read_the_corpus_and_carry_their_options(tmp_path: Path) -> None:
    text = (
        f"{C}[[run]]\nname = 'mean'\nbaseline = 'mean'\n"
        "[[run]]\nname = 'sif'\nbaseline = 'sif'\nsif = { a = 1e-4, components = 2 }\n"
        "[[run]]\nname = 'abtt'\nbaseline = 'abtt'\n"
        "[[run]]\nname = 'is'\nposthoc = 'sif'\nsif = { a = 1e-4 }\n"
    )
    experiment = load_experiment(write(tmp_path, text))
    mean, sif_run, _abtt, trained = experiment.runs
    assert not sif_run.seeded and sif_run.sif_settings().a == 1e-4 and sif_run.sif_settings().removed == 2
    assert sif_run.differs() == {"baseline": "sif", "sif": {"a": 1e-4, "components": 2}}
    assert trained.posthoc == "sif" and trained.sif_settings().method == "sif" and trained.seeded
    assert experiment.labels(sif_run)["corpus"] == "general" and experiment.labels(mean)["corpus"] == "-"
    jobs = {job.spec.name: job for job in plan(experiment, tmp_path / "data", tmp_path / "runs")}
    assert "corpus" in jobs["sif"].settings and "corpus" not in jobs["mean"].settings
    assert "corpus" not in jobs["abtt"].settings  # ABTT alone reads no corpus
    assert jobs["sif"].settings["sif"] == {"a": 1e-4, "components": 2}
    assert jobs["is"].settings["posthoc"] == "sif" and "posthoc" not in jobs["is"].train_settings

    # the corpus is part of what a SIF baseline means; a pooling baseline ignores it
    other = load_experiment(write(tmp_path, text.replace("'c.txt'", "'d.txt'")))
    again = {job.spec.name: job for job in plan(other, tmp_path / "data", tmp_path / "runs")}
    assert again["sif"].settings_hash != jobs["sif"].settings_hash
    assert again["mean"].settings_hash == jobs["mean"].settings_hash


@pytest.mark.parametrize(
    ("run", "match"),
    [
        ("baseline = 'mean'\nsif = { a = 1e-3 }\n", r"key 'sif' applies to the sif, sif-zipf"),
        ("baseline = 'usif'\nsif = { a = 1e-3 }\n", r"key 'sif': a applies to SIF only"),
        ("baseline = 'abtt'\nsif = { components = 1 }\n", r"components do not apply to abtt"),
        ("baseline = 'sif'\nsif = { b = 1 }\n", r"key 'sif' must be a table of a and components"),
        ("baseline = 'sif'\nsif = { a = -1 }\n", r"sif.a must be a positive (finite )?number"),
        ("baseline = 'sif'\nsif = { components = 1.5 }\n", r"sif.components must be a whole number"),
        ("baseline = 'sif'\nposthoc = 'sif'\n", r"key 'posthoc' applies to trained runs"),
        ("posthoc = 'usif'\n", r"key 'posthoc' must be one of sif"),
        ("posthoc = 'sif'\nmodel = 'offline-minilm'\n", r"posthoc = 'sif': offline-minilm has transformer layers.*"
         r"--encoder-layers 0"),
    ],
)  # fmt: skip
def test_sif_keys_are_checked_when_the_file_is_read(tmp_path: Path, run: str, match: str) -> None:
    path = write(tmp_path, f"{C}[[run]]\nname = 'a'\n{run}")
    with pytest.raises(IsbertError, match=match) as error:
        load_experiment(path)
    assert str(path) in str(error.value) and "run 'a'" in str(error.value)


def test_posthoc_is_accepted_on_a_0_layer_transformer(tmp_path: Path) -> None:
    text = "[defaults]\nmodel = 'offline-minilm'\nencoder_layers = 0\ncorpus = ['c.txt']\n"
    experiment = load_experiment(write(tmp_path, f"{text}[[run]]\nname = 'a'\nposthoc = 'sif'\n"))
    assert experiment.runs[0].posthoc == "sif"


def test_sif_baselines_and_posthoc_rows_end_to_end(
    tmp_path: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tiny_data(tmp_path / "data", monkeypatch)
    rng = random.Random(4)
    (tmp_path / "corpus.txt").write_text("\n".join(sentence(rng) for _ in range(120)) + "\n", encoding="utf-8")
    path = tmp_path / "sif.toml"
    path.write_text(
        f"""
[experiment]
tasks = "stsb,sick-r"
seeds = [7]

[defaults]
model = "{tiny_backbone}"
encoder_layers = 0
corpus = ["corpus.txt"]
{TINY_RUN_DEFAULTS}device = "cpu"

[[run]]
name = "mean"
baseline = "mean"

[[run]]
name = "sif"
baseline = "sif"

[[run]]
name = "usif"
baseline = "usif"
sif = {{ components = 2 }}

[[run]]
name = "sif-abtt"
baseline = "sif-abtt"

[[run]]
name = "sif-contextual"
baseline = "sif"
encoder_layers = 2

[[run]]
name = "is"
posthoc = "sif"
""",
        encoding="utf-8",
    )
    log: list[str] = []
    outcome = run_experiment(
        load_experiment(path), runs_dir=tmp_path / "runs", results_dir=tmp_path / "results", show_progress=False,
        log=log.append,
    )  # fmt: skip
    assert any("sif-contextual: not applicable: " in line and "--encoder-layers 0" in line for line in log)
    summary = json.loads((tmp_path / "results" / "sif.json").read_text(encoding="utf-8"))
    rows = {row["name"]: row for row in summary["runs"]}
    assert list(rows) == ["mean", "sif", "usif", "sif-abtt", "is", "is+posthoc-sif"]
    for row in rows.values():
        assert {"method", "backbone", "sts_avg"} <= set(row) and row["sts_avg"] is not None
    assert rows["is+posthoc-sif"]["method"] == "is+posthoc-sif" and rows["sif"]["method"] == "sif"
    assert rows["sif"]["backbone"] == f"{tiny_backbone} (0 layers)"
    assert list(rows["sif"]["results"]) == ["none"]  # deterministic: evaluated once, not per seed
    sif_result = rows["sif"]["results"]["none"]
    assert sif_result["fit"]["components"] == 1 and sif_result["stsb_dev"]["start"] is not None
    trained, posthoc = rows["is"]["results"]["7"], rows["is+posthoc-sif"]["results"]["7"]
    assert posthoc["scores"] != trained["scores"] and posthoc["steps"] == trained["steps"]
    assert posthoc["stsb_dev"]["labeled"] is not None and posthoc["stsb_dev"]["start"] is None
    markdown = (tmp_path / "results" / "sif.md").read_text(encoding="utf-8")
    assert "`is+posthoc-sif`" in markdown and "posthoc=sif" in markdown
    stored = [r for r in outcome.results if r is not None]
    assert len(stored) == 5 and {r["run"] for r in stored} == {"mean", "sif", "usif", "sif-abtt", "is"}


def test_sif_inside_training_is_named_in_the_method_and_takes_posthoc_sif_zipf(tmp_path: Path) -> None:
    text = (
        f"{C}[[run]]\nname = 'pool'\nword_weights = 'sif-pool'\nposthoc = 'sif-zipf'\nsif = {{ a = 1e-4 }}\n"
        "[[run]]\nname = 'plain'\n"
    )
    experiment = load_experiment(write(tmp_path, text))
    pool, plain = experiment.runs
    assert pool.method({**experiment.defaults, **pool.overrides}) == "is+sif-pool"
    assert plain.method({**experiment.defaults, **plain.overrides}) == "is"
    assert pool.sif_settings().probabilities == "zipf" and pool.sif_settings().a == 1e-4


@pytest.mark.parametrize("label_free_apart", [False, True])
def test_sif_after_training_scores_each_selected_model_once_with_the_run_s_corpus_and_reader(
    label_free_apart: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring of ``<run>+posthoc-sif``, every dependency recorded: which model a selection loads (on the run's
    device), the SIF fit on the run's corpus read as training reads it, and the scores, dev score, fit and speed it
    stores, once for the one model both criteria picked. Where the label-free pick stands alone (a run selected by
    the label-free criterion has no labeled pick), the labeled entries are None."""
    from types import SimpleNamespace

    import isbert.evaluation
    import isbert.model
    import isbert.sif_model
    from isbert.experiments import runner

    text = ("[experiment]\ntasks = 'stsb,sick-r'\n" + C + "text_field = 'body'\nencoding_errors = 'replace'\n"
            "dedup = true\n[[run]]\nname = 'is'\nposthoc = 'sif'\nsif = { a = 1e-4 }\n")  # fmt: skip
    experiment = load_experiment(write(tmp_path, text))
    [job] = plan(experiment, tmp_path / "data", tmp_path / "runs", device="meta")
    job.settings["dev"] = "stsb"
    calls: list[tuple[str, Any]] = []

    def load_torch(path: str, device: str | None = None) -> str:
        calls.append(("load", (path, device)))
        return f"model {path}"

    def add_sif(model: str, corpus: list[str], settings: Any, **reader: Any) -> Any:
        calls.append(("fit", (model, corpus, settings, reader)))
        return SimpleNamespace(model=f"sif on {model}", report=SimpleNamespace(as_dict=lambda: {"fitted": model}))

    def evaluate(model: str, tasks: list[str], data_dir: Path, **options: Any) -> dict[str, Any]:
        calls.append(("evaluate", (model, tasks, data_dir, options)))
        return {"STSBenchmark": {"spearman": 50.0}, "SICK-R": {"spearman": 60.0}, "STS12": {"spearman": 1.0}}

    monkeypatch.setattr(isbert.model, "load_torch", load_torch)
    monkeypatch.setattr(isbert.sif_model, "add_sif", add_sif)
    monkeypatch.setattr(isbert.evaluation, "evaluate", evaluate)
    monkeypatch.setattr(runner, "_dev_score", lambda model, data_dir: calls.append(("dev", model)) or 61.5)
    monkeypatch.setattr(runner, "_speed", lambda model, data_dir: calls.append(("speed", model)) or 900.0)
    picked = {"step": 2, "path": str(tmp_path / "run")}
    chosen = {"labeled": None if label_free_apart else picked, "label_free": picked}
    out = runner._evaluate_posthoc(job, chosen, tmp_path / "data")

    first = "label_free" if label_free_apart else "labeled"
    reader = {"text_field": "body", "column": "text", "encoding_errors": "replace", "dedup": True}
    fitted = f"sif on model {picked['path']}"
    assert calls == [
        ("load", (picked["path"], "meta")),
        ("fit", (f"model {picked['path']}", job.train_config().corpus, job.spec.sif_settings(), reader)),
        ("evaluate", (fitted, ["STSBenchmark", "SICK-R"], tmp_path / "data",
                      {"show_progress": False, "model_name": f"{job.label} ({first}, step 2, + sif)"})),
        ("dev", fitted),
        ("speed", fitted),
    ]  # fmt: skip
    scores = {"STSBenchmark": 50.0, "SICK-R": 60.0, "avg": 55.0}  # the run's tasks only
    details = {"STSBenchmark": {"spearman": 50.0}, "SICK-R": {"spearman": 60.0}}
    labeled = None if label_free_apart else "the same"
    assert out == {
        "method": "sif",
        "scores": {"labeled": labeled and scores, "label_free": scores},
        "stsb_dev": {"start": None, "labeled": labeled and 61.5, "label_free": 61.5},
        "evaluation": {"labeled": labeled and details, "label_free": details},
        "fit": {"fitted": f"model {picked['path']}"},
        "encode_sentences_per_second": 900.0,
    }
