"""`isbert data download --unlabeled nli`: the paper's training corpus, built from SNLI 1.0 and MultiNLI 1.0.

The paper trains on the sentences of SNLI + MultiNLI train without their labels. The released script
(``examples/training/nli/unsupervised_training_nli.py``) reads ``nli_sentences.train.gz`` one sentence per line and
keeps every line; the file itself is not in any snapshot we could read (docs/paper.md says what is and is not
known). This module rebuilds it from the original archives: every ``sentence1`` and ``sentence2`` of every pair of
SNLI train and MultiNLI train (labels, including the unlabeled ``-``, ignored), whitespace runs made one space,
empty ones dropped, each distinct sentence once, in first-occurrence order (SNLI first).

The archives get the hardening of the evaluation download (:mod:`isbert.evaluation.download`): capped download,
pinned sha256 (``unlabeled_sources.json``, the one place they are declared, with where they were published), every
member checked before any is read, decompressed bytes counted. The JSONL members are read, never extracted: the
disk holds one archive at a time (at most 227 MB) and the corpus file, written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from isbert.atomic import atomic_open
from isbert.errors import InputError, IsbertError, printable
from isbert.evaluation.download import MB, DownloadFailed, Limits, Source, downloaded, load_sources, member_lines
from isbert.identity import sha256_file

NLI_CORPUS = "unlabeled/nli_sentences.snli_mnli_train.txt"
"""Where the corpus is written, relative to the data folder (experiments/paper.toml trains on it)."""
MIRROR_ENV = "ISBERT_UNLABELED_MIRROR"
"""A base URL holding ``snli_1.0.zip`` and ``multinli_1.0.zip`` (``file:///folder`` works): used instead of the
original locations, with the same pinned checksums."""

# The published archives are 94.6 and 226.9 MB. Their uncompressed sizes are not published; the MultiNLI archive
# holds train and dev splits twice (.jsonl and .txt) with parse trees, about 1 GB by the usual ratio of such text,
# so 4 GB of declared members leaves room and still stops a bomb.
DEFAULT_MAX_DOWNLOAD_MB = 400
DEFAULT_MAX_EXTRACT_MB = 4096


def _original_sources() -> list[Source]:
    with resources.as_file(resources.files("isbert.evaluation").joinpath("unlabeled_sources.json")) as path:
        return load_sources(path)


def nli_sources(mirror: str | None = None) -> list[Source]:
    """The pinned SNLI and MultiNLI sources; ``mirror`` (else ``$ISBERT_UNLABELED_MIRROR``) replaces the base URL."""
    sources = _original_sources()
    base = mirror or os.environ.get(MIRROR_ENV)
    if not base:
        return sources
    return [replace(s, url=f"{base.rstrip('/')}/{s.url.rsplit('/', 1)[1]}") for s in sources]


@dataclass
class NliCorpus:
    """What was written: the file, its distinct sentences, all sentences read, and the pairs read per member."""

    path: Path
    sentences: int
    read: int
    pairs: dict[str, int] = field(default_factory=dict)
    sha256: str = ""

    def summary(self) -> str:
        parts = "; ".join(f"{name}: {count} pairs" for name, count in self.pairs.items())
        return (
            f"{self.sentences} distinct sentences (of {self.read} read from {sum(self.pairs.values())} pairs: "
            f"{parts}) -> {self.path} (sha256 {self.sha256})"
        )


def build_nli_corpus(
    data_dir: str | os.PathLike[str],
    sources: list[Source] | None = None,
    limits: Limits | None = None,
    log: Callable[[str], None] = print,
) -> NliCorpus:
    """Download the sources (default :func:`nli_sources`) and write :data:`NLI_CORPUS` in ``data_dir``; nothing is
    written unless every source passes. Every failure is one ``IsbertError`` line."""
    sources = nli_sources() if sources is None else sources
    limits = limits or Limits(DEFAULT_MAX_DOWNLOAD_MB * MB, DEFAULT_MAX_EXTRACT_MB * MB)
    root = Path(data_dir).expanduser()
    target = root / NLI_CORPUS
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise IsbertError(f"could not create {target.parent}: {printable(str(error))}") from None
    corpus = NliCorpus(target, 0, 0)
    seen: set[str] = set()
    try:
        with atomic_open(target, "w", encoding="utf-8", newline="\n") as out:
            for source in sources:
                log(f"downloading {source.name}: {source.url}")
                for member, sentences in _sentences(source, root, limits, corpus):
                    for sentence in sentences:
                        corpus.read += 1
                        if sentence not in seen:
                            seen.add(sentence)
                            out.write(sentence + "\n")
                    log(f"  {member}: {corpus.pairs[member]} pairs, {len(seen)} distinct sentences so far")
    except OSError as error:
        raise IsbertError(f"could not write {target}: {printable(str(error))}") from None
    corpus.sentences = len(seen)
    corpus.sha256 = sha256_file(target)
    return corpus


def _sentences(source: Source, root: Path, limits: Limits, corpus: NliCorpus) -> Iterator[tuple[str, Iterator[str]]]:
    """``(member label, its sentences)`` per mapped member; counts the member's pairs into ``corpus.pairs``."""
    try:
        with downloaded(source, root, limits) as blob:
            for member, lines in member_lines(Path(blob.name), source, root, limits):
                label = f"{source.name} {member}"
                corpus.pairs[label] = 0
                yield label, _pair_sentences(lines, label, corpus)
    except DownloadFailed as error:
        raise IsbertError(f"{error.reason}; {_by_hand()}") from None


def _pair_sentences(lines: Iterator[tuple[int, bytes]], label: str, corpus: NliCorpus) -> Iterator[str]:
    for number, line in lines:
        if not line.strip():
            continue
        try:
            pair = json.loads(line)
            texts = (pair["sentence1"], pair["sentence2"])
        except (ValueError, TypeError, KeyError, RecursionError):
            raise InputError(label, number, "not a JSON object with sentence1 and sentence2") from None
        if not all(isinstance(text, str) for text in texts):
            raise InputError(label, number, "sentence1 and sentence2 must be strings")
        corpus.pairs[label] += 1
        for text in texts:
            if sentence := " ".join(text.split()):
                yield sentence


def _by_hand() -> str:
    """What to do without a network: the original files to fetch elsewhere and where to put them."""
    files = " and ".join(f"{s.url} (sha256 {s.sha256})" for s in _original_sources())
    return (
        f"without a network here, download {files} elsewhere, put them in one folder FOLDER on this machine and run "
        "isbert data download --unlabeled nli --data-dir DIR --mirror file:///FOLDER"
    )


def corpus_hint(path: str | os.PathLike[str]) -> str:
    """For a missing corpus file: how to make it, when it is one this module builds ('' otherwise)."""
    if Path(path).as_posix().endswith(NLI_CORPUS):
        data = Path(path).parents[1]
        return f"; make it with: isbert data download --unlabeled nli --data-dir {data}"
    return ""
