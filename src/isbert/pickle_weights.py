"""Weights stored as Python pickles (``pytorch_model.bin``, ``*.pt``): refused on load, converted once on request.

Unpickling can run code, so isbert loads weights only from safetensors files. A folder whose weights exist only as
a pickle is refused in one line that names the file and ``isbert convert-weights``; that command reads the pickle
with ``torch.load(weights_only=True)`` (plain tensors only: a pickle that asks for anything else, such as a
function call, is refused without running it) and writes ``model.safetensors`` beside it.
"""

from __future__ import annotations

import os
import pickle  # nosec B403 # for UnpicklingError only; pickles are read with weights_only=True
from pathlib import Path

import torch
from safetensors.torch import save

from isbert.atomic import write_bytes_atomic
from isbert.errors import IsbertError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
CONVERTED_NAME = "model.safetensors"


def pickle_only_weights(folder: str | os.PathLike[str]) -> list[Path]:
    """Pickle files in ``folder`` or one of its module folders that have no safetensors file beside them."""
    root = Path(folder)
    directories = [root, *sorted(child for child in root.iterdir() if child.is_dir() and not child.is_symlink())]
    found: list[Path] = []
    for directory in directories:
        pickles = sorted(f for f in directory.iterdir() if f.suffix in PICKLE_SUFFIXES and f.is_file())
        if pickles and not any(directory.glob("*.safetensors")):
            found.extend(pickles)
    return found


def refuse_pickle_weights(folder: str | os.PathLike[str]) -> None:
    """A one-line error naming the first pickle-only weights file and the conversion command."""
    pickles = pickle_only_weights(folder)
    if pickles:
        raise IsbertError(
            f"{pickles[0]}: weights stored as a pickle are not loaded (unpickling can run code); convert them once "
            f"with `isbert convert-weights {folder}`, which reads plain tensors only and writes safetensors"
        )


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, TypeError) as error:
        # torch's message ends by advising weights_only=False, which would run the pickle's code: never pass it on.
        kind = "holds objects other than tensors" if isinstance(error, pickle.UnpicklingError) else "is not readable"
        raise IsbertError(
            f"{path}: refused, the pickle {kind} ({type(error).__name__}); nothing was converted"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise IsbertError(f"{path}: not a dictionary of named tensors; nothing was converted")
    # safetensors refuses tensors that share memory (tied weights): store each one on its own.
    return {key: value.detach().contiguous().clone() for key, value in state.items()}


def convert_pickle_weights(folder: str | os.PathLike[str]) -> list[Path]:
    """Write ``model.safetensors`` beside each pickle-only weights file of ``folder``; returns the files written.

    Every pickle is read and checked before anything is written, so a refused file leaves the folder unchanged.
    """
    from isbert.model_folder import check_model_folder

    check_model_folder(folder)  # a FIFO at a pickle's name is never opened
    pickles = pickle_only_weights(folder)
    if not pickles:
        raise IsbertError(f"{folder}: no pickle-only weights to convert (safetensors files are already there)")
    by_directory: dict[Path, Path] = {}
    for path in pickles:
        if path.parent in by_directory:
            raise IsbertError(
                f"{path.parent}: several pickle files ({by_directory[path.parent].name}, {path.name}); sharded "
                "pickles are not converted here: save the model with transformers' save_pretrained instead"
            )
        by_directory[path.parent] = path
    tensors = {path: _read_tensors(path) for path in pickles}
    written = []
    for path, state in tensors.items():
        target = path.with_name(CONVERTED_NAME)
        # bytes through a handle: safetensors' save_file replaces the file it is given, so it cannot be checked
        write_bytes_atomic(target, save(state, metadata={"format": "pt"}))
        written.append(target)
    return written
