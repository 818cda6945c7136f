"""Fail (never hang the suite) when the code under test blocks: on a FIFO planted where a file is expected, or on
work a hostile input makes huge."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

PATIENCE_SECONDS = 30.0
"""Far beyond what the calls under test take, even on a loaded machine: only a blocked call takes this long."""


def planted_fifo(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def returns_without_waiting(
    call: Callable[[], Any], fifo: Path | None = None, seconds: float = PATIENCE_SECONDS
) -> Any:
    """``call()``'s value (or its exception), run in a daemon thread; an AssertionError when it has not returned
    within ``seconds``. A call blocked opening ``fifo`` is then released (the other end opened and closed)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    blocked = thread.is_alive()
    if blocked and fifo is not None:
        for flags in (os.O_WRONLY | os.O_NONBLOCK, os.O_RDONLY | os.O_NONBLOCK):
            try:
                os.close(os.open(fifo, flags))
            except OSError:  # ENXIO: no one waiting at that end
                continue
    assert not blocked, f"did not return within {seconds:g} s" + (f" (blocked on the FIFO {fifo}?)" if fifo else "")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
