"""``isbert train``: the command-line face of :func:`isbert.training.train`."""

from __future__ import annotations

import argparse
import sys

from isbert.extras import require
from isbert.training.config import DefaultsOnceFormatter, add_arguments, from_args


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train an IS-BERT model on unlabeled sentences",
        formatter_class=DefaultsOnceFormatter,
        description=(
            "Train IS-BERT (Zhang et al., EMNLP 2020) on unlabeled sentences: maximize the mutual information "
            "between each sentence vector and its local n-gram features. The corpus is streamed into an Arrow file "
            "(any size), a seeded slice is held out for the label-free model-selection criterion, and the model is "
            "evaluated at step 0, every --eval-steps and at the end; the best evaluation's model is saved into "
            "OUTPUT (isbert.load(OUTPUT)), with checkpoints in OUTPUT/checkpoints, the log in "
            "OUTPUT/training_log.jsonl and the curves in OUTPUT/training_curves.png. Multi-GPU / multi-node: "
            "launch the same command with torchrun. Defaults follow the released IS-BERT code (docs/training.md)."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    require("train", "datasets", "accelerate", "matplotlib", what="isbert train")
    from isbert.training.result import TrainingInterrupted
    from isbert.training.run import train

    try:
        result = train(from_args(args))
    except TrainingInterrupted as error:
        print(f"isbert train: {error}", file=sys.stderr)
        return 130
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(result.summary())
    return 0
