"""Paths named by a file inside a folder (an index manifest, a model's checksum list, an ONNX config, an archive
member) stay inside it.

Such a name is data from a file anyone may have edited: trusted as it is, ``../victim.txt`` in an index manifest
made ``isbert index add`` delete a file outside the index, and ``/etc/passwd`` made ``search`` read one. A name is
accepted only as a relative path without ``..`` whose resolved location (symlinks followed) is inside the folder.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from isbert.errors import IsbertError, printable


def escape(folder: Path, name: str) -> str | None:
    """Why ``folder / name`` (a POSIX relative path) would not stay inside ``folder``; None when it does."""
    pure = PurePosixPath(name)
    if "\x00" in name or not pure.parts:
        return "is not a file name"
    if pure.is_absolute() or ".." in pure.parts:
        return "points outside"
    if not folder.joinpath(*pure.parts).resolve().is_relative_to(folder.resolve()):
        return "is a link leading outside"
    return None


def confined_path(folder: str | os.PathLike[str], name: object, source: str) -> Path:
    """``folder / name`` when ``name`` is a relative path that stays inside ``folder``; else a one-line error.

    ``source`` says where the name came from (the manifest file), for the message.
    """
    folder = Path(folder)
    # A backslash is a separator on Windows and a file-name character here: refused rather than guessed.
    text = name if isinstance(name, str) and "\\" not in name else None
    reason = escape(folder, text) if text is not None else "is not a file name"
    if text is None or reason is not None:
        raise IsbertError(
            f"{source}: the name {printable(repr(name))} {reason} of {folder}; refused (the folder was tampered with)"
        )
    return folder.joinpath(*PurePosixPath(text).parts)
