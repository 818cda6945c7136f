"""Options many commands share are declared once (isbert.cli_types): the same help text in every command."""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Iterator

from isbert.cli import build_parser
from isbert.cli_types import (
    SHARED_OPTIONS,
    add_batch_size_argument,
    add_data_dir_argument,
    add_device_argument,
    add_progress_argument,
)

OTHER_MEANING = {("train", "--batch-size"): "the training batch: sentences per step, the in-batch negatives"}
"""A shared flag name that a command uses for another setting, and what it means there."""


def options(parser: argparse.ArgumentParser, command: tuple[str, ...] = ()) -> Iterator[tuple[str, str, str]]:
    """(command, long option, help) for every option of every (sub)command below ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from options(sub, (*command, name))
        for option in action.option_strings:
            if option.startswith("--"):
                yield " ".join(command), option, action.help or ""


def help_mismatches(parser: argparse.ArgumentParser) -> tuple[list[str], dict[str, set[str]]]:
    """Each shared option whose help is not its one text (plus at most a parenthesis), and where each is used."""
    wrong, used = [], defaultdict(set)
    for command, option, text in options(parser):
        if option not in SHARED_OPTIONS or (command, option) in OTHER_MEANING:
            continue
        used[option].add(command)
        shared = SHARED_OPTIONS[option]
        if text != shared and not (text.startswith(f"{shared} (") and text.endswith(")")):
            wrong.append(f"isbert {command} {option}: {text!r}; the shared text is {shared!r}")
    return wrong, used


def test_each_shared_option_has_one_help_text_in_every_command() -> None:
    wrong, used = help_mismatches(build_parser())
    assert wrong == []
    assert {option for option, commands in used.items() if len(commands) >= 2} == set(SHARED_OPTIONS)
    assert {"encode", "eval", "train", "index build", "cluster", "similar", "experiment"} <= used["--no-progress"]
    assert {"eval", "data check", "data download", "train", "experiment"} <= used["--data-dir"]


def test_a_command_with_its_own_wording_is_found() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    good, bad = commands.add_parser("good"), commands.add_parser("bad")
    for sub in (good, bad):
        add_device_argument(sub)
        add_data_dir_argument(sub, "default: $ISBERT_DATA_DIR")
    add_progress_argument(good)
    add_batch_size_argument(good, 32)
    bad.add_argument("--no-progress", action="store_true", help="no progress bar")
    bad.add_argument("--batch-size", type=int, default=8, help=f"{SHARED_OPTIONS['--batch-size']}: 8 by default")
    wrong, used = help_mismatches(parser)
    assert [line.split(":")[0] for line in wrong] == ["isbert bad --no-progress", "isbert bad --batch-size"]
    assert used["--device"] == {"good", "bad"}


def test_shared_options_keep_their_flags_and_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_progress_argument(parser)
    add_batch_size_argument(parser, 64)
    add_data_dir_argument(parser, "default: $ISBERT_DATA_DIR")
    add_device_argument(parser)
    args = parser.parse_args([])
    assert (args.no_progress, args.batch_size, args.data_dir, args.device) == (False, 64, None, None)
    args = parser.parse_args(["--no-progress", "--batch-size", "8", "--data-dir", "d", "--device", "cpu"])
    assert (args.no_progress, args.batch_size, args.data_dir, args.device) == (True, 8, "d", "cpu")
