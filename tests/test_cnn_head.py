"""Which CNN head isbert builds: sentence-transformers' own ``CNN`` where it computes what ``MaskedCNN`` does, and
``MaskedCNN`` where the stock module cannot (ReLU, special tokens excluded); models saved before still load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
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


@needs_masking_stock
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(sentences, min_size=2, max_size=6))
def test_stock_head_gives_the_masked_heads_vectors_and_loss(tiny_backbone: Path, batch: list[str]) -> None:
    torch.manual_seed(0)
    stock = isbert.build(str(tiny_backbone), out_channels=4, activation="none", device="cpu").eval()
    masked = _masked_twin(stock).eval()
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


@pytest.mark.parametrize("bad", [{"kernel_sizes": [2]}, {"out_channels": 0}, {"activation": "tanh"}])
def test_both_heads_check_their_arguments_alike(bad: dict[str, object]) -> None:
    arguments: dict = {"activation": "none", **bad, "special_token_ids": [0]}
    for include_special_tokens in (True, False):
        with pytest.raises(ValueError):
            local_feature_cnn(8, **arguments, include_special_tokens=include_special_tokens)


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
