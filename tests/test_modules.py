"""The masked CNN: equal to a per-sentence reference, and blind to padding and batch composition."""

from __future__ import annotations

import numpy as np
import pytest
import sentence_transformers
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import CNN, Pooling
from tiny_models import WORDS

from isbert.modules import MaskedCNN, stock_cnn_masks_padding
from isbert.released import released_model


def reference_local_features(cnn: MaskedCNN, tokens: torch.Tensor, length: int) -> torch.Tensor:
    """One sentence on its own, unpadded: convolve its `length` real tokens, nothing else."""
    x = tokens[:length].T.unsqueeze(0)  # (1, dim, length)
    out = torch.cat([conv(x) for conv in cnn.convs], dim=1)[0].T
    return torch.relu(out) if cnn.activation == "relu" else out


@pytest.mark.parametrize("activation", ["relu", "none"])
def test_masked_cnn_equals_per_sentence_reference(activation: str) -> None:
    torch.manual_seed(0)
    cnn = MaskedCNN(6, out_channels=4, kernel_sizes=[1, 3, 5], activation=activation)  # type: ignore[arg-type]
    lengths = [5, 2, 7, 1]
    tokens = torch.randn(4, 7, 6)
    mask = torch.zeros(4, 7, dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
    tokens[mask == 0] = 100.0  # whatever the encoder leaves at padded positions
    out = cnn({"token_embeddings": tokens.clone(), "attention_mask": mask})
    for b, n in enumerate(lengths):
        torch.testing.assert_close(out["token_embeddings"][b, :n], reference_local_features(cnn, tokens[b], n))
        assert torch.all(out["token_embeddings"][b, n:] == 0)
    assert out["token_embeddings"].shape == (4, 7, 12)


def test_special_tokens_can_be_left_out_of_the_local_tokens() -> None:
    cnn = MaskedCNN(3, out_channels=2, include_special_tokens=False, special_token_ids=[101, 102, 0])
    input_ids = torch.tensor([[101, 7, 8, 102, 0], [101, 9, 102, 0, 0]])
    mask = (input_ids != 0).long()
    out = cnn({"token_embeddings": torch.randn(2, 5, 3), "attention_mask": mask, "input_ids": input_ids})
    assert out["attention_mask"].tolist() == [[0, 1, 1, 0, 0], [0, 1, 0, 0, 0]]
    assert torch.all(out["token_embeddings"][0, [0, 3, 4]] == 0)


def test_left_out_special_tokens_still_feed_the_windows_as_context() -> None:
    """With include_special_tokens=False, [CLS]/[SEP] are not local tokens but stay in their neighbours' windows."""
    torch.manual_seed(0)
    kept = MaskedCNN(3, out_channels=2, kernel_sizes=[3], activation="none")
    left_out = MaskedCNN(3, out_channels=2, kernel_sizes=[3], activation="none", include_special_tokens=False,
                         special_token_ids=[101, 102])  # fmt: skip
    left_out.load_state_dict(kept.state_dict())
    input_ids = torch.tensor([[101, 7, 8, 102]])
    tokens = torch.randn(1, 4, 3)
    mask = torch.ones(1, 4, dtype=torch.long)
    full = kept({"token_embeddings": tokens.clone(), "attention_mask": mask})["token_embeddings"]
    out = left_out({"token_embeddings": tokens.clone(), "attention_mask": mask, "input_ids": input_ids})
    # Word positions 1 and 2 see [CLS] and [SEP] in their 3-token windows: the same features as with them kept.
    torch.testing.assert_close(out["token_embeddings"][0, 1:3], full[0, 1:3])
    # And they differ from windows where the special tokens were zeroed out, so the test can tell the two apart.
    blanked = tokens.clone()
    blanked[0, [0, 3]] = 0
    without_context = kept({"token_embeddings": blanked, "attention_mask": mask})["token_embeddings"]
    assert not torch.allclose(without_context[0, 1:3], full[0, 1:3])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernel_sizes": [2]}, "odd positive"),
        ({"kernel_sizes": []}, "odd positive"),
        ({"activation": "tanh"}, "activation must be"),
        ({"out_channels": 0}, "out_channels"),
        ({"include_special_tokens": False}, "special_token_ids"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MaskedCNN(8, **kwargs)


sentences = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(sentences, min_size=2, max_size=6), seed=st.integers(0, 1000))
def test_embedding_does_not_depend_on_the_batch(tiny_isbert: SentenceTransformer, batch: list[str], seed: int) -> None:
    tiny_isbert.eval()
    alone = np.stack([tiny_isbert.encode([text], convert_to_numpy=True)[0] for text in batch])
    together = tiny_isbert.encode(batch, batch_size=len(batch), convert_to_numpy=True)
    np.testing.assert_allclose(together, alone, atol=2e-5, rtol=1e-4)
    order = np.random.default_rng(seed).permutation(len(batch))
    shuffled = tiny_isbert.encode([batch[i] for i in order], batch_size=len(batch), convert_to_numpy=True)
    np.testing.assert_allclose(shuffled, together[order], atol=2e-5, rtol=1e-4)


def test_released_code_leaks_padding_where_masked_cnn_does_not(tiny_isbert: SentenceTransformer) -> None:
    """The flaw this module fixes, against the released IS-BERT code's CNN (which does not change): it sees padding
    inside its windows, so a short sentence's vector depends on the longest sentence of its batch."""
    tiny_isbert.eval()
    tiny_isbert[1].activation = "none"  # the released CNN has no activation: compare in the same setting
    released = released_model(tiny_isbert)
    short, long = "hi", "the old man walks his small dog in the green park with many people"
    leak = released.encode([short, long])[0] - released.encode([short])[0]
    assert np.abs(leak).max() > 1e-3
    fixed = tiny_isbert.encode([short, long])[0] - tiny_isbert.encode([short])[0]
    assert np.abs(fixed).max() < 1e-5
    np.testing.assert_allclose(released.encode([short])[0], tiny_isbert.encode([short])[0], atol=1e-5)


def _stock_copy(masked: MaskedCNN) -> CNN:
    stock = CNN(masked.in_embedding_dimension, out_channels=masked.out_channels, kernel_sizes=masked.kernel_sizes)
    stock.load_state_dict(masked.state_dict())
    return stock


def test_stock_cnn_padding_behaviour_by_release(tiny_isbert: SentenceTransformer) -> None:
    """sentence-transformers 6.0-6.2's CNN leaked padding like the released code; from 6.3 on it masks it. This
    test states which release it describes, so an upgrade (or a pin to an older one) cannot turn it into a false
    claim."""
    tiny_isbert.eval()
    stock = _stock_copy(tiny_isbert[1])
    stock_model = SentenceTransformer(modules=[tiny_isbert[0], stock, Pooling(stock.get_embedding_dimension())])
    short, long = "hi", "the old man walks his small dog in the green park with many people"
    leak = np.abs(stock_model.encode([short, long])[0] - stock_model.encode([short])[0]).max()
    if stock_cnn_masks_padding():
        assert leak < 1e-5, f"sentence-transformers {sentence_transformers.__version__}'s CNN should mask padding"
    else:
        assert leak > 1e-3, f"sentence-transformers {sentence_transformers.__version__}'s CNN leaks padding"
    assert stock_cnn_masks_padding("6.3.0") and not stock_cnn_masks_padding("6.2.1")
