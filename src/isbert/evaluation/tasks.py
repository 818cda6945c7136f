"""The evaluation tasks: their names and groups, the files each reads, their known sizes, and where the data lives.

The layout is the one of ``shared/data`` (see its README): SentEval's file names, with the SentEval-processed
(tokenized) STS files under ``sts/STS1x`` and the original SemEval release under ``sts/raw/STS1x``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from isbert.errors import IsbertError

ENV_VAR = "ISBERT_DATA_DIR"
"""Environment variable naming the data folder; ``--data-dir`` overrides it."""

DEFAULT_DATA_DIR = Path("~/.cache/isbert/data")
"""Where the data is looked for when neither ``--data-dir`` nor ``ISBERT_DATA_DIR`` is given."""

TextVariant = Literal["senteval", "raw"]

STS_SUBSETS: dict[str, dict[str, int]] = {
    "STS12": {
        "MSRpar": 750,
        "MSRvid": 750,
        "SMTeuroparl": 459,
        "surprise.OnWN": 750,
        "surprise.SMTnews": 399,
    },
    "STS13": {"FNWN": 189, "headlines": 750, "OnWN": 561},
    "STS14": {
        "deft-forum": 450,
        "deft-news": 300,
        "headlines": 750,
        "images": 750,
        "OnWN": 750,
        "tweet-news": 750,
    },
    "STS15": {"answers-forums": 375, "answers-students": 750, "belief": 375, "headlines": 750, "images": 750},
    "STS16": {
        "answer-answer": 254,
        "headlines": 249,
        "plagiarism": 230,
        "postediting": 244,
        "question-question": 209,
    },
}
"""SemEval STS sub-datasets and their number of *scored* pairs (SentEval: 3108/1500/3750/3000/1186)."""

STS_TASKS = (*STS_SUBSETS, "STSBenchmark", "SICK-R")
TRANSFER_TASKS = ("MR", "CR", "SUBJ", "MPQA", "SST2", "TREC", "MRPC")
ALL_TASKS = STS_TASKS + TRANSFER_TASKS
GROUPS: dict[str, tuple[str, ...]] = {"sts": STS_TASKS, "transfer": TRANSFER_TASKS, "all": ALL_TASKS}
PAIRS_TASK = "pairs"
"""The results key of one's own scored pairs (``isbert eval --pairs FILE``), scored with the STS protocol."""
ALIASES = {"sst": "SST2", "sst-2": "SST2", "stsb": "STSBenchmark", "sts-b": "STSBenchmark", "sick": "SICK-R"}

EXPECTED_COUNTS: dict[str, int] = {
    "STSBenchmark": 1379,
    "SICK-R": 4927,
    "MR": 10662,
    "CR": 3775,
    "SUBJ": 10000,
    "MPQA": 10606,
    "SST2/train": 67349,
    "SST2/dev": 872,
    "SST2/test": 1821,
    "TREC/train": 5452,
    "TREC/test": 500,
    "MRPC/train": 4076,
    "MRPC/test": 1725,
}
"""Known sizes (pairs or sentences) of every evaluation split; a different count is an error."""

UNLABELED_FILE = "unlabeled/nli_sentences.snli_dev_test.txt"
"""Default unlabeled sentences for fitting the whitening baseline."""

GET_DATA_HINT = (
    f"get it with `isbert data download --data-dir DIR` (original public sources; see docs/evaluation.md), "
    f"then pass --data-dir DIR or set {ENV_VAR}"
)


# ----------------------------------------------------------------------------------------------------
# containers


@dataclass
class StsSubset:
    """The scored pairs of one STS sub-dataset (or of a whole single-file task such as STSb)."""

    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


@dataclass
class StsTask:
    name: str
    subsets: dict[str, StsSubset]
    files: list[Path] = field(default_factory=list)

    def sentences(self) -> Iterable[str]:
        for subset in self.subsets.values():
            yield from subset.sentences1
            yield from subset.sentences2


@dataclass
class LabeledSplit:
    """Sentences (or sentence pairs, for MRPC) with integer labels."""

    texts: list[str]
    labels: np.ndarray
    texts_b: list[str] | None = None

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class TransferTask:
    """A SentEval transfer task; ``protocol`` picks SentEval's classifier: ``cv`` (inner k-fold,
    MR/CR/SUBJ/MPQA), ``dev`` (train/dev/test split, SST-2) or ``kfold`` (train/test with k-fold C
    selection, TREC/MRPC)."""

    name: str
    protocol: Literal["cv", "dev", "kfold"]
    splits: dict[str, LabeledSplit]
    files: list[Path] = field(default_factory=list)

    def sentences(self) -> Iterable[str]:
        for split in self.splits.values():
            yield from split.texts
            if split.texts_b is not None:
                yield from split.texts_b


# ----------------------------------------------------------------------------------------------------
# locating the data


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """``data_dir``, else ``$ISBERT_DATA_DIR``, else the default folder; if missing, say how to get it."""
    if data_dir is not None and str(data_dir) != "":
        path, origin = Path(data_dir).expanduser(), "--data-dir"
    elif os.environ.get(ENV_VAR):
        path, origin = Path(os.environ[ENV_VAR]).expanduser(), ENV_VAR
    else:
        path, origin = DEFAULT_DATA_DIR.expanduser(), "the default location"
    if not path.is_dir():
        raise IsbertError(f"data directory not found: {path} (from {origin}); {GET_DATA_HINT}")
    return path


def canonical_task_names(spec: str | Iterable[str]) -> list[str]:
    """Expand comma-separated, case-insensitive task names and groups (``sts``, ``transfer``, ``all``)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    lookup = {name.lower(): name for name in ALL_TASKS} | ALIASES
    names: list[str] = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        key = item.lower()
        if key in GROUPS:
            found: tuple[str, ...] = GROUPS[key]
        elif key in lookup:
            found = (lookup[key],)
        else:
            valid = ", ".join([*GROUPS, *ALL_TASKS])
            raise IsbertError(f"unknown task '{item}'; valid tasks and groups (case-insensitive): {valid}")
        names.extend(name for name in found if name not in names)
    if not names:
        raise IsbertError("no task given; valid tasks and groups: " + ", ".join([*GROUPS, *ALL_TASKS]))
    return names


def task_files(task: str, text: TextVariant = "senteval") -> list[str]:
    """Files (relative to the data folder) that a task reads."""
    if task in STS_SUBSETS:
        base = f"sts/{task}" if text == "senteval" else f"sts/raw/{task}"
        return [f"{base}/STS.{kind}.{sub}.txt" for sub in STS_SUBSETS[task] for kind in ("input", "gs")]
    sub = "senteval/" if text == "senteval" else ""
    fixed = {
        "STSBenchmark": [f"sts/STSBenchmark/{sub}sts-test.csv"],
        "SICK-R": [f"sts/SICK/{sub}SICK_test_annotated.txt"],
        "MR": ["transfer/MR/rt-polarity.pos", "transfer/MR/rt-polarity.neg"],
        "CR": ["transfer/CR/custrev.pos", "transfer/CR/custrev.neg"],
        "SUBJ": ["transfer/SUBJ/subj.subjective", "transfer/SUBJ/subj.objective"],
        "MPQA": ["transfer/MPQA/mpqa.pos", "transfer/MPQA/mpqa.neg"],
        "SST2": [f"transfer/SST/binary/sentiment-{split}" for split in ("train", "dev", "test")],
        "TREC": ["transfer/TREC/train_5500.label", "transfer/TREC/TREC_10.label"],
        "MRPC": ["transfer/MRPC/msr_paraphrase_train.txt", "transfer/MRPC/msr_paraphrase_test.txt"],
    }
    if task not in fixed:
        raise IsbertError(f"unknown task '{task}'; valid tasks: {', '.join(ALL_TASKS)}")
    return fixed[task]
