"""Crash-safe writes: a reader sees the old file (or folder) or the new one, never a mix or nothing.

Every file the project writes in one piece goes through :func:`atomic_file` (a temporary file in the same folder,
fsynced, renamed over the target, the folder fsynced) or one of its shorthands for text, JSON, bytes and figures.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def exchange_paths(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(error, os.strerror(error), str(b))


def replace_dir(staged: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Put the complete folder ``staged`` at ``target``, replacing what is there, then delete the old one.

    A new target is one ``rename``; an existing one is swapped with ``staged`` in one atomic exchange. Where the
    system cannot exchange, the old folder is moved aside first (a window of two renames).
    """
    staged, target = Path(staged), Path(target)
    if not target.exists():
        os.replace(staged, target)
    elif exchange_paths(staged, target):
        shutil.rmtree(staged, ignore_errors=True)  # now holds the previous folder
    else:
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, retired / "old")
        os.replace(staged, target)
        shutil.rmtree(retired, ignore_errors=True)
    fsync_parent(target)


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's content, or a folder's entries (so that a rename inside it is durable), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_parent(path: str | os.PathLike[str]) -> None:
    """Make a rename inside ``path``'s folder durable."""
    fsync_path(Path(path).parent)


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it: put it straight back
    os.umask(mask)
    return mask


def usual_permissions(folder: str | os.PathLike[str]) -> None:
    """Give every file and folder below ``folder`` the permissions the umask asks for: some writers (safetensors
    through transformers, mkstemp, mkdtemp) create them private, and a saved model should not be."""
    mask = _umask()
    for root, _dirs, files in os.walk(folder):
        os.chmod(root, 0o777 & ~mask)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o666 & ~mask)


def staging_dir(target: str | os.PathLike[str], label: str) -> Path:
    """A new hidden folder beside ``target`` to build it in, with the usual permissions (mkdtemp makes 0700)."""
    target = Path(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{label}-", dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())
    return staging


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it is fsynced and renamed to ``path``.

    On an error the temporary file is removed and ``path`` keeps its previous content (or stays absent).
    """
    target = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    partial = Path(name)
    os.chmod(partial, 0o666 & ~_umask())  # mkstemp makes 0600; a saved file gets the usual permissions
    try:
        yield partial
        fsync_path(partial)
        os.replace(partial, target)
        fsync_parent(target)
    finally:
        partial.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as partial:
        partial.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically (see :func:`atomic_file`)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(
    path: str | os.PathLike[str], data: Any, *, indent: int | None = 1, ensure_ascii: bool = True
) -> Path:
    """Write ``data`` as JSON (numpy scalars as floats) plus a final newline to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=indent, default=float, ensure_ascii=ensure_ascii) + "\n")


def save_figure_atomic(figure: Any, path: str | os.PathLike[str], *, dpi: float | str = "figure") -> Path:
    """Lay out ``figure``, write it to ``path`` atomically (format from the suffix, else PNG) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        figure.tight_layout()
        with atomic_file(path) as partial:
            figure.savefig(partial, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi)
    finally:
        plt.close(figure)
    return path
