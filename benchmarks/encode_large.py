"""Peak memory of `isbert encode` on a large file: the input is streamed and the output written in chunks.

Writes a synthetic corpus (short sentences assembled from the STS Benchmark vocabulary; say so when quoting),
runs `isbert encode` on it in a subprocess, samples the child's resident memory, and checks that the output
has one row per line. Also measures the same command on a file 10x smaller, so the table shows whether memory
grows with the input (it should not).

    python benchmarks/encode_large.py --lines 1000000 --backend onnx

Writes benchmarks/results/encode_large.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def vocabulary(data_dir: Path) -> list[str]:
    words: set[str] = set()
    path = data_dir / "sts" / "STSBenchmark" / "sts-test.csv"
    for line in path.read_text(encoding="utf-8").splitlines():
        for sentence in line.split("\t")[5:7]:
            words.update(word.strip(".,!?\"'()").lower() for word in sentence.split())
    return sorted(word for word in words if word.isalpha())


def write_corpus(path: Path, lines: int, words: list[str], seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(lines):
            handle.write(" ".join(rng.choices(words, k=rng.randint(4, 14))).capitalize() + ".\n")


def run_encode(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of the command, sampling /proc every 50 ms."""
    start = time.perf_counter()
    peak_kib = 0
    # stderr goes to a file, not a pipe: a chatty child can never block on it.
    with tempfile.TemporaryFile(mode="w+") as errors:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, text=True)
        status = Path(f"/proc/{process.pid}/status")
        while process.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak_kib = max(peak_kib, int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.05)
        if process.wait() != 0:
            errors.seek(0)
            raise SystemExit(f"isbert encode failed:\n{errors.read()[-2000:]}")
    return time.perf_counter() - start, peak_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="offline-minilm")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("torch", "onnx"), default="onnx")
    parser.add_argument("--batch-size", type=int, default=64)
    default_data = os.environ.get("ISBERT_DATA_DIR", str(HERE.parent.parent / "shared" / "data"))
    parser.add_argument("--data-dir", default=default_data)
    parser.add_argument("--output", default=str(HERE / "results" / "encode_large"))
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    words = vocabulary(Path(args.data_dir))
    isbert_cli = [sys.executable, "-m", "isbert"]
    rows = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        model = args.model
        if args.backend == "onnx":
            subprocess.run([*isbert_cli, "export", args.model, "--output", str(scratch / "onnx")], check=True)
            model = str(scratch / "onnx")
        for lines in (args.lines // 10, args.lines):
            corpus = scratch / f"corpus-{lines}.txt"
            write_corpus(corpus, lines, words)
            output = scratch / f"embeddings-{lines}.npy"
            command = [*isbert_cli, "encode", model, "-i", str(corpus), "-o", str(output), "--no-progress"]
            command += ["--backend", args.backend, "--batch-size", str(args.batch_size)]
            seconds, peak = run_encode(command)
            matrix = np.load(output, mmap_mode="r")
            assert matrix.shape[0] == lines, (matrix.shape, lines)
            rows.append(
                {
                    "lines": lines,
                    "seconds": seconds,
                    "sentences_per_s": lines / seconds,
                    "peak_rss_mib": peak,
                    "output_mib": output.stat().st_size / 2**20,
                }
            )
            print(json.dumps(rows[-1]))
    result = {
        "model": args.model,
        "backend": args.backend,
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs",
        "corpus": "synthetic: 4-14 words drawn from the STS Benchmark test vocabulary",
        "rows": rows,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines_md = [
        f"`isbert encode` ({args.backend}) of {args.model} on synthetic one-sentence-per-line files.",
        "",
        "| lines | wall time (s) | sentences/s | peak RSS (MiB) | output (MiB) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines_md.append(
            f"| {row['lines']:,} | {row['seconds']:.0f} | {row['sentences_per_s']:.0f} | "
            f"{row['peak_rss_mib']:.0f} | {row['output_mib']:.0f} |"
        )
    output.with_suffix(".md").write_text("\n".join(lines_md) + "\n", encoding="utf-8")
    print("\n".join(lines_md))


if __name__ == "__main__":
    main()
