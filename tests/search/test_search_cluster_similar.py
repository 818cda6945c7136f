"""Clustering outputs and paraphrase mining without the n x n matrix."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from test_search_index import make_word_model_folder, sentences, write_lines

import isbert
from isbert.cli import main
from isbert.errors import IsbertError
from isbert.search.cluster import cluster_embeddings, relabel_by_size, write_clusters
from isbert.search.similar import group_identical, mine_pairs


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_word_model_folder(tmp_path_factory.mktemp("word-isbert"))


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(16)[:3] * 5
    truth = np.repeat(np.arange(3), [30, 20, 10])
    data = centres[truth] + 0.3 * rng.normal(size=(60, 16))
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    return data.astype(np.float32), truth


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_clustering_recovers_blobs_and_writes_files(method: str, tmp_path: Path) -> None:
    data, truth = blobs()
    options = {"k": 3} if method == "kmeans" else {"distance_threshold": 0.5}
    labels = cluster_embeddings(data, method=method, **options)
    assert np.array_equal(relabel_by_size(labels), truth)
    texts = [f"text {i}" for i in range(60)]
    report = write_clusters(tmp_path, list(range(1, 61)), texts, data, labels, top=3, projection="pca")
    assert report.sizes == [30, 20, 10] and report.projection == "PCA"
    summary = json.loads((tmp_path / "clusters.json").read_text())
    assert [c["size"] for c in summary["clusters"]] == [30, 20, 10]
    assert all(len(c["central"]) == 3 for c in summary["clusters"])
    assert {c["central"][0]["text"] for c in summary["clusters"]} <= set(texts)
    rows = list(csv.DictReader((tmp_path / "assignments.csv").open(encoding="utf-8")))
    assert len(rows) == 60 and [int(r["cluster"]) for r in rows] == truth.tolist()
    assert (tmp_path / "projection.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cluster_errors() -> None:
    data, _ = blobs()
    with pytest.raises(IsbertError, match="larger than the number of texts"):
        cluster_embeddings(data, k=100)
    with pytest.raises(IsbertError, match="exactly one of"):
        cluster_embeddings(data, method="agglomerative")


def test_cluster_cli(model_folder: Path, tmp_path: Path, capsys) -> None:
    corpus = write_lines(tmp_path / "c.txt", sentences(40))
    out = tmp_path / "out"
    assert (
        main(["cluster", str(model_folder), "--input", str(corpus), "--k", "4", "-o", str(out), "--no-progress",
              "--projection", "pca"]) == 0  # fmt: skip
    )
    assert "40 texts in 4 clusters" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"assignments.csv", "clusters.json", "projection.png"}
    assert main(["cluster", str(model_folder), "--input", str(corpus), "-o", str(out)]) == 2
    assert "needs --k" in capsys.readouterr().err


def test_mined_pairs_equal_brute_force_across_tiles() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(300, 8)).astype(np.float32)
    data[150] = data[3] + 0.01  # a near duplicate
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    report = mine_pairs(data, 0.8, block=64)
    full = data @ data.T
    want = {(i, j) for i, j in zip(*np.nonzero(np.triu(full, 1) >= 0.8), strict=True)}
    assert {(int(i), int(j)) for i, j in zip(report.first, report.second, strict=True)} == want
    assert report.qualified == len(want) and not report.truncated
    assert (report.first[0], report.second[0]) == (3, 150) and report.scores[0] > 0.99
    assert np.all(np.diff(report.scores) <= 0) and np.all(report.first < report.second)


def test_pair_cap_keeps_the_best() -> None:
    rng = np.random.default_rng(2)
    data = rng.normal(size=(200, 4)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    everything = mine_pairs(data, 0.0, block=32, max_pairs=10**6)
    capped = mine_pairs(data, 0.0, block=32, max_pairs=50)
    assert capped.truncated and len(capped) == 50 and capped.qualified == everything.qualified
    np.testing.assert_allclose(capped.scores, everything.scores[:50])
    with pytest.raises(IsbertError, match="between -1 and 1"):
        mine_pairs(data, 1.5)


def test_similar_cli_finds_duplicates(model_folder: Path, tmp_path: Path, capsys) -> None:
    texts = sentences(30)
    corpus = write_lines(tmp_path / "c.txt", [*texts, texts[4], texts[9].upper()])
    out = tmp_path / "pairs.jsonl"
    args = ["similar", str(model_folder), "--input", str(corpus), "-t", "0.9999", "-o", str(out), "--no-progress"]
    assert main(args) == 0
    pairs = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(p["line1"], p["line2"]) for p in pairs} == {(5, 31), (10, 32)}
    assert "2 pairs with cosine >= 0.9999 among 32 texts" in capsys.readouterr().err
    model = isbert.load(model_folder, device="cpu")
    assert model.get_embedding_dimension() == 24


def test_group_identical_counts_repeats_in_first_occurrence_order() -> None:
    groups = group_identical(["b", "a", "b", "c", "b", "a"])
    assert groups.first_rows.tolist() == [0, 1, 3] and groups.counts.tolist() == [3, 2, 1] and groups.repeated == 2


def test_similar_group_collapses_identical_texts(model_folder: Path, tmp_path: Path, capsys) -> None:
    texts = sentences(12)
    corpus = write_lines(tmp_path / "c.txt", [*texts, *[texts[3]] * 7, texts[5].upper()])
    args = ["similar", str(model_folder), "--input", str(corpus), "-t", "0.9999", "--no-progress"]
    assert main(args) == 0
    plain = capsys.readouterr()
    assert "29 pairs with cosine >= 0.9999 among 20 texts" in plain.err  # 8 copies: 28 pairs, plus the upper case
    out = tmp_path / "pairs.tsv"
    assert main([*args, "--group", "-o", str(out)]) == 0
    grouped = capsys.readouterr()
    assert "1 pairs with cosine >= 0.9999 among 20 texts (13 distinct, 1 of them repeated)" in grouped.err
    rows = list(csv.DictReader(out.open(encoding="utf-8"), delimiter="\t"))
    assert [(r["line1"], r["line2"], r["count1"], r["count2"]) for r in rows] == [("6", "20", "1", "1")]
    assert main([*args, "--group", "-t", "0.5"]) == 0
    assert f"{texts[3]} (x8)" in capsys.readouterr().out
