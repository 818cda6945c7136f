"""Long texts split into overlapping pieces of at most N tokens before an index embeds them.

A model reads at most ``max_seq_length`` tokens and silently drops the rest, so a long paragraph is found only by
its beginning. With ``--chunk-tokens N --overlap M`` every text longer than N tokens (by the model's own tokenizer)
is indexed as windows of N tokens, each starting N - M tokens after the previous one; a window is the exact
substring of the text between its first and last token (never a decoded approximation). Each piece keeps its
text's ``file:line`` and its number (``file:line#2`` inside the index), hits report both, and a file's pieces go
together when it is deleted, replaced or synced.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from isbert.cli_types import MAX_SEQ_LENGTH
from isbert.errors import IsbertError

MAX_CHUNK_TOKENS = MAX_SEQ_LENGTH
"""The longest window (and overlap): the largest model maximum length isbert accepts."""
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Chunking:
    """How an index splits long texts: windows of ``tokens`` tokens overlapping by ``overlap`` (``tokens`` 0: off)."""

    tokens: int = 0
    overlap: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.tokens <= MAX_CHUNK_TOKENS:
            raise IsbertError(f"--chunk-tokens must be from 0 (off) to {MAX_CHUNK_TOKENS}, got {self.tokens}")
        if self.overlap < 0 or (self.tokens and self.overlap >= self.tokens) or (not self.tokens and self.overlap):
            raise IsbertError(f"--overlap must be below --chunk-tokens ({self.tokens}), got {self.overlap}")

    @classmethod
    def of(cls, meta: dict[str, Any]) -> Chunking:
        """The chunking an index folder records (none for folders written before it existed)."""
        stored = meta.get("chunking") or {}
        tokens, overlap = stored.get("tokens", 0), stored.get("overlap", 0)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (tokens, overlap)):
            raise IsbertError("damaged settings (chunking); rebuild the index")
        return cls(tokens, overlap)

    def as_meta(self) -> dict[str, int]:
        return {"tokens": self.tokens, "overlap": self.overlap}

    def pieces(self, tokenizer: Any, source: str, text: str) -> Iterator[tuple[str, str]]:
        """``(source, text)`` itself when off; else ``(source#k, piece k)`` for k = 0, 1, ..."""
        if not self.tokens:
            yield source, text
            return
        spans = token_spans(tokenizer, text)
        step = self.tokens - self.overlap
        starts = range(0, max(len(spans) - self.overlap, 1), step) if len(spans) > self.tokens else [0]
        for number, first in enumerate(starts):
            window = spans[first : first + self.tokens]
            yield f"{source}#{number}", text[window[0][0] : window[-1][1]] if window else text


def token_spans(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    """The character span of each token of ``text`` (no special tokens): the model's fast tokenizer's offsets, or
    whitespace-separated words where the model has none."""
    if tokenizer is not None and getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(text, add_special_tokens=False, truncation=False, return_offsets_mapping=True)
        return [(int(a), int(b)) for a, b in encoded["offset_mapping"] if b > a]
    return [match.span() for match in _WORD.finditer(text)]
