"""Why SIF beats IS-BERT on static word vectors: the common direction and the per-word weights, measured.

On GloVe 6B 50-d, average vectors share one dominant direction (cosine of two random sentences is about 0.9), which
SIF removes (Arora et al., 2017) after down-weighting frequent words. This prints, for average GloVe, an IS-BERT
model trained here (linear CNN, vectors frozen, 300 steps of batch 32 on the unlabeled SNLI sentences, seed 42), SIF's
weights alone and SIF whole: the share of the sentence vectors' energy along their first direction and the mean
cosine of random sentence pairs (3,000 sentences sampled from the corpus, seed 0).

    python benchmarks/common_direction.py --data-dir ../shared/data

Writes benchmarks/results/common_direction.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def measure(model, sample: list[str], rng: np.random.Generator) -> tuple[float, float]:
    x = model.encode(sample, batch_size=256)
    energy = np.linalg.svd(x, compute_uv=False) ** 2
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    i, j = rng.integers(0, len(x), len(x)), rng.integers(0, len(x), len(x))
    return float(energy[0] / energy.sum()), float((unit[i] * unit[j]).sum(1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--output", type=Path, default=HERE / "results" / "common_direction.md")
    args = parser.parse_args()

    import isbert
    from isbert import sif
    from isbert.sif_model import fit_baseline
    from isbert.training import train

    corpus = str(args.data_dir / "unlabeled" / "nli_sentences.snli_dev_test.txt")
    zipf = {"a": 1e-4, "probabilities": "zipf"}
    with tempfile.TemporaryDirectory() as tmp:
        settings = {"train_parts": "head", "activation": "none", "lr": 1e-3, "max_steps": 300, "batch_size": 32}
        train(model="offline-glove", corpus=[corpus], output=tmp, overwrite=True, batching="random", seed=42,
              show_progress=False, keep_checkpoints=0, **settings)  # fmt: skip
        models = {
            "average GloVe": isbert.load("offline-glove", device="cpu"),
            "IS-BERT (linear CNN, 300 steps)": isbert.load(tmp, device="cpu"),
            "SIF weights only (Zipf p(w), a = 1e-4)": fit_baseline(
                "offline-glove", corpus, sif.SifSettings("sif", components=0, **zipf)
            ).model,
            "SIF (the same, first direction removed)": fit_baseline(
                "offline-glove", corpus, sif.SifSettings("sif", **zipf)
            ).model,
        }
        sentences = [line.strip() for line in Path(corpus).read_text(encoding="utf-8").splitlines() if line.strip()]
        rng = np.random.default_rng(0)
        sample = [sentences[i] for i in rng.choice(len(sentences), 3000, replace=False)]
        rows = [(name, *measure(model, sample, rng)) for name, model in models.items()]
    lines = [
        "GloVe 6B 50-d, 3,000 unlabeled SNLI sentences (`python benchmarks/common_direction.py`).",
        "",
        "| model | first direction's share of the energy | mean cosine of random sentence pairs |",
        "|---|---:|---:|",
        *(f"| {name} | {100 * share:.1f}% | {cosine:.3f} |" for name, share, cosine in rows),
    ]
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
