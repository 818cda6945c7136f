"""The clustering pieces one by one: the printed summary, the centres, the two methods' settings and refusals, and
what clusters.json looks like on disk (tests/search/test_cluster_wiring.py checks how they fit together)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import isbert.search.cluster as cluster
from isbert.errors import IsbertError
from isbert.search.cluster import (
    AGGLOMERATIVE_MAX_TEXTS,
    METHODS,
    ClusterReport,
    agglomerative,
    central_sentences,
    centroids_and_similarity,
    cluster_embeddings,
    kmeans,
    write_clusters,
)


def report(clusters: int, projection: str | None = "pca") -> ClusterReport:
    sizes = list(range(100, 100 - clusters, -1))
    return ClusterReport(
        Path("out"), sum(sizes), clusters, sizes, projection, [f"w{i} | s{i}" for i in range(clusters)]
    )


def test_the_summary_of_twelve_clusters_line_by_line() -> None:
    assert report(12).summary().splitlines() == [
        "1134 texts in 12 clusters (sizes 100, 99, 98, 97, 96, 95, 94, 93, 92, 91, ...); wrote assignments.csv, "
        "clusters.json, pca plot projection.png to out",
        *[f"  {i:>3} ({100 - i}): w{i} | s{i}" for i in range(10)],
        "  ...",
    ]


def test_the_summary_shows_ten_sizes_and_clusters_without_an_ellipsis_and_no_plot_without_a_projection() -> None:
    lines = report(10, projection=None).summary().splitlines()
    assert lines[0] == (
        "955 texts in 10 clusters (sizes 100, 99, 98, 97, 96, 95, 94, 93, 92, 91); wrote assignments.csv, "
        "clusters.json to out"
    )
    assert lines[1:] == [f"  {i:>3} ({100 - i}): w{i} | s{i}" for i in range(10)]
    eleven = report(11).summary().splitlines()
    assert eleven[0].startswith("1045 texts in 11 clusters (sizes 100, 99, 98, 97, 96, 95, 94, 93, 92, 91, ...);")
    assert len(eleven) == 12 and eleven[-1] == "  ..."  # ten of the eleven shown
    assert report(11).summary(shown=11).splitlines()[-1] == "   10 (90): w10 | s10"
    with pytest.raises(ValueError):  # a name for every cluster
        ClusterReport(Path("out"), 3, 2, [2, 1], None, ["only one"]).summary()


def test_centres_are_unit_means_and_each_text_gets_its_cosine_to_its_own() -> None:
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(9, 4)).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
    centres, similarity = centroids_and_similarity(embeddings, labels)
    means = np.stack([embeddings[labels == c].mean(axis=0) for c in range(3)])
    expected = means / np.linalg.norm(means, axis=1, keepdims=True)
    assert centres.shape == (3, 4) and centres.dtype == similarity.dtype == np.float32
    np.testing.assert_allclose(centres, expected, rtol=1e-5)
    np.testing.assert_allclose(similarity, (embeddings * expected[labels]).sum(axis=1), rtol=1e-5)


def test_kmeans_takes_as_many_clusters_as_texts_and_not_more() -> None:
    embeddings = np.eye(4, dtype=np.float32)
    assert sorted(kmeans(embeddings, 4).tolist()) == [0, 1, 2, 3]
    with pytest.raises(IsbertError, match=r"^--k 5 is larger than the number of texts \(4\)$"):
        kmeans(embeddings, 5)


def test_agglomerative_clusters_by_direction_not_by_length() -> None:
    """Cosine distance: two directions at two lengths each make two clusters of direction (Euclidean: of length)."""
    embeddings = np.array([[1, 0.05], [100, 3], [0.05, 1], [3, 100], [1, 0], [100, 0]], dtype=np.float32)
    labels = agglomerative(embeddings, 2, None)
    assert labels.dtype == np.int64
    assert labels[0] == labels[1] == labels[4] == labels[5] != labels[2] == labels[3]


def test_agglomerative_limits_and_refusals_word_for_word() -> None:
    two = np.eye(2, dtype=np.float32)
    assert agglomerative(two, 2, None).tolist() in ([0, 1], [1, 0])  # two texts are clustered, not one cluster
    one = agglomerative(two[:1], 1, None)
    assert one.tolist() == [0] and one.dtype == np.int64
    with pytest.raises(IsbertError) as refused:
        agglomerative(np.eye(3, dtype=np.float32), None, None)
    assert str(refused.value) == "agglomerative clustering needs exactly one of --k or --distance-threshold"
    assert sorted(agglomerative(np.eye(3, dtype=np.float32), 3, None).tolist()) == [0, 1, 2]
    with pytest.raises(IsbertError) as refused:
        agglomerative(np.eye(3, dtype=np.float32), 4, None)
    assert str(refused.value) == "--k 4 is larger than the number of texts (3)"


def test_agglomerative_refuses_more_texts_than_its_limit_and_takes_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "AGGLOMERATIVE_MAX_TEXTS", 4)
    assert len(cluster.agglomerative(np.eye(4, dtype=np.float32), 2, None)) == 4
    with pytest.raises(IsbertError) as refused:
        cluster.agglomerative(np.eye(5, dtype=np.float32), 2, None)
    assert str(refused.value) == (
        "agglomerative clustering of 5 texts needs an 5 x 5 distance matrix; use --method kmeans (or at most 4 texts)"
    )
    assert AGGLOMERATIVE_MAX_TEXTS > 4


def test_cluster_embeddings_runs_the_named_method_with_its_seed_and_refuses_others_word_for_word(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(cluster, "kmeans", lambda e, k, seed=0: calls.append((k, seed)) or np.zeros(len(e), np.int64))
    cluster.cluster_embeddings(np.eye(3, dtype=np.float32), method="kmeans", k=2, seed=7)
    cluster.cluster_embeddings(np.eye(3, dtype=np.float32), k=2)
    assert calls == [(2, 7), (2, 0)]
    with pytest.raises(IsbertError) as refused:
        cluster_embeddings(np.eye(3, dtype=np.float32), method="dbscan", k=2)
    assert str(refused.value) == f"unknown clustering method 'dbscan'; choose one of {', '.join(METHODS)}"
    assert len(METHODS) > 1
    for k, threshold in ((None, None), (2, 0.5)):
        with pytest.raises(IsbertError) as refused:
            cluster_embeddings(np.eye(3, dtype=np.float32), method="kmeans", k=k, distance_threshold=threshold)
        assert str(refused.value) == "k-means needs --k (a distance threshold is for --method agglomerative)"


def test_clusters_json_is_indented_keeps_non_ascii_text_and_its_folder_is_made(tmp_path: Path) -> None:
    texts = ["café au lait", "thé vert", "café noir", "thé noir"]
    embeddings = np.array([[1, 0], [0, 1], [1, 0.1], [0.1, 1]], dtype=np.float32)
    output = tmp_path / "new" / "nested"
    write_clusters(output, ["a"] * 4, texts, embeddings, np.array([0, 1, 0, 1]), plot=False)
    raw = (output / "clusters.json").read_text(encoding="utf-8")
    assert raw.startswith('{\n  "texts": 4,\n  "clusters": [\n') and '"café' in raw and "\\u00e9" not in raw
    assert json.loads(raw)["texts"] == 4


def test_kmeans_clusters_by_direction_whatever_the_length() -> None:
    """Spherical k-means (cosine): three directions, each point 0.1 or 10 long; plain k-means splits by length."""
    rng = np.random.default_rng(0)
    directions = np.array([[1, 0], [0, 1], [-1, 0.2]])
    points = np.concatenate([d + 0.05 * rng.normal(size=(20, 2)) for d in directions])
    points *= rng.choice([0.1, 10.0], size=(60, 1))  # float64, as a caller may pass
    labels = kmeans(points, 3)
    assert labels.dtype == np.int64
    assert [len(set(labels[i : i + 20])) for i in (0, 20, 40)] == [1, 1, 1] and len(set(labels)) == 3


def test_kmeans_gives_faiss_its_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed, the restarts, cosine centroids, no console output, and no subsampling of the texts."""
    import faiss

    settings: list[dict] = []

    class Recorded(faiss.Kmeans):
        def __init__(self, dimension: int, k: int, **kwargs: object) -> None:
            settings.append(kwargs)
            super().__init__(dimension, k, **kwargs)

    monkeypatch.setattr(faiss, "Kmeans", Recorded)
    kmeans(np.random.default_rng(0).normal(size=(900, 3)).astype(np.float32), 3, seed=7)
    kmeans(np.eye(4, dtype=np.float32), 2)
    assert settings == [
        dict(niter=25, nredo=5, seed=7, spherical=True, verbose=False, min_points_per_centroid=1,
             max_points_per_centroid=301),
        dict(niter=25, nredo=5, seed=0, spherical=True, verbose=False, min_points_per_centroid=1,
             max_points_per_centroid=256),
    ]  # fmt: skip


def test_write_clusters_keeps_five_central_sentences_by_default(tmp_path: Path) -> None:
    embeddings = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)
    texts = [f"text {i}" for i in range(8)]
    write_clusters(tmp_path, ["a"] * 8, texts, embeddings, np.array([0] * 7 + [1]), plot=False)
    clusters = json.loads((tmp_path / "clusters.json").read_text(encoding="utf-8"))["clusters"]
    assert [len(c["central"]) for c in clusters] == [5, 1]


def test_the_plot_shows_a_seeded_sample_of_distinct_texts_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict] = []

    def project(points: np.ndarray, method: str, seed: int) -> cluster.Projection:
        seen.append({"points": points.copy(), "method": method, "seed": seed})
        return cluster.Projection(np.zeros((len(points), 2)), "PCA", ("PCA 1", "PCA 2"))

    monkeypatch.setattr(cluster, "PLOT_MAX_POINTS", 4)
    monkeypatch.setattr(cluster, "project_2d", project)
    monkeypatch.setattr(
        cluster, "cluster_figure", lambda projection, labels, names, title: seen[-1].update(title=title)
    )
    monkeypatch.setattr(cluster, "save_figure_atomic", lambda figure, path: None)
    embeddings = np.arange(12, dtype=np.float32).reshape(6, 2)
    texts = [f"t{i}" for i in range(6)]
    written = write_clusters(tmp_path, ["a"] * 6, texts, embeddings, np.array([0, 0, 0, 1, 1, 1]), seed=3)
    kept = np.sort(np.random.default_rng(3).choice(6, 4, replace=False))
    np.testing.assert_array_equal(seen[0]["points"], embeddings[kept])
    assert (seen[0]["method"], seen[0]["seed"], seen[0]["title"]) == ("auto", 3, "clusters: PCA (4 of 6 shown)")
    assert written.projection == "PCA"
    write_clusters(tmp_path, ["a"] * 4, texts[:4], embeddings[:4], np.array([0, 0, 1, 1]), title="t")
    assert len(seen[1]["points"]) == 4 and seen[1]["title"] == "t: PCA"  # the limit itself: every text, no note
    assert seen[1]["seed"] == 0  # the default seed
    assert (
        write_clusters(tmp_path, ["a"] * 4, texts[:4], embeddings[:4], np.array([0, 0, 1, 1]), plot=False).projection
        is None
    )


def test_central_sentences_keep_the_texts_order_among_ties_and_four_decimals() -> None:
    texts = [f"text {i}" for i in range(64)]
    similarity = np.random.default_rng(0).choice([0.5, 0.7], size=64).astype(np.float32)  # two values, many ties
    similarity[10] = 0.123456
    members = np.arange(64)
    central = central_sentences(members, similarity, texts, ["s"] * 64, top=5)
    first = [f"text {i}" for i in np.flatnonzero(similarity == np.float32(0.7))[:5]]
    assert [entry["text"] for entry in central] == first
    lowest = central_sentences(np.array([10]), similarity, texts, ["s"] * 64, top=5)
    assert lowest == [{"source": "s", "similarity": 0.1235, "text": "text 10", "count": 1}]
