"""Write a random-weight BERT-base-shaped encoder folder (12 layers, hidden 768) for speed benchmarks only.

Speed does not depend on the weights, so where no pretrained BERT-base is at hand (no hub access) this stands in for
it in `training_step.py --device cuda`. The tokenizer is copied from a given folder (the packaged MiniLM uses the
bert-base-uncased vocabulary). Never use it for quality numbers.

    python benchmarks/random_encoder.py --tokenizer-from offline-minilm --output /tmp/bert-base-random
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer-from", required=True, help="a folder (or offline-minilm) holding a BERT tokenizer")
    parser.add_argument("--output", required=True)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    args = parser.parse_args()

    import torch
    from transformers import BertConfig, BertModel

    from isbert.model import resolve_model_name

    source = Path(resolve_model_name(args.tokenizer_from))
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, output / name)
    vocab_size = sum(1 for _ in (source / "vocab.txt").open(encoding="utf-8"))
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.hidden // 64,
        intermediate_size=4 * args.hidden,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(output, safe_serialization=True)
    print(f"random-weight encoder ({args.layers} layers, hidden {args.hidden}) written to {output}")


if __name__ == "__main__":
    main()
