"""Unsupervised SimCSE (``--objective simcse``): each sentence must pick its own second dropout-noised encoding
among the batch; the term is :class:`isbert.losses.SimCSELoss`'s, summed in :class:`isbert.losses.AnchoredObjective`.
"""

from __future__ import annotations

from isbert.objectives.base import Objective, Settings, anchor_of, anchored_loss, encoder_of

PAPER = "Gao, Yao and Chen, EMNLP 2021, arXiv:2104.08821"
BIBTEX = """@inproceedings{gao-etal-2021-simcse,
    title = "{S}im{CSE}: Simple Contrastive Learning of Sentence Embeddings",
    author = "Gao, Tianyu and Yao, Xingcheng and Chen, Danqi",
    booktitle = "Proceedings of the 2021 Conference on Empirical Methods in Natural Language Processing",
    year = "2021",
    pages = "6894--6910",
    url = "https://arxiv.org/abs/2104.08821",
}"""


def term(settings: Settings) -> str:
    """The SimCSE term in words, for this card and IS-BERT + SimCSE's."""
    return (
        "each sentence must pick its second dropout-noised encoding among the batch (in-batch contrastive loss, "
        f"temperature `{settings.simcse_temperature}`)"
    )


def describe(settings: Settings) -> str:
    return (
        f"Unsupervised SimCSE ({PAPER}): the {encoder_of(settings)} with mean pooling and no head, trained without "
        f"labels: {term(settings)}.{anchor_of(settings)}"
    )


OBJECTIVE = Objective(
    name="simcse",
    help="unsupervised SimCSE (encoder + mean pooling, dropout twins, no CNN)",
    title="SimCSE",
    paper=PAPER,
    bibtex=BIBTEX,
    describe=describe,
    build_loss=anchored_loss("simcse"),
    pooled=True,
    anchorable=True,
    tags=("simcse", "contrastive"),
)
