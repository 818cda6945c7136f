"""SIF word weights inside IS-BERT training (``--word-weights``): where the fixed weights sit, what they are, that
they do not learn, that the model loads without isbert code, and that a backbone with context is refused."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_training import write_corpus
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import CNN, Dense, Pooling, WordWeights

import isbert
from isbert.errors import IsbertError
from isbert.sif_model import add_sif
from isbert.training import TrainConfig, train
from isbert.training.models import build_model

TINY = {"max_seq_length": 16, "out_channels": 8, "show_progress": False, "device": "cpu", "activation": "none"}


def _config(tmp_path: Path, backbone: Path, where: str, **extra: object) -> TrainConfig:
    corpus = write_corpus(tmp_path / "c.txt", 120)
    return TrainConfig(model=str(backbone), corpus=[str(corpus)], output=str(tmp_path / "run"), encoder_layers=0,
                       word_weights=where, **TINY, **extra)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize(
    ("where", "types"), [("sif-pool", [CNN, WordWeights, Pooling]), ("sif-input", [WordWeights, CNN, Pooling])]
)
def test_weights_sit_where_asked_and_equal_sif_of_the_corpus(
    tmp_path: Path, tiny_backbone: Path, where: str, types: list[type]
) -> None:
    config = _config(tmp_path, tiny_backbone, where, sif_a=1e-2)
    model = build_model(config)
    assert [type(m) for m in list(model)[1:]] == types
    layer = next(m for m in model if isinstance(m, WordWeights))
    # Reference: token ids counted by hand with the tokenizer, special tokens included as they occur.
    counts: Counter[int] = Counter()
    for line in Path(config.corpus[0]).read_text().splitlines():
        if line.strip():
            counts.update(model.tokenizer(line.strip(), truncation=True, max_length=16)["input_ids"])
    total = sum(counts.values())
    weights = layer.emb_layer.weight.detach().squeeze(1).numpy()
    for token_id, count in counts.items():
        assert weights[token_id] == pytest.approx(1e-2 / (1e-2 + count / total), rel=1e-5)
    assert not layer.emb_layer.weight.requires_grad


def test_trained_model_keeps_its_weights_and_loads_without_isbert(tmp_path: Path, tiny_backbone: Path) -> None:
    config = _config(tmp_path, tiny_backbone, "sif-pool", max_steps=4, batch_size=8, lr=1e-2, logging_steps=2)
    start = next(m for m in build_model(config) if isinstance(m, WordWeights)).emb_layer.weight.detach().clone()
    train(config)
    plain = SentenceTransformer(str(tmp_path / "run"), device="cpu")  # no trust_remote_code
    layer = next(m for m in plain if isinstance(m, WordWeights))
    torch.testing.assert_close(layer.emb_layer.weight, start)
    np.testing.assert_allclose(plain.encode(["a man walks"]), isbert.load(tmp_path / "run").encode(["a man walks"]))


def test_a_backbone_with_context_is_refused(tmp_path: Path, tiny_backbone: Path) -> None:
    config = _config(tmp_path, tiny_backbone, "sif-pool")
    config.encoder_layers = None
    with pytest.raises(IsbertError, match="context"):
        build_model(config)


def test_sif_after_training_a_weighted_model_removes_directions_only(tmp_path: Path, tiny_backbone: Path) -> None:
    config = _config(tmp_path, tiny_backbone, "sif-pool")
    model = build_model(config).eval()
    fitted = add_sif(model, config.corpus).model
    assert [type(m) for m in list(fitted)[1:]] == [CNN, WordWeights, Pooling, Dense]
    assert sum(isinstance(m, WordWeights) for m in fitted) == 1
    direction = fitted[-1].linear.weight.detach().numpy()  # I - u u^T
    u = np.linalg.eigh(np.eye(len(direction)) - direction)[1][:, -1]
    texts = ["a man walks", "the red car is very fast"]
    np.testing.assert_allclose(fitted.encode(texts) @ u, 0, atol=1e-4)
    np.testing.assert_allclose(
        fitted.encode(texts), model.encode(texts) - np.outer(model.encode(texts) @ u, u), atol=1e-4
    )
