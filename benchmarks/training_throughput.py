"""End-to-end training throughput: ``isbert train`` itself against a plain loop doing the released code's approach.

isbert's side is :func:`isbert.training.train` as the CLI calls it (corpus streamed into Arrow, its batch sampler,
sentence-transformers' collation, the Trainer, isbert's callbacks, logging); it is timed from the end of its first
step to the end of its last, so data loading, collation, callbacks and logging between steps count, and the set-up
and the final save do not; its checkpoint writes (five per run by default, here every few steps) are timed apart and
reported as their share of a default one-epoch run. The released approach is a plain loop: the released CNN (padding
inside the windows), the loop-built JSD masks (``training_step.ReleasedApproachLoss``), random batches padded to their
longest sentence, AdamW and a linear warm-up, fp32. Both read the same corpus; with ``--batching random`` isbert's
batches are the very batches the plain loop trains on. Configurations alternate round by round; each ratio is of
medians in this one run.

    python benchmarks/training_throughput.py --data-dir ../shared/data --threads 2
    python benchmarks/training_throughput.py --device cuda --model /tmp/bert-base-random --output /tmp/tt_gpu

Writes benchmarks/results/training_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback, get_linear_schedule_with_warmup

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from training_step import ReleasedApproachLoss, build_models, common_arguments, synchronize, to_device  # noqa: E402

CORPUS = Path("unlabeled") / "nli_sentences.snli_dev_test.txt"


class StepClock(TrainerCallback):
    """The time at the end of every training step, and how long each checkpoint write after a step took."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.saves: list[float] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.ends.append(time.perf_counter())

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if len(self.ends) < state.max_steps:  # the last step's save lies outside the timed window
            self.saves.append(time.perf_counter() - self.ends[-1])

    def seconds_per_step(self) -> float:
        """After the first step, checkpoint writes excluded: a run amortizes its ~5 over hundreds of steps."""
        return (self.ends[-1] - self.ends[0] - sum(self.saves)) / (len(self.ends) - 1)


def isbert_train(corpus: Path, model: str, steps: int, batch: int, device: str, **settings: Any) -> StepClock:
    """``isbert train`` for ``steps`` timed steps (after a first, untimed one) with the run's default checkpoints."""
    from isbert.training import train

    clock = StepClock()
    with tempfile.TemporaryDirectory(prefix="isbert-throughput-") as folder:
        train(
            model=model, corpus=[str(corpus)], output=folder, max_steps=steps + 1, batch_size=batch,
            heldout_size=0, show_progress=False, device=device, callbacks=[clock], **settings,
        )  # fmt: skip
    return clock


def released_loop(model: Any, texts: list[str], batches: list[list[int]]) -> float:
    """Seconds per step of the plain loop after its first step: tokenize, forward, loss, backward, clip, AdamW."""
    loss = ReleasedApproachLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-6, eps=1e-7, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, max(1, len(batches) // 10), len(batches))
    model.train()
    ends = []
    for batch in batches:
        features = to_device(model.preprocess([texts[i] for i in batch]), model.device)
        value = loss([features], None)
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize(model.device)
        ends.append(time.perf_counter())
    return (ends[-1] - ends[0]) / (len(ends) - 1)


CONFIGS = {
    "fp32, random batches": {"precision": "fp32", "batching": "random"},
    "fp32, length-grouped": {"precision": "fp32", "batching": "length"},
    "bf16, random batches": {"precision": "bf16", "batching": "random"},
    "bf16, length-grouped": {"precision": "bf16", "batching": "length"},
    "defaults": {},
}


def measure(args: argparse.Namespace) -> tuple[dict[str, list[float]], list[float]]:
    from isbert.training.sampler import EpochSeededBatchSampler

    corpus = Path(args.data_dir) / CORPUS
    texts = [line.strip() for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    sampler = EpochSeededBatchSampler(texts, batch_size=args.batch_size, drop_last=True, seed=42)
    batches = sampler.batches()[: args.steps + 1]  # what isbert train's random batches are at seed 42
    _, released = build_models(args.model, args.device)
    times: dict[str, list[float]] = {"released approach": [], **{name: [] for name in CONFIGS}}
    saves: list[float] = []
    for round_index in range(args.rounds):
        times["released approach"].append(released_loop(released, texts, batches))
        for name, settings in CONFIGS.items():
            if args.no_bf16 and settings.get("precision") == "bf16":
                continue
            clock = isbert_train(corpus, args.model, args.steps, args.batch_size, args.device, **settings)
            times[name].append(clock.seconds_per_step())
            saves.extend(clock.saves)
        print(f"round {round_index + 1}: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items() if v))
    return {name: values for name, values in times.items() if values}, saves


def main() -> None:
    parser = common_arguments(__doc__)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per configuration and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 rows (hardware without bf16)")
    parser.add_argument("--output", default=str(HERE / "results" / "training_throughput"))
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the .json, measure nothing")
    args = parser.parse_args()
    output = Path(args.output)
    if args.render_only:
        result = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))
    else:
        result = run(args)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    text = render(result)
    output.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text, end="")


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    torch.set_num_threads(args.threads)
    from isbert.cli import _quiet_libraries
    from isbert.training.config import TrainConfig
    from isbert.training.precision import resolve_precision

    _quiet_libraries()
    times, saves = measure(args)
    defaults = f"isbert train defaults ({TrainConfig().batching} batches, precision auto = " + (
        resolve_precision("auto", args.device.startswith("cuda")) + ")"
    )
    rows = [
        {"what": name if name != "defaults" else defaults, "seconds_per_step": values} for name, values in times.items()
    ]
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {args.threads} threads"
    return {"model": args.model, "device": where, "batch_size": args.batch_size, "steps": args.steps,
            "rounds": args.rounds, "load_average_1min_at_end": os.getloadavg()[0], "rows": rows,
            "checkpoint_seconds": saves, "steps_per_epoch": steps_per_epoch(args)}  # fmt: skip


def steps_per_epoch(args: argparse.Namespace) -> int:
    corpus = Path(args.data_dir) / CORPUS
    return sum(1 for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()) // args.batch_size


def render(result: dict[str, Any]) -> str:
    """The table: medians over rounds, and the spread of the per-round ratios (each round's pair ran back to back)."""
    released = result["rows"][0]["seconds_per_step"]
    lines = [
        f"{result['model']}, {result['device']}, batch {result['batch_size']}, SNLI dev+test sentences; "
        f"{result['rounds']} alternating rounds of {result['steps']} timed steps (1-min load average at the end: "
        f"{result['load_average_1min_at_end']:.1f}). isbert = `isbert train` in-process (data path, sampler, "
        "collation, callbacks, logging included); released approach = plain loop, released CNN, loop-built JSD masks, "
        "random batches padded to the longest, fp32.",
        "",
        "| training | sentences/s (median) | vs released approach (ratio of medians) | per-round ratios |",
        "|---|---:|---:|---|",
    ]
    for row in result["rows"]:
        seconds = row["seconds_per_step"]
        ratios = ", ".join(f"{r / s:.2f}" for r, s in zip(released, seconds, strict=False))
        lines.append(
            f"| {row['what']} | {result['batch_size'] / statistics.median(seconds):.1f} | "
            f"{statistics.median(released) / statistics.median(seconds):.2f}x | {ratios} |"
        )
    return "\n".join(lines) + "\n" + _checkpoint_note(result)


def _checkpoint_note(result: dict[str, Any]) -> str:
    """What the excluded checkpoint writes cost a default run (about five per run, EVALUATIONS_PER_RUN)."""
    if not result.get("checkpoint_seconds"):
        return ""
    from isbert.training.run import EVALUATIONS_PER_RUN

    save = statistics.median(result["checkpoint_seconds"])
    step = statistics.median(result["rows"][-1]["seconds_per_step"])
    steps = result["steps_per_epoch"]
    share = 100 * EVALUATIONS_PER_RUN * save / (steps * step + EVALUATIONS_PER_RUN * save)
    return (
        f"\nTimed steps exclude checkpoint writes (model, optimizer state, RNG): each took {save:.1f} s (median of "
        f"{len(result['checkpoint_seconds'])}); a default one-epoch run of this corpus ({steps} steps, "
        f"{EVALUATIONS_PER_RUN} checkpoints) spends {share:.1f}% of its training time writing them.\n"
    )


if __name__ == "__main__":
    main()
