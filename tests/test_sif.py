"""SIF, uSIF and all-but-the-top (isbert.sif, isbert.sif_model, `isbert baseline`) against plain numpy references
on a tiny GloVe table and the tiny random BERT cut to 0 layers; saved folders load without remote code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sentence_transformers import SentenceTransformer

import isbert
from isbert import glove, sif
from isbert.cli import main
from isbert.errors import IsbertError
from isbert.sif_model import add_sif, fit_baseline, save_baseline

# Frequency-sorted, as GloVe's vocabulary is (Zipf ranks follow this order).
WORDS = ["the", "a", "man", "dog", "is", "walks", "runs", "park", "red", "car", "in", "old", "cat", "sleeps", "ball"]
CORPUS = [
    "the man walks",
    "the dog runs",
    "a man runs",
    "the red car",
    "the old cat sleeps",
    "a dog is in the park",
    "the ball",
    "the cat walks",
    "an unknownword here",
]
SENTENCES = ["the man walks in the park", "a red ball", "old dog sleeps", "cat"]


@pytest.fixture
def tiny_glove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """``offline-glove`` resolves to a 15-word, 6-d table in a fresh cache; returns the table with its padding row."""
    vectors = np.random.default_rng(3).standard_normal((len(WORDS), 6)).astype(np.float32)
    monkeypatch.setenv("ISBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(glove, "packaged_vectors", lambda: (list(WORDS), vectors))
    monkeypatch.setattr(glove, "vectors_tag", lambda: "sif-tiny-table")
    return np.concatenate([np.zeros((1, 6)), vectors.astype(np.float64)])


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------- numpy references
def _ids(sentence: str) -> list[int]:
    index = {word: i + 1 for i, word in enumerate(WORDS)}  # row 0 is the padding token
    return [index[w] for w in sentence.lower().split() if w in index]


def _weighted_means(table: np.ndarray, weights: np.ndarray, sentences: list[str]) -> np.ndarray:
    rows = []
    for sentence in sentences:
        ids = _ids(sentence)  # a sentence with no known word embeds as zeros (Pooling's clamped divisor)
        rows.append(sum(weights[i] * table[i] for i in ids) / sum(weights[i] for i in ids) if ids else table[0] * 0)
    return np.array(rows)


def _probabilities() -> np.ndarray:
    counts = np.zeros(len(WORDS) + 1)
    for sentence in CORPUS:
        for i in _ids(sentence):
            counts[i] += 1
    return counts / counts.sum()


def _top_directions(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    return vt[:k], s[:k]


def sif_reference(table: np.ndarray, a: float, k: int, p: np.ndarray | None = None) -> np.ndarray:
    """Arora et al.: v_s = weighted mean of a / (a + p(w)) v_w, then x - U^T U x, U from the corpus' vectors."""
    weights = a / (a + (_probabilities() if p is None else p))
    u, _ = _top_directions(_weighted_means(table, weights, CORPUS), k)
    x = _weighted_means(table, weights, SENTENCES)
    return x - x @ u.T @ u


def usif_reference(table: np.ndarray, m: int) -> tuple[np.ndarray, float]:
    """Ethayarajh: unit vectors, weight a / (a/2 + p(w)) with a from alpha, Z = V/2 and n; piecewise removal."""
    norms = np.linalg.norm(table, axis=1, keepdims=True)
    unit = np.divide(table, norms, out=np.zeros_like(table), where=norms > 0)
    p = _probabilities()
    vocab_size = np.count_nonzero(p)
    n = sum(len(_ids(s)) for s in CORPUS) / len(CORPUS)
    alpha = np.count_nonzero(p > 1 - (1 - 1 / vocab_size) ** n) / vocab_size
    a = (1 - alpha) / (alpha * vocab_size / 2)
    weights = a / (a / 2 + p)
    u, s = _top_directions(_weighted_means(unit, weights, CORPUS), m)
    lambdas = s**2 / (s**2).sum()
    x = _weighted_means(unit, weights, SENTENCES)
    for i in range(m):
        x = x - lambdas[i] * np.outer(x @ u[i], u[i])
    return x, a


def _plain_load(folder: Path) -> SentenceTransformer:
    """The folder as sentence-transformers alone loads it: no remote code, no isbert class."""
    return SentenceTransformer(str(folder), device="cpu", trust_remote_code=False)


# ------------------------------------------------------------------------------------------ against numpy
@pytest.mark.parametrize("a", [1e-3, 1e-4])
def test_sif_folder_matches_the_numpy_reference(tiny_glove, corpus: Path, tmp_path: Path, a: float) -> None:
    settings = sif.SifSettings("sif", a=a, components=2)
    fitted = fit_baseline("offline-glove", corpus, settings, device="cpu")
    folder = save_baseline(fitted.model, tmp_path / "sif")
    got = _plain_load(folder).encode(SENTENCES, convert_to_numpy=True)
    np.testing.assert_allclose(got, sif_reference(tiny_glove, a, 2), rtol=1e-4, atol=1e-5)
    types = [module["type"] for module in json.loads((folder / "modules.json").read_text())]
    assert all(t.startswith("sentence_transformers.") for t in types), types
    assert [t.rsplit(".", 1)[1] for t in types] == ["WordEmbeddings", "WordWeights", "Pooling", "Dense"]
    assert fitted.report.seen == len({i for s in CORPUS for i in _ids(s)})


def test_sif_with_zipf_probabilities_skips_the_padding_row(tiny_glove, corpus: Path) -> None:
    ranks = np.arange(1, len(WORDS) + 1, dtype=np.float64)
    p = np.concatenate([[0.0], (1 / ranks) / (1 / ranks).sum()])
    settings = sif.SifSettings("sif", probabilities="zipf")
    got = fit_baseline("offline-glove", corpus, settings, device="cpu").model.encode(SENTENCES)
    np.testing.assert_allclose(got, sif_reference(tiny_glove, sif.DEFAULT_A, 1, p), rtol=1e-4, atol=1e-5)


def test_usif_folder_matches_the_numpy_reference(tiny_glove, corpus: Path, tmp_path: Path) -> None:
    fitted = fit_baseline("offline-glove", corpus, sif.SifSettings("usif", components=3), device="cpu")
    expected, a = usif_reference(tiny_glove, 3)
    assert fitted.report.a == pytest.approx(a)  # finite: the corpus makes alpha > 0, so the formula is exercised
    got = _plain_load(save_baseline(fitted.model, tmp_path / "usif")).encode(SENTENCES)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_removal_makes_every_output_orthogonal_to_the_fitted_directions(tiny_glove, corpus: Path) -> None:
    model = fit_baseline("offline-glove", corpus, sif.SifSettings("sif", components=2), device="cpu").model
    weights = sif.sif_weights(_probabilities(), sif.DEFAULT_A)
    directions, _ = _top_directions(_weighted_means(tiny_glove, weights, CORPUS), 2)
    outputs = model.encode([*SENTENCES, *CORPUS[:-1], "the man is a dog"])
    assert np.abs(outputs @ directions.T).max() < 1e-5
    assert np.linalg.norm(outputs, axis=1).min() > 1e-3  # not trivially zero


def test_abtt_table_has_zero_mean_and_nothing_along_the_removed_directions(tiny_glove) -> None:
    model = fit_baseline("offline-glove", None, sif.SifSettings("abtt", abtt=2), device="cpu").model
    table = model[0].emb_layer.weight.detach().double().numpy()
    assert not table[0].any()  # the padding row stays zero
    words = tiny_glove[1:]
    centred = words - words.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(table[1:].mean(axis=0), 0, atol=1e-6)
    assert np.abs(table[1:] @ vt[:2].T).max() < 1e-5
    np.testing.assert_allclose(table[1:], centred - centred @ vt[:2].T @ vt[:2], atol=1e-5)
    assert [type(m).__name__ for m in model] == ["WordEmbeddings", "Pooling"]


def test_sif_on_abtt_vectors_weights_the_processed_table(tiny_glove, corpus: Path) -> None:
    fitted = fit_baseline("offline-glove", corpus, sif.SifSettings("sif", abtt=sif.ABTT_AUTO), device="cpu")
    assert fitted.report.abtt == sif.default_abtt_components(6) == 1
    words = tiny_glove[1:] - tiny_glove[1:].mean(axis=0)
    _, _, vt = np.linalg.svd(words, full_matrices=False)
    processed = np.concatenate([np.zeros((1, 6)), words - words @ vt[:1].T @ vt[:1]])
    np.testing.assert_allclose(fitted.model.encode(SENTENCES), sif_reference(processed, sif.DEFAULT_A, 1), atol=1e-5)


def test_round_trip_gives_identical_embeddings(tiny_glove, corpus: Path, tmp_path: Path) -> None:
    model = fit_baseline("offline-glove", corpus, sif.SifSettings("sif"), device="cpu").model
    folder = save_baseline(model, tmp_path / "m")
    before = model.encode(SENTENCES)
    np.testing.assert_array_equal(_plain_load(folder).encode(SENTENCES), before)
    np.testing.assert_array_equal(isbert.load(folder, device="cpu").encode(SENTENCES), before)


# --------------------------------------------------------------------------------- a 0-layer transformer
def test_sif_on_a_0_layer_transformer_matches_a_reference(tiny_backbone: Path, corpus: Path, tmp_path: Path) -> None:
    settings = sif.SifSettings("sif", components=1)
    fitted = fit_baseline(str(tiny_backbone), corpus, settings, encoder_layers=0, device="cpu")
    encoder = fitted.model[0]
    tokens = encoder.tokenizer(CORPUS)["input_ids"]  # word pieces, [CLS] and [SEP] included as they occur
    counts = np.bincount([i for ids in tokens for i in ids], minlength=len(encoder.tokenizer))
    weights = sif.DEFAULT_A / (sif.DEFAULT_A + counts / counts.sum())

    def pooled(texts: list[str]) -> np.ndarray:
        token_vectors = SentenceTransformer(modules=[encoder], device="cpu").encode(
            texts, output_value="token_embeddings", convert_to_numpy=False
        )
        rows = []
        for ids, vectors in zip(encoder.tokenizer(texts)["input_ids"], token_vectors, strict=True):
            w = weights[ids][:, None]
            rows.append((w * vectors.double().numpy()).sum(axis=0) / w.sum())
        return np.array(rows)

    u, _ = _top_directions(pooled(CORPUS), 1)
    x = pooled(SENTENCES)
    expected = x - x @ u.T @ u
    folder = save_baseline(fitted.model, tmp_path / "sif-bert")
    np.testing.assert_allclose(_plain_load(folder).encode(SENTENCES), expected, rtol=1e-4, atol=1e-5)
    assert json.loads((folder / "config.json").read_text())["num_hidden_layers"] == 0


def test_abtt_on_a_0_layer_transformer_changes_its_input_embeddings(tiny_backbone: Path) -> None:
    model = fit_baseline(str(tiny_backbone), None, sif.SifSettings("abtt"), encoder_layers=0, device="cpu").model
    table = model[0].auto_model.get_input_embeddings().weight.detach().double().numpy()
    np.testing.assert_allclose(table.mean(axis=0), 0, atol=1e-5)


def test_a_transformer_with_layers_is_refused_with_what_to_do(tiny_backbone: Path, corpus: Path) -> None:
    for layers in (None, 1):
        with pytest.raises(IsbertError, match="--encoder-layers 0") as error:
            fit_baseline(str(tiny_backbone), corpus, sif.SifSettings("sif"), encoder_layers=layers, device="cpu")
        assert "\n" not in str(error.value) and "depend on the context" in str(error.value)


def test_zipf_needs_a_frequency_sorted_word_vector_vocabulary(tiny_backbone: Path, corpus: Path) -> None:
    settings = sif.SifSettings("sif", probabilities="zipf")
    with pytest.raises(IsbertError, match="word-piece vocabulary is not sorted by frequency"):
        fit_baseline(str(tiny_backbone), corpus, settings, encoder_layers=0, device="cpu")


# --------------------------------------------------------------------------------------- SIF after training
def test_add_sif_splices_weights_into_an_isbert_model(tiny_backbone: Path, corpus: Path, tmp_path: Path) -> None:
    model = isbert.build(str(tiny_backbone), out_channels=8, encoder_layers=0, max_seq_length=16, device="cpu")
    spliced = add_sif(model, corpus).model
    names = [type(m).__name__ for m in spliced]
    assert names == ["Transformer", "MaskedCNN", "WordWeights", "Pooling", "Dense"]

    def cnn_features(texts: list[str]) -> dict:
        features = model.preprocess(texts)
        with torch.no_grad():
            return model[1](model[0](features))

    corpus_features = cnn_features(CORPUS)
    counts = np.bincount(corpus_features["input_ids"][model.preprocess(CORPUS)["attention_mask"].bool()].numpy(),
                         minlength=len(model[0].tokenizer))  # fmt: skip
    weights = torch.tensor(sif.sif_weights(counts / counts.sum(), sif.DEFAULT_A))

    def pooled(features: dict) -> np.ndarray:
        w = weights[features["input_ids"]] * features["attention_mask"]
        summed = (features["token_embeddings"].double() * w[..., None]).sum(dim=1)
        return (summed / w.sum(dim=1, keepdim=True)).numpy()

    u, _ = _top_directions(pooled(corpus_features), 1)
    x = pooled(cnn_features(SENTENCES))
    np.testing.assert_allclose(spliced.encode(SENTENCES), x - x @ u.T @ u, rtol=1e-4, atol=1e-5)
    folder = save_baseline(spliced, tmp_path / "is-sif")
    np.testing.assert_allclose(isbert.load(folder, device="cpu").encode(SENTENCES), spliced.encode(SENTENCES))


def test_add_sif_refuses_a_contextual_encoder_and_a_second_weighting(tiny_isbert, corpus: Path) -> None:
    with pytest.raises(IsbertError, match="--encoder-layers 0"):
        add_sif(tiny_isbert, corpus)


def test_add_sif_works_on_an_isbert_model_over_word_vectors(tiny_glove, corpus: Path) -> None:
    model = isbert.build("offline-glove", out_channels=4, device="cpu")
    spliced = add_sif(model, corpus).model
    assert [type(m).__name__ for m in spliced][2:] == ["WordWeights", "Pooling", "Dense"]
    assert np.isfinite(spliced.encode(SENTENCES)).all()
    with pytest.raises(IsbertError, match="already weights its tokens"):
        add_sif(spliced, corpus)


# ------------------------------------------------------------------------------------------------ errors
def test_empty_corpus_and_a_corpus_of_unknown_words_name_the_file(tiny_glove, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("zebra quokka\nwombat\n", encoding="utf-8")
    for path, message in ((empty, "the corpus is empty"), (unknown, "is in the vocabulary")):
        with pytest.raises(IsbertError, match=message) as error:
            fit_baseline("offline-glove", path, sif.SifSettings("sif"), device="cpu")
        assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_settings_refuse_options_that_do_not_apply() -> None:
    with pytest.raises(IsbertError, match="a applies to SIF only"):
        sif.NAMED_BASELINES["usif"].with_options(a=1e-3)
    with pytest.raises(IsbertError, match="components do not apply"):
        sif.NAMED_BASELINES["abtt"].with_options(components=1)
    with pytest.raises(IsbertError, match="ABTT combines with sif only"):
        sif.SifSettings("usif", abtt=1)
    assert sif.NAMED_BASELINES["sif-abtt"].with_options(a=1e-4, components=2).removed == 2


# ------------------------------------------------------------------------------------------------ properties
probabilities = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(st.lists(probabilities, min_size=2, max_size=30), st.floats(min_value=1e-6, max_value=1.0))
def test_sif_weights_are_in_0_1_and_fall_as_p_rises(p: list[float], a: float) -> None:
    order = np.sort(np.array(p))
    weights = sif.sif_weights(order, a)
    assert ((weights > 0) & (weights <= 1)).all()
    assert (np.diff(weights) <= 0).all()
    usif = sif.usif_weights(order, a)
    assert ((usif > 0) & (usif <= 2)).all() and (np.diff(usif) <= 0).all()


@given(st.integers(min_value=2, max_value=8), st.integers(min_value=0, max_value=2), st.integers(0, 2**32 - 1))
def test_removal_leaves_nothing_along_the_directions(dim: int, k: int, seed: int) -> None:
    x = np.random.default_rng(seed).standard_normal((12, dim))
    directions = sif.principal_directions(x, min(k, dim))
    removed = x @ sif.removal_map(directions.vectors).T
    assert np.abs(removed @ directions.vectors.T).max(initial=0.0) < 1e-9
    assert 0.0 <= directions.explained <= 1.0 + 1e-12


@given(st.integers(min_value=5, max_value=500), st.floats(min_value=1.0, max_value=40.0))
def test_usif_parameter_is_positive_on_zipf_probabilities(vocab_size: int, length: float) -> None:
    a = sif.usif_parameter(sif.zipf_probabilities(vocab_size + 1, skip=1), length)
    assert a > 0


# ------------------------------------------------------------------------------------------------ command line
def test_cli_fits_saves_and_prints_one_line(tiny_glove, corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "sif-cli"
    assert main(["baseline", "sif", "offline-glove", "-i", str(corpus), "-o", str(out), "--a", "1e-4"]) == 0
    printed = capsys.readouterr().out.strip()
    assert "\n" not in printed and "a=0.0001" in printed and "1 common component(s) removed" in printed
    assert "of their words in the vocabulary" in printed
    np.testing.assert_allclose(
        _plain_load(out).encode(SENTENCES), sif_reference(tiny_glove, 1e-4, 1), rtol=1e-4, atol=1e-5
    )
    # the same folder again: refused without --overwrite, replaced with it
    assert main(["baseline", "usif", "offline-glove", "-i", str(corpus), "-o", str(out), "--components", "2"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["baseline", "usif", "offline-glove", "-i", str(corpus), "-o", str(out), "--overwrite"]) == 0
    assert main(["baseline", "abtt", "offline-glove", "-o", str(tmp_path / "abtt")]) == 0
    assert "ABTT removed 1 component(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sif", "{backbone}", "-i", "{corpus}"], "--encoder-layers 0"),
        (["sif", "{backbone}", "-i", "{empty}", "--encoder-layers", "0"], "the corpus is empty"),
        (["usif", "{backbone}", "-i", "{corpus}", "--encoder-layers", "0", "--probabilities", "zipf"], "Zipf"),
        (["sif", "{backbone}", "-i", "{missing}"], "input file not found"),
    ],
)
def test_cli_errors_are_one_line_with_exit_2(
    tiny_backbone: Path, corpus: Path, tmp_path: Path, capsys, args: list[str], message: str
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    paths = {"backbone": tiny_backbone, "corpus": corpus, "empty": empty, "missing": tmp_path / "nope.txt"}
    argv = ["baseline", *(a.format(**paths) for a in args), "-o", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("isbert baseline: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_sample_default_is_the_library_one() -> None:
    from isbert import sif_cli, sif_model

    assert sif_cli.SAMPLE_DEFAULT == sif_model.SAMPLE_SIZE
