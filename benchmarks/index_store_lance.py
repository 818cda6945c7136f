"""The steps of benchmarks/index_store.py on LanceDB, for comparison: run with a Python where `pip install lancedb`
worked (a throwaway venv; LanceDB is not an isbert dependency). Reads the inputs index_store.py wrote in WORK.

    /tmp/lance-venv/bin/python benchmarks/index_store_lance.py WORK N [reader]

Prints one JSON object. Vector search is LanceDB's exact scan (no ANN index: the counterpart of a flat faiss index
below 200k vectors); keyword search its native full-text index (BM25); hybrid its default fusion (reciprocal rank).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import zlib
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa

DIM = 384
QUERIES = int(os.environ.get("INDEX_STORE_QUERIES", "200"))
"""Queries per mode; fewer at 10^6, where one exact scan of a LanceDB table takes seconds."""
IMPORTS_RSS_MB = 0


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table_of(ids: list[int], sources: list[str], texts: list[str], vectors: np.ndarray) -> pa.Table:
    flat = pa.array(vectors.astype(np.float32).ravel())
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "source": pa.array(sources),
            "text": pa.array(texts),
            "vector": pa.FixedSizeListArray.from_arrays(flat, DIM),
        }
    )


def stand_in(texts: list[str]) -> np.ndarray:
    rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(DIM, dtype=np.float32) for t in texts]
    matrix = np.stack(rows)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def writer(work: Path, n: int) -> dict:
    texts = (work / "corpus.txt").read_text(encoding="utf-8").splitlines()
    vectors = np.load(work / "vectors.npy")
    start = time.perf_counter()
    db = lancedb.connect(str(work / "lance"))
    sources = [f"corpus.txt:{line}" for line in range(1, n + 1)]
    table = db.create_table("docs", data=table_of(list(range(n)), sources, texts, vectors))
    table.create_fts_index("text")
    build_s = time.perf_counter() - start
    added = (work / "added.txt").read_text(encoding="utf-8").splitlines()
    start = time.perf_counter()
    more = [f"added.txt:{line}" for line in range(1, len(added) + 1)]
    table.add(table_of(list(range(n, n + len(added))), more, added, stand_in(added)))
    table.optimize()  # new rows join the full-text index
    add_s = time.perf_counter() - start
    start = time.perf_counter()
    table.delete("source LIKE 'added.txt:%'")
    delete_s = time.perf_counter() - start
    disk = sum(p.stat().st_size for p in (work / "lance").rglob("*") if p.is_file()) / 2**20
    return {
        "kind": "exact scan",
        "build_s": round(build_s, 2),
        "add_1000_s": round(add_s, 2),
        "delete_1000_s": round(delete_s, 2),
        "writer_peak_rss_mb": round(peak_rss_mb()),
        "disk_mb": round(disk, 1),
    }


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def synthetic_queries() -> tuple[np.ndarray, list[str]]:
    """The same queries as index_store.py (same seeds and recipe)."""
    rng = np.random.default_rng(7)
    rng.standard_normal((2_000, DIM), dtype=np.float32)  # the draw of the query's own centres, not used
    means = np.random.default_rng(0).standard_normal((2_000, DIM), dtype=np.float32)  # the data's centres
    data = means[rng.integers(0, 2_000, QUERIES)] + 0.8 * rng.standard_normal((QUERIES, DIM), dtype=np.float32)
    words = np.minimum(np.random.default_rng(9).zipf(1.3, size=(QUERIES, 12)), 20_000)
    keywords = [" ".join(f"w{w}" for w in sorted(row, reverse=True)[:2]) for row in words]
    return data / np.linalg.norm(data, axis=1, keepdims=True), keywords


def reader(work: Path) -> dict:
    global IMPORTS_RSS_MB
    IMPORTS_RSS_MB = round(current_rss_mb())
    start = time.perf_counter()
    table = lancedb.connect(str(work / "lance")).open_table("docs")
    out: dict = {"open_s": round(time.perf_counter() - start, 3), "imports_rss_mb": IMPORTS_RSS_MB}
    queries, keywords = synthetic_queries()
    found, seconds = [], []
    for row in range(QUERIES):
        start = time.perf_counter()
        hits = table.search(queries[row]).metric("dot").limit(10).to_list()
        seconds.append(time.perf_counter() - start)
        found.append([hit["id"] for hit in hits])
    out["vector"] = percentiles(seconds)
    seconds = []
    for row in range(QUERIES):
        start = time.perf_counter()
        table.search(keywords[row], query_type="fts").limit(10).to_list()
        seconds.append(time.perf_counter() - start)
    out["keyword"] = percentiles(seconds)
    seconds = []
    for row in range(QUERIES):
        start = time.perf_counter()
        table.search(query_type="hybrid").vector(queries[row]).text(keywords[row]).limit(10).to_list()
        seconds.append(time.perf_counter() - start)
    out["hybrid"] = percentiles(seconds)
    out["reader_peak_rss_mb"] = round(peak_rss_mb())  # before the ground truth below loads the vectors again
    vectors = np.load(work / "vectors.npy")
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    out["recall_at_10"] = round(
        float(np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])), 4
    )
    return out


if __name__ == "__main__":
    work, n = Path(sys.argv[1]), int(sys.argv[2])
    if len(sys.argv) > 3:
        print(json.dumps(reader(work)))
    else:
        result = writer(work, n)
        done = subprocess.run([sys.executable, __file__, str(work), str(n), "reader"], capture_output=True, text=True)
        if done.returncode:
            sys.exit(done.stderr[-2000:])
        print(json.dumps({**result, **json.loads(done.stdout)}))
