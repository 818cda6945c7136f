"""Hostile downloads: bombs, lying sizes, escaping or linked members, oversized and endless responses, random bytes.

Every attack must end in one ``IsbertError`` line, with nothing written for that source (no file, no folder, no
temporary file) and nothing at all outside the data folder; the bombs must be refused with memory far below their
size. The bombs are built by streaming zeros, so building them does not hold them in memory either.
"""

from __future__ import annotations

import functools
import http.server
import io
import resource
import shutil
import tarfile
import tempfile
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isbert.errors import IsbertError
from isbert.evaluation import download

pytestmark = pytest.mark.reliability

MB = 1 << 20
BOMB_BYTES = 400 * MB
"""The issue's bomb: a 408 KB zip that wrote 400 MB."""
MEMORY_BOUND = 40 * MB
"""Far below the bomb's size; the downloader reads in blocks of about 1 MB."""
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class ZeroReader(io.RawIOBase):
    """``size`` zero bytes, produced block by block (so a bomb never exists in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def build_zip_bomb(path: Path, name: str, size: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, archive.open(name, "w") as member:
        shutil.copyfileobj(ZeroReader(size), member, MB)


def build_tar_bomb(path: Path, name: str, size: int) -> None:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = size
        tar.addfile(info, ZeroReader(size))


def lie_about_zip_sizes(path: Path, declared: int) -> None:
    """Rewrite every local and central header's uncompressed size to ``declared`` (the data stays as it is)."""
    blob = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = blob.find(signature)
        while start != -1:
            blob[start + offset : start + offset + 4] = declared.to_bytes(4, "little")
            start = blob.find(signature, start + 4)
    path.write_bytes(bytes(blob))


def tar_with(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for info, payload in members:
            info.size = len(payload) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(payload) if info.isfile() else None)


def regular(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def special(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


class HostileHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files, plus three misbehaving endpoints."""

    def do_GET(self) -> None:
        if self.path == "/endless":  # no Content-Length, never ends
            self.send_response(200)
            self.end_headers()
            try:
                while True:
                    self.wfile.write(bytes(64 * 1024))
            except OSError:
                return
        if self.path == "/announces-too-much":
            self.send_response(200)
            self.send_header("Content-Length", str(10**12))
            self.end_headers()
            self.wfile.write(b"x" * 1024)
            return
        if self.path == "/stalls":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(3)
            return
        super().do_GET()

    def log_message(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        pass


@pytest.fixture(scope="module")
def www(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("www")


@pytest.fixture(scope="module")
def server(www: Path) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(HostileHandler, directory=str(www)))
    httpd.daemon_threads = True
    httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]  # clients hang up on purpose
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def refused(sources: list[download.Source], root: Path, match: str, **limits: int) -> str:
    """Run the download, expect one IsbertError line matching ``match``, and nothing under ``root / "data"``."""
    target = root / "data"
    with pytest.raises(IsbertError, match=match) as caught:
        download.download(target, sources, log=lambda message: None, **limits)
    message = str(caught.value)
    assert "\n" not in message, message
    assert files_under(target) == [], files_under(target)
    return message


def measured(function) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(tracemalloc peak, growth of the process's maximum resident size) while ``function`` runs."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    try:
        function()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before


# ------------------------------------------------------------------------------------------------ bombs


def test_zip_bomb_is_refused_in_bounded_memory(server: str, www: Path, tmp_path: Path, reliability) -> None:
    build_zip_bomb(www / "bomb.zip", "test-gold/STS.input.big.txt", BOMB_BYTES)
    assert (www / "bomb.zip").stat().st_size < MB
    source = download.Source("bomb", f"{server}/bomb.zip", "zip", {"test-gold/": "mirror/"})
    peak, rss = measured(lambda: refused([source], tmp_path, r"bomb: .*more than .* MB.*--max-extract-mb"))
    assert peak < MEMORY_BOUND and rss < 4 * MEMORY_BOUND, (peak, rss)
    reliability.fault()


def test_tar_bomb_is_refused_in_bounded_memory(server: str, www: Path, tmp_path: Path, reliability) -> None:
    build_tar_bomb(www / "bomb.tar.gz", "stsbenchmark/sts-test.csv", BOMB_BYTES)
    assert (www / "bomb.tar.gz").stat().st_size < MB
    source = download.Source("tarbomb", f"{server}/bomb.tar.gz", "tar", {"stsbenchmark/sts-test.csv": "mirror/t.csv"})
    peak, rss = measured(lambda: refused([source], tmp_path, r"tarbomb: .*more than .* MB.*--max-extract-mb"))
    assert peak < MEMORY_BOUND and rss < 4 * MEMORY_BOUND, (peak, rss)
    reliability.fault()


def test_zip_member_lying_about_its_size_is_refused(server: str, www: Path, tmp_path: Path, reliability) -> None:
    """The headers say 1 KB; the data inflates to 400 MB. Only the bytes actually read count, in blocks."""
    build_zip_bomb(www / "liar.zip", "d/big.txt", BOMB_BYTES)
    lie_about_zip_sizes(www / "liar.zip", 1024)
    source = download.Source("liar", f"{server}/liar.zip", "zip", {"d/big.txt": "mirror/big.txt"})
    peak, _ = measured(lambda: refused([source], tmp_path, r"liar: "))
    assert peak < MEMORY_BOUND, peak
    reliability.fault()


def test_extraction_counts_the_bytes_it_reads_not_the_declared_size(reliability) -> None:
    """A reader that never ends (an archive library fooled by a lying header) is stopped at the cap."""
    sink = io.BytesIO()
    with pytest.raises(IsbertError, match=r"more than 1 MB"):
        download.copy_capped(ZeroReader(10**15), sink, limit=MB, what="endless member")
    assert len(sink.getvalue()) <= 2 * MB
    reliability.fault()


def test_tar_member_lying_about_its_size_is_refused(server: str, www: Path, tmp_path: Path, reliability) -> None:
    """Declared 10 bytes, followed by 2 KB more: the extra bytes are misread as headers; the pin refuses the rest."""
    header = tarfile.TarInfo("stsbenchmark/sts-test.csv")
    header.size = 10
    (www / "liar.tar").write_bytes(header.tobuf() + b"A" * 2048 + bytes(1024))
    source = download.Source("tarliar", f"{server}/liar.tar", "tar", {header.name: "sts/STSBenchmark/sts-test.csv"})
    refused([source], tmp_path, r"tarliar|sts-test\.csv")
    reliability.fault()


# ------------------------------------------------------------------------------------------------ bad members


GOOD = {"test-gold/STS.input.a.txt": "a\tb\n", "test-gold/STS.gs.a.txt": "5\n"}
BAD_NAMES = ["test-gold/../../../escaped.txt", "/tmp/isbert-absolute.txt", "..\\..\\escaped.txt", "unmapped/../../x"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_zip_with_a_bad_last_member_writes_nothing(server: str, www: Path, tmp_path: Path, reliability, bad) -> None:
    path = www / "last.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in GOOD.items():
            archive.writestr(name, content)
        archive.writestr(zipfile.ZipInfo(bad), "pwned")
    source = download.Source("last", f"{server}/last.zip", "zip", {"test-gold/": "mirror/"})
    refused([source], tmp_path, r"refusing .*outside|refusing")
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/isbert-absolute.txt").exists()
    reliability.fault()


def test_zip_symlink_member_is_refused(server: str, www: Path, tmp_path: Path, reliability) -> None:
    path = www / "ziplink.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in GOOD.items():
            archive.writestr(name, content)
        link = zipfile.ZipInfo("test-gold/STS.input.link.txt")
        link.external_attr = (0o120777 << 16) | 0x20  # S_IFLNK, as `zip --symlinks` stores it
        archive.writestr(link, "/etc/passwd")
    source = download.Source("ziplink", f"{server}/ziplink.zip", "zip", {"test-gold/": "mirror/"})
    refused([source], tmp_path, r"not a regular file")
    reliability.fault()


@pytest.mark.parametrize(
    "member",
    [
        special("stsbenchmark/link", tarfile.SYMTYPE, "/etc/passwd"),
        special("stsbenchmark/hard", tarfile.LNKTYPE, "stsbenchmark/sts-test.csv"),
        special("stsbenchmark/dev", tarfile.CHRTYPE),
        special("stsbenchmark/fifo", tarfile.FIFOTYPE),
        special("elsewhere/link", tarfile.SYMTYPE, "../../.."),  # not even mapped: still refused
        regular("stsbenchmark/../../escaped.csv"),
    ],
    ids=["symlink", "hardlink", "device", "fifo", "unmapped-symlink", "traversal"],
)
def test_tar_bad_last_member_writes_nothing(server: str, www: Path, tmp_path: Path, reliability, member) -> None:
    path = www / "bad.tar.gz"
    tar_with(path, [(regular("stsbenchmark/sts-test.csv"), b"g\tf\ty\t1\t2.0\ta\tb\n"), (member, b"x")])
    source = download.Source("badtar", f"{server}/bad.tar.gz", "tar", {"stsbenchmark/": "mirror/"})
    refused([source], tmp_path, r"refusing")
    assert not (tmp_path / "escaped.csv").exists()
    reliability.fault()


def test_duplicate_member_names_are_refused(server: str, www: Path, tmp_path: Path, reliability) -> None:
    path = www / "dup.zip"
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "w") as archive:
        archive.writestr("d/a.txt", "first")
        archive.writestr("d/a.txt", "second")
    refused([download.Source("dup", f"{server}/dup.zip", "zip", {"d/": "mirror/"})], tmp_path, r"twice")
    reliability.fault()


# ------------------------------------------------------------------------------------------------ responses


def test_download_over_the_cap_is_stopped(server: str, www: Path, tmp_path: Path, reliability) -> None:
    (www / "big.txt").write_bytes(b"x" * (3 * MB))
    source = download.Source("big", f"{server}/big.txt", "file", {"": "mirror/big.txt"})
    refused([source], tmp_path, r"big: .*more than 1 MB.*--max-download-mb", max_download_bytes=MB)
    reliability.fault()


def test_announced_size_over_the_cap_is_refused_before_reading(server: str, tmp_path: Path, reliability) -> None:
    source = download.Source("announced", f"{server}/announces-too-much", "file", {"": "mirror/x"})
    refused([source], tmp_path, r"announced: .*announces 1000000000000 bytes.*--max-download-mb")
    reliability.fault()


def test_endless_response_is_stopped_at_the_cap(server: str, tmp_path: Path, reliability) -> None:
    source = download.Source("endless", f"{server}/endless", "file", {"": "mirror/x"})
    started = time.monotonic()
    refused([source], tmp_path, r"endless: .*more than 2 MB", max_download_bytes=2 * MB)
    assert time.monotonic() - started < 30
    reliability.fault()


def test_stalled_response_times_out_in_one_line(server: str, tmp_path: Path, reliability) -> None:
    source = download.Source("stalled", f"{server}/stalls", "file", {"": "mirror/x"})
    target = tmp_path / "data"
    with pytest.raises(IsbertError, match=r"could not download stalled .*timed out.*--timeout"):
        download.download(target, [source], timeout=0.5, log=lambda message: None)
    assert files_under(target) == []
    reliability.fault()


def test_unreachable_host_and_bad_url_fail_in_one_line(tmp_path: Path, reliability) -> None:
    for url in ("http://127.0.0.1:9/closed-port", "nonsense://x", "http://[::1"):
        message = refused([download.Source("nowhere", url, "file", {"": "mirror/x"})], tmp_path, r"nowhere")
        assert "could not download nowhere" in message
        reliability.fault()


# ------------------------------------------------------------------------------------------------ fuzzing


def _valid_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in GOOD.items():
            archive.writestr(name, content * 50)
        archive.writestr("other/readme.txt", "hello")
    return buffer.getvalue()


def _valid_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in GOOD.items():
            info = tarfile.TarInfo(name)
            info.size = len(content.encode()) * 50
            tar.addfile(info, io.BytesIO(content.encode() * 50))
    return buffer.getvalue()


VALID = {"zip": _valid_zip(), "tar": _valid_tar()}


@st.composite
def damaged(draw, kind: str) -> bytes:  # type: ignore[no-untyped-def]
    """A valid archive with a few bytes overwritten, cut short, or replaced by random bytes."""
    blob = bytearray(VALID[kind])
    how = draw(st.sampled_from(["flip", "truncate", "random"]))
    if how == "random":
        return draw(st.binary(max_size=2048))
    if how == "truncate":
        return bytes(blob[: draw(st.integers(0, len(blob)))])
    for _ in range(draw(st.integers(1, 8))):
        blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
    return bytes(blob)


@FUZZ
@given(kind=st.sampled_from(["zip", "tar"]), data_=st.data())
def test_fuzzed_archives_give_files_or_one_line_errors(kind: str, data_, reliability) -> None:
    blob = data_.draw(damaged(kind))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "archive").write_bytes(blob)
        source = download.Source("fuzz", (root / "archive").as_uri(), kind, {"test-gold/": "mirror/"})
        target = root / "data"
        try:
            written = download.download(
                target, [source], log=lambda m: None, max_extract_bytes=MB, max_download_bytes=MB
            )
        except IsbertError as error:
            assert "\n" not in str(error), str(error)
            assert files_under(target) == [], files_under(target)
        else:
            assert all(p.is_relative_to(target.resolve() / "mirror") for p in written), written
            assert not [name for name in files_under(target) if Path(name).name.startswith(".")]
        assert sorted(p.name for p in root.iterdir()) == ["archive", "data"]
    reliability.fuzz_case()
