"""Which CNN head isbert builds: sentence-transformers' own ``CNN`` where it computes what ``MaskedCNN`` does, and
``MaskedCNN`` where the stock module cannot (ReLU, special tokens excluded); models saved before still load."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import CNN, Pooling
from tiny_models import WORDS

import isbert
import isbert.modules
from isbert.losses import MutualInformationLoss
from isbert.modules import MaskedCNN, is_cnn_head, local_feature_cnn, stock_cnn_masks_padding

FIXTURES = Path(__file__).parent / "fixtures"
sentences = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join)
needs_masking_stock = pytest.mark.skipif(not stock_cnn_masks_padding(), reason="sentence-transformers < 6.3 leaks")


def _masked_twin(model: SentenceTransformer) -> SentenceTransformer:
    """The same encoder and convolution weights under isbert's MaskedCNN (linear, special tokens included)."""
    stock = model[1]
    masked = MaskedCNN(stock.in_embedding_dimension, stock.out_channels, stock.kernel_sizes, activation="none")
    masked.load_state_dict(stock.state_dict())
    return SentenceTransformer(modules=[model[0], masked, Pooling(masked.get_embedding_dimension())], device="cpu")


@needs_masking_stock
def test_linear_head_with_special_tokens_is_the_stock_cnn(tiny_backbone: Path) -> None:
    model = isbert.build(str(tiny_backbone), out_channels=4, activation="none", device="cpu")
    assert type(model[1]) is CNN


@pytest.fixture(scope="module")
def linear_heads(tiny_backbone: Path) -> tuple[SentenceTransformer, SentenceTransformer]:
    """The linear model isbert builds (stock head) and its MaskedCNN twin, built once: a build that fails does so in
    the fixture, not in every example that hypothesis shrinks."""
    torch.manual_seed(0)
    stock = isbert.build(str(tiny_backbone), out_channels=4, activation="none", device="cpu").eval()
    return stock, _masked_twin(stock).eval()


@needs_masking_stock
@settings(max_examples=15, deadline=None)
@given(batch=st.lists(sentences, min_size=2, max_size=6))
def test_stock_head_gives_the_masked_heads_vectors_and_loss(
    linear_heads: tuple[SentenceTransformer, SentenceTransformer], batch: list[str]
) -> None:
    """On any batch, the stock head gives MaskedCNN's sentence vectors and mutual-information loss."""
    stock, masked = linear_heads
    np.testing.assert_allclose(stock.encode(batch), masked.encode(batch), atol=1e-5)
    features = stock.preprocess(batch)
    with torch.no_grad():
        losses = [MutualInformationLoss(m)([dict(features)]).item() for m in (stock, masked)]
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


@needs_masking_stock
def test_stock_head_folder_loads_without_trust_remote_code(tiny_backbone: Path, tmp_path: Path) -> None:
    model = isbert.build(str(tiny_backbone), out_channels=4, activation="none", device="cpu").eval()
    isbert.save(model, tmp_path / "m")
    types = [entry["type"] for entry in json.loads((tmp_path / "m" / "modules.json").read_text())]
    assert not any(t.startswith("isbert") for t in types) and is_cnn_head(types[1])
    plain = SentenceTransformer(str(tmp_path / "m"), device="cpu")  # no trust_remote_code
    np.testing.assert_array_equal(plain.encode(["a man runs", "hi"]), model.encode(["a man runs", "hi"]))


def test_relu_and_excluded_special_tokens_keep_the_masked_cnn(tiny_backbone: Path) -> None:
    """Why MaskedCNN stays: the stock module has no activation, and pools every real token ([CLS]/[SEP] included)."""
    torch.manual_seed(0)
    relu = isbert.build(str(tiny_backbone), out_channels=4, activation="relu", device="cpu").eval()
    assert type(relu[1]) is MaskedCNN
    features = relu.preprocess(["a man runs in the park"])
    local = relu(dict(features))["token_embeddings"]
    assert (local >= 0).all() and (_as_stock(relu).eval()(dict(features))["token_embeddings"] < 0).any()

    torch.manual_seed(0)
    words_only = isbert.build(str(tiny_backbone), out_channels=4, activation="none", include_special_tokens=False)
    assert type(words_only[1]) is MaskedCNN
    text = ["a man runs in the park"]
    stock = SentenceTransformer(modules=[words_only[0], _as_stock(words_only)[1], Pooling(12)], device="cpu")
    assert np.abs(words_only.eval().encode(text) - stock.eval().encode(text)).max() > 1e-3


def _as_stock(model: SentenceTransformer) -> SentenceTransformer:
    masked = model[1]
    stock = CNN(masked.in_embedding_dimension, out_channels=masked.out_channels, kernel_sizes=masked.kernel_sizes)
    stock.load_state_dict(masked.state_dict())
    return SentenceTransformer(modules=[model[0], stock, Pooling(stock.get_embedding_dimension())], device="cpu")


def test_a_release_that_leaks_gets_the_masked_cnn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isbert.modules, "stock_cnn_masks_padding", lambda: False)
    assert type(local_feature_cnn(8, out_channels=2, activation="none")) is MaskedCNN


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"kernel_sizes": [2]}, "kernel_sizes must be odd positive integers, got [2]"),
        ({"kernel_sizes": []}, "kernel_sizes must be odd positive integers, got []"),
        ({"out_channels": 0}, "out_channels must be positive, got 0"),
        ({"activation": "tanh"}, "activation must be one of ('relu', 'none'), got 'tanh'"),
    ],
)
def test_both_heads_check_their_arguments_alike(bad: dict[str, object], message: str) -> None:
    """The stock head (linear, special tokens included) and MaskedCNN refuse the same arguments with the same
    one-line message (catches a check the stock path skips or words differently)."""
    arguments: dict = {"activation": "none", **bad, "special_token_ids": [0]}
    for include_special_tokens in (True, False):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            local_feature_cnn(8, **arguments, include_special_tokens=include_special_tokens)


@pytest.mark.parametrize("activation", ["relu", "none"])
def test_one_filter_per_window_is_accepted_by_both_heads(activation: str) -> None:
    """out_channels=1 is the smallest valid width (catches the bound tightened to ``<= 1`` or ``< 2``)."""
    head = local_feature_cnn(8, out_channels=1, kernel_sizes=[1, 3], activation=activation)  # type: ignore[arg-type]
    assert head.get_embedding_dimension() == 2


def test_default_head_is_the_papers_masked_relu_cnn() -> None:
    """Without arguments: MaskedCNN, ReLU, 256 filters per 1/3/5-token window, 768-d (catches a changed default
    width or activation, which would silently build another model or refuse the default)."""
    head = local_feature_cnn(8)
    assert type(head) is MaskedCNN
    assert head.get_config_dict() == {
        "in_embedding_dimension": 8,
        "out_channels": 256,
        "kernel_sizes": [1, 3, 5],
        "activation": "relu",
        "include_special_tokens": True,
        "special_token_ids": [],
    }
    assert head.get_embedding_dimension() == 768


@needs_masking_stock
@settings(max_examples=20, deadline=None)
@given(
    dim=st.integers(1, 6),
    out_channels=st.integers(1, 5),
    kernel_sizes=st.lists(st.sampled_from([1, 3, 5, 7]), min_size=1, max_size=3),
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=3),
)
def test_stock_head_has_the_asked_shape_and_the_masked_heads_features(
    dim: int, out_channels: int, kernel_sizes: list[int], lengths: list[int]
) -> None:
    """The stock head gets the asked filters and windows (not the stock defaults 256 and 1/3/5) and, with the same
    weights, the same features as MaskedCNN at every real token of a padded batch."""
    torch.manual_seed(len(lengths))
    head = local_feature_cnn(dim, out_channels=out_channels, kernel_sizes=kernel_sizes, activation="none")
    assert type(head) is CNN
    config = head.get_config_dict()
    assert (config["in_embedding_dimension"], config["out_channels"], config["kernel_sizes"]) == (
        dim,
        out_channels,
        kernel_sizes,
    )
    assert head.get_embedding_dimension() == out_channels * len(kernel_sizes)
    masked = MaskedCNN(dim, out_channels, kernel_sizes, activation="none")
    masked.load_state_dict(head.state_dict())
    mask = torch.tensor([[int(j < n) for j in range(max(lengths))] for n in lengths])
    tokens = torch.randn(len(lengths), max(lengths), dim)
    with torch.no_grad():
        stock_out = head({"token_embeddings": tokens.clone(), "attention_mask": mask})["token_embeddings"]
        masked_out = masked({"token_embeddings": tokens.clone(), "attention_mask": mask})["token_embeddings"]
    real = mask.bool()
    torch.testing.assert_close(stock_out[real], masked_out[real])


def test_a_model_saved_with_the_masked_linear_cnn_still_loads() -> None:
    """A folder written by isbert 0.1.0 before the stock head was used (MaskedCNN, linear): same vectors as then."""
    expected = json.loads((FIXTURES / "isbert-0.1.0-masked-linear.expected.json").read_text())
    model = isbert.load(FIXTURES / "isbert-0.1.0-masked-linear", device="cpu")
    assert type(model[1]) is MaskedCNN
    np.testing.assert_allclose(model.encode(expected["texts"]), np.array(expected["embeddings"]), atol=1e-5)


def test_cnn_head_types_across_releases() -> None:
    assert is_cnn_head("isbert.modules.MaskedCNN")
    assert is_cnn_head("sentence_transformers.sentence_transformer.modules.cnn.CNN")
    assert is_cnn_head("sentence_transformers.models.CNN")  # sentence-transformers before 5
    assert not is_cnn_head("sentence_transformers.sentence_transformer.modules.Pooling")
    assert not is_cnn_head("evil.CNN")
