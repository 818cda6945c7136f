"""``isbert index export``: an index as one Parquet file, read back with pyarrow as a vector database would: the
same ids, sources, texts and vectors, the model in the metadata, and a search over the exported vectors that finds
what the index finds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_search_index import make_word_model_folder, sentences, write_lines

import isbert
from isbert.cli import main
from isbert.search import export
from isbert.search.index import SearchIndex


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_word_model_folder(tmp_path_factory.mktemp("export-model"))


def test_the_export_holds_every_record_and_its_vector(
    model_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = isbert.load(model_folder, device="cpu")
    texts = sentences(23)
    SearchIndex.build(tmp_path / "idx", model, "tiny", write_lines(tmp_path / "a.txt", texts), show_progress=False)
    index = SearchIndex.open(tmp_path / "idx")
    index.delete(ids=[3])  # a gap in the ids
    monkeypatch.setattr(export, "ROWS_PER_BATCH", 5)  # several batches
    out = tmp_path / "idx.parquet"
    assert main(["index", "export", str(tmp_path / "idx"), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 22 records of {tmp_path / 'idx'} to {out}"
    table = pq.read_table(out)
    assert table.column_names == ["id", "source", "text", "vector"] and table.num_rows == 22
    ids = table.column("id").to_numpy()
    assert 3 not in ids and list(ids) == sorted(ids)
    records = index.records(ids)
    assert table.column("text").to_pylist() == [r["text"] for r in records]
    assert table.column("source").to_pylist() == [r["source"] for r in records]
    vectors = np.stack(table.column("vector").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(vectors, model.encode([r["text"] for r in records], normalize_embeddings=True),
                               atol=1e-5)  # fmt: skip
    about = json.loads(table.schema.metadata[b"isbert"])
    assert about["model"] == index.model_ref and about["dimension"] == vectors.shape[1]
    # what a vector database does with it: the nearest exported vector to a query is the index's first hit
    query = model.encode([texts[7]], normalize_embeddings=True)
    assert int(ids[np.argmax(vectors @ query[0])]) == index.search(model, [texts[7]], k=1)[0][0].id


def test_a_link_planted_at_the_output_is_replaced_never_written_through(model_folder: Path, tmp_path: Path) -> None:
    model = isbert.load(model_folder, device="cpu")
    SearchIndex.build(
        tmp_path / "idx", model, "tiny", write_lines(tmp_path / "a.txt", sentences(4)), show_progress=False
    )
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    out = tmp_path / "idx.parquet"
    os.symlink(victim, out)
    assert main(["index", "export", str(tmp_path / "idx"), "-o", str(out)]) == 0
    assert victim.read_text(encoding="utf-8") == "precious" and not out.is_symlink()
    assert pq.read_table(out).num_rows == 4
    hard = tmp_path / "hard.parquet"
    os.link(victim, hard)  # a hard link: same inode as the victim
    assert main(["index", "export", str(tmp_path / "idx"), "-o", str(hard)]) == 0
    assert victim.read_text(encoding="utf-8") == "precious" and pq.read_table(hard).num_rows == 4
