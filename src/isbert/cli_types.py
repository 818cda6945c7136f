"""Argument types shared by every ``isbert`` command: one wording for the same mistake everywhere."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

MODEL_HELP = "a saved model folder, a Hugging Face model id, 'offline-minilm' or 'offline-glove' (average GloVe)"

DEVICE_DEFAULT = "the best available"
DEVICE_TEXT = "where the model runs: cpu, cuda, cuda:1, mps ..."
DEVICE_HELP = f"{DEVICE_TEXT} (default: {DEVICE_DEFAULT})"
"""Help of ``--device`` in every command (``isbert train`` takes it from TrainConfig, which uses this text)."""
PROGRESS_HELP = "do not show progress bars"
BATCH_SIZE_TEXT = "texts per forward pass"
DATA_DIR_TEXT = "the evaluation data folder, laid out as in shared/data/README.md"
ENCODER_LAYERS_TEXT = (
    "keep only the encoder's first N transformer layers; 0 keeps its token embeddings, the only context-free choice"
)


def add_device_argument(parser: argparse.ArgumentParser, default: str = DEVICE_DEFAULT) -> None:
    """``--device``; ``default`` says what happens when it is not given, where that is not the best device."""
    parser.add_argument("--device", default=None, help=f"{DEVICE_TEXT} (default: {default})")


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-progress`` (``isbert train`` takes it from TrainConfig, which uses :data:`PROGRESS_HELP`)."""
    parser.add_argument("--no-progress", action="store_true", help=PROGRESS_HELP)


def add_batch_size_argument(parser: argparse.ArgumentParser, default: int) -> None:
    """``--batch-size`` of a command that encodes texts (``isbert train``'s is the training batch, another setting)."""
    parser.add_argument(
        "--batch-size", type=int_in(1, MAX_BATCH), default=default, help=f"{BATCH_SIZE_TEXT} (default: {default})"
    )


def add_data_dir_argument(parser: argparse.ArgumentParser, note: str, *, required: bool = False) -> None:
    """``--data-dir``, the evaluation data; ``note`` says what the command does without it, or with it."""
    parser.add_argument("--data-dir", required=required, default=None, help=f"{DATA_DIR_TEXT} ({note})")


MAX_WHOLE = 2**31 - 1
"""The ceiling of a whole-number flag that declares none of its own: finite, and within every library's C int."""

# Caps on numbers that size memory or time (issue 29, item 7), checked when the command line is parsed. Each is
# generous for real use and finite; docs/security.md lists every flag that takes one.
MAX_BATCH = 16_384
"""Texts per forward pass: beyond this a batch does not fit an accelerator at any useful length, nor runs faster."""
MAX_K = 10_000
"""Results per query: the k x queries result matrix stays small, and nobody reads further down a ranking."""
MAX_CLUSTERS = 100_000
"""Clusters: k-means holds k centroids and scores every text against each, so time grows with k."""
MAX_SEQ_LENGTH = 8_192
"""Tokens per text: the longest position table of the encoders isbert supports (ModernBERT's); BERT's is 512."""
MAX_LAYERS = 1_024
"""Transformer layers kept: more than any released encoder has (the largest have under 200)."""
MAX_STEPS = 100_000_000
"""Training steps, and every step interval: about three years at one step a second."""
MAX_SAMPLE = 10_000_000
"""Sentences a fit holds at once (a sample, a held-out slice, mined pairs): gigabytes of vectors at most."""
MAX_COMPONENTS = 8_192
"""Principal directions removed: more than the width of any sentence vector isbert makes."""
MAX_CHUNK = 1_048_576
"""Texts held per encoding step before they are written: a few GB of vectors at most."""
MAX_SECONDS = 86_400.0
"""A timeout: one day; a longer one is a mistake, not a setting."""
MAX_SEED = 2**32 - 1
"""Seeds: numpy's generators take 0 .. 2**32 - 1."""


def _whole(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None


def _int_at_least(value: str, minimum: int, maximum: int = MAX_WHOLE) -> int:
    number = _whole(value)
    if number < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
    if number > maximum:
        raise argparse.ArgumentTypeError(f"must be at most {maximum:,}, got {number}")
    return number


def int_in(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``minimum`` to ``maximum``; over it, the error names the cap."""

    def parse(value: str) -> int:
        return _int_at_least(value, minimum, maximum)

    parse.__name__ = f"int_{minimum}_to_{maximum}"
    return parse


def positive_int(value: str) -> int:
    return _int_at_least(value, 1)


def non_negative_int(value: str) -> int:
    return _int_at_least(value, 0)


def _finite(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value}")
    return number


def float_in(minimum: float, maximum: float, *, positive: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number from ``minimum`` (above it with ``positive``) to ``maximum``."""

    def parse(value: str) -> float:
        number = _finite(value)
        if positive and not number > minimum:
            raise argparse.ArgumentTypeError(f"must be positive, got {value}")
        if not minimum <= number <= maximum:
            raise argparse.ArgumentTypeError(f"must be from {minimum:g} to {maximum:g}, got {value}")
        return number

    parse.__name__ = f"float_{minimum:g}_to_{maximum:g}"
    return parse


def positive_float(value: str) -> float:
    number = _finite(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return number


INPUT_HELP = (
    "files, folders (their .txt/.jsonl/.csv/.tsv files, optionally .gz, sorted) or quoted glob patterns ('data/*.txt', "
    "'data/**/*.jsonl'); records keep their file:line"
)


def add_input_argument(parser: argparse.ArgumentParser, what: str, *, required: bool = True) -> None:
    """``--input``/``-i``: one or more files, folders or patterns (:func:`isbert.inputs.expand_inputs`)."""
    parser.add_argument(
        "--input", "-i", required=required, nargs="+", action="extend", metavar="PATH", help=f"{what}: {INPUT_HELP}"
    )


READER_HELP = {
    "text_field": "JSON field holding the text (.jsonl)",
    "column": "column holding the text (.csv/.tsv with a header)",
    "encoding_errors": "on bytes that are not UTF-8: stop with file and line (strict), replace them, or skip the line",
}
"""How :func:`isbert.io.iter_texts` reads a file; shared by every command that reads texts, and by TrainConfig."""


SHARED_OPTIONS = {
    "--device": DEVICE_TEXT,
    "--no-progress": PROGRESS_HELP,
    "--batch-size": BATCH_SIZE_TEXT,
    "--data-dir": DATA_DIR_TEXT,
    "--encoder-layers": ENCODER_LAYERS_TEXT,
    "--text-field": READER_HELP["text_field"],
    "--column": READER_HELP["column"],
    "--encoding-errors": READER_HELP["encoding_errors"],
}
"""Options many commands share, each with one help text: a command adds at most a parenthesis (its default, or
what it does with the option). ``tests/test_cli_types.py`` checks every command's help against this table."""


def add_reader_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--text-field``, ``--column`` and ``--encoding-errors``: how :func:`isbert.io.iter_texts` reads a file."""
    parser.add_argument("--text-field", default="text", help=READER_HELP["text_field"] + " (default: text)")
    parser.add_argument("--column", default="text", help=READER_HELP["column"] + " (default: text)")
    parser.add_argument(
        "--encoding-errors",
        choices=("strict", "replace", "skip"),
        default="strict",
        help=READER_HELP["encoding_errors"] + " (default: strict)",
    )
