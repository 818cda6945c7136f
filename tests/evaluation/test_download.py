"""`isbert data download` against a local HTTP server serving small fixture archives; unsafe members refused."""

from __future__ import annotations

import argparse
import functools
import http.server
import io
import json
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from isbert.errors import IsbertError
from isbert.evaluation import check, download, readers, tasks
from isbert.evaluation.cli import add_commands


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An http.server on 127.0.0.1 (random port) serving ``tmp_path / "www"``."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *args, **kwargs: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    finally:
        httpd.shutdown()
        httpd.server_close()


def make_zip(path: Path, members: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def test_download_zip_tar_and_file(server: tuple[str, Path], tmp_path: Path) -> None:
    url, www = server
    make_zip(www / "sts.zip", {"test-gold/STS.input.x.txt": "a\tb\n", "test-gold/STS.gs.x.txt": "5\n", "junk.txt": "-"})
    with tarfile.open(www / "stsb.tar.gz", "w:gz") as tar:
        payload = b"g\tf\ty\t1\t2.0\ta\tb\n"
        info = tarfile.TarInfo("stsbenchmark/sts-test.csv")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    (www / "sentiment-dev").write_text("good\t1\n")
    sources = [
        download.Source("STS", f"{url}/sts.zip", "zip", {"test-gold/": "sts/raw/STS12/"}),
        # Fixture contents differ from the real files, so they go to paths without a known checksum.
        download.Source("STSb", f"{url}/stsb.tar.gz", "tar", {"stsbenchmark/sts-test.csv": "mirror/sts-test.csv"}),
        download.Source("SST", f"{url}/sentiment-dev", "file", {"": "mirror/sentiment-dev"}),
    ]
    target = tmp_path / "data"
    written = download.download(target, sources, log=lambda message: None)
    assert sorted(p.relative_to(target).as_posix() for p in written) == [
        "mirror/sentiment-dev",
        "mirror/sts-test.csv",
        "sts/raw/STS12/STS.gs.x.txt",
        "sts/raw/STS12/STS.input.x.txt",
    ]
    assert not (target / "junk.txt").exists()
    assert readers.read_stsb(target / "mirror/sts-test.csv").sentences1 == ["a"]


def test_downloaded_file_with_a_known_path_must_match_its_checksum(server: tuple[str, Path], tmp_path: Path) -> None:
    url, www = server
    (www / "sentiment-dev").write_text("not the real file\t1\n")
    source = download.Source("SST", f"{url}/sentiment-dev", "file", {"": "transfer/SST/binary/sentiment-dev"})
    target = tmp_path / "data"
    with pytest.raises(IsbertError, match=r"sentiment-dev: checksum mismatch after download"):
        download.download(target, [source], log=lambda message: None)
    assert not (target / "transfer/SST/binary/sentiment-dev").exists()


def test_source_checksum_is_checked_before_writing(server: tuple[str, Path], tmp_path: Path) -> None:
    import hashlib

    url, www = server
    (www / "f.txt").write_text("content\n")
    good = hashlib.sha256(b"content\n").hexdigest()
    target = tmp_path / "data"
    source = download.Source("F", f"{url}/f.txt", "file", {"": "mirror/f.txt"}, sha256="0" * 64)
    with pytest.raises(IsbertError, match=r"checksum mismatch .*nothing written"):
        download.download(target, [source], log=lambda message: None)
    assert not (target / "mirror/f.txt").exists()
    source = download.Source("F", f"{url}/f.txt", "file", {"": "mirror/f.txt"}, sha256=good)
    assert download.download(target, [source], log=lambda message: None) == [(target / "mirror/f.txt").resolve()]


def test_archive_member_escaping_the_target_is_refused(server: tuple[str, Path], tmp_path: Path) -> None:
    url, www = server
    make_zip(www / "evil.zip", {"ok/a.txt": "fine", "ok/../../../escaped.txt": "pwned"})
    target = tmp_path / "data"
    with pytest.raises(IsbertError, match=r"refusing .*ok/\.\./\.\./\.\./escaped\.txt.*outside"):
        download.download(
            target, [download.Source("evil", f"{url}/evil.zip", "zip", {"ok/": "x/"})], log=lambda m: None
        )
    assert not (tmp_path / "escaped.txt").exists()
    make_zip(www / "abs.zip", {"/etc/passwd-copy": "x"})
    with pytest.raises(IsbertError, match="refusing"):
        download.download(target, [download.Source("abs", f"{url}/abs.zip", "zip", {"": "x/"})], log=lambda m: None)


def test_tar_symlink_member_is_refused(server: tuple[str, Path], tmp_path: Path) -> None:
    url, www = server
    with tarfile.open(www / "link.tar", "w") as tar:
        info = tarfile.TarInfo("d/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(IsbertError, match="not a regular file"):
        download.download(
            tmp_path / "data", [download.Source("l", f"{url}/link.tar", "tar", {"d/": "x/"})], log=lambda m: None
        )


def test_target_path_escaping_is_refused_before_download(tmp_path: Path) -> None:
    source = download.Source("bad", "http://127.0.0.1:9/never-fetched", "file", {"": "../outside.txt"})
    with pytest.raises(IsbertError, match=r"refusing .*\.\./outside\.txt"):
        download.download(tmp_path / "data", [source], log=lambda m: None)


def test_http_error_names_source(server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(IsbertError, match=r"could not download missing from .*/nothing-here"):
        download.download(
            tmp_path, [download.Source("missing", f"{url}/nothing-here", "file", {"": "x"})], log=lambda m: None
        )


def test_cli_download_with_sources_file(server: tuple[str, Path], tmp_path: Path, capsys) -> None:
    url, www = server
    (www / "TREC_10.label").write_text("NUM:dist How far ?\n")
    sources = tmp_path / "sources.json"
    sources.write_text(
        json.dumps(
            [
                {
                    "name": "TREC",
                    "url": f"{url}/TREC_10.label",
                    "kind": "file",
                    "members": {"": "mirror/TREC_10.label"},
                }
            ]
        )
    )
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["data", "download", "--data-dir", str(tmp_path / "d"), "--sources", str(sources)])
    assert args.func(args) == 0
    assert (tmp_path / "d/mirror/TREC_10.label").read_text() == "NUM:dist How far ?\n"
    assert "wrote 1 files" in capsys.readouterr().out


def test_default_sources_cover_the_raw_layout() -> None:
    targets = {dest for source in download.default_sources() for dest in source.members.values()}
    for task in tasks.STS_SUBSETS:
        assert set(tasks.task_files(task, "raw")) <= targets
    assert "sts/STSBenchmark/sts-test.csv" in targets and "sts/SICK/SICK_test_annotated.txt" in targets


def test_default_sources_use_https() -> None:
    plain = [source.url for source in download.default_sources() if not source.url.startswith("https://")]
    assert plain == []


def test_every_default_target_has_a_pinned_checksum() -> None:
    """A default download writes only files whose sha256 is known, so a changed source can never slip in."""
    for source in download.default_sources():
        for archive_path, target in source.members.items():
            assert not target.endswith("/"), f"{source.name}: folder mapping {archive_path} -> {target} is not pinned"
            assert target in check.KNOWN_SHA256, f"{source.name}: {target} has no pinned sha256"


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    return parser.parse_args(argv)


def test_cli_size_caps_have_defaults_and_are_passed_on(server: tuple[str, Path], tmp_path: Path) -> None:
    url, www = server
    (www / "big").write_bytes(b"x" * (2 << 20))
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps([{"name": "big", "url": f"{url}/big", "kind": "file", "members": {"": "m/big"}}]))
    base = ["data", "download", "--data-dir", str(tmp_path / "d"), "--sources", str(sources)]
    defaults = _cli(base)  # unset: the evaluation data and --unlabeled have their own defaults
    assert (defaults.max_download_mb, defaults.max_extract_mb) == (None, None)
    args = _cli([*base, "--max-download-mb", "1", "--max-extract-mb", "3"])
    with pytest.raises(IsbertError, match=r"big: .*more than 1 MB.*--max-download-mb"):
        args.func(args)
    assert not (tmp_path / "d/m/big").exists()
    assert _cli(base).func(_cli(base)) == 0 and (tmp_path / "d/m/big").stat().st_size == 2 << 20


def test_cli_caps_default_per_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from isbert.evaluation import unlabeled

    seen: dict[str, tuple[int, int]] = {}

    def fake_download(data_dir, sources, *, timeout, max_download_bytes, max_extract_bytes, **_):  # type: ignore[no-untyped-def]
        seen["eval"] = (max_download_bytes, max_extract_bytes)
        return []

    def fake_corpus(data_dir, sources, limits):  # type: ignore[no-untyped-def]
        seen["nli"] = (limits.max_download_bytes, limits.max_extract_bytes)
        return unlabeled.NliCorpus(tmp_path / "c.txt", 0, 0)

    monkeypatch.setattr(download, "download", fake_download)
    monkeypatch.setattr(unlabeled, "build_nli_corpus", fake_corpus)
    for extra in ([], ["--unlabeled", "nli"]):
        args = _cli(["data", "download", "--data-dir", str(tmp_path), *extra])
        assert args.func(args) == 0
    mb = download.MB
    assert seen["eval"] == (download.DEFAULT_MAX_DOWNLOAD_MB * mb, download.DEFAULT_MAX_EXTRACT_MB * mb)
    assert seen["nli"] == (unlabeled.DEFAULT_MAX_DOWNLOAD_MB * mb, unlabeled.DEFAULT_MAX_EXTRACT_MB * mb)
    published = json.loads((Path(unlabeled.__file__).parent / "unlabeled_sources.json").read_text())
    assert max(item["bytes"] for item in published) < unlabeled.DEFAULT_MAX_DOWNLOAD_MB * mb  # the real ones fit


def test_failed_download_keeps_the_previous_file_and_leaves_no_temporary(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    url, www = server
    target = tmp_path / "data"
    (target / "mirror").mkdir(parents=True)
    (target / "mirror/STS.input.x.txt").write_text("previous\n")
    make_zip(www / "bad.zip", {"test-gold/STS.input.x.txt": "new\n", "test-gold/../../evil.txt": "-"})
    source = download.Source("bad", f"{url}/bad.zip", "zip", {"test-gold/": "mirror/"})
    with pytest.raises(IsbertError, match="refusing"):
        download.download(target, [source], log=lambda message: None)
    assert sorted(p.name for p in target.rglob("*")) == ["STS.input.x.txt", "mirror"]
    assert (target / "mirror/STS.input.x.txt").read_text() == "previous\n"
    make_zip(www / "good.zip", {"test-gold/STS.input.x.txt": "new\n"})
    download.download(target, [download.Source("good", f"{url}/good.zip", "zip", {"test-gold/": "mirror/"})], log=print)
    assert sorted(p.name for p in target.rglob("*")) == ["STS.input.x.txt", "mirror"]
    assert (target / "mirror/STS.input.x.txt").read_text() == "new\n"


def test_a_missing_mapped_member_writes_nothing(server: tuple[str, Path], tmp_path: Path) -> None:
    url, www = server
    make_zip(www / "partial.zip", {"a.txt": "a"})
    source = download.Source("partial", f"{url}/partial.zip", "zip", {"a.txt": "m/a.txt", "b.txt": "m/b.txt"})
    with pytest.raises(IsbertError, match=r"partial: .*lacks b\.txt"):
        download.download(tmp_path / "d", [source], log=lambda message: None)
    assert list((tmp_path / "d").rglob("*")) == []


def test_redirect_from_https_to_http_is_refused() -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request("https://example.org/data.zip")
    with pytest.raises(urllib.error.URLError, match="https"):
        download.NoDowngradeRedirects().redirect_request(request, None, 302, "Found", {}, "http://example.org/data.zip")
