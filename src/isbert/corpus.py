"""Reading an unlabeled corpus: the stripped, non-empty sentences of its files, and what reading them used and
skipped, per file. Training and the training-free baselines (:mod:`isbert.sif_model`) read a corpus the same way."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from isbert.io import EncodingErrors, ReadStats, iter_texts


@dataclass
class CorpusStats:
    """What reading the corpus did: per-file and total lines used, skipped and why."""

    files: list[dict[str, Any]] = field(default_factory=list)
    lines: int = 0
    used: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    heldout: int = 0
    word_coverage: dict[str, Any] | None = None
    """Out-of-vocabulary words for a word-vector backbone (:class:`isbert.glove.WordCoverage`), else None."""

    def add_file(self, path: str, stats: ReadStats, duplicates: int) -> None:
        skipped = dict(stats.skipped)
        if duplicates:
            skipped["duplicate"] = duplicates
        used = stats.used - duplicates
        self.files.append({"path": path, "lines": stats.lines, "used": used, "skipped": skipped})
        self.lines += stats.lines
        self.used += used
        for reason, count in skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + count

    def summary(self) -> str:
        skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(self.skipped.items()))
        text = f"corpus: {self.used} sentences used of {self.lines} lines"
        text += f" (skipped: {skipped})" if skipped else " (none skipped)"
        if self.heldout:
            text += f"; {self.heldout} held out for the label-free criterion, {self.used - self.heldout} for training"
        if self.word_coverage:
            text += "\n" + self.word_coverage["summary"]
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def iter_corpus(
    paths: Sequence[str | os.PathLike[str]],
    stats: CorpusStats,
    *,
    text_field: str = "text",
    column: str = "text",
    encoding_errors: EncodingErrors = "strict",
    dedup: bool = False,
) -> Iterator[str]:
    """Stripped, non-empty sentences of every file in order; optionally only the first occurrence of each.

    De-duplication keeps an 8-byte hash of every distinct sentence in a set: memory grows with the number of
    distinct sentences (about 100 bytes each in CPython), not with their length.
    """
    seen: set[bytes] = set()
    for path in paths:
        read = ReadStats()
        duplicates = 0
        for _, text in iter_texts(
            path,
            text_field=text_field,
            column=column,
            encoding_errors=encoding_errors,
            skip_empty=True,
            strip=True,
            stats=read,
        ):
            if dedup:
                key = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
                if key in seen:
                    duplicates += 1
                    continue
                seen.add(key)
            yield text
        stats.add_file(str(path), read, duplicates)
