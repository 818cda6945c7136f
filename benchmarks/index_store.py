"""The index store (SQLite + faiss, isbert.search.index) at 10k and 100k records (1M with --sizes): build, add and
delete time, search latency by mode, recall@10 against exact search, peak RSS of the writer and of a reader, size
on disk. With --lance PYTHON (a throwaway venv where `pip install lancedb` worked) the same steps run on LanceDB
for comparison (benchmarks/index_store_lance.py).

The vectors are SYNTHETIC, as in benchmarks/search_scale.py (no model runs: embedding 100k texts takes an hour on
two cores): 384-d unit vectors around 2,000 Gaussian centres. The texts are 12 words drawn from a 20,000-word
Zipf vocabulary, so that keyword search meets realistic term frequencies. The index is built from an
`isbert encode`-style matrix (`build_from_vectors`); `add` embeds 1,000 new texts with a stand-in model (a
hash-seeded random vector per text, no network), so its time is the store's, not a model's. Each size runs in
its own process (peak RSS is per process); the reader is a second process that opens the index and searches.

    .venv/bin/python benchmarks/index_store.py                      # 10k and 100k, ~2 minutes on 2 cores
    .venv/bin/python benchmarks/index_store.py --lance /tmp/lance-venv/bin/python
    INDEX_STORE_QUERIES=20 .venv/bin/python benchmarks/index_store.py --sizes 1000000 --lance PY --output index_store_1m

Writes benchmarks/results/index_store.json and .md (--output names another file).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
DIM = 384
QUERIES = int(os.environ.get("INDEX_STORE_QUERIES", "200"))
"""Queries per mode; fewer at 10^6, where one exact scan of a LanceDB table takes seconds."""
ADDED = 1_000
IMPORTS_RSS_MB = 0


def synthetic_vectors(n: int, seed: int, centres_seed: int | None = None) -> np.ndarray:
    """Unit vectors around 2,000 Gaussian centres: the data's own (``seed``), or ``centres_seed``'s for queries that
    come from the data's distribution (queries around other centres have no near neighbours: IVF recall means
    little there)."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((2_000, DIM), dtype=np.float32)
    if centres_seed is not None:
        means = np.random.default_rng(centres_seed).standard_normal((2_000, DIM), dtype=np.float32)
    data = means[rng.integers(0, 2_000, n)] + 0.8 * rng.standard_normal((n, DIM), dtype=np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def synthetic_texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = np.minimum(rng.zipf(1.3, size=(n, 12)), 20_000)
    return [" ".join(f"w{w}" for w in row) for row in words]


class StandInModel:
    """What the index needs of a model (dimension, maximum length, ``encode``): a hash-seeded unit vector per text."""

    max_seq_length = 128
    tokenizer = None

    def get_embedding_dimension(self) -> int:
        return DIM

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(DIM, dtype=np.float32) for t in texts]
        matrix = np.stack(rows)
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 2**20


def write_inputs(work: Path, n: int) -> tuple[Path, Path]:
    corpus = work / "corpus.txt"
    corpus.write_text("\n".join(synthetic_texts(n, 0)) + "\n", encoding="utf-8")
    vectors = work / "vectors.npy"
    np.save(vectors, synthetic_vectors(n, 0))
    with (work / "vectors.sources.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source"])
        writer.writerows([f"corpus.txt:{line}"] for line in range(1, n + 1))
    (work / "added.txt").write_text("\n".join(synthetic_texts(ADDED, 1)) + "\n", encoding="utf-8")
    return corpus, vectors


def run_writer(work: Path, n: int) -> dict:
    from isbert.search.index import SearchIndex

    corpus, vectors = write_inputs(work, n)
    model = StandInModel()
    start = time.perf_counter()
    report = SearchIndex.build_from_vectors(work / "idx", model, "stand-in", vectors, corpus)  # type: ignore[arg-type]
    build_s = time.perf_counter() - start
    index = SearchIndex.open(work / "idx")
    start = time.perf_counter()
    index.add(model, work / "added.txt", show_progress=False)  # type: ignore[arg-type]
    add_s = time.perf_counter() - start
    start = time.perf_counter()
    index.add(model, work / "added.txt", show_progress=False)  # type: ignore[arg-type]
    readd_s = time.perf_counter() - start
    start = time.perf_counter()
    index.delete(source="added.txt")
    delete_s = time.perf_counter() - start
    return {
        "kind": report.spec.kind,
        "build_s": round(build_s, 2),
        "add_1000_s": round(add_s, 2),
        "readd_1000_skipped_s": round(readd_s, 2),
        "delete_1000_s": round(delete_s, 2),
        "writer_peak_rss_mb": round(peak_rss_mb()),
        "disk_mb": round(folder_mb(work / "idx"), 1),
    }


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def run_reader(work: Path, n: int) -> dict:
    import faiss

    from isbert.search.index import SearchIndex

    global IMPORTS_RSS_MB
    IMPORTS_RSS_MB = round(current_rss_mb())  # torch and sentence-transformers come with isbert's imports
    start = time.perf_counter()
    index = SearchIndex.open(work / "idx")
    open_s = time.perf_counter() - start
    queries = synthetic_vectors(QUERIES, 7, centres_seed=0)  # the data's centres, other draws
    # a keyword query names what is rare: the two least frequent words of a text (Zipf: the highest numbers)
    words = [" ".join(sorted(text.split(), key=lambda w: -int(w[1:]))[:2]) for text in synthetic_texts(QUERIES, 9)]
    faiss.omp_set_num_threads(1)  # one query per call: extra OpenMP threads only wait on a shared, busy machine
    out: dict = {"open_s": round(open_s, 3), "imports_rss_mb": IMPORTS_RSS_MB}
    found = []
    for mode in ("vector", "keyword", "hybrid"):
        seconds = []
        for row in range(QUERIES):
            start = time.perf_counter()
            hits = index.search_embedded([words[row]], queries[row : row + 1], 10, mode=mode)
            seconds.append(time.perf_counter() - start)
            if mode == "vector":
                found.append([hit.id for hit in hits[0]])
        out[mode] = percentiles(seconds)
    out["reader_peak_rss_mb"] = round(peak_rss_mb())  # before the ground truth below loads the vectors again
    exact = faiss.IndexFlatIP(DIM)
    exact.add(np.load(work / "vectors.npy"))
    _, truth = exact.search(queries, 10)
    out["recall_at_10"] = round(
        float(np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])), 4
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated record counts")
    parser.add_argument("--lance", default=None, help="a python with lancedb installed, to compare")
    parser.add_argument("--output", default="index_store", help="results file name in benchmarks/results/")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--role", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        work = Path(args.work)
        result = run_writer(work, args.one) if args.role == "writer" else run_reader(work, args.one)
        print(json.dumps(result))
        return
    rows = []
    for n in (int(size) for size in args.sizes.split(",")):
        work = Path(tempfile.mkdtemp(prefix=f"index-store-{n}-"))
        try:
            row: dict = {"engine": "sqlite+faiss", "n": n}
            for role in ("writer", "reader"):
                command = [sys.executable, __file__, "--one", str(n), "--role", role, "--work", str(work)]
                row.update(json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout))
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.lance:
                command = [args.lance, str(Path(__file__).with_name("index_store_lance.py")), str(work), str(n)]
                done = subprocess.run(command, capture_output=True, text=True)
                lance = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-300:]}
                rows.append({"engine": "lancedb", "n": n, **lance})
                print(json.dumps(rows[-1]), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    write_results(rows, args.output)


def write_results(rows: list[dict], output: str) -> None:
    import faiss

    machine = (
        f"{platform.processor() or platform.machine()}, faiss {faiss.__version__}, SQLite {sqlite3.sqlite_version}"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{output}.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    lines = [
        "# Index store: SQLite + faiss (and LanceDB where installed)",
        "",
        "Synthetic data (benchmarks/index_store.py): 384-d unit vectors around 2,000 centres, 12-word Zipf texts; "
        f"{QUERIES} queries (keyword: the two rarest words of a text), k = 10, one query per call, one faiss thread. "
        f"Machine: {machine}; 2 cores shared with other jobs (load average {os.getloadavg()[0]:.1f} at the end), so "
        "latencies are upper bounds.",
        "",
        "| engine | records | kind | build s | add 1k s | re-add 1k (skipped) s | delete 1k s | vector p50/p99 ms "
        "| keyword p50/p99 ms | hybrid p50/p99 ms | recall@10 | writer RSS MB | reader RSS MB (imports) | disk MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['engine']} | {r['n']:,} | failed: {r['error'][:80]} |" + " |" * 11)
            continue

        def pair(mode: str, r: dict = r) -> str:
            return f"{r[mode]['p50_ms']} / {r[mode]['p99_ms']}" if mode in r else "n/a"

        lines.append(
            f"| {r['engine']} | {r['n']:,} | {r.get('kind', '')} | {r['build_s']} | {r['add_1000_s']} | "
            f"{r.get('readd_1000_skipped_s', 'n/a')} | {r['delete_1000_s']} | {pair('vector')} | {pair('keyword')} | "
            f"{pair('hybrid')} | {r['recall_at_10']} | {r['writer_peak_rss_mb']} | "
            f"{r['reader_peak_rss_mb']} ({r['imports_rss_mb']}) | {r['disk_mb']} |"
        )
    (RESULTS / f"{output}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
