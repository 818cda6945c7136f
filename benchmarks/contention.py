"""isbert on a busy machine: throughput idle and beside busy processes, with isbert's thread policy and without it.

Each measurement is a fresh subprocess: `isbert train` on the README quickstart (GloVe, vectors frozen, no
evaluation) reporting its sentences/s in training steps, and encoding (torch) of 2,048 unlabeled SNLI sentences,
timed after the model load. "busy" starts N processes that spin on the CPU for the whole measurement. Variants:
`isbert` (its thread policy: src/isbert/threads.py) and `torch defaults` (the same command with
ISBERT_THREAD_POLICY=torch: nothing set, torch's own one thread per CPU and spinning waits).
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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ISBERT = [sys.executable, "-m", "isbert"]
VARIANTS = {"isbert": {}, "torch defaults": {"ISBERT_THREAD_POLICY": "torch"}}


def spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def environment(variant: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for key in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "ISBERT_THREADS", "ISBERT_THREAD_POLICY"):
        env.pop(key, None)
    return {**env, **VARIANTS[variant]}


def train_speed(data_dir: Path, variant: str, steps: int) -> float:
    corpus = data_dir / "unlabeled" / "nli_sentences.snli_dev_test.txt"
    with tempfile.TemporaryDirectory() as out:
        command = [*ISBERT, "train", "--model", "offline-glove", "--train-parts", "head", "--lr", "1e-3", "--input",
                   str(corpus), "--output", out, "--overwrite", "--max-steps", str(steps), "--eval-steps",
                   str(steps), "--heldout-size", "0", "--keep-checkpoints", "0", "--no-progress"]  # fmt: skip
        done = subprocess.run(command, env=environment(variant), capture_output=True, text=True, check=True)
    found = re.search(r"\(([\d.]+) sentences/s in training steps", done.stdout + done.stderr)
    if not found:
        raise RuntimeError(f"no speed in the output of {' '.join(command)}:\n{done.stdout}\n{done.stderr}")
    return float(found.group(1))


def encode_speed(data_dir: Path, variant: str, model: str) -> float:
    corpus = data_dir / "unlabeled" / "nli_sentences.snli_dev_test.txt"
    texts = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()][:2048]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "texts.txt"
        source.write_text("\n".join(texts) + "\n", encoding="utf-8")
        code = (  # as the command line does: the environment first, then torch
            "import sys, time; from isbert.threads import apply_to_torch, prepare_environment; "
            "plan = prepare_environment(); import isbert; apply_to_torch(plan); "
            "m = isbert.load(sys.argv[1], device='cpu'); "
            "t = [l for l in open(sys.argv[2]) if l.strip()]; m.encode(t[:64]); s = time.perf_counter(); "
            "m.encode(t, batch_size=64); print(len(t) / (time.perf_counter() - s))"
        )
        command = [sys.executable, "-c", code, model, str(source)]
        done = subprocess.run(command, env=environment(variant), capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def measure(job: str, data_dir: Path, variant: str, busy: int, args: argparse.Namespace) -> float:
    stop_at = time.time() + 3600
    spinners = [multiprocessing.Process(target=spin, args=(stop_at,), daemon=True) for _ in range(busy)]
    for process in spinners:
        process.start()
    try:
        if job == "train (GloVe quickstart)":
            return train_speed(data_dir, variant, args.steps)
        return encode_speed(data_dir, variant, args.encode_model)
    finally:
        for process in spinners:
            process.terminate()
            process.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2], help="busy processes per measurement")
    parser.add_argument("--encode-model", default="offline-minilm")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "contention")
    args = parser.parse_args()
    jobs = ["train (GloVe quickstart)", f"encode ({args.encode_model}, torch)"]
    speeds: dict[str, list[float]] = {}
    for round_ in range(args.rounds):
        for busy in args.busy:
            for job in jobs:
                for variant in VARIANTS if round_ % 2 == 0 else list(reversed(VARIANTS)):
                    value = measure(job, args.data_dir, variant, busy, args)
                    speeds.setdefault(f"{job}|{variant}|{busy}", []).append(value)
                    print(f"round {round_ + 1}: {job}, {variant}, {busy} busy: {value:.1f} sentences/s", flush=True)
    write(args, jobs, speeds)


def write(args: argparse.Namespace, jobs: list[str], speeds: dict[str, list[float]]) -> None:
    median = {key: statistics.median(values) for key, values in speeds.items()}
    lines = [
        f"{os.cpu_count()} CPUs; median of {args.rounds} alternating rounds; sentences/s (share of the same variant's "
        "idle speed); busy = processes spinning on the CPU during the measurement (`python benchmarks/contention.py`).",
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
    args.output.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args.output.with_suffix(".json").write_text(json.dumps({"speeds": speeds, "median": median}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
