"""Encoding throughput: sentence-transformers' own ``encode`` (fp32) against isbert's ONNX backend (fp32, int8).

Each backend runs in its own subprocess (so peak RSS is its own), the backends alternate round by round and the
median of the rounds is kept: ratios are measured side by side in one run, never against stored timings.
Same model, same sentences, same batch size and thread count for all. Also reports a roofline figure: achieved
GFLOP/s of the encoder divided by the machine's fp32 matrix-multiply peak measured in the same run.

    python benchmarks/encode_throughput.py --model offline-minilm --data-dir ../shared/data --threads 2

Writes benchmarks/results/encode_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sts_sentences(data_dir: Path, limit: int) -> list[str]:
    """Distinct sentences of the STS Benchmark test set (raw text), or unlabeled sentences if it is missing."""
    path = data_dir / "sts" / "STSBenchmark" / "sts-test.csv"
    sentences: dict[str, None] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            columns = line.split("\t")
            if len(columns) >= 7:
                sentences.update(dict.fromkeys(columns[5:7]))
    else:
        unlabeled = data_dir / "unlabeled" / "nli_sentences.snli_dev_test.txt"
        sentences.update(dict.fromkeys(unlabeled.read_text(encoding="utf-8").splitlines()))
    return list(sentences)[:limit]


def peak_rss_mib() -> float:
    """This process's own peak resident set (VmHWM; ru_maxrss would include the parent's peak before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(args: argparse.Namespace) -> None:
    """Encode the sentences with one backend and print a JSON line with time, tokens and peak RSS."""
    import torch

    torch.set_num_threads(args.threads)
    os.environ["HF_HUB_OFFLINE"] = "1"
    import isbert
    from isbert.cli import _quiet_libraries

    _quiet_libraries()
    sentences = json.loads(Path(args.sentences).read_text(encoding="utf-8"))
    if args.backend == "st":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(isbert.resolve_model_name(args.model), device="cpu", trust_remote_code=True)
        encode = lambda texts: model.encode(texts, batch_size=args.batch_size)  # noqa: E731
        tokenizer = model.tokenizer
        max_length = model.max_seq_length
    else:
        model = isbert.load(args.export, backend="onnx", quantization=args.backend.removeprefix("onnx-"))
        encode = lambda texts: model.encode(texts, batch_size=args.batch_size)  # noqa: E731
        tokenizer = model.tokenizer
        max_length = model.max_seq_length
    encode(sentences[: args.batch_size])  # warm-up
    start = time.perf_counter()
    encode(sentences)
    seconds = time.perf_counter() - start
    tokens = sum(len(ids) for ids in tokenizer(sentences, truncation=True, max_length=max_length)["input_ids"])
    peak_mib = peak_rss_mib()
    print(json.dumps({"seconds": seconds, "tokens": tokens, "peak_rss_mib": peak_mib}))


def matmul_peak_gflops(threads: int, size: int = 1024, repeats: int = 20) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def encoder_flops_per_token(model_name: str, mean_length: float) -> float:
    """Multiply-adds x2 of a BERT-style encoder per token: dense layers plus attention scores and mixing."""
    from transformers import AutoConfig

    import isbert

    config = AutoConfig.from_pretrained(isbert.resolve_model_name(model_name))
    hidden, layers, inner = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    dense = 4 * hidden * hidden + 2 * hidden * inner  # q, k, v, output projections and the feed-forward
    attention = 2 * mean_length * hidden  # QK^T and attention x V
    return 2 * layers * (dense + attention)


def run_worker(backend: str, args: argparse.Namespace, sentences_file: Path, export: Path) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        backend,
        "--model",
        args.model,
        "--export",
        str(export),
        "--sentences",
        str(sentences_file),
        "--threads",
        str(args.threads),
        "--batch-size",
        str(args.batch_size),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{backend} worker failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="offline-minilm")
    default_data = os.environ.get("ISBERT_DATA_DIR", str(HERE.parent.parent / "shared" / "data"))
    parser.add_argument("--data-dir", default=default_data)
    parser.add_argument("--sentences-limit", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default=str(HERE / "results" / "encode_throughput"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--export", help=argparse.SUPPRESS)
    parser.add_argument("--sentences", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.backend = args.worker
        worker(args)
        return

    os.environ["HF_HUB_OFFLINE"] = "1"
    import isbert
    from isbert.cli import _quiet_libraries
    from isbert.onnx_backend import export_onnx

    _quiet_libraries()
    sentences = sts_sentences(Path(args.data_dir), args.sentences_limit)
    with tempfile.TemporaryDirectory() as scratch:
        sentences_file = Path(scratch) / "sentences.json"
        sentences_file.write_text(json.dumps(sentences), encoding="utf-8")
        export = export_onnx(isbert.load(args.model, device="cpu"), Path(scratch) / "export", source=args.model)
        backends = ["st", "onnx-none", "onnx-int8"]
        runs: dict[str, list[dict]] = {backend: [] for backend in backends}
        peaks = []
        for round_index in range(args.rounds):
            peaks.append(matmul_peak_gflops(args.threads))
            for backend in backends:
                runs[backend].append(run_worker(backend, args, sentences_file, export))
                print(f"round {round_index + 1}: {backend} {len(sentences) / runs[backend][-1]['seconds']:.0f} sent/s")

    peak = statistics.median(peaks)
    tokens = runs["st"][0]["tokens"]
    flops_per_token = encoder_flops_per_token(args.model, tokens / len(sentences))
    baseline = statistics.median(run["seconds"] for run in runs["st"])
    rows = []
    for backend in backends:
        seconds = statistics.median(run["seconds"] for run in runs[backend])
        gflops = flops_per_token * tokens / seconds / 1e9
        rows.append(
            {
                "backend": backend,
                "sentences_per_s": len(sentences) / seconds,
                "speedup_vs_st": baseline / seconds,
                "peak_rss_mib": max(run["peak_rss_mib"] for run in runs[backend]),
                "gflops": gflops,
                "fraction_of_fp32_matmul_peak": gflops / peak,
            }
        )
    result = {
        "model": args.model,
        "sentences": len(sentences),
        "tokens": tokens,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "fp32_matmul_peak_gflops": peak,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs",
        "results": rows,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"Encoding {len(sentences)} STS sentences with {args.model}, batch {args.batch_size}, {args.threads} threads, "
        f"median of {args.rounds} alternating rounds; fp32 matmul peak {peak:.0f} GFLOP/s.",
        "",
        "| backend | sentences/s | speed-up vs sentence-transformers | peak RSS (MiB) | GFLOP/s | of fp32 peak |",
        "|---|---|---|---|---|---|",
    ]
    names = {"st": "sentence-transformers fp32", "onnx-none": "isbert ONNX fp32", "onnx-int8": "isbert ONNX int8"}
    for row in rows:
        lines.append(
            f"| {names[row['backend']]} | {row['sentences_per_s']:.0f} | {row['speedup_vs_st']:.2f}x | "
            f"{row['peak_rss_mib']:.0f} | {row['gflops']:.1f} | {row['fraction_of_fp32_matmul_peak']:.0%} |"
        )
    output.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
