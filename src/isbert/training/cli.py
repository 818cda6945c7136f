"""``isbert train``: the command-line face of :func:`isbert.training.train`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from isbert.cli_types import add_reader_arguments, non_negative_int, positive_float, positive_int


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train an IS-BERT model on unlabeled sentences",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
    parser.add_argument(
        "--model",
        default="offline-minilm",
        help="backbone: Hugging Face id, local folder, 'offline-minilm', 'offline-glove', or a saved isbert model",
    )
    parser.add_argument(
        "--corpus",
        nargs="+",
        required=True,
        metavar="FILE",
        help=".txt/.txt.gz (one sentence per line), .jsonl (--text-field) or .csv/.tsv (--column)",
    )
    parser.add_argument("--output", "-o", required=True, help="run folder (the selected model is saved in it)")
    data = parser.add_argument_group("corpus")
    add_reader_arguments(data)
    data.add_argument(
        "--dedup",
        action="store_true",
        help="keep only the first occurrence of each sentence (memory ~ number of distinct sentences)",
    )
    opt = parser.add_argument_group("optimization")
    opt.add_argument("--max-steps", type=positive_int, default=None, help="stop after N steps (overrides --epochs)")
    opt.add_argument("--epochs", type=positive_float, default=1.0, help="passes over the corpus")
    opt.add_argument("--batch-size", type=positive_int, default=32, help="sentences per step and device")
    opt.add_argument("--lr", type=positive_float, default=2e-6, help="AdamW peak learning rate")
    opt.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (not biases/LayerNorm)")
    opt.add_argument("--adam-epsilon", type=positive_float, default=1e-7, help="AdamW epsilon")
    opt.add_argument("--warmup-ratio", type=float, default=0.1, help="linear warm-up fraction, then --lr-scheduler")
    opt.add_argument(
        "--lr-scheduler", choices=("linear", "constant", "cosine"), default="linear", help="after the warm-up"
    )
    opt.add_argument("--max-grad-norm", type=positive_float, default=1.0, help="gradient clipping")
    opt.add_argument("--seed", type=int, default=42, help="seed for weights, data order, dropout and held-out slice")
    opt.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="auto = fp32 on CPU, bf16 (or fp16) mixed precision on GPU; bf16 on CPU = autocast",
    )
    opt.add_argument("--device", default=None, help="'cpu' to force the CPU (default: GPU when available)")
    arch = parser.add_argument_group("model")
    arch.add_argument(
        "--activation",
        choices=("none", "relu"),
        default="none",
        help="CNN activation: none (released code) or relu (paper)",
    )
    arch.add_argument(
        "--objective",
        choices=("is", "simcse", "is+simcse"),
        default="is",
        help="is: IS-BERT; simcse: unsupervised SimCSE (encoder + mean pooling, dropout twins, no CNN); "
        "is+simcse: both terms on the IS-BERT model",
    )
    arch.add_argument("--estimator", choices=("jsd", "infonce", "dv"), default="jsd", help="MI estimator")
    arch.add_argument(
        "--critic",
        choices=("dot", "cosine"),
        default="dot",
        help="IS critic: dot (paper) or cosine / --temperature",
    )
    arch.add_argument("--temperature", type=positive_float, default=1.0, help="temperature of the cosine critic")
    arch.add_argument(
        "--exclude-radius",
        type=non_negative_int,
        default=None,
        help="score each token against the mean of its sentence's local features more than R positions away "
        "(0 = all but itself) instead of its own sentence vector (default: the paper's positives)",
    )
    arch.add_argument("--simcse-temperature", type=positive_float, default=0.05, help="temperature of SimCSE")
    arch.add_argument(
        "--anchor",
        choices=("none", "distill", "l2sp"),
        default="none",
        help="keep a tuned encoder near its start: distill (relational distillation toward the frozen starting "
        "model) or l2sp (distance to the initial weights); weight --anchor-weight",
    )
    arch.add_argument("--anchor-weight", type=float, default=0.0, help="weight of --anchor (0 = off)")
    arch.add_argument(
        "--train-parts",
        choices=("all", "head", "head+embeddings"),
        default="all",
        help="what is trained: all, the CNN only (encoder frozen), or the CNN and the encoder's embedding layer",
    )
    arch.add_argument(
        "--encoder-layers",
        type=non_negative_int,
        default=None,
        help="keep only the encoder's first N transformer layers (0 = static token embeddings: a weak backbone)",
    )
    arch.add_argument("--max-seq-length", type=positive_int, default=128, help="tokens per sentence")
    arch.add_argument("--out-channels", type=positive_int, default=256, help="CNN filters per window size")
    sel = parser.add_argument_group("evaluation and model selection")
    sel.add_argument(
        "--dev",
        choices=("none", "stsb"),
        default="none",
        help="stsb: labeled STS Benchmark dev Spearman at every evaluation (uses labels)",
    )
    sel.add_argument("--data-dir", default=None, help="data folder for --dev stsb (default: $ISBERT_DATA_DIR)")
    sel.add_argument(
        "--select",
        choices=("stsb", "label-free"),
        default=None,
        help="criterion for the saved model (default: stsb with --dev stsb, else label-free)",
    )
    sel.add_argument(
        "--heldout-size",
        type=non_negative_int,
        default=None,
        help="held-out corpus sentences for the label-free criterion (default 1%% in 16..1000; 0 = off)",
    )
    sel.add_argument("--eval-steps", type=positive_int, default=250, help="evaluate (and checkpoint) every N steps")
    sel.add_argument("--eval-batch-size", type=positive_int, default=64, help="batch size for evaluation")
    ck = parser.add_argument_group("checkpoints and output")
    ck.add_argument(
        "--save-steps", type=positive_int, default=None, help="checkpoint every N steps (default: --eval-steps)"
    )
    ck.add_argument("--keep-checkpoints", type=positive_int, default=2, help="keep the last K checkpoints (+ best)")
    ck.add_argument("--logging-steps", type=positive_int, default=10, help="log the loss every N steps")
    ck.add_argument("--resume", action="store_true", help="continue the run in OUTPUT from its last checkpoint")
    ck.add_argument("--overwrite", action="store_true", help="delete the previous run in OUTPUT first")
    ck.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_train)


def config_from_args(args: argparse.Namespace) -> Any:
    from isbert.training.run import TrainConfig

    return TrainConfig(
        model=args.model, corpus=list(args.corpus), output=args.output, max_steps=args.max_steps, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, adam_epsilon=args.adam_epsilon,
        warmup_ratio=args.warmup_ratio, max_grad_norm=args.max_grad_norm, max_seq_length=args.max_seq_length,
        seed=args.seed, activation=args.activation, estimator=args.estimator, out_channels=args.out_channels,
        objective=args.objective, critic=args.critic, temperature=args.temperature, exclude_radius=args.exclude_radius,
        simcse_temperature=args.simcse_temperature, anchor=args.anchor, anchor_weight=args.anchor_weight,
        train_parts=args.train_parts, encoder_layers=args.encoder_layers, lr_scheduler=args.lr_scheduler,
        text_field=args.text_field, column=args.column, encoding_errors=args.encoding_errors, dedup=args.dedup,
        dev=args.dev, data_dir=args.data_dir, select=args.select, heldout_size=args.heldout_size,
        eval_steps=args.eval_steps, save_steps=args.save_steps, logging_steps=args.logging_steps,
        keep_checkpoints=args.keep_checkpoints, eval_batch_size=args.eval_batch_size, precision=args.precision,
        device=args.device, resume=args.resume, overwrite=args.overwrite, show_progress=not args.no_progress,
    )  # fmt: skip


def run_train(args: argparse.Namespace) -> int:
    from isbert.training.run import TrainingInterrupted, train

    try:
        result = train(config_from_args(args))
    except TrainingInterrupted as error:
        print(f"isbert train: {error}", file=sys.stderr)
        return 130
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(result.summary())
    return 0
