"""The objectives' registry is the one table: the flag's values, validation, the loss, the experiments' check and
the model card all read it, and each objective is one module with one entry."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

import pytest
import torch

import isbert.objectives
from isbert.errors import IsbertError
from isbert.objectives import NAMES, OBJECTIVES, objective
from isbert.training import TrainConfig, TrainResult
from isbert.training.config import add_arguments, choices, setting_types, validate
from isbert.training.corpus import CorpusStats
from isbert.training.models import build_model
from isbert.training.result import model_card

HELPERS = {"base"}
"""Modules of the package that hold no objective."""


def test_each_objective_is_one_module_with_one_registry_entry() -> None:
    modules = {info.name for info in pkgutil.iter_modules(isbert.objectives.__path__)} - HELPERS
    entries = {}
    for name in sorted(modules):
        entry = importlib.import_module(f"isbert.objectives.{name}").OBJECTIVE
        entries[entry.name] = entry
    assert entries == OBJECTIVES, "every objective module is registered, and every entry has its module"
    assert all(key == entry.name for key, entry in OBJECTIVES.items())


def test_the_configs_allowed_objectives_are_the_registry() -> None:
    assert choices(setting_types()["objective"]) == NAMES == tuple(OBJECTIVES)
    assert TrainConfig().objective == NAMES[0]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flag = next(a for a in parser._actions if "--objective" in a.option_strings)
    assert tuple(flag.choices) == NAMES
    assert all(f"{name}: {entry.help}" in str(flag.help) for name, entry in OBJECTIVES.items())
    with pytest.raises(IsbertError, match="--objective must be one of is, simcse"):
        objective("bert")


@pytest.mark.parametrize("name", NAMES)
def test_validation_reads_the_registry(name: str) -> None:
    entry = OBJECTIVES[name]
    head_only = TrainConfig(corpus=["x.txt"], objective=name, train_parts="head")
    if entry.pooled:
        with pytest.raises(IsbertError, match="has no head to train"):
            validate(head_only)
    else:
        validate(head_only)
    anchored = TrainConfig(corpus=["x.txt"], objective=name, anchor="l2sp", anchor_weight=1.0)
    if entry.anchorable:
        validate(anchored)
    else:
        with pytest.raises(IsbertError, match=f"--anchor works with --objective is, simcse, is\\+simcse, not {name}"):
            validate(anchored)


def _result(tmp_path: Path) -> TrainResult:
    history = [{"step": 0, "stsb_dev_spearman": 0.5}, {"step": 10, "stsb_dev_spearman": 0.6}]
    return TrainResult(
        output_dir=tmp_path, steps=10, seconds=1.0, sentences_per_second=1.0, corpus=CorpusStats(),
        best={"step": 10, "metric": "stsb_dev_spearman", "value": 0.6}, start=history[0], history=history,
        agreement=None,
    )  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_the_model_card_describes_the_runs_own_objective_and_cites_its_paper(name: str, tmp_path: Path) -> None:
    entry = OBJECTIVES[name]
    card = model_card(TrainConfig(objective=name, corpus=["x.txt"]), _result(tmp_path), masked=False)
    assert f"# {entry.title} model trained with isbert" in card
    assert all(paper in card for paper in entry.paper.split("; ")) and entry.bibtex in card  # is+simcse: two
    assert entry.describe(TrainConfig(objective=name)) in card
    assert all(tag in card.split("---")[1] for tag in entry.tags)
    if "2009.12061" not in entry.paper:  # a peer's card does not present its model as IS-BERT
        assert "IS-BERT" not in card and "2009.12061" not in card and "zhang-etal-2020" not in card


@pytest.mark.parametrize("name", NAMES)
def test_each_loss_reads_its_columns_and_gives_a_finite_loss(name: str, tiny_backbone: Path) -> None:
    entry = OBJECTIVES[name]
    config = TrainConfig(model=str(tiny_backbone), objective=name, out_channels=8, max_seq_length=16, device="cpu")
    torch.manual_seed(0)
    model = build_model(config)
    loss = entry.build_loss(model, config)
    features = model.preprocess(["a man walks the dog .", "red car", "the cat sleeps on the mat"])
    value = loss([dict(features) for _ in entry.columns], None)
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()


def test_an_objective_that_needs_layers_says_so_before_loading(tiny_backbone: Path) -> None:
    for name, entry in OBJECTIVES.items():
        reason = entry.not_applicable(str(tiny_backbone), 0)
        assert (reason is not None) == entry.needs_layers, name
        assert entry.not_applicable(str(tiny_backbone), None) is None


@pytest.mark.parametrize("name", NAMES)
def test_the_training_columns_are_the_declared_ones(name: str) -> None:
    from datasets import Dataset

    entry = OBJECTIVES[name]
    prepared = entry.training_columns(Dataset.from_dict({"text": ["one two three four", "five six"]}), seed=3)
    assert tuple(prepared[0]) == entry.columns and prepared[1]["text"] == "five six"
