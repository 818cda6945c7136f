"""The loss's own weights round-trip through a checkpoint; a tampered file is a one-line error, never a guess."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from isbert.errors import IsbertError
from isbert.training.loss_state import LOSS_STATE, load_loss_state, loss_only_parameters, save_loss_state


class TiedLoss(nn.Module):
    """A loss holding the model (tied) plus a head and a scale of its own, like TSDAE's decoder or CT's copy."""

    def __init__(self, model: nn.Linear) -> None:
        super().__init__()
        self.model = model
        self.head = nn.Linear(3, 2)
        self.head.weight = model.weight  # tied: the model's tensor, not the loss's
        self.scale = nn.Parameter(torch.tensor(20.0))


@pytest.fixture
def pair() -> tuple[nn.Linear, TiedLoss]:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    return model, TiedLoss(model)


def test_only_the_loss_s_own_weights_are_kept(pair) -> None:
    model, loss = pair
    assert sorted(loss_only_parameters(loss, model)) == ["head.bias", "scale"]


def test_round_trip_restores_them(pair, tmp_path: Path) -> None:
    model, loss = pair
    save_loss_state(loss, model, tmp_path)
    saved = {name: p.detach().clone() for name, p in loss_only_parameters(loss, model).items()}
    with torch.no_grad():
        for parameter in loss.parameters():
            parameter.add_(1.0)
    model_after = model.weight.detach().clone()
    load_loss_state(loss, model, tmp_path)
    for name, parameter in loss_only_parameters(loss, model).items():
        assert torch.equal(parameter, saved[name])
    assert torch.equal(model.weight, model_after)  # the model's own weights are the checkpoint model's business


def test_a_loss_without_weights_of_its_own_writes_nothing(tmp_path: Path) -> None:
    model = nn.Linear(3, 2)
    save_loss_state(nn.ModuleDict({"model": model}), model, tmp_path)
    assert not (tmp_path / LOSS_STATE).exists()
    load_loss_state(nn.ModuleDict({"model": model}), model, tmp_path)  # and needs nothing


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda path: path.unlink(), "has no loss_state"),
        (lambda path: path.write_bytes(b"\x80\x04not safetensors"), "not a readable safetensors file"),
        (lambda path: save_file({"scale": torch.tensor(1.0)}, str(path)), r"missing \['head.bias'\]"),
        (
            lambda path: save_file({"scale": torch.tensor(1.0), "head.bias": torch.zeros(5)}, str(path)),
            r"head.bias has shape \(5,\), expected \(2,\)",
        ),
        (
            lambda path: save_file(
                {"scale": torch.tensor(1.0), "head.bias": torch.zeros(2), "\x1b[2Jx": torch.zeros(1)}, str(path)
            ),
            r"extra \[",
        ),
    ],
)
def test_tampered_loss_state_is_one_line(pair, tmp_path: Path, tamper, message: str) -> None:
    model, loss = pair
    save_loss_state(loss, model, tmp_path)
    tamper(tmp_path / LOSS_STATE)
    with pytest.raises(IsbertError, match=message) as error:
        load_loss_state(loss, model, tmp_path)
    assert "\n" not in str(error.value) and "\x1b" not in str(error.value)
