"""Contrastive Tension (``--objective ct``): sentence-transformers' ``ContrastiveTensionLossInBatchNegatives``.

Carlsson, Gyllensten, Gogoulou, Hellqvist, Sahlgren. "Semantic Re-tuning with Contrastive Tension". ICLR 2021.

Two copies of the encoder (the backbone with mean pooling) embed the same batch; each sentence must pick its own
embedding by the other copy among the batch (cosine x a learned scale, cross-entropy both ways). The copy the
trainer saves is the model; the other lives in the loss and is trained too. Any backbone applies.

The loss's copy and its scale are checkpointed beside the model (:mod:`isbert.training.loss_state`), so
``--resume`` continues both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from isbert.objectives.base import Objective, Settings, encoder_of

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import ContrastiveTensionLossInBatchNegatives

CT_SCALE = 20.0
"""sentence-transformers' initial scale (1 / temperature) of the cosine; the loss learns it."""


def contrastive_tension_loss(
    model: SentenceTransformer, settings: Settings | None = None
) -> ContrastiveTensionLossInBatchNegatives:
    """The in-batch-negatives CT loss on ``model`` (its second copy is made now, from the current weights); no
    setting changes it."""
    from sentence_transformers.sentence_transformer.losses import ContrastiveTensionLossInBatchNegatives

    return ContrastiveTensionLossInBatchNegatives(model, scale=CT_SCALE)


PAPER = "Carlsson, Gyllensten, Gogoulou, Hellqvist and Sahlgren, ICLR 2021"
BIBTEX = r"""@inproceedings{carlsson2021semantic,
    title = "Semantic Re-tuning with Contrastive Tension",
    author = "Carlsson, Fredrik and Gyllensten, Amaru Cuba and Gogoulou, Evangelia and
              Hellqvist, Erik Ylip{\"a}{\"a} and Sahlgren, Magnus",
    booktitle = "International Conference on Learning Representations (ICLR)",
    year = "2021",
    url = "https://openreview.net/forum?id=Ov_sMNau-PF",
}"""


def describe(settings: Settings) -> str:
    return (
        f"Contrastive Tension ({PAPER}): the {encoder_of(settings)} with mean pooling and no head, trained without "
        "labels against a second copy of itself: each sentence must pick its own embedding by the other copy among "
        "the batch (in-batch negatives, a learned scale)."
    )


OBJECTIVE = Objective(
    name="ct",
    help="Contrastive Tension on the encoder + mean pooling",
    title="Contrastive Tension",
    paper=PAPER,
    bibtex=BIBTEX,
    describe=describe,
    build_loss=contrastive_tension_loss,
    pooled=True,
    tags=("contrastive-tension",),
)
