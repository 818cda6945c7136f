"""Paths named by a file inside a folder (an index manifest, a model's checksum list, an ONNX config) stay inside it.

Such a name is data from a file anyone may have edited: trusted as it is, ``../victim.txt`` in an index manifest
made ``isbert index add`` delete a file outside the index, and ``/etc/passwd`` made ``search`` read one. A name is
accepted only as a relative path without ``..`` whose resolved location (symlinks followed) is inside the folder.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from isbert.errors import IsbertError, printable


def confined_path(folder: str | os.PathLike[str], name: object, source: str) -> Path:
    """``folder / name`` when ``name`` is a relative path that stays inside ``folder``; else a one-line error.

    ``source`` says where the name came from (the manifest file), for the message.
    """
    folder = Path(folder)
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        raise IsbertError(f"{source}: {printable(repr(name))} is not a file name; the folder was tampered with")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts:
        raise IsbertError(
            f"{source}: the name {printable(name)!r} points outside {folder}; refused (the folder was tampered with)"
        )
    path = folder.joinpath(*pure.parts)
    if not path.resolve().is_relative_to(folder.resolve()):
        raise IsbertError(
            f"{source}: {printable(name)!r} is a link leading outside {folder}; refused (the folder was tampered with)"
        )
    return path
