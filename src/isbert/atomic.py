"""Crash-safe writes: a reader sees the old file (or folder) or the new one, never a mix or nothing.

Every file the project writes in one piece goes through :func:`atomic_open` or :func:`atomic_file` (a new
temporary file in the same folder, created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, fsynced, renamed over the
target, the folder fsynced) or one of their shorthands for text, JSON, bytes and figures; a file written in place
(a growing matrix, an index's texts) is created by :func:`create_fresh`, a log appended to through
:func:`open_append`, a folder third-party code writes into made by :func:`fresh_dir`. Every folder the project
publishes (a saved model, a checkpoint, the best model, an ONNX export, a run's final model) goes through
:func:`publish_dir` (:func:`publishing_dir`, :func:`publish_entries`): fsynced, renamed into place, the old copy
removed only after. None of them follows or writes through a link planted at the name (docs/security.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from isbert.errors import IsbertError


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


def _swap_in(staged: Path, target: Path) -> None:
    """Put the complete folder ``staged`` at ``target``; a previous folder there is deleted only once the new one is
    in place.

    A new target is one ``rename``; an existing folder is swapped with ``staged`` in one atomic exchange. Where the
    system cannot exchange, the old folder is moved aside first and put back if the new one cannot be moved in (a
    kill between those two renames leaves it in ``.NAME.old-*`` beside the target). A link or a file at ``target``
    is unlinked, never followed.
    """
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        target.unlink()
    if not target.exists():
        os.replace(staged, target)
    elif exchange_paths(staged, target):
        shutil.rmtree(staged, ignore_errors=True)  # now holds the previous folder
    else:
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, retired / "old")
        try:
            os.replace(staged, target)
        except OSError:
            os.replace(retired / "old", target)
            os.rmdir(retired)
            raise
        shutil.rmtree(retired, ignore_errors=True)
    fsync_parent(target)


def fsync_tree(folder: str | os.PathLike[str]) -> None:
    """Flush every file and folder below ``folder`` to disk (links are not followed), so that a rename after it
    publishes complete data."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                fsync_path(path)
        with contextlib.suppress(OSError):  # platforms without directory handles
            fsync_path(root)


def publish_dir(staged: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """The one way isbert publishes a folder: ``staged`` (complete, written by this process) gets the usual
    permissions, every file and folder in it is fsynced, then it is put at ``target`` (see :func:`_swap_in`): a
    reader sees the old folder or the new one, and the old one is removed only after the new one is in place."""
    staged = Path(staged)
    usual_permissions(staged)
    fsync_tree(staged)
    _swap_in(staged, Path(target))


@contextlib.contextmanager
def publishing_dir(target: str | os.PathLike[str], label: str = "publishing") -> Iterator[Path]:
    """A fresh staging folder beside ``target`` to fill; when the block ends without an error it is published at
    ``target`` (:func:`publish_dir`). Whatever happens, the staging folder is gone afterwards and, on an error,
    ``target`` is untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(target, label)
    try:
        yield staging
        publish_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish_entries(staged: str | os.PathLike[str], folder: str | os.PathLike[str]) -> None:
    """Publish each entry of ``staged`` into ``folder``, which holds other things too (a training run's folder
    holds its final model beside its checkpoints and logs): everything is flushed first, then each sub-folder is
    put in place by :func:`_swap_in` (its old copy removed after) and each file renamed over its name (a link
    there replaced, never followed); ``folder`` is fsynced last. A kill part-way leaves some entries old, some new;
    each entry is whole."""
    staged, folder = Path(staged), Path(folder)
    usual_permissions(staged)
    fsync_tree(staged)
    for child in sorted(staged.iterdir()):
        target = folder / child.name
        if child.is_dir() and not child.is_symlink():
            _swap_in(child, target)
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)  # a previous save's folder where a file goes now
        os.replace(child, target)
    fsync_path(folder)


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


_CREATE = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
"""Flags for every file isbert creates: a new inode, never an existing name, never through a link."""


def _refuse(path: Path, reason: str) -> IsbertError:
    return IsbertError(f"{path}: {reason}; refused (the folder was tampered with, or another program writes there)")


def remove_path(path: str | os.PathLike[str]) -> None:
    """Remove whatever is at ``path`` without following a link: a link or file is unlinked, a real folder deleted."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path)


def fresh_dir(path: str | os.PathLike[str]) -> Path:
    """A new, empty folder at ``path`` (whatever was there removed, a link unlinked, never followed).

    Everything written inside a folder this process has just created is out of reach of links planted before: the
    rule for scratch and staging folders (checkpoints, final models) whose writers are third-party code.
    """
    path = Path(path)
    remove_path(path)
    try:
        os.mkdir(path)
    except FileExistsError:
        raise _refuse(path, "reappeared while it was being replaced") from None
    return path


def create_fresh(path: str | os.PathLike[str], *, read: bool = False) -> int:
    """A descriptor on a new, empty file at ``path`` (the usual permissions), for writing (and reading: ``read``).

    Whatever was at ``path`` (an old file, a planted symlink or hard link) is unlinked first, never followed or
    written through; the file is then created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so a link planted in between
    makes it fail rather than write elsewhere.
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise IsbertError(f"{path} is a folder; isbert writes a file there: remove it or choose another name")
    path.unlink(missing_ok=True)
    try:
        return os.open(path, _CREATE | (os.O_RDWR if read else os.O_WRONLY), 0o666)
    except FileExistsError:
        raise _refuse(path, "a file appeared at this name while isbert was creating it") from None


def check_own(fd: int, path: Path) -> None:
    """``path`` must still name the single-linked regular file open at ``fd``: not a link, not a second name."""
    opened = os.fstat(fd)
    try:
        named = os.lstat(path)
    except FileNotFoundError:
        raise _refuse(path, "removed while isbert was writing it") from None
    same = (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)
    if not same or not stat.S_ISREG(named.st_mode) or named.st_nlink != 1:
        raise _refuse(path, "replaced or linked elsewhere while isbert was writing it")


def open_append(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened to append bytes: created fresh if absent; else it must be a regular file with one name.

    A planted symlink (``O_NOFOLLOW``) or hard link (``st_nlink > 1``) at ``path`` is a one-line error, so an
    append never lands in a file outside the folder.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        fd = create_fresh(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _refuse(path, "is a symbolic link") from None
        raise IsbertError(f"{path}: cannot append ({error.strerror or error})") from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise _refuse(path, "is not a regular file")
        if status.st_nlink != 1:
            raise _refuse(path, f"has {status.st_nlink} names (a hard link)")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "ab")


def _new_temporary(target: Path) -> tuple[int, Path]:
    """A new file beside ``target`` with a random hidden name ending in ``.partial`` (see :func:`create_fresh`)."""
    for _ in range(100):
        partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
        try:
            return os.open(partial, _CREATE | os.O_RDWR, 0o666), partial
        except FileExistsError:
            continue
    raise _refuse(target, "no free temporary name beside it")


@contextlib.contextmanager
def _published(path: str | os.PathLike[str]) -> Iterator[tuple[int, Path]]:
    """A new temporary file beside ``path`` (descriptor and name); on success it is checked to be still the file
    created (no link swapped in), fsynced through its descriptor and renamed over ``path``, the folder fsynced.

    ``os.replace`` replaces a link at ``path`` itself, never what it points to; on an error ``path`` keeps its
    previous content (or stays absent) and the temporary file is removed.
    """
    target = Path(path)
    fd, partial = _new_temporary(target)
    try:
        yield fd, partial
        check_own(fd, partial)
        os.fsync(fd)
        os.replace(partial, target)
        fsync_parent(target)
    finally:
        os.close(fd)
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a new temporary path beside ``path`` for a writer that can only take a file name; on
    success it is renamed to ``path`` (see :func:`_published`). Prefer :func:`atomic_open` where a handle will do:
    a handle never reopens the name."""
    with _published(path) as (_fd, partial):
        yield partial


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "wb", *, encoding: str | None = None, newline: str | None = None
) -> Iterator[IO[Any]]:
    """A handle on a new temporary file beside ``path`` (``mode``: ``"wb"`` or ``"w"``), renamed to ``path`` when
    the block ends without an error (see :func:`_published`)."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes a new file: mode 'w' or 'wb', not {mode!r}")
    with _published(path) as (fd, _partial):
        handle = os.fdopen(os.dup(fd), mode, encoding=encoding, newline=newline)
        with handle:
            yield handle
            handle.flush()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_open(path) as handle:
        handle.write(data)
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
        with atomic_open(path) as handle:
            figure.savefig(handle, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi)
    finally:
        plt.close(figure)
    return path
