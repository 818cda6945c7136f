"""Commands ``index``, ``search``, ``cluster``, ``similar`` and ``serve`` (added to the ``isbert`` CLI)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, cast

from isbert.atomic import atomic_open
from isbert.cli_types import (
    MAX_BATCH,
    MAX_CLUSTERS,
    MAX_K,
    MAX_SAMPLE,
    MAX_SECONDS,
    MAX_SEED,
    MODEL_HELP,
    add_batch_size_argument,
    add_device_argument,
    add_input_argument,
    add_progress_argument,
    add_reader_arguments,
    float_in,
    int_in,
)
from isbert.errors import IsbertError
from isbert.extras import require
from isbert.inputs import InputFile, describe, expand_inputs
from isbert.search.chunking import MAX_CHUNK_TOKENS, Chunking

MAX_LISTS = 1_048_576
"""IVF lists (and lists probed): the coarse quantizer holds one centroid per list and trains on ~39 texts each."""
MAX_HNSW_M = 512
"""HNSW neighbours per node: each node stores 2 M links, so memory grows with M."""
MAX_EF_SEARCH = 100_000
"""HNSW search breadth: the candidates kept per query, so time grows with it."""
MAX_BLOCK = 16_384
"""``similar --block``: a tile holds block x block floats, 1 GiB at the cap."""
MAX_REQUEST_TEXTS = 65_536
"""``serve --max-texts``: texts a request may carry (each up to ``--max-chars``)."""
MAX_TEXT_CHARS = 1_000_000
"""``serve --max-chars``: characters per text, far past any model's maximum length."""
MAX_REQUEST_TOKENS = 10_000_000
"""``serve --max-tokens-per-request``: tokens counted per request before it is encoded."""
MAX_QUEUED = 100_000
"""``serve --max-queued``: requests waiting for the encoder, each holding its body."""
SECONDS = float_in(0, MAX_SECONDS, positive=True)
"""A timeout flag's type: positive, at most a day."""
MAX_BATCH_WAIT_MS = 10_000.0
"""``serve --batch-wait-ms``: ten seconds; every request waits this long at most for company."""


def _corpus_arguments(parser: argparse.ArgumentParser, *, input_required: bool = True) -> None:
    add_input_argument(parser, "the corpus", required=input_required)
    add_reader_arguments(parser)
    add_batch_size_argument(parser, 32)
    add_device_argument(parser)
    add_progress_argument(parser)


def _options(args: argparse.Namespace):
    from isbert.search.corpus import CorpusOptions

    return CorpusOptions(args.text_field, args.column, args.encoding_errors)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    _add_index(subparsers)
    _add_search(subparsers)
    _add_cluster(subparsers)
    _add_similar(subparsers)
    _add_serve(subparsers)


# ---------------------------------------------------------------------------------------------------- index
def _add_index(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index",
        help="build a semantic-search index folder, add texts to it, or describe it",
        description=(
            "Semantic-search index folders: texts, file:line sources and settings in one SQLite database (WAL), "
            "the vectors in a faiss file beside it. Readers (search, serve --index) keep answering while a writer "
            "adds, deletes or syncs."
        ),
    )
    commands = parser.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    _add_index_build(commands)

    add = commands.add_parser(
        "add",
        help="add the texts of a corpus to an existing index (atomically)",
        description=(
            "Embed --input with the index's model (or --model, which must be the same model) and append it, in "
            "one transaction: an interrupted add changes nothing. Texts the index holds already (same file:line "
            "and content) are skipped; --replace first deletes the records of each file given (an upsert by file)."
        ),
    )
    add.add_argument("index", help="the index folder")
    add.add_argument("--model", default=None, help="override the model reference stored in the index")
    _corpus_arguments(add)
    add.add_argument(
        "--replace", action="store_true", help="upsert: delete the records of each file given before adding it"
    )
    add.set_defaults(func=_run_index_update)
    _add_index_maintenance(commands)

    info = commands.add_parser("info", help="describe an index folder")
    info.add_argument("index", help="the index folder")
    info.set_defaults(func=_run_index_info)
    export = commands.add_parser(
        "export",
        help="write an index as one Parquet file (id, source, text, vector) for a vector database",
        description="Write every record of INDEX (id, file:line source, text, its stored vector) to one Parquet "
        "file, the model and its fingerprint in the file's metadata: what LanceDB, DuckDB, pgvector, Qdrant or "
        "Milvus ingest when an index outgrows one machine (docs/applications.md). Nothing is embedded again.",
    )
    export.add_argument("index", help="the index folder")
    export.add_argument("--output", "-o", required=True, help="the Parquet file to write (replaced atomically)")
    export.set_defaults(func=_run_index_export)


def _add_index_build(commands: argparse._SubParsersAction) -> None:
    build = commands.add_parser(
        "build",
        help="embed a corpus and write a new index folder",
        description=(
            "Embed every non-empty text of --input with --model and write the index folder INDEX. --kind auto "
            "(default) uses exact inner-product search below 200,000 texts and IVF above; hnsw and ivf are approximate "
            "and faster on large corpora. --storage float16/int8 shrinks the stored vectors 2x/4x. --vectors reuses "
            "the matrix `isbert encode` wrote (and its .sources.csv); with --input (the files encoded) the texts are "
            "stored too. A folder a stopped build left is replaced with --overwrite."
        ),
    )
    build.add_argument("index", help="the index folder to create")
    build.add_argument("--model", default=None, help=f"the model that embeds the texts (required): {MODEL_HELP}")
    # before `index build INDEX --model MODEL`, it was `index build MODEL --index INDEX`; still read, with a note
    build.add_argument("--index", dest="legacy_index", default=None, help=argparse.SUPPRESS)
    _corpus_arguments(build, input_required=False)
    build.add_argument(
        "--vectors", default=None, metavar="NPY", help="embed nothing: index this `isbert encode` output instead"
    )
    build.add_argument("--kind", choices=("auto", "flat", "hnsw", "ivf"), default="auto", help="index type")
    build.add_argument("--storage", choices=("float32", "float16", "int8"), default="float32", help="vector storage")
    build.add_argument("--nlist", type=int_in(1, MAX_LISTS), default=0, help="IVF lists (default: ~4 sqrt(n))")
    build.add_argument(
        "--nprobe", type=int_in(1, MAX_LISTS), default=0, help="IVF lists searched (default: nlist/16, >= 8)"
    )
    build.add_argument("--hnsw-m", type=int_in(1, MAX_HNSW_M), default=0, help="HNSW neighbours per node (default: 32)")
    build.add_argument(
        "--ef-search", type=int_in(1, MAX_EF_SEARCH), default=0, help="HNSW search breadth (default: 64)"
    )
    build.add_argument("--ids-only", action="store_true", help="store only each text's file:line, not the text")
    build.add_argument(
        "--chunk-tokens",
        type=int_in(0, MAX_CHUNK_TOKENS),
        default=0,
        help="split texts longer than this many tokens into overlapping pieces, each indexed (default: 0, off)",
    )
    build.add_argument(
        "--overlap", type=int_in(0, MAX_CHUNK_TOKENS), default=0, help="tokens shared by consecutive pieces (0)"
    )
    build.add_argument("--overwrite", action="store_true", help="replace an existing index in the folder")
    build.set_defaults(func=_run_index_build)


def _add_index_maintenance(commands: argparse._SubParsersAction) -> None:
    """``index delete``, ``index sync`` and ``index migrate``."""
    delete = commands.add_parser(
        "delete",
        help="delete the records of a file, or some ids, from an index",
        description="Delete the records of --source FILE (its label as hits show it; a folder prefix ends in /) "
        "or of each --id ID, in one transaction.",
    )
    delete.add_argument("index", help="the index folder")
    what = delete.add_mutually_exclusive_group(required=True)
    what.add_argument("--source", default=None, metavar="FILE", help="a file's label, e.g. docs/a.txt")
    what.add_argument(
        "--id", type=int_in(0, 2**62), action="append", dest="ids", metavar="ID", help="a record id (repeatable)"
    )
    delete.set_defaults(func=_run_index_delete)

    sync = commands.add_parser(
        "sync",
        help="bring an index in line with a folder: add new files, replace changed ones, delete removed ones",
        description="Compare the files of --input (the folder the index was built from) with the index by their "
        "bytes' sha256: new files are added, changed files replaced, files no longer there deleted; one transaction.",
    )
    sync.add_argument("index", help="the index folder")
    sync.add_argument("--model", default=None, help="override the model reference stored in the index")
    _corpus_arguments(sync)
    sync.set_defaults(func=_run_index_update)

    migrate = commands.add_parser(
        "migrate",
        help="convert an index folder of the first format (manifest.json, texts and offsets files) in place",
        description="Move the texts, sources, ids and vectors of a first-format index folder into the SQLite "
        "database and a vectors file; the old files are removed once the new index is committed.",
    )
    migrate.add_argument("index", help="the index folder")
    migrate.set_defaults(func=_run_index_migrate)


def _load_model(name: str, device: str | None):
    from isbert.model import load

    return load(name, device=device)


def _index_model(index: Any, given: str | None, device: str | None) -> tuple[Any, str]:
    """The model for an index: ``--model`` or the one it records, checked against the index (a note is printed)."""
    name = given or index.model_ref
    if given is None and os.path.isabs(name) and not os.path.exists(name):
        raise IsbertError(
            f"the index {index.folder} was built with the model in {name}, which is not there any more; pass the "
            "model with --model PATH (it is recognised by its files' checksums wherever it now is)"
        )
    model = _load_model(name, device)
    note = index.check_model(model, name)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return model, name


def _build_target(args: argparse.Namespace) -> tuple[str, str]:
    """The index folder and the model of ``index build``, from either spelling (the old one with a note)."""
    if args.legacy_index is None:
        if args.model is None:
            raise IsbertError("name the model: isbert index build INDEX --model MODEL --input FILE ...")
        return args.index, args.model
    if args.model is not None:
        raise IsbertError("give the index once: isbert index build INDEX --model MODEL (--index is the old spelling)")
    print(
        f"note: `index build MODEL --index DIR` is the old spelling; write `isbert index build {args.legacy_index} "
        f"--model {args.index}`",
        file=sys.stderr,
    )
    return args.legacy_index, args.index


def _run_index_build(args: argparse.Namespace) -> int:
    require("apps", "faiss", what="isbert index")
    from isbert.search.index import SearchIndex

    args.index, args.model = _build_target(args)
    chunking = Chunking(args.chunk_tokens, args.overlap)  # checked before the model loads
    if args.vectors is not None and chunking.tokens:
        raise IsbertError("--chunk-tokens splits texts before they are embedded; --vectors reuses vectors as they are")
    if args.vectors is None and not args.input:
        raise IsbertError("give the corpus: --input FILE ... (or --vectors VECTORS.npy from `isbert encode`)")
    inputs = expand_inputs(args.input) if args.input else None
    spec = {"nlist": args.nlist, "nprobe": args.nprobe, "hnsw_m": args.hnsw_m, "ef_search": args.ef_search}
    model = _load_model(args.model, args.device)
    if args.vectors is not None:
        if args.ids_only:
            raise IsbertError("--ids-only with --vectors: leave out --input instead, and only sources are stored")
        report = SearchIndex.build_from_vectors(
            args.index, model, args.model, args.vectors, inputs, options=_options(args), kind=args.kind,
            storage=args.storage, overwrite=args.overwrite, **spec,
        )  # fmt: skip
        print(report.summary())
        return 0
    report = SearchIndex.build(
        args.index,
        model,
        args.model,
        cast(list[InputFile], inputs),  # without --vectors, --input is given (checked above)
        options=_options(args),
        kind=args.kind,
        storage=args.storage,
        store_texts=not args.ids_only,
        overwrite=args.overwrite,
        batch_size=args.batch_size,
        show_progress=not args.no_progress,
        chunking=chunking,
        **spec,
    )
    print(report.summary())
    return 0


def _run_index_update(args: argparse.Namespace) -> int:
    """``index add`` and ``index sync``: embed files with the index's model into the index."""
    require("apps", "faiss", what="isbert index")
    from isbert.search.index import BuildReport, SearchIndex, SyncReport

    inputs = expand_inputs(args.input)
    index = SearchIndex.open(args.index)
    model, name = _index_model(index, args.model, args.device)
    options = {"options": _options(args), "batch_size": args.batch_size, "show_progress": not args.no_progress}
    report: SyncReport | BuildReport
    if args.index_command == "sync":
        report = index.sync(model, inputs, model_name=name, **options)
    else:
        report = index.add(model, inputs, model_name=name, replace=args.replace, **options)
    print(report.summary())
    return 0


def _run_index_delete(args: argparse.Namespace) -> int:
    require("apps", "faiss", what="isbert index")
    from isbert.search.index import SearchIndex

    index = SearchIndex.open(args.index)
    deleted = index.delete(source=args.source, ids=args.ids)
    print(f"{args.index}: deleted {deleted} records; index holds {len(index)} vectors")
    return 0


def _run_index_migrate(args: argparse.Namespace) -> int:
    require("apps", "faiss", what="isbert index")
    from isbert.search.index import SearchIndex

    report = SearchIndex.migrate(args.index)
    print(f"{args.index}: migrated {report.total} records and vectors to the SQLite index format")
    return 0


def _run_index_export(args: argparse.Namespace) -> int:
    require("apps", "faiss", what="isbert index export")
    from isbert.search.export import export_parquet
    from isbert.search.index import SearchIndex

    index = SearchIndex.open(args.index)
    try:
        rows = export_parquet(index, args.output)
    finally:
        index.close()
    print(f"wrote {rows} records of {args.index} to {args.output}")
    return 0


def _run_index_info(args: argparse.Namespace) -> int:
    require("apps", "faiss", what="isbert index")
    from isbert.search.index import SearchIndex

    print(SearchIndex.open(args.index).describe())
    return 0


# ---------------------------------------------------------------------------------------------------- search
def _add_search(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="find the texts of an index closest in meaning to queries",
        description=(
            "Search INDEX with one or more QUERY arguments, or one query per line of --queries FILE. The model is "
            "the one recorded in the index (or --model, refused if it is not the same model). Queries longer "
            "than the model's maximum length are truncated, with a note. --mode keyword ranks by BM25 over the "
            "query's words (every character literal; no model needed), hybrid fuses both rankings (reciprocal rank "
            "fusion) and finds rare exact terms vector search misses; --source keeps one file's records."
        ),
    )
    parser.add_argument("index", help="the index folder")
    parser.add_argument("query", nargs="*", help="query texts")
    parser.add_argument(
        "--queries", "-q", default=None, help="a file of queries (.txt one per line, .jsonl, .csv), or - for stdin"
    )
    parser.add_argument("-k", type=int_in(1, MAX_K), default=10, help="results per query (default: 10)")
    parser.add_argument("--model", default=None, help="override the model reference stored in the index")
    parser.add_argument("--json", action="store_true", help="print one JSON object per query")
    parser.add_argument(
        "--mode",
        choices=("vector", "keyword", "hybrid"),
        default="vector",
        help="vector (meaning; default), keyword (BM25: exact words, no model) or hybrid (both, fused by rank)",
    )
    parser.add_argument(
        "--source", default=None, metavar="FILE", help="search only this file's records (a folder: end it with /)"
    )
    add_device_argument(parser)
    parser.set_defaults(func=_run_search)


def _run_search(args: argparse.Namespace) -> int:
    require("apps", "faiss", what="isbert search")
    from isbert.encode import count_truncated
    from isbert.io import iter_texts
    from isbert.search.index import SearchIndex

    queries: list[tuple[str, str]] = [(f"query {i}", text) for i, text in enumerate(args.query, start=1)]
    if args.queries == "-":  # one query per line of standard input: a pipe, and the model is loaded once
        from isbert.io import decoded_lines

        lines = decoded_lines(Path("<stdin>"), sys.stdin.buffer)
        queries += [(f"<stdin>:{line}", text.strip()) for line, text in lines if text.strip()]
    elif args.queries:
        queries += [(f"{args.queries}:{line}", text) for line, text in iter_texts(args.queries, strip=True)]
    if not queries:
        raise IsbertError('give a query (isbert search INDEX "text") or --queries FILE')
    for where, text in queries:
        if not text.strip():
            raise IsbertError(f"{where}: empty query")
    index = SearchIndex.open(args.index)
    model = None if args.mode == "keyword" else _index_model(index, args.model, args.device)[0]
    texts = [text for _, text in queries]
    for where, text in queries:
        if model is not None and count_truncated(model, [text]):
            limit = model.max_seq_length
            print(f"note: {where} is longer than the model's {limit} tokens; it was truncated", file=sys.stderr)
    results = index.search(model, texts, k=args.k, mode=args.mode, source=args.source)
    chunked = bool(index.manifest.get("chunking", {}).get("tokens"))
    for (where, text), hits in zip(queries, results, strict=True):
        if args.json:
            print(json.dumps({"query": text, "hits": [hit.as_dict() for hit in hits]}, ensure_ascii=False))
            continue
        print(f"{where}: {text}")
        for hit in hits:
            shown = hit.text if hit.text is not None else "(text not stored)"
            piece = f" #{hit.chunk}" if chunked else ""
            print(f"  {hit.rank:>3}  {hit.score:.4f}  {shown}  [{hit.source}{piece}]")
    return 0


# --------------------------------------------------------------------------------------------------- cluster
def _add_cluster(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cluster",
        help="cluster a corpus; write assignments, cluster sizes, central sentences and a 2-D plot",
        description=(
            "Cluster the non-empty texts of --input: spherical k-means (faiss) with --k, or agglomerative "
            "(average linkage, cosine distance) with --distance-threshold or --k. Writes assignments.csv, "
            "clusters.json (sizes, c-TF-IDF keywords and the most central distinct sentences) and projection.png "
            "(UMAP when the umap extra is installed, else PCA; each cluster labelled by its keywords) to --output."
        ),
    )
    parser.add_argument("model", help=MODEL_HELP)
    _corpus_arguments(parser)
    parser.add_argument("--k", type=int_in(1, MAX_CLUSTERS), default=None, help="number of clusters")
    parser.add_argument("--method", choices=("kmeans", "agglomerative"), default="kmeans", help="default: kmeans")
    parser.add_argument(
        "--distance-threshold",
        type=float_in(0, 2),
        default=None,
        help="agglomerative: merge below this cosine distance",
    )
    parser.add_argument("--output", "-o", default="clusters", help="output folder (default: ./clusters)")
    parser.add_argument("--top", type=int_in(1, MAX_K), default=5, help="central sentences per cluster (default: 5)")
    parser.add_argument(
        "--projection", choices=("auto", "pca", "umap"), default="auto", help="auto (default): UMAP if installed"
    )
    parser.add_argument("--no-plot", action="store_true", help="skip projection.png")
    parser.add_argument("--seed", type=int_in(0, MAX_SEED), default=0, help="random seed (default: 0)")
    parser.set_defaults(func=_run_cluster)


def _run_cluster(args: argparse.Namespace) -> int:
    _check_cluster_arguments(args)
    from isbert.search.cluster import cluster_embeddings, write_clusters
    from isbert.search.corpus import EmbedStats, embed_corpus

    files = expand_inputs(args.input)
    model = _load_model(args.model, args.device)
    stats = EmbedStats()
    sources, texts, embeddings = embed_corpus(
        model, files, _options(args), batch_size=args.batch_size, show_progress=not args.no_progress, stats=stats
    )
    labels = cluster_embeddings(
        embeddings, method=args.method, k=args.k, distance_threshold=args.distance_threshold, seed=args.seed
    )
    report = write_clusters(
        args.output,
        sources,
        texts,
        embeddings,
        labels,
        top=args.top,
        plot=not args.no_plot,
        projection=args.projection,
        seed=args.seed,
        title=f"{describe(files)}, {args.method}",
    )
    print(report.summary())
    if stats.truncated:
        print(f"note: {stats.truncated} texts were truncated to the model's maximum length", file=sys.stderr)
    return 0


def _check_cluster_arguments(args: argparse.Namespace) -> None:
    """Everything that can be refused before the model is loaded and the corpus encoded."""
    if args.method == "kmeans":
        if args.k is None:
            raise IsbertError("k-means needs --k N (or use --method agglomerative --distance-threshold T)")
        if args.distance_threshold is not None:
            raise IsbertError("--distance-threshold is for --method agglomerative; k-means takes --k only")
        require("apps", "faiss", what="isbert cluster (k-means)")
    elif (args.k is None) == (args.distance_threshold is None):
        raise IsbertError("agglomerative clustering needs exactly one of --k or --distance-threshold")
    if not args.no_plot:
        require("apps", "matplotlib", what="the cluster plot (or pass --no-plot)")
        if args.projection == "umap":
            require("umap", "umap", what="--projection umap")


# --------------------------------------------------------------------------------------------------- similar
def _add_similar(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "similar",
        help="list near-duplicate / paraphrase pairs above a cosine threshold",
        description=(
            "Find every pair of texts of --input whose cosine similarity is at least --threshold, best first. "
            "The similarity matrix is computed in tiles, so memory does not grow with the square of the corpus."
        ),
    )
    parser.add_argument("model", help=MODEL_HELP)
    _corpus_arguments(parser)
    parser.add_argument(
        "--threshold", "-t", type=float_in(-1, 1), required=True, help="minimum cosine similarity, e.g. 0.9"
    )
    parser.add_argument(
        "--max-pairs", type=int_in(1, MAX_SAMPLE), default=100_000, help="keep the best N pairs (100000)"
    )
    parser.add_argument("--output", "-o", default=None, help="write all pairs as .jsonl or .tsv (default: print)")
    parser.add_argument("--block", type=int_in(1, MAX_BLOCK), default=4096, help="tile size (default: 4096)")
    parser.add_argument(
        "--group",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="collapse identical texts into one entry with its count, so repeats are not listed pairwise (default; "
        "--no-group lists every pair of copies)",
    )
    parser.set_defaults(func=_run_similar)


def _run_similar(args: argparse.Namespace) -> int:
    import numpy as np

    from isbert.search.corpus import EmbedStats, embed_corpus
    from isbert.search.similar import group_identical, mine_pairs

    files = expand_inputs(args.input)
    model = _load_model(args.model, args.device)
    stats = EmbedStats()
    sources, texts, embeddings = embed_corpus(
        model, files, _options(args), batch_size=args.batch_size, show_progress=not args.no_progress, stats=stats
    )
    groups = group_identical(texts) if args.group else None
    rows_of = groups.first_rows if groups is not None else np.arange(len(texts))
    counts = groups.counts if groups is not None else np.ones(len(texts), dtype=np.int64)
    pairs = mine_pairs(
        embeddings[rows_of], args.threshold, block=args.block, max_pairs=args.max_pairs,
        show_progress=not args.no_progress,
    )  # fmt: skip
    found = [
        {"score": float(score), "source1": sources[rows_of[i]], "source2": sources[rows_of[j]],
         "text1": texts[rows_of[i]], "text2": texts[rows_of[j]], "count1": int(counts[i]), "count2": int(counts[j])}
        for i, j, score in zip(pairs.first, pairs.second, pairs.scores, strict=True)
    ]  # fmt: skip
    if args.output:
        _write_pairs(Path(args.output), found, grouped=groups is not None)
    else:
        for pair in found:
            print(f"{pair['score']:.4f}  {_entry(pair, 1)}  <->  {_entry(pair, 2)}")
    capped = f" (kept the best {len(pairs)}; raise --max-pairs for all)" if pairs.truncated else ""
    where = f", written to {args.output}" if args.output else ""
    grouped = f" ({len(rows_of)} distinct, {groups.repeated} of them repeated)" if groups is not None else ""
    print(
        f"{pairs.qualified} pairs with cosine >= {args.threshold} among {len(texts)} texts{grouped}{capped}{where}",
        file=sys.stderr,
    )
    return 0


def _entry(pair: dict[str, Any], side: int) -> str:
    count = pair[f"count{side}"]
    return f"{pair[f'source{side}']}: {pair[f'text{side}']}" + (f" (x{count})" if count > 1 else "")


def _write_pairs(output: Path, pairs: list[dict[str, Any]], *, grouped: bool) -> None:
    import csv

    columns = ["score", "source1", "source2", "text1", "text2", *(["count1", "count2"] if grouped else [])]
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(output, "w", encoding="utf-8", newline="") as handle:
        if output.suffix == ".tsv":
            writer = csv.writer(handle, delimiter="\t")
            writer.writerow(columns)
            writer.writerows([f"{p['score']:.4f}", *(p[c] for c in columns[1:])] for p in pairs)
        else:
            for pair in pairs:
                handle.write(json.dumps({c: round(pair[c], 4) if c == "score" else pair[c] for c in columns}) + "\n")


# ----------------------------------------------------------------------------------------------------- serve
def _add_serve(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run an HTTP service: /embed, /similarity, /search, /health and OpenAI-style /v1/embeddings",
        description=(
            "Serve MODEL over HTTP (FastAPI + uvicorn). With --index, /search answers from that index, which must "
            "have been built with the same model. Concurrent requests are batched together. Binding beyond "
            "loopback needs an API key (--api-key or ISBERT_API_KEY); put TLS in front with a reverse proxy."
        ),
    )
    parser.add_argument("model", help=MODEL_HELP)
    parser.add_argument("--index", default=None, help="an index folder for /search")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int_in(1, 65_535), default=8000, help="port (default: 8000)")
    parser.add_argument("--model-name", default=None, help="the model's name in answers (default: its folder's name)")
    _add_serve_security(parser)
    parser.add_argument(
        "--max-texts", type=int_in(1, MAX_REQUEST_TEXTS), default=256, help="texts per request (default: 256)"
    )
    parser.add_argument(
        "--max-chars", type=int_in(1, MAX_TEXT_CHARS), default=10_000, help="characters per text (10000)"
    )
    parser.add_argument(
        "--max-tokens-per-request",
        type=int_in(1, MAX_REQUEST_TOKENS),
        default=100_000,
        help="tokens per request (default: 100000)",
    )
    parser.add_argument(
        "--max-queued",
        type=int_in(1, MAX_QUEUED),
        default=64,
        help="requests waiting to be encoded; 503 above (default: 64)",
    )
    parser.add_argument("--request-timeout", type=SECONDS, default=60.0, help="seconds per request; 504 after (60)")
    parser.add_argument("--body-timeout", type=SECONDS, default=10.0, help="seconds to receive a body; 408 after (10)")
    parser.add_argument("--header-timeout", type=SECONDS, default=10.0, help="seconds to receive headers (default: 10)")
    parser.add_argument(
        "--shutdown-timeout",
        type=SECONDS,
        default=3.0,
        help="seconds from SIGTERM or Ctrl-C to exit; new requests, and those unfinished by then, get a 503 (3)",
    )
    parser.add_argument(
        "--max-batch", type=int_in(1, MAX_BATCH), default=64, help="texts per merged batch (default: 64)"
    )
    parser.add_argument(
        "--batch-wait-ms",
        type=float_in(0, MAX_BATCH_WAIT_MS),
        default=5.0,
        help="wait for more requests (default: 5 ms)",
    )
    add_device_argument(parser)
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default: warning)")
    parser.set_defaults(func=_run_serve)


def _add_serve_security(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key",
        default=os.environ.get("ISBERT_API_KEY"),
        help="require 'Authorization: Bearer KEY' (default: $ISBERT_API_KEY; prefer it: arguments show in ps)",
    )
    parser.add_argument(
        "--insecure-no-api-key",
        action="store_true",
        help="allow a non-loopback --host without an API key (anyone who can reach the port can use it)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name clients may use besides loopback names (repeatable; guards against DNS rebinding)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin allowed to call the service, e.g. https://app.example (repeatable; default: none)",
    )


def _serve_settings(args: argparse.Namespace):
    """The service's Limits and Security from the flags; a non-loopback bind without a key is refused."""
    from isbert.search.serve import Limits, Security, is_loopback

    if not 0 < args.port < 65536:
        raise IsbertError(f"--port must be between 1 and 65535, got {args.port}")
    for flag in ("request_timeout", "body_timeout", "header_timeout", "shutdown_timeout"):
        if not getattr(args, flag) > 0:
            raise IsbertError(f"--{flag.replace('_', '-')} must be a positive number of seconds")
    loopback = is_loopback(args.host)
    if not args.api_key and not loopback and not args.insecure_no_api_key:
        raise IsbertError(
            f"--host {args.host} is reachable from other machines; set an API key (--api-key or ISBERT_API_KEY) "
            "or pass --insecure-no-api-key"
        )
    limits = Limits(
        max_texts=args.max_texts,
        max_chars=args.max_chars,
        max_tokens=args.max_tokens_per_request,
        max_queued=args.max_queued,
        request_timeout_s=args.request_timeout,
        body_timeout_s=args.body_timeout,
        header_timeout_s=args.header_timeout,
        shutdown_timeout_s=args.shutdown_timeout,
    )
    security = Security(
        api_key=args.api_key or None,
        check_host=loopback or bool(args.allowed_host),
        allowed_hosts=tuple(args.allowed_host),
        cors_origins=tuple(args.cors_origin),
    )
    return limits, security


def _open_index(folder: str):
    from isbert.search.index import SearchIndex

    return SearchIndex.open(folder)


def _run_serve(args: argparse.Namespace) -> int:
    require("apps", "fastapi", "uvicorn", what="isbert serve")
    if args.index:
        require("apps", "faiss", what="isbert serve --index")
    from isbert.search.serve import create_app, serve

    limits, security = _serve_settings(args)
    index = _open_index(args.index) if args.index else None
    model = _load_model(args.model, args.device)
    if index is not None:
        note = index.check_model(model, args.model)  # by path: the checksums find the model and its exports
        if note:
            print(f"note: {note}", file=sys.stderr)
    app = create_app(
        model,
        args.model_name or Path(args.model.rstrip("/\\")).name or "model",
        index=index,
        limits=limits,
        security=security,
        max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms,
        index_checked=True,
    )
    serve(app, args.host, args.port, args.log_level)
    return 0
