"""Cluster a corpus by its sentence embeddings and write what a person needs to read the clusters.

Outputs in the output folder:

- ``assignments.csv``: ``source,cluster,similarity,text`` for every text (source = ``file:line``, similarity =
  cosine to its cluster centre);
- ``clusters.json``: per cluster, its size, its keywords and its most central distinct sentences (the ones closest
  to the centre, which summarize a cluster far better than a random member; repeats of a text are counted, not
  listed again);
- ``projection.png``: a 2-D projection (UMAP when installed, else PCA with each axis's share of the variance),
  coloured by cluster, each cluster labelled with its keywords and a representative sentence.

Keywords are c-TF-IDF (class-based TF-IDF, as BERTopic computes it): the texts of a cluster are one document, a
word's frequency in it is weighted by ``log(1 + average words per cluster / the word's frequency in all clusters)``,
so words frequent in one cluster and rare elsewhere rank first. A word leads only the cluster where its weight is
highest: each cluster lists those words first, then the words it shares with a cluster that weights them more, so no
two clusters are named by the same first word unless one has no word of its own. Clusters are numbered by size, 0
the largest, so that runs are easy to compare.
"""

from __future__ import annotations

import csv
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from isbert.atomic import atomic_open, save_figure_atomic, write_json_atomic
from isbert.errors import IsbertError
from isbert.extras import missing, require

METHODS = ("kmeans", "agglomerative")
AGGLOMERATIVE_MAX_TEXTS = 20_000
"""Agglomerative clustering needs the full n x n distance matrix (20k texts: 1.6 GB); above that use k-means."""
PLOT_MAX_POINTS = 20_000
PLOT_MAX_LABELS = 20
"""Clusters labelled on the plot (the largest); more labels would cover the points."""
KEYWORDS = 3
"""Keywords per cluster in the summary and on the plot (clusters.json keeps ``KEYWORDS_STORED``)."""
KEYWORDS_STORED = 10


@dataclass
class ClusterReport:
    output: Path
    texts: int
    clusters: int
    sizes: list[int]
    projection: str | None
    names: list[str] = field(default_factory=list)
    """Each cluster's label: its keywords and its representative sentence."""

    def summary(self, shown: int = 10) -> str:
        sizes = ", ".join(str(size) for size in self.sizes[:10]) + (", ..." if len(self.sizes) > 10 else "")
        plot = f", {self.projection} plot projection.png" if self.projection else ""
        lines = [
            f"{self.texts} texts in {self.clusters} clusters (sizes {sizes}); wrote assignments.csv, clusters.json"
            f"{plot} to {self.output}"
        ]
        named = enumerate(zip(self.sizes, self.names, strict=True))
        lines += [f"  {cluster:>3} ({size}): {name}" for cluster, (size, name) in named]
        return "\n".join(lines[: shown + 1] + (["  ..."] if len(lines) > shown + 1 else []))


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


def cluster_keywords(texts: list[str], labels: np.ndarray, top: int = KEYWORDS_STORED) -> list[list[str]]:
    """Each cluster's ``top`` words by c-TF-IDF (see the module docstring); [] for a cluster without a word.

    English stop words are left out; words are runs of two or more letters, lower-cased.
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    k = int(labels.max()) + 1 if len(labels) else 0
    documents = [" ".join(texts[i] for i in np.flatnonzero(labels == cluster)) for cluster in range(k)]
    vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{2,}\b")  # nosec B106 # a regex
    try:
        counts = vectorizer.fit_transform(documents).astype(np.float64)  # clusters x words, sparse
    except ValueError:  # not one word in the whole corpus (numbers, stop words, punctuation)
        return [[] for _ in range(k)]
    frequency = np.asarray(counts.sum(axis=0)).ravel()
    idf = np.log(1.0 + counts.sum() / k / frequency)
    weights = normalize(counts, norm="l1").multiply(idf).tocsr()
    words = vectorizer.get_feature_names_out()
    leader = np.asarray(weights.argmax(axis=0)).ravel()  # the cluster weighting each word most (the first on a tie)
    keywords = []
    for cluster in range(k):
        row = weights.getrow(cluster)
        shared = leader[row.indices] != cluster
        best = np.lexsort((words[row.indices], -row.data, shared))[:top]  # own words first; ties alphabetically
        keywords.append([str(words[row.indices[i]]) for i in best])
    return keywords


def central_sentences(
    members: np.ndarray, similarity: np.ndarray, texts: list[str], sources: list[str], top: int
) -> list[dict[str, Any]]:
    """The ``top`` distinct texts of a cluster closest to its centre, each with how often it occurs in the cluster."""
    counts = Counter(texts[i] for i in members)
    central: list[dict[str, Any]] = []
    for i in members[np.argsort(-similarity[members], kind="stable")]:
        if len(central) == top:
            break
        if all(entry["text"] != texts[i] for entry in central):
            entry = {"source": sources[i], "similarity": round(float(similarity[i]), 4), "text": texts[i]}
            central.append(entry | {"count": counts[texts[i]]})
    return central


@dataclass
class Projection:
    points: np.ndarray
    method: str
    axis_labels: tuple[str, str]


def project_2d(embeddings: np.ndarray, method: str = "auto", seed: int = 0) -> Projection:
    """2-D coordinates: UMAP when asked (or ``auto`` and umap-learn is installed), otherwise PCA.

    PCA axes are labelled with the share of the variance each one keeps, so a reader sees how much is lost.
    """
    if method == "umap":
        require("umap", "umap", what="--projection umap")
    if method in ("auto", "umap") and not missing("umap") and len(embeddings) > 3:
        import umap

        reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed)
        with warnings.catch_warnings():  # a seed makes UMAP single-threaded, and it warns about that each time
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
            points = np.asarray(reducer.fit_transform(embeddings))
        return Projection(points, "UMAP", ("UMAP 1", "UMAP 2"))
    from sklearn.decomposition import PCA

    if len(embeddings) < 2:
        return Projection(np.zeros((len(embeddings), 2)), "PCA", ("PCA 1", "PCA 2"))
    components = min(2, embeddings.shape[1], len(embeddings))
    pca = PCA(n_components=components, random_state=seed)
    points = pca.fit_transform(embeddings)
    shares = [*(100 * pca.explained_variance_ratio_), 0.0][:2]
    if points.shape[1] < 2:
        points = np.hstack([points, np.zeros((len(points), 2 - points.shape[1]))])
    labels = (f"PCA 1 ({shares[0]:.0f}% variance)", f"PCA 2 ({shares[1]:.0f}% variance)")
    return Projection(points, "PCA", labels)


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _separate(axes: Any, labels: list[Any]) -> None:
    """Move overlapping cluster labels apart (adjustText, maintained for exactly this), each tied to its centre by a
    thin line, so labels in a dense centre stay readable."""
    if len(labels) < 2:
        return
    require("apps", "adjustText", what="the cluster plot's label placement")
    from adjustText import adjust_text

    adjust_text(labels, ax=axes, arrowprops={"arrowstyle": "-", "color": "0.4", "lw": 0.5}, ensure_inside_axes=True)


def cluster_figure(projection: Projection, labels: np.ndarray, names: list[tuple[str, str]], title: str) -> Any:
    """The scatter plot, each of the largest clusters labelled at its centre with its keywords; the legend adds
    each cluster's size and representative sentence. ``names``: (keywords, representative sentence) per cluster."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = int(labels.max()) + 1 if len(labels) else 0
    points = projection.points
    figure, axes = plt.subplots(figsize=(11, 6), dpi=110)
    colours = plt.get_cmap("tab20" if k > 10 else "tab10")
    axes.scatter(points[:, 0], points[:, 1], c=labels % colours.N, cmap=colours, vmin=0, vmax=colours.N - 1, s=8,
                 alpha=0.6)  # fmt: skip
    handles, placed = [], []
    for cluster in range(min(k, PLOT_MAX_LABELS)):
        keywords, representative = names[cluster]
        mine = points[labels == cluster]
        size = int(np.sum(labels == cluster))
        if len(mine):
            x, y = np.median(mine, axis=0)
            box = {"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8, "lw": 0}
            placed.append(axes.text(x, y, f"{cluster}: {keywords}", fontsize=8, ha="center", weight="bold", bbox=box))
        label = f"{cluster} ({size}): {keywords}\n    “{_shorten(representative)}”"
        handles.append(plt.Line2D([], [], marker="o", linestyle="", color=colours(cluster % colours.N), label=label))
    _separate(axes, placed)
    if handles:
        more = f" ({PLOT_MAX_LABELS} largest of {k})" if k > PLOT_MAX_LABELS else ""
        axes.legend(handles=handles, title=f"cluster (size): keywords{more}", fontsize=7, loc="upper left",
                    bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # fmt: skip
    axes.set_xlabel(projection.axis_labels[0])
    axes.set_ylabel(projection.axis_labels[1])
    axes.set_title(title)
    return figure


def write_clusters(
    output: str | Path,
    sources: list[str],
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
    _write_assignments(output / "assignments.csv", sources, labels, similarity, texts)
    keywords = cluster_keywords(texts, labels)
    summary: list[dict[str, Any]] = []
    for cluster, size in enumerate(sizes):
        central = central_sentences(np.flatnonzero(labels == cluster), similarity, texts, sources, top)
        summary.append({"cluster": cluster, "size": size, "keywords": keywords[cluster], "central": central})
    write_json_atomic(
        output / "clusters.json", {"texts": len(texts), "clusters": summary}, indent=2, ensure_ascii=False
    )
    names = [(", ".join(words[:KEYWORDS]) or "(no keywords)", c["central"][0]["text"]) for words, c in
             zip(keywords, summary, strict=True)]  # fmt: skip
    used_projection = None
    if plot:
        keep = np.arange(len(texts))
        if len(keep) > PLOT_MAX_POINTS:
            keep = np.sort(np.random.default_rng(seed).choice(len(texts), PLOT_MAX_POINTS, replace=False))
        projected = project_2d(embeddings[keep], projection, seed)
        used_projection = projected.method
        shown = f" ({len(keep)} of {len(texts)} shown)" if len(keep) < len(texts) else ""
        figure = cluster_figure(projected, labels[keep], names, f"{title}: {used_projection}{shown}")
        save_figure_atomic(figure, output / "projection.png")
    report_names = [f"{words} | {_shorten(text)}" for words, text in names]
    return ClusterReport(output, len(texts), len(sizes), sizes, used_projection, report_names)


def _write_assignments(
    path: Path, sources: list[str], labels: np.ndarray, similarity: np.ndarray, texts: list[str]
) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "cluster", "similarity", "text"])
        for source, label, score, text in zip(sources, labels, similarity, texts, strict=True):
            writer.writerow([source, int(label), f"{score:.4f}", text])


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
