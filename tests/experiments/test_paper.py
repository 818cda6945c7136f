"""experiments/paper.toml end to end without a network: local file:// mirrors of SNLI 1.0 and MultiNLI 1.0 in the
real archives' layout, `isbert data download --unlabeled nli`, the tiny random BERT instead of bert-base-uncased,
a few steps, and the paper's two tables with our rows beside its row."""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace
from pathlib import Path

import pytest
from evaluation.nli_mirror import make_mirror

from experiments.tiny_data import sentence, write_tiny_data
from isbert.cli import main
from isbert.errors import IsbertError
from isbert.evaluation import tasks, unlabeled
from isbert.evaluation.report import PAPER_STS, PAPER_TRANSFER
from isbert.experiments import load_experiment, run_experiment

PAPER = Path(__file__).resolve().parents[2] / "experiments" / "paper.toml"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The runner tests' tiny STSb and SICK-R, and MR (a transfer task) with 20 sentences."""
    root = write_tiny_data(tmp_path / "data", monkeypatch)
    rng = random.Random(1)
    mr = root / "transfer" / "MR"
    mr.mkdir(parents=True)
    (mr / "rt-polarity.pos").write_text("".join(f"good happy {sentence(rng)}\n" for _ in range(10)))
    (mr / "rt-polarity.neg").write_text("".join(f"bad sad {sentence(rng)}\n" for _ in range(10)))
    monkeypatch.setitem(tasks.EXPECTED_COUNTS, "MR", 20)
    return root


def test_paper_file_states_the_papers_setting() -> None:
    experiment = load_experiment(PAPER)
    defaults = experiment.defaults
    assert defaults["model"] == "bert-base-uncased"
    assert defaults["corpus"] == ["{data}/" + unlabeled.NLI_CORPUS]
    assert (defaults["epochs"], defaults["batch_size"], defaults["lr"], defaults["max_seq_length"]) == (
        1,
        32,
        2e-6,
        128,
    )
    assert {spec.name: spec.overrides.get("activation") for spec in experiment.runs if not spec.baseline} == {
        "is-paper-relu": "relu",
        "is-released-linear": "none",
    }
    assert defaults["dev"] == "stsb"  # both selections: labeled STSb dev and label-free
    assert experiment.paper_tables and len(experiment.tasks) == 14 and experiment.budget_minutes == 130


def paper_table(markdown: str, title: str) -> dict[str, list[str]]:
    """The rows of the paper table whose title starts with ``title``, by label."""
    block = markdown.split(title, 1)[1].split("\n\n", 2)[1]
    return {
        cells[0]: cells[1:]
        for cells in ([c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()[2:])
    }


def test_download_corpus_training_and_both_tables(
    tmp_path: Path, data_dir: Path, tiny_backbone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = make_mirror(tmp_path / "mirror", snli_pairs=150, mnli_pairs=100)
    sources = mirror.sources_json(tmp_path / "sources.json")
    assert main(["data", "download", "--unlabeled", "nli", "--data-dir", str(data_dir), "--sources", str(sources)]) == 0
    count = int(re.search(r"nli: (\d+) distinct sentences", capsys.readouterr().out).group(1))  # type: ignore[union-attr]
    assert 250 < count < 500  # a few hundred sentences

    experiment = load_experiment(PAPER)
    small = replace(
        experiment,
        tasks=["STSBenchmark", "SICK-R", "MR"],
        defaults={**experiment.defaults, "model": str(tiny_backbone), "max_steps": 4, "eval_steps": 2,
                  "save_steps": 2, "batch_size": 8, "max_seq_length": 16, "out_channels": 8, "device": "cpu"},
    )  # fmt: skip
    results = tmp_path / "results"
    run_experiment(small, runs_dir=tmp_path / "runs", results_dir=results, show_progress=False, log=lambda m: None)

    summary = json.loads((results / "paper.json").read_text())
    trained = [run for run in summary["runs"] if not run["baseline"]]
    assert [run["name"] for run in trained] == ["is-paper-relu", "is-released-linear"]
    for run in trained:
        (result,) = run["results"].values()
        assert result["steps"]["trained"] == 4
        assert result["corpus"]["lines"] == result["corpus"]["used"] == count  # the downloaded corpus, all read

    markdown = (results / "paper.md").read_text()
    sts = paper_table(markdown, "STS (cosine Spearman x100), the paper's Table 1")
    transfer = paper_table(markdown, "Transfer (accuracy x100), the paper's SentEval table")
    assert sts["IS-BERT-NLI (paper)"] == ["56.77", "69.24", "61.21", "75.23", "70.16", "69.21", "64.25", "66.58"]
    assert transfer["IS-BERT-NLI (paper)"] == ["81.09", "87.18", "94.96", "88.75", "85.96", "88.64", "74.24", "85.83"]
    assert [float(v) for v in sts["IS-BERT-NLI (paper)"][:-1]] == list(PAPER_STS["IS-BERT-NLI"])
    assert [float(v) for v in transfer["IS-BERT-NLI (paper)"][:-1]] == list(PAPER_TRANSFER["IS-BERT-NLI"])
    for run in trained:
        for kind, words in (("labeled", "labeled choice"), ("label_free", "label-free choice")):
            step = run["results"]["42"]["steps"][kind]
            scores = run["aggregate"][kind]
            sts_row, transfer_row = (
                sts[f"`{run['name']}` ({words}, step {step})"],
                transfer[f"`{run['name']}` ({words}, step {step})"],
            )
            assert sts_row[5:7] == [f"{scores['STSBenchmark']['mean']:.2f}", f"{scores['SICK-R']['mean']:.2f}"]
            assert sts_row[:5] == ["-"] * 5 and sts_row[-1] == "-"  # not evaluated here; no partial average
            assert transfer_row[0] == f"{scores['MR']['mean']:.2f}" and transfer_row[-1] == "-"
    assert "`mean-pooling` (no training)" in sts


def test_missing_corpus_says_how_to_make_it(tmp_path: Path, data_dir: Path, capsys) -> None:
    code = main(["experiment", str(PAPER), "--runs-dir", str(tmp_path / "r"), "--results-dir", str(tmp_path / "o"),
                 "--only", "is-paper-relu"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"corpus: input file not found: {data_dir.resolve() / unlabeled.NLI_CORPUS}" in err[0]
    assert f"make it with: isbert data download --unlabeled nli --data-dir {data_dir.resolve()}" in err[0]


def test_missing_hub_says_what_to_download(tmp_path: Path, data_dir: Path, capsys) -> None:
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache("bert-base-uncased", "config.json"), str):
        pytest.skip("bert-base-uncased is in this machine's Hugging Face cache")
    code = main(["experiment", str(PAPER), "--runs-dir", str(tmp_path / "r"), "--results-dir", str(tmp_path / "o"),
                 "--only", "mean-pooling"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "could not load model 'bert-base-uncased'" in err[0] and "HF_HUB_OFFLINE is set" in err[0]
    assert "`hf download bert-base-uncased` puts it in the Hugging Face cache" in err[0]


def test_paper_tables_must_be_a_boolean(tmp_path: Path) -> None:
    text = PAPER.read_text(encoding="utf-8").replace("paper_tables = true", 'paper_tables = "yes"')
    (tmp_path / "paper.toml").write_text(text, encoding="utf-8")
    with pytest.raises(IsbertError, match=r"\[experiment\]: key 'paper_tables' must be true or false, got 'yes'"):
        load_experiment(tmp_path / "paper.toml")
