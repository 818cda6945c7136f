"""Streaming readers for text files: one text per line (.txt), JSON lines (.jsonl), CSV/TSV; any of them gzipped.

Every reader yields ``(line_number, text)`` so that errors and reports can point at the input, and decodes line by
line so that a bad byte is reported with its file and line instead of a UnicodeDecodeError from deep inside.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from isbert.errors import InputError, IsbertError

EncodingErrors = Literal["strict", "replace", "skip"]
FORMATS = ("txt", "jsonl", "csv", "tsv")
MAX_RECORD_BYTES = 1 << 24
"""The longest line (and CSV record, quoted line breaks included) any reader accepts: 16 MiB. A longer one is an
error naming file and line, found after reading at most this many bytes of it, so memory stays bounded whatever
the file (a gzip stream that decompresses to one endless line included)."""


def detect_format(path: str | os.PathLike[str]) -> str:
    """``txt``, ``jsonl``, ``csv`` or ``tsv`` from the file name (a trailing ``.gz`` is ignored)."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = Path(name).suffix.lstrip(".")
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    if suffix in ("csv", "tsv"):
        return suffix
    return "txt"


def _open_binary(path: Path) -> BinaryIO:
    if not path.exists():
        raise IsbertError(f"input file not found: {path}")
    if path.is_dir():
        raise IsbertError(f"expected a file, got a folder: {path}")
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


@dataclass
class ReadStats:
    """What a reader saw: counts of lines used and skipped, with the reasons."""

    lines: int = 0
    used: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def summary(self) -> str:
        skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(self.skipped.items()))
        return f"{self.used} used of {self.lines} lines" + (f" (skipped: {skipped})" if skipped else "")


def iter_lines(
    path: str | os.PathLike[str], encoding_errors: EncodingErrors = "strict", stats: ReadStats | None = None
) -> Iterator[tuple[int, str]]:
    """Decoded lines without their line ending (LF or CRLF), numbered from 1; a UTF-8 BOM is dropped."""
    path = Path(path)
    try:
        with _open_binary(path) as handle:
            yield from decoded_lines(path, handle, encoding_errors, stats)
    except (OSError, EOFError) as error:
        if isinstance(error, FileNotFoundError):
            raise IsbertError(f"input file not found: {path}") from None
        raise IsbertError(f"{path}: cannot read ({error})") from None


def decoded_lines(
    path: Path, handle: BinaryIO, encoding_errors: EncodingErrors = "strict", stats: ReadStats | None = None
) -> Iterator[tuple[int, str]]:
    """The lines of an open binary stream (a file, or standard input named ``path`` in messages), as
    :func:`iter_lines` yields them: capped, decoded, numbered from 1."""
    for number, raw in capped_lines(path, handle):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
            if not raw:  # a file holding only a BOM is empty, not one empty line
                break
        raw = raw[:-1] if raw.endswith(b"\n") else raw
        raw = raw[:-1] if raw.endswith(b"\r") else raw  # one CR of a CRLF; more belong to the text
        if b"\x00" in raw:  # valid UTF-8, but no text file has it: decoding would read a binary as text
            raise InputError(path, number, "a NUL byte: this is a binary file, not text")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            if encoding_errors == "strict":
                raise InputError(
                    path,
                    number,
                    f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1}); "
                    "fix the file or choose --encoding-errors replace|skip",
                ) from None
            if encoding_errors == "skip":
                if stats is not None:
                    stats.lines += 1
                    stats.skip("not valid UTF-8")
                continue
            text = raw.decode("utf-8", errors="replace")
        yield number, text


def capped_lines(path: Path, handle: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """Numbered raw lines, each read with at most :data:`MAX_RECORD_BYTES` + 2 bytes in memory."""
    cap, number = MAX_RECORD_BYTES, 0
    while raw := handle.readline(cap + 2):
        number += 1
        if len(raw.rstrip(b"\r\n")) > cap:
            raise InputError(path, number, f"a line longer than {cap} bytes; split it (no text needs that much)")
        yield number, raw


def iter_texts(
    path: str | os.PathLike[str],
    *,
    text_field: str = "text",
    column: str = "text",
    fmt: str | None = None,
    encoding_errors: EncodingErrors = "strict",
    skip_empty: bool = False,
    strip: bool = False,
    stats: ReadStats | None = None,
) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for every record of a text file, streaming.

    Args:
        path: the file; ``.gz`` is decompressed on the fly.
        text_field: the field holding the text in a ``.jsonl`` file.
        column: the column holding the text in a ``.csv``/``.tsv`` file (which must have a header row).
        fmt: force a format (``txt``, ``jsonl``, ``csv``, ``tsv``); by default from the file name.
        encoding_errors: on bytes that are not UTF-8, ``strict`` stops with file and line, ``replace`` puts
            U+FFFD in their place, ``skip`` drops the line (and counts it).
        skip_empty: drop texts that are empty (after ``strip``), counting them in ``stats``; when False they are
            yielded, so that output rows stay aligned with input lines.
        strip: strip surrounding white space.
        stats: filled with the counts of lines used and skipped.
    """
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise IsbertError(f"unknown input format {fmt!r}; choose one of {', '.join(FORMATS)}")
    stats = stats if stats is not None else ReadStats()
    lines = iter_lines(path, encoding_errors, stats)
    if fmt == "txt":
        records: Iterator[tuple[int, str]] = lines
    elif fmt == "jsonl":
        records = _jsonl_records(path, lines, text_field, stats)
    else:
        records = _table_records(path, lines, column, "\t" if fmt == "tsv" else ",")
    for number, text in records:
        stats.lines += 1
        if strip:
            text = text.strip()
        if skip_empty and not text:
            stats.skip("empty")
            continue
        stats.used += 1
        yield number, text


def _jsonl_records(
    path: str | os.PathLike[str], lines: Iterator[tuple[int, str]], text_field: str, stats: ReadStats
) -> Iterator[tuple[int, str]]:
    for number, line in lines:
        if not line.strip():
            stats.skip("blank JSON lines")
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(path, number, f"not valid JSON ({error.msg} at column {error.colno})") from None
        except RecursionError:
            raise InputError(path, number, "JSON nested too deeply to be a record") from None
        if not isinstance(record, dict):
            raise InputError(path, number, f"expected a JSON object, got {type(record).__name__}")
        if text_field not in record:
            fields = ", ".join(sorted(record)) or "none"
            raise InputError(path, number, f"no field {text_field!r} (fields: {fields}); choose it with --text-field")
        value = record[text_field]
        if not isinstance(value, str):
            raise InputError(path, number, f"field {text_field!r} is {type(value).__name__}, not a string")
        yield number, value


def allow_long_csv_fields() -> None:
    """Lift the csv module's 128 KiB field limit (process-wide, only ever raised): a long text is not an error."""
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)


_CSV_FIELD_LIMIT = 2**31 - 1  # the largest value every platform's C long accepts


def _table_records(
    path: str | os.PathLike[str], lines: Iterator[tuple[int, str]], column: str, delimiter: str
) -> Iterator[tuple[int, str]]:
    """Rows of a CSV/TSV file with a header: every row has the header's fields, a quote left open is an error at
    the line it opens (never a field that swallows the rest of the file), a record is capped like a line."""
    allow_long_csv_fields()  # the cap below is ours, in bytes per record, with the line it starts on
    # csv.reader pulls lines lazily; keep the number of the line it last consumed, and the record's size so far.
    current = {"line": 0, "size": 0, "start": 1}

    def feed() -> Iterator[str]:
        for number, line in lines:
            current["line"] = number
            current["size"] += len(line) + 1
            if current["size"] > MAX_RECORD_BYTES:
                raise InputError(
                    path, current["start"], f"a record longer than {MAX_RECORD_BYTES} characters (a quote opened here "
                    "that never closes?)",
                )  # fmt: skip
            yield line + "\n"

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as error:
        raise InputError(path, current["line"], f"malformed header ({error})") from None
    if column not in header:
        raise InputError(path, 1, f"no column {column!r} (columns: {', '.join(header)}); choose it with --column")
    index = header.index(column)
    while True:
        start = current["start"] = current["line"] + 1
        current["size"] = 0
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise InputError(path, start, f"malformed row ({error}); a stray quote in this record?") from None
        if not row:
            continue
        if len(row) != len(header):
            raise InputError(
                path, start, f"row has {len(row)} fields, the header {len(header)} (a stray quote or {delimiter!r}?)"
            )
        yield start, row[index]
