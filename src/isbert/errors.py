"""User-facing errors: the CLI prints these as one line, without a traceback."""

from __future__ import annotations

import os
from collections.abc import Iterable


class IsbertError(Exception):
    """An error caused by the user's input (a file, a flag, a model name), with a message that says how to fix it."""


class InputError(IsbertError):
    """A problem in an input file, located by file and line."""

    def __init__(self, path: str | os.PathLike[str], line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {printable(message)}")


def printable(text: str) -> str:
    """Escape control characters (a column name may hold a newline), so that an error stays on one line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


MAX_ERROR_LINE = 2_000
"""The most characters of an error line the command line prints: a message quoting a hostile input stays readable."""


def error_line(message: str) -> str:
    """``message`` as the one line the command line prints: control characters escaped, at most
    :data:`MAX_ERROR_LINE` characters (the cut says how much was left out)."""
    line = printable(message)
    if len(line) <= MAX_ERROR_LINE:
        return line
    return f"{line[:MAX_ERROR_LINE]} ... ({len(line) - MAX_ERROR_LINE} more characters)"


def brief(text: str, width: int = 60) -> str:
    """``text`` (a name or value from an input) cut to ``width`` characters and made printable, for a message."""
    return printable(text if len(text) <= width else text[: width - 3] + "...")


def some_names(names: Iterable[str], shown: int = 8, width: int = 40) -> str:
    """``names`` for an error message, bounded whatever the input held: the first ``shown``, each :func:`brief`,
    then how many more (a hostile file can name a million keys)."""
    names = list(names)
    listed = ", ".join(brief(name, width) for name in names[:shown])
    return listed + (f" and {len(names) - shown} more" if len(names) > shown else "")


def is_rust_panic(error: BaseException) -> bool:
    """A panic inside a Rust extension (the tokenizers): pyo3 raises ``pyo3_runtime.PanicException``, a
    ``BaseException`` that ``except Exception`` does not catch."""
    kind = type(error)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"


def contained(error: BaseException) -> bool:
    """An error one input caused, to be answered for that input only: any ``Exception``, or a Rust panic; never an
    interrupt, ``SystemExit`` or ``GeneratorExit``."""
    return isinstance(error, Exception) or is_rust_panic(error)


FROM_DEEP_INSIDE = (RecursionError, MemoryError, OverflowError)
"""What a hostile file raises from inside a parser or library (nesting, a huge size, a number out of range)."""


def deep_error_line(error: BaseException) -> str:
    """One line for an error from deep inside a library that hostile input caused (see :data:`FROM_DEEP_INSIDE`)."""
    what = "a panic in a native library" if is_rust_panic(error) else type(error).__name__
    detail = printable((str(error).strip().splitlines() or [""])[0][:200])
    return f"{what}{f' ({detail})' if detail else ''}: an input, configuration or model file is damaged or hostile"
