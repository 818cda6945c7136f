"""`isbert data download --unlabeled nli` against local file:// mirrors in the real archives' layout."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evaluation.nli_mirror import Mirror, expected_corpus, make_mirror, write_archive
from isbert.cli import main
from isbert.errors import IsbertError
from isbert.evaluation import download, unlabeled


@pytest.fixture
def mirror(tmp_path: Path) -> Mirror:
    return make_mirror(tmp_path / "mirror")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def leftovers(data: Path) -> list[str]:
    return sorted(p.name for p in data.rglob("*") if p.is_file() and p.name.startswith("."))


def test_cli_builds_the_corpus_from_both_train_splits(mirror: Mirror, tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    sources = mirror.sources_json(tmp_path / "sources.json")
    code, out, err = run(
        ["data", "download", "--unlabeled", "nli", "--data-dir", str(data), "--sources", str(sources)], capsys
    )
    assert code == 0, err
    written = (data / unlabeled.NLI_CORPUS).read_text(encoding="utf-8").splitlines()
    assert written == expected_corpus(mirror)
    assert not set(written) & mirror.dev_sentences  # dev/test splits are not the paper's training set
    assert len(written) < 2 * (90 + 60)  # premises repeat three times: deduplicated
    summary = out.strip().splitlines()[-1]
    assert summary.startswith(f"nli: {len(written)} distinct sentences (of {2 * (90 + 60)} read from 150 pairs")
    assert "SNLI 1.0 snli_1.0_train.jsonl: 90 pairs" in summary and "multinli_1.0_train.jsonl: 60 pairs" in summary
    assert leftovers(data) == []  # the archives were read in a temporary file, then removed


def test_mirror_flag_keeps_the_pinned_checksums(mirror: Mirror, tmp_path: Path, capsys) -> None:
    """A mirror must serve the original bytes: the test archives are not them, so nothing is written."""
    data = tmp_path / "data"
    code, _, err = run(
        ["data", "download", "--unlabeled", "nli", "--data-dir", str(data), "--mirror", mirror.url], capsys
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "checksum mismatch (expected sha256 afb3d70a5af5d8de" in err
    assert not (data / unlabeled.NLI_CORPUS).exists() and leftovers(data) == []


def test_mirror_from_the_environment(mirror: Mirror, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(unlabeled.MIRROR_ENV, mirror.url + "/")
    assert [s.url for s in unlabeled.nli_sources()] == [
        f"{mirror.url}/snli_1.0.zip",
        f"{mirror.url}/multinli_1.0.zip",
    ]
    assert [s.sha256 for s in unlabeled.nli_sources()] == [s.sha256 for s in unlabeled._original_sources()]


def test_no_network_says_what_to_download_and_where_to_put_it(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    code, _, err = run(
        ["data", "download", "--unlabeled", "nli", "--data-dir", str(data), "--mirror", "http://127.0.0.1:9",
         "--timeout", "5"],
        capsys,
    )  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "could not download SNLI 1.0 from http://127.0.0.1:9/snli_1.0.zip" in err
    assert "download https://nlp.stanford.edu/projects/snli/snli_1.0.zip (sha256 afb3d70a" in err
    assert "https://cims.nyu.edu/~sbowman/multinli/multinli_1.0.zip (sha256 049f507b" in err
    assert "--mirror file:///FOLDER" in err
    assert not (data / unlabeled.NLI_CORPUS).exists()


def test_pinned_sources_are_the_original_https_locations() -> None:
    sources = unlabeled._original_sources()
    assert [s.url for s in sources] == [
        "https://nlp.stanford.edu/projects/snli/snli_1.0.zip",
        "https://cims.nyu.edu/~sbowman/multinli/multinli_1.0.zip",
    ]
    assert all(s.sha256 and len(s.sha256) == 64 for s in sources)


def _one_source(tmp_path: Path, name: str, build) -> download.Source:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        build(archive)
    return download.Source("SNLI 1.0", path.as_uri(), "zip", {"snli_1.0/snli_1.0_train.jsonl": "train.jsonl"})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"sentence1": "a"}\n', r"train.jsonl:1: not a JSON object with sentence1 and sentence2"),
        (b'{"sentence1": "a", "sentence2": "b"}\nnot json\n', r"train.jsonl:2: not a JSON object"),
        (b'{"sentence1": ["a"], "sentence2": "b"}\n', r"train.jsonl:1: sentence1 and sentence2 must be strings"),
        (b"[" * 100_000 + b"\n", r"train.jsonl:1: not a JSON object"),
        (b"x" * (download.MAX_LINE_BYTES + 10), r"line 1 is longer than 1 MB"),
    ],
)
def test_hostile_members_are_one_line_and_write_nothing(tmp_path: Path, content: bytes, message: str) -> None:
    source = _one_source(tmp_path, "bad.zip", lambda z: z.writestr("snli_1.0/snli_1.0_train.jsonl", content))
    with pytest.raises(IsbertError, match=message):
        unlabeled.build_nli_corpus(tmp_path / "data", [source], log=lambda m: None)
    assert not (tmp_path / "data" / unlabeled.NLI_CORPUS).exists() and leftovers(tmp_path / "data") == []


def test_archive_checks_of_the_evaluation_download_apply(tmp_path: Path) -> None:
    escaping = _one_source(tmp_path, "evil.zip", lambda z: z.writestr("../../evil.jsonl", "{}\n"))
    with pytest.raises(IsbertError, match=r"would be written outside"):
        unlabeled.build_nli_corpus(tmp_path / "data", [escaping], log=lambda m: None)
    missing = _one_source(tmp_path, "other.zip", lambda z: z.writestr("snli_1.0/README.txt", "x\n"))
    with pytest.raises(IsbertError, match=r"archive lacks snli_1.0/snli_1.0_train.jsonl"):
        unlabeled.build_nli_corpus(tmp_path / "data", [missing], log=lambda m: None)
    big = b'{"sentence1": "a b", "sentence2": "c d"}\n' * 40_000  # 1.6 MB that deflates to a few KB
    bomb = _one_source(tmp_path, "bomb.zip", lambda z: z.writestr("snli_1.0/snli_1.0_train.jsonl", big))
    with pytest.raises(IsbertError, match=r"more than 1 MB"):
        unlabeled.build_nli_corpus(tmp_path / "data", [bomb], download.Limits(max_extract_bytes=download.MB), log=print)
    assert not (tmp_path / "data" / unlabeled.NLI_CORPUS).exists()


texts = st.text(alphabet=st.sampled_from("ab \t\n\u00e9\u2028."), max_size=8)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(texts, texts), min_size=1, max_size=12))
def test_corpus_matches_an_independent_reading(tmp_path_factory: pytest.TempPathFactory, pairs) -> None:
    """Any sentences (blank, repeated, with tabs, newlines or U+2028 inside): one per line, as the reference says."""
    folder = tmp_path_factory.mktemp("mirror")
    rng = random.Random(0)
    write_archive(folder / "snli_1.0.zip", "snli_1.0", pairs, rng, genre=False)
    write_archive(folder / "multinli_1.0.zip", "multinli_1.0", pairs[:1], rng, genre=True)
    mirror = Mirror(folder, {"snli_1.0.zip": pairs, "multinli_1.0.zip": pairs[:1]}, set())
    sources = download.load_sources(mirror.sources_json(folder / "sources.json"))
    corpus = unlabeled.build_nli_corpus(folder / "data", sources, log=lambda m: None)
    lines = corpus.path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and lines[:-1] == expected_corpus(mirror)
    non_empty = [t for p in pairs + pairs[:1] for t in p if " ".join(t.split())]
    assert corpus.sentences == len(lines) - 1 and corpus.read == len(non_empty)
    assert list(corpus.pairs.items()) == [
        ("SNLI 1.0 snli_1.0_train.jsonl", len(pairs)),
        ("MultiNLI 1.0 multinli_1.0_train.jsonl", 1),
    ]
