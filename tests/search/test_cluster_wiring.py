"""What ``isbert cluster`` writes belongs to the cluster it is written under: sizes, similarities, keywords and the
central sentences are recomputed here from the texts, the embeddings and the labels, never only checked for shape."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isbert.search.cluster import write_clusters

VOCABULARY = ("apple", "banana", "cherry", "falcon", "guitar", "harbor", "island", "jungle", "kettle", "lantern")


@st.composite
def clustered_corpora(draw: st.DrawFn) -> tuple[list[str], np.ndarray, np.ndarray]:
    n = draw(st.integers(2, 24))
    labels = np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), dtype=np.int64)
    words = st.lists(st.sampled_from(VOCABULARY), min_size=0, max_size=4)
    texts = [" ".join(draw(words)) or "42" for _ in range(n)]  # a text without a word, now and then
    if draw(st.booleans()):
        texts[-1] = texts[0]  # a repeated text
    seed = draw(st.integers(0, 2**16))
    embeddings = np.random.default_rng(seed).normal(size=(n, 6)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return texts, labels, embeddings


def read_outputs(folder: Path) -> tuple[list[dict[str, str]], dict]:
    with (folder / "assignments.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows, json.loads((folder / "clusters.json").read_text(encoding="utf-8"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corpus=clustered_corpora())
def test_every_output_belongs_to_its_own_cluster(tmp_path_factory, corpus) -> None:
    texts, labels, embeddings = corpus
    folder = tmp_path_factory.mktemp("clusters")
    sources = [f"in.txt:{i + 1}" for i in range(len(texts))]
    report = write_clusters(folder, sources, texts, embeddings, labels, top=3, plot=False)
    rows, summary = read_outputs(folder)
    assigned = np.array([int(row["cluster"]) for row in rows])
    # the partition is the one given, renumbered from the largest cluster down
    assert [row["source"] for row in rows] == sources and [row["text"] for row in rows] == texts
    for i in range(len(texts)):
        assert np.array_equal(assigned == assigned[i], labels == labels[i])
    sizes = np.bincount(assigned).tolist()
    assert sizes == sorted(sizes, reverse=True) == [c["size"] for c in summary["clusters"]] == report.sizes
    assert summary["texts"] == len(texts) and report.clusters == len(sizes)
    for cluster, entry in enumerate(summary["clusters"]):
        members = np.flatnonzero(assigned == cluster)
        assert entry["cluster"] == cluster
        # similarity: the cosine to the normalized mean of this cluster's own embeddings
        centre = embeddings[members].astype(np.float64).sum(axis=0)
        centre /= np.linalg.norm(centre)
        expected = embeddings[members] @ centre
        written = np.array([float(rows[i]["similarity"]) for i in members])
        np.testing.assert_allclose(written, expected, atol=1e-4)
        # keywords: words of this cluster's texts, the ones of no other cluster's texts never among them
        own_words = Counter(w for i in members for w in re.findall(r"[a-z]{2,}", texts[i]))
        assert set(entry["keywords"]) <= set(own_words)
        # central sentences: distinct texts of this cluster, the most central first, counted within the cluster
        central = entry["central"]
        assert 1 <= len(central) <= 3 and len({c["text"] for c in central}) == len(central)
        member_texts = Counter(texts[i] for i in members)
        for item in central:
            row = int(item["source"].split(":")[1]) - 1
            assert row in members and texts[row] == item["text"]
            assert item["count"] == member_texts[item["text"]]
            assert abs(item["similarity"] - expected[list(members).index(row)]) < 1e-3
        assert [c["similarity"] for c in central] == sorted((c["similarity"] for c in central), reverse=True)
        assert central[0]["similarity"] >= round(float(expected.max()), 4) - 1e-4
        assert report.names[cluster].split(" | ")[0] == (", ".join(entry["keywords"][:3]) or "(no keywords)")


def test_a_word_only_one_cluster_uses_is_its_first_keyword(tmp_path: Path) -> None:
    """c-TF-IDF: a word in every text of one cluster and in no other ranks first there; words of every cluster
    rank below it."""
    shared = "harbor lantern"
    own = {0: "apple", 1: "falcon", 2: "guitar"}
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])
    texts = [f"{own[int(label)]} {shared} kettle" if i % 2 else f"{shared} {own[int(label)]}" for i, label in
             enumerate(labels)]  # fmt: skip
    embeddings = np.eye(9, dtype=np.float32)
    write_clusters(tmp_path, [f"t:{i}" for i in range(9)], texts, embeddings, labels, plot=False)
    _, summary = read_outputs(tmp_path)
    assert [c["keywords"][0] for c in summary["clusters"]] == ["apple", "falcon", "guitar"]
    for entry in summary["clusters"]:
        assert entry["keywords"].index("harbor") > 0 and entry["keywords"].index("lantern") > 0
