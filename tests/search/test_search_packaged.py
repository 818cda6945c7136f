"""On the packaged backbone (offline-minilm) and real STS sentences: exact sentence first; cluster files and plot."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from isbert.cli import main


@pytest.mark.slow
def test_sts_index_search_and_cluster(real_data_dir: Path, tmp_path: Path, capsys) -> None:
    with (real_data_dir / "sts/STSBenchmark/sts-test.csv").open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[:150]
    sentences = list(dict.fromkeys(s for row in rows for s in (row[5], row[6])))
    corpus = tmp_path / "sts.txt"
    corpus.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    folder = tmp_path / "idx"
    assert (
        main(["index", "build", str(folder), "--model", "offline-minilm", "--input", str(corpus), "--no-progress"]) == 0
    )
    capsys.readouterr()
    picked = sentences[::37]
    assert main(["search", str(folder), *picked, "-k", "3", "--json"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["hits"][0]["text"] for r in results] == picked
    assert all(r["hits"][0]["score"] > 0.999 > r["hits"][1]["score"] for r in results)
    out = tmp_path / "clusters"
    assert main(["cluster", "offline-minilm", "--input", str(corpus), "--k", "8", "-o", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "clusters.json").read_text())
    assert sum(c["size"] for c in summary["clusters"]) == len(sentences) and len(summary["clusters"]) == 8
    assert (out / "projection.png").stat().st_size > 10_000
