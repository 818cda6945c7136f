"""The IS-BERT objective: maximize mutual information between each sentence vector and its local features."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from sentence_transformers.util import cos_sim
from torch import Tensor, nn

from isbert.citation import ISBERT_BIBTEX

Estimator = Literal["jsd", "infonce", "dv"]
ESTIMATORS: tuple[str, ...] = ("jsd", "infonce", "dv")
Critic = Literal["dot", "cosine"]
CRITICS: tuple[str, ...] = ("dot", "cosine")
LOG2 = math.log(2.0)


def local_global_scores(local: Tensor, sentence: Tensor, critic: Critic = "dot", temperature: float = 1.0) -> Tensor:
    """``scores[b, t, c] = critic(local feature of token t of sentence b, sentence vector of c)``, shape (B, T, B).

    ``dot`` is the released critic (an inner product, unbounded); ``cosine`` divides the cosine by ``temperature``,
    so the score is bounded and cannot be raised by growing vector norms.
    """
    if critic == "cosine":
        local, sentence = F.normalize(local, dim=-1), F.normalize(sentence, dim=-1)
    batch, length, dim = local.shape
    scores = (local.reshape(batch * length, dim) @ sentence.T).view(batch, length, -1)
    return scores / temperature if critic == "cosine" else scores


def mutual_information_loss(
    local: Tensor,
    local_mask: Tensor,
    sentence: Tensor,
    estimator: Estimator = "jsd",
    critic: Critic = "dot",
    temperature: float = 1.0,
    exclude_radius: int | None = None,
) -> Tensor:
    """Negative lower bound on I(local; global) over a batch; see :class:`MutualInformationLoss`.

    Args:
        local: (B, T, D) local token features.
        local_mask: (B, T) mask of the tokens that count (1) and padding (0).
        sentence: (B, D) sentence vectors (the mean of each sentence's local features).
        estimator: ``"jsd"``, ``"infonce"`` or ``"dv"``.
        critic: ``"dot"`` (the paper) or ``"cosine"`` (cosine / ``temperature``).
        exclude_radius: None (the paper) scores each token against its own sentence vector. An integer r scores it
            against the mean of its sentence's other local features more than r positions away (0 = all but itself),
            so a token cannot "recognise" its sentence through its own share of the mean; tokens with nothing left
            have no positive.
    """
    batch = sentence.shape[0]
    if batch < 2:
        raise ValueError(
            "the mutual-information loss needs at least 2 sentences in a batch: the other sentences' "
            f"vectors are the negatives (got a batch of {batch})"
        )
    _check_objective(estimator, critic, temperature)
    local, sentence = local.float(), sentence.float()
    # The (B, T, B) score tensor is small; float32 keeps softplus/logsumexp stable under fp16/bf16 autocast.
    scores = local_global_scores(local, sentence, critic, temperature)
    token = local_mask.to(scores.dtype)  # (B, T)
    own = torch.eye(batch, dtype=scores.dtype, device=scores.device).unsqueeze(1)  # (B, 1, B)
    anchor = token
    if exclude_radius is not None:
        own_score, anchor = _scores_against_the_rest(local, token, critic, temperature, exclude_radius)
        scores = scores * (1 - own) + own * own_score.unsqueeze(-1)  # replace the diagonal
    positive, negative = anchor.unsqueeze(-1) * own, token.unsqueeze(-1) * (1 - own)  # masked sums: no gather/sync
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
    return -(log_prob_own * anchor).sum() / n_positive


def _scores_against_the_rest(
    local: Tensor, token: Tensor, critic: Critic, temperature: float, radius: int
) -> tuple[Tensor, Tensor]:
    """Score of each token against the mean of its sentence's local features beyond ``radius`` positions, and the
    (B, T) mask of tokens that have any such feature."""
    masked = local * token.unsqueeze(-1)
    near_sum, near_count = _window_sum(masked, radius), _window_sum(token.unsqueeze(-1), radius).squeeze(-1)
    far_count = token.sum(1, keepdim=True) - near_count  # (B, T)
    rest = (masked.sum(1, keepdim=True) - near_sum) / far_count.clamp(min=1).unsqueeze(-1)  # (B, T, D)
    if critic == "cosine":
        local, rest = F.normalize(local, dim=-1), F.normalize(rest, dim=-1) * (1 / temperature)
    return (local * rest).sum(-1), token * (far_count > 0).to(token.dtype)


def _window_sum(x: Tensor, radius: int) -> Tensor:
    """``out[:, t] = sum of x[:, s] for |s - t| <= radius`` along dim 1, from a cumulative sum."""
    length = x.shape[1]
    cumulative = F.pad(x.cumsum(1), (0, 0, 1, 0))  # cumulative[:, i] = sum of x[:, :i]
    positions = torch.arange(length, device=x.device)
    upper, lower = (positions + radius + 1).clamp(max=length), (positions - radius).clamp(min=0)
    return cumulative[:, upper] - cumulative[:, lower]


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
    ``critic="cosine"`` replaces the inner product by :math:`\cos(\ell_{b,t}, g_c) / \tau`, and ``exclude_radius``
    scores a positive against the mean of the sentence's *other* local features (not in the paper; options studied in
    ``experiments/``: with the paper's positives a token's own share of the mean makes part of the task trivial).

    Args:
        model: an IS-BERT :class:`~sentence_transformers.SentenceTransformer` (see :func:`isbert.build`),
            whose output holds the local features (``token_embeddings``), their mask (``attention_mask``)
            and the ``sentence_embedding``.
        estimator: ``"jsd"``, ``"infonce"`` or ``"dv"``.
        critic, temperature: ``"dot"`` (the paper) or ``"cosine"`` divided by ``temperature``.
        exclude_radius: see :func:`mutual_information_loss`; None = the paper.

    Inputs: a dataset with one text column (more columns are treated as more sentences); labels are ignored.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        estimator: Estimator = "jsd",
        critic: Critic = "dot",
        temperature: float = 1.0,
        exclude_radius: int | None = None,
    ) -> None:
        super().__init__()
        _check_objective(estimator, critic, temperature, exclude_radius)
        self.model = model
        self.estimator = estimator
        self.critic = critic
        self.temperature = temperature
        self.exclude_radius = exclude_radius

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        outputs = [self.model(features) for features in sentence_features]
        local, mask, sentence = _concat_outputs(outputs)
        return mutual_information_loss(
            local, mask, sentence, self.estimator, self.critic, self.temperature, self.exclude_radius
        )

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator,
            "critic": self.critic,
            "temperature": self.temperature,
            "exclude_radius": self.exclude_radius,
        }

    @property
    def citation(self) -> str:
        return ISBERT_BIBTEX


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


def _check_objective(estimator: str, critic: str, temperature: float, exclude_radius: int | None = None) -> None:
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if critic not in CRITICS:
        raise ValueError(f"critic must be one of {CRITICS}, got {critic!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if exclude_radius is not None and exclude_radius < 0:
        raise ValueError(f"exclude_radius must be None or at least 0, got {exclude_radius}")


def simcse_ranking_loss(model: SentenceTransformer, temperature: float = 0.05) -> MultipleNegativesRankingLoss:
    """Unsupervised SimCSE as sentence-transformers maintains it: :class:`MultipleNegativesRankingLoss` with the
    cosine and ``scale = 1 / temperature``, given the two dropout-noised encodings of a batch as its two columns."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return MultipleNegativesRankingLoss(model, scale=1.0 / temperature, similarity_fct=cos_sim)


def _simcse_term(ranking: MultipleNegativesRankingLoss, first: Tensor, second: Tensor) -> Tensor:
    """``mean_i -log softmax_j(cos(first_i, second_j) / temperature)[i]``, computed by ``ranking``."""
    if first.shape[0] < 2:
        raise ValueError("SimCSE needs at least 2 sentences in a batch: the others are the negatives")
    # MNRL ignores its labels (the targets are the diagonal); its annotation asks for a tensor regardless.
    return ranking.compute_loss_from_embeddings([first, second], None)  # type: ignore[arg-type]


def relational_distillation(student: Tensor, teacher: Tensor) -> Tensor:
    """``mean_{i,j} (cos(student_i, student_j) - cos(teacher_i, teacher_j))^2`` over a batch.

    Relational knowledge distillation (Park, Kim, Lu, Cho, CVPR 2019) with the cosine as the relation: it keeps the
    batch's similarity structure - what STS and search read - while leaving the vectors free to rotate or rescale.
    """
    s, t = F.normalize(student.float(), dim=-1), F.normalize(teacher.float(), dim=-1)
    return (s @ s.T - t @ t.T).pow(2).mean()


class SimCSELoss(nn.Module):
    r"""Unsupervised SimCSE: the same batch encoded twice with dropout on; each sentence must pick its own twin.

    Gao, Yao, Chen. "SimCSE: Simple Contrastive Learning of Sentence Embeddings". EMNLP 2021, arXiv:2104.08821.
    With :math:`u_i, v_i` the two dropout-noised sentence vectors of sentence i and temperature :math:`\tau`::

        loss = mean_i( -log softmax_j( cos(u_i, v_j) / tau )[i] )

    The other sentences of the batch are the negatives, as in :class:`MutualInformationLoss`, so the two
    objectives can be compared on the same backbone, data and budget. The model must be in training mode (dropout
    on); otherwise the twins are identical and the loss is trivial.

    Relations: this is sentence-transformers' :class:`MultipleNegativesRankingLoss` (which computes it) with the
    same sentence in both columns; this class only encodes the one text column twice.

    Args:
        model: any :class:`~sentence_transformers.SentenceTransformer` (an IS-BERT model included).
        temperature: 0.05 in the paper.
    """

    def __init__(self, model: SentenceTransformer, temperature: float = 0.05) -> None:
        super().__init__()
        self.ranking = simcse_ranking_loss(model, temperature)
        self.model = model
        self.temperature = temperature

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        (features,) = sentence_features
        # Modules write into the feature dict: each pass gets its own shallow copy of the tokenizer output.
        first = self.model(dict(features))["sentence_embedding"]
        second = self.model(dict(features))["sentence_embedding"]
        return _simcse_term(self.ranking, first, second)

    def get_config_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature}


Objective = Literal["is", "simcse", "is+simcse"]
OBJECTIVES: tuple[str, ...] = ("is", "simcse", "is+simcse")
"""The terms :class:`AnchoredObjective` sums (IS, SimCSE or both): its ``objective`` argument. The ``--objective``
values are the registry's (``isbert.objectives``); these three entries build this loss with their terms."""
Anchor = Literal["none", "distill", "l2sp"]
ANCHORS: tuple[str, ...] = ("none", "distill", "l2sp")


class AnchoredObjective(nn.Module):
    r"""The training loss of ``isbert train``: IS-BERT and/or SimCSE, optionally anchored to the starting model.

    ::

        loss = [IS]  mutual_information_loss(local, mask, g)          (objective "is" or "is+simcse")
             + [SimCSE] SimCSE(g, g') (MultipleNegativesRankingLoss)    (objective "simcse" or "is+simcse")
             + anchor_weight * anchor

    with ``g, g'`` two dropout-noised encodings of the batch. The anchor keeps an already-tuned encoder near where it
    started ("adapt without forgetting"):

    - ``"distill"``: :func:`relational_distillation` toward the frozen starting model's sentence vectors of the same
      batch (one extra forward pass without gradients);
    - ``"l2sp"``: :math:`\sum_\theta \lVert\theta - \theta_0\rVert^2` over the trained weights (Li, Grandvalet,
      Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional Networks", ICML 2018).

    Args:
        model: the model being trained; ``anchor="distill"`` copies it (as it is now) as the frozen teacher, and
            ``"l2sp"`` records its current weights.
        objective: ``"is"``, ``"simcse"`` or ``"is+simcse"``.
        estimator, critic, temperature, exclude_radius: of the IS term (:func:`mutual_information_loss`).
        simcse_temperature: of the SimCSE term (0.05 in the SimCSE paper).
        anchor, anchor_weight: the regularizer and its weight (0 = off).
    """

    def __init__(
        self,
        model: SentenceTransformer,
        objective: Objective = "is",
        *,
        estimator: Estimator = "jsd",
        critic: Critic = "dot",
        temperature: float = 1.0,
        exclude_radius: int | None = None,
        simcse_temperature: float = 0.05,
        anchor: Anchor = "none",
        anchor_weight: float = 0.0,
    ) -> None:
        super().__init__()
        _check_objective(estimator, critic, temperature, exclude_radius)
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if anchor not in ANCHORS:
            raise ValueError(f"anchor must be one of {ANCHORS}, got {anchor!r}")
        if not simcse_temperature > 0 or anchor_weight < 0:
            raise ValueError("simcse_temperature must be positive and anchor_weight not negative")
        self.model = model
        self.objective, self.estimator, self.critic, self.temperature = objective, estimator, critic, temperature
        self.exclude_radius = exclude_radius
        self.simcse_temperature = simcse_temperature
        self.simcse = simcse_ranking_loss(model, simcse_temperature)
        self.anchor, self.anchor_weight = anchor, anchor_weight
        self.teacher: SentenceTransformer | None = None
        self.initial: dict[str, Tensor] = {}
        if anchor == "distill" and anchor_weight > 0:
            import copy

            self.teacher = copy.deepcopy(model).eval().requires_grad_(False)
        elif anchor == "l2sp" and anchor_weight > 0:
            # Plain tensors rather than buffers: the initial weights must never reach a checkpoint or the optimizer.
            self.initial = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}

    def _apply(self, fn: Any, recurse: bool = True) -> AnchoredObjective:
        super()._apply(fn, recurse)  # type: ignore[no-untyped-call]  # .to(device) moves model and teacher
        # ... and the l2sp anchor follows them
        self.initial = {name: fn(t) for name, t in self.initial.items()}
        return self

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        (features,) = sentence_features
        out = self.model(dict(features))  # modules write into the dict: each pass gets its own copy
        sentence: Tensor = out["sentence_embedding"]
        loss: Tensor = sentence.new_zeros((), dtype=torch.float32)
        if self.objective in ("is", "is+simcse"):
            loss = loss + mutual_information_loss(
                out["token_embeddings"], out["attention_mask"], sentence, self.estimator, self.critic,
                self.temperature, self.exclude_radius,
            )  # fmt: skip
        if self.objective in ("simcse", "is+simcse"):
            twin = self.model(dict(features))["sentence_embedding"]
            loss = loss + _simcse_term(self.simcse, sentence, twin)
        if self.teacher is not None:
            self.teacher.eval()  # no dropout in the reference, whatever mode the trainer put the loss in
            with torch.no_grad():
                target = self.teacher(dict(features))["sentence_embedding"]
            loss = loss + self.anchor_weight * relational_distillation(sentence, target)
        if self.initial:
            trained = [(p, self.initial[n]) for n, p in self.model.named_parameters() if n in self.initial]
            distance = cast(Tensor, sum((p - p0).pow(2).sum() for p, p0 in trained))
            loss = loss + self.anchor_weight * distance
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "estimator": self.estimator,
            "critic": self.critic,
            "temperature": self.temperature,
            "exclude_radius": self.exclude_radius,
            "simcse_temperature": self.simcse_temperature,
            "anchor": self.anchor,
            "anchor_weight": self.anchor_weight,
        }
