"""``--reuse-from``: a published results table's runs put back into a fresh runs folder, so an experiment grows new
rows without training its old ones again, and only results of the very same settings are taken."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from waiting import planted_fifo, returns_without_waiting

from experiments.test_runner import TrainSpy, table_rows, write_experiment
from experiments.tiny_data import write_tiny_data
from isbert.cli import main
from isbert.errors import IsbertError
from isbert.experiments import load_experiment, run_experiment
from isbert.experiments.reuse import published_results


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return write_tiny_data(tmp_path / "data", monkeypatch)


def test_published_results_fill_a_fresh_runs_folder_and_only_matching_settings(
    tmp_path: Path, data_dir: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_experiment(tmp_path, tiny_backbone)
    spy = TrainSpy(monkeypatch)
    published = tmp_path / "published"
    run_experiment(load_experiment(config), runs_dir=tmp_path / "runs", results_dir=published, log=lambda _: None)
    before = json.loads((published / "tiny.json").read_text())

    # Another experiment (another name, run names changed) with one run whose settings differ (lr of is-b).
    grown = write_experiment(tmp_path, tiny_backbone, lr_b=5e-3, name="grown.toml")
    grown.write_text(grown.read_text().replace('name = "is-a"', 'name = "is-renamed"'), encoding="utf-8")
    spy.calls = []
    lines: list[str] = []
    results = tmp_path / "results"
    run_experiment(
        load_experiment(grown), runs_dir=tmp_path / "fresh-runs", results_dir=results, log=lines.append,
        reuse_from=[published / "tiny.json"],
    )  # fmt: skip
    assert spy.calls == [("is-b", False)]  # is-b's settings differ: trained; the others reused
    assert sum("reused the published result of tiny/" in line for line in lines) == 2
    summary = json.loads((results / "grown.json").read_text())
    renamed = summary["runs"][1]["results"]["7"]
    assert renamed["run"] == "is-renamed" and renamed["experiment"] == "grown"
    assert renamed["reused_from"] == {"file": str(published / "tiny.json"), "experiment": "tiny", "run": "is-a"}
    assert renamed["scores"] == before["runs"][1]["results"]["7"]["scores"]  # the numbers as measured then
    assert renamed["machine"] == before["runs"][1]["results"]["7"]["machine"]
    assert {row["name"] for row in summary["reused"]} == {"mean", "is-renamed"}
    markdown = (results / "grown.md").read_text()
    reused_line = f"- reused from `{published / 'tiny.json'}` (`--reuse-from`: the same settings, measured when those"
    assert f"{reused_line} runs ran): `mean`, `is-renamed` (its `tiny/is-a`)" in markdown
    assert table_rows(markdown)["is-renamed"][6] == f"{renamed['scores']['labeled']['avg']:.2f}"

    # Reusing again is a no-op (the stored results are the runs' own now); --force ignores published results too.
    spy.fail = True
    lines.clear()
    run_experiment(
        load_experiment(grown), runs_dir=tmp_path / "fresh-runs", results_dir=results, log=lines.append,
        reuse_from=[published / "tiny.json"],
    )  # fmt: skip
    assert all(": reused (" in line for line in lines)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"{not json", "not a results table (invalid JSON"),
        (b'{"runs": 3}', "not a results table (no 'runs' list)"),
        (b"[" * 100_000, "not a results table (invalid JSON"),
    ],
)
def test_a_file_that_is_not_a_results_table_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "table.json"
    path.write_bytes(content)
    with pytest.raises(IsbertError, match=re.escape(message)):
        published_results(path)


def test_a_fifo_or_a_huge_file_is_refused_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = planted_fifo(tmp_path / "fifo.json")
    with pytest.raises(IsbertError, match="not a regular file"):
        returns_without_waiting(lambda: published_results(fifo), fifo)
    monkeypatch.setattr("isbert.experiments.reuse.MAX_RESULTS_BYTES", 10)
    big = tmp_path / "big.json"
    big.write_text('{"runs": []}     ', encoding="utf-8")
    with pytest.raises(IsbertError, match="over 0 MiB"):
        published_results(big)
    config = tmp_path / "x.toml"
    config.write_text('[defaults]\nmodel = "m"\n[[run]]\nname = "a"\nbaseline = "mean"\n', encoding="utf-8")
    assert main(["experiment", str(config), "--reuse-from", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: cannot read the results table" in capsys.readouterr().err
