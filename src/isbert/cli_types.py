"""Argument types shared by every ``isbert`` command: one wording for the same mistake everywhere."""

from __future__ import annotations

import argparse

MODEL_HELP = "a saved model folder, a Hugging Face model id, 'offline-minilm' or 'offline-glove' (average GloVe)"

DEVICE_DEFAULT = "the best available"
DEVICE_HELP = f"where the model runs: cpu, cuda, cuda:1, mps ... (default: {DEVICE_DEFAULT})"
"""Help of ``--device`` in every command (``isbert train`` takes it from TrainConfig, which uses this text)."""


def add_device_argument(parser: argparse.ArgumentParser, default: str = DEVICE_DEFAULT) -> None:
    """``--device``; ``default`` says what happens when it is not given, where that is not the best device."""
    parser.add_argument("--device", default=None, help=DEVICE_HELP.replace(DEVICE_DEFAULT, default))


def _int_at_least(value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
    return number


def positive_int(value: str) -> int:
    return _int_at_least(value, 1)


def non_negative_int(value: str) -> int:
    return _int_at_least(value, 0)


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return number


INPUT_HELP = (
    "files, folders (their .txt/.jsonl/.csv/.tsv files, optionally .gz, sorted) or quoted glob patterns ('data/*.txt', "
    "'data/**/*.jsonl'); records keep their file:line"
)


def add_input_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--input``/``-i``: one or more files, folders or patterns (:func:`isbert.inputs.expand_inputs`)."""
    parser.add_argument(
        "--input", "-i", required=True, nargs="+", action="extend", metavar="PATH", help=f"{what}: {INPUT_HELP}"
    )


READER_HELP = {
    "text_field": "JSON field holding the text (.jsonl)",
    "column": "column holding the text (.csv/.tsv with a header)",
    "encoding_errors": "on bytes that are not UTF-8: stop with file and line (strict), replace them, or skip the line",
}
"""How :func:`isbert.io.iter_texts` reads a file; shared by every command that reads texts, and by TrainConfig."""


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
