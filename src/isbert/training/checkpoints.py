"""Crash-safe checkpoint folders: written under a temporary name, then published by :func:`isbert.atomic.publish_dir`.

A folder is a checkpoint only when it is named ``checkpoint-STEP`` and holds the marker file; a run killed while
saving leaves a ``.partial-*`` folder that nothing ever picks up (it is removed at the next save or start).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from isbert.errors import IsbertError

MARKER = "isbert_checkpoint.json"
"""Written last into a complete checkpoint (it also holds the model-selection history at that step)."""

_CHECKPOINT_RE = re.compile(r"checkpoint-([0-9]+)")  # fullmatch: no final newline, ASCII digits only
PARTIAL_PREFIX = ".partial-"


def list_checkpoints(folder: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``folder`` as ``(step, path)``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        match = _CHECKPOINT_RE.fullmatch(child.name)
        if child.is_symlink():  # a checkpoint is a folder the run wrote; a link may lead anywhere
            continue
        if match and child.is_dir() and (child / MARKER).is_file() and (child / "trainer_state.json").is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def read_marker(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's marker, checked: its step is the folder's, its selection state a JSON object or null."""
    path = checkpoint / MARKER
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise IsbertError(f"{path}: damaged checkpoint marker ({error}); remove {checkpoint} to resume") from None
    match = _CHECKPOINT_RE.fullmatch(checkpoint.name)
    valid = (
        isinstance(marker, dict)
        and match is not None
        and marker.get("step") == int(match.group(1))
        and isinstance(marker.get("selection"), (dict, type(None)))
    )
    if not valid:
        raise IsbertError(f"{path}: damaged checkpoint marker; remove {checkpoint} to resume from an earlier one")
    return marker


def latest_checkpoint(folder: str | os.PathLike[str]) -> Path | None:
    checkpoints = list_checkpoints(folder)
    return checkpoints[-1][1] if checkpoints else None


def remove_partials(folder: str | os.PathLike[str]) -> None:
    """Remove what an interrupted save left behind."""
    folder = Path(folder)
    if folder.is_dir():
        for child in folder.iterdir():
            if child.name.startswith(PARTIAL_PREFIX):
                shutil.rmtree(child, ignore_errors=True)


def rotate(folder: str | os.PathLike[str], keep_last: int) -> None:
    """Keep the ``keep_last`` newest complete checkpoints (the best model lives in its own folder)."""
    checkpoints = list_checkpoints(folder)
    for _step, path in checkpoints[: max(0, len(checkpoints) - keep_last)]:
        shutil.rmtree(path, ignore_errors=True)
