"""The faiss side of an index folder: which faiss index to build for a corpus (exact below 200,000 vectors, IVF
above, or a forced kind and storage), how to train and fill it, and how to search or shrink it by id.

Every index is wrapped in a faiss ``IndexIDMap2`` whose ids are the records' ids in the database
(:mod:`isbert.search.store`): a hit maps to its text by id, and a record's vector can be reconstructed or dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

import faiss
import numpy as np

from isbert.errors import IsbertError

Kind = Literal["auto", "flat", "hnsw", "ivf"]
Storage = Literal["float32", "float16", "int8"]
KINDS: tuple[str, ...] = ("auto", "flat", "hnsw", "ivf")
STORAGES: tuple[str, ...] = ("float32", "float16", "int8")
AUTO_APPROXIMATE_FROM = 200_000
"""``auto`` uses exact search below this many vectors (a flat scan of 200k x 384 takes ~10 ms) and IVF above."""


_SQ = {"float32": "Flat", "float16": "SQfp16", "int8": "SQ8"}


@dataclass
class IndexSpec:
    """Which faiss index to build and how to search it."""

    kind: str = "flat"
    storage: str = "float32"
    nlist: int = 0
    nprobe: int = 0
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64

    def factory_string(self) -> str:
        if self.storage not in _SQ:
            raise IsbertError(f"unknown storage {self.storage!r}; choose one of {', '.join(STORAGES)}")
        if self.kind == "flat":
            return _SQ[self.storage]
        if self.kind == "hnsw":
            return f"HNSW{self.hnsw_m}" + ("" if self.storage == "float32" else f"_{_SQ[self.storage]}")
        if self.kind == "ivf":
            return f"IVF{self.nlist},{_SQ[self.storage]}"
        raise IsbertError(f"unknown index kind {self.kind!r}; choose one of {', '.join(KINDS)}")

    def search_params(self) -> dict[str, int]:
        if self.kind == "hnsw":
            return {"efSearch": self.ef_search}
        if self.kind == "ivf":
            return {"nprobe": self.nprobe}
        return {}


def choose_spec(count: int, kind: str = "auto", storage: str = "float32", **overrides: int) -> IndexSpec:
    """Pick the index for ``count`` vectors: exact (flat) for small corpora, IVF for large ones, unless forced.

    IVF gets ``nlist ~ sqrt(n)`` lists (1000 for 1M vectors: training and assignment stay under a minute on two
    cores) and probes 1/16 of them (at least 8); see benchmarks/search_scale.py for recall and latency. HNSW needs
    no training and answers fastest, but builds slowly (minutes per million vectors on a small machine).
    """
    if kind not in KINDS:
        raise IsbertError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "auto":
        kind = "flat" if count < AUTO_APPROXIMATE_FROM else "ivf"
    spec = IndexSpec(kind=kind, storage=storage)
    if kind == "ivf":
        spec.nlist = max(1, min(int(math.sqrt(max(count, 1))), count // 39 or 1, 65536))
        spec.nprobe = min(spec.nlist, max(8, spec.nlist // 16))
    for key, value in overrides.items():
        if value:
            setattr(spec, key, int(value))
    spec.factory_string()  # validate early
    return spec


def new_faiss_index(dimension: int, spec: IndexSpec) -> faiss.Index:
    index = faiss.index_factory(dimension, spec.factory_string(), faiss.METRIC_INNER_PRODUCT)
    if spec.kind == "hnsw":
        cast(faiss.IndexHNSW, faiss.downcast_index(index)).hnsw.efConstruction = spec.ef_construction
    apply_search_params(index, spec.search_params())
    return index


def apply_search_params(index: faiss.Index, params: dict[str, int]) -> None:
    space = faiss.ParameterSpace()
    for name, value in params.items():
        space.set_index_parameter(index, name, value)


def training_size(index: faiss.Index, spec: IndexSpec, count: int) -> int:
    """How many vectors to collect before training (0 when the index needs no training)."""
    if index.is_trained:
        return 0
    wanted = max(spec.nlist * 40, 20_000) if spec.kind == "ivf" else 20_000
    return min(count, wanted)


class VectorAdder:
    """Feed vectors and their ids into a (possibly untrained) faiss index: the first ``train_size`` vectors train
    it."""

    def __init__(self, index: faiss.Index, train_size: int) -> None:
        self.index = index
        self.train_size = train_size
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.pending_rows = 0

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if self.index.is_trained:
            self.index.add_with_ids(vectors, ids)
            return
        self.pending.append((vectors, ids))
        self.pending_rows += len(vectors)
        if self.pending_rows >= self.train_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        sample = np.concatenate([vectors for vectors, _ in self.pending])
        ids = np.concatenate([ids for _, ids in self.pending])
        if not self.index.is_trained:
            if len(sample) < 1:
                raise IsbertError("no vectors to train the index on")
            self.index.train(sample)
        self.index.add_with_ids(sample, ids)
        self.pending, self.pending_rows = [], 0


def new_vectors(dimension: int, spec: IndexSpec) -> faiss.IndexIDMap2:
    """An empty index for ``spec`` whose ids are the records' ids (``IndexIDMap2``: removal and reconstruction by
    id)."""
    return faiss.IndexIDMap2(new_faiss_index(dimension, spec))


def without(index: faiss.IndexIDMap2, doomed: Iterable[int]) -> faiss.IndexIDMap2:
    """A copy of ``index`` without the ids ``doomed``: the other vectors re-added to an emptied clone of the inner
    index (its training kept). ``remove_ids`` is not used: HNSW cannot remove, and IVF would leave the id map and
    the lists out of step."""
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexIVF):
        inner.make_direct_map()
    vectors = inner.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
    keep = ~np.isin(ids, np.fromiter(doomed, dtype=np.int64))
    fresh = faiss.clone_index(inner)
    fresh.reset()
    result = faiss.IndexIDMap2(fresh)
    if keep.any():
        result.add_with_ids(np.ascontiguousarray(vectors[keep]), ids[keep])
    return result


def filtered_params(spec: dict[str, Any], selector: faiss.IDSelector) -> faiss.SearchParameters:
    """Search parameters restricted to ``selector``'s ids, of the type the index kind expects (approximate kinds
    search the restricted set approximately: a narrow filter can return fewer than ``k`` hits)."""
    search = spec.get("search", {})
    if spec["kind"] == "hnsw":
        # faiss's stubs (1.15) omit SearchParametersHNSW and the keyword arguments every parameters class takes
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=int(search.get("efSearch", 64)))  # type: ignore[attr-defined]
    elif spec["kind"] == "ivf":
        params = faiss.SearchParametersIVF(sel=selector, nprobe=int(search.get("nprobe", 1)))  # type: ignore[call-arg]
    else:
        params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
    params.referenced_objects = [selector]  # kept alive as long as the parameters
    return params
