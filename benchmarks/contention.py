"""isbert on a busy machine: throughput idle and beside busy processes, with isbert's thread policy and without it.

Each measurement is a fresh subprocess, timed after its model load: `isbert train` on the README quickstart (GloVe,
vectors frozen, no evaluation) and on the packaged MiniLM (all layers trained, 24 steps of batch 32), each reporting
its sentences/s in training steps; encoding 2,048 unlabeled SNLI sentences with the packaged MiniLM, on torch and on
its int8 ONNX export; and `isbert serve` answering 128 requests of 8 sentences from 4 client threads. "busy" starts
N processes that spin on the CPU for the whole measurement. Variants: `isbert` (its thread policy:
src/isbert/threads.py) and `torch defaults` (the same command with ISBERT_THREAD_POLICY=torch: nothing set, torch's
and onnxruntime's own one thread per CPU and spinning waits).
Loads and variants alternate round by round; medians of the rounds; every ratio is measured in this one run.

    python benchmarks/contention.py --data-dir ../shared/data --rounds 3

Writes benchmarks/results/contention.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ISBERT = [sys.executable, "-m", "isbert"]
VARIANTS = {"isbert": {}, "torch defaults": {"ISBERT_THREAD_POLICY": "torch"}}
ONE_THREAD = {"isbert, 1 thread (idle only)": {"ISBERT_THREADS": "1"}}
"""Measured idle only: the ceiling beside one busy process per two cores, whose fair share is one core."""


def spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def environment(variant: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for key in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "ISBERT_THREADS", "ISBERT_THREAD_POLICY"):
        env.pop(key, None)
    return {**env, **{**VARIANTS, **ONE_THREAD}[variant]}


GLOVE_QUICKSTART = ["--model", "offline-glove", "--train-parts", "head", "--lr", "1e-3"]
MINILM_ALL_LAYERS = ["--model", "offline-minilm"]


def train_speed(data_dir: Path, variant: str, model_args: list[str], steps: int) -> float:
    """Sentences/s in training steps, as `isbert train` reports them (no evaluation, no checkpoint)."""
    corpus = data_dir / "unlabeled" / "nli_sentences.snli_dev_test.txt"
    with tempfile.TemporaryDirectory() as out:
        command = [*ISBERT, "train", *model_args, "--input", str(corpus), "--output", out, "--overwrite",
                   "--max-steps", str(steps), "--eval-steps", str(steps), "--heldout-size", "0",
                   "--keep-checkpoints", "0", "--no-progress"]  # fmt: skip
        done = subprocess.run(command, env=environment(variant), capture_output=True, text=True, check=True)
    found = re.search(r"\(([\d.]+) sentences/s in training steps", done.stdout + done.stderr)
    if not found:
        raise RuntimeError(f"no speed in the output of {' '.join(command)}:\n{done.stdout}\n{done.stderr}")
    return float(found.group(1))


def serve_speed(data_dir: Path, variant: str, model: str) -> float:
    """Sentences/s answered by `isbert serve` (128 requests of 8 sentences, 4 client threads), after a warm-up."""
    corpus = data_dir / "unlabeled" / "nli_sentences.snli_dev_test.txt"
    texts = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()][:1024]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([*ISBERT, "serve", model, "--port", str(port)], env=environment(variant),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 300
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=5).read()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("isbert serve did not start") from None
                time.sleep(0.5)
        requests = [texts[i : i + 8] for i in range(0, len(texts), 8)]
        post(url, requests[0])
        start = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            answered = sum(pool.map(lambda batch: post(url, batch), requests))
        return answered / (time.perf_counter() - start)
    finally:
        server.terminate()
        server.wait(timeout=60)


def post(url: str, texts: list[str]) -> int:
    body = json.dumps({"texts": texts}).encode("utf-8")
    request = urllib.request.Request(f"{url}/embed", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as answer:  # nosec B310 # loopback, a URL made here
        return len(json.loads(answer.read())["embeddings"])


def encode_speed(data_dir: Path, variant: str, model: str, backend: str = "torch") -> float:
    corpus = data_dir / "unlabeled" / "nli_sentences.snli_dev_test.txt"
    texts = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()][:2048]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "texts.txt"
        source.write_text("\n".join(texts) + "\n", encoding="utf-8")
        code = (  # as the command line does: the environment first, then torch
            "import sys, time; from isbert.threads import apply_to_torch, prepare_environment; "
            "plan = prepare_environment(); import isbert; apply_to_torch(plan); "
            "m = isbert.load(sys.argv[1], device='cpu', backend=sys.argv[3]); "
            "t = [l for l in open(sys.argv[2]) if l.strip()]; m.encode(t[:64]); s = time.perf_counter(); "
            "m.encode(t, batch_size=64); print(len(t) / (time.perf_counter() - s))"
        )
        command = [sys.executable, "-c", code, model, str(source), backend]
        done = subprocess.run(command, env=environment(variant), capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def measure(job: str, data_dir: Path, variant: str, busy: int, args: argparse.Namespace) -> float:
    stop_at = time.time() + 3600
    spinners = [multiprocessing.Process(target=spin, args=(stop_at,), daemon=True) for _ in range(busy)]
    for process in spinners:
        process.start()
    try:
        return JOBS[job](data_dir, variant, args)
    finally:
        for process in spinners:
            process.terminate()
            process.join()


JOBS: dict[str, Callable[[Path, str, argparse.Namespace], float]] = {
    "train (GloVe quickstart)": lambda data, variant, args: train_speed(data, variant, GLOVE_QUICKSTART, args.steps),
    "train (offline-minilm)": lambda data, variant, args: train_speed(
        data, variant, MINILM_ALL_LAYERS, args.minilm_steps
    ),
    "encode (offline-minilm, torch)": lambda data, variant, args: encode_speed(data, variant, "offline-minilm"),
    "encode (offline-minilm, ONNX int8)": lambda data, variant, args: encode_speed(
        data, variant, str(args.onnx_folder), "onnx"
    ),
    "serve (offline-minilm, /embed)": lambda data, variant, args: serve_speed(data, variant, "offline-minilm"),
}
"""Each measured work, by its row name: the sentences/s of one fresh subprocess."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2], help="busy processes per measurement")
    parser.add_argument("--minilm-steps", type=int, default=24)
    parser.add_argument("--onnx-folder", type=Path, default=Path(tempfile.gettempdir()) / "isbert-contention-onnx")
    parser.add_argument("--only", nargs="+", default=[], help="only the jobs whose name holds one of these words")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "contention")
    args = parser.parse_args()
    jobs = [job for job in JOBS if not args.only or any(word in job for word in args.only)]
    if "encode (offline-minilm, ONNX int8)" in jobs and not args.onnx_folder.exists():
        subprocess.run([*ISBERT, "export", "offline-minilm", "-o", str(args.onnx_folder)], env=environment("isbert"),
                       check=True, capture_output=True)  # fmt: skip
    speeds: dict[str, list[float]] = {}
    for round_ in range(args.rounds):
        for busy in args.busy:
            for job in jobs:
                variants = [*VARIANTS, *(ONE_THREAD if busy == 0 else [])]
                for variant in variants if round_ % 2 == 0 else list(reversed(variants)):
                    value = measure(job, args.data_dir, variant, busy, args)
                    speeds.setdefault(f"{job}|{variant}|{busy}", []).append(value)
                    print(f"round {round_ + 1}: {job}, {variant}, {busy} busy: {value:.1f} sentences/s", flush=True)
    write(args, jobs, speeds)


def write(args: argparse.Namespace, jobs: list[str], speeds: dict[str, list[float]]) -> None:
    median = {key: statistics.median(values) for key, values in speeds.items()}
    lines = [
        f"{os.cpu_count()} CPUs; median of {args.rounds} alternating rounds; sentences/s (share of the same variant's "
        "idle speed); busy = processes spinning on the CPU during the measurement (`python benchmarks/contention.py`). "
        "The one-thread row is the ceiling beside one busy process: its fair share of two cores is one.",
        "",
        "| work | variant | " + " | ".join(f"{b} busy" for b in args.busy) + " |",
        "|---|---|" + "---:|" * len(args.busy),
    ]
    for job in jobs:
        for variant in VARIANTS:
            idle = median[f"{job}|{variant}|{args.busy[0]}"]
            cells = [f"{median[f'{job}|{variant}|{b}']:.1f} ({median[f'{job}|{variant}|{b}'] / idle:.0%})"
                     for b in args.busy]  # fmt: skip
            lines.append(f"| {job} | {variant} | " + " | ".join(cells) + " |")
        for variant in ONE_THREAD if 0 in args.busy else []:
            share = median[f"{job}|{variant}|0"] / median[f"{job}|isbert|0"]
            cells = [f"{median[f'{job}|{variant}|0']:.1f} ({share:.0%} of isbert idle)"] + ["" for _ in args.busy[1:]]
            lines.append(f"| {job} | {variant} | " + " | ".join(cells) + " |")
    args.output.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args.output.with_suffix(".json").write_text(json.dumps({"speeds": speeds, "median": median}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
