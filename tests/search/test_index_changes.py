"""An index for a folder that changes: skip what is indexed, upsert and delete by file or id, sync with a folder,
build from `isbert encode`'s vectors, migrate a first-format folder, hybrid search, and readers beside a writer."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_search_index import make_word_model_folder, sentences, write_lines

import isbert
from isbert.cli import main
from isbert.errors import IsbertError
from isbert.search.chunking import token_spans
from isbert.search.hybrid import fts_query, reciprocal_rank_fusion
from isbert.search.index import SearchIndex

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "index-v1"
"""A first-format index folder written by the code before the SQLite store (16 records from a.txt/more.txt)."""


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_word_model_folder(tmp_path_factory.mktemp("changes-model"))


@pytest.fixture(scope="module")
def model(model_folder: Path):
    return isbert.load(model_folder, device="cpu")


def build(tmp_path: Path, model, texts: list[str], name: str = "a.txt") -> SearchIndex:
    SearchIndex.build(tmp_path / "idx", model, "tiny", write_lines(tmp_path / name, texts), show_progress=False)
    return SearchIndex.open(tmp_path / "idx")


def sources(index: SearchIndex) -> list[str]:
    return sorted(record["source"] for record in index.records(range(10_000)))


def test_adding_the_same_file_twice_adds_nothing(model, tmp_path: Path) -> None:
    index = build(tmp_path, model, sentences(20))
    report = index.add(model, tmp_path / "a.txt", show_progress=False)
    assert report.added == 0 and len(index) == 20
    assert index.generation == 1 and [p.name for p in (tmp_path / "idx").glob("*.faiss")] == ["vectors-000001.faiss"]
    write_lines(tmp_path / "a.txt", [*sentences(20), *sentences(3, offset=50)])  # a file that grew
    report = index.add(model, tmp_path / "a.txt", show_progress=False)
    assert report.added == 3 and len(index) == 23 and len(set(sources(index))) == 23


def test_replace_upserts_a_file_and_keeps_the_others(model, tmp_path: Path) -> None:
    index = build(tmp_path, model, sentences(10))
    index.add(model, write_lines(tmp_path / "b.txt", sentences(5, offset=20)), show_progress=False)
    write_lines(tmp_path / "b.txt", sentences(2, offset=40))
    report = index.add(model, tmp_path / "b.txt", replace=True, show_progress=False)
    assert report.added == 2 and len(index) == 12
    assert [s for s in sources(index) if s.startswith("b.txt")] == ["b.txt:1", "b.txt:2"]
    hit = index.search(model, [sentences(1, offset=41)[0]], k=1)[0][0]
    assert hit.source == "b.txt:2" and hit.text == sentences(1, offset=41)[0]


def test_delete_by_source_and_by_id(model, tmp_path: Path, capsys) -> None:
    index = build(tmp_path, model, sentences(10))
    index.add(model, write_lines(tmp_path / "b.txt", sentences(5, offset=20)), show_progress=False)
    folder = str(tmp_path / "idx")
    assert main(["index", "delete", folder, "--source", "b.txt"]) == 0
    assert "deleted 5 records" in capsys.readouterr().out
    assert main(["index", "delete", folder, "--id", "0", "--id", "3"]) == 0
    reader = SearchIndex.open(folder)
    assert len(reader) == 8 and sources(reader) == sorted(f"a.txt:{n}" for n in (2, 3, 5, 6, 7, 8, 9, 10))
    results = reader.search(model, [sentences(10)[0], sentences(10)[5]], k=8)
    assert all(hit.id not in (0, 3) and hit.source.startswith("a.txt") for row in results for hit in row)
    assert results[1][0].text == sentences(10)[5]
    assert main(["index", "delete", folder, "--source", "nope.txt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing was deleted" in err


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_delete_from_approximate_indexes_keeps_the_rest_searchable(model, tmp_path: Path, kind: str) -> None:
    texts = sentences(120)
    corpus = write_lines(tmp_path / "a.txt", texts)
    SearchIndex.build(tmp_path / "idx", model, "tiny", corpus, kind=kind, show_progress=False)
    index = SearchIndex.open(tmp_path / "idx")
    assert index.delete(ids=list(range(0, 120, 2))) == 60 and len(index) == 60
    found = [row[0].id for row in index.search(model, texts[1:40:2], k=1)]
    assert all(i % 2 == 1 for i in found) and sum(a == b for a, b in zip(found, range(1, 40, 2), strict=True)) >= 18


def test_sync_adds_new_replaces_changed_and_deletes_removed_files(model_folder: Path, tmp_path: Path, capsys) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_lines(docs / "keep.txt", sentences(4))
    write_lines(docs / "change.txt", sentences(3, offset=10))
    write_lines(docs / "drop.txt", sentences(2, offset=20))
    folder = str(tmp_path / "idx")
    assert main(["index", "build", folder, "--model", str(model_folder), "-i", str(docs), "--no-progress"]) == 0
    write_lines(docs / "change.txt", sentences(1, offset=30))
    (docs / "drop.txt").unlink()
    write_lines(docs / "new.txt", sentences(2, offset=40))
    capsys.readouterr()
    assert main(["index", "sync", folder, "-i", str(docs), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1 new, 1 changed, 1 removed and 1 unchanged files; added 3 texts, removed 5" in out
    index = SearchIndex.open(folder)
    assert sources(index) == sorted(["change.txt:1", "new.txt:1", "new.txt:2", *(f"keep.txt:{n}" for n in range(1, 5))])
    assert index.search(None, ["unused"], k=1, mode="keyword") == [[]]
    generation = SearchIndex.open(folder).generation
    assert main(["index", "sync", folder, "-i", str(docs), "--no-progress"]) == 0
    assert "0 new, 0 changed, 0 removed and 3 unchanged files" in capsys.readouterr().out
    assert SearchIndex.open(folder).generation == generation  # nothing changed: no new vectors file


def test_build_from_encode_output(model_folder: Path, model, tmp_path: Path, capsys) -> None:
    texts = sentences(30)
    corpus = write_lines(tmp_path / "c.txt", [texts[0], "", *texts[1:]])
    vectors = tmp_path / "vectors.npy"
    assert main(["encode", str(model_folder), "-i", str(corpus), "-o", str(vectors), "--no-progress"]) == 0
    with_texts, ids_only = str(tmp_path / "with"), str(tmp_path / "ids")
    build = ["index", "build", "--model", str(model_folder), "--vectors", str(vectors)]
    assert main([*build[:2], with_texts, *build[2:], "-i", str(corpus)]) == 0
    assert main([*build[:2], ids_only, *build[2:]]) == 0
    capsys.readouterr()
    index = SearchIndex.open(with_texts)
    assert len(index) == 30  # the empty line's row has no text and is left out
    assert [row[0].text for row in index.search(model, texts[:10], k=1)] == texts[:10]
    assert index.search(model, [texts[1]], k=1)[0][0].source == "c.txt:3"
    bare = SearchIndex.open(ids_only)
    hit = bare.search(model, [texts[4]], k=1)[0][0]
    assert hit.text is None and hit.source == "c.txt:6"
    assert main(["search", ids_only, texts[4], "--mode", "keyword"]) == 2
    assert "stores no texts" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", np.zeros((3, 5), np.float32))
    assert main([*build[:2], str(tmp_path / "x"), *build[2:4], "--vectors", str(tmp_path / "bad.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "24-d" in err


def test_a_first_format_folder_is_migrated_by_one_command(model, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "old"
    shutil.copytree(FIXTURE, folder)
    assert main(["search", str(folder), "the man runs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"isbert index migrate {folder}" in err
    assert main(["index", "migrate", str(folder)]) == 0
    assert "migrated 16 records" in capsys.readouterr().out
    assert not (folder / "manifest.json").exists() and not list(folder.glob("texts-*"))
    index = SearchIndex.open(folder)
    texts = [*sentences(12), *sentences(4, offset=12)]
    results = index.search(model, texts, k=1)
    assert [row[0].text for row in results] == texts and [row[0].id for row in results] == list(range(16))
    assert [row[0].source for row in results[11:14]] == ["corpus.txt:12", "more.txt:1", "more.txt:2"]
    index.check_model(model)  # the fingerprint came along
    assert main(["index", "migrate", str(folder)]) == 2
    assert "already in the current format" in capsys.readouterr().err


def test_a_rare_exact_term_is_found_by_keyword_and_hybrid_search_and_missed_by_vectors(model, tmp_path: Path) -> None:
    texts = sentences(60)
    texts[37] += " serial QX7734"
    index = build(tmp_path, model, texts)
    vector, keyword, hybrid = (index.search(model, ["QX7734"], k=5, mode=m)[0] for m in ("vector", "keyword", "hybrid"))
    assert 37 not in [hit.id for hit in vector]  # the tiny model reads it as q ##x ##7 ...: nothing like it
    assert keyword[0].id == 37 and hybrid[0].id == 37 and hybrid[0].text == texts[37]
    assert [hit.id for hit in hybrid[1:]] == [hit.id for hit in vector[:4]]


def test_a_source_filter_restricts_every_mode(model, tmp_path: Path) -> None:
    index = build(tmp_path, model, sentences(20))
    index.add(model, write_lines(tmp_path / "b.txt", sentences(20)), show_progress=False)
    for mode in ("vector", "keyword", "hybrid"):
        hits = index.search(model, ["the man runs"], k=10, mode=mode, source="b.txt")[0]
        assert hits and all(hit.source.startswith("b.txt:") for hit in hits), mode
        assert index.search(model, ["the man runs"], k=3, mode=mode, source="none.txt") == [[]]


def test_reciprocal_rank_fusion_against_a_plain_sum() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 4]], 10)
    expected = {1: 1 / 61, 2: 1 / 62, 3: 1 / 63 + 1 / 61, 4: 1 / 62}
    assert [i for i, _ in fused] == sorted(expected, key=lambda i: -expected[i])
    assert all(score == pytest.approx(expected[i]) for i, score in fused)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=60))
def test_any_user_text_is_a_literal_keyword_query(query: str) -> None:
    """FTS5 syntax characters from a user ("", *, NEAR, :, -, parentheses) are never an error or an operator."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(text)")
    db.execute("INSERT INTO t VALUES ('alpha beta'), ('gamma \"quoted\" NEAR(x y)')")
    compiled = fts_query(query)
    if compiled is None:
        assert not query.replace('"', "").replace("\x00", " ").split()  # no word but quotes and NULs
        return
    db.execute("SELECT rowid FROM t WHERE t MATCH ?", (compiled,)).fetchall()


def test_a_reader_keeps_answering_while_a_writer_adds_and_deletes(model, tmp_path: Path) -> None:
    """Issue 29 item 4: a reader opened before several writes reopens each new generation and never fails, though
    the writer removes the vectors files of older generations."""
    index = build(tmp_path, model, sentences(30))
    reader = SearchIndex.open(tmp_path / "idx")
    errors: list[BaseException] = []
    answered: list[int] = []
    stop = threading.Event()

    def search_forever() -> None:
        while not stop.is_set():
            try:
                for mode in ("vector", "hybrid"):
                    assert reader.search(model, [sentences(1)[0]], k=3, mode=mode)[0][0].text == sentences(1)[0]
                    answered.append(1)
            except BaseException as error:  # collected, and raised again in the test thread
                errors.append(error)
                return

    def wait_for_a_search() -> None:  # so that searches and writes interleave however fast the machine
        seen, deadline = len(answered), time.monotonic() + 30
        while len(answered) <= seen and not errors:
            assert time.monotonic() < deadline, "the reader answered nothing for 30 s"
            time.sleep(0.005)

    thread = threading.Thread(target=search_forever)
    thread.start()
    try:
        for step in range(6):
            wait_for_a_search()
            index.add(
                model, write_lines(tmp_path / f"w{step}.txt", sentences(4, offset=40 + 4 * step)), show_progress=False
            )
            index.delete(source=f"w{step}.txt") if step % 2 else None
        wait_for_a_search()
    finally:
        stop.set()
        thread.join()
    assert not errors, errors[0]
    assert len(list((tmp_path / "idx").glob("vectors-*.faiss"))) == 2
    assert reader.search(model, [sentences(1, offset=40)[0]], k=1)[0][0].source == "w0.txt:1"
    assert reader.generation == index.generation and len(reader) == 30 + 4 * 3


def test_a_stopped_build_is_replaced_with_overwrite(model, model_folder: Path, tmp_path: Path, capsys) -> None:
    """A first build interrupted in the middle of embedding leaves nothing: the same command runs again. A build
    killed before its commit (SIGKILL: no cleanup) leaves a database without tables: open and build say
    --overwrite, which replaces it."""
    corpus = write_lines(tmp_path / "c.txt", sentences(50))
    folder = tmp_path / "idx"

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    original = isbert.search.index.store.insert_records
    isbert.search.index.store.insert_records = interrupt
    try:
        with pytest.raises(KeyboardInterrupt):
            SearchIndex.build(folder, model, "tiny", corpus, show_progress=False)
    finally:
        isbert.search.index.store.insert_records = original
    assert not (folder / "index.sqlite").exists() and not list(folder.glob("vectors-*"))
    args = ["index", "build", str(folder), "--model", str(model_folder), "-i", str(corpus), "--no-progress"]
    assert main(args) == 0 and len(SearchIndex.open(folder)) == 50
    shutil.rmtree(folder)
    folder.mkdir()
    sqlite3.connect(folder / "index.sqlite").close()  # what the killed build's rolled-back transaction leaves
    with pytest.raises(IsbertError, match="--overwrite"):
        SearchIndex.open(folder)
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert len(SearchIndex.open(folder)) == 50


def test_a_reader_refuses_an_index_rebuilt_with_another_model(model, tmp_path: Path) -> None:
    """`index build --overwrite` with another model under a running reader: one line (the service's 503), never
    vectors of one model searched with queries of another."""
    reader = build(tmp_path, model, sentences(20))
    other = isbert.load(make_word_model_folder(tmp_path / "other", seed=3), device="cpu")
    corpus = write_lines(tmp_path / "b.txt", sentences(20))
    SearchIndex.build(tmp_path / "idx", other, "other", corpus, overwrite=True, show_progress=False)
    with pytest.raises(IsbertError, match="rebuilt with another model"):
        reader.search(model, ["the man runs"], k=1)
    assert SearchIndex.open(tmp_path / "idx").search(other, [sentences(20)[4]], k=1)[0][0].source == "b.txt:5"


def test_long_texts_are_chunked_with_overlap_found_by_piece_and_deleted_together(
    model, model_folder: Path, tmp_path: Path, capsys
) -> None:
    words = " ".join(sentences(30)).split()
    long_line = " ".join([*words[:60], "QX7734", *words[60:120]])
    corpus = write_lines(tmp_path / "long.txt", [sentences(1)[0], long_line])
    folder = str(tmp_path / "idx")
    args = ["index", "build", folder, "--model", str(model_folder), "-i", str(corpus), "--no-progress"]
    assert main([*args, "--chunk-tokens", "16", "--overlap", "16"]) == 2
    assert "--overlap must be below --chunk-tokens" in capsys.readouterr().err
    assert main([*args, "--chunk-tokens", "16", "--overlap", "4"]) == 0
    index = SearchIndex.open(folder)
    pieces = sorted((r["chunk"], r["text"]) for r in index.records(range(100)) if r["source"] == "long.txt:2")
    spans = token_spans(model.tokenizer, long_line)
    assert len(spans) > 100 and [n for n, _ in pieces] == list(range(len(pieces)))
    assert len(pieces) == len(range(0, len(spans) - 4, 12))  # windows of 16 tokens, 12 apart
    assert all(text in long_line for _, text in pieces)
    assert long_line.startswith(pieces[0][1]) and long_line.endswith(pieces[-1][1])
    starts = [spans[first][0] for first in range(0, len(spans) - 4, 12)]
    for number, (_, text) in enumerate(pieces):  # each piece starts at its window's first token, 12 tokens on
        assert long_line.find(text, starts[number]) == starts[number]
        if number:  # and shares the 4 tokens before it with the previous piece
            assert pieces[number - 1][1].endswith(long_line[spans[12 * number][0] : spans[12 * number + 3][1]])
    short = [r for r in index.records(range(100)) if r["source"] == "long.txt:1"]
    assert [(r["chunk"], r["text"]) for r in short] == [(0, sentences(1)[0])]
    hit = index.search(model, ["QX7734"], k=1, mode="keyword")[0][0]
    assert hit.source == "long.txt:2" and "QX7734" in hit.text and hit.chunk > 0
    assert main(["search", folder, "QX7734", "--mode", "keyword", "-k", "1"]) == 0
    assert f"[long.txt:2 #{hit.chunk}]" in capsys.readouterr().out
    index.add(model, write_lines(tmp_path / "more.txt", [long_line]), show_progress=False)  # adds split alike
    assert len([r for r in index.records(range(200)) if r["source"] == "more.txt:1"]) == len(pieces)
    assert index.delete(source="long.txt") == len(pieces) + 1
    assert not [r for r in index.records(range(200)) if r["source"].startswith("long.txt")]
