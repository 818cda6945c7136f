"""IS-BERT's objective (``--objective is``): the mutual information between each sentence vector and its local
n-gram features, the math in :func:`isbert.losses.mutual_information_loss`."""

from __future__ import annotations

from isbert.citation import ISBERT_BIBTEX
from isbert.objectives.base import Objective, Settings, anchor_of, anchored_loss, encoder_of

PAPER = "Zhang et al., EMNLP 2020, arXiv:2009.12061"


def describe(settings: Settings) -> str:
    return (
        f"IS-BERT ({PAPER}): a {encoder_of(settings)}, a multi-window CNN (activation `{settings.activation}`, "
        "padding kept out of its windows) and mean pooling, trained without labels by maximizing the "
        f"`{settings.estimator}` mutual-information estimate between each sentence vector and its local n-gram "
        f"features.{anchor_of(settings)}"
    )


OBJECTIVE = Objective(
    name="is",
    help="IS-BERT (encoder + CNN head, mutual information with the local n-gram features)",
    title="IS-BERT",
    paper=PAPER,
    bibtex=ISBERT_BIBTEX,
    describe=describe,
    build_loss=anchored_loss("is"),
    pooled=False,
    anchorable=True,
    tags=("mutual-information",),
)
