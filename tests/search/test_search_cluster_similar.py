"""Clustering outputs and paraphrase mining without the n x n matrix."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_search_index import make_word_model_folder, sentences, write_lines

import isbert
from isbert.cli import main
from isbert.errors import IsbertError
from isbert.search.cluster import (
    central_sentences,
    cluster_embeddings,
    cluster_keywords,
    relabel_by_size,
    write_clusters,
)
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
    report = write_clusters(
        tmp_path, [f"t.txt:{i}" for i in range(1, 61)], texts, data, labels, top=3, projection="pca"
    )
    assert report.sizes == [30, 20, 10] and report.projection == "PCA"
    summary = json.loads((tmp_path / "clusters.json").read_text())
    assert [c["size"] for c in summary["clusters"]] == [30, 20, 10]
    assert all(len(c["central"]) == 3 for c in summary["clusters"])
    assert {c["central"][0]["text"] for c in summary["clusters"]} <= set(texts)
    rows = list(csv.DictReader((tmp_path / "assignments.csv").open(encoding="utf-8")))
    assert len(rows) == 60 and [int(r["cluster"]) for r in rows] == truth.tolist()
    assert rows[5]["source"] == "t.txt:6"
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
    args = ["cluster", str(model_folder), "--input", str(corpus), "--k", "4", "-o", str(out), "--no-progress"]
    assert main([*args, "--projection", "pca"]) == 0
    assert "40 texts in 4 clusters" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"assignments.csv", "clusters.json", "projection.png"}
    rows = list(csv.DictReader((out / "assignments.csv").open(encoding="utf-8")))
    assert [r["source"] for r in rows[:2]] == ["c.txt:1", "c.txt:2"]
    assert main(["cluster", str(model_folder), "--input", str(corpus), "-o", str(out)]) == 2
    assert "needs --k" in capsys.readouterr().err


def test_mined_pairs_equal_brute_force_across_tiles() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(300, 8)).astype(np.float32)
    data[150] = data[3] + 0.01  # a near duplicate
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    report = mine_pairs(data, 0.8, block=64)
    full = data @ data.T
    want = {(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(full, 1) >= 0.8), strict=True)}
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
    assert main([*args, "--no-group"]) == 0  # every pair, copies included
    pairs = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(p["source1"], p["source2"]) for p in pairs} == {("c.txt:5", "c.txt:31"), ("c.txt:10", "c.txt:32")}
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
    assert main([*args, "--no-group"]) == 0
    plain = capsys.readouterr()
    assert "29 pairs with cosine >= 0.9999 among 20 texts" in plain.err  # 8 copies: 28 pairs, plus the upper case
    out = tmp_path / "pairs.tsv"
    assert main([*args, "-o", str(out)]) == 0  # grouped by default
    grouped = capsys.readouterr()
    assert "1 pairs with cosine >= 0.9999 among 20 texts (13 distinct, 1 of them repeated)" in grouped.err
    rows = list(csv.DictReader(out.open(encoding="utf-8"), delimiter="\t"))
    assert [(r["source1"], r["source2"], r["count1"], r["count2"]) for r in rows] == [("c.txt:6", "c.txt:20", "1", "1")]
    assert main([*args, "--group", "-t", "0.5"]) == 0
    assert f"{texts[3]} (x8)" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------- reading the clusters
TOPICS = {
    0: ["a man plays the guitar today", "the guitar music is loud", "guitar songs and music"],
    1: ["stock markets fell today", "the stock market crashed", "markets and stock prices fell"],
}


def _c_tf_idf_reference(documents: list[str], vocabulary: list[str]) -> np.ndarray:
    """BERTopic's formula written out: tf / words in the class * log(1 + average words per class / tf in all)."""
    counts = np.array([[doc.split().count(word) for word in vocabulary] for doc in documents], dtype=float)
    average = counts.sum() / len(documents)
    return counts / counts.sum(axis=1, keepdims=True) * np.log(1 + average / counts.sum(axis=0))


def test_keywords_are_the_c_tf_idf_top_words_of_each_cluster() -> None:
    texts = [*TOPICS[0], *TOPICS[1]]
    labels = np.repeat([0, 1], 3)
    keywords = cluster_keywords(texts, labels, top=20)
    assert keywords[0][:2] == ["guitar", "music"] and keywords[1][:3] == ["stock", "fell", "markets"]  # a tie: a-z
    # "today" and "loud" occur once in cluster 0, but "today" occurs in cluster 1 too: it ranks lower
    assert keywords[0].index("today") > keywords[0].index("loud")
    vocabulary = sorted({w for text in texts for w in text.split()} - {"a", "the", "and", "is"})
    documents = [" ".join(TOPICS[0]), " ".join(TOPICS[1])]
    weights = _c_tf_idf_reference(documents, vocabulary)
    leader = weights.argmax(axis=0)  # a word leads the cluster weighting it most: there first, elsewhere after
    for cluster in (0, 1):
        order = np.lexsort((vocabulary, -weights[cluster], leader != cluster))
        assert keywords[cluster] == [vocabulary[i] for i in order if weights[cluster, i] > 0]
    assert cluster_keywords(["12 34", "!!"], np.array([0, 1])) == [[], []]  # no word at all: no keywords


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.lists(st.sampled_from(["river", "bank", "money", "fish", "loan"]),
                                                       min_size=1, max_size=5)), min_size=2, max_size=30))  # fmt: skip
def test_a_word_leads_only_the_cluster_that_weights_it_most(rows: list) -> None:
    labels = np.unique([label for label, _ in rows], return_inverse=True)[1]
    texts = [" ".join(words) for _, words in rows]
    keywords = cluster_keywords(texts, labels)
    k = int(labels.max()) + 1
    vocabulary = sorted(set(" ".join(texts).split()))
    weights = _c_tf_idf_reference([" ".join(texts[i] for i in np.flatnonzero(labels == c)) for c in range(k)],
                                  vocabulary)  # fmt: skip
    leader = weights.argmax(axis=0)
    for cluster in range(k):
        order = np.lexsort((vocabulary, -np.round(weights[cluster], 9), leader != cluster))
        assert keywords[cluster] == [vocabulary[i] for i in order if weights[cluster, i] > 0]
    owning = [c for c in range(k) if (leader == c).any()]
    assert len({keywords[c][0] for c in owning}) == len(owning)  # clusters with a word of their own: distinct leads


def test_cluster_labels_in_a_dense_centre_do_not_overlap() -> None:
    import matplotlib.pyplot as plt

    from isbert.search.cluster import Projection, cluster_figure

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 20)
    points = rng.normal(scale=0.01, size=(len(labels), 2))  # every cluster's centre at the same point
    names = [(f"keyword{c}, other{c}, third{c}", f"sentence {c}") for c in range(6)]
    figure = cluster_figure(Projection(points, "PCA", ("x", "y")), labels, names, "dense")
    try:
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        boxes = [text.get_window_extent(renderer) for text in figure.axes[0].texts]
        assert len(boxes) == 6
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert not a.overlaps(b), (a, b)
    finally:
        plt.close(figure)


def test_central_sentences_are_distinct_and_counted() -> None:
    texts = ["same text", "same text", "other", "same text", "third"]
    similarity = np.array([0.9, 0.9, 0.8, 0.9, 0.7], dtype=np.float32)
    central = central_sentences(np.arange(5), similarity, texts, [f"t:{i}" for i in range(1, 6)], top=2)
    assert [(c["text"], c["count"], c["source"]) for c in central] == [("same text", 3, "t:1"), ("other", 1, "t:3")]


def test_cluster_cli_names_each_cluster_by_keywords_and_writes_distinct_central_texts(
    model_folder: Path, tmp_path: Path, capsys
) -> None:
    texts = [*TOPICS[0] * 3, *TOPICS[1] * 3]  # every text three times
    corpus = write_lines(tmp_path / "c.txt", texts)
    out = tmp_path / "out"
    args = ["cluster", str(model_folder), "--input", str(corpus), "--method", "agglomerative", "--k", "2"]
    assert main([*args, "-o", str(out), "--no-progress", "--projection", "pca", "--top", "6"]) == 0
    summary = json.loads((out / "clusters.json").read_text())
    for cluster in summary["clusters"]:
        central = [c["text"] for c in cluster["central"]]
        assert len(central) == len(set(central)) and all(c["count"] == 3 for c in cluster["central"])
        assert cluster["keywords"] and cluster["central"][0]["text"] in texts
    printed = capsys.readouterr().out.splitlines()
    for cluster in summary["clusters"]:
        words = ", ".join(cluster["keywords"][:3])
        assert f"  {cluster['cluster']:>3} ({cluster['size']}): {words} | {cluster['central'][0]['text']}" in printed


def _figure_for(projection: str, tmp_path: Path):
    from isbert.search.cluster import cluster_figure, project_2d

    data, truth = blobs()
    texts = [f"{['guitar', 'stock', 'river'][t]} text {i}" for i, t in enumerate(truth)]
    keywords = cluster_keywords(texts, truth)
    names = [(", ".join(words[:3]), texts[int(np.flatnonzero(truth == c)[0])]) for c, words in enumerate(keywords)]
    return cluster_figure(project_2d(data, projection), truth, names, "blobs"), names


def test_cluster_plot_labels_axes_and_each_cluster() -> None:
    import matplotlib.pyplot as plt

    figure, names = _figure_for("pca", Path())
    axes = figure.axes[0]
    try:
        assert re.fullmatch(r"PCA 1 \(\d+% variance\)", axes.get_xlabel())
        assert re.fullmatch(r"PCA 2 \(\d+% variance\)", axes.get_ylabel())
        legend = [text.get_text() for text in axes.get_legend().get_texts()]
        annotations = [child.get_text() for child in axes.texts]
        for cluster, (keywords, representative) in enumerate(names):
            assert keywords.startswith(["guitar", "stock", "river"][cluster])
            assert any(entry.startswith(f"{cluster} (") and keywords in entry and representative in entry
                       for entry in legend)  # fmt: skip
            assert f"{cluster}: {keywords}" in annotations
    finally:
        plt.close(figure)


@pytest.mark.slow
def test_umap_projection_when_installed(tmp_path: Path) -> None:
    pytest.importorskip("umap")
    import matplotlib.pyplot as plt

    figure, _ = _figure_for("umap", tmp_path)
    try:
        assert (figure.axes[0].get_xlabel(), figure.axes[0].get_ylabel()) == ("UMAP 1", "UMAP 2")
    finally:
        plt.close(figure)
