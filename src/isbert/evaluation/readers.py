"""Parsers of the evaluation files, and loading a whole task from the data folder.

Parsers follow SentEval's readers (so counts and fold order match its numbers) but fail loudly, with ``file:line``,
on anything malformed instead of silently skipping it.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from isbert.errors import InputError, IsbertError
from isbert.evaluation.tasks import (
    EXPECTED_COUNTS,
    GET_DATA_HINT,
    STS_SUBSETS,
    STS_TASKS,
    LabeledSplit,
    StsSubset,
    StsTask,
    TextVariant,
    TransferTask,
    task_files,
)
from isbert.io import allow_long_csv_fields, capped_lines

TREC_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
MAX_LABEL_DIGITS = 9
"""The longest integer label (SST's are one digit): a class index, not a number to compute with."""


# ----------------------------------------------------------------------------------------------------
# low-level readers


def read_lines(path: str | os.PathLike[str], encoding: str = "utf-8") -> list[str]:
    """Lines of a text file: a leading BOM and CR of CRLF endings removed, no final empty line.

    Splits on ``\\n`` only (not ``str.splitlines``), so stray form feeds inside a sentence cannot shift pairs.
    Streams the file a line at a time, each line capped (``io.capped_lines``: over 16 MiB is an error naming the
    line, found with at most that much of it in memory), and decodes each line alone: linear time.
    """
    path = Path(path)
    lines: list[str] = []
    terminated = False  # whether the last line read ended with its newline
    try:
        with path.open("rb") as handle:
            for number, raw in capped_lines(path, handle):
                lines.append(_decoded(path, number, raw, encoding))
                terminated = raw.endswith(b"\n")
    except FileNotFoundError:
        raise IsbertError(f"missing data file: {path}; {GET_DATA_HINT}") from None
    except OSError as error:  # a folder in its place, no permission, an I/O error
        raise IsbertError(f"{path}: cannot read ({error.strerror or error})") from None
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
        if len(lines) == 1 and not lines[0] and not terminated:  # only a BOM: empty, but BOM + newline is a line
            lines.pop()
    return lines


def _decoded(path: Path, number: int, raw: bytes, encoding: str) -> str:
    """One raw line without its ``\\n`` and the CR of a CRLF, decoded, or an error naming file, line and column."""
    raw = raw[:-1] if raw.endswith(b"\n") else raw
    raw = raw[:-1] if raw.endswith(b"\r") else raw
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise InputError(
            str(path), number, f"not valid {encoding}: byte 0x{raw[error.start]:02x} at column {error.start + 1}"
        ) from None


def _float(value: str, path: Path, line: int, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InputError(str(path), line, f"{what} is not a number: {value!r}") from None
    if not np.isfinite(number):
        raise InputError(str(path), line, f"{what} is not finite: {value!r}")
    return number


def check_count(path: Path | str, found: int, expected: int | None, what: str = "pairs") -> None:
    """Raise naming ``path`` when a file holds a different number of items than the known release."""
    if expected is not None and found != expected:
        raise IsbertError(f"{path}: found {found} {what}, expected {expected} (incomplete or different version?)")


# ----------------------------------------------------------------------------------------------------
# STS parsers


def read_sts_pairs(input_path: str | os.PathLike[str], gold_path: str | os.PathLike[str]) -> StsSubset:
    """SemEval STS input (``s1 TAB s2``, or 4 columns with the sources in raw STS16) + gold file (one score
    per line; an EMPTY line marks an unscored pair, which is dropped as SentEval does)."""
    input_path, gold_path = Path(input_path), Path(gold_path)
    inputs, golds = read_lines(input_path), read_lines(gold_path)
    if len(inputs) != len(golds):
        raise InputError(
            str(gold_path),
            None,
            f"{len(golds)} lines, but {input_path.name} has {len(inputs)}: pairs do not line up",
        )
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    for number, (pair, gold) in enumerate(zip(inputs, golds, strict=True), start=1):
        if not gold.strip():
            continue
        score = _float(gold.strip(), gold_path, number, "gold score")
        columns = pair.split("\t")
        if len(columns) not in (2, 4):
            raise InputError(str(input_path), number, f"expected 2 (or 4) tab-separated columns, found {len(columns)}")
        s1.append(columns[0])
        s2.append(columns[1])
        scores.append(score)
    return StsSubset(s1, s2, np.asarray(scores, dtype=np.float64))


def read_stsb(path: str | os.PathLike[str]) -> StsSubset:
    """STS Benchmark csv: TAB-separated, no quoting (sentences contain ``"``), 7 or 9 columns (two optional
    source columns at the end); score in column 5, sentences in columns 6 and 7."""
    path = Path(path)
    lines = read_lines(path)
    allow_long_csv_fields()
    s1, s2, scores = [], [], []
    for number, row in enumerate(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
        if len(row) not in (7, 9):
            raise InputError(str(path), number, f"expected 7 or 9 tab-separated columns, found {len(row)}")
        scores.append(_float(row[4], path, number, "score"))
        s1.append(row[5])
        s2.append(row[6])
    return StsSubset(s1, s2, np.asarray(scores, dtype=np.float64))


def read_sick(path: str | os.PathLike[str]) -> StsSubset:
    """SICK SemEval-2014 file: header, then ``pair_ID sentence_A sentence_B relatedness entailment`` (TAB)."""
    path = Path(path)
    lines = read_lines(path)
    if not lines or not lines[0].startswith("pair_ID"):
        raise InputError(str(path), 1, "expected the header line 'pair_ID<TAB>sentence_A<TAB>...'")
    s1, s2, scores = [], [], []
    for number, line in enumerate(lines[1:], start=2):
        row = line.split("\t")
        if len(row) != 5:
            raise InputError(str(path), number, f"expected 5 tab-separated columns, found {len(row)}")
        s1.append(row[1])
        s2.append(row[2])
        scores.append(_float(row[3], path, number, "relatedness score"))
    return StsSubset(s1, s2, np.asarray(scores, dtype=np.float64))


def read_labeled_pairs(path: str | os.PathLike[str]) -> StsTask:
    """A user's own scored pairs (``isbert eval --pairs``): ``text1 TAB text2 TAB score`` per line.

    Blank lines are skipped; a first line whose score column is not a number is a header. Scores may be on any
    scale (only their order counts for Spearman), but they must differ, and every text must be non-empty.
    """
    path = Path(path)
    if not path.is_file():
        raise IsbertError(f"{path}: no such file (--pairs takes a file of 'text1<TAB>text2<TAB>score' lines)")
    s1, s2, scores = [], [], []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        row = line.split("\t")
        if len(row) != 3:
            raise InputError(
                str(path), number, f"expected 3 tab-separated columns (text1, text2, score), not {len(row)}"
            )
        if number == 1 and not _is_number(row[2]):
            continue  # a header such as sentence1<TAB>sentence2<TAB>score
        if not row[0].strip() or not row[1].strip():
            raise InputError(str(path), number, "empty text")
        scores.append(_float(row[2].strip(), path, number, "score"))
        s1.append(row[0])
        s2.append(row[1])
    if len(set(scores)) < 2:
        raise InputError(str(path), None, f"{len(scores)} scored pairs; a correlation needs two different scores")
    return StsTask(path.name, {path.name: StsSubset(s1, s2, np.asarray(scores, dtype=np.float64))}, [path])


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------------------------------
# transfer parsers (SentEval's readers; whitespace-normalised texts, an empty line becomes ".")


def _norm(text: str) -> str:
    return " ".join(text.split()) or "."


def read_binary(pos_path: str | os.PathLike[str], neg_path: str | os.PathLike[str]) -> LabeledSplit:
    """MR/CR/SUBJ/MPQA: one sentence per line in a positive and a negative file (pos first, as SentEval)."""
    pos, neg = read_lines(pos_path), read_lines(neg_path)
    return _sentevals_order(pos + neg, [1] * len(pos) + [0] * len(neg))


def _sentevals_order(texts: list[str], labels: list[int]) -> LabeledSplit:
    """Sort by (token count, label), stably, as SentEval does before encoding: its folds follow that order."""
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i].split()), labels[i]))
    return LabeledSplit([_norm(texts[i]) for i in order], np.asarray([labels[i] for i in order], dtype=np.int64))


def read_sst(path: str | os.PathLike[str]) -> LabeledSplit:
    """SST (SIF release): ``sentence TAB label`` per line."""
    path = Path(path)
    texts, labels = [], []
    for number, line in enumerate(read_lines(path), start=1):
        row = line.strip().split("\t")
        digits = row[1].strip().removeprefix("-") if len(row) == 2 else ""
        # not str.isdigit alone: it accepts '²', which int() refuses; and a few digits only: int() refuses (or, under
        # a raised limit, converts in quadratic time) a label of thousands
        if not (digits.isascii() and digits.isdigit() and len(digits) <= MAX_LABEL_DIGITS):
            raise InputError(str(path), number, "expected 'sentence<TAB>integer label'")
        texts.append(row[0])
        labels.append(int(row[1]))
    return _sentevals_order(texts, labels)


def read_trec(path: str | os.PathLike[str]) -> LabeledSplit:
    """TREC question classification (Latin-1): ``COARSE:fine question``; labels: the 6 coarse classes."""
    path = Path(path)
    texts, labels = [], []
    for number, line in enumerate(read_lines(path, encoding="latin-1"), start=1):
        target, sep, rest = line.strip().partition(":")
        parts = rest.split(" ", 1)
        if not sep or target not in TREC_CLASSES or len(parts) != 2:
            raise InputError(
                str(path), number, f"expected 'CLASS:fine question' with CLASS in {', '.join(TREC_CLASSES)}"
            )
        texts.append(parts[1])
        labels.append(TREC_CLASSES.index(target))
    return _sentevals_order(texts, labels)


def read_mrpc(path: str | os.PathLike[str]) -> LabeledSplit:
    """MRPC: UTF-8 with BOM, header line, then ``Quality  #1 ID  #2 ID  #1 String  #2 String``."""
    path = Path(path)
    lines = read_lines(path)
    if not lines or not lines[0].startswith("Quality"):
        raise InputError(str(path), 1, "expected the header line 'Quality<TAB>#1 ID<TAB>...'")
    rows: list[tuple[str, str, int]] = []
    for number, line in enumerate(lines[1:], start=2):
        row = line.strip("\r\n").split("\t")
        if len(row) != 5 or row[0] not in ("0", "1"):
            raise InputError(str(path), number, f"expected 5 tab-separated columns with label 0/1, found {len(row)}")
        rows.append((_norm(row[3]), _norm(row[4]), int(row[0])))
    rows.sort(key=lambda r: (len(r[0].split()), len(r[1].split()), r[2]))
    return LabeledSplit(
        [r[0] for r in rows], np.asarray([r[2] for r in rows], dtype=np.int64), texts_b=[r[1] for r in rows]
    )


# ----------------------------------------------------------------------------------------------------
# task loading


def load_task(task: str, data_dir: str | os.PathLike[str], text: TextVariant = "senteval") -> StsTask | TransferTask:
    """Parse one task from the data folder and check its size against the known release."""
    root = Path(data_dir)
    files = [root / rel for rel in task_files(task, text)]
    if task in STS_SUBSETS:
        subsets: dict[str, StsSubset] = {}
        for (name, expected), i in zip(STS_SUBSETS[task].items(), range(0, len(files), 2), strict=True):
            subset = read_sts_pairs(files[i], files[i + 1])
            check_count(files[i + 1], len(subset), expected, "scored pairs")
            subsets[name] = subset
        return StsTask(task, subsets, files)
    if task in ("STSBenchmark", "SICK-R"):
        reader = read_stsb if task == "STSBenchmark" else read_sick
        subset = reader(files[0])
        check_count(files[0], len(subset), EXPECTED_COUNTS[task])
        return StsTask(task, {task: subset}, files)
    if task in ("MR", "CR", "SUBJ", "MPQA"):
        split = read_binary(files[0], files[1])
        check_count(f"{files[0]} + {files[1].name}", len(split), EXPECTED_COUNTS[task], "sentences")
        return TransferTask(task, "cv", {"all": split}, files)
    names = ("train", "dev", "test") if task == "SST2" else ("train", "test")
    reader_fn: Callable[[Path], LabeledSplit] = {"SST2": read_sst, "TREC": read_trec, "MRPC": read_mrpc}[task]
    splits = {}
    for name, path in zip(names, files, strict=True):
        splits[name] = reader_fn(path)
        check_count(path, len(splits[name]), EXPECTED_COUNTS[f"{task}/{name}"], "examples")
    return TransferTask(task, "dev" if task == "SST2" else "kfold", splits, files)


TASK_CORPORA = {
    "stsb-train": ("sts/STSBenchmark/senteval/sts-train.csv", read_stsb),
    "sick-train": ("sts/SICK/senteval/SICK_train.txt", read_sick),
}
"""Unlabeled in-domain corpora: the sentences of a task's *training* split (the test split stays unseen)."""
TARGET_CORPUS = "sts-test"
"""The "target" setting of BERT-flow and others: the sentences of the 7 STS test sets themselves, scores never read."""


def task_corpus_sentences(name: str, data_dir: str | os.PathLike[str]) -> list[str]:
    """The distinct sentences of a task's training split, in order of first appearance, scores dropped.

    In the same (SentEval) text form as the evaluation files, so that in-domain training sees what the test sees.
    """
    if name == TARGET_CORPUS:
        return list(dict.fromkeys(text for task in STS_TASKS for text in load_task(task, data_dir).sentences()))
    if name not in TASK_CORPORA:
        raise IsbertError(f"unknown task corpus '{name}'; valid: {', '.join([*TASK_CORPORA, TARGET_CORPUS])}")
    relative, reader = TASK_CORPORA[name]
    path = Path(data_dir) / relative
    if not path.is_file():
        raise IsbertError(f"{path}: not found (task corpus '{name}'). {GET_DATA_HINT}")
    pairs = reader(path)
    return list(dict.fromkeys(text for pair in zip(pairs.sentences1, pairs.sentences2, strict=True) for text in pair))
