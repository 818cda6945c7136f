"""What an objective is, as one record: :class:`Objective` (the registry in ``isbert.objectives`` holds one each).

The record sits below ``training/`` (and so cannot name its ``TrainConfig``): a builder and a card text read the
run's settings through :class:`Settings`, the few attributes they need, which ``TrainConfig`` has. The registry is
read when ``isbert --help`` builds its parser, so this package imports no torch or sentence-transformers until a
loss is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from torch import nn

    from isbert.losses import Anchor, Critic, Estimator
    from isbert.losses import Objective as Terms
    from isbert.modules import Activation


class Settings(Protocol):
    """The settings of a run that a loss builder or a model card reads (``isbert.training.TrainConfig`` has them)."""

    model: str
    encoder_layers: int | None
    seed: int
    activation: Activation
    estimator: Estimator
    critic: Critic
    temperature: float
    exclude_radius: int | None
    simcse_temperature: float
    anchor: Anchor
    anchor_weight: float


@dataclass(frozen=True)
class Objective:
    """One ``--objective``: every fact the flag, validation, training, the experiments and the model card need.

    Args:
        name: the ``--objective`` value.
        help: what it is, in a few words, for ``--help`` and the docs table.
        title: the method's name in the model card (``# {title} model trained with isbert``).
        paper: authors, venue and arXiv id (several joined by ``; ``); the model card names each.
        bibtex: the paper's entry, the model card's citation.
        describe: the model card's paragraph on how this run's model was trained, from its settings.
        build_loss: the loss module on the starting model.
        pooled: the backbone with mean pooling and no CNN head (no local features: no mutual-information criterion).
        anchorable: ``--anchor`` applies (the anchor is a term of :class:`~isbert.losses.AnchoredObjective`).
        needs_layers: a transformers encoder with layers is required (checked before anything loads).
        columns: the dataset columns the loss reads, in order; ``add_columns`` makes any beyond ``text``.
        add_columns: ``(dataset with a text column, seed) -> dataset with `columns```.
        tags: extra tags of the model card's front matter.
    """

    name: str
    help: str
    title: str
    paper: str
    bibtex: str
    describe: Callable[[Settings], str]
    build_loss: Callable[[SentenceTransformer, Settings], nn.Module]
    pooled: bool
    anchorable: bool = False
    needs_layers: bool = False
    columns: tuple[str, ...] = ("text",)
    add_columns: Callable[[Any, int], Any] | None = None
    tags: tuple[str, ...] = ()

    def training_columns(self, dataset: Any, seed: int) -> Any:
        """``dataset`` (one ``text`` column) with the columns this loss reads."""
        return dataset if self.add_columns is None else self.add_columns(dataset, seed)

    def not_applicable(self, model: str, encoder_layers: int | None) -> str | None:
        """Why this objective cannot train that backbone (None when it can), from the settings alone."""
        return missing_layers(self.title, model, encoder_layers) if self.needs_layers else None


def missing_layers(title: str, model: str, encoder_layers: int | None) -> str | None:
    """Why ``model`` cut to ``encoder_layers`` has no transformer layers (None when it has), nothing loaded."""
    from isbert.model import resolve_model_name
    from isbert.model_folder import read_model_config

    if encoder_layers == 0:
        return f"{title} needs transformer layers (its tied decoder cross-attends in them); encoder_layers = 0 has none"
    path = Path(resolve_model_name(model))
    config = path / "config.json"
    if path.is_dir() and not config.is_file():
        return f"{title} needs a transformers encoder with layers; {model} is not one (word vectors have no layers)"
    if config.is_file() and not read_model_config(config).get("num_hidden_layers"):
        return f"{title} needs transformer layers (its tied decoder cross-attends in them); {model} has none"
    return None


def anchored_loss(terms: Terms) -> Callable[[SentenceTransformer, Settings], nn.Module]:
    """The builder of :class:`~isbert.losses.AnchoredObjective` with ``terms`` (IS, SimCSE or both) and the anchor."""

    def build(model: SentenceTransformer, settings: Settings) -> nn.Module:
        from isbert.losses import AnchoredObjective

        return AnchoredObjective(
            model,
            terms,
            estimator=settings.estimator,
            critic=settings.critic,
            temperature=settings.temperature,
            exclude_radius=settings.exclude_radius,
            simcse_temperature=settings.simcse_temperature,
            anchor=settings.anchor,
            anchor_weight=settings.anchor_weight,
        )

    return build


def encoder_of(settings: Settings) -> str:
    """The backbone as the model card names it (with its kept layers when truncated)."""
    kept = "" if settings.encoder_layers is None else f" (its first {settings.encoder_layers} layers)"
    return f"`{settings.model}` encoder{kept}"


def anchor_of(settings: Settings) -> str:
    """The model card's sentence on ``--anchor``, empty when off."""
    if settings.anchor == "none" or settings.anchor_weight <= 0:
        return ""
    return f" An `{settings.anchor}` anchor (weight `{settings.anchor_weight}`) kept it near the starting encoder."
