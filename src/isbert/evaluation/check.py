"""Checksums of the evaluation files and `isbert data check`.

The pinned sha256 of every file of the reference copy (shared/data) is package data: ``checksums.sha256``, in the
format of ``sha256sum``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from isbert.errors import IsbertError
from isbert.evaluation.readers import load_task
from isbert.evaluation.tasks import ALL_TASKS, STS_TASKS, StsTask, TextVariant, resolve_data_dir, task_files
from isbert.identity import sha256_file


def _known_sha256() -> dict[str, str]:
    text = resources.files("isbert.evaluation").joinpath("checksums.sha256").read_text(encoding="utf-8")
    return {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in text.splitlines() if line.strip()}


KNOWN_SHA256: dict[str, str] = _known_sha256()
"""sha256 of the evaluation files in the reference copy (shared/data), for `isbert data check`."""


def checksums(files: Iterable[Path], root: Path | None) -> dict[str, str]:
    """sha256 of each file, keyed by its path relative to the data folder if any (recorded in the JSON results)."""
    return {
        str(Path(f).relative_to(root)) if root and Path(f).is_relative_to(root) else str(f): sha256_file(f)
        for f in files
    }


@dataclass
class CheckLine:
    ok: bool
    message: str


def check_data(
    data_dir: str | os.PathLike[str] | None,
    tasks: Iterable[str] = ALL_TASKS,
    texts: Iterable[TextVariant] = ("senteval", "raw"),
) -> list[CheckLine]:
    """Verify layout, counts and checksums of every task's files; one line per task and text variant."""
    root = resolve_data_dir(data_dir)
    report: list[CheckLine] = []
    for task in tasks:
        variants: tuple[TextVariant, ...] = tuple(texts) if task in STS_TASKS else ("senteval",)
        for text in variants:
            label = f"{task} ({text})" if task in STS_TASKS else task
            missing = [rel for rel in task_files(task, text) if not (root / rel).is_file()]
            if missing:
                report.append(CheckLine(False, f"{label}: missing {', '.join(missing)}"))
                continue
            try:
                loaded = load_task(task, root, text)
            except IsbertError as error:
                report.append(CheckLine(False, f"{label}: {error}"))
                continue
            bad = [
                rel
                for rel in task_files(task, text)
                if rel in KNOWN_SHA256 and sha256_file(root / rel) != KNOWN_SHA256[rel]
            ]
            if isinstance(loaded, StsTask):
                size = f"{sum(len(s) for s in loaded.subsets.values())} pairs"
            else:
                size = " / ".join(f"{name} {len(split)}" for name, split in loaded.splits.items())
            if bad:
                report.append(CheckLine(False, f"{label}: counts ok ({size}) but checksum differs: {', '.join(bad)}"))
            else:
                report.append(CheckLine(True, f"{label}: ok, {size}, checksums match"))
    return report
