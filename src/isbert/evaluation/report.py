"""Result reports: a terminal table with the paper's rows beside the model's, JSON, and Markdown."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from isbert.atomic import write_json_atomic, write_text_atomic
from isbert.evaluation.tasks import PAIRS_TASK, STS_SUBSETS, STS_TASKS, TRANSFER_TASKS

PAPER_SOURCE = "reported in the paper (IS-BERT, Zhang et al., EMNLP 2020, Table 1; baselines from SBERT)"
PAPER_STS: dict[str, tuple[float, ...]] = {
    "Avg. GloVe embeddings": (55.14, 70.66, 59.73, 68.25, 63.66, 58.02, 53.76),
    "Avg. BERT embeddings": (38.78, 57.98, 57.98, 63.15, 61.06, 46.35, 58.40),
    "BERT CLS": (20.16, 30.01, 20.09, 36.88, 38.08, 16.50, 42.63),
    "IS-BERT-NLI": (56.77, 69.24, 61.21, 75.23, 70.16, 69.21, 64.25),
}
"""Cosine Spearman x100 in the order of ``STS_TASKS``, reported in the paper, never computed here."""
PAPER_TRANSFER: dict[str, tuple[float, ...]] = {
    "Avg. GloVe embeddings": (77.25, 78.30, 91.17, 87.85, 80.18, 83.0, 72.87),
    "Avg. BERT embeddings": (78.66, 86.25, 94.37, 88.66, 84.40, 92.8, 69.45),
    "BERT CLS": (78.68, 84.85, 94.21, 88.23, 84.13, 91.4, 71.13),
    "IS-BERT-NLI": (81.09, 87.18, 94.96, 88.75, 85.96, 88.64, 74.24),
}
"""Accuracy x100 in the order of ``TRANSFER_TASKS``, reported in the paper, never computed here."""

_HEADERS = {"STSBenchmark": "STSb", "SST2": "SST"}


def _row(label: str, values: list[float | None], signed: bool = False) -> list[str]:
    form = "+.2f" if signed else ".2f"
    cells = [format(v, form) if v is not None else "-" for v in values]
    average = format(sum(values) / len(values), form) if values and all(v is not None for v in values) else "-"  # type: ignore[arg-type]
    return [label, *cells, average]


def _model_rows(
    results: Mapping[str, Any], baseline: Mapping[str, Any] | None, tasks: tuple[str, ...], metric: str
) -> list[list[str]]:
    """This run's row; with a baseline (``isbert eval --compare``), its row and the delta (this run - baseline)."""

    def scores(run: Mapping[str, Any]) -> list[float | None]:
        return [run[t][metric] if t in run else None for t in tasks]

    ours = scores(results)
    rows = [_row(f"{results.get('model', 'model')} (this run)", ours)]
    if baseline is not None:
        theirs = scores(baseline)
        delta = [a - b if a is not None and b is not None else None for a, b in zip(ours, theirs, strict=True)]
        rows += [_row(f"{baseline.get('model', 'baseline')} (--compare)", theirs), _row("delta", delta, signed=True)]
    return rows


def _tables(
    results: Mapping[str, Any], baseline: Mapping[str, Any] | None = None
) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of the STS, transfer and own-pairs tables, for the tasks present in ``results``."""
    tables = []
    for title, tasks, paper, metric in (
        ("STS (cosine Spearman x100)", STS_TASKS, PAPER_STS, "spearman"),
        ("Transfer (accuracy x100)", TRANSFER_TASKS, PAPER_TRANSFER, "accuracy"),
    ):
        if not any(task in results for task in tasks):
            continue
        header = ["Model", *(_HEADERS.get(t, t) for t in tasks), "Avg."]
        rows = [_row(f"{name} (paper)", list(values)) for name, values in paper.items()]
        tables.append((title, header, rows + _model_rows(results, baseline, tasks, metric)))
    if PAIRS_TASK in results:
        file = Path(results["settings"]["pairs"]).name if "settings" in results else PAIRS_TASK
        title = f"Your pairs: {file}, {results[PAIRS_TASK]['n']} pairs (cosine Spearman x100)"
        rows = [row[:2] for row in _model_rows(results, baseline, (PAIRS_TASK,), "spearman")]
        tables.append((title, ["Model", "Spearman"], rows))
    breakdown = [t for t in STS_SUBSETS if t in results]
    if breakdown:
        header = ["Task", "all", "mean", "wmean", *("sub-datasets",)]
        rows = []
        for task in breakdown:
            r = results[task]
            subs = ", ".join(f"{name} {v['spearman']:.2f}" for name, v in r["subsets"].items())
            rows.append([task, f"{r['all']:.2f}", f"{r['mean']:.2f}", f"{r['wmean']:.2f}", subs])
        tables.append(("STS12-16 aggregations (Spearman x100)", header, rows))
    return tables


def _has_paper_rows(results: Mapping[str, Any]) -> bool:
    return any(task in results for task in (*STS_TASKS, *TRANSFER_TASKS))


def _align(cells: list[str], widths: list[int], left: set[int]) -> str:
    padded = (c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    return "  ".join(padded).rstrip()


def format_table(results: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> str:
    """Plain-text tables for the terminal: the paper's rows, then this model's row (and the baseline's, the delta)."""
    out = []
    for title, header, rows in _tables(results, baseline):
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        left = {0, len(header) - 1} if title.startswith("STS12") else {0}
        lines = [_align(cells, widths, left) for cells in [header, *rows]]
        out += [title, lines[0], "  ".join("-" * w for w in widths), *lines[1:], ""]
    out += [f"Rows marked (paper): {PAPER_SOURCE}."] if _has_paper_rows(results) else []
    timing = results.get("timing")
    if timing:
        out.append(
            f"{timing['distinct_sentences']} distinct sentences ({timing['encoded_sentences']} encoded, rest cached); "
            f"encoding {timing['encode_seconds']:.0f} s, total {timing['total_seconds']:.0f} s."
        )
    return "\n".join(out)


def format_markdown(results: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> str:
    """The same tables as Markdown, with the settings, for reports."""
    out = [f"### Evaluation of `{results.get('model', 'model')}`", ""]
    for title, header, rows in _tables(results, baseline):
        out += [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        out.append("")
    out += [f"Rows marked (paper): {PAPER_SOURCE}."] if _has_paper_rows(results) else []
    settings = results.get("settings")
    if settings:
        out.append("")
        out.append("Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items() if k not in ("tasks", "data_dir")))
    return "\n".join(out) + "\n"


def write_json(results: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    write_json_atomic(path, results, indent=2)


def write_markdown(
    results: Mapping[str, Any], path: str | os.PathLike[str], baseline: Mapping[str, Any] | None = None
) -> None:
    write_text_atomic(path, format_markdown(results, baseline))
