"""User-facing errors: the CLI prints these as one line, without a traceback."""

from __future__ import annotations


class IsbertError(Exception):
    """An error caused by the user's input (a file, a flag, a model name), with a message that says how to fix it."""


class InputError(IsbertError):
    """A problem in an input file, located by file and line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {printable(message)}")


def printable(text: str) -> str:
    """Escape control characters (a column name may hold a newline), so that an error stays on one line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
