"""A stand-in for tqdm that records how each progress bar was made and how far it was moved."""

from __future__ import annotations


class RecordingBar:
    """Use with ``monkeypatch.setattr(module, "tqdm", RecordingBar)``; reset ``made`` first. Each bar's keyword
    arguments land in ``made``, with its updates under ``"updates"``."""

    made: list[dict] = []

    def __init__(self, **settings: object) -> None:
        self.settings = settings | {"updates": []}
        RecordingBar.made.append(self.settings)

    def __enter__(self) -> RecordingBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        self.settings["updates"].append(n)
