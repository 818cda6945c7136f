"""IS-BERT and SimCSE together (``--objective is+simcse``): both terms, summed, on the IS-BERT model."""

from __future__ import annotations

from isbert.objectives import infomax, simcse
from isbert.objectives.base import Objective, Settings, anchor_of, anchored_loss, encoder_of


def describe(settings: Settings) -> str:
    return (
        f"IS-BERT ({infomax.PAPER}) plus the SimCSE term ({simcse.PAPER}): a {encoder_of(settings)}, a multi-window "
        f"CNN (activation `{settings.activation}`) and mean pooling, trained without labels on the sum of the "
        f"`{settings.estimator}` mutual-information estimate between each sentence vector and its local n-gram "
        f"features and SimCSE's term: {simcse.term(settings)}.{anchor_of(settings)}"
    )


OBJECTIVE = Objective(
    name="is+simcse",
    help="both terms on the IS-BERT model",
    title="IS-BERT + SimCSE",
    paper=f"{infomax.PAPER}; {simcse.PAPER}",
    bibtex=f"{infomax.OBJECTIVE.bibtex}\n\n{simcse.BIBTEX}",
    describe=describe,
    build_loss=anchored_loss("is+simcse"),
    pooled=False,
    anchorable=True,
    tags=("mutual-information", "simcse"),
)
