"""Commands on models and their vectors: ``encode``, ``export`` (ONNX) and ``convert-weights`` (to safetensors)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from isbert.cli_types import (
    MAX_CHUNK,
    MODEL_HELP,
    add_batch_size_argument,
    add_device_argument,
    add_input_argument,
    add_progress_argument,
    add_reader_arguments,
    int_in,
)
from isbert.errors import IsbertError
from isbert.extras import require

MAX_WORKERS = 1_024
"""``encode --workers``: Ray model replicas, each a full copy of the model."""


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    _add_encode(subparsers)
    _add_export(subparsers)
    _add_convert_weights(subparsers)


def _add_encode(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encode",
        help="encode a text file into a .npy matrix of sentence embeddings",
        description=(
            "Encode every text of --input (one per line in .txt/.txt.gz; one JSON object per line in .jsonl, "
            "text in --text-field; .csv/.tsv with a header, text in --column) and write a float32 .npy matrix "
            "with one row per text, in input order. Empty lines keep their row (the embedding of the empty "
            "string); texts longer than the model's maximum length are truncated, and both are counted. The input "
            "is streamed and the output written in chunks; an interrupted run resumes when run again."
        ),
    )
    parser.add_argument("model", help=MODEL_HELP)
    add_input_argument(parser, "the texts to encode, one row per record, files in the order given")
    parser.add_argument(
        "--output",
        "-o",
        required=True,
        help="where to write the embeddings (.npy); each row's file:line goes beside it, in NAME.sources.csv",
    )
    add_reader_arguments(parser)
    add_batch_size_argument(parser, 32)
    parser.add_argument("--normalize", action="store_true", help="L2-normalize each embedding")
    add_device_argument(parser)
    parser.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="torch (default) or onnx (CPU, fastest with int8): MODEL is a folder written by `isbert export`, or a "
        "model folder, exported once into $ISBERT_CACHE/onnx, else ~/.cache/isbert/onnx, and reused",
    )
    parser.add_argument(
        "--quantization",
        choices=("int8", "none"),
        default=None,
        help="with --backend onnx: which exported graph to run (default: the one `isbert export --quantization` chose)",
    )
    parser.add_argument(
        "--chunk-size",
        type=int_in(1, MAX_CHUNK),
        default=8192,
        help="texts encoded and written per step; an interrupted run resumes after the last full step (default: 8192)",
    )
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local (this process, default) or ray: model replicas on a Ray cluster (pip install 'isbert[ray]')",
    )
    parser.add_argument(
        "--workers", type=int_in(1, MAX_WORKERS), default=2, help="with --engine ray: model replicas (default: 2)"
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help="with --engine ray: a running cluster ('auto', 'ray://HOST:10001'); default: start Ray locally",
    )
    add_progress_argument(parser)
    parser.set_defaults(func=_run_encode, interrupt_hint="run the same command again to continue where it stopped")


def _add_export(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX (optionally int8) for fast CPU encoding",
        description=(
            "Export MODEL to a self-contained ONNX folder (graph, tokenizer, isbert_onnx.json) that "
            "`isbert encode --backend onnx` and isbert.load(..., backend='onnx') use. With --quantization int8 "
            "(default) the encoder's matrix multiplications are quantized to int8 (dynamic, per channel); "
            "the fp32 graph is kept too."
        ),
    )
    parser.add_argument("model", help=MODEL_HELP)
    parser.add_argument("--output", "-o", required=True, help="the folder to write (must be new or an export)")
    parser.add_argument(
        "--quantization",
        choices=("int8", "none"),
        default="int8",
        help="int8: an int8 graph beside the fp32 one, and encoders use it; none: the fp32 graph only (default: int8)",
    )
    # the flag's name before `encode --quantization` and `export` agreed on one
    parser.add_argument("--quantize", dest="quantization", choices=("int8", "none"), help=argparse.SUPPRESS)
    parser.set_defaults(func=_run_export)


def _add_convert_weights(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert-weights",
        help="convert a model folder's pickle weights (pytorch_model.bin) to safetensors, once",
        description=(
            "isbert loads weights only from safetensors files, because unpickling can run code. This command reads "
            "each pickle-only weights file of FOLDER (and of its module folders) with torch.load(weights_only=True), "
            "which accepts plain tensors only, and writes model.safetensors beside it. A pickle that holds anything "
            "else is refused and nothing is written."
        ),
    )
    parser.add_argument("folder", help="a local model folder holding pytorch_model.bin (or .pt) weights")
    parser.set_defaults(func=_run_convert_weights)


def _run_convert_weights(args: argparse.Namespace) -> int:
    from isbert.pickle_weights import convert_pickle_weights

    if not os.path.isdir(args.folder):
        raise IsbertError(f"model folder not found: {args.folder}")
    for written in convert_pickle_weights(args.folder):
        print(f"wrote {written}")
    return 0


def _run_export(args: argparse.Namespace) -> int:
    require("onnx", "onnx", "onnxruntime", what="isbert export")
    from isbert.identity import folder_checksum
    from isbert.model import load_torch, resolve_model_name
    from isbert.onnx_backend import export_onnx

    model = load_torch(args.model, device="cpu")
    checksum = folder_checksum(resolve_model_name(args.model))
    folder = export_onnx(
        model, args.output, quantize=args.quantization, source=str(args.model), source_checksum=checksum
    )
    print(f"exported {args.model} to {folder} ({'int8 + fp32' if args.quantization == 'int8' else 'fp32'})")
    return 0


def _run_encode(args: argparse.Namespace) -> int:
    if args.backend == "onnx":
        require("onnx", "onnxruntime", what="--backend onnx")
    if args.engine == "ray":
        require("ray", "ray", what="--engine ray")
    from isbert.encode import encode_file
    from isbert.evaluation.harness import model_cache_key
    from isbert.inputs import expand_inputs
    from isbert.model import load

    files = expand_inputs(args.input)  # a wrong path fails now, not after the model has loaded
    if args.backend == "onnx":
        model = load(args.model, backend="onnx", **({"quantization": args.quantization} if args.quantization else {}))
        if Path(model.path).resolve() != Path(args.model).resolve():  # a plain model folder: exported into the cache
            print(f"isbert encode: ONNX export of {args.model}: {model.path} (made once, reused)", file=sys.stderr)
    else:
        model = load(args.model, device=args.device)
    embed_chunks = None
    if args.engine == "ray":
        from isbert.distributed import ray_chunk_encoder

        embed_chunks = ray_chunk_encoder(
            args.model,
            workers=args.workers,
            address=args.ray_address,
            batch_size=args.batch_size,
            normalize=args.normalize,
            backend=args.backend,
            quantization=args.quantization,
        )
    report = encode_file(
        model,
        files,
        args.output,
        text_field=args.text_field,
        column=args.column,
        batch_size=args.batch_size,
        normalize=args.normalize,
        encoding_errors=args.encoding_errors,
        chunk_size=args.chunk_size,
        # the folder's files, not only its name: a model retrained into the same folder does not resume the old rows
        model_id=f"{model_cache_key(args.model)}|{args.backend}|{args.quantization}",
        embed_chunks=embed_chunks,
        show_progress=not args.no_progress,
    )
    print(report.summary())
    return 0
