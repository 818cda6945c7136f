"""search/index.py as its users meet it: `isbert index info` and a hit's JSON word for word, every refusal's
message, the model check's naming, the probe fingerprint's agreement, builds from `isbert encode` output, and what
a migration of a first-format folder keeps (tests/search/test_search_index.py and test_index_changes.py cover
searching and changing an index)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_index_changes import FIXTURE
from test_search_index import make_word_model_folder, sentences, sql, write_lines

import isbert
from isbert.errors import IsbertError
from isbert.search.corpus import embed_texts
from isbert.search.index import (
    PROBE_SENTENCES,
    Hit,
    SearchIndex,
    fingerprint_agreement,
    model_reference,
    probe_fingerprint,
)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_word_model_folder(tmp_path_factory.mktemp("index-model"))


@pytest.fixture(scope="module")
def model(model_folder: Path):
    return isbert.load(model_folder, device="cpu")


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory):
    return isbert.load(make_word_model_folder(tmp_path_factory.mktemp("other-model"), seed=1), device="cpu")


def built(tmp_path: Path, model, model_folder: Path, **options: Any) -> SearchIndex:
    tmp_path.mkdir(exist_ok=True)
    corpus = [write_lines(tmp_path / "a.txt", sentences(7)), write_lines(tmp_path / "b.txt", sentences(5, offset=7))]
    SearchIndex.build(tmp_path / "idx", model, str(model_folder), corpus, show_progress=False, **options)
    return SearchIndex.open(tmp_path / "idx")


def test_info_describes_the_index_word_for_word(model, model_folder: Path, tmp_path: Path) -> None:
    index = built(tmp_path, model, model_folder)
    fingerprint = index.manifest["fingerprint"]["sha256"]
    assert index.describe() == (
        f"{tmp_path / 'idx'}: 12 vectors of dimension 24 from 2 files, flat index (Flat, float32), generation 1, "
        f"model {model_folder.resolve()}, fingerprint {fingerprint}"
    )
    hnsw = built(tmp_path / "h", model, model_folder, kind="hnsw", storage="int8")
    assert hnsw.describe() == (
        f"{tmp_path / 'h' / 'idx'}: 12 vectors of dimension 24 from 2 files, hnsw index (HNSW32_SQ8, int8, "
        f"efSearch=64), generation 1, model {model_folder.resolve()}, fingerprint {fingerprint}"
    )


def test_a_hit_as_json() -> None:
    hit = Hit(rank=1, id=7, score=0.5, text="a text", source="a.txt:3", chunk=2)
    assert hit.as_dict() == {"rank": 1, "id": 7, "score": 0.5, "text": "a text", "source": "a.txt:3", "chunk": 2}


def test_the_fingerprint_agreement_is_the_lowest_cosine_whatever_the_stored_lengths(model) -> None:
    from isbert.search.corpus import embed_texts

    probes = embed_texts(model, list(PROBE_SENTENCES))
    for scale in (0.5, 1.0, 2.0):  # cosines: the stored vectors' lengths do not matter
        assert fingerprint_agreement({"probes": (scale * probes).tolist()}, model) == pytest.approx(1.0, abs=1e-6)
    flipped = probes.copy()
    flipped[2] *= -1
    assert fingerprint_agreement({"probes": flipped.tolist()}, model) == pytest.approx(-1.0, abs=1e-6)
    assert fingerprint_agreement({"probes": probes[:3].tolist()}, model) == -1.0  # another number of probes
    assert fingerprint_agreement({"probes": probes[:, :5].tolist()}, model) == -1.0  # another dimension


def test_another_model_is_refused_by_the_name_it_was_given(
    model, other_model, model_folder: Path, tmp_path: Path
) -> None:
    index = built(tmp_path, model, model_folder)
    more = write_lines(tmp_path / "c.txt", sentences(3, offset=20))
    expected = rf"^other-folder is not the model the index {tmp_path / 'idx'} was built with"
    with pytest.raises(IsbertError, match=expected):
        index.add(other_model, more, show_progress=False, model_name="other-folder")
    with pytest.raises(IsbertError, match=expected):
        index.sync(other_model, tmp_path / "a.txt", show_progress=False, model_name="other-folder")


def test_the_refusals_word_for_word(model, model_folder: Path, tmp_path: Path) -> None:
    index = built(tmp_path, model, model_folder)
    empty = write_lines(tmp_path / "empty.txt", ["", "  "])
    with pytest.raises(IsbertError) as refused:
        index.add(model, empty, show_progress=False)
    assert str(refused.value) == f"{empty}: no non-empty texts to add"
    with pytest.raises(IsbertError) as refused:
        index.delete()
    assert str(refused.value) == "delete either by source file (--source FILE) or by id (--id ID)"
    with pytest.raises(IsbertError) as refused:
        index.delete(source="z.txt")
    assert str(refused.value) == f"{tmp_path / 'idx'} holds no records of 'z.txt'; nothing was deleted"
    with pytest.raises(IsbertError) as refused:
        index.delete(ids=[99])
    assert str(refused.value) == f"{tmp_path / 'idx'} holds no records with those ids; nothing was deleted"
    assert index.delete(ids=[0, 1]) == 2 and index.delete(source="b.txt") == 5 and len(index) == 5


def test_a_build_s_folder_refusals_word_for_word(model, model_folder: Path, tmp_path: Path) -> None:
    built(tmp_path, model, model_folder)
    corpus = write_lines(tmp_path / "c.txt", sentences(3))
    for folder, message in [
        (corpus, f"not a folder: {corpus}"),
        (
            tmp_path / "idx",
            f"{tmp_path / 'idx'} already holds an index (or one a stopped build left); add to it with "
            "`isbert index add`, or replace it with --overwrite",
        ),
        (tmp_path, f"{tmp_path} exists and is not an index folder; choose a new or empty folder"),
        (
            legacy_copy(tmp_path / "v1"),
            f"{tmp_path / 'v1' / 'old'} already holds an index; migrate it (`isbert index migrate`) or pass "
            "--overwrite",
        ),
    ]:
        with pytest.raises(IsbertError) as refused:
            SearchIndex.build(folder, model, str(model_folder), corpus, show_progress=False)
        assert str(refused.value) == message


def encoded(tmp_path: Path, model, texts: list[str], dtype: str = "float32") -> Path:
    """What `isbert encode` writes: the matrix (not normalized) and each row's file:line beside it."""
    from isbert.encode import sources_path

    vectors = tmp_path / "vectors.npy"
    np.save(vectors, 3.0 * model.encode(texts, convert_to_numpy=True).astype(dtype))
    listed = sources_path(vectors)
    listed.write_text("source\n" + "".join(f"a.txt:{row}\n" for row in range(1, len(texts) + 1)), encoding="utf-8")
    return vectors


def test_an_index_of_encode_output_keeps_row_order_from_id_0(model, model_folder: Path, tmp_path: Path) -> None:
    texts = sentences(6)
    vectors = encoded(tmp_path, model, texts, dtype="float64")
    report = SearchIndex.build_from_vectors(tmp_path / "idx", model, str(model_folder), vectors)
    assert (report.spec.kind, report.spec.storage, report.added) == ("flat", "float32", 6)  # the defaults
    index = SearchIndex.open(tmp_path / "idx")
    hits = index.search(model, texts[:2], k=1)
    assert [(row[0].id, row[0].source, row[0].text) for row in hits] == [(0, "a.txt:1", None), (1, "a.txt:2", None)]
    assert hits[0][0].score == pytest.approx(1.0, abs=1e-5)  # the rows were made unit length
    assert index.index.reconstruct(0).dtype == np.float32
    with pytest.raises(IsbertError, match="already holds an index"):  # no overwrite unless asked
        SearchIndex.build_from_vectors(tmp_path / "idx", model, str(model_folder), vectors)
    tuned = SearchIndex.build_from_vectors(
        tmp_path / "hnsw", model, str(model_folder), vectors, kind="hnsw", ef_search=17
    )
    assert SearchIndex.open(tmp_path / "hnsw").manifest["spec"]["search"] == {"efSearch": 17}
    assert tuned.spec.ef_search == 17
    elsewhere = write_lines(tmp_path / "b.txt", texts)  # the rows are a.txt's, not b.txt's
    with pytest.raises(IsbertError) as refused:
        SearchIndex.build_from_vectors(tmp_path / "none", model, str(model_folder), vectors, elsewhere)
    assert str(refused.value) == f"{vectors}: no row has a text in the corpus given (are they the files encoded?)"


def legacy_copy(tmp_path: Path, **manifest_changes: Any) -> Path:
    """The first-format fixture, its manifest changed (a value of None removes the key)."""
    folder = tmp_path / "old"
    shutil.copytree(FIXTURE, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    for key, value in manifest_changes.items():
        if value is None:
            manifest.pop(key)
        else:
            manifest[key] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_a_migration_keeps_the_model_settings_and_the_spec(tmp_path: Path) -> None:
    before = json.loads((FIXTURE / "manifest.json").read_text())
    folder = legacy_copy(tmp_path, spec={"kind": "hnsw", "storage": "int8"}, store_texts=None)
    report = SearchIndex.migrate(folder)
    meta = SearchIndex.open(folder).manifest
    kept = ("model", "model_checksums", "dimension", "max_seq_length", "fingerprint", "normalized", "metric")
    assert {key: meta[key] for key in kept} == {key: before[key] for key in kept}
    assert (meta["spec"]["kind"], meta["spec"]["storage"], meta["store_texts"]) == ("hnsw", "int8", True)
    assert (report.spec.kind, report.spec.storage, report.added) == ("hnsw", "int8", 16)


@pytest.mark.parametrize(
    ("changes", "kind", "storage", "texts"),
    [
        ({"spec": None}, "flat", "float32", True),
        ({"spec": {"kind": "ivf"}, "store_texts": False}, "ivf", "float32", False),
    ],
)
def test_a_migration_fills_in_what_an_old_manifest_lacks(
    tmp_path: Path, changes: dict[str, Any], kind: str, storage: str, texts: bool
) -> None:
    """No spec: an exact float32 index; an IVF spec is trained on the vectors; texts kept unless it says not."""
    folder = legacy_copy(tmp_path, **changes)
    SearchIndex.migrate(folder)
    index = SearchIndex.open(folder)
    meta = index.manifest
    assert (meta["spec"]["kind"], meta["spec"]["storage"], meta["store_texts"]) == (kind, storage, texts)
    assert len(index) == 16 and index.index.is_trained
    assert index.records([0]) == [{"source": "corpus.txt:1", "text": sentences(1)[0] if texts else None, "chunk": 0}]


def test_a_migration_refuses_in_one_line_what_it_cannot_migrate(tmp_path: Path) -> None:
    with pytest.raises(IsbertError) as refused:
        SearchIndex.migrate(tmp_path / "missing")
    assert str(refused.value) == f"not an index folder: {tmp_path / 'missing'}"
    (tmp_path / "plain").mkdir()
    with pytest.raises(IsbertError) as refused:
        SearchIndex.migrate(tmp_path / "plain")
    assert (
        str(refused.value) == f"{tmp_path / 'plain'}: nothing to migrate (manifest.json missing; not an index folder)"
    )
    folder = legacy_copy(tmp_path)
    SearchIndex.migrate(folder)
    with pytest.raises(IsbertError) as refused:
        SearchIndex.migrate(folder)
    assert str(refused.value) == f"{folder}: nothing to migrate (manifest.json missing; already in the current format)"


def test_a_first_format_folder_without_its_offsets_file_still_migrates(tmp_path: Path) -> None:
    """The offsets file only served random access: a migration reads the texts in order and removes what is left."""
    folder = legacy_copy(tmp_path)
    (folder / "offsets-000002.npy").unlink()
    assert SearchIndex.migrate(folder).added == 16
    assert sorted(path.name for path in folder.iterdir() if not path.name.startswith(".")) == [
        "index.sqlite",
        "vectors-000001.faiss",
    ]


def test_the_model_check_names_the_model_and_says_what_to_do(
    model, other_model, model_folder: Path, tmp_path: Path
) -> None:
    index = built(tmp_path, model, model_folder)
    folder, ref = tmp_path / "idx", model_folder.resolve()
    how = (
        "pass the index's model with --model PATH (found by its files' checksums wherever it now is), or rebuild the "
        f"index with it: isbert index build {folder} --model {{label}} --input ... --overwrite"
    )
    narrow = isbert.build(str(model_folder / ".." / "backbone"), out_channels=4, max_seq_length=16, device="cpu")
    with pytest.raises(IsbertError) as refused:
        index.check_model(narrow, "narrow")
    assert str(refused.value) == (
        f"narrow makes 12-d embeddings but the index {folder} holds 24-d vectors from {ref}; "
        + how.format(label="narrow")
    )
    with pytest.raises(IsbertError) as refused:
        index.check_model(other_model)
    assert str(refused.value).startswith(f"the model is not the model the index {folder} was built with ({ref}):")
    assert str(refused.value).endswith("; " + how.format(label="the model"))


def test_an_agreement_of_exactly_the_threshold_passes(model, model_folder: Path, tmp_path: Path, monkeypatch) -> None:
    from isbert.search import index as index_module

    index = built(tmp_path, model, model_folder)
    monkeypatch.setattr(index_module, "fingerprint_agreement", lambda *_: index_module.FINGERPRINT_MIN_COSINE)
    assert index.check_model(model) is None
    monkeypatch.setattr(index_module, "fingerprint_agreement", lambda *_: index_module.FINGERPRINT_MIN_COSINE - 1e-9)
    with pytest.raises(IsbertError, match="is not the model"):
        index.check_model(model)


def test_an_export_is_related_through_either_checksum() -> None:
    from isbert.search.index import _related_by_export

    exported = {"checksum": "onnx", "source_checksum": "torch"}  # the index's model, an ONNX export of "torch"
    assert _related_by_export(exported, {"checksum": "torch", "source_checksum": None})
    assert _related_by_export({"checksum": "torch"}, {"checksum": "onnx", "source_checksum": "torch"})
    assert _related_by_export(exported, {"checksum": "other", "source_checksum": "torch"})  # two exports of one model
    assert not _related_by_export(
        {"checksum": None, "source_checksum": None}, {"checksum": None, "source_checksum": None}
    )


def test_vector_queries_are_checked_and_a_source_without_records_finds_nothing(
    model, model_folder: Path, tmp_path: Path
) -> None:
    from isbert.cli_types import MAX_K

    index = built(tmp_path, model, model_folder)
    queries = model.encode(sentences(2), convert_to_numpy=True, normalize_embeddings=True).astype(np.float64)
    scores, ids = index.search_vectors(queries, MAX_K)  # float64 queries are converted; k up to MAX_K
    assert ids[:, 0].tolist() == [0, 1] and scores.shape == (2, MAX_K)
    with pytest.raises(IsbertError) as refused:
        index.search_vectors(queries[:, :5], 3)
    assert str(refused.value) == "queries must have shape (n, 24), got (2, 5)"
    with pytest.raises(IsbertError) as refused:
        index.search_vectors(queries, MAX_K + 1)
    assert str(refused.value) == f"k must be from 1 to {MAX_K}, got {MAX_K + 1}"
    scores, ids = index.search_vectors(queries, 3, source="nowhere.txt")
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    assert scores.tolist() == [[-np.inf] * 3] * 2 and ids.tolist() == [[-1] * 3] * 2
    assert index.search_embedded(sentences(1), queries[:1], 1)[0][0].id == 0  # the default mode: vector
    with pytest.raises(IsbertError) as refused:
        index.search_embedded(sentences(1), None, 1)
    assert str(refused.value) == "a vector search needs the queries' vectors"


def fail_after_publishing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write publishes its vectors file, then fails (as a full disk at the commit would)."""
    from isbert.search import index as index_module

    publish = index_module._publish

    def published_then_failed(*args: Any) -> None:
        publish(*args)
        raise OSError("disk full")

    monkeypatch.setattr(index_module, "_publish", published_then_failed)


def test_a_write_failing_after_it_published_leaves_no_new_generation(
    model, model_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    from isbert.search import store

    index = built(tmp_path, model, model_folder)
    fail_after_publishing(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        index.add(model, write_lines(tmp_path / "c.txt", sentences(3, offset=30)), show_progress=False)
    assert not (tmp_path / "idx" / store.vectors_name(2)).exists()
    assert SearchIndex.open(tmp_path / "idx").generation == 1


@pytest.mark.parametrize(("damage", "depth"), [("garbage", 1), ("truncated", 1), ("truncated", 12)])
def test_a_damaged_vectors_file_is_one_line_with_faiss_s_reason(
    model, model_folder: Path, tmp_path: Path, damage: str, depth: int
) -> None:
    """faiss's reason without its C++ location (what follows its last "Error: ", where it has one), naming the
    vectors file as faiss does when it opens the name itself (not the handle it read through), at most 200
    characters of it (a deep folder makes a truncated file's reason longer)."""
    import faiss

    from isbert.search import store

    folder = tmp_path.joinpath(*["a-rather-long-folder-name"] * depth)
    folder.mkdir(parents=True)
    built(folder, model, model_folder)
    path = folder / "idx" / store.vectors_name(1)
    path.write_bytes(b"not\n  a faiss   file" * 10 if damage == "garbage" else path.read_bytes()[:-100])
    with pytest.raises(RuntimeError) as faiss_error:
        faiss.read_index(str(path))
    reason = " ".join(str(faiss_error.value).split()).rpartition("Error: ")[2]
    if damage == "truncated":
        assert reason.startswith("'ret == ") and f"read error in {path}: " in reason
    with pytest.raises(IsbertError) as refused:
        SearchIndex.open(folder / "idx")
    assert str(refused.value) == f"{path}: cannot read the vectors ({reason[:200]})"
    assert (len(reason) > 200) == (depth > 1)


def test_a_socket_at_the_vectors_name_is_one_line_with_the_system_s_reason(
    model, model_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from isbert.search import store

    built(tmp_path, model, model_folder)
    path = tmp_path / "idx" / store.vectors_name(1)
    path.unlink()
    monkeypatch.chdir(path.parent)  # a socket's path is limited to about 100 bytes: bind the bare name
    with socket.socket(socket.AF_UNIX) as planted:
        planted.bind(path.name)
        with pytest.raises(IsbertError) as refused:
            SearchIndex.open(tmp_path / "idx")
    assert str(refused.value) == f"{path}: cannot open the vectors (No such device or address)"


def test_faiss_reads_the_checked_file_through_its_handle_or_by_name_without_proc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from isbert.search import index as index_module

    path = write_lines(tmp_path / "a.txt", ["the checked file"])
    fd = os.open(path, os.O_RDONLY)
    try:
        through = index_module._through(fd, path)
        assert through == f"/proc/self/fd/{fd}" and Path(through).read_text() == "the checked file\n"
        monkeypatch.setattr(index_module.os.path, "exists", lambda name: False)  # no /proc (not Linux)
        assert index_module._through(fd, path) == str(path)
    finally:
        os.close(fd)


def test_search_arguments_and_their_messages(model, model_folder: Path, tmp_path: Path) -> None:
    from isbert.cli_types import MAX_K

    index = built(tmp_path, model, model_folder)
    assert [len(row) for row in index.search(model, sentences(1))] == [10]  # k defaults to 10
    assert len(index.search(None, ["man"], MAX_K, mode="keyword")[0]) > 0
    for k, message in (
        (0, "k must be at least 1, got 0"),
        (MAX_K + 1, f"k must be from 1 to {MAX_K}, got {MAX_K + 1}"),
    ):
        with pytest.raises(IsbertError) as refused:
            index.search(None, ["man"], k, mode="keyword")
        assert str(refused.value) == message
    with pytest.raises(IsbertError) as refused:
        index.search(model, ["a query", " \t"])
    assert str(refused.value) == "query 2 is empty"
    with pytest.raises(IsbertError) as refused:
        index.search(None, ["a query"], mode="hybrid")
    assert str(refused.value) == "a hybrid search needs the model"


def test_hybrid_search_fuses_pools_of_twice_k_or_at_least_fifty(model, model_folder: Path, tmp_path: Path) -> None:
    """Reference: the vector and keyword rankings of max(2 k, HYBRID_POOL) candidates, fused by reciprocal rank."""
    from isbert.search.hybrid import keyword_ranking, reciprocal_rank_fusion
    from isbert.search.index import HYBRID_POOL

    texts = sentences(150)
    SearchIndex.build(
        tmp_path / "idx", model, str(model_folder), write_lines(tmp_path / "a.txt", texts), show_progress=False
    )
    index = SearchIndex.open(tmp_path / "idx")
    query = ["the man walks on the beach"]
    vectors = model.encode(query, convert_to_numpy=True, normalize_embeddings=True)
    for k in (5, 40):
        pool = max(2 * k, HYBRID_POOL)
        ids = [int(i) for i in index.search_vectors(vectors, pool)[1][0] if i >= 0]
        keyword = keyword_ranking(index._db, index.folder, query[0], pool, None)
        expected = [i for i, _ in reciprocal_rank_fusion([ids, [i for i, _ in keyword]], k)]
        assert [hit.id for hit in index.search_embedded(query, vectors, k, mode="hybrid")[0]] == expected


def test_the_settings_check_s_bounds(model, model_folder: Path, tmp_path: Path) -> None:
    """Dimensions from 1 to MAX_DIMENSION and search parameters from 1 to 2**20 are sound; one past either end is
    a damaged database."""
    from isbert.search.index import MAX_DIMENSION, _check_meta

    meta = built(tmp_path, model, model_folder).manifest
    folder = tmp_path / "idx"

    def sound(**changes: Any) -> bool:
        spec = {**meta["spec"], **changes.pop("spec", {})}
        try:
            _check_meta({**meta, "spec": spec, **changes}, folder)
        except IsbertError as error:
            assert str(error) == (
                f"{folder / 'index.sqlite'}: damaged settings (model, dimension, spec or fingerprint); rebuild it"
            )
            return False
        return True

    assert [sound(dimension=d) for d in (0, 1, MAX_DIMENSION, MAX_DIMENSION + 1)] == [False, True, True, False]
    values = (0, 1, 1 << 20, (1 << 20) + 1, "3", 2.0)
    assert [sound(spec={"search": {"efSearch": v}}) for v in values] == [False, True, True, False, False, False]
    with pytest.raises(IsbertError) as refused:
        _check_meta({**meta, "chunking": {"tokens": "many"}}, folder)
    assert str(refused.value).startswith(f"{folder / 'index.sqlite'}: ") and "chunking" in str(refused.value)


def test_opening_refuses_an_unfinished_index_or_missing_vectors_in_one_line(
    model, model_folder: Path, tmp_path: Path
) -> None:
    from isbert.search import store

    built(tmp_path, model, model_folder)
    folder = tmp_path / "idx"
    (folder / store.vectors_name(1)).unlink()
    with pytest.raises(IsbertError) as refused:
        SearchIndex.open(folder)
    assert str(refused.value) == f"{folder}: the vectors file of the current generation is missing; rebuild the index"
    sql(folder, "UPDATE state SET generation = 0")
    with pytest.raises(IsbertError) as refused:
        SearchIndex.open(folder)
    assert str(refused.value) == f"{folder}: an unfinished index; replace it with `isbert index build ... --overwrite`"


def test_the_database_s_search_parameters_are_applied_on_opening(model, model_folder: Path, tmp_path: Path) -> None:
    import faiss

    built(tmp_path, model, model_folder, kind="hnsw", ef_search=17)
    spec = {"kind": "hnsw", "storage": "float32", "factory": "HNSW32", "search": {"efSearch": 40}}
    sql(tmp_path / "idx", "UPDATE meta SET value = ? WHERE key = 'spec'", json.dumps(spec))
    opened = SearchIndex.open(tmp_path / "idx")
    assert faiss.downcast_index(opened.index.index).hnsw.efSearch == 40  # the file says 17: the settings decide


def test_an_opened_ivf_index_reconstructs_by_id_for_export(model, model_folder: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from isbert.search.export import export_parquet

    index = built(tmp_path, model, model_folder, kind="ivf")
    assert export_parquet(index, tmp_path / "all.parquet") == 12
    table = pq.read_table(tmp_path / "all.parquet")
    assert table.num_rows == 12 and np.allclose(np.stack(table.column("vector").to_numpy(zero_copy_only=False))[0],
                                                index.index.reconstruct(0), atol=1e-6)  # fmt: skip


def test_a_build_reports_its_texts_and_its_bar_counts_them(
    model, model_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    from recording_bar import RecordingBar

    from isbert.search import corpus as corpus_module

    RecordingBar.made = []
    monkeypatch.setattr(corpus_module, "tqdm", RecordingBar)
    corpus = write_lines(tmp_path / "a.txt", sentences(9))
    report = SearchIndex.build(tmp_path / "idx", model, str(model_folder), corpus)
    assert report.stats.texts == 9 and report.added == 9
    assert [(bar["total"], bar["desc"], sum(bar["updates"])) for bar in RecordingBar.made] == [(9, "index", 9)]


def test_settings_without_search_parameters_open_and_describe(model, model_folder: Path, tmp_path: Path) -> None:
    """`search` may be absent from the spec (the check allows it): opening and `index info` go without it."""
    built(tmp_path, model, model_folder)
    sql(tmp_path / "idx", "UPDATE meta SET value = ? WHERE key = 'spec'", '{"kind": "flat", "storage": "float32", '
        '"factory": "Flat"}')  # fmt: skip
    assert SearchIndex.open(tmp_path / "idx").describe().split(", generation")[0].endswith("flat index (Flat, float32)")


def test_build_add_and_sync_embed_in_batches_of_32_with_a_bar_by_default(
    model, model_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    from isbert.search import index as index_module

    seen: list[tuple[int, bool]] = []
    embed = index_module.iter_embedded_chunks

    def recording(*args: Any, **options: Any) -> Any:
        seen.append((options["batch_size"], options["show_progress"]))
        return embed(*args, **options)

    monkeypatch.setattr(index_module, "iter_embedded_chunks", recording)
    corpus = write_lines(tmp_path / "a.txt", sentences(4))
    SearchIndex.build(tmp_path / "idx", model, str(model_folder), corpus)
    with pytest.raises(IsbertError, match="already holds an index"):  # no overwrite unless asked
        SearchIndex.build(tmp_path / "idx", model, str(model_folder), corpus)
    index = SearchIndex.open(tmp_path / "idx")
    index.add(model, write_lines(tmp_path / "c.txt", sentences(3, offset=30)))
    index.add(model, write_lines(tmp_path / "d.txt", sentences(3, offset=40)), batch_size=4, show_progress=False)
    (tmp_path / "docs").mkdir()
    write_lines(tmp_path / "docs" / "e.txt", sentences(2, offset=50))
    index.sync(model, tmp_path / "docs")
    index.sync(model, tmp_path / "docs", batch_size=8, show_progress=False)  # in sync: nothing embedded
    write_lines(tmp_path / "docs" / "e.txt", sentences(2, offset=60))
    index.sync(model, tmp_path / "docs", batch_size=8, show_progress=False)
    assert seen == [(32, True), (32, True), (4, False), (32, True), (8, False)]


def test_a_sync_that_only_adds_reports_nothing_removed(model, model_folder: Path, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    write_lines(tmp_path / "docs" / "a.txt", sentences(3))
    SearchIndex.build(tmp_path / "idx", model, str(model_folder), tmp_path / "docs", show_progress=False)
    index = SearchIndex.open(tmp_path / "idx")
    write_lines(tmp_path / "docs" / "b.txt", sentences(2, offset=10))
    report = index.sync(model, tmp_path / "docs", show_progress=False)
    assert report.summary() == (
        f"{tmp_path / 'idx'}: 1 new, 0 changed, 0 removed and 1 unchanged files; added 2 texts, removed 0; index holds "
        "5 vectors"
    )


def test_encode_output_is_checked_before_it_is_indexed(model, model_folder: Path, tmp_path: Path) -> None:
    from isbert.encode import sources_path

    vectors = encoded(tmp_path, model, sentences(4))

    attempts = iter(range(100))

    def refusal() -> str:
        with pytest.raises(IsbertError) as refused:
            SearchIndex.build_from_vectors(tmp_path / f"idx{next(attempts)}", model, str(model_folder), vectors)
        return str(refused.value)

    matrix = np.load(vectors)
    np.save(vectors, np.array([{"a": 1}], dtype=object), allow_pickle=True)  # never unpickled
    assert refusal() == f"{vectors}: not a .npy matrix (Array can't be memory-mapped: Python objects in dtype.)"
    header = b"{'descr': '" + b"z" * 300 + b"', 'fortran_order': False, 'shape': (4, 24)}"
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"  # a hostile header: numpy quotes it whole
    vectors.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
    reason = "descr is not a valid dtype descriptor: '" + "z" * 300 + "'"
    assert refusal() == f"{vectors}: not a .npy matrix ({reason[:160]})"
    np.save(vectors, matrix.astype(np.int32))
    assert refusal() == f"{vectors}: a int32 matrix of shape (4, 24); the model makes 24-d float vectors"
    for bad in (0.0, np.nan):
        rows = matrix.copy()
        rows[2] = bad
        np.save(vectors, rows)
        assert refusal() == f"{vectors}: row 2 is zero or not finite; encode the corpus again"
    np.save(vectors, matrix / np.linalg.norm(matrix, axis=1, keepdims=True))  # unit rows are fine as they are
    assert SearchIndex.build_from_vectors(tmp_path / "unit", model, str(model_folder), vectors).added == 4
    listed = sources_path(vectors)
    listed.write_text("source\na.txt:1\n", encoding="utf-8")
    assert refusal() == f"{listed}: 1 sources for 4 rows of {vectors}"
    listed.unlink()
    assert refusal() == f"{listed}: missing; `isbert encode` writes each row's file:line there, beside the matrix"


def test_a_migration_in_several_chunks_keeps_every_id(tmp_path: Path, monkeypatch) -> None:
    from isbert.search import index as index_module

    monkeypatch.setattr(index_module, "CHUNK_ROWS", 5)  # 16 records: chunks of 5, 5, 5 and 1
    folder = legacy_copy(tmp_path)
    SearchIndex.migrate(folder)
    index = SearchIndex.open(folder)
    records = index.records(range(16))
    assert len(records) == 16 and sorted(index.index.id_map.at(i) for i in range(16)) == list(range(16))
    assert [record["text"] for record in records] == [*sentences(12), *sentences(4, offset=12)]


def test_a_migration_failing_after_it_published_leaves_the_old_files_as_the_index(tmp_path: Path, monkeypatch) -> None:
    from isbert.search import store

    folder = legacy_copy(tmp_path)
    fail_after_publishing(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        SearchIndex.migrate(folder)
    assert not (folder / store.vectors_name(1)).exists() and (folder / "manifest.json").exists()
    monkeypatch.undo()
    assert SearchIndex.migrate(folder).added == 16  # simply run again


def test_an_add_reports_the_index_s_own_kind_and_storage(model, model_folder: Path, tmp_path: Path) -> None:
    index = built(tmp_path, model, model_folder, kind="hnsw", storage="int8")
    report = index.add(model, write_lines(tmp_path / "c.txt", sentences(2, offset=30)), show_progress=False)
    assert report.summary().endswith("; index holds 14 vectors (hnsw, int8)")


def test_a_sync_stores_and_splits_texts_as_the_index_was_built(model, model_folder: Path, tmp_path: Path) -> None:
    from isbert.search.chunking import Chunking

    long_line = " ".join(sentences(6))  # about 30 tokens: pieces of 8 tokens overlapping by 2
    for name, options in (("ids", {"store_texts": False}), ("chunked", {"chunking": Chunking(tokens=8, overlap=2)})):
        docs = tmp_path / name / "docs"
        docs.mkdir(parents=True)
        write_lines(docs / "a.txt", sentences(2))
        SearchIndex.build(tmp_path / name / "idx", model, str(model_folder), docs, show_progress=False, **options)
        index = SearchIndex.open(tmp_path / name / "idx")
        write_lines(docs / "b.txt", [long_line])
        index.sync(model, docs, show_progress=False)
        added = [record for record in index.records(range(100)) if record["source"].startswith("b.txt")]
        if name == "ids":
            assert [record["text"] for record in added] == [None]
        else:
            assert len(added) > 1 and [record["chunk"] for record in added] == list(range(len(added)))


def test_a_first_build_refused_half_way_leaves_no_index_behind(model, model_folder: Path, tmp_path: Path) -> None:
    """A zero row is found while the rows are written: the same command runs again once the input is fixed."""
    vectors = encoded(tmp_path, model, sentences(4))
    matrix = np.load(vectors)
    broken = matrix.copy()
    broken[3] = 0.0
    np.save(vectors, broken)
    with pytest.raises(IsbertError, match="row 3 is zero"):
        SearchIndex.build_from_vectors(tmp_path / "idx", model, str(model_folder), vectors)
    assert [path.name for path in (tmp_path / "idx").iterdir() if not path.name.startswith(".")] == []
    np.save(vectors, matrix)
    assert SearchIndex.build_from_vectors(tmp_path / "idx", model, str(model_folder), vectors).added == 4


def test_a_failed_overwrite_keeps_the_index_it_was_replacing(model, model_folder: Path, tmp_path: Path) -> None:
    index = built(tmp_path, model, model_folder)
    vectors = encoded(tmp_path, model, sentences(4))
    broken = np.load(vectors)
    broken[0] = np.nan
    np.save(vectors, broken)
    with pytest.raises(IsbertError, match="row 0 is zero or not finite"):
        SearchIndex.build_from_vectors(tmp_path / "idx", model, str(model_folder), vectors, overwrite=True)
    assert len(SearchIndex.open(tmp_path / "idx")) == 12 and len(index) == 12


def test_a_build_needs_one_text_and_no_more(model, model_folder: Path, tmp_path: Path) -> None:
    empty = write_lines(tmp_path / "empty.txt", ["", " "])
    with pytest.raises(IsbertError) as refused:
        SearchIndex.build(tmp_path / "none", model, str(model_folder), empty, show_progress=False)
    assert str(refused.value) == f"{empty}: no non-empty texts to index"
    one = write_lines(tmp_path / "one.txt", ["", "the man runs"])
    assert SearchIndex.build(tmp_path / "idx", model, str(model_folder), one, show_progress=False).added == 1


def test_the_model_is_recorded_by_absolute_path_for_a_folder_and_as_given_otherwise(
    model_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(model_folder.parent)
    assert model_reference(model_folder.name) == str(model_folder.resolve())
    assert model_reference("org/a-hub-model") == "org/a-hub-model"  # no such folder: a name for the hub


def test_the_fingerprint_is_the_probes_to_5_digits_and_a_hash_of_them_to_3(model, other_model) -> None:
    """What `index info` shows can be recomputed by anyone from the four probe sentences: the first 16 hex digits of
    the SHA-256 of the probe embeddings rounded to 3 digits, as float32; the stored probes keep 5 digits."""
    probes = embed_texts(model, list(PROBE_SENTENCES))
    fingerprint = probe_fingerprint(model)
    assert fingerprint == {
        "sha256": hashlib.sha256(np.round(probes, 3).astype(np.float32).tobytes()).hexdigest()[:16],
        "probes": np.round(probes.astype(np.float64), 5).tolist(),
    }
    assert probe_fingerprint(other_model)["sha256"] != fingerprint["sha256"]


def test_a_new_index_records_the_model_s_settings_key_by_key(model, model_folder: Path, tmp_path: Path) -> None:
    manifest = built(tmp_path, model, model_folder).manifest
    assert {key: manifest[key] for key in ("dimension", "max_seq_length", "normalized", "metric")} == {
        "dimension": 24,
        "max_seq_length": model.max_seq_length,
        "normalized": True,
        "metric": "inner_product",
    }
    assert manifest["fingerprint"] == probe_fingerprint(model)


def test_a_build_passes_on_its_index_settings_and_stores_no_texts_when_told(
    model, model_folder: Path, tmp_path: Path
) -> None:
    index = built(tmp_path, model, model_folder, kind="hnsw", ef_search=5, hnsw_m=8, store_texts=False)
    assert index.manifest["spec"]["search"] == {"efSearch": 5}
    assert index.manifest["spec"]["factory"] == "HNSW8"
    assert index.manifest["store_texts"] is False
    hits = index.search(model, [sentences(1)[0]], k=2)[0]
    assert [hit.text for hit in hits] == [None, None]
    assert hits[0].source == "a.txt:1"


def test_a_model_without_its_dimension_or_misreporting_it_is_refused_in_one_line(
    model, model_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model, "get_embedding_dimension", lambda: None)
    corpus = write_lines(tmp_path / "a.txt", sentences(3))
    with pytest.raises(IsbertError) as refused:
        SearchIndex.build(tmp_path / "idx", model, str(model_folder), corpus, show_progress=False)
    assert str(refused.value) == "the model does not report its embedding dimension"
    monkeypatch.setattr(model, "get_embedding_dimension", lambda: 32)  # a model folder that misreports it
    with pytest.raises(IsbertError) as refused:
        SearchIndex.build(tmp_path / "idx", model, str(model_folder), corpus, show_progress=False)
    assert str(refused.value) == "24-d vectors for an index of 32-d vectors"


def test_an_overwrite_is_the_next_generation_and_one_failing_after_it_published_leaves_no_vectors_file(
    model, model_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    from isbert.search import store

    built(tmp_path, model, model_folder)
    corpus = write_lines(tmp_path / "new.txt", sentences(4, offset=20))
    fail_after_publishing(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        SearchIndex.build(tmp_path / "idx", model, str(model_folder), corpus, overwrite=True, show_progress=False)
    assert sorted(path.name for path in (tmp_path / "idx").glob("*.faiss")) == [store.vectors_name(1)]
    assert SearchIndex.open(tmp_path / "idx").generation == 1
    monkeypatch.undo()
    SearchIndex.build(tmp_path / "idx", model, str(model_folder), corpus, overwrite=True, show_progress=False)
    replaced = SearchIndex.open(tmp_path / "idx")
    assert (replaced.generation, len(replaced)) == (2, 4)


def test_a_build_creates_the_folders_above_its_own(model, model_folder: Path, tmp_path: Path) -> None:
    corpus = write_lines(tmp_path / "a.txt", sentences(3))
    SearchIndex.build(tmp_path / "x" / "y" / "idx", model, str(model_folder), corpus, show_progress=False)
    assert len(SearchIndex.open(tmp_path / "x" / "y" / "idx")) == 3


@pytest.mark.parametrize("missing", [None, "offsets-000002.npy"])
def test_an_overwrite_of_a_first_format_folder_removes_its_files_once_the_new_index_is_in(
    model, model_folder: Path, tmp_path: Path, missing: str | None
) -> None:
    """Whatever of them is still there (the offsets file only served random access)."""
    folder = legacy_copy(tmp_path)
    old_files = set(json.loads((folder / "manifest.json").read_text())["files"].values())
    assert len(old_files) == 3 and all((folder / name).exists() for name in old_files)
    if missing:
        (folder / missing).unlink()
    corpus = write_lines(tmp_path / "a.txt", sentences(3))
    SearchIndex.build(folder, model, str(model_folder), corpus, overwrite=True, show_progress=False)
    assert not (folder / "manifest.json").exists()
    assert not any((folder / name).exists() for name in old_files)
    assert len(SearchIndex.open(folder)) == 3


def test_a_database_with_a_first_format_manifest_beside_it_opens_as_the_index(
    model, model_folder: Path, tmp_path: Path
) -> None:
    """What a migration killed after its commit, before it removed the old manifest, leaves: the new index."""
    built(tmp_path, model, model_folder)
    shutil.copy2(FIXTURE / "manifest.json", tmp_path / "idx" / "manifest.json")
    assert len(SearchIndex.open(tmp_path / "idx")) == 12


def test_records_and_vectors_that_disagree_stop_a_write_before_it_publishes(
    model, model_folder: Path, tmp_path: Path
) -> None:
    """A record deleted from the database behind isbert's back: the next write finds one vector too many."""
    index = built(tmp_path, model, model_folder)
    sql(tmp_path / "idx", "DELETE FROM docs WHERE id = 0")
    with pytest.raises(IsbertError) as refused:
        index.add(model, write_lines(tmp_path / "c.txt", sentences(3, offset=30)), show_progress=False)
    assert str(refused.value) == f"{tmp_path / 'idx'}: 14 records but 15 vectors; nothing was changed"
    assert SearchIndex.open(tmp_path / "idx").generation == 1
