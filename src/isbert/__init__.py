"""isbert: unsupervised sentence embeddings by mutual-information maximization (IS-BERT, EMNLP 2020)."""

from isbert.errors import InputError, IsbertError
from isbert.glove import GLOVE_ALIAS
from isbert.losses import MutualInformationLoss, SimCSELoss, mutual_information_loss
from isbert.model import OFFLINE_ALIAS, build, load, resolve_model_name, save
from isbert.modules import MaskedCNN

__version__ = "0.1.0"

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
