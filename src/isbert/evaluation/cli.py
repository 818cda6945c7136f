"""``isbert eval`` and ``isbert data {check,download}``: added to the main parser by :func:`add_commands`."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from isbert.cli_types import (
    MAX_COMPONENTS,
    MAX_SECONDS,
    add_batch_size_argument,
    add_data_dir_argument,
    add_device_argument,
    add_progress_argument,
    float_in,
    int_in,
)
from isbert.evaluation.download import DEFAULT_MAX_DOWNLOAD_MB, DEFAULT_MAX_EXTRACT_MB
from isbert.evaluation.tasks import ALL_TASKS, ENV_VAR, GROUPS
from isbert.evaluation.unlabeled import DEFAULT_MAX_DOWNLOAD_MB as UNLABELED_MAX_DOWNLOAD_MB
from isbert.evaluation.unlabeled import DEFAULT_MAX_EXTRACT_MB as UNLABELED_MAX_EXTRACT_MB
from isbert.evaluation.unlabeled import MIRROR_ENV, NLI_CORPUS

if TYPE_CHECKING:
    from isbert.evaluation.download import Source

MAX_MEGABYTES = 1_048_576
"""``--max-download-mb`` and ``--max-extract-mb``: one TiB; the whole evaluation data is 33 MB."""


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` and ``data`` subcommands; each sets ``func(args) -> exit code``."""
    tasks_help = f"comma-separated, case-insensitive: groups {', '.join(GROUPS)} or tasks {', '.join(ALL_TASKS)}"
    data_help = f"default: ${ENV_VAR}"

    ev = subparsers.add_parser(
        "eval",
        help="evaluate a model on STS and SentEval transfer tasks, beside the paper's rows",
        description="Evaluate a sentence embedding model: STS (cosine Spearman x100, the paper's Table 1 protocol) "
        "and SentEval transfer tasks (logistic regression accuracy).",
    )
    ev.add_argument(
        "model",
        help="model folder, hub id, 'offline-minilm' (the packaged all-MiniLM-L6-v2) or 'offline-glove' "
        "(average GloVe)",
    )
    ev.add_argument("--tasks", default=None, help=f"tasks to run (default: sts, or none with --pairs); {tasks_help}")
    ev.add_argument(
        "--pairs",
        default=None,
        metavar="FILE",
        help="also score your own labeled pairs, one 'text1<TAB>text2<TAB>score' per line (any score scale; an "
        "optional header line), with the STS protocol: cosine similarity, Spearman x100",
    )
    ev.add_argument(
        "--compare",
        default=None,
        metavar="OTHER",
        help="evaluate OTHER (a model, e.g. the starting backbone) the same way and print its row and the delta",
    )
    add_data_dir_argument(ev, data_help)
    ev.add_argument(
        "--text",
        choices=("senteval", "raw"),
        default="senteval",
        help="STS sentences: SentEval's tokenized files (default, as in the paper) or the original text",
    )
    ev.add_argument("--full", action="store_true", help="SentEval's full transfer protocol (10-fold, inner CV); slower")
    ev.add_argument(
        "--standardize",
        action="store_true",
        help="standardize features before the transfer classifier (not SentEval's protocol)",
    )
    ev.add_argument(
        "--pooling",
        choices=("mean", "cls", "first-last-mean"),
        default=None,
        help="training-free baseline: this pooling over the model's encoder instead of the model's own head",
    )
    ev.add_argument("--whiten", action="store_true", help="apply BERT-whitening fitted on unlabeled sentences")
    ev.add_argument(
        "--whiten-dim",
        type=int_in(1, MAX_COMPONENTS),
        default=None,
        help="keep this many whitened dimensions (default: all)",
    )
    ev.add_argument(
        "--whiten-file", default=None, help="unlabeled sentences for whitening, one per line (default: SNLI in data)"
    )
    add_batch_size_argument(ev, 64)
    ev.add_argument("--cache-dir", default=None, help="cache embeddings here, keyed by model and sentence")
    add_device_argument(ev)
    ev.add_argument("--json", dest="json_out", default=None, metavar="OUT.json", help="write the results as JSON")
    ev.add_argument("--markdown", default=None, metavar="OUT.md", help="write the tables as Markdown")
    add_progress_argument(ev)
    ev.set_defaults(func=run_eval)
    _add_data_commands(subparsers, data_help, tasks_help)


def _add_data_commands(subparsers: argparse._SubParsersAction, data_help: str, tasks_help: str) -> None:
    data = subparsers.add_parser("data", help="check or download the evaluation data")
    data_sub = data.add_subparsers(dest="data_command", metavar="{check,download}", required=True)
    check = data_sub.add_parser("check", help="verify layout, pair counts and checksums of the evaluation data")
    add_data_dir_argument(check, data_help)
    check.add_argument("--tasks", default="all", help=f"tasks to check (default: all); {tasks_help}")
    check.set_defaults(func=run_check)
    download = data_sub.add_parser(
        "download",
        help="download the evaluation data (or, with --unlabeled nli, the paper's training corpus) from the original "
        "sources",
    )
    add_data_dir_argument(download, "required: the folder to download into, created if needed", required=True)
    download.add_argument(
        "--unlabeled",
        choices=("nli",),
        default=None,
        help=f"instead of the evaluation data: build the paper's training corpus {NLI_CORPUS} from SNLI 1.0 and "
        "MultiNLI 1.0 train (pinned sha256; about 320 MB of downloads, read without extracting)",
    )
    download.add_argument(
        "--sources", default=None, help="JSON list of sources (name, url, kind, members, sha256) to use instead"
    )
    download.add_argument(
        "--mirror",
        default=None,
        metavar="BASE_URL",
        help=f"with --unlabeled: fetch snli_1.0.zip and multinli_1.0.zip from here (https://... or file:///folder), "
        f"still checked against the pinned sha256; default: ${MIRROR_ENV}, else the original locations",
    )
    download.add_argument(
        "--timeout",
        type=float_in(0, MAX_SECONDS, positive=True),
        default=60.0,
        help="seconds per request (default: 60)",
    )
    download.add_argument(
        "--max-download-mb",
        type=int_in(1, MAX_MEGABYTES),
        default=None,
        help=f"stop any one download larger than this (default: {DEFAULT_MAX_DOWNLOAD_MB}, with --unlabeled "
        f"{UNLABELED_MAX_DOWNLOAD_MB}; the real ones are smaller)",
    )
    download.add_argument(
        "--max-extract-mb",
        type=int_in(1, MAX_MEGABYTES),
        default=None,
        help=f"refuse an archive whose members add up to more than this, declared or decompressed (default: "
        f"{DEFAULT_MAX_EXTRACT_MB}, with --unlabeled {UNLABELED_MAX_EXTRACT_MB}; the whole evaluation data is 33 MB)",
    )
    download.set_defaults(func=run_download)


def run_eval(args: argparse.Namespace) -> int:
    from isbert.evaluation.report import format_table, write_json, write_markdown
    from isbert.model import check_model_reference

    for model in (args.model, args.compare):  # both, before the first one is encoded
        if model is not None:
            check_model_reference(model)
    ours: dict[str, Any] = {}
    theirs: dict[str, Any] = {}
    results = _evaluate(args, args.model, ours)
    baseline = _evaluate(args, args.compare, theirs) if args.compare is not None else None
    print(format_table(results, baseline))
    verdict = None
    if baseline is not None:
        from isbert.evaluation.verdict import compare

        verdict = compare(ours, theirs, (args.model, args.compare))
        print(verdict.sentence() if verdict else "verdict: no STS task or pairs scored, so no verdict on similarity.")
    if args.json_out:
        compared = {"compare": baseline, "verdict": verdict and asdict(verdict)} if baseline is not None else {}
        write_json({**results, **compared}, args.json_out)
    if args.markdown:
        write_markdown(results, args.markdown, baseline)
    return 0


def _evaluate(args: argparse.Namespace, model: str, scored: dict[str, Any]) -> dict[str, Any]:
    """One model, with the flags of ``isbert eval``; ``scored`` receives its STS similarities for the verdict."""
    from isbert.evaluation import evaluate

    return evaluate(
        model,
        args.tasks,
        args.data_dir,
        pairs=args.pairs,
        text=args.text,
        pooling=args.pooling,
        whiten=args.whiten or args.whiten_dim is not None,
        whiten_dim=args.whiten_dim,
        whiten_file=args.whiten_file,
        full=args.full,
        standardize=args.standardize,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
        device=args.device,
        show_progress=not args.no_progress,
        log=lambda message: print(f"{model}: {message}" if args.compare else message, file=sys.stderr),
        scored=scored,
    )


def run_check(args: argparse.Namespace) -> int:
    from isbert.evaluation.check import check_data
    from isbert.evaluation.tasks import canonical_task_names

    lines = check_data(args.data_dir, canonical_task_names(args.tasks))
    for line in lines:
        print(("ok    " if line.ok else "FAIL  ") + line.message)
    failed = sum(not line.ok for line in lines)
    print(f"{len(lines) - failed} ok, {failed} failed")
    return 1 if failed else 0


def run_download(args: argparse.Namespace) -> int:
    from isbert.errors import IsbertError
    from isbert.evaluation.download import MB, download, load_sources

    sources = load_sources(args.sources) if args.sources else None
    if args.unlabeled:
        return _run_unlabeled(args, sources)
    if args.mirror:
        raise IsbertError("--mirror is for --unlabeled nli; for the evaluation data use --sources")
    written = download(
        args.data_dir,
        sources,
        timeout=args.timeout,
        max_download_bytes=(args.max_download_mb or DEFAULT_MAX_DOWNLOAD_MB) * MB,
        max_extract_bytes=(args.max_extract_mb or DEFAULT_MAX_EXTRACT_MB) * MB,
    )
    print(f"wrote {len(written)} files under {args.data_dir}")
    if sources is None:
        print(
            "note: the original sources give the raw STS text (use --text raw) and no MRPC (Microsoft's .msi); "
            "SentEval's data/downstream/get_transfer_data.bash makes the tokenized files and MRPC."
        )
    return 0


def _run_unlabeled(args: argparse.Namespace, sources: list[Source] | None) -> int:
    from isbert.evaluation.download import MB, Limits
    from isbert.evaluation.unlabeled import build_nli_corpus, nli_sources

    download_mb = args.max_download_mb or UNLABELED_MAX_DOWNLOAD_MB
    limits = Limits(download_mb * MB, (args.max_extract_mb or UNLABELED_MAX_EXTRACT_MB) * MB, args.timeout)
    corpus = build_nli_corpus(args.data_dir, sources if sources is not None else nli_sources(args.mirror), limits)
    print(f"nli: {corpus.summary()}")
    return 0
