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


# --- Behaviour tests written for mutmut's survivors of losses.py (issue 31) ----------------------------------------

TEXTS = ["a man runs", "the dog sleeps in the park", "hi", "red car"]
LONG_TEXTS = [
    "a man is running in the park with his dog",
    "the old dog sleeps under the big tree today",
    "she reads a long book about the sea",
    "red cars are fast on the open road",
]
SIMCSE_OR_WEIGHT = "simcse_temperature must be positive and anchor_weight not negative"


@pytest.fixture(scope="module")
def shared_isbert(tiny_backbone):
    """One tiny IS-BERT for the tests that neither train it nor change its weights or dtype."""
    return isbert.build(str(tiny_backbone), out_channels=8, max_seq_length=32, device="cpu")


def test_config_dicts_are_exact_and_rebuild_the_same_loss(shared_isbert) -> None:
    """Kills renamed keys, a value not stored (None) and wrong defaults in get_config_dict, which sentence-transformers
    writes into the saved model's card and which must rebuild the same loss: the defaults are the paper's (JSD, dot,
    temperature 1; SimCSE 0.05) and no anchor (weight 0)."""
    model = shared_isbert
    mi_default = {"estimator": "jsd", "critic": "dot", "temperature": 1.0, "exclude_radius": None}
    anchored_default = {
        **mi_default,
        "objective": "is",
        "simcse_temperature": 0.05,
        "anchor": "none",
        "anchor_weight": 0.0,
    }
    anchored = {
        "objective": "is+simcse",
        "estimator": "infonce",
        "critic": "cosine",
        "temperature": 0.2,
        "exclude_radius": 1,
        "simcse_temperature": 0.1,
        "anchor": "l2sp",
        "anchor_weight": 0.5,
    }
    cases = [
        (isbert.MutualInformationLoss(model), mi_default),
        (isbert.MutualInformationLoss(model, critic="cosine"), {**mi_default, "critic": "cosine"}),
        (
            isbert.MutualInformationLoss(model, "dv", "cosine", 0.2, 3),
            {"estimator": "dv", "critic": "cosine", "temperature": 0.2, "exclude_radius": 3},
        ),
        (isbert.SimCSELoss(model), {"temperature": 0.05}),
        (isbert.SimCSELoss(model, 0.1), {"temperature": 0.1}),
        (AnchoredObjective(model), anchored_default),
        (AnchoredObjective(model, **anchored), anchored),
    ]
    for loss, want in cases:
        assert loss.get_config_dict() == want, type(loss).__name__
        assert type(loss)(model, **want).get_config_dict() == want, type(loss).__name__


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda m: isbert.MutualInformationLoss(m, "nce"),
            "estimator must be one of ('jsd', 'infonce', 'dv'), got 'nce'",
        ),
        (lambda m: isbert.MutualInformationLoss(m, critic="l2"), "critic must be one of ('dot', 'cosine'), got 'l2'"),
        (lambda m: isbert.MutualInformationLoss(m, temperature=0.0), "temperature must be positive, got 0.0"),
        (
            lambda m: isbert.MutualInformationLoss(m, exclude_radius=-1),
            "exclude_radius must be None or at least 0, got -1",
        ),
        (lambda m: isbert.SimCSELoss(m, temperature=0), "temperature must be positive, got 0"),
        (lambda m: AnchoredObjective(m, "bert"), "objective must be one of ('is', 'simcse', 'is+simcse'), got 'bert'"),
        (lambda m: AnchoredObjective(m, anchor="ewc"), "anchor must be one of ('none', 'distill', 'l2sp'), got 'ewc'"),
        (lambda m: AnchoredObjective(m, exclude_radius=-1), "exclude_radius must be None or at least 0, got -1"),
        (lambda m: AnchoredObjective(m, critic="cosine", temperature=-1.0), "temperature must be positive, got -1.0"),
        (lambda m: AnchoredObjective(m, simcse_temperature=0.0), SIMCSE_OR_WEIGHT),
        (lambda m: AnchoredObjective(m, simcse_temperature=float("nan")), SIMCSE_OR_WEIGHT),
        (lambda m: AnchoredObjective(m, anchor="l2sp", anchor_weight=-0.5), SIMCSE_OR_WEIGHT),
    ],
    ids=[
        "mi-estimator",
        "mi-critic",
        "mi-temperature",
        "mi-radius",
        "simcse-temperature",
        "objective",
        "anchor",
        "anchored-radius",
        "anchored-temperature",
        "anchored-simcse-temperature-0",
        "anchored-simcse-temperature-nan",
        "anchored-negative-weight",
    ],
)
def test_construction_errors_are_exact_one_line_messages(shared_isbert, make, message: str) -> None:
    """Kills a garbled or missing construction check: AnchoredObjective not checking exclude_radius, its
    ``simcse_temperature > 0 or anchor_weight >= 0`` check turned into ``and`` or ``>= 0`` (a later, other message or
    none), and each message reworded (``XX...XX``, upper case, None)."""
    with pytest.raises(ValueError) as error:
        make(shared_isbert)
    assert str(error.value) == message


def test_batch_size_messages_and_two_sentences_are_enough(shared_isbert) -> None:
    """Kills garbled one-sentence-batch messages, and SimCSE refusing a batch of exactly two sentences (``< 2`` moved
    to ``<= 2`` or ``< 3``): two sentences are one positive and one negative each."""
    local, mask, sentence = random_batch([4], 3, seed=0)
    with pytest.raises(ValueError) as error:
        mutual_information_loss(local, mask, sentence)
    assert str(error.value) == (
        "the mutual-information loss needs at least 2 sentences in a batch: the other sentences' vectors are the "
        "negatives (got a batch of 1)"
    )
    model = shared_isbert.eval()
    simcse = isbert.SimCSELoss(model)
    with pytest.raises(ValueError) as error:
        simcse([model.preprocess(["alone"])])
    assert str(error.value) == "SimCSE needs at least 2 sentences in a batch: the others are the negatives"
    pair = model.preprocess(TEXTS[:2])
    u = model(dict(pair))["sentence_embedding"]
    assert simcse([dict(pair)]).item() == pytest.approx(plain_simcse(u, u, 0.05), rel=F32_REL, abs=1e-6)


def test_simcse_temperature_reaches_the_term_and_the_ranking_loss_is_a_complete_mnrl(shared_isbert) -> None:
    """Kills the SimCSE temperature not reaching MNRL (no ``scale=``: MNRL's own default 20 is 1/0.05, so only another
    temperature shows it), AnchoredObjective building its SimCSE term without ``simcse_temperature``, a default other
    than the paper's 0.05, and MNRL built on None instead of the model: the documented relation (SimCSE is MNRL with
    the sentence in both columns) must hold through MNRL's own forward."""
    model = shared_isbert.eval()  # no dropout: both views are equal; the loss still depends on the temperature
    features = model.preprocess(TEXTS)
    u = model(dict(features))["sentence_embedding"].detach()
    assert isbert.losses.simcse_ranking_loss(model).scale == 20.0 and isbert.SimCSELoss(model).ranking.scale == 20.0
    for temperature in (0.05, 0.1):
        want = plain_simcse(u, u, temperature)
        simcse = isbert.SimCSELoss(model, temperature)
        anchored = AnchoredObjective(model, "simcse", simcse_temperature=temperature)
        assert simcse([dict(features)]).item() == pytest.approx(want, rel=F32_REL, abs=1e-6)
        assert anchored([dict(features)]).item() == pytest.approx(want, rel=F32_REL, abs=1e-6)
        for ranking in (simcse.ranking, anchored.simcse):
            got = ranking([dict(features), dict(features)], None).item()
            assert got == pytest.approx(want, rel=F32_REL, abs=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda m: isbert.MutualInformationLoss(m, "infonce", exclude_radius=1),
        lambda m: AnchoredObjective(m, "is", estimator="infonce", exclude_radius=1),
    ],
    ids=["MutualInformationLoss", "AnchoredObjective"],
)
def test_loss_modules_pass_exclude_radius_on(shared_isbert, make) -> None:
    """Kills a loss module that stores exclude_radius (and reports it in its config) but computes the paper's
    positives: forward must pass it to mutual_information_loss."""
    model = shared_isbert.eval()
    features = model.preprocess(LONG_TEXTS)
    out = model(dict(features))
    args = (out["token_embeddings"], out["attention_mask"], out["sentence_embedding"], "infonce")
    want = mutual_information_loss(*args, exclude_radius=1).item()
    assert want != pytest.approx(mutual_information_loss(*args).item(), abs=1e-3)  # the radius matters here
    assert make(model)([dict(features)]).item() == pytest.approx(want, rel=F32_REL, abs=1e-6)


class _Echo(torch.nn.Module):
    """A stand-in model whose output is its input: the loss's handling of text columns on exact local features."""

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return features


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_text_columns_with_more_tokens_than_dimensions_are_padded_not_cut(estimator: str) -> None:
    """Kills padding the token axis of several columns to the feature width (``shape[2]``) instead of the longest
    column (``shape[1]``): sentences longer than the width lost their last tokens; and kills using only the first
    column (``len(outputs) != 1``)."""
    generator = torch.Generator().manual_seed(5)
    first = torch.randn(1, 5, 2, generator=generator, dtype=torch.float64)  # 5 tokens, vectors of width 2
    second = torch.randn(2, 3, 2, generator=generator, dtype=torch.float64)
    second_mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    columns = [
        {"token_embeddings": first, "attention_mask": torch.ones(1, 5, dtype=torch.long)},
        {"token_embeddings": second, "attention_mask": second_mask},
    ]
    for column in columns:
        column["sentence_embedding"] = column["token_embeddings"].sum(1) / column["attention_mask"].sum(1, True)
    local = torch.zeros(3, 5, 2, dtype=torch.float64)
    local[0], local[1:, :3] = first[0], second
    sentence = torch.cat([column["sentence_embedding"] for column in columns])
    got = isbert.MutualInformationLoss(_Echo(), estimator)([dict(column) for column in columns]).item()
    want = reference_loss(local.float().double(), [5, 3, 2], sentence.float().double(), estimator)
    assert got == pytest.approx(want, rel=F32_REL, abs=1e-6)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_loss_is_float32_whatever_the_mask_dtype_and_the_default_dtype(estimator: str) -> None:
    """Kills masks built in another dtype than the float32 scores (the token mask left in the caller's dtype, the
    own-sentence diagonal in torch's default dtype): a float64 mask, or torch.set_default_dtype(torch.float64),
    turned the loss into float64."""
    local, mask, sentence = random_batch([3, 5, 2], 4, seed=6)
    want = mutual_information_loss(local, mask, sentence, estimator).item()
    results = [mutual_information_loss(local, other, sentence, estimator) for other in (mask.double(), mask.bool())]
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        results.append(mutual_information_loss(local, mask, sentence, estimator))
    finally:
        torch.set_default_dtype(default)
    for loss in results:
        assert loss.dtype == torch.float32 and loss.item() == pytest.approx(want, rel=F32_REL, abs=1e-6)


def test_anchored_objective_loss_is_float32_whatever_the_model_dtype(tiny_isbert) -> None:
    """Kills the running sum started in the model's dtype (``new_zeros`` without ``dtype=torch.float32``): a float64
    model's IS objective came back in float64 (mutual_information_loss computes in float32); the bf16 case shows
    that every term is float32 there already."""
    tiny_isbert.eval()
    features = tiny_isbert.preprocess(TEXTS)
    for dtype, objective in ((torch.float64, "is"), (torch.bfloat16, "is+simcse")):
        loss = AnchoredObjective(tiny_isbert, objective).to(dtype)([dict(features)])
        assert next(tiny_isbert.parameters()).dtype == dtype
        assert loss.dtype == torch.float32 and torch.isfinite(loss), (dtype, objective)


def _drift(module: torch.nn.Module, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))


def test_anchor_is_off_at_weight_zero_and_for_anchor_none(tiny_isbert) -> None:
    """Kills the anchor's on/off conditions: weight 0 (the default; "0 = off") must neither deep-copy the model as a
    teacher nor copy its weights (``> 0`` moved to ``>= 0``, a default weight of 1), and anchor "none" with a weight
    must add nothing (``anchor == "l2sp" and ...`` turned into ``or`` recorded the weights and added an L2-SP term)."""
    for anchor, weight in (("none", 0.0), ("none", 1.0), ("distill", 0.0), ("l2sp", 0.0)):
        objective = AnchoredObjective(tiny_isbert, anchor=anchor, anchor_weight=weight)
        assert objective.teacher is None and objective.initial == {}, (anchor, weight)
    assert AnchoredObjective(tiny_isbert, anchor="distill").teacher is None  # the default weight is 0
    tiny_isbert.eval()
    features = tiny_isbert.preprocess(TEXTS)
    plain, none = AnchoredObjective(tiny_isbert), AnchoredObjective(tiny_isbert, anchor="none", anchor_weight=1.0)
    _drift(tiny_isbert[1])
    assert none([dict(features)]).item() == plain([dict(features)]).item()


def test_distillation_anchor_adds_weight_times_relational_distillation(tiny_isbert) -> None:
    """Kills the distillation anchor switched on only for weights above 1 (``> 0`` moved to ``> 1``): with weight 0.5
    the loss is the IS term plus exactly 0.5 * relational_distillation(student now, model at the start). A bounded IS
    term (InfoNCE, cosine critic): the dot critic's loss on drifted weights is large enough to hide the anchor in its
    float32 rounding."""
    tiny_isbert.eval()
    features = tiny_isbert.preprocess(TEXTS)
    start = tiny_isbert(dict(features))["sentence_embedding"].detach()
    is_term = {"estimator": "infonce", "critic": "cosine"}
    plain = AnchoredObjective(tiny_isbert, **is_term)
    anchored = AnchoredObjective(tiny_isbert, **is_term, anchor="distill", anchor_weight=0.5)
    _drift(tiny_isbert)
    distance = relational_distillation(tiny_isbert(dict(features))["sentence_embedding"], start).item()
    assert distance > 1e-4
    gap = anchored([dict(features)]).item() - plain([dict(features)]).item()
    assert gap == pytest.approx(0.5 * distance, rel=1e-3, abs=1e-6)


def test_moving_the_objective_moves_the_model_and_the_l2sp_anchor(tiny_isbert) -> None:
    """Kills AnchoredObjective._apply's bugs: ``.to(dtype)`` must reach the trained model (``recurse=False`` left it
    behind) and the recorded starting weights (dropped, or fn(None)), and must work without an L2-SP anchor
    (``initial = None`` crashed it); after the move the anchor is still weight * ||theta - theta_0||^2."""
    tiny_isbert.eval()
    anchored = AnchoredObjective(tiny_isbert, anchor="l2sp", anchor_weight=0.5)
    plain = AnchoredObjective(tiny_isbert)
    assert anchored.to(torch.float64) is anchored and plain.to(torch.float64) is plain
    assert {p.dtype for p in tiny_isbert.parameters()} == {torch.float64}
    params = dict(tiny_isbert.named_parameters())
    assert anchored.initial.keys() == params.keys()
    for name, start in anchored.initial.items():
        assert start.dtype == torch.float64 and torch.equal(start, params[name]) and start is not params[name]
    conv = tiny_isbert[1].convs[0].weight
    with torch.no_grad():
        conv.add_(0.1)
    gap = anchored([tiny_isbert.preprocess(TEXTS)]).item() - plain([tiny_isbert.preprocess(TEXTS)]).item()
    assert gap == pytest.approx(0.5 * 0.01 * conv.numel(), rel=1e-6)


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 9])
def test_window_sum_is_the_sum_over_the_window(radius: int) -> None:
    """Kills wrong window bounds of exclude_radius's cumulative sum (the lower bound at t + r instead of t - r read
    past the end for r >= 2 and summed one element otherwise): exact sums of small integers against a loop. Fails
    fast where the hypothesis reference test spent its shrinking budget (mutmut timed that mutant out)."""
    from isbert.losses import _window_sum

    x = torch.arange(24, dtype=torch.float64).view(2, 6, 2) ** 2
    want = torch.zeros_like(x)
    for t in range(6):
        want[:, t] = x[:, max(0, t - radius) : t + radius + 1].sum(1)
    assert torch.equal(_window_sum(x, radius), want)


def test_critics_and_their_default_temperature_on_a_hand_example() -> None:
    """Kills a default temperature other than 1 (local_global_scores and mutual_information_loss with critic="cosine"
    and no temperature): the scores are exactly l.g (dot, which ignores the temperature) and cos(l, g) / tau."""
    from isbert.losses import local_global_scores

    local = torch.tensor([[[3.0, 4.0], [1.0, 0.0]], [[0.0, 2.0], [1.0, 1.0]]])  # (B=2, T=2, D=2)
    sentence = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    dot = torch.tensor([[[3.0, 8.0], [1.0, 0.0]], [[0.0, 4.0], [1.0, 2.0]]])
    half = math.sqrt(0.5)
    cosine = torch.tensor([[[0.6, 0.8], [1.0, 0.0]], [[0.0, 1.0], [half, half]]])
    torch.testing.assert_close(local_global_scores(local, sentence), dot)
    torch.testing.assert_close(local_global_scores(local, sentence, "dot", 0.5), dot)
    torch.testing.assert_close(local_global_scores(local, sentence, "cosine"), cosine)
    torch.testing.assert_close(local_global_scores(local, sentence, "cosine", 0.5), cosine / 0.5)
    mask = torch.ones(2, 2, dtype=torch.long)
    for estimator in ESTIMATORS:
        want = reference_loss(F.normalize(local, dim=-1), [2, 2], F.normalize(sentence, dim=-1), estimator)
        got = mutual_information_loss(local, mask, sentence, estimator, "cosine").item()
        assert got == pytest.approx(want, rel=F32_REL, abs=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_loss_on_cuda_equals_the_loss_on_cpu(estimator: str) -> None:
    """Kills helper tensors created on the CPU (``torch.eye(..., device=None)``): on a GPU the loss then fails with a
    device mismatch. Skipped without CUDA, where mutmut's ``device=None`` mutants are equivalent."""
    local, mask, sentence = random_batch([3, 5, 2, 4], 6, seed=4)
    for radius in (None, 1):
        cpu = mutual_information_loss(local, mask, sentence, estimator, exclude_radius=radius)
        gpu = mutual_information_loss(local.cuda(), mask.cuda(), sentence.cuda(), estimator, exclude_radius=radius)
        assert gpu.device.type == "cuda" and gpu.item() == pytest.approx(cpu.item(), rel=F32_REL, abs=1e-6)
