"""TSDAE through sentence-transformers' DenoisingAutoEncoderLoss: the noise, the tied decoder, where it applies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from isbert.errors import IsbertError
from isbert.objectives import OBJECTIVES
from isbert.objectives.tsdae import delete_words, denoising_loss, with_deletion_noise
from isbert.training import TrainConfig
from isbert.training.models import build_baseline

words = st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=5), min_size=1, max_size=30)


@given(words, st.integers(0, 2**32 - 1))
def test_deletion_keeps_an_ordered_non_empty_subset_of_the_words(sentence: list[str], seed: int) -> None:
    noisy = delete_words(" ".join(sentence), np.random.default_rng(seed)).split()
    assert 1 <= len(noisy) <= len(sentence)
    remaining = iter(sentence)
    assert all(any(word == kept for word in remaining) for kept in noisy)  # a subsequence


def test_deletion_removes_about_the_papers_share_of_words() -> None:
    rng = np.random.default_rng(0)
    sentence = " ".join(f"w{i}" for i in range(10_000))
    kept = len(delete_words(sentence, rng).split()) / 10_000
    assert kept == pytest.approx(0.4, abs=0.02)


def test_noisy_twin_comes_first_and_the_original_second() -> None:
    from datasets import Dataset

    dataset = with_deletion_noise(Dataset.from_dict({"text": ["a b c d e f g h", "one two three"]}), seed=1)
    row = dataset[0]
    assert list(row) == ["noisy", "text"]
    assert row["text"] == "a b c d e f g h" and set(row["noisy"].split()) <= set(row["text"].split())


def _pooled(backbone: Path, layers: int | None = None):
    return build_baseline(TrainConfig(model=str(backbone), encoder_layers=layers, device="cpu"), "mean")


@pytest.mark.parametrize("layers", [None, 1])
def test_decoder_is_tied_to_the_encoder_and_as_deep(tiny_backbone: Path, layers: int | None) -> None:
    model = _pooled(tiny_backbone, layers)
    loss = denoising_loss(model)
    decoder = loss.decoder.bert
    depth = 2 if layers is None else layers
    assert len(decoder.encoder.layer) == depth
    encoder = model[0].auto_model
    assert encoder.embeddings.word_embeddings.weight is decoder.embeddings.word_embeddings.weight
    assert encoder.encoder.layer[depth - 1].attention.self.query.weight is (
        decoder.encoder.layer[depth - 1].attention.self.query.weight
    )


def test_loss_of_a_batch_is_finite_and_reaches_the_encoder(tiny_backbone: Path) -> None:
    model = _pooled(tiny_backbone)
    loss = denoising_loss(model)
    texts = ["a man walks the dog in the park", "the red car is fast"]
    noisy = [delete_words(t, np.random.default_rng(0)) for t in texts]
    value = loss([model.preprocess(noisy), model.preprocess(texts)], None)
    assert torch.isfinite(value)
    value.backward()
    assert model[0].auto_model.encoder.layer[0].attention.self.query.weight.grad is not None


def test_backbone_without_layers_is_refused_in_one_line(tiny_backbone: Path) -> None:
    with pytest.raises(IsbertError, match="needs transformer layers") as error:
        denoising_loss(_pooled(tiny_backbone, 0))
    assert "\n" not in str(error.value)


def test_word_vectors_are_refused_in_one_line(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, WordEmbeddings
    from sentence_transformers.sentence_transformer.modules.tokenizer import WhitespaceTokenizer

    vocab = ["a", "man", "dog"]
    words = WordEmbeddings(WhitespaceTokenizer(vocab), torch.randn(3, 4))
    model = SentenceTransformer(modules=[words, Pooling(4)], device="cpu")
    with pytest.raises(IsbertError, match="WordEmbeddings") as error:
        denoising_loss(model)
    assert "\n" not in str(error.value)


def test_applicability_is_known_from_the_settings(tiny_backbone: Path, tmp_path: Path) -> None:
    assert OBJECTIVES["tsdae"].not_applicable(str(tiny_backbone), None) is None
    assert OBJECTIVES["tsdae"].not_applicable(str(tiny_backbone), 1) is None
    assert "encoder_layers = 0" in (OBJECTIVES["tsdae"].not_applicable(str(tiny_backbone), 0) or "")
    (tmp_path / "modules.json").write_text("[]")  # a sentence-transformers folder with no transformers config
    assert "no layers" in (OBJECTIVES["tsdae"].not_applicable(str(tmp_path), None) or "")


def test_a_sentence_s_damage_depends_on_the_seed_and_the_sentence_only() -> None:
    """No generator state: a resumed run (which re-reads the batch the Trainer had fetched ahead) damages alike."""
    from datasets import Dataset

    texts = [" ".join(f"w{i}-{j}" for j in range(30)) for i in range(6)]
    alone = [with_deletion_noise(Dataset.from_dict({"text": [t]}), seed=3)[0]["noisy"] for t in texts]
    together = with_deletion_noise(Dataset.from_dict({"text": texts[::-1]}), seed=3)[:]["noisy"][::-1]
    assert alone == together
    assert with_deletion_noise(Dataset.from_dict({"text": texts}), seed=4)[:]["noisy"] != alone
