"""Which loss a training run optimizes: ``--objective`` to a loss module (the one dispatch point)."""

from __future__ import annotations

from typing import Any

from torch import nn

from isbert.contrastive_tension import contrastive_tension_loss
from isbert.losses import OBJECTIVES as ANCHORED_OBJECTIVES
from isbert.losses import AnchoredObjective
from isbert.training.config import TrainConfig
from isbert.tsdae import denoising_loss, with_deletion_noise

OBJECTIVES: tuple[str, ...] = (*ANCHORED_OBJECTIVES, "tsdae", "ct")
"""Every ``--objective``: IS-BERT/SimCSE (:class:`AnchoredObjective`) and the peers with their own losses."""


def build_loss(model: Any, config: TrainConfig) -> nn.Module:
    """IS-BERT and/or SimCSE (with the optional anchor), or a peer's sentence-transformers loss (TSDAE, CT)."""
    if config.objective == "tsdae":
        return denoising_loss(model)
    if config.objective == "ct":
        return contrastive_tension_loss(model)
    return AnchoredObjective(
        model,
        config.objective,
        estimator=config.estimator,
        critic=config.critic,
        temperature=config.temperature,
        exclude_radius=config.exclude_radius,
        simcse_temperature=config.simcse_temperature,
        anchor=config.anchor,
        anchor_weight=config.anchor_weight,
    )


def training_columns(train_set: Any, config: TrainConfig) -> Any:
    """The columns the objective reads: TSDAE adds a damaged twin before each sentence; the others read it alone."""
    return with_deletion_noise(train_set, config.seed) if config.objective == "tsdae" else train_set
