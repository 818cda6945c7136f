"""Cluster a corpus by its sentence embeddings and write what a person needs to read the clusters.

Outputs in the output folder:

- ``assignments.csv``: ``line,cluster,similarity,text`` for every text (similarity = cosine to its cluster centre);
- ``clusters.json``: per cluster, its size and its most central sentences (the ones closest to the centre, which
  summarize a cluster far better than a random member);
- ``projection.png``: a 2-D projection (PCA, or UMAP when installed and asked for) coloured by cluster.

Clusters are numbered by size, 0 the largest, so that runs are easy to compare.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from isbert.atomic import atomic_file, save_figure_atomic, write_json_atomic
from isbert.errors import IsbertError
from isbert.extras import missing, require

METHODS = ("kmeans", "agglomerative")
AGGLOMERATIVE_MAX_TEXTS = 20_000
"""Agglomerative clustering needs the full n x n distance matrix (20k texts: 1.6 GB); above that use k-means."""
PLOT_MAX_POINTS = 20_000


@dataclass
class ClusterReport:
    output: Path
    texts: int
    clusters: int
    sizes: list[int]
    projection: str | None

    def summary(self) -> str:
        sizes = ", ".join(str(size) for size in self.sizes[:10]) + (", ..." if len(self.sizes) > 10 else "")
        plot = f", {self.projection} plot projection.png" if self.projection else ""
        return (
            f"{self.texts} texts in {self.clusters} clusters (sizes {sizes}); wrote assignments.csv, clusters.json"
            f"{plot} to {self.output}"
        )


def kmeans(embeddings: np.ndarray, k: int, seed: int = 0, iterations: int = 25, restarts: int = 5) -> np.ndarray:
    """Spherical k-means (faiss): centroids stay on the unit sphere, matching cosine similarity.

    faiss starts from random points, not k-means++, so one run can merge two clusters; the best of ``restarts``
    runs (by objective) is kept.
    """
    import faiss

    n, dimension = embeddings.shape
    if k > n:
        raise IsbertError(f"--k {k} is larger than the number of texts ({n})")
    model = faiss.Kmeans(
        dimension,
        k,
        niter=iterations,
        nredo=restarts,
        seed=seed,
        spherical=True,
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=max(256, n // k + 1),
    )
    model.train(np.ascontiguousarray(embeddings, dtype=np.float32))
    _, labels = model.index.search(np.ascontiguousarray(embeddings, dtype=np.float32), 1)
    return labels[:, 0].astype(np.int64)


def agglomerative(embeddings: np.ndarray, k: int | None, distance_threshold: float | None) -> np.ndarray:
    """Average-linkage clustering on cosine distance: the number of clusters follows from the threshold."""
    from sklearn.cluster import AgglomerativeClustering

    n = len(embeddings)
    if n > AGGLOMERATIVE_MAX_TEXTS:
        raise IsbertError(
            f"agglomerative clustering of {n} texts needs an {n} x {n} distance matrix; use --method kmeans "
            f"(or at most {AGGLOMERATIVE_MAX_TEXTS} texts)"
        )
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    if (k is None) == (distance_threshold is None):
        raise IsbertError("agglomerative clustering needs exactly one of --k or --distance-threshold")
    if k is not None and k > n:
        raise IsbertError(f"--k {k} is larger than the number of texts ({n})")
    clusterer = AgglomerativeClustering(
        n_clusters=k, distance_threshold=distance_threshold, metric="cosine", linkage="average"
    )
    return clusterer.fit_predict(embeddings).astype(np.int64)


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0, 1, ... from the largest to the smallest (ties by first appearance)."""
    unique, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(unique)), key=lambda i: (-counts[i], first[i]))
    mapping = {int(unique[old]): new for new, old in enumerate(order)}
    return np.array([mapping[int(label)] for label in labels], dtype=np.int64)


def centroids_and_similarity(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length cluster centres and each text's cosine to its own centre."""
    k = int(labels.max()) + 1
    centres = np.zeros((k, embeddings.shape[1]), dtype=np.float64)
    np.add.at(centres, labels, embeddings.astype(np.float64))
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    similarity = np.sum(embeddings * centres[labels].astype(np.float32), axis=1)
    return centres.astype(np.float32), similarity


def project_2d(embeddings: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D coordinates: UMAP when asked (or ``auto`` and umap-learn is installed), otherwise PCA."""
    if method == "umap":
        require("umap", "umap", what="--projection umap")
    if method in ("auto", "umap") and not missing("umap") and len(embeddings) > 3:
        import umap  # type: ignore[import-not-found]

        reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed)
        return np.asarray(reducer.fit_transform(embeddings)), "UMAP"
    from sklearn.decomposition import PCA

    if len(embeddings) < 2:
        return np.zeros((len(embeddings), 2)), "PCA"
    components = min(2, embeddings.shape[1], len(embeddings))
    points = PCA(n_components=components, random_state=seed).fit_transform(embeddings)
    if points.shape[1] < 2:
        points = np.hstack([points, np.zeros((len(points), 2 - points.shape[1]))])
    return points, "PCA"


def plot_projection(points: np.ndarray, labels: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = int(labels.max()) + 1 if len(labels) else 0
    figure, axes = plt.subplots(figsize=(8, 6), dpi=110)
    colours = plt.get_cmap("tab20" if k > 10 else "tab10")
    scatter = axes.scatter(points[:, 0], points[:, 1], c=labels % colours.N, cmap=colours, s=8, alpha=0.75)
    if 1 < k <= 20:
        handles = [
            plt.Line2D([], [], marker="o", linestyle="", color=colours(i % colours.N), label=str(i)) for i in range(k)
        ]
        axes.legend(handles=handles, title="cluster", fontsize=7, loc="best", markerscale=0.8)
    del scatter
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    save_figure_atomic(figure, path)


def write_clusters(
    output: str | Path,
    lines: list[int],
    texts: list[str],
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    top: int = 5,
    plot: bool = True,
    projection: str = "auto",
    seed: int = 0,
    title: str = "clusters",
) -> ClusterReport:
    """Write assignments, cluster summaries and (optionally) the projection plot for given labels."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    labels = relabel_by_size(labels)
    _, similarity = centroids_and_similarity(embeddings, labels)
    sizes = np.bincount(labels).tolist()
    with atomic_file(output / "assignments.csv") as partial, partial.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "cluster", "similarity", "text"])
        for line, label, score, text in zip(lines, labels, similarity, texts, strict=True):
            writer.writerow([line, int(label), f"{score:.4f}", text])
    summary: list[dict[str, Any]] = []
    for cluster, size in enumerate(sizes):
        members = np.flatnonzero(labels == cluster)
        best = members[np.argsort(-similarity[members], kind="stable")[:top]]
        summary.append(
            {
                "cluster": cluster,
                "size": size,
                "central": [
                    {"line": lines[i], "similarity": round(float(similarity[i]), 4), "text": texts[i]} for i in best
                ],
            }
        )
    write_json_atomic(
        output / "clusters.json", {"texts": len(texts), "clusters": summary}, indent=2, ensure_ascii=False
    )
    used_projection = None
    if plot:
        rng = np.random.default_rng(seed)
        keep = np.arange(len(texts))
        if len(keep) > PLOT_MAX_POINTS:
            keep = np.sort(rng.choice(len(texts), PLOT_MAX_POINTS, replace=False))
        points, used_projection = project_2d(embeddings[keep], projection, seed)
        shown = f" ({len(keep)} of {len(texts)} shown)" if len(keep) < len(texts) else ""
        plot_projection(points, labels[keep], output / "projection.png", f"{title}: {used_projection}{shown}")
    return ClusterReport(output, len(texts), len(sizes), sizes, used_projection)


def cluster_embeddings(
    embeddings: np.ndarray,
    *,
    method: str = "kmeans",
    k: int | None = None,
    distance_threshold: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Cluster labels for normalized embeddings."""
    if method not in METHODS:
        raise IsbertError(f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "kmeans":
        if k is None or distance_threshold is not None:
            raise IsbertError("k-means needs --k (a distance threshold is for --method agglomerative)")
        return kmeans(embeddings, k, seed=seed)
    return agglomerative(embeddings, k, distance_threshold)
