"""Training-step and loss speed: isbert against a straightforward implementation of the released code's approach.

The released IS-BERT code (a 2020 fork of sentence-transformers) convolves padding inside its CNN windows
(`isbert.released`), gathers each sentence's token features with a Python list comprehension, builds the
positive/negative masks with Python loops over tokens, and scores every (token, sentence) pair with the JSD
estimator. `ReleasedApproachLoss` below re-implements that approach (on the CPU, where the original hard-codes CUDA);
isbert uses its CNN head and the vectorized loss. Both run on the same encoder weights, the same batches, the same
thread count, alternating round by round; the ratios are medians measured in this one run.

    python benchmarks/training_step.py --model offline-minilm --data-dir ../shared/data --threads 2
    python benchmarks/training_step.py --model bert-base-uncased --device cuda --output /tmp/training_step_gpu

Writes benchmarks/results/training_step.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent


class ReleasedApproachLoss(nn.Module):
    """JSD local-global loss computed the released code's way: per-sentence slicing and loop-built masks."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, sentence_features: list[dict[str, torch.Tensor]], labels: torch.Tensor | None = None):
        out = self.model(sentence_features[0])
        return released_loss(out["token_embeddings"], out["attention_mask"], out["sentence_embedding"])


def released_loss(tokens: torch.Tensor, attention_mask: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
    lengths = attention_mask.sum(1).clamp(min=1).cpu().numpy()
    local = torch.cat([tokens[i][: lengths[i]] for i in range(len(lengths))], dim=0)
    total, batch = int(lengths.sum()), len(lengths)
    positive = torch.zeros((total, batch), device=tokens.device)
    negative = torch.ones((total, batch), device=tokens.device)
    row = 0
    for index, length in enumerate(lengths):
        for token in range(row, row + int(length)):
            positive[token][index] = 1.0
            negative[token][index] = 0.0
        row += int(length)
    scores = local @ sentence.t()
    log2 = math.log(2.0)
    e_pos = (log2 - F.softplus(-(scores * positive))).sum() / total
    e_neg = (F.softplus(-(scores * negative)) + scores * negative - log2).sum() / (total * (batch - 1))
    return e_neg - e_pos


def corpus(data_dir: Path, count: int) -> list[str]:
    path = data_dir / "unlabeled" / "nli_sentences.snli_dev_test.txt"
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][:count]


def build_models(model_name: str, device: str):
    import isbert
    from isbert.released import released_model

    torch.manual_seed(0)
    ours = isbert.build(model_name, activation="none", device=device)
    return ours, released_model(ours).to(device)


def time_steps(model, loss: nn.Module, batches: list[list[str]], bf16: bool = False) -> float:
    """Seconds per training step (forward, backward, AdamW step), after one warm-up step.

    ``bf16``: forward and loss under CPU bfloat16 autocast (``isbert train --precision bf16``); weights, gradients
    and the optimizer stay fp32.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-6, eps=1e-7)
    model.train()

    device = model.device

    def step(texts: list[str]) -> None:
        features = to_device(model.preprocess(texts), device)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            value = loss([features], None)
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    step(batches[0])
    synchronize(device)
    start = time.perf_counter()
    for texts in batches:
        step(texts)
    synchronize(device)
    return (time.perf_counter() - start) / len(batches)


def to_device(features: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_loss(function, inputs, repeats: int) -> float:
    function(*inputs)
    start = time.perf_counter()
    for _ in range(repeats):
        function(*inputs).item()
    return (time.perf_counter() - start) / repeats


def common_arguments(description: str | None) -> argparse.ArgumentParser:
    """The options both training benchmarks take: model, data, threads and device."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="offline-minilm")
    parser.add_argument(
        "--data-dir", default=os.environ.get("ISBERT_DATA_DIR", str(HERE.parent.parent / "shared" / "data"))
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bf16 rows then use CUDA autocast)")
    return parser


def main() -> None:
    parser = common_arguments(__doc__)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round and batch size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-bf16", dest="bf16", action="store_false", help="skip the bf16-autocast rows (CPUs without bf16 support)"
    )
    parser.add_argument("--output", default=str(HERE / "results" / "training_step"))
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    torch.set_num_threads(args.threads)
    from isbert.cli import _quiet_libraries
    from isbert.losses import MutualInformationLoss, mutual_information_loss

    _quiet_libraries()
    sentences = corpus(Path(args.data_dir), 64 * args.steps * 2)
    ours, released = build_models(args.model, args.device)
    rows = []
    for batch_size in (32, 64):
        batches = [sentences[i : i + batch_size] for i in range(0, batch_size * args.steps, batch_size)]
        ours_times, bf16_times, released_times = [], [], []
        for _ in range(args.rounds):
            ours_times.append(time_steps(ours, MutualInformationLoss(ours), batches))
            if args.bf16:
                bf16_times.append(time_steps(ours, MutualInformationLoss(ours), batches, bf16=True))
            released_times.append(time_steps(released, ReleasedApproachLoss(released), batches))
        released_s = statistics.median(released_times)
        for label, times in (("fp32", ours_times), ("bf16 autocast", bf16_times)):
            if times:
                ours_s = statistics.median(times)
                rows.append(
                    {
                        "what": f"training step, batch {batch_size}, isbert {label}",
                        "isbert_sentences_per_s": batch_size / ours_s,
                        "released_sentences_per_s": batch_size / released_s,
                        "speedup": released_s / ours_s,
                    }
                )

    # The loss alone, on the same fixed model outputs (batch 64), forward only.
    with torch.no_grad():
        ours.eval()
        out = ours(to_device(ours.preprocess(sentences[:64]), ours.device))
        tokens, mask, sentence = out["token_embeddings"], out["attention_mask"], out["sentence_embedding"]
    ours_loss, released_loss_s = [], []
    for _ in range(args.rounds):
        ours_loss.append(time_loss(mutual_information_loss, (tokens, mask, sentence), 50))
        released_loss_s.append(time_loss(released_loss, (tokens, mask, sentence), 5))
    agree = abs(mutual_information_loss(tokens, mask, sentence).item() - released_loss(tokens, mask, sentence).item())
    rows.append(
        {
            "what": "JSD loss alone, batch 64",
            "isbert_ms": 1000 * statistics.median(ours_loss),
            "released_ms": 1000 * statistics.median(released_loss_s),
            "speedup": statistics.median(released_loss_s) / statistics.median(ours_loss),
            "absolute_difference_of_values": agree,
        }
    )
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {args.threads} threads"
    result = {
        "model": args.model, "device": where, "threads": args.threads, "rounds": args.rounds, "steps": args.steps,
        "rows": rows,
    }  # fmt: skip
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"{args.model}, {where}, median of {args.rounds} alternating rounds "
        f"({args.steps} steps each); released approach = released CNN + loop-built masks, fp32, same device.",
        "",
        "| measurement | isbert | released approach | speed-up |",
        "|---|---|---|---|",
    ]
    for row in rows[:-1]:
        lines.append(
            f"| {row['what']} | {row['isbert_sentences_per_s']:.1f} sentences/s | "
            f"{row['released_sentences_per_s']:.1f} sentences/s | {row['speedup']:.2f}x |"
        )
    loss_row = rows[-1]
    lines.append(
        f"| {loss_row['what']} | {loss_row['isbert_ms']:.2f} ms | {loss_row['released_ms']:.2f} ms | "
        f"{loss_row['speedup']:.0f}x |"
    )
    output.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
