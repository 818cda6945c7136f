"""Corpus reading: counts of used and skipped lines, formats, errors."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isbert.errors import InputError, IsbertError
from isbert.training import corpus as corpus_module
from isbert.training.corpus import build_corpus_dataset, corpus_fingerprint, default_heldout_size, split_heldout


def test_txt_stats_strip_empty_and_dedup(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("  a man walks \n\n   \nA dog runs\na man walks\n", encoding="utf-8")
    dataset, stats = build_corpus_dataset([corpus], tmp_path / "cache", dedup=True)
    assert list(dataset["text"]) == ["a man walks", "A dog runs"]
    assert (stats.lines, stats.used, stats.skipped) == (5, 2, {"empty": 2, "duplicate": 1})
    assert "2 sentences used of 5 lines" in stats.summary()
    dataset, stats = build_corpus_dataset([corpus], tmp_path / "cache", dedup=False)
    assert len(dataset) == 3 and stats.skipped == {"empty": 2}


def test_gz_jsonl_csv_and_several_files(tmp_path: Path) -> None:
    gz = tmp_path / "a.txt.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as handle:
        handle.write("one\ntwo\n")
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text('{"sent": "three"}\n{"sent": " "}\n', encoding="utf-8")
    dataset, stats = build_corpus_dataset([gz, jsonl], tmp_path / "cache", text_field="sent")
    assert list(dataset["text"]) == ["one", "two", "three"]
    assert [f["used"] for f in stats.files] == [2, 1]
    tsv = tmp_path / "c.tsv"
    tsv.write_text("id\tsentence\n1\tfour\n", encoding="utf-8")
    dataset, _ = build_corpus_dataset([tsv], tmp_path / "cache", column="sentence")
    assert list(dataset["text"]) == ["four"]


def test_missing_field_column_and_bad_utf8(tmp_path: Path) -> None:
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text('{"text": "x"}\n{"other": "y"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"b.jsonl:2: no field 'text'"):
        build_corpus_dataset([jsonl], tmp_path / "cache")
    csv_file = tmp_path / "c.csv"
    csv_file.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="no column 'text'"):
        build_corpus_dataset([csv_file], tmp_path / "cache")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good line\nbad \xff line\nanother\n")
    with pytest.raises(InputError, match=r"bad.txt:2: not valid UTF-8"):
        build_corpus_dataset([bad], tmp_path / "cache")
    dataset, stats = build_corpus_dataset([bad], tmp_path / "cache", encoding_errors="skip")
    assert len(dataset) == 2 and stats.skipped == {"not valid UTF-8": 1}


def test_empty_and_missing_corpus(tmp_path: Path) -> None:
    empty = tmp_path / "e.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(IsbertError, match="the corpus is empty"):
        build_corpus_dataset([empty], tmp_path / "cache")
    with pytest.raises(IsbertError, match=r"input file not found: .*nope\.txt"):
        build_corpus_dataset([tmp_path / "nope.txt"], tmp_path / "cache")


def test_folders_and_patterns_expand_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("two\n", encoding="utf-8")
    (folder / "a.txt").write_text("one\n", encoding="utf-8")
    (folder / "sub" / "c.txt").write_text("three\n", encoding="utf-8")
    (folder / "notes.md").write_text("not a corpus file\n", encoding="utf-8")
    dataset, stats = build_corpus_dataset([folder], tmp_path / "cache")
    assert list(dataset["text"]) == ["one", "two", "three"]
    assert [Path(f["path"]).name for f in stats.files] == ["a.txt", "b.txt", "c.txt"]
    dataset, _ = build_corpus_dataset([str(folder / "*.txt"), folder / "a.txt"], tmp_path / "cache")
    assert list(dataset["text"]) == ["one", "two"]  # a file named twice is read once
    with pytest.raises(IsbertError, match=r"^no files match '.*\*\.tsv'$"):
        build_corpus_dataset([str(folder / "*.tsv")], tmp_path / "cache")
    (folder / "sub" / "bad.txt").write_bytes(b"fine\nbad \xff\n")
    with pytest.raises(InputError, match=r"bad.txt:2: not valid UTF-8"):
        build_corpus_dataset([folder], tmp_path / "cache")


def test_fingerprint_covers_every_file_of_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\n", encoding="utf-8")
    before = corpus_fingerprint([tmp_path])
    assert [Path(entry["path"]).name for entry in before] == ["a.txt"]
    (tmp_path / "b.txt").write_text("two\n", encoding="utf-8")
    assert [Path(entry["path"]).name for entry in corpus_fingerprint([tmp_path])] == ["a.txt", "b.txt"]
    assert corpus_fingerprint([str(tmp_path / "*.txt")]) == corpus_fingerprint([tmp_path])


def test_heldout_split_is_seeded_and_disjoint(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(f"sentence {i}\n" for i in range(500)), encoding="utf-8")
    dataset, _ = build_corpus_dataset([corpus], tmp_path / "cache")
    assert default_heldout_size(500) == 16 and default_heldout_size(150) == 0 and default_heldout_size(10**7) == 1000
    train_a, held_a = split_heldout(dataset, 16, seed=1)
    _, held_b = split_heldout(dataset, 16, seed=1)
    assert list(held_a["text"]) == list(held_b["text"])
    assert len(train_a) == 484 and not set(held_a["text"]) & set(train_a["text"])


def test_dedup_is_off_by_default_and_spans_every_file(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("same\nx\nsame\n", encoding="utf-8")
    second.write_text("same\ny\n", encoding="utf-8")
    dataset, stats = build_corpus_dataset([first, second], tmp_path / "cache")
    assert list(dataset["text"]) == ["same", "x", "same", "same", "y"] and stats.skipped == {}
    dataset, stats = build_corpus_dataset([first, second], tmp_path / "cache", dedup=True)
    assert list(dataset["text"]) == ["same", "x", "y"]  # the first occurrence in the whole corpus, not per file
    assert [(f["used"], f["skipped"]) for f in stats.files] == [(2, {"duplicate": 1}), (1, {"duplicate": 1})]
    assert (stats.lines, stats.used, stats.skipped) == (5, 3, {"duplicate": 2})


def test_fingerprint_records_exactly_path_size_and_mtime(tmp_path: Path) -> None:
    # these records enter the run folder's marker (run.json "trajectory"/"corpus"), compared key by key on
    # --resume: a renamed or added key would make every earlier run refuse to resume
    corpus = tmp_path / "a.txt"
    corpus.write_text("one\n", encoding="utf-8")
    os.utime(corpus, ns=(1_000_000_000, 1_234_567_890_123_456_789))
    link = tmp_path / "link.txt"
    link.symlink_to(corpus)
    expected = {"path": str(corpus.resolve()), "size": 4, "mtime_ns": 1_234_567_890_123_456_789}
    assert corpus_fingerprint([corpus]) == [expected]
    assert json.loads(json.dumps(corpus_fingerprint(str(link)))) == [expected]


def test_cache_lives_only_in_cache_dir_even_under_a_missing_grandparent(tmp_path: Path, monkeypatch) -> None:
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-default"))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    corpus = tmp_path / "c.txt"
    corpus.write_text("one\ntwo\n", encoding="utf-8")
    cache = tmp_path / "run" / ".corpus-cache" / "rank-0"  # neither run nor .corpus-cache exists yet
    dataset, _ = build_corpus_dataset([corpus], cache)
    assert list(dataset["text"]) == ["one", "two"]
    assert dataset.cache_files and all(Path(f["filename"]).is_relative_to(cache) for f in dataset.cache_files)
    assert not (tmp_path / "hf-default").exists() and not any((tmp_path / "cwd").iterdir())


def test_a_link_planted_at_the_cache_parent_is_replaced_never_written_through(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("one\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    parent = tmp_path / "run" / ".corpus-cache"
    parent.parent.mkdir()
    parent.symlink_to(elsewhere)
    dataset, _ = build_corpus_dataset([corpus], parent / "rank-0")
    assert list(dataset["text"]) == ["one"]
    assert parent.is_dir() and not parent.is_symlink() and not any(elsewhere.iterdir())


def test_a_planted_link_another_rank_removed_first_is_no_error(tmp_path: Path, monkeypatch) -> None:
    # ranks share the parent .corpus-cache: both may see the planted link, only one of them unlinks it
    corpus = tmp_path / "c.txt"
    corpus.write_text("one\n", encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    parent = tmp_path / "run" / ".corpus-cache"
    parent.parent.mkdir()
    parent.symlink_to(tmp_path / "elsewhere")
    is_symlink = Path.is_symlink

    def other_rank_wins(self: Path) -> bool:
        result = is_symlink(self)
        if result and self == parent:
            os.unlink(parent)  # the other rank, between this rank's check and its unlink
        return result

    monkeypatch.setattr(Path, "is_symlink", other_rank_wins)
    dataset, _ = build_corpus_dataset([corpus], parent / "rank-1")
    assert list(dataset["text"]) == ["one"] and parent.is_dir() and not parent.is_symlink()


def test_running_stats_are_cleaned_after_every_build(tmp_path: Path) -> None:
    good, bad, empty = tmp_path / "good.txt", tmp_path / "bad.txt", tmp_path / "empty.txt"
    good.write_text("one\n", encoding="utf-8")
    bad.write_bytes(b"fine\nbad \xff\n")
    empty.write_text("\n", encoding="utf-8")
    build_corpus_dataset([good], tmp_path / "cache")
    assert corpus_module._RUNNING_STATS == {}
    with pytest.raises(InputError):
        build_corpus_dataset([bad], tmp_path / "cache")
    assert corpus_module._RUNNING_STATS == {}
    with pytest.raises(IsbertError):
        build_corpus_dataset([empty], tmp_path / "cache")
    assert corpus_module._RUNNING_STATS == {}


def test_a_build_started_during_another_keeps_its_own_stats(tmp_path: Path, monkeypatch) -> None:
    import datasets

    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("one\ntwo\n", encoding="utf-8")
    second.write_text("three\n", encoding="utf-8")
    real = datasets.Dataset.from_generator
    inner: list = []
    started: list = []

    def from_generator(*args, **kwargs):
        if not started:  # the second build runs (and finishes) while the first is under way
            started.append(True)
            inner.append(build_corpus_dataset([second], tmp_path / "cache-b"))
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets.Dataset, "from_generator", staticmethod(from_generator))
    dataset, stats = build_corpus_dataset([first], tmp_path / "cache-a")
    ((inner_dataset, inner_stats),) = inner
    assert (list(dataset["text"]), stats.used, [f["path"] for f in stats.files]) == (["one", "two"], 2, [str(first)])
    assert (list(inner_dataset["text"]), inner_stats.used) == (["three"], 1)
    assert corpus_module._RUNNING_STATS == {}


@pytest.mark.parametrize("yielded", [0, 2])
def test_an_unexpected_read_failure_is_one_line_with_its_cause(tmp_path: Path, monkeypatch, yielded: int) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("one\ntwo\n", encoding="utf-8")

    def failing(paths, stats, **options):
        yield from ["one", "two"][:yielded]
        raise OSError("the disk went away")

    monkeypatch.setattr(corpus_module, "iter_corpus", failing)
    with pytest.raises(IsbertError) as raised:
        build_corpus_dataset([corpus], tmp_path / "cache")
    assert str(raised.value) == "could not read the corpus: the disk went away"
    assert corpus_module._RUNNING_STATS == {}


def test_an_empty_corpus_is_one_line_naming_its_files(tmp_path: Path, monkeypatch) -> None:
    import datasets

    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("\n  \n", encoding="utf-8")
    second.write_text("", encoding="utf-8")
    with pytest.raises(IsbertError) as raised:
        build_corpus_dataset([first, second], tmp_path / "cache")
    assert str(raised.value) == f"the corpus is empty: no non-empty lines in {first} and 1 more files"
    # a datasets version that returns an empty dataset instead of refusing an empty generator: the same line
    empty = datasets.Dataset.from_dict({"text": []})
    monkeypatch.setattr(datasets.Dataset, "from_generator", staticmethod(lambda *args, **kwargs: empty))
    with pytest.raises(IsbertError) as raised:
        build_corpus_dataset([first], tmp_path / "cache")
    assert str(raised.value) == f"the corpus is empty: no non-empty lines in {first}"


@pytest.mark.parametrize(
    ("sentences", "expected"),
    [(0, 0), (1, 0), (199, 0), (200, 16), (201, 16), (1599, 16), (1600, 16), (1699, 16), (1700, 17), (1799, 17),
     (2550, 25), (99_999, 999), (100_000, 1000), (100_099, 1000), (100_100, 1000), (10**9, 1000)],
)  # fmt: skip
def test_default_heldout_size_boundaries(sentences: int, expected: int) -> None:
    size = default_heldout_size(sentences)
    assert size == expected and type(size) is int


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**9))
def test_default_heldout_size_is_one_percent_between_16_and_1000(sentences: int) -> None:
    size = default_heldout_size(sentences)
    assert type(size) is int
    if sentences < 200:
        assert size == 0
    else:
        assert 16 <= size <= 1000
        assert size in (16, 1000) or size * 100 <= sentences < (size + 1) * 100


def test_split_heldout_sizes_zero_one_and_all_but_one() -> None:
    import datasets

    texts = [f"sentence {i}" for i in range(5)]
    dataset = datasets.Dataset.from_dict({"text": texts})
    for size in (0, -1):
        train, heldout = split_heldout(dataset, size, seed=3)
        assert train is dataset and heldout is None
    for size in (1, 4):
        train, heldout = split_heldout(dataset, size, seed=3)
        assert (len(train), len(heldout)) == (5 - size, size)
        assert sorted(list(train["text"]) + list(heldout["text"])) == texts
    for size in (5, 6):
        with pytest.raises(IsbertError) as raised:
            split_heldout(dataset, size, seed=3)
        assert str(raised.value) == f"--heldout-size {size} leaves no training sentences (the corpus has 5)"
