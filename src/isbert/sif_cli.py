"""``isbert baseline {sif,usif,abtt}``: fit a training-free baseline and save it as a sentence-transformers folder."""

from __future__ import annotations

import argparse

from isbert.cli_types import (
    ENCODER_LAYERS_TEXT,
    MAX_COMPONENTS,
    MAX_LAYERS,
    MAX_SAMPLE,
    MODEL_HELP,
    add_device_argument,
    add_input_argument,
    add_reader_arguments,
    int_in,
    positive_float,
)
from isbert.sif import ABTT_AUTO, DEFAULT_A, PROBABILITIES, SIF_COMPONENTS, USIF_COMPONENTS

SAMPLE_DEFAULT = 100_000
"""As :data:`isbert.sif_model.SAMPLE_SIZE` (repeated: building the parser must not import torch; a test compares)."""

BACKBONE_HELP = (
    f"{MODEL_HELP}; its token vectors must not depend on the context: word vectors (offline-glove), or a "
    "transformer with --encoder-layers 0"
)
DESCRIPTIONS = {
    "sif": (
        "SIF (Arora, Liang and Ma, ICLR 2017): each token weighted by a / (a + p(w)), p(w) counted on the --input "
        "corpus with the backbone's own tokenizer (or from Zipf ranks of a frequency-sorted word-vector vocabulary), "
        "the weighted mean, then the first principal direction(s) of the corpus' sentence vectors removed."
    ),
    "usif": (
        "uSIF (Ethayarajh, RepL4NLP 2018): unit word vectors weighted by a / (a/2 + p(w)), with a derived from the "
        "vocabulary size and the corpus' average sentence length (nothing to tune), then 5 principal directions "
        "removed piecewise, each in proportion to its share of the variance."
    ),
    "abtt": (
        "All-but-the-top (Mu and Viswanath, ICLR 2018): the mean word vector subtracted from the backbone's "
        "word-vector table and its top D principal components removed; sentences are plain means of the processed "
        "vectors. Needs no corpus."
    ),
}
SAVED = (
    " The output is a plain sentence-transformers folder (encoder -> WordWeights -> mean Pooling -> Dense): it loads "
    "with SentenceTransformer(FOLDER) and isbert.load(FOLDER), no remote code."
)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="fit a training-free baseline (SIF, uSIF, all-but-the-top) and save it as a model folder",
        description="Fit a training-free word-weighting baseline on static token vectors and save it." + SAVED,
    )
    methods = parser.add_subparsers(dest="method", metavar="{sif,usif,abtt}", required=True)
    for method, summary in (
        ("sif", "smooth inverse frequency weights + common-component removal"),
        ("usif", "unsupervised SIF: tuning-free weights + piecewise component removal"),
        ("abtt", "all-but-the-top: post-processed word vectors, plain means"),
    ):
        example = f"example: isbert baseline {method} offline-glove " + ("-o runs/abtt-glove" if method == "abtt" else
                   f"-i ../shared/data/unlabeled/nli_sentences.snli_dev_test.txt -o runs/{method}-glove")  # fmt: skip
        command = methods.add_parser(method, help=summary, description=DESCRIPTIONS[method] + SAVED, epilog=example)
        _add_options(command, method)
        command.set_defaults(func=_run_baseline)


def _add_options(parser: argparse.ArgumentParser, method: str) -> None:
    parser.add_argument("backbone", metavar="BACKBONE", help=BACKBONE_HELP)
    if method != "abtt":
        add_input_argument(parser, "the unlabeled corpus for p(w) and the common directions")
    parser.add_argument("--output", "-o", required=True, help="the model folder to write")
    if method == "sif":
        parser.add_argument(
            "--a", type=positive_float, default=DEFAULT_A,
            help=f"SIF's a in a / (a + p(w)); the paper found 1e-3 .. 1e-4 best (default: {DEFAULT_A:g})",
        )  # fmt: skip
    if method != "abtt":
        default = SIF_COMPONENTS if method == "sif" else USIF_COMPONENTS
        parser.add_argument(
            "--components", type=int_in(0, MAX_COMPONENTS), default=None, metavar="K",
            help=f"common principal directions removed from the sentence vectors, 0 for none (default: {default})",
        )  # fmt: skip
        parser.add_argument(
            "--probabilities", choices=PROBABILITIES, default="corpus",
            help="p(w) counted on the corpus, or zipf: 1/rank in a frequency-sorted word-vector vocabulary such as "
            "GloVe's (default: corpus)",
        )  # fmt: skip
        parser.add_argument(
            "--sample", type=int_in(1, MAX_SAMPLE), default=SAMPLE_DEFAULT, metavar="N",
            help=f"corpus sentences (a seeded sample) the directions are fitted on (default: {SAMPLE_DEFAULT:,})",
        )  # fmt: skip
    if method == "sif":
        parser.add_argument(
            "--abtt", type=int_in(0, MAX_COMPONENTS), default=0, metavar="D",
            help="also apply all-but-the-top to the word vectors first, removing D components (default: 0, off)",
        )  # fmt: skip
    if method == "abtt":
        parser.add_argument(
            "--abtt", type=int_in(1, MAX_COMPONENTS), default=None, metavar="D",
            help="principal components removed from the word vectors (default: max(1, round(dim / 100)))",
        )  # fmt: skip
    parser.add_argument(
        "--encoder-layers", type=int_in(0, MAX_LAYERS), default=None, metavar="N",
        help=f"{ENCODER_LAYERS_TEXT} (for a transformer backbone)",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace a model already in --output")
    if method != "abtt":
        add_reader_arguments(parser)
    add_device_argument(parser)


def _run_baseline(args: argparse.Namespace) -> int:
    from isbert.inputs import expand_inputs
    from isbert.model import check_model_reference
    from isbert.sif import SifSettings
    from isbert.sif_model import fit_baseline, save_baseline

    files = expand_inputs(args.input) if args.method != "abtt" else None  # a wrong path fails before loading
    check_model_reference(args.backbone)
    abtt = getattr(args, "abtt", None)
    settings = SifSettings(
        args.method,
        a=getattr(args, "a", DEFAULT_A),
        components=getattr(args, "components", None),
        probabilities=getattr(args, "probabilities", "corpus"),
        abtt=ABTT_AUTO if args.method == "abtt" and abtt is None else abtt,
    )
    reader = {}
    if files is not None:
        reader = {"text_field": args.text_field, "column": args.column, "encoding_errors": args.encoding_errors}
    fitted = fit_baseline(
        args.backbone, files, settings, encoder_layers=args.encoder_layers,
        sample_size=getattr(args, "sample", SAMPLE_DEFAULT), device=args.device, **reader,
    )  # fmt: skip
    folder = save_baseline(fitted.model, args.output, overwrite=args.overwrite)
    print(f"{fitted.report.summary()}; saved to {folder}")
    return 0
