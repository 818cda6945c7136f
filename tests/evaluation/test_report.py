"""``isbert eval``'s report as a user reads it: the terminal tables and the Markdown file word for word, and the
JSON and Markdown files on disk (tests/evaluation/test_report_columns.py recomputes each derived column)."""

from __future__ import annotations

import json
from pathlib import Path

from isbert.evaluation.report import PAPER_SOURCE, format_markdown, format_table, write_json, write_markdown

RESULTS = {
    "model": "mine",
    "STS12": {
        "spearman": 60.5,
        "all": 58.25,
        "mean": 60.5,
        "wmean": 61.0,
        "subsets": {"MSRpar": {"spearman": 40.0}, "SMTeuroparl": {"spearman": 81.0}},
    },
    "STSBenchmark": {"spearman": 70.0},
    "MR": {"accuracy": 75.125},
    "pairs": {"spearman": 12.5, "n": 3},
    "timing": {"distinct_sentences": 10, "encoded_sentences": 4, "encode_seconds": 2.4, "total_seconds": 9.6},
    "settings": {"tasks": ["STS12"], "data_dir": "/d", "pairs": "/x/my pairs.tsv", "batch_size": 8},
}
BASELINE = {"STS12": {"spearman": 61.0}, "STSBenchmark": {"spearman": float("nan")}, "pairs": {"spearman": 10.0}}
PAPER_STS_ROWS = """\
Avg. GloVe embeddings (paper)  55.14  70.66  59.73  68.25  63.66  58.02   53.76  61.32
Avg. BERT embeddings (paper)   38.78  57.98  57.98  63.15  61.06  46.35   58.40  54.81
BERT CLS (paper)               20.16  30.01  20.09  36.88  38.08  16.50   42.63  29.19
IS-BERT-NLI (paper)            56.77  69.24  61.21  75.23  70.16  69.21   64.25  66.58"""
PAPER_TRANSFER_ROWS = """\
Avg. GloVe embeddings (paper)  77.25  78.30  91.17  87.85  80.18  83.00  72.87  81.52
Avg. BERT embeddings (paper)   78.66  86.25  94.37  88.66  84.40  92.80  69.45  84.94
BERT CLS (paper)               78.68  84.85  94.21  88.23  84.13  91.40  71.13  84.66
IS-BERT-NLI (paper)            81.09  87.18  94.96  88.75  85.96  88.64  74.24  85.83"""


def test_the_terminal_report_word_for_word() -> None:
    """Names left-aligned, numbers right-aligned (the sub-datasets too are text, left); a NaN shows as nan; the
    baseline without a name is 'baseline'; the timing line rounds to seconds."""
    assert (
        format_table(RESULTS, BASELINE)
        == f"""\
STS (cosine Spearman x100)
Model                          STS12  STS13  STS14  STS15  STS16   STSb  SICK-R   Avg.
-----------------------------  -----  -----  -----  -----  -----  -----  ------  -----
{PAPER_STS_ROWS}
mine (this run)                60.50      -      -      -      -  70.00       -      -
baseline (--compare)           61.00      -      -      -      -    nan       -      -
delta                          -0.50      -      -      -      -   +nan       -      -

Transfer (accuracy x100)
Model                             MR     CR   SUBJ   MPQA    SST   TREC   MRPC   Avg.
-----------------------------  -----  -----  -----  -----  -----  -----  -----  -----
{PAPER_TRANSFER_ROWS}
mine (this run)                75.12      -      -      -      -      -      -      -
baseline (--compare)               -      -      -      -      -      -      -      -
delta                              -      -      -      -      -      -      -      -

Your pairs: my pairs.tsv, 3 pairs (cosine Spearman x100)
Model                 Spearman
--------------------  --------
mine (this run)          12.50
baseline (--compare)     10.00
delta                    +2.50

STS12-16 aggregations (Spearman x100)
Task     all   mean  wmean  sub-datasets
-----  -----  -----  -----  -------------------------------
STS12  58.25  60.50  61.00  MSRpar 40.00, SMTeuroparl 81.00

Rows marked (paper): {PAPER_SOURCE}.
10 distinct sentences (4 encoded, rest cached); encoding 2 s, total 10 s."""
    )


def test_the_markdown_report_word_for_word() -> None:
    assert (
        format_markdown(RESULTS, BASELINE)
        == f"""\
### Evaluation of `mine`

**STS (cosine Spearman x100)**

| Model | STS12 | STS13 | STS14 | STS15 | STS16 | STSb | SICK-R | Avg. |
|---|---|---|---|---|---|---|---|---|
| Avg. GloVe embeddings (paper) | 55.14 | 70.66 | 59.73 | 68.25 | 63.66 | 58.02 | 53.76 | 61.32 |
| Avg. BERT embeddings (paper) | 38.78 | 57.98 | 57.98 | 63.15 | 61.06 | 46.35 | 58.40 | 54.81 |
| BERT CLS (paper) | 20.16 | 30.01 | 20.09 | 36.88 | 38.08 | 16.50 | 42.63 | 29.19 |
| IS-BERT-NLI (paper) | 56.77 | 69.24 | 61.21 | 75.23 | 70.16 | 69.21 | 64.25 | 66.58 |
| mine (this run) | 60.50 | - | - | - | - | 70.00 | - | - |
| baseline (--compare) | 61.00 | - | - | - | - | nan | - | - |
| delta | -0.50 | - | - | - | - | +nan | - | - |

**Transfer (accuracy x100)**

| Model | MR | CR | SUBJ | MPQA | SST | TREC | MRPC | Avg. |
|---|---|---|---|---|---|---|---|---|
| Avg. GloVe embeddings (paper) | 77.25 | 78.30 | 91.17 | 87.85 | 80.18 | 83.00 | 72.87 | 81.52 |
| Avg. BERT embeddings (paper) | 78.66 | 86.25 | 94.37 | 88.66 | 84.40 | 92.80 | 69.45 | 84.94 |
| BERT CLS (paper) | 78.68 | 84.85 | 94.21 | 88.23 | 84.13 | 91.40 | 71.13 | 84.66 |
| IS-BERT-NLI (paper) | 81.09 | 87.18 | 94.96 | 88.75 | 85.96 | 88.64 | 74.24 | 85.83 |
| mine (this run) | 75.12 | - | - | - | - | - | - | - |
| baseline (--compare) | - | - | - | - | - | - | - | - |
| delta | - | - | - | - | - | - | - | - |

**Your pairs: my pairs.tsv, 3 pairs (cosine Spearman x100)**

| Model | Spearman |
|---|---|
| mine (this run) | 12.50 |
| baseline (--compare) | 10.00 |
| delta | +2.50 |

**STS12-16 aggregations (Spearman x100)**

| Task | all | mean | wmean | sub-datasets |
|---|---|---|---|---|
| STS12 | 58.25 | 60.50 | 61.00 | MSRpar 40.00, SMTeuroparl 81.00 |

Rows marked (paper): {PAPER_SOURCE}.

Settings: pairs=/x/my pairs.tsv, batch_size=8
"""
    )


def test_a_report_of_pairs_only_has_no_paper_rows_timing_or_settings() -> None:
    """Without a model name it is 'model'; with no STS or transfer task there is no line about the paper's rows."""
    pairs = {"pairs": {"spearman": 12.5, "n": 3}}
    assert format_table(pairs) == (
        "Your pairs: pairs, 3 pairs (cosine Spearman x100)\n"
        "Model             Spearman\n"
        "----------------  --------\n"
        "model (this run)     12.50\n"
    )
    assert format_markdown(pairs) == (
        "### Evaluation of `model`\n\n**Your pairs: pairs, 3 pairs (cosine Spearman x100)**\n\n"
        "| Model | Spearman |\n|---|---|\n| model (this run) | 12.50 |\n\n"
    )


def test_the_files_on_disk_are_the_json_indented_by_two_and_the_markdown_with_its_baseline(tmp_path: Path) -> None:
    write_json(RESULTS, tmp_path / "results.json")
    assert (tmp_path / "results.json").read_text(encoding="utf-8") == json.dumps(RESULTS, indent=2) + "\n"
    write_markdown(RESULTS, tmp_path / "results.md", BASELINE)
    assert (tmp_path / "results.md").read_text(encoding="utf-8") == format_markdown(RESULTS, BASELINE)
    assert "| delta |" in format_markdown(RESULTS, BASELINE)
