"""``isbert index export``: an index folder as one Parquet file (id, source, text, vector), the hand-over to a vector
database when an index outgrows one machine.

Apache Parquet is what the server-side engines ingest directly: LanceDB and DuckDB read it as a table (LanceDB the
same on object storage), a pgvector table loads it through ``COPY`` or any Arrow client, and Qdrant's or Milvus'
clients take its columns as numpy arrays and payloads. The vectors are the index's own (``reconstruct`` of the faiss
index: exact for float32 storage, the stored approximation for float16/int8/IVF-PQ), so the new database needs no
model run; the model and its fingerprint go into the file's metadata, so queries can be embedded the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from isbert.atomic import atomic_open

if TYPE_CHECKING:
    from isbert.search.index import SearchIndex

ROWS_PER_BATCH = 50_000
"""Records read, reconstructed and written at a time: memory stays at one batch of vectors and texts."""


def export_parquet(index: SearchIndex, path: str | os.PathLike[str]) -> int:
    """Write every record of ``index`` to a Parquet file at ``path`` (published by rename); returns the rows written."""
    import faiss
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = index.current()
    ids = np.sort(faiss.vector_to_array(vectors.id_map).astype(np.int64))
    dimension = index.dimension
    about = {"model": index.model_ref, "dimension": dimension, "fingerprint": index.manifest.get("fingerprint")}
    fields = [("id", pa.int64()), ("source", pa.string()), ("text", pa.string())]
    fields.append(("vector", pa.list_(pa.float32(), dimension)))
    schema = pa.schema(fields, metadata={"isbert": json.dumps(about)})
    written = 0
    with atomic_open(Path(path), "wb") as handle, pq.ParquetWriter(handle, schema) as writer:
        for start in range(0, len(ids), ROWS_PER_BATCH):
            batch = ids[start : start + ROWS_PER_BATCH]
            rows = np.stack([vectors.reconstruct(int(i)) for i in batch]).astype(np.float32)
            records = _records(index, batch)
            flat = pa.array(rows.reshape(-1), type=pa.float32())
            columns = [
                pa.array(batch, pa.int64()),
                pa.array([record["source"] for record in records], pa.string()),
                pa.array([record["text"] for record in records], pa.string()),
                pa.FixedSizeListArray.from_arrays(flat, dimension),
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
            written += len(batch)
    return written


def _records(index: SearchIndex, ids: np.ndarray) -> list[dict[str, str | None]]:
    """Each id's source and text, in the order of ``ids`` (None for both where a concurrent delete removed it)."""
    records = index.records(ids)
    if len(records) == len(ids):  # all present: in the order asked
        return records
    return [(index.records([i]) or [{"source": None, "text": None}])[0] for i in ids]
