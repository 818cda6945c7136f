"""Weights that only the loss holds, kept in checkpoints so that ``--resume`` continues the very same run.

The Trainer's checkpoint holds the model and an optimizer state for every trained parameter, the loss's included
(sentence-transformers hands the loss's parameters to the optimizer). Some losses train weights of their own: TSDAE's
decoder (its cross-attention; the rest is tied to the encoder), Contrastive Tension's second copy of the encoder and
its learned scale. Without them a resumed run restarted those from scratch under optimizer moments that were theirs.
"""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from isbert.errors import IsbertError, printable

LOSS_STATE = "loss_state.safetensors"
"""In a checkpoint folder, beside the model: the loss's own parameters by their names in the loss."""


def loss_only_parameters(loss: nn.Module, model: nn.Module) -> dict[str, nn.Parameter]:
    """The loss's parameters that are not the model's (tied ones, which share the model's tensors, excluded)."""
    owned = {parameter.data_ptr() for parameter in model.parameters()}
    return {name: p for name, p in loss.named_parameters() if p.data_ptr() not in owned}


def save_loss_state(loss: nn.Module, model: nn.Module, folder: str | Path) -> None:
    """Write the loss's own parameters into the checkpoint ``folder`` (nothing when it has none)."""
    parameters = loss_only_parameters(loss, model)
    if parameters:
        tensors = {name: parameter.detach().contiguous().cpu() for name, parameter in parameters.items()}
        save_file(tensors, str(Path(folder, LOSS_STATE)))


def load_loss_state(loss: nn.Module, model: nn.Module, folder: str | Path) -> None:
    """Restore what :func:`save_loss_state` wrote; a missing, damaged or mismatched file is a one-line error."""
    parameters = loss_only_parameters(loss, model)
    if not parameters:
        return
    path = Path(folder, LOSS_STATE)
    if not path.is_file():
        raise IsbertError(
            f"{folder} has no {LOSS_STATE}: written by another objective or an older isbert; "
            "pass --overwrite to start over"
        )
    try:
        stored = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise IsbertError(f"{path}: not a readable safetensors file ({error})") from None
    if stored.keys() != parameters.keys():
        missing = sorted(parameters.keys() - stored.keys())[:3]
        extra = printable(str(sorted(stored.keys() - parameters.keys())[:3]))
        raise IsbertError(f"{path}: holds other weights than this objective's (missing {missing}, extra {extra})")
    for name, parameter in parameters.items():
        if stored[name].shape != parameter.shape:
            found, expected = tuple(stored[name].shape), tuple(parameter.shape)
            raise IsbertError(f"{path}: {name} has shape {found}, expected {expected}")
        parameter.data.copy_(stored[name].to(parameter.device, parameter.dtype))
