"""Index folders: exact match first, approximate recall vs exact, atomic append, refusal of a different model."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from pathlib import Path

import faiss
import numpy as np
import pytest
from tiny_models import make_tiny_backbone

import isbert
from isbert.cli import main
from isbert.errors import IsbertError
from isbert.search.index import IndexSpec, SearchIndex, choose_spec, new_faiss_index

SUBJECTS = ["the man", "a woman", "the dog", "a cat", "the child", "people"]
VERBS = ["runs", "walks", "sits", "eats", "plays", "reads", "jumps", "sleeps"]
PLACES = ["in the park", "on the beach", "at the house", "on the street"]


def sentences(count: int, offset: int = 0) -> list[str]:
    combos = [f"{s} {v} {p}" for s in SUBJECTS for v in VERBS for p in PLACES]
    return combos[offset : offset + count]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sql(folder: Path, statement: str, *values: object) -> None:
    """Edit the index database as an attacker with write access to the folder would."""
    with contextlib.closing(sqlite3.connect(folder / "index.sqlite")) as db, db:
        db.execute(statement, values)


def make_word_model_folder(folder: Path, seed: int = 0) -> Path:
    """A saved tiny IS-BERT (random weights, a tokenizer that knows the test words)."""
    backbone = make_tiny_backbone(folder / "backbone", seed=seed)
    model = isbert.build(str(backbone), out_channels=8, max_seq_length=16, device="cpu")
    model.save(str(folder / "model"))
    return folder / "model"


@pytest.fixture(scope="module")
def tiny_model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_word_model_folder(tmp_path_factory.mktemp("word-isbert"))


@pytest.fixture(scope="module")
def tiny_model(tiny_model_folder: Path):
    return isbert.load(tiny_model_folder, device="cpu")


def clustered_vectors(n: int, dim: int, centres: int, seed: int) -> np.ndarray:
    """Unit vectors around random centres: structured like sentence embeddings, unlike uniform noise."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(centres, dim))
    data = means[rng.integers(0, centres, n)] + 0.6 * rng.normal(size=(n, dim))
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    return data.astype(np.float32)


def test_indexed_sentence_is_found_first(tiny_model, tiny_model_folder: Path, tmp_path: Path) -> None:
    texts = sentences(80)
    corpus = write_lines(tmp_path / "corpus.txt", [texts[0], "", *texts[1:]])
    report = SearchIndex.build(tmp_path / "idx", tiny_model, str(tiny_model_folder), corpus, show_progress=False)
    assert report.added == 80 and report.spec.kind == "flat"
    index = SearchIndex.open(tmp_path / "idx")
    results = index.search(tiny_model, texts, k=3)
    assert [row[0].text for row in results] == texts
    assert all(row[0].score == pytest.approx(1.0, abs=1e-4) for row in results)
    assert results[1][0].source == "corpus.txt:3"  # the empty line 2 is skipped but lines keep their numbers
    assert index.manifest["model"] == str(tiny_model_folder.resolve()) and index.manifest["dimension"] == 24


@pytest.mark.parametrize(("kind", "storage"), [("hnsw", "float32"), ("ivf", "float32"), ("flat", "int8")])
def test_approximate_recall_against_exact(kind: str, storage: str) -> None:
    data = clustered_vectors(6000, 32, 40, seed=0)
    queries = clustered_vectors(100, 32, 40, seed=0)[:100] + 0.01
    exact = faiss.IndexFlatIP(32)
    exact.add(data)
    _, truth = exact.search(queries, 10)
    spec = choose_spec(len(data), kind, storage)
    index = new_faiss_index(32, spec)
    if not index.is_trained:
        index.train(data)
    index.add(data)
    _, found = index.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found, strict=True)])
    assert recall >= 0.9, f"{kind}/{storage} recall@10 {recall:.3f}"


def test_auto_kind_is_exact_for_small_and_ivf_for_large() -> None:
    assert choose_spec(1000).kind == "flat"
    large = choose_spec(1_000_000)
    assert large.kind == "ivf" and large.nlist == 1000 and large.nprobe == 62
    assert IndexSpec("hnsw", "float16").factory_string() == "HNSW32_SQfp16"
    with pytest.raises(IsbertError, match="unknown index kind"):
        choose_spec(10, "lsh")


@pytest.mark.parametrize(("kind", "storage"), [("hnsw", "float16"), ("ivf", "int8")])
def test_build_other_kinds_and_storages(tiny_model, tmp_path: Path, kind: str, storage: str) -> None:
    texts = sentences(120)
    corpus = write_lines(tmp_path / "c.txt", texts)
    SearchIndex.build(tmp_path / "i", tiny_model, "tiny", corpus, kind=kind, storage=storage, show_progress=False)
    index = SearchIndex.open(tmp_path / "i")
    assert len(index) == 120 and index.manifest["spec"]["storage"] == storage
    top = [row[0].text for row in index.search(tiny_model, texts[:20], k=5)]
    assert sum(a == b for a, b in zip(top, texts[:20], strict=True)) >= 18


def test_append_adds_texts_and_replaces_generation(tiny_model, tmp_path: Path) -> None:
    first, second = sentences(40), sentences(30, offset=40)
    SearchIndex.build(tmp_path / "i", tiny_model, "tiny", write_lines(tmp_path / "a.txt", first), show_progress=False)
    index = SearchIndex.open(tmp_path / "i")
    report = index.add(tiny_model, write_lines(tmp_path / "b.txt", second), show_progress=False)
    assert report.added == 30 and report.total == 70 and len(index) == 70
    reopened = SearchIndex.open(tmp_path / "i")
    hits = reopened.search(tiny_model, [second[5], first[5]], k=1)
    assert hits[0][0].text == second[5] and hits[0][0].source == "b.txt:6" and hits[0][0].id == 45
    assert hits[1][0].text == first[5]
    names = sorted(p.name for p in (tmp_path / "i").iterdir() if not p.name.startswith("."))
    # the previous generation's vectors stay until the next write, for a reader that read its number just before
    assert [n for n in names if n.endswith(".faiss")] == ["vectors-000001.faiss", "vectors-000002.faiss"]
    index.add(tiny_model, write_lines(tmp_path / "c.txt", sentences(3, offset=80)), show_progress=False)
    assert sorted(p.name for p in (tmp_path / "i").glob("*.faiss")) == ["vectors-000002.faiss", "vectors-000003.faiss"]


def test_failed_append_leaves_the_index_unchanged(tiny_model, tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "i"
    SearchIndex.build(folder, tiny_model, "tiny", write_lines(tmp_path / "a.txt", sentences(40)), show_progress=False)
    index = SearchIndex.open(folder)
    before = (sorted(p.name for p in folder.glob("*.faiss")), index.records(range(100)), index.generation)

    def broken_write(*args, **kwargs) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", broken_write)
    with pytest.raises(OSError, match="disk full"):
        index.add(tiny_model, write_lines(tmp_path / "b.txt", sentences(30, offset=40)), show_progress=False)
    monkeypatch.undo()
    reopened = SearchIndex.open(folder)
    assert (sorted(p.name for p in folder.glob("*.faiss")), reopened.records(range(100)), reopened.generation) == before
    assert not [p for p in folder.iterdir() if p.name.endswith(".partial")]
    assert len(reopened) == 40 and len(index) == 40


def test_a_different_model_is_refused(tiny_model, tmp_path: Path) -> None:
    SearchIndex.build(
        tmp_path / "i", tiny_model, "tiny", write_lines(tmp_path / "a.txt", sentences(10)), show_progress=False
    )
    other = isbert.load(make_word_model_folder(tmp_path / "other", seed=1), device="cpu")
    assert other.get_embedding_dimension() == tiny_model.get_embedding_dimension()
    index = SearchIndex.open(tmp_path / "i")
    index.check_model(tiny_model)
    with pytest.raises(IsbertError, match="not the model the index"):
        index.check_model(other, "other")
    with pytest.raises(IsbertError, match="not the model the index"):
        index.add(other, tmp_path / "a.txt", show_progress=False)


def test_cli_build_add_search_and_errors(
    tiny_model_folder: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = sentences(30)
    corpus = write_lines(tmp_path / "c.txt", texts)
    folder = tmp_path / "idx"
    assert (
        main(
            ["index", "build", str(folder), "--model", str(tiny_model_folder), "--input", str(corpus), "--no-progress"]
        )
        == 0
    )
    assert "added 30 texts" in capsys.readouterr().out
    more = write_lines(tmp_path / "more.txt", sentences(5, offset=30))
    assert main(["index", "add", str(folder), "--input", str(more), "--no-progress"]) == 0
    assert "holds 35 vectors" in capsys.readouterr().out
    queries = write_lines(tmp_path / "q.txt", [texts[3], sentences(1, offset=32)[0]])
    assert main(["search", str(folder), texts[7], "--queries", str(queries), "-k", "2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["hits"][0]["text"] for row in rows] == [texts[7], texts[3], sentences(1, offset=32)[0]]
    assert all(len(row["hits"]) == 2 for row in rows)
    # the same queries from standard input (a pipe): one model load for all of them; a bad byte names its line
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(f"{texts[3]}\n\n{texts[9]}\n".encode())))
    assert main(["search", str(folder), "--queries", "-", "-k", "1", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["hits"][0]["text"] for row in rows] == [texts[3], texts[9]]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"fine\nbad \xff\n")))
    assert main(["search", str(folder), "--queries", "-"]) == 2
    assert "<stdin>:2: not valid UTF-8" in capsys.readouterr().err

    long_query = " ".join(["the dog runs"] * 20)
    assert main(["search", str(folder), long_query, "-k", "1"]) == 0
    captured = capsys.readouterr()
    assert "truncated" in captured.err and "1  " in captured.out

    assert main(["search", str(folder), "  "]) == 2
    assert "empty query" in capsys.readouterr().err
    assert main(["index", "build", str(folder), "--model", str(tiny_model_folder), "--input", str(corpus)]) == 2
    assert "already holds an index" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nbad \xff byte\n")
    assert main(["index", "build", str(tmp_path / "x"), "--model", str(tiny_model_folder), "--input", str(bad)]) == 2
    assert f"{bad}:2: not valid UTF-8" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "nope"), "query"]) == 2
    assert "not an index folder" in capsys.readouterr().err


def test_a_killed_writers_temporary_files_are_removed_by_the_next_writer(tiny_model, tmp_path: Path) -> None:
    index = tmp_path / "idx"
    SearchIndex.build(index, tiny_model, "m", write_lines(tmp_path / "a.txt", sentences(10)), show_progress=False)
    leftovers = [index / ".vectors-000002.faiss.k3j9x.partial", index / ".vectors-000009.faiss.a8c1q.partial"]
    for leftover in leftovers:
        leftover.write_bytes(b"half written")
    outside = tmp_path / "keep.txt"
    outside.write_text("keep")
    (index / ".link.partial").symlink_to(outside)
    SearchIndex.open(index).add(
        tiny_model, write_lines(tmp_path / "b.txt", sentences(5, offset=20)), show_progress=False
    )
    assert not any(path.exists() for path in leftovers) and not (index / ".link.partial").is_symlink()
    assert outside.read_text() == "keep" and len(SearchIndex.open(index)) == 15


def test_build_from_a_folder_and_a_pattern_keeps_file_and_line(tiny_model_folder: Path, tmp_path: Path, capsys) -> None:
    texts = sentences(12)
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    write_lines(tmp_path / "docs" / "b.txt", texts[:4])
    write_lines(tmp_path / "docs" / "sub" / "a.txt", texts[4:8])
    write_lines(tmp_path / "more-1.txt", texts[8:])
    folder = tmp_path / "idx"
    args = ["index", "build", str(folder), "--model", str(tiny_model_folder), "--no-progress", "-i"]
    assert main([*args, str(tmp_path / "docs"), str(tmp_path / "more-*.txt")]) == 0
    assert "added 12 texts" in capsys.readouterr().out
    index = SearchIndex.open(folder)
    sources = [record["source"] for record in index.records(range(12))]
    assert sources[:5] == ["docs/b.txt:1", "docs/b.txt:2", "docs/b.txt:3", "docs/b.txt:4", "docs/sub/a.txt:1"]
    assert sources[-1] == "more-1.txt:4"
    assert main(["search", str(folder), "-k", "1", "--json", texts[9]]) == 0
    assert '"source": "more-1.txt:2"' in capsys.readouterr().out
    assert main(["index", "add", str(folder), "-i", str(tmp_path / "none-*.txt"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no files match" in err


def _index_with_moved_model(tiny_model_folder: Path, tmp_path: Path) -> tuple[Path, Path, list[str]]:
    import shutil

    texts = sentences(20)
    model = tmp_path / "model"
    shutil.copytree(tiny_model_folder, model)
    folder = tmp_path / "idx"
    args = ["index", "build", str(folder), "--model", str(model), "-i", str(write_lines(tmp_path / "c.txt", texts))]
    assert main([*args, "--no-progress"]) == 0
    moved = tmp_path / "elsewhere" / "model"
    moved.parent.mkdir()
    model.rename(moved)
    return folder, moved, texts


def test_a_moved_model_is_found_by_its_checksums(tiny_model_folder: Path, tmp_path: Path, capsys) -> None:
    folder, moved, texts = _index_with_moved_model(tiny_model_folder, tmp_path)
    capsys.readouterr()
    assert main(["search", str(folder), texts[2]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not there any more" in err and "--model PATH" in err
    assert main(["search", str(folder), "-k", "1", texts[2], "--model", str(moved)]) == 0
    captured = capsys.readouterr()
    assert texts[2] in captured.out and "note" not in captured.err
    other = make_word_model_folder(tmp_path / "other", seed=5)
    assert main(["search", str(folder), texts[2], "--model", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not the model the index" in err and "--model PATH" in err


def test_an_index_from_before_the_checksums_still_works(tiny_model_folder: Path, tmp_path: Path, capsys) -> None:
    folder, moved, texts = _index_with_moved_model(tiny_model_folder, tmp_path)
    with sqlite3.connect(folder / "index.sqlite") as db:  # as written before issue 19: the path and the probes only
        db.execute("DELETE FROM meta WHERE key = 'model_checksums'")
    db.close()
    assert main(["search", str(folder), "-k", "1", texts[4], "--model", str(moved)]) == 0  # by the probes
    assert texts[4] in capsys.readouterr().out
    moved.rename(tmp_path / "model")  # back where the manifest says
    assert main(["search", str(folder), "-k", "1", texts[4]]) == 0


def test_an_int8_export_of_the_index_model_is_accepted_with_a_note(
    tiny_model_folder: Path, tmp_path: Path, capsys
) -> None:
    pytest.importorskip("onnxruntime")
    folder, moved, texts = _index_with_moved_model(tiny_model_folder, tmp_path)
    export = tmp_path / "onnx"
    assert main(["export", str(moved), "-o", str(export), "--quantization", "int8"]) == 0
    capsys.readouterr()
    assert main(["search", str(folder), "-k", "1", texts[6], "--model", str(export)]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "ONNX export" in notes[0] and "cosine" in notes[0]
    assert texts[6] in captured.out
