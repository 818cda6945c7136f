"""The mutual-information loss against a plain reference computation, and its invariances."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import isbert
from isbert.losses import ESTIMATORS, AnchoredObjective, mutual_information_loss, relational_distillation

# float32 losses summed over a few hundred O(1) terms: a reordered sum differs by ~1e-7 of the value, and a loss of
# several nats by a few 1e-6 absolute, so compare relatively at 1e-5 (the absolute bounds cover values near 0).
F32_REL = 1e-5


def reference_loss(local: torch.Tensor, lengths: list[int], sentence: torch.Tensor, estimator: str) -> float:
    """The objective written out pair by pair, with Python loops (slow and obvious)."""
    log2 = math.log(2.0)
    batch = len(lengths)
    positives: list[float] = []
    negatives: list[float] = []
    per_token_nce: list[float] = []
    for b in range(batch):
        for t in range(lengths[b]):
            row = []
            for c in range(batch):
                s = float(torch.dot(local[b, t], sentence[c]))
                row.append(s)
                (positives if b == c else negatives).append(s)
            per_token_nce.append(row[b] - math.log(sum(math.exp(x) for x in row)))
    if estimator == "jsd":
        e_pos = sum(log2 - F.softplus(torch.tensor(-s, dtype=torch.float64)).item() for s in positives)
        e_neg = sum(F.softplus(torch.tensor(s, dtype=torch.float64)).item() - log2 for s in negatives)
        return e_neg / len(negatives) - e_pos / len(positives)
    if estimator == "dv":
        return math.log(sum(math.exp(s) for s in negatives) / len(negatives)) - sum(positives) / len(positives)
    return -sum(per_token_nce) / len(per_token_nce)


def random_batch(lengths: list[int], dim: int, seed: int, pad_to: int | None = None):
    generator = torch.Generator().manual_seed(seed)
    length = pad_to or max(lengths)
    local = torch.randn(len(lengths), length, dim, generator=generator, dtype=torch.float64)
    mask = torch.zeros(len(lengths), length, dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
    # Garbage at padded positions must not matter.
    local = local * 0.5
    sentence = torch.stack([local[b, : lengths[b]].mean(0) for b in range(len(lengths))])
    return local, mask, sentence


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=7), min_size=2, max_size=6),
    dim=st.integers(min_value=1, max_value=9),
    seed=st.integers(min_value=0, max_value=10_000),
    estimator=st.sampled_from(ESTIMATORS),
)
def test_loss_equals_reference(lengths: list[int], dim: int, seed: int, estimator: str) -> None:
    local, mask, sentence = random_batch(lengths, dim, seed)
    got = mutual_information_loss(local, mask, sentence, estimator).item()
    # The loss computes in float32; compare the float32 inputs against the float64 reference.
    want = reference_loss(local.float().double(), lengths, sentence.float().double(), estimator)
    assert got == pytest.approx(want, rel=F32_REL, abs=1e-6)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_padding_garbage_and_extra_padding_do_not_change_the_loss(estimator: str) -> None:
    lengths = [3, 5, 1, 4]
    local, mask, sentence = random_batch(lengths, 6, seed=1)
    padded_local, padded_mask, _ = random_batch(lengths, 6, seed=1, pad_to=9)
    padded_local[:, :5] = local
    padded_local[padded_mask == 0] = 1e3  # huge garbage where there is no token
    base = mutual_information_loss(local, mask, sentence, estimator)
    assert mutual_information_loss(padded_local, padded_mask, sentence, estimator).item() == pytest.approx(
        base.item(), abs=1e-6
    )


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_loss_is_invariant_to_batch_order(estimator: str) -> None:
    local, mask, sentence = random_batch([2, 6, 3, 4, 5], 7, seed=2)
    order = torch.tensor([3, 0, 4, 1, 2])
    base = mutual_information_loss(local, mask, sentence, estimator).item()
    permuted = mutual_information_loss(local[order], mask[order], sentence[order], estimator).item()
    assert permuted == pytest.approx(base, rel=F32_REL, abs=1e-6)


def test_one_sentence_has_no_negatives() -> None:
    local, mask, sentence = random_batch([4], 3, seed=0)
    with pytest.raises(ValueError, match="at least 2 sentences"):
        mutual_information_loss(local, mask, sentence)


def test_unknown_estimator_is_refused(tiny_isbert) -> None:
    with pytest.raises(ValueError, match="estimator must be one of"):
        isbert.MutualInformationLoss(tiny_isbert, estimator="nce")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_give_a_finite_float32_loss(dtype: torch.dtype) -> None:
    local, mask, sentence = random_batch([3, 4, 2], 8, seed=3)
    loss = mutual_information_loss(local.to(dtype), mask, sentence.to(dtype))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def _features(model, texts: list[str]) -> dict[str, torch.Tensor]:
    return model.preprocess(texts)


def test_loss_module_matches_the_function_on_model_outputs(tiny_isbert) -> None:
    texts = ["a man runs", "the dog sleeps in the park", "hi", "red car"]
    loss_module = isbert.MutualInformationLoss(tiny_isbert)
    loss = loss_module([_features(tiny_isbert, texts)], None)
    out = tiny_isbert(_features(tiny_isbert, texts))
    want = mutual_information_loss(out["token_embeddings"], out["attention_mask"], out["sentence_embedding"])
    assert loss.item() == pytest.approx(want.item(), rel=F32_REL, abs=1e-6)
    loss.backward()
    cnn_grad = tiny_isbert[1].convs[0].weight.grad
    assert cnn_grad is not None and cnn_grad.abs().sum() > 0


def test_several_text_columns_are_one_batch_of_sentences(tiny_isbert) -> None:
    tiny_isbert.eval()
    first, second = ["a man runs", "hi"], ["the dog sleeps in the park today", "red car", "a cat"]
    loss_module = isbert.MutualInformationLoss(tiny_isbert)
    split = loss_module([_features(tiny_isbert, first), _features(tiny_isbert, second)])
    joint = loss_module([_features(tiny_isbert, first + second)])
    assert split.item() == pytest.approx(joint.item(), abs=1e-5)


def test_optimizing_the_loss_raises_the_mutual_information_estimate(tiny_isbert) -> None:
    torch.manual_seed(0)
    tiny_isbert.train()
    texts = ["a man runs in the park", "the dog sleeps", "a red car is fast", "she reads", "big old house"]
    features = _features(tiny_isbert, texts)
    loss_module = isbert.MutualInformationLoss(tiny_isbert)
    optimizer = torch.optim.Adam(tiny_isbert.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = loss_module([dict(features)])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1


def plain_simcse(u: torch.Tensor, v: torch.Tensor, temperature: float) -> float:
    """``mean_i -log softmax_j(cos(u_i, v_j) / temperature)[i]``, one pair at a time in float64."""
    u, v = u.detach().double(), v.detach().double()
    total = 0.0
    for i in range(len(u)):
        logits = [float(F.cosine_similarity(u[i], v[j], dim=0)) / temperature for j in range(len(v))]
        total += -(logits[i] - math.log(sum(math.exp(x) for x in logits)))
    return total / len(u)


def test_simcse_equals_a_plain_reference(tiny_isbert) -> None:
    """Same dropout masks for both computations: seed, run the loss, reseed, recompute by hand."""
    texts = ["a man runs", "the dog sleeps in the park", "hi", "red car"]
    tiny_isbert.train()
    loss_module = isbert.losses.SimCSELoss(tiny_isbert, temperature=0.05)
    torch.manual_seed(0)
    got = loss_module([tiny_isbert.preprocess(texts)]).item()
    torch.manual_seed(0)
    u = tiny_isbert(tiny_isbert.preprocess(texts))["sentence_embedding"].detach()
    v = tiny_isbert(tiny_isbert.preprocess(texts))["sentence_embedding"].detach()
    assert got == pytest.approx(plain_simcse(u, v, 0.05), rel=F32_REL, abs=1e-5)
    assert not torch.allclose(u, v), "dropout must make the two views differ"
    # the maintained loss computes it: sentence-transformers' MNRL, cosine, scale 1/temperature
    assert type(loss_module.ranking).__name__ == "MultipleNegativesRankingLoss" and loss_module.ranking.scale == 20


def test_simcse_refuses_bad_settings(tiny_isbert) -> None:
    with pytest.raises(ValueError, match="temperature"):
        isbert.losses.SimCSELoss(tiny_isbert, temperature=0)
    with pytest.raises(ValueError, match="at least 2 sentences"):
        isbert.losses.SimCSELoss(tiny_isbert)([tiny_isbert.preprocess(["alone"])])


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=6), min_size=2, max_size=5),
    dim=st.integers(min_value=2, max_value=8),
    seed=st.integers(min_value=0, max_value=10_000),
    estimator=st.sampled_from(ESTIMATORS),
    temperature=st.floats(min_value=0.05, max_value=2.0),
)
def test_cosine_critic_equals_dot_critic_on_rescaled_vectors(lengths, dim, seed, estimator, temperature) -> None:
    """cos(l, g) / tau is the dot critic applied to l / (tau |l|) and g / |g|: check against the loop reference."""
    local, mask, sentence = random_batch(lengths, dim, seed, pad_to=max(lengths) + 1)
    scaled_local = F.normalize(local, dim=-1) / temperature
    scaled_sentence = F.normalize(sentence, dim=-1)
    want = reference_loss(scaled_local, lengths, scaled_sentence, estimator)
    got = mutual_information_loss(local, mask, sentence, estimator, critic="cosine", temperature=temperature).item()
    assert got == pytest.approx(want, rel=F32_REL, abs=1e-5)
    # Bounded critic: scaling the features changes nothing (up to float32 rounding of the normalised vectors, which
    # 1 / temperature amplifies: seed 639, dv, tau 0.133 differed by 1.4e-6).
    assert mutual_information_loss(local * 7, mask, sentence * 3, estimator, "cosine", temperature).item() == (
        pytest.approx(got, rel=F32_REL, abs=1e-6 / temperature)
    )


def test_objective_refuses_bad_critic(tiny_isbert) -> None:
    with pytest.raises(ValueError, match="critic"):
        isbert.MutualInformationLoss(tiny_isbert, critic="bilinear")
    with pytest.raises(ValueError, match="temperature"):
        isbert.MutualInformationLoss(tiny_isbert, critic="cosine", temperature=0.0)
    with pytest.raises(ValueError, match="objective"):
        AnchoredObjective(tiny_isbert, "bert")
    with pytest.raises(ValueError, match="anchor"):
        AnchoredObjective(tiny_isbert, anchor="ewc", anchor_weight=1.0)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(min_value=1, max_value=6), dim=st.integers(min_value=1, max_value=5), seed=st.integers(0, 999))
def test_relational_distillation_reference_and_rotation_invariance(batch, dim, seed) -> None:
    generator = torch.Generator().manual_seed(seed)
    student = torch.randn(batch, dim, generator=generator, dtype=torch.float64) + 0.1
    teacher = torch.randn(batch, dim, generator=generator, dtype=torch.float64) + 0.1

    def cos(x: torch.Tensor, i: int, j: int) -> float:
        return float(F.cosine_similarity(x[i], x[j], dim=0))

    want = sum((cos(student, i, j) - cos(teacher, i, j)) ** 2 for i in range(batch) for j in range(batch)) / batch**2
    assert relational_distillation(student, teacher).item() == pytest.approx(want, abs=1e-5)
    rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    assert relational_distillation(3.0 * student @ rotation, student).item() == pytest.approx(
        0.0, rel=F32_REL, abs=1e-6
    )


def test_anchored_objective_terms_match_the_plain_losses(tiny_isbert) -> None:
    texts = ["a man runs", "the dog sleeps in the park", "hi", "red car"]
    tiny_isbert.train()
    features = tiny_isbert.preprocess(texts)
    for objective, plain in (
        ("is", isbert.MutualInformationLoss(tiny_isbert, estimator="infonce", critic="cosine", temperature=0.1)),
        ("simcse", isbert.SimCSELoss(tiny_isbert, temperature=0.05)),
    ):
        combined = AnchoredObjective(tiny_isbert, objective, estimator="infonce", critic="cosine", temperature=0.1)
        torch.manual_seed(1)
        got = combined([dict(features)]).item()
        torch.manual_seed(1)
        assert got == pytest.approx(plain([dict(features)]).item(), rel=F32_REL, abs=1e-6), objective
    both = AnchoredObjective(tiny_isbert, "is+simcse")
    torch.manual_seed(2)
    got = both([dict(features)]).item()
    torch.manual_seed(2)
    out = tiny_isbert(dict(features))
    want = mutual_information_loss(out["token_embeddings"], out["attention_mask"], out["sentence_embedding"])
    want = want + plain_simcse(out["sentence_embedding"], tiny_isbert(dict(features))["sentence_embedding"], 0.05)
    assert got == pytest.approx(want.item(), rel=F32_REL, abs=1e-6)


def test_distillation_anchor_is_zero_at_start_and_grows_with_drift(tiny_isbert) -> None:
    features = tiny_isbert.preprocess(["a man runs", "the dog sleeps", "hi there", "red car"])
    tiny_isbert.eval()  # no dropout: the student equals its frozen copy
    plain = AnchoredObjective(tiny_isbert, "is")
    anchored = AnchoredObjective(tiny_isbert, "is", anchor="distill", anchor_weight=10.0)
    assert anchored.teacher is not None and not any(p.requires_grad for p in anchored.teacher.parameters())
    assert anchored([dict(features)]).item() == pytest.approx(plain([dict(features)]).item(), rel=F32_REL, abs=1e-6)
    with torch.no_grad():
        for parameter in tiny_isbert[1].parameters():
            parameter.add_(torch.randn_like(parameter))
    assert anchored([dict(features)]).item() > plain([dict(features)]).item() + 1e-4
    assert anchored.teacher is not tiny_isbert and anchored.teacher[1] is not tiny_isbert[1]


def test_l2sp_anchor_is_the_squared_distance_to_the_start(tiny_isbert) -> None:
    features = tiny_isbert.preprocess(["a man runs", "the dog sleeps", "hi there"])
    tiny_isbert.eval()
    plain = AnchoredObjective(tiny_isbert, "is")
    anchored = AnchoredObjective(tiny_isbert, "is", anchor="l2sp", anchor_weight=0.5)
    assert anchored([dict(features)]).item() == pytest.approx(plain([dict(features)]).item(), rel=F32_REL, abs=1e-6)
    conv = tiny_isbert[1].convs[0].weight
    with torch.no_grad():
        conv.add_(0.1)
    expected_drift = 0.5 * 0.01 * conv.numel()
    gap = anchored([dict(features)]).item() - plain([dict(features)]).item()
    assert gap == pytest.approx(expected_drift, rel=1e-4)


def reference_excluded(
    local: torch.Tensor, lengths: list[int], sentence: torch.Tensor, estimator: str, critic: str, tau: float, r: int
) -> float:
    """Loop reference of ``exclude_radius``: positives against the mean of the local features beyond r positions."""

    def score(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(F.cosine_similarity(a, b, dim=0)) / tau if critic == "cosine" else float(torch.dot(a, b))

    positives, negatives, nce = [], [], []
    for b, n in enumerate(lengths):
        for t in range(n):
            far = [s for s in range(n) if abs(s - t) > r]
            row = [score(local[b, t], sentence[c]) for c in range(len(lengths))]
            negatives += [x for c, x in enumerate(row) if c != b]
            if far:
                row[b] = score(local[b, t], local[b, far].mean(0))
                positives.append(row[b])
                nce.append(row[b] - math.log(sum(math.exp(x) for x in row)))
    log2 = math.log(2.0)
    if estimator == "jsd":
        e_pos = sum(log2 - math.log1p(math.exp(-s)) for s in positives) / len(positives)
        return sum(math.log1p(math.exp(s)) - log2 for s in negatives) / len(negatives) - e_pos
    if estimator == "dv":
        return math.log(sum(math.exp(s) for s in negatives) / len(negatives)) - sum(positives) / len(positives)
    return -sum(nce) / len(nce)


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=7), min_size=2, max_size=5).filter(lambda ls: max(ls) >= 4),
    dim=st.integers(min_value=1, max_value=6),
    seed=st.integers(min_value=0, max_value=10_000),
    estimator=st.sampled_from(ESTIMATORS),
    critic=st.sampled_from(["dot", "cosine"]),
    radius=st.integers(min_value=0, max_value=2),
)
def test_exclude_radius_equals_a_loop_reference(lengths, dim, seed, estimator, critic, radius) -> None:
    local, mask, sentence = random_batch(lengths, dim, seed, pad_to=max(lengths) + 2)
    want = reference_excluded(local, lengths, sentence, estimator, critic, 0.5, radius)
    got = mutual_information_loss(local, mask, sentence, estimator, critic, 0.5, exclude_radius=radius).item()
    assert got == pytest.approx(want, rel=F32_REL, abs=1e-5)


def test_exclude_radius_removes_the_tokens_own_share() -> None:
    """One-hot tokens (a bag of words): with the paper's positives every token scores 1/T with its own sentence,
    purely from its own share of the mean; leaving itself out, the same tokens score 0."""
    local = torch.eye(6, dtype=torch.float64).view(2, 3, 6)  # 2 sentences of 3 distinct one-hot tokens
    mask = torch.ones(2, 3, dtype=torch.long)
    sentence = local.mean(1)
    paper = mutual_information_loss(local, mask, sentence, "dv")
    excluded = mutual_information_loss(local, mask, sentence, "dv", exclude_radius=0)
    assert paper.item() == pytest.approx(-1 / 3)  # log mean exp(0) - mean(1/3)
    assert excluded.item() == pytest.approx(0.0)


def test_exclude_radius_zero_is_accepted_and_negative_refused(tiny_isbert) -> None:
    """Kills losses-radius-zero-refused: 0 ("all but the token itself") is a documented setting, -1 is not."""
    from isbert.losses import AnchoredObjective, MutualInformationLoss

    assert MutualInformationLoss(tiny_isbert, exclude_radius=0).exclude_radius == 0
    assert AnchoredObjective(tiny_isbert, exclude_radius=0).exclude_radius == 0
    with pytest.raises(ValueError, match="exclude_radius"):
        MutualInformationLoss(tiny_isbert, exclude_radius=-1)
