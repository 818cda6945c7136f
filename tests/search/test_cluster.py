"""The clustering pieces one by one: the printed summary, the centres, the two methods' settings and refusals, and
what clusters.json looks like on disk (tests/search/test_cluster_wiring.py checks how they fit together)."""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


class RecordingUmap:
    """Stands in for ``umap.UMAP``: records its settings, warns as UMAP does with a seed, returns known points."""

    made: list[dict] = []
    other_warnings = False

    def __init__(self, **settings) -> None:
        RecordingUmap.made.append(settings)

    def fit_transform(self, embeddings: np.ndarray) -> list[list[float]]:
        warnings.warn("n_jobs value 1 overridden to 1 by setting random_state", UserWarning, stacklevel=1)
        if RecordingUmap.other_warnings:
            warnings.warn("n_jobs value will change", FutureWarning, stacklevel=1)  # not the seed's: let through
            warnings.warn("graph is not fully connected", UserWarning, stacklevel=1)  # another: let through
        return [[float(i), -float(i)] for i in range(len(embeddings))]


@pytest.fixture
def fake_umap(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    module = types.ModuleType("umap")
    module.__spec__ = importlib.machinery.ModuleSpec("umap", None)
    module.UMAP = RecordingUmap  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "umap", module)
    RecordingUmap.made, RecordingUmap.other_warnings = [], False
    return RecordingUmap.made


def test_umap_is_cosine_2d_seeded_quiet_and_used_from_four_texts(fake_umap: list[dict]) -> None:
    embeddings = np.random.default_rng(0).normal(size=(4, 3))
    RecordingUmap.other_warnings = True
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        projection = cluster.project_2d(embeddings, "auto", seed=7)
    # only UMAP's warning about its seed is silenced
    assert [(w.category, str(w.message)) for w in seen] == [
        (FutureWarning, "n_jobs value will change"),
        (UserWarning, "graph is not fully connected"),
    ]
    RecordingUmap.other_warnings = False
    assert fake_umap == [{"n_components": 2, "metric": "cosine", "random_state": 7}]
    assert (projection.method, projection.axis_labels) == ("UMAP", ("UMAP 1", "UMAP 2"))
    np.testing.assert_array_equal(projection.points, [[0, 0], [1, -1], [2, -2], [3, -3]])
    assert cluster.project_2d(embeddings, "umap").method == "UMAP"
    assert cluster.project_2d(embeddings, "pca").method == "PCA"  # asked for PCA: PCA though UMAP is there
    assert cluster.project_2d(embeddings[:3], "auto").method == "PCA"  # UMAP needs more than 3 points
    assert len(fake_umap) == 2


def test_pca_axes_say_the_share_of_variance_each_keeps() -> None:
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(200, 3)) * [3.0, 1.0, 0.1]
    projection = cluster.project_2d(embeddings, "pca", seed=0)
    shares = 100 * PCA(n_components=2, random_state=0).fit(embeddings).explained_variance_ratio_
    assert projection.method == "PCA"
    assert projection.axis_labels == (f"PCA 1 ({shares[0]:.0f}% variance)", f"PCA 2 ({shares[1]:.0f}% variance)")
    assert projection.axis_labels == ("PCA 1 (90% variance)", "PCA 2 (10% variance)")
    np.testing.assert_allclose(projection.points, PCA(n_components=2, random_state=0).fit_transform(embeddings))


def test_pca_of_one_dimension_or_one_text_pads_with_zeros() -> None:
    line = cluster.project_2d(np.array([[1.0], [2.0], [4.0]]), "pca")
    assert line.axis_labels == ("PCA 1 (100% variance)", "PCA 2 (0% variance)")
    np.testing.assert_allclose(line.points[:, 1], 0)
    np.testing.assert_allclose(np.abs(line.points[:, 0]), np.abs([-4 / 3, -1 / 3, 5 / 3]))
    assert line.points.shape == (3, 2)
    single = cluster.project_2d(np.ones((1, 5)), "pca")
    assert single.points.shape == (1, 2) and not single.points.any() and single.method == "PCA"
    assert single.axis_labels == ("PCA 1", "PCA 2")
    pair = cluster.project_2d(np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]]), "pca")
    assert pair.points.shape == (2, 2) and pair.axis_labels == ("PCA 1 (100% variance)", "PCA 2 (0% variance)")


def test_labels_are_moved_apart_by_adjust_text_with_thin_grey_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    import adjustText

    calls: list[tuple] = []
    monkeypatch.setattr(adjustText, "adjust_text", lambda *args, **kwargs: calls.append((args, kwargs)))
    cluster._separate("axes", ["one"])
    assert calls == []  # one label has nothing to overlap
    cluster._separate("axes", ["one", "two"])
    assert calls == [
        (
            (["one", "two"],),
            {"ax": "axes", "arrowprops": {"arrowstyle": "-", "color": "0.4", "lw": 0.5}, "ensure_inside_axes": True},
        )
    ]


@contextmanager
def drawn(figure: Any) -> Iterator[Any]:
    """The figure, closed afterwards whatever the assertions do (pyplot keeps every open figure alive)."""
    import matplotlib.pyplot as plt

    try:
        yield figure
    finally:
        plt.close(figure)


def figure_of(k: int, per_cluster: int = 3):
    labels = np.repeat(np.arange(k), per_cluster)
    points = np.column_stack([labels * 10.0 + np.tile([0.0, 1.0, 5.0], k)[: len(labels)], labels * 2.0])
    names = [(f"kw{c}", f"sentence {c} " + "x" * 70 * (c == 0)) for c in range(k)]
    return cluster.cluster_figure(cluster.Projection(points, "PCA", ("across", "up")), labels, names, "the title")


def test_the_figure_labels_each_cluster_at_its_median_with_size_keywords_and_shortened_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import matplotlib.pyplot as plt

    separated: list[tuple] = []
    monkeypatch.setattr(cluster, "_separate", lambda axes, labels: separated.append((axes, list(labels))))
    with drawn(figure_of(3)) as figure:
        axes = figure.axes[0]
        assert separated == [(axes, axes.texts[:])]  # every label, placed at its median before being moved apart
        assert (tuple(figure.get_size_inches()), figure.dpi) == ((11.0, 6.0), 110)
        assert (axes.get_xlabel(), axes.get_ylabel(), axes.get_title()) == ("across", "up", "the title")
        assert [(t.get_text(), t.get_position()) for t in axes.texts] == [
            (f"{c}: kw{c}", (10.0 * c + 1.0, 2.0 * c)) for c in range(3)
        ]
        assert all(t.get_fontsize() == 8 and t.get_weight() == "bold" and t.get_ha() == "center" for t in axes.texts)
        legend = axes.get_legend()
        assert legend.get_title().get_text() == "cluster (size): keywords"
        shortened = "sentence 0 " + "x" * 48 + "…"
        assert [t.get_text() for t in legend.get_texts()] == [
            f"0 (3): kw0\n    “{shortened}”",
            "1 (3): kw1\n    “sentence 1 ”",
            "2 (3): kw2\n    “sentence 2 ”",
        ]
        tab10 = plt.get_cmap("tab10")
        assert [h.get_color() for h in legend.legend_handles] == [tab10(c) for c in range(3)]
        np.testing.assert_array_equal(axes.collections[0].get_array(), np.repeat(np.arange(3), 3))


def test_the_figure_s_points_labels_and_legend_are_drawn_as_designed() -> None:
    """The look: small translucent points on a fixed colour scale, labels on white rounded boxes, the legend
    outside the axes at the upper left, one round marker per cluster."""

    with drawn(figure_of(3)) as figure:
        axes = figure.axes[0]
        points = axes.collections[0]
        assert (list(points.get_sizes()), points.get_alpha()) == ([8.0], 0.6)
        assert (points.norm.vmin, points.norm.vmax) == (0, 9)
        box = axes.texts[0].get_bbox_patch()
        assert (box.get_facecolor(), box.get_linewidth()) == ((1.0, 1.0, 1.0, 0.8), 0.0)
        assert box.get_boxstyle().pad == 0.2 and type(box.get_boxstyle()).__name__ == "Round"
        legend = axes.get_legend()
        assert legend.get_texts()[0].get_fontsize() == 7 and legend._loc == 2  # upper left
        assert legend.get_bbox_to_anchor().transformed(axes.transAxes.inverted()).bounds[:2] == pytest.approx((1.01, 1))
        assert legend.borderaxespad == 0
        assert all((h.get_marker(), h.get_linestyle()) == ("o", "None") for h in legend.legend_handles)


def test_more_than_ten_clusters_take_twenty_colours_and_at_most_twenty_labels() -> None:
    import matplotlib.pyplot as plt

    with drawn(figure_of(23, per_cluster=1)) as figure:
        axes = figure.axes[0]
        legend = axes.get_legend()
        assert legend.get_title().get_text() == "cluster (size): keywords (20 largest of 23)"
        assert len(legend.get_texts()) == len(axes.texts) == 20
        tab20 = plt.get_cmap("tab20")
        assert [h.get_color() for h in legend.legend_handles][18:] == [tab20(18), tab20(19)]
        np.testing.assert_array_equal(axes.collections[0].get_array(), np.arange(23) % 20)
        assert axes.collections[0].get_cmap().name == "tab20"
    with drawn(figure_of(11, per_cluster=1)) as eleven:
        assert eleven.axes[0].collections[0].get_cmap().name == "tab20"
        assert eleven.axes[0].get_legend().get_title().get_text() == "cluster (size): keywords"
    with drawn(figure_of(10, per_cluster=1)) as ten:
        assert ten.axes[0].collections[0].get_cmap().name == "tab10"


def test_the_default_projection_is_umap_seeded_with_zero(fake_umap: list[dict]) -> None:
    assert cluster.project_2d(np.random.default_rng(0).normal(size=(5, 3))).method == "UMAP"
    assert fake_umap[0]["random_state"] == 0


def test_without_umap_auto_and_pca_project_with_pca_and_umap_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap fails, as when umap-learn is not installed
    embeddings = np.random.default_rng(0).normal(size=(6, 3))
    assert cluster.project_2d(embeddings).method == "PCA"
    assert cluster.project_2d(embeddings, "pca").method == "PCA"
    with pytest.raises(IsbertError) as caught:
        cluster.project_2d(embeddings, "umap")
    assert str(caught.value) == '--projection umap needs umap-learn: pip install "isbert[umap]"'


def test_pca_of_many_long_vectors_uses_the_seed() -> None:
    """From 500 texts of many dimensions sklearn's PCA is randomized: the seed decides the exact points."""
    from sklearn.decomposition import PCA

    embeddings = np.random.default_rng(0).normal(size=(600, 520))
    projection = cluster.project_2d(embeddings, "pca", seed=3)
    np.testing.assert_array_equal(projection.points, PCA(n_components=2, random_state=3).fit_transform(embeddings))


def test_no_texts_have_no_keywords_and_an_empty_figure() -> None:
    none = np.array([], dtype=np.int64)
    assert cluster.cluster_keywords([], none) == []
    nowhere = cluster.Projection(np.zeros((0, 2)), "PCA", ("x", "y"))
    with drawn(cluster.cluster_figure(nowhere, none, [], "empty")) as figure:
        assert len(figure.axes[0].texts) == 0 and figure.axes[0].get_legend() is None


def test_the_points_are_drawn_where_projected_on_a_colour_scale_from_zero() -> None:
    points = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    labels = np.array([1, 1, 2, 2])  # cluster 0 not among the points drawn
    names = [("kw0", "s0"), ("kw1", "s1"), ("kw2", "s2")]
    projection = cluster.Projection(points, "PCA", ("x", "y"))
    with drawn(cluster.cluster_figure(projection, labels, names, "t")) as figure:
        scatter = figure.axes[0].collections[0]
        np.testing.assert_array_equal(scatter.get_offsets(), points)
        assert (scatter.norm.vmin, scatter.norm.vmax) == (0, 9)


def test_a_representative_sentence_is_cut_after_60_characters_at_a_word_s_end() -> None:
    assert cluster._shorten("x" * 60) == "x" * 60
    assert cluster._shorten("x" * 61) == "x" * 59 + "…"
    assert cluster._shorten("a" * 58 + " " + "b" * 10) == "a" * 58 + "…"  # no space left before the ellipsis


def test_without_adjust_text_the_labels_need_the_apps_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "adjustText", None)
    cluster._separate("axes", ["one"])  # one label needs no placement, so nothing is asked for
    with pytest.raises(IsbertError) as caught:
        cluster._separate("axes", ["one", "two"])
    assert str(caught.value) == 'the cluster plot\'s label placement needs adjustText: pip install "isbert[apps]"'


def test_twenty_clusters_are_all_labelled_without_a_note() -> None:
    with drawn(figure_of(20, per_cluster=1)) as figure:
        assert figure.axes[0].get_legend().get_title().get_text() == "cluster (size): keywords"
        assert len(figure.axes[0].texts) == 20
