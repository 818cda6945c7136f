"""isbert: unsupervised sentence embeddings by mutual-information maximization (IS-BERT, EMNLP 2020).

The public names are imported on first use (``isbert.build`` loads torch and sentence-transformers then), so that
``isbert --help`` and the command line's argument checks answer at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from isbert.errors import InputError, IsbertError
from isbert.version import __version__

if TYPE_CHECKING:
    from isbert.glove import GLOVE_ALIAS
    from isbert.losses import MutualInformationLoss, SimCSELoss, mutual_information_loss
    from isbert.model import OFFLINE_ALIAS, build, load, resolve_model_name, save
    from isbert.modules import MaskedCNN

_EXPORTS = {
    "GLOVE_ALIAS": "isbert.glove",
    "MutualInformationLoss": "isbert.losses",
    "SimCSELoss": "isbert.losses",
    "mutual_information_loss": "isbert.losses",
    "OFFLINE_ALIAS": "isbert.model",
    "build": "isbert.model",
    "load": "isbert.model",
    "resolve_model_name": "isbert.model",
    "save": "isbert.model",
    "MaskedCNN": "isbert.modules",
}

__all__ = [
    "GLOVE_ALIAS",
    "OFFLINE_ALIAS",
    "InputError",
    "IsbertError",
    "MaskedCNN",
    "MutualInformationLoss",
    "SimCSELoss",
    "__version__",
    "build",
    "load",
    "mutual_information_loss",
    "resolve_model_name",
    "save",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
