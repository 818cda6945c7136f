"""The IS-BERT objective: maximize mutual information between each sentence vector and its local features."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from sentence_transformers import SentenceTransformer
from torch import Tensor, nn

Estimator = Literal["jsd", "infonce", "dv"]
ESTIMATORS: tuple[str, ...] = ("jsd", "infonce", "dv")
LOG2 = math.log(2.0)


def local_global_scores(local: Tensor, sentence: Tensor) -> Tensor:
    """``scores[b, t, c] = <local feature of token t of sentence b, sentence vector of c>``, shape (B, T, B)."""
    batch, length, dim = local.shape
    return (local.reshape(batch * length, dim) @ sentence.T).view(batch, length, -1)


def mutual_information_loss(
    local: Tensor, local_mask: Tensor, sentence: Tensor, estimator: Estimator = "jsd"
) -> Tensor:
    """Negative lower bound on I(local; global) over a batch; see :class:`MutualInformationLoss`.

    Args:
        local: (B, T, D) local token features.
        local_mask: (B, T) mask of the tokens that count (1) and padding (0).
        sentence: (B, D) sentence vectors.
        estimator: ``"jsd"``, ``"infonce"`` or ``"dv"``.
    """
    batch = sentence.shape[0]
    if batch < 2:
        raise ValueError(
            "the mutual-information loss needs at least 2 sentences in a batch: the other sentences' "
            f"vectors are the negatives (got a batch of {batch})"
        )
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    # The (B, T, B) score tensor is small; float32 keeps softplus/logsumexp stable under fp16/bf16 autocast.
    scores = local_global_scores(local, sentence).float()
    token = local_mask.unsqueeze(-1).to(scores.dtype)  # (B, T, 1)
    own = torch.eye(batch, dtype=scores.dtype, device=scores.device).unsqueeze(1)  # (B, 1, B)
    positive, negative = token * own, token * (1 - own)  # 0/1 weights: masked sums need no gather or sync
    n_positive, n_negative = positive.sum(), negative.sum()

    if estimator == "jsd":
        e_pos = ((LOG2 - F.softplus(-scores)) * positive).sum() / n_positive
        e_neg = ((F.softplus(scores) - LOG2) * negative).sum() / n_negative
        return e_neg - e_pos
    if estimator == "dv":
        e_pos = (scores * positive).sum() / n_positive
        e_neg = torch.logsumexp(scores.masked_fill(negative == 0, -torch.inf).flatten(), 0) - n_negative.log()
        return e_neg - e_pos
    # infonce: each real token picks its own sentence out of the batch.
    log_prob_own = scores.diagonal(dim1=0, dim2=2).T - torch.logsumexp(scores, dim=-1)  # (B, T)
    return -(log_prob_own * local_mask.to(scores.dtype)).sum() / n_positive


class MutualInformationLoss(nn.Module):
    r"""Local–global mutual-information loss of IS-BERT.

    Zhang, He, Liu, Lim, Bing. "An Unsupervised Sentence Embedding Method by Mutual Information
    Maximization". EMNLP 2020, arXiv:2009.12061 (eq. 3–5); the estimators follow Hjelm et al., "Learning
    Deep Representations by Mutual Information Estimation and Maximization" (ICLR 2019).

    For a batch of B sentences, let :math:`\ell_{b,t}` be the local (CNN) feature of real token t of sentence
    b and :math:`g_c` the sentence vector of sentence c (the mean of its local features). With the critic
    :math:`s_{b,t,c} = \ell_{b,t} \cdot g_c`, pairs with :math:`b = c` are positives and pairs with
    :math:`b \ne c` negatives (the other sentences in the batch):

    - ``"jsd"`` (the paper and the released code, the default)::

          loss = mean_neg(softplus(s) - log 2) - mean_pos(log 2 - softplus(-s))

    - ``"infonce"``: every token classifies its own sentence among the batch::

          loss = -mean_{b,t}( s_{b,t,b} - log sum_c exp(s_{b,t,c}) )

    - ``"dv"`` (Donsker–Varadhan)::

          loss = log mean_neg(exp(s)) - mean_pos(s)

    The means run over real tokens only; padding never enters. A batch needs at least two sentences.

    Args:
        model: an IS-BERT :class:`~sentence_transformers.SentenceTransformer` (see :func:`isbert.build`),
            whose output holds the local features (``token_embeddings``), their mask (``attention_mask``)
            and the ``sentence_embedding``.
        estimator: ``"jsd"``, ``"infonce"`` or ``"dv"``.

    Inputs: a dataset with one text column (more columns are treated as more sentences); labels are ignored.
    """

    def __init__(self, model: SentenceTransformer, estimator: Estimator = "jsd") -> None:
        super().__init__()
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        self.model = model
        self.estimator = estimator

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        outputs = [self.model(features) for features in sentence_features]
        local, mask, sentence = _concat_outputs(outputs)
        return mutual_information_loss(local, mask, sentence, self.estimator)

    def get_config_dict(self) -> dict[str, Any]:
        return {"estimator": self.estimator}

    @property
    def citation(self) -> str:
        return """
@inproceedings{zhang-etal-2020-unsupervised,
    title = "An Unsupervised Sentence Embedding Method by Mutual Information Maximization",
    author = "Zhang, Yan and He, Ruidan and Liu, Zuozhu and Lim, Kwan Hui and Bing, Lidong",
    booktitle = "Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing (EMNLP)",
    year = "2020",
    pages = "1601--1610",
}
"""


def _concat_outputs(outputs: list[dict[str, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
    """Stack the outputs of several text columns as one batch, right-padding the token axis."""
    if len(outputs) == 1:
        out = outputs[0]
        return out["token_embeddings"], out["attention_mask"], out["sentence_embedding"]
    length = max(out["token_embeddings"].shape[1] for out in outputs)
    local = torch.cat(
        [F.pad(out["token_embeddings"], (0, 0, 0, length - out["token_embeddings"].shape[1])) for out in outputs]
    )
    mask = torch.cat([F.pad(out["attention_mask"], (0, length - out["attention_mask"].shape[1])) for out in outputs])
    sentence = torch.cat([out["sentence_embedding"] for out in outputs])
    return local, mask, sentence


class SimCSELoss(nn.Module):
    r"""Unsupervised SimCSE: the same batch encoded twice with dropout on; each sentence must pick its own twin.

    Gao, Yao, Chen. "SimCSE: Simple Contrastive Learning of Sentence Embeddings". EMNLP 2021, arXiv:2104.08821.
    With :math:`u_i, v_i` the two dropout-noised sentence vectors of sentence i and temperature :math:`\tau`::

        loss = mean_i( -log softmax_j( cos(u_i, v_j) / tau )[i] )

    The other sentences of the batch are the negatives, as in :class:`MutualInformationLoss`, so the two
    objectives can be compared on the same backbone, data and budget. The model must be in training mode (dropout
    on); otherwise the twins are identical and the loss is trivial.

    Args:
        model: any :class:`~sentence_transformers.SentenceTransformer` (an IS-BERT model included).
        temperature: 0.05 in the paper.
    """

    def __init__(self, model: SentenceTransformer, temperature: float = 0.05) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.model = model
        self.temperature = temperature

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        (features,) = sentence_features
        # Modules write into the feature dict: each pass gets its own shallow copy of the tokenizer output.
        first = self.model(dict(features))["sentence_embedding"]
        second = self.model(dict(features))["sentence_embedding"]
        if first.shape[0] < 2:
            raise ValueError("SimCSE needs at least 2 sentences in a batch: the others are the negatives")
        similarity = F.normalize(first.float(), dim=-1) @ F.normalize(second.float(), dim=-1).T
        targets = torch.arange(first.shape[0], device=first.device)
        return F.cross_entropy(similarity / self.temperature, targets)

    def get_config_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature}
