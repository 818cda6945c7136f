"""The run's JSONL log: one record per logged step, evaluation and event, flushed as written."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from isbert.atomic import open_append, write_text_atomic


class RunLog:
    """Append-only JSONL log of the run (main process only), flushed after every record.

    The log is never written through a link: a symlink or hard link planted at its name is a one-line error
    (:func:`isbert.atomic.open_append`), and a truncation rewrites it as a new file.
    """

    def __init__(self, path: str | os.PathLike[str], enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"time": round(time.time(), 3), **record}
        with open_append(self.path) as handle:
            handle.write((json.dumps(record, default=float) + "\n").encode("utf-8"))
            handle.flush()

    def truncate_after(self, step: int) -> None:
        """Drop records from after ``step`` (a resumed run writes them again)."""
        if not self.enabled or not self.path.is_file():
            return
        with open_append(self.path):  # refuses a planted link before anything of it is read
            pass
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("step", 0) <= step:
                kept.append(line)
        write_text_atomic(self.path, "".join(f"{line}\n" for line in kept))
