"""Contrastive Tension as a peer of IS-BERT: sentence-transformers' ``ContrastiveTensionLossInBatchNegatives``.

Carlsson, Gyllensten, Gogoulou, Hellqvist, Sahlgren. "Semantic Re-tuning with Contrastive Tension". ICLR 2021.

Two copies of the encoder (the backbone with mean pooling) embed the same batch; each sentence must pick its own
embedding by the other copy among the batch (cosine x a learned scale, cross-entropy both ways). The copy the
trainer saves is the model; the other lives in the loss and is trained too. Any backbone applies.

The loss's copy and its scale are checkpointed beside the model (:mod:`isbert.training.loss_state`), so
``--resume`` continues both.
"""

from __future__ import annotations

from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import ContrastiveTensionLossInBatchNegatives

CT_SCALE = 20.0
"""sentence-transformers' initial scale (1 / temperature) of the cosine; the loss learns it."""


def contrastive_tension_loss(model: SentenceTransformer) -> ContrastiveTensionLossInBatchNegatives:
    """The in-batch-negatives CT loss on ``model`` (its second copy is made now, from the current weights)."""
    return ContrastiveTensionLossInBatchNegatives(model, scale=CT_SCALE)
