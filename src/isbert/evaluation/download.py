"""`isbert data download`: fetch the evaluation data from its sources, treating every byte as hostile.

Each source is handled in four phases, and nothing is written for it unless all of them pass:

1. download: streamed in blocks to a temporary file inside the data folder, stopped as soon as it passes
   ``max_download_bytes`` (or at once when Content-Length announces more);
2. plan: every archive member is checked before any is extracted: its name stays inside the data folder, it is a
   regular file (no links, devices, fifos), no name appears twice, and the declared sizes stay within
   ``max_extract_bytes``;
3. stage: the mapped members are decompressed in blocks into temporary files next to their targets, counting the
   bytes actually produced (an archive can lie about sizes), and each is checked against its pinned sha256;
4. commit: each staged file is fsynced and renamed over its target (``os.replace``), so an interruption never
   leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import lzma
import os
import stat
import struct
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from isbert.atomic import fsync_path
from isbert.confined import escape
from isbert.errors import IsbertError, printable
from isbert.evaluation.check import KNOWN_SHA256
from isbert.evaluation.tasks import STS_SUBSETS
from isbert.identity import sha256_file

MB = 1 << 20
BLOCK = MB
"""Bytes read at a time from the network and from an archive member: the most any one read holds in memory."""

# The whole evaluation data set (shared/data) is 33 MB uncompressed; the largest single file is SST-2's train split
# (3.8 MB) and the original archives are at most tens of MB. The caps leave several times that room, and still stop
# the bomb (a 408 KB zip that expanded to 400 MB) long before it fills a disk or the memory.
DEFAULT_MAX_DOWNLOAD_MB = 100
"""Largest download accepted per source (--max-download-mb)."""
DEFAULT_MAX_EXTRACT_MB = 250
"""Largest total (declared, and actually decompressed) size of one archive's members (--max-extract-mb)."""
MAX_MEMBERS = 10_000
"""Real archives hold a few dozen members; a huge count is a memory attack on the archive reader's index."""

_ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    NotImplementedError,  # zip compression methods the standard library lacks
    RuntimeError,  # encrypted zip members
    ValueError,
    OverflowError,
    OSError,  # gzip and bz2 report corrupt streams as OSError
)
"""What the standard library's archive readers raise on damaged or hostile input."""


@dataclass
class Source:
    """One download: a plain file, or an archive whose members (exact names, or folder prefixes ending in '/')
    are mapped to paths inside the data folder."""

    name: str
    url: str
    kind: Literal["file", "zip", "tar"]
    members: dict[str, str]
    sha256: str | None = None
    """Expected sha256 of the downloaded bytes, where known (a mirror can pin its files)."""


@dataclass
class Limits:
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_MB * MB
    max_extract_bytes: int = DEFAULT_MAX_EXTRACT_MB * MB
    timeout: float = 60.0


# ----------------------------------------------------------------------------------------------------
# the sources

_IXA = "https://ixa2.si.ehu.eus/stswiki/images"
_STS_ARCHIVES = {
    "STS12": (f"{_IXA}/4/40/STS2012-en-test.zip", "test-gold/", "STS."),
    "STS13": (f"{_IXA}/2/2f/STS2013-en-test.zip", "test-gs/", "STS."),
    "STS14": (f"{_IXA}/8/8c/STS2014-en-test.zip", "sts-en-test-gs-2014/", "STS."),
    "STS15": (f"{_IXA}/d/da/STS2015-en-test.zip", "test_evaluation_task2a/", "STS."),
    "STS16": (f"{_IXA}/9/98/STS2016-en-test.zip", "sts2016-english-with-gs-v1.0/", "STS2016."),
}


def default_sources() -> list[Source]:
    """The original public sources, as in SentEval's ``data/downstream/get_transfer_data.bash``, over https.

    They give the ``raw`` text variant of STS12-16 and STSb (use ``--text raw``); SentEval's tokenized copies
    and MRPC (distributed by Microsoft as an .msi installer) have to be made with SentEval's own script.
    Every target is an exact file with a pinned sha256 in :data:`KNOWN_SHA256`.
    """
    sources = []
    for task, (url, folder, prefix) in _STS_ARCHIVES.items():
        members = {
            f"{folder}{prefix}{kind}.{sub}.txt": f"sts/raw/{task}/STS.{kind}.{sub}.txt"
            for sub in STS_SUBSETS[task]
            for kind in ("input", "gs")
        }
        sources.append(Source(task, url, "zip", members))
    stsb = {f"stsbenchmark/sts-{s}.csv": f"sts/STSBenchmark/sts-{s}.csv" for s in ("train", "dev", "test")}
    sources.append(Source("STSBenchmark", f"{_IXA}/4/48/Stsbenchmark.tar.gz", "tar", stsb))
    sick = "https://raw.githubusercontent.com/brmson/dataset-sts/master/data/sts/sick2014"
    sources.append(
        Source("SICK-R", f"{sick}/SICK_test_annotated.txt", "file", {"": "sts/SICK/SICK_test_annotated.txt"})
    )
    binary = {
        f"data/{folder}/{name}": f"transfer/{task}/{name}"
        for folder, task, names in (
            ("rt10662", "MR", ("rt-polarity.pos", "rt-polarity.neg")),
            ("customerr", "CR", ("custrev.pos", "custrev.neg")),
            ("subj", "SUBJ", ("subj.subjective", "subj.objective")),
            ("mpqa", "MPQA", ("mpqa.pos", "mpqa.neg")),
        )
        for name in names
    }
    fair = "https://dl.fbaipublicfiles.com/senteval/senteval_data/datasmall_NB_ACL12.zip"
    sources.append(Source("MR/CR/SUBJ/MPQA", fair, "zip", binary))
    sif = "https://raw.githubusercontent.com/PrincetonML/SIF/master/data"
    for split in ("train", "dev", "test"):
        target = f"transfer/SST/binary/sentiment-{split}"
        sources.append(Source(f"SST2/{split}", f"{sif}/sentiment-{split}", "file", {"": target}))
    trec = "https://cogcomp.seas.upenn.edu/Data/QA/QC"
    for name in ("train_5500.label", "TREC_10.label"):
        sources.append(Source(f"TREC/{name}", f"{trec}/{name}", "file", {"": f"transfer/TREC/{name}"}))
    return sources


def load_sources(path: str | os.PathLike[str]) -> list[Source]:
    """Read a JSON list of ``{"name", "url", "kind", "members"[, "sha256"]}`` objects (a mirror, a test server)."""
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
        sources = [Source(str(i["name"]), str(i["url"]), i["kind"], dict(i["members"]), i.get("sha256")) for i in items]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise IsbertError(f"{path}: not a valid sources file ({printable(str(error))})") from None
    for source in sources:
        if source.kind not in ("file", "zip", "tar"):
            raise IsbertError(f"{path}: source {source.name!r} has kind {source.kind!r}; use file, zip or tar")
    return sources


# ----------------------------------------------------------------------------------------------------
# phase 1: the download


class NoDowngradeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects, except from https to anything else (which would drop the transport's protection)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.full_url.startswith("https://") and not newurl.startswith("https://"):
            raise urllib.error.URLError(f"refused redirect from https to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(NoDowngradeRedirects)


def copy_capped(reader: IO[bytes], writer: IO[bytes], limit: int, what: str, flag: str = "--max-extract-mb") -> int:
    """Copy in blocks, counting the bytes actually read; refuse (one line) once they pass ``limit``."""
    total = 0
    while block := reader.read(BLOCK):
        total += len(block)
        if total > limit:
            raise IsbertError(f"{what}: more than {_mb(limit)} MB; nothing written (raise {flag} if it is genuine)")
        writer.write(block)
    return total


def _mb(size: int) -> str:
    return f"{size / MB:g}"


def _fetch(source: Source, into: IO[bytes], limits: Limits) -> str:
    """Stream the source's bytes into ``into``; return their sha256. Network failures become one IsbertError line."""
    what = f"{source.name}: download from {source.url}"
    hashing = _HashingWriter(into)

    try:
        with _OPENER.open(source.url, timeout=limits.timeout) as response:
            announced = response.headers.get("Content-Length")
            if announced and announced.isdigit() and int(announced) > limits.max_download_bytes:
                raise IsbertError(
                    f"{what} announces {announced} bytes, more than {_mb(limits.max_download_bytes)} MB; "
                    "nothing written (raise --max-download-mb if it is genuine)"
                )
            copy_capped(response, hashing, limits.max_download_bytes, what, "--max-download-mb")  # type: ignore[arg-type]
    except (OSError, http.client.HTTPException, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise DownloadFailed(f"could not download {source.name} from {source.url}: {printable(str(reason))}") from None
    return hashing.digest.hexdigest()


class DownloadFailed(IsbertError):
    """The network (or the URL) failed; ``reason`` is the failure alone, for callers that give their own advice."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"{reason}; check the connection and the URL, raise --timeout for a slow server, or use --sources with "
            "a mirror"
        )


class _HashingWriter:
    """Writes through to a file and hashes on the way, so that the downloaded bytes are read only once."""

    def __init__(self, into: IO[bytes]) -> None:
        self.into = into
        self.digest = hashlib.sha256()

    def write(self, block: bytes) -> None:
        self.digest.update(block)
        self.into.write(block)


# ----------------------------------------------------------------------------------------------------
# phase 2: the plan (every member checked before any is written)


def _safe_target(root: Path, relative: str, what: str) -> Path:
    """``relative`` (an archive member's name, or where a file goes) resolved inside ``root``, else an error."""
    relative_posix = relative.replace("\\", "/")  # zip files written on Windows use backslashes
    reason = escape(root, relative_posix)
    if reason is not None:
        raise IsbertError(
            f"refusing {printable(what)} '{printable(relative)}': it would be written outside {root} (the name "
            f"{reason})"
        )
    return (root / Path(*PurePosixPath(relative_posix).parts)).resolve()


def _map_member(name: str, members: dict[str, str]) -> str | None:
    for source, dest in members.items():
        if source.endswith("/") and name.startswith(source) and not name.endswith("/"):
            return dest + name[len(source) :]
        if name == source:
            return dest
    return None


@dataclass
class Member:
    """An archive member as the plan sees it: its name, declared size, and whether it is a regular file."""

    name: str
    size: int
    kind: Literal["file", "dir", "other"]
    handle: object
    """The archive library's own record (ZipInfo or TarInfo), to open it in the staging phase."""


def _zip_members(archive: zipfile.ZipFile) -> Iterator[Member]:
    for info in archive.infolist():
        mode = info.external_attr >> 16
        if info.is_dir():
            kind: Literal["file", "dir", "other"] = "dir"
        elif stat.S_IFMT(mode) not in (0, stat.S_IFREG) or info.flag_bits & 0x1:  # a link, device, ...; encrypted
            kind = "other"
        else:
            kind = "file"
        yield Member(info.filename, info.file_size, kind, info)


def _tar_members(archive: tarfile.TarFile) -> Iterator[Member]:
    while (info := archive.next()) is not None:
        kind: Literal["file", "dir", "other"] = "dir" if info.isdir() else "other"
        if info.isreg() and not info.issparse():
            kind = "file"
        yield Member(info.name, info.size, kind, info)


def _zip_entry_count(path: Path) -> int | None:
    """The member count announced by the zip's end record, read before the reader indexes every member."""
    with open(path, "rb") as handle:
        record = zipfile._EndRecData(handle)  # type: ignore[attr-defined]  # stable since Python 2
    return None if record is None else int(record[zipfile._ECD_ENTRIES_TOTAL])  # type: ignore[attr-defined]


def _plan(members: Iterator[Member], source: Source, root: Path, limits: Limits) -> list[tuple[Member, Path]]:
    """Check every member; return the mapped ones with their targets. Refuses (one line) on the first bad member."""
    what = f"{source.name}: archive {source.url}"
    seen: set[str] = set()
    declared = 0
    plan: list[tuple[Member, Path]] = []
    for count, member in enumerate(members, start=1):
        if count > MAX_MEMBERS:
            raise IsbertError(f"{what} has more than {MAX_MEMBERS} members; nothing written")
        _safe_target(root, member.name, f"archive member of {source.url}")
        if member.kind == "other":
            raise IsbertError(
                f"refusing archive member '{printable(member.name)}' of {source.url}: not a regular file "
                "(a link, device or encrypted member); nothing written"
            )
        if member.name in seen:
            raise IsbertError(f"refusing {what}: member '{printable(member.name)}' appears twice; nothing written")
        seen.add(member.name)
        declared += max(member.size, 0)
        if declared > limits.max_extract_bytes:
            raise IsbertError(
                f"{what} would extract more than {_mb(limits.max_extract_bytes)} MB (declared sizes up to "
                f"'{printable(member.name)}'); nothing written (raise --max-extract-mb if it is genuine)"
            )
        dest = _map_member(member.name, source.members) if member.kind == "file" else None
        if dest is not None:
            plan.append((member, _safe_target(root, dest, f"archive member '{member.name}' of {source.url}")))
    _refuse_colliding_targets(plan, source)
    missing = [m for m in source.members if not m.endswith("/") and m not in seen]
    if missing:
        raise IsbertError(f"{source.name}: {source.url} archive lacks {', '.join(missing)}; nothing written")
    return plan


def _refuse_colliding_targets(plan: list[tuple[Member, Path]], source: Source) -> None:
    """Two members on one target, a target inside another, or onto a folder: the commit could not be all-or-nothing."""
    counts = Counter(target for _, target in plan)
    for target in counts:
        if counts[target] > 1 or any(parent in counts for parent in target.parents) or target.is_dir():
            raise IsbertError(
                f"refusing {source.name}: {source.url} maps more than one member onto {target}, or onto a folder; "
                "nothing written (fix the members mapping)"
            )


# ----------------------------------------------------------------------------------------------------
# phases 3 and 4: staging next to the targets, then committing


@dataclass
class Staging:
    """What one source has put on disk so far: temporary files and the folders it had to create."""

    root: Path
    files: list[tuple[Path, Path]] = field(default_factory=list)
    """(temporary file, target) pairs, in order."""
    folders: list[Path] = field(default_factory=list)

    def make_parent(self, target: Path) -> None:
        missing = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
        target.parent.mkdir(parents=True, exist_ok=True)
        self.folders.extend(missing)


def _stage(reader: IO[bytes], target: Path, budget: int, what: str, staging: Staging) -> int:
    """Write ``reader`` to a temporary file beside ``target`` (fsynced), checked against its pinned sha256."""
    try:
        staging.make_parent(target)
        handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False)  # noqa: SIM115 (registered before use, closed below)
        staging.files.append((Path(handle.name), target))
        with handle:
            size = copy_capped(reader, handle, budget, what)
            handle.flush()
            os.fsync(handle.fileno())
        _verify_download(Path(handle.name), target, staging.root)
    except OSError as error:  # the archive's read errors arrive as _ArchiveDamaged, so this is the disk
        raise IsbertError(f"could not write {target}: {printable(str(error))}") from None
    return size


def _verify_download(temporary: Path, target: Path, root: Path) -> None:
    """A file whose path has a known sha256 (the reference copy's) must match it before it replaces anything."""
    expected = KNOWN_SHA256.get(target.relative_to(root.resolve()).as_posix())
    if expected is None:
        return
    if (got := sha256_file(temporary)) != expected:
        raise IsbertError(
            f"{target}: checksum mismatch after download (expected sha256 {expected[:16]}..., got "
            f"{got[:16]}...); the source changed or the transfer was corrupted; nothing written"
        )


def _commit(staging: Staging) -> list[Path]:
    """Rename every staged file over its target, then fsync the folders so that the renames are durable."""
    try:
        for temporary, target in staging.files:
            os.replace(temporary, target)
        for folder in {target.parent for _, target in staging.files}:
            fsync_path(folder)
    except OSError as error:
        raise IsbertError(f"could not write under {staging.root}: {printable(str(error))}") from None
    return [target for _, target in staging.files]


@contextlib.contextmanager
def _staging(root: Path) -> Iterator[Staging]:
    """On any failure, delete this source's temporary files and the folders it created: nothing is left."""
    staging = Staging(root.resolve())
    try:
        yield staging
    except BaseException:
        for temporary, _ in staging.files:
            temporary.unlink(missing_ok=True)
        for folder in sorted(set(staging.folders), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


class _ArchiveDamaged(Exception):
    """A read from an archive member failed: the archive is damaged (not the disk being written)."""


class _GuardedReader:
    """An archive member's reader whose failures are told apart from failures of the file being written."""

    def __init__(self, reader: IO[bytes]) -> None:
        self.reader = reader

    def read(self, size: int) -> bytes:
        try:
            return self.reader.read(size)
        except _ARCHIVE_ERRORS as error:
            raise _ArchiveDamaged(printable(str(error))) from None


def _open_archive(path: Path, source: Source) -> tuple[zipfile.ZipFile | tarfile.TarFile, Iterator[Member]]:
    if source.kind == "zip":
        entries = _zip_entry_count(path)
        if entries is not None and entries > MAX_MEMBERS:
            raise IsbertError(f"{source.name}: archive {source.url} has {entries} members (at most {MAX_MEMBERS})")
        archive = zipfile.ZipFile(path)
        return archive, _zip_members(archive)
    tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 (closed by the caller's with-block)
    return tar, _tar_members(tar)


def _open_member(archive: zipfile.ZipFile | tarfile.TarFile, member: Member) -> IO[bytes]:
    if isinstance(archive, zipfile.ZipFile):
        return archive.open(member.handle)  # type: ignore[arg-type]
    reader = archive.extractfile(member.handle)  # type: ignore[arg-type]
    if reader is None:
        raise tarfile.TarError(f"member {member.name} has no data")
    return reader


def _extract(blob: Path, source: Source, root: Path, limits: Limits) -> list[Path]:
    """Plan every member, then stage the mapped ones; nothing is committed unless all of them pass."""
    try:
        archive, members = _open_archive(blob, source)
        with archive:
            plan = _plan(members, source, root, limits)
            with _staging(root) as staging:
                budget = limits.max_extract_bytes
                for member, target in plan:
                    what = f"{source.name}: archive {source.url} member '{printable(member.name)}' extracts"
                    with _open_member(archive, member) as reader:
                        budget -= _stage(_GuardedReader(reader), target, budget, what, staging)  # type: ignore[arg-type]
                return _commit(staging)
    except (_ArchiveDamaged, *_ARCHIVE_ERRORS) as error:
        raise _invalid_archive(source, error) from None


def _invalid_archive(source: Source, error: BaseException) -> IsbertError:
    return IsbertError(
        f"{source.name}: {source.url} is not a valid {source.kind} archive ({printable(str(error))}); nothing "
        "written (the source may have changed or the transfer been cut: try again, or use --sources with a mirror)"
    )


# ----------------------------------------------------------------------------------------------------
# phase 3 for archives that are read, not kept: the mapped members' lines

MAX_LINE_BYTES = MB
"""Longest line handed to a reader of archive members: one sentence pair is a few KB, a huge line is an attack."""


def member_lines(
    blob: Path, source: Source, root: Path, limits: Limits
) -> Iterator[tuple[str, Iterator[tuple[int, bytes]]]]:
    """Plan every member (phase 2, as for a download that is kept), then yield ``(mapped name, lines)`` for each
    mapped member in archive order, ``lines`` giving ``(line number, bytes)``. The bytes actually decompressed
    count against ``max_extract_bytes`` and no line may pass :data:`MAX_LINE_BYTES`; a damaged archive is one line.
    Consume each member's lines before asking for the next member."""
    try:
        archive, members = _open_archive(blob, source)
        with archive:
            plan = _plan(members, source, root, limits)
            budget = _Budget(limits.max_extract_bytes)  # shared by the members: the cap is per archive
            for member, _ in plan:
                name = _map_member(member.name, source.members) or member.name
                with _open_member(archive, member) as reader:
                    yield name, _lines(reader, budget, source, member.name)
    except (_ArchiveDamaged, *_ARCHIVE_ERRORS) as error:
        raise _invalid_archive(source, error) from None


@dataclass
class _Budget:
    cap: int
    spent: int = 0


def _lines(reader: IO[bytes], budget: _Budget, source: Source, member: str) -> Iterator[tuple[int, bytes]]:
    # Runs in the caller's loop, not inside member_lines' try: its failures must already be one-line errors.
    what = f"{source.name}: archive {source.url} member '{printable(member)}'"
    number = 0
    while True:
        try:
            line = reader.readline(MAX_LINE_BYTES + 1)
        except _ARCHIVE_ERRORS as error:
            raise IsbertError(
                f"{what} is damaged ({printable(str(error))}); nothing written (the source may have changed or the "
                "transfer been cut: try again, or use --sources with a mirror)"
            ) from None
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES:
            raise IsbertError(f"{what}: line {number} is longer than {_mb(MAX_LINE_BYTES)} MB; nothing written")
        budget.spent += len(line)
        if budget.spent > budget.cap:
            raise IsbertError(
                f"{what}: the archive extracts more than {_mb(budget.cap)} MB; nothing written (raise "
                "--max-extract-mb if it is genuine)"
            )
        yield number, line


# ----------------------------------------------------------------------------------------------------
# the whole download


def download(
    data_dir: str | os.PathLike[str],
    sources: list[Source] | None = None,
    *,
    timeout: float = 60.0,
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_MB * MB,
    max_extract_bytes: int = DEFAULT_MAX_EXTRACT_MB * MB,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Fetch the sources into ``data_dir`` (created if needed) and return the files written.

    Per source, nothing is written unless everything passes: the download within ``max_download_bytes`` and its own
    ``sha256`` (if given), every archive member (confined name, regular file, sizes within ``max_extract_bytes``),
    and every written file's pinned checksum (:data:`KNOWN_SHA256`). Every failure is one ``IsbertError`` line.
    """
    limits = Limits(max_download_bytes, max_extract_bytes, timeout)
    root = Path(data_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for source in sources if sources is not None else default_sources():
        for dest in source.members.values():
            _safe_target(root, dest or "x", f"target path of {source.name}")
        log(f"downloading {source.name}: {source.url}")
        written.extend(_download_one(source, root, limits))
    return written


@contextlib.contextmanager
def downloaded(source: Source, root: Path, limits: Limits) -> Iterator[IO[bytes]]:
    """Phase 1 on its own: the source's bytes in a temporary file inside ``root`` (gone on exit), rewound, and
    checked against ``source.sha256`` when it is pinned."""
    with tempfile.NamedTemporaryFile(dir=root, prefix=".download-", suffix=".part") as blob:
        got = _fetch(source, blob, limits)
        blob.flush()
        if source.sha256 and got != source.sha256:
            raise IsbertError(
                f"{source.url}: checksum mismatch (expected sha256 {source.sha256}, got {got}); nothing written"
            )
        blob.seek(0)
        yield blob


def _download_one(source: Source, root: Path, limits: Limits) -> list[Path]:
    with downloaded(source, root, limits) as blob:
        if source.kind != "file":
            return _extract(Path(blob.name), source, root, limits)
        (dest,) = source.members.values()
        target = _safe_target(root, dest, f"target path of {source.name}")
        with _staging(root) as staging:
            _stage(blob, target, limits.max_download_bytes, source.name, staging)
            return _commit(staging)
