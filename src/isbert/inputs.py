"""What ``--input`` names: files, folders and glob patterns, expanded into one deterministic list of text files.

Order: the arguments in the order given; a folder's text files sorted by their path inside it (sub-folders
included, hidden entries skipped, linked folders not entered, so a link loop cannot make the walk endless); a
pattern's matches sorted. A file named twice is read once. Each file gets a label for provenance (``label:line``
in records, outputs and messages): its path relative to the folder that holds all the inputs, so a single file is
labeled by its name and two files of the same name in different folders stay apart.

Every problem is found here, before any encoding, as one line: a pattern that matches nothing, a folder without
text files, a missing or unreadable file, a broken or looping link.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from isbert.errors import IsbertError
from isbert.io import ReadStats, iter_texts

TEXT_SUFFIXES = (".txt", ".jsonl", ".ndjson", ".csv", ".tsv")
"""The files a folder contributes (each also gzipped); a file named explicitly is read whatever its name."""

_GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class InputFile:
    """One input file: ``path`` to open (and to name in errors), ``label`` for provenance."""

    path: Path
    label: str


def is_text_file_name(name: str) -> bool:
    name = name.lower().removesuffix(".gz")
    return name.endswith(TEXT_SUFFIXES)


def _readable(path: Path) -> Path:
    """``path`` if it opens for reading; else one line saying why (missing, a link loop, permissions, a folder)."""
    if os.path.islink(path) and not os.path.exists(path):
        raise IsbertError(f"{path}: a broken or looping symbolic link")
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError:
        raise IsbertError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise IsbertError(f"expected a file, got a folder: {path}") from None
    except OSError as error:
        raise IsbertError(f"{path}: cannot read ({error.strerror or error})") from None
    return path


def _folder_files(folder: Path) -> list[Path]:
    def refuse(error: OSError) -> None:
        raise IsbertError(f"{error.filename or folder}: cannot read the folder ({error.strerror or error})")

    found: list[Path] = []
    for root, folders, files in os.walk(folder, onerror=refuse, followlinks=False):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            # not a FIFO or device that happens to be named .txt: opening one could block
            if not name.startswith(".") and is_text_file_name(name) and (path.is_file() or not path.exists()):
                found.append(_readable(path))
    if not found:
        shown = ", ".join(TEXT_SUFFIXES)
        raise IsbertError(f"{folder}: no text files in this folder ({shown}, each optionally .gz)")
    return found


def _expand_path(path: str) -> list[Path]:
    return _folder_files(Path(path)) if os.path.isdir(path) else [_readable(Path(path))]


def _expand_one(spec: str) -> list[Path]:
    """A path as it is (even with ``*`` in its name); else a pattern, expanded by us (quoted, the shell did not)."""
    if os.path.lexists(spec) or not _GLOB_CHARACTERS & set(spec):
        return _expand_path(spec)
    matches = sorted(glob.glob(spec, recursive=True))
    if not matches:
        raise IsbertError(f"no files match {spec!r}")
    return [path for match in matches for path in _expand_path(match)]


InputSpec = str | os.PathLike[str] | InputFile


def expand_inputs(specs: InputSpec | Sequence[InputSpec]) -> list[InputFile]:
    """The files that ``specs`` (paths, folders, glob patterns) name, in order, each once, with their labels.

    Already expanded files (:class:`InputFile`) pass through, so a command can check its inputs before it loads
    a model and hand the result on.
    """
    specs = [specs] if isinstance(specs, (str, os.PathLike, InputFile)) else list(specs)
    if not specs:
        raise IsbertError("no input given (--input FILE, FOLDER or 'PATTERN' ...)")
    paths: dict[str, Path] = {}
    for spec in specs:
        text = str(spec.path) if isinstance(spec, InputFile) else str(spec)
        if not text:
            raise IsbertError("an empty input path")
        for path in [spec.path] if isinstance(spec, InputFile) else _expand_one(text):
            paths.setdefault(os.path.realpath(path), path)
    files = list(paths.values())
    common = os.path.commonpath([os.path.dirname(os.path.abspath(path)) for path in files])
    return [InputFile(path, os.path.relpath(os.path.abspath(path), common)) for path in files]


def describe(files: Sequence[InputFile]) -> str:
    """The inputs in a message: the file, or the first and how many more."""
    if len(files) == 1:
        return str(files[0].path)
    return f"{files[0].path} and {len(files) - 1} more files"


def iter_input_texts(
    files: Sequence[InputFile], *, stats: ReadStats | None = None, **reader: object
) -> Iterator[tuple[InputFile, int, str]]:
    """``(file, line, text)`` for every record of every file, in order (``reader``: as :func:`isbert.io.iter_texts`)."""
    for file in files:
        for number, text in iter_texts(file.path, stats=stats, **reader):  # type: ignore[arg-type]
            yield file, number, text
