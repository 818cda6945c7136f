"""The records of an index folder in one SQLite database: texts, ``file:line`` sources, content hashes, ids, the
folder's settings and the generation of its faiss vectors file.

Layout of an index folder::

    index.sqlite            SQLite (WAL): tables meta, state, docs (+ the FTS5 table docs_fts), files
    vectors-000007.faiss    the vectors of generation 7: a faiss ``IndexIDMap2`` whose ids are ``docs.id``

Why SQLite: transactions, readers that keep reading while a writer writes (WAL), crash recovery and full-text
search (FTS5, BM25) come with the standard library; the measurement behind the choice is in docs/applications.md.
The vectors stay in faiss. A write publishes a complete new vectors file under the next generation's name (a new
file, renamed into place) and then commits, in one transaction, the rows and the new generation number: a reader
sees the old rows and the old vectors, or the new rows and the new vectors. The previous generation's file is kept
until the next write, so a reader that read the old number just before the commit still finds its file; older
files are removed by the next writer (a reader that misses its file reads the generation again and retries).

Every name isbert opens here is generated (``index.sqlite``, ``vectors-`` + a six-digit generation number read as an
integer), never read from the database. The database and its side files (``-wal``, ``-shm``, ``-journal``) must be
plain files with one name: a symbolic or hard link planted at any of them is refused before SQLite opens (SQLite
follows links and writes its side files beside the link's target). Every text and value read back has a length cap
(``SQLITE_LIMIT_LENGTH``), and every SQLite failure is one line.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import sqlite3
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from isbert.atomic import create_fresh
from isbert.errors import IsbertError, printable

DATABASE = "index.sqlite"
SIDE_FILES = ("-wal", "-shm", "-journal")
FORMAT_VERSION = 2
MAX_GENERATION = 999_999
MAX_VALUE_BYTES = 1 << 24
"""Any text or value read from the database (a record, a settings entry); longer ones are refused by SQLite."""
MAX_SOURCE_CHARS = 4096
"""A record's file label; longer ones are refused when written (a path is far shorter)."""
BUSY_TIMEOUT_MS = 10_000
"""How long a reader or writer waits for another connection's lock before a one-line error."""
VECTORS_FILE = re.compile(r"vectors-(\d{6})\.faiss")

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE state (one INTEGER PRIMARY KEY CHECK (one = 1), generation INTEGER NOT NULL, count INTEGER NOT NULL,"
    " next_id INTEGER NOT NULL)",
    "CREATE TABLE docs (id INTEGER PRIMARY KEY, file TEXT NOT NULL, line INTEGER NOT NULL,"
    " chunk INTEGER NOT NULL DEFAULT 0, hash TEXT NOT NULL, text TEXT)",
    "CREATE UNIQUE INDEX docs_record ON docs (file, line, chunk, hash)",
    "CREATE TABLE files (file TEXT PRIMARY KEY, sha256 TEXT NOT NULL)",
    "CREATE VIRTUAL TABLE docs_fts USING fts5 (text, content='docs', content_rowid='id')",
)


def vectors_name(generation: int) -> str:
    """The file name of a generation's vectors (generated from the number, never read from a file)."""
    if not 0 < generation <= MAX_GENERATION:
        raise IsbertError(f"generation {generation} out of range")
    return f"vectors-{generation:06d}.faiss"


def _refuse_links(folder: Path) -> None:
    """The database and its side files must be absent or plain files with one name (no planted link)."""
    for name in (DATABASE, *(DATABASE + side for side in SIDE_FILES)):
        try:
            status = os.lstat(folder / name)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(status.st_mode) or not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
            raise IsbertError(
                f"{folder / name} is a link or not a plain file of the index; refused (the folder was tampered with)"
            )


def database_error(folder: Path, error: BaseException) -> IsbertError:
    """One line for any SQLite failure (a file that is not a database, a damaged one, a lock held too long)."""
    words = " ".join(str(error).split())[:200]
    return IsbertError(f"{folder / DATABASE}: cannot use the index database ({words}); rebuild it with --overwrite")


def connect(folder: Path, *, create: bool = False, write: bool = False) -> sqlite3.Connection:
    """A connection to the folder's database: refused links first, never created unless ``create`` (fresh, with
    ``O_EXCL | O_NOFOLLOW``), lengths capped, untrusted schema code disabled; readers are ``query_only``."""
    if not folder.is_dir():
        raise IsbertError(f"not an index folder (not a folder): {folder}; build one with `isbert index build`")
    _refuse_links(folder)
    path = folder / DATABASE
    if create:
        os.close(create_fresh(path))
    elif not path.exists():
        raise IsbertError(f"not an index folder (no {DATABASE}): {folder}; build one with `isbert index build`")
    try:
        connection = sqlite3.connect(
            f"file:{quote(str(path.resolve()))}?mode=rw", uri=True, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as error:
        raise database_error(folder, error) from None
    try:
        if sys.version_info >= (3, 11):  # setlimit is new in 3.11: Python 3.10 cannot cap lengths (nor crash here)
            connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA trusted_schema = OFF")
        if write:
            connection.execute("PRAGMA journal_mode = WAL")
        else:
            connection.execute("PRAGMA query_only = ON")
    except sqlite3.Error as error:
        connection.close()
        raise database_error(folder, error) from None
    return connection


def create_schema(connection: sqlite3.Connection, meta: dict[str, Any]) -> None:
    """The tables of an empty index, its settings and generation 0 (no vectors yet), in the open transaction."""
    for statement in _SCHEMA:
        connection.execute(statement)
    write_meta(connection, meta)
    connection.execute("INSERT INTO state (one, generation, count, next_id) VALUES (1, 0, 0, 0)")


def write_meta(connection: sqlite3.Connection, meta: dict[str, Any]) -> None:
    connection.execute("DELETE FROM meta")
    connection.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)", [(key, json.dumps(value)) for key, value in meta.items()]
    )


def _whole(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _unfinished(folder: Path) -> IsbertError:
    return IsbertError(
        f"{folder}: an unfinished index (a build was stopped before it finished); replace it with "
        "`isbert index build ... --overwrite`"
    )


def _read_error(folder: Path, error: sqlite3.Error) -> IsbertError:
    """A database without the index's tables is what a build stopped before its commit leaves."""
    return _unfinished(folder) if "no such table" in str(error) else database_error(folder, error)


def read_state(connection: sqlite3.Connection, folder: Path) -> tuple[int, int, int]:
    """``(generation, count, next_id)``, checked: integers in range, or a one-line error."""
    try:
        rows = connection.execute("SELECT generation, count, next_id FROM state WHERE one = 1").fetchall()
    except sqlite3.Error as error:
        raise _read_error(folder, error) from None
    if len(rows) != 1:
        raise _unfinished(folder)
    generation, count, next_id = rows[0]
    if not (_whole(generation, 0, MAX_GENERATION) and _whole(count, 0, 2**40) and _whole(next_id, 0, 2**62)):
        raise IsbertError(f"{folder / DATABASE}: damaged state ({printable(repr(rows[0]))[:80]}); rebuild the index")
    return generation, count, next_id


def read_meta(connection: sqlite3.Connection, folder: Path) -> dict[str, Any]:
    """The folder's settings (model, dimension, fingerprint, spec, ...), each a JSON value."""
    meta: dict[str, Any] = {}
    try:
        for key, value in connection.execute("SELECT key, value FROM meta"):
            meta[str(key)] = json.loads(value)
    except sqlite3.Error as error:
        raise _read_error(folder, error) from None
    except (TypeError, ValueError, RecursionError) as error:
        raise IsbertError(f"{folder / DATABASE}: damaged settings ({' '.join(str(error).split())[:120]})") from None
    if meta.get("format") != FORMAT_VERSION:
        raise IsbertError(f"{folder / DATABASE}: unsupported index format {printable(repr(meta.get('format')))}")
    return meta


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection, folder: Path) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any error, SQLite errors as one line)."""
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        raise database_error(folder, error) from None
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException as error:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        if isinstance(error, sqlite3.Error):
            raise database_error(folder, error) from None
        raise


@contextlib.contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """One writer at a time per index folder (an advisory lock; readers never wait).

    The lock file is opened without following a symlink and must have no other name, so a planted ``.lock`` link
    (symbolic or hard) cannot create, touch or lock a file elsewhere. Nothing is ever written to it. Temporary files
    a killed writer left (``.NAME.XXXX.partial``) are removed once the lock is held.
    """
    try:
        fd = os.open(folder / ".lock", os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise IsbertError(f"{folder / '.lock'} is a link leading outside the index; refused") from None
        raise
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
            raise IsbertError(f"{folder / '.lock'} is not a plain file of the index (a hard link or device); refused")
        fcntl.flock(fd, fcntl.LOCK_EX)
        for leftover in folder.glob(".*.partial"):
            if leftover.is_file() or leftover.is_symlink():
                leftover.unlink(missing_ok=True)  # a link is unlinked, never followed
        yield
    finally:
        os.close(fd)  # closing releases the lock


def remove_stale_vectors(folder: Path, keep: set[int]) -> None:
    """Remove the vectors files of generations not in ``keep`` (under the writer lock): the current one and the
    previous one stay, for a reader that read the previous generation number just before the last commit."""
    for path in folder.iterdir():
        match = VECTORS_FILE.fullmatch(path.name)
        if match and int(match.group(1)) not in keep:
            path.unlink(missing_ok=True)


def remove_database(folder: Path) -> None:
    """Unlink the database and its side files (``--overwrite`` of a folder whose database is unusable); links
    are unlinked, never followed."""
    for name in (DATABASE, *(DATABASE + side for side in SIDE_FILES)):
        (folder / name).unlink(missing_ok=True)
    remove_stale_vectors(folder, set())


# ------------------------------------------------------------------------------------------------------ records
def content_hash(text: str) -> str:
    """What makes two records the same text (with the same ``file:line``, the same record: skipped on add)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def split_source(source: str) -> tuple[str, int, int]:
    """``label:line`` or ``label:line#chunk`` (a piece of a long text) -> ``(label, line, chunk)``; the label is
    capped (:data:`MAX_SOURCE_CHARS`). A ``#`` in a label is read as part of it: the line number comes last."""
    head, mark, tail = source.rpartition("#")
    chunk = 0
    if mark and tail.isdigit() and head.rpartition(":")[2].isdigit():
        source, chunk = head, int(tail)
    file, _, line = source.rpartition(":")
    if not file or not line.isdigit() or len(file) > MAX_SOURCE_CHARS:
        raise IsbertError(
            f"not a file:line source (or a file name over {MAX_SOURCE_CHARS} characters): {source[:80]!r}"
        )
    return file, int(line), chunk


def is_indexed(connection: sqlite3.Connection, source: str, text: str) -> bool:
    file, line, chunk = split_source(source)
    query = "SELECT 1 FROM docs WHERE file = ? AND line = ? AND chunk = ? AND hash = ?"
    return connection.execute(query, (file, line, chunk, content_hash(text))).fetchone() is not None


def insert_records(
    connection: sqlite3.Connection, first_id: int, sources: list[str], texts: list[str], store_texts: bool
) -> list[int]:
    """New rows with ids ``first_id, first_id + 1, ...`` (ids are never reused, so a reader holding older vectors
    never maps an id to another text)."""
    rows = []
    for offset, (source, text) in enumerate(zip(sources, texts, strict=True)):
        file, line, chunk = split_source(source)
        rows.append((first_id + offset, file, line, chunk, content_hash(text), text if store_texts else None))
    connection.executemany("INSERT INTO docs (id, file, line, chunk, hash, text) VALUES (?, ?, ?, ?, ?, ?)", rows)
    connection.executemany(
        "INSERT INTO docs_fts (rowid, text) VALUES (?, ?)", [(row[0], row[5] or "") for row in rows]
    )  # kept in step here, not by triggers: a database's own code never runs (trusted_schema off)
    return [row[0] for row in rows]


Record = tuple[str, "str | None", int]
"""A stored record as readers see it: ``label:line``, the text (None when only sources are stored), the chunk."""


def fetch_records(connection: sqlite3.Connection, folder: Path, ids: list[int]) -> dict[int, Record]:
    """``id -> (label:line, text or None, chunk)`` for those of ``ids`` still present (a concurrent delete may have
    removed some); a value of the wrong type is a one-line error."""
    found: dict[int, Record] = {}
    try:
        for row_id, file, line, chunk, text in _rows_by_id(connection, "id, file, line, chunk, text", ids):
            sound = isinstance(file, str) and isinstance(line, int) and isinstance(chunk, int)
            if not sound or not (text is None or isinstance(text, str)):
                raise IsbertError(f"{folder / DATABASE}: damaged record for vector {row_id}; rebuild the index")
            found[int(row_id)] = (f"{file}:{line}", text, chunk)
    except sqlite3.Error as error:
        raise database_error(folder, error) from None
    return found


def _rows_by_id(connection: sqlite3.Connection, columns: str, ids: list[int]) -> Iterator[tuple[Any, ...]]:
    """``SELECT columns FROM docs`` for ``ids``, 500 at a time (under SQLite's limit on bound values)."""
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        sql = f"SELECT {columns} FROM docs WHERE id IN ({','.join('?' * len(chunk))})"  # nosec B608 # fixed columns; ids bound
        yield from connection.execute(sql, chunk)


def ids_where(connection: sqlite3.Connection, *, file: str | None = None, ids: list[int] | None = None) -> list[int]:
    """The ids of a file's records (``file`` ending in ``/``: every file under that folder), or those of ``ids``
    that exist."""
    if file is not None:
        if file.endswith("/"):
            query = "SELECT id FROM docs WHERE substr(file, 1, ?) = ? ORDER BY id"
            return [row[0] for row in connection.execute(query, (len(file), file))]
        return [row[0] for row in connection.execute("SELECT id FROM docs WHERE file = ? ORDER BY id", (file,))]
    return sorted(row[0] for row in _rows_by_id(connection, "id", sorted(set(ids or []))))


def delete_records(connection: sqlite3.Connection, ids: list[int]) -> None:
    rows = list(_rows_by_id(connection, "id, text", ids))
    connection.executemany(
        "INSERT INTO docs_fts (docs_fts, rowid, text) VALUES ('delete', ?, ?)", [(i, t or "") for i, t in rows]
    )
    connection.executemany("DELETE FROM docs WHERE id = ?", [(i,) for i in ids])
    connection.execute("DELETE FROM files WHERE file NOT IN (SELECT DISTINCT file FROM docs)")


def file_hashes(connection: sqlite3.Connection) -> dict[str, str | None]:
    """``label -> sha256`` of every file the index has read (None where unknown: a migrated index), what
    ``index sync`` compares."""
    query = (
        "SELECT file, sha256 FROM files UNION "
        "SELECT DISTINCT file, NULL FROM docs WHERE file NOT IN (SELECT file FROM files)"
    )
    return {str(file): None if digest is None else str(digest) for file, digest in connection.execute(query)}


def set_file_hash(connection: sqlite3.Connection, file: str, digest: str) -> None:
    connection.execute(
        "INSERT INTO files (file, sha256) VALUES (?, ?) ON CONFLICT (file) DO UPDATE SET sha256 = excluded.sha256 "
        "WHERE sha256 != excluded.sha256",  # an unchanged file is no change (no new generation)
        (file, digest),
    )
