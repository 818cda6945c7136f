"""SIF concatenated with IS-BERT's SIF-weighted CNN features on GloVe: does the pair beat SIF alone on STS?

Fits SIF on GloVe 6B 50-d as the `sif-zipf-a1e-4` row of experiments/glove-strong-baselines.toml (Zipf p(w),
a = 1e-4, first common direction removed, fitted on the unlabeled SNLI dev+test sentences), trains (or reads, with
--model) its `is-sif-input-zipf` IS-BERT row with seed 42 (linear CNN reading SIF-weighted vectors, vectors frozen,
600 steps of batch 32, random batches, lr 1e-3, the step selected on STSb dev) on the same sentences, then scores
with the evaluation harness on the 7 STS tasks: SIF alone, IS-BERT alone, IS-BERT with its first (uncentred) common
direction removed, and the concatenation [sif / |sif|, w * cnn / |cnn|] for w = 0.5, 1, 2, where cnn is IS-BERT's
vector with that direction removed. The direction is fitted on the unlabeled corpus only, never on a test set; the
concatenation itself gets no further removal (SIF's part already has its own).

    python benchmarks/sif_concat.py --data-dir ../shared/data [--model RUN_FOLDER]

Writes benchmarks/results/sif_concat.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess  # nosec B404 # runs the isbert CLI and git with fixed arguments
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
CORPUS = Path("unlabeled") / "nli_sentences.snli_dev_test.txt"
STS_TASKS = ("STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICK-R")
WEIGHTS = (0.5, 1.0, 2.0)
SEED = 42
TRAIN_ARGS = (
    "--model", "offline-glove", "--train-parts", "head", "--activation", "none", "--lr", "1e-3",
    "--batch-size", "32", "--max-steps", "600", "--eval-steps", "100", "--save-steps", "600", "--dev", "stsb",
    "--batching", "random", "--word-weights", "sif-input", "--sif-probabilities", "zipf", "--sif-a", "1e-4",
    "--seed", str(SEED),
)  # fmt: skip
"""The `is-sif-input-zipf` row: its own keys over the experiment's [defaults]."""


class Cached:
    """A model's ``encode``, each distinct sentence encoded once (the rows below share the same two models)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.vectors: dict[str, np.ndarray] = {}

    def __call__(self, sentences: list[str]) -> np.ndarray:
        missing = [s for s in dict.fromkeys(sentences) if s not in self.vectors]
        if missing:
            encoded = self.model.encode(missing, batch_size=256, convert_to_numpy=True, show_progress_bar=False)
            self.vectors.update(zip(missing, np.asarray(encoded, dtype=np.float64), strict=True))
        return np.stack([self.vectors[s] for s in sentences])


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class Combined:
    """A sentence-transformers-style encoder: [sif / |sif|, weight * cnn' / |cnn'|], cnn' = cnn @ removal; without
    ``sif`` only the (unnormalised) cnn'."""

    def __init__(self, sif: Cached | None, cnn: Cached, removal: np.ndarray, weight: float = 1.0) -> None:
        self.sif, self.cnn, self.removal, self.weight = sif, cnn, removal, weight

    def encode(self, sentences: list[str], **kwargs: Any) -> np.ndarray:
        cnn = self.cnn(sentences) @ self.removal
        if self.sif is None:
            return cnn.astype(np.float32)
        return np.hstack([unit(self.sif(sentences)), self.weight * unit(cnn)]).astype(np.float32)


def train_isbert(corpus: Path, data_dir: Path, output: Path) -> Path:
    """Train the `is-sif-input-zipf` row with the isbert CLI; the run folder holds the selected model."""
    command = [sys.executable, "-m", "isbert", "train", *TRAIN_ARGS, "--input", str(corpus)]
    command += ["--data-dir", str(data_dir), "--output", str(output), "--no-progress"]
    subprocess.run(command, check=True)  # nosec B603 # the interpreter running this script, fixed arguments
    return output


def common_removal(cnn: Cached, corpus: Path) -> tuple[np.ndarray, float]:
    """``I - u u^T`` for the first uncentred principal direction u of the corpus' vectors, and u's energy share."""
    from isbert import sif

    sentences = [line.strip() for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    directions = sif.principal_directions(cnn(sentences), 1)
    return sif.removal_map(directions.vectors), directions.explained


def score(model: Any, name: str, data_dir: Path) -> dict[str, float]:
    """Cosine Spearman x100 on the 7 STS tasks from the project's harness, and their mean."""
    from isbert.evaluation import evaluate

    results = evaluate(model, "sts", data_dir, show_progress=False, model_name=name)
    scores = {task: float(results[task]["spearman"]) for task in STS_TASKS}
    return {**scores, "avg": sum(scores.values()) / len(STS_TASKS)}


def measure(run_folder: Path, corpus: Path, data_dir: Path) -> tuple[dict[str, dict[str, float]], float]:
    """The table's rows (name -> scores) and the removed direction's share of the CNN vectors' energy."""
    import isbert
    from isbert.sif import SifSettings
    from isbert.sif_model import fit_baseline

    sif_settings = SifSettings("sif", a=1e-4, probabilities="zipf")
    sif = Cached(fit_baseline("offline-glove", [str(corpus)], sif_settings, max_seq_length=128, device="cpu").model)
    cnn = Cached(isbert.load(str(run_folder), device="cpu"))
    removal, share = common_removal(cnn, corpus)
    models: dict[str, Any] = {
        "SIF alone (Zipf p(w), a = 1e-4)": sif.model,
        "IS-BERT alone (is-sif-input-zipf)": cnn.model,
        "IS-BERT, common direction removed": Combined(None, cnn, removal),
        **{f"concat, CNN part weighted {w:g}": Combined(sif, cnn, removal, w) for w in WEIGHTS},
    }
    rows = {name: score(model, name, data_dir) for name, model in models.items()}
    return rows, share


def git_commit() -> str:
    command = ["git", "rev-parse", "--short", "HEAD"]
    return subprocess.run(command, capture_output=True, text=True, check=True, cwd=HERE).stdout.strip()  # nosec B603 B607


def render(rows: dict[str, dict[str, float]], meta: dict[str, Any]) -> str:
    header = ["row", *STS_TASKS, "avg"]
    lines = [
        "# SIF concatenated with IS-BERT's SIF-weighted CNN features (GloVe 6B 50-d)",
        "",
        f"Command: `{meta['command']}`; seed {meta['seed']}; commit {meta['commit']}; wall time "
        f"{meta['wall_minutes']:.1f} min.",
        f"Machine: {meta['machine']['cpu']}, {meta['machine']['cpu_count']} CPUs, torch {meta['machine']['torch']}.",
        f"IS-BERT: {meta['model']} (the model selected on STSb dev: step {meta['selected_step']}).",
        "",
        "Cosine Spearman x100 from the evaluation harness (SentEval text); avg = mean of the 7 tasks, as in",
        "experiments/results/glove-backbone.md. concat = [sif/|sif|, w * cnn/|cnn|], cnn = IS-BERT's vector with its",
        "first uncentred principal direction removed (fitted on the unlabeled SNLI dev+test sentences only; "
        f"{100 * meta['removed_share']:.1f}% of",
        "their energy); no direction is removed from the concatenation itself (SIF's part has its own removed).",
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
        *(f"| {name} | " + " | ".join(f"{s[t]:.2f}" for t in (*STS_TASKS, "avg")) + " |" for name, s in rows.items()),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("ISBERT_DATA_DIR", str(HERE.parent.parent / "shared" / "data"))
    parser.add_argument("--data-dir", type=Path, default=Path(default_data))
    parser.add_argument("--model", type=Path, help="an `is-sif-input-zipf` run folder already trained (default: train)")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "sif_concat")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    from isbert.atomic import write_json_atomic, write_text_atomic
    from isbert.experiments.runner import machine_info
    from isbert.training.run_folder import SUMMARY_FILE

    started = time.perf_counter()
    corpus = args.data_dir / CORPUS
    with tempfile.TemporaryDirectory() as scratch:
        run_folder = args.model or train_isbert(corpus, args.data_dir, Path(scratch) / "is-sif-input-zipf")
        step = json.loads((run_folder / SUMMARY_FILE).read_text(encoding="utf-8"))["best"]["step"]
        rows, share = measure(run_folder, corpus, args.data_dir)
    meta = {
        "command": " ".join(["python", "benchmarks/sif_concat.py", *sys.argv[1:]]),
        "seed": SEED,
        "commit": git_commit(),
        "machine": machine_info("cpu"),
        "model": f"run folder {args.model}" if args.model else f"trained here, isbert train {' '.join(TRAIN_ARGS)}",
        "selected_step": step,
        "removed_share": share,
        "wall_minutes": (time.perf_counter() - started) / 60,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.output.with_suffix(".json"), {**meta, "rows": rows})
    text = render(rows, meta)
    write_text_atomic(args.output.with_suffix(".md"), text)
    print(text)


if __name__ == "__main__":
    main()
