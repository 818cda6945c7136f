"""Search over 1M vectors on this machine: build time, memory, p50/p99 query latency, recall@10 vs exact search.

The vectors are SYNTHETIC (no model runs here; embedding 1M sentences would take hours on a CPU): unit vectors of
the model's dimension (384, all-MiniLM-L6-v2 / offline-minilm) drawn around 2,000 random centres with Gaussian
noise, so that they have the clustered structure of real sentence embeddings (uniform random vectors are a worst
case no real corpus resembles). Queries are 200 more points from the same distribution, not in the index.
Ground truth is exact inner-product search (faiss IndexFlatIP). Indexes are the ones ``isbert index build``
makes (isbert.search.index.choose_spec / new_faiss_index). Latency is one query per call, as the server does.

    .venv/bin/python benchmarks/search_scale.py            # ~3-5 minutes on 2 cores
    .venv/bin/python benchmarks/search_scale.py --n 100000 # quick check

Writes benchmarks/results/search_scale.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import faiss
import numpy as np

from isbert.search.index import apply_search_params, choose_spec, new_faiss_index, training_size

RESULTS = Path(__file__).parent / "results"


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def synthetic(n: int, dim: int, centres: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((centres, dim), dtype=np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        rows = min(step, n - start)
        block = means[rng.integers(0, centres, rows)] + 0.8 * rng.standard_normal((rows, dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + rows] = block
    return out


def measure(name: str, spec, data: np.ndarray, queries: np.ndarray, truth: np.ndarray, latency_queries: int) -> dict:
    dim = data.shape[1]
    before = rss_bytes()
    start = time.perf_counter()
    index = new_faiss_index(dim, spec)
    train = training_size(index, spec, len(data))
    if train:
        sample = data[np.random.default_rng(1).choice(len(data), train, replace=False)]
        index.train(sample)
        del sample
    train_s = time.perf_counter() - start
    for offset in range(0, len(data), 100_000):
        index.add(data[offset : offset + 100_000])
    build_s = time.perf_counter() - start
    memory = rss_bytes() - before
    apply_search_params(index, spec.search_params())
    _, found = index.search(queries, 10)
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found, strict=True)]))
    latencies = []
    for query in queries[:latency_queries]:
        tick = time.perf_counter()
        index.search(query[None, :], 10)
        latencies.append((time.perf_counter() - tick) * 1000)
    p50, p99 = np.percentile(latencies, [50, 99])
    row = {
        "index": name,
        "factory": spec.factory_string(),
        "search": spec.search_params(),
        "vectors": int(index.ntotal),
        "train_s": round(train_s, 1),
        "build_s": round(build_s, 1),
        "memory_mb": round(memory / 2**20),
        "p50_ms": round(float(p50), 2),
        "p99_ms": round(float(p99), 2),
        "recall_at_10": round(recall, 4),
        "latency_queries": len(latencies),
    }
    print(json.dumps(row), flush=True)
    del index
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="vectors (default: 1,000,000)")
    parser.add_argument("--dim", type=int, default=384, help="dimension (default: 384, offline-minilm)")
    parser.add_argument("--hnsw-n", type=int, default=100_000, help="vectors for the HNSW row (its build is slow)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--machine-note", default="no other job running", help="how busy the machine was, printed with the results"
    )
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    total_start = time.perf_counter()
    tick = time.perf_counter()
    data = synthetic(args.n + args.queries, args.dim, 2000, seed=0)
    queries, data = data[: args.queries].copy(), data[args.queries :]
    print(f"generated {args.n} x {args.dim} vectors in {time.perf_counter() - tick:.1f}s", flush=True)

    rows = []
    flat = choose_spec(args.n, "flat")
    exact = new_faiss_index(args.dim, flat)
    exact.add(data)
    _, truth = exact.search(queries, 10)
    del exact
    rows.append(measure("exact (flat, float32)", flat, data, queries, truth, 50))
    rows.append(measure("flat, int8", choose_spec(args.n, "flat", "int8"), data, queries, truth, 20))
    ivf = choose_spec(args.n, "auto")
    rows.append(measure(f"auto = {ivf.kind}, float32", ivf, data, queries, truth, args.queries))
    rows.append(measure("ivf, int8", choose_spec(args.n, "ivf", "int8"), data, queries, truth, args.queries))
    hnsw_n = min(args.hnsw_n, args.n)
    sub = data[:hnsw_n]
    sub_exact = faiss.IndexFlatIP(args.dim)
    sub_exact.add(sub)
    _, sub_truth = sub_exact.search(queries, 10)
    del sub_exact
    hnsw = choose_spec(hnsw_n, "hnsw", ef_construction=40)
    rows.append(measure(f"hnsw (first {hnsw_n:,} only)", hnsw, sub, queries, sub_truth, args.queries))

    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "?",
        ),
        "cores": os.cpu_count(),
        "faiss_threads": args.threads,
        "faiss": faiss.__version__,
        "python": platform.python_version(),
        "note": args.machine_note,
    }
    result = {
        "vectors": args.n,
        "dimension": args.dim,
        "data": "synthetic: unit vectors around 2,000 Gaussian centres (noise 0.8 per coordinate), not real embeddings",
        "queries": args.queries,
        "machine": machine,
        "total_s": round(time.perf_counter() - total_start, 1),
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "search_scale.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Search over {args.n:,} x {args.dim} vectors",
        "",
        f"Data: {result['data']}. {args.queries} queries from the same distribution, not indexed. Recall@10 against "
        "exact inner-product search; latency = one query per call, k = 10. Memory = growth of the process's "
        "resident memory while building (the index itself).",
        f"Machine: {machine['cpu_model']}, {machine['cores']} cores ({machine['note']}), faiss {machine['faiss']} "
        f"with {args.threads} threads. Total run {result['total_s']} s.",
        "",
        "| index | faiss | search | build s | memory MB | p50 ms | p99 ms | recall@10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        search = ", ".join(f"{k}={v}" for k, v in row["search"].items()) or "exact"
        lines.append(
            f"| {row['index']} | `{row['factory']}` | {search} | {row['build_s']} | {row['memory_mb']} | "
            f"{row['p50_ms']} | {row['p99_ms']} | {row['recall_at_10']} |"
        )
    (RESULTS / "search_scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
