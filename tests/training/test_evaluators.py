"""The trainer's STSb dev evaluator scores exactly as the evaluation harness (one STS scoring function)."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from isbert.errors import IsbertError
from isbert.evaluation.sts import evaluate_sts
from isbert.evaluation.tasks import StsSubset, StsTask
from isbert.losses import mutual_information_loss
from isbert.training import TrainConfig
from isbert.training.selection.evaluators import (
    STSB_KEY,
    CombinedEvaluator,
    LabelFreeEvaluator,
    StsbDevEvaluator,
    alignment,
    load_stsb_dev,
    uniformity,
)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1: the reference for alignment and uniformity."""
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class FixedEncoder:
    """Each text's embedding is drawn once from a seeded generator (repeated texts share theirs)."""

    def __init__(self, texts: list[str], dim: int = 8) -> None:
        rng = np.random.default_rng(0)
        self.table = {text: rng.normal(size=dim).astype(np.float32) for text in dict.fromkeys(texts)}

    def encode(self, sentences: list[str], **kwargs: object) -> np.ndarray:
        return np.stack([self.table[text] for text in sentences])


def test_dev_evaluator_equals_harness_scoring() -> None:
    rng = np.random.default_rng(1)
    s1 = [f"left {i}" for i in range(40)]
    s2 = [f"right {i % 25}" for i in range(40)]  # repeated sentences, as in STSb
    scores = rng.uniform(0, 5, size=40)
    model = FixedEncoder(s1 + s2)
    dev = StsbDevEvaluator(s1, s2, scores)(model)
    task = StsTask("STSBenchmark", {"STSBenchmark": StsSubset(s1, s2, scores)})
    harness = evaluate_sts(task, model.encode)
    assert set(dev) == {STSB_KEY}
    assert dev[STSB_KEY] == pytest.approx(harness["spearman"] / 100, abs=1e-12)


def test_a_collapsed_model_is_logged_as_nan_and_never_selected() -> None:
    """Constant predictions have no Spearman: the harness refuses them; training logs NaN and keeps going."""
    import math

    from isbert.training.selection import SelectionCallback

    s1, s2 = ["a", "b", "c"], ["d", "e", "f"]

    class Constant:
        def encode(self, sentences: list[str], **kwargs: object) -> np.ndarray:
            return np.ones((len(sentences), 4), dtype=np.float32)

    value = StsbDevEvaluator(s1, s2, np.array([1.0, 2.0, 3.0]))(Constant())[STSB_KEY]
    assert math.isnan(value)
    assert not SelectionCallback._better("stsb", value, None)


class NoisyGold:
    """Embeddings whose pair cosine follows the gold score more closely as ``noise`` shrinks (2-D, angle = score)."""

    def __init__(self, s1: list[str], s2: list[str], scores: np.ndarray, noise: float) -> None:
        rng = np.random.default_rng(3)
        angles = (5 - scores) / 5 * np.pi / 2 + noise * rng.normal(size=len(scores))
        self.table = {a: np.array([1.0, 0.0]) for a in s1}
        self.table |= {b: np.array([np.cos(t), np.sin(t)]) for b, t in zip(s2, angles, strict=True)}

    def encode(self, sentences: list[str], **kwargs: object) -> np.ndarray:
        return np.stack([self.table[text] for text in sentences]).astype(np.float32)


def test_the_verdict_compares_the_saved_step_with_the_start_on_the_same_pairs() -> None:
    rng = np.random.default_rng(2)
    s1, s2 = [f"l{i}" for i in range(300)], [f"r{i}" for i in range(300)]
    scores = rng.uniform(0, 5, size=300)
    dev = StsbDevEvaluator(s1, s2, scores)
    start = dev(NoisyGold(s1, s2, scores, noise=1.5), steps=0)[STSB_KEY]
    trained = dev(NoisyGold(s1, s2, scores, noise=0.2), steps=200)[STSB_KEY]
    assert sorted(dev.similarities) == [0, 200] and trained > start
    sentence = dev.verdict(200)
    assert sentence is not None
    assert sentence.startswith(
        f"verdict: the saved model (step 200) beats the starting model by {100 * (trained - start):.2f}"
    )
    assert sentence.endswith("beyond noise; use the saved model (step 200).")
    assert (
        dev.verdict(0) == "verdict: no step beat the starting model on STSb dev; training did not help: use the start."
    )
    assert dev.verdict(100) is None and dev.verdict(None) is None  # not evaluated here (a resumed run)
    dev(NoisyGold(s1, s2, scores, noise=1.5), steps=300)  # the same model again: within noise
    assert "within noise" in (dev.verdict(300) or "")


class Recording(FixedEncoder):
    """A FixedEncoder that keeps each call's texts and keyword arguments."""

    def __init__(self, texts: list[str]) -> None:
        super().__init__(texts)
        self.calls: list[tuple[list[str], dict[str, object]]] = []

    def encode(self, sentences: list[str], **kwargs: object) -> np.ndarray:
        self.calls.append((list(sentences), kwargs))
        return super().encode(sentences)


def test_the_dev_set_is_encoded_once_per_distinct_sentence_in_its_batches_without_a_bar() -> None:
    """A second progress bar would break the training bar's line; the batch size is the evaluator's."""
    s1, s2 = ["a", "b", "a", "c"], ["d", "a", "e", "d"]
    model = Recording(s1 + s2)
    StsbDevEvaluator(s1, s2, np.array([1.0, 2.0, 3.0, 4.0]), batch_size=3)(model)
    assert model.calls == [(["a", "b", "c", "d", "e"], {"batch_size": 3, "convert_to_numpy": True,
                                                         "show_progress_bar": False})]  # fmt: skip


def test_no_verdict_when_the_start_was_not_evaluated_in_this_process() -> None:
    s1, s2 = [f"l{i}" for i in range(30)], [f"r{i}" for i in range(30)]
    scores = np.random.default_rng(4).uniform(0, 5, size=30)
    dev = StsbDevEvaluator(s1, s2, scores)
    dev(NoisyGold(s1, s2, scores, noise=0.2), steps=200)  # a resumed run: step 0 was evaluated before the restart
    assert dev.verdict(200) is None


def test_the_dev_set_is_read_from_the_given_data_dir_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    given = tmp_path / "given" / "sts" / "STSBenchmark"
    given.mkdir(parents=True)
    (given / "sts-dev.csv").write_text("g\tf\t2012\t0\t4.5\tA man runs.\tA man is running.\n", encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv("ISBERT_DATA_DIR", str(tmp_path / "elsewhere"))
    dev = load_stsb_dev(tmp_path / "given")
    assert (dev.sentences1, dev.sentences2, list(dev.scores)) == (["A man runs."], ["A man is running."], [4.5])
    missing = tmp_path / "elsewhere" / "sts" / "STSBenchmark" / "sts-dev.csv"
    with pytest.raises(IsbertError) as refused:
        load_stsb_dev(None)
    assert str(refused.value) == f"STSb dev file not found: {missing} (needed by --dev stsb)"


def test_alignment_normalizes_each_vector_not_each_dimension() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(6, 3)) * [1, 10, 100], rng.normal(size=(6, 3))
    expected = ((unit_rows(a) - unit_rows(b)) ** 2).sum(axis=1).mean()
    assert alignment(torch.tensor(a), torch.tensor(b)) == pytest.approx(expected, rel=1e-5)
    assert alignment(torch.tensor(b), torch.tensor(a)) == pytest.approx(expected, rel=1e-5)


def test_the_label_free_defaults_are_isbert_trains() -> None:
    """A library user's criterion is the one `isbert train` selects on by default."""
    defaults = {k: p.default for k, p in inspect.signature(LabelFreeEvaluator).parameters.items()}
    config = TrainConfig(corpus=["c.txt"])
    assert defaults["batch_size"] == config.eval_batch_size and defaults["temperature"] == config.temperature
    assert (defaults["estimator"], defaults["critic"], defaults["exclude_radius"]) == (
        config.estimator, config.critic, config.exclude_radius
    )  # fmt: skip


def test_the_label_free_defaults_act_as_isbert_train_s(tiny_isbert) -> None:
    """The same defaults in behaviour, not only in the signature: 70 sentences span two batches of 64 (the batches are
    the MI loss's negatives), and a cosine critic divides by the default temperature."""
    texts = [f"{['a man', 'the dog'][i % 2]} {['runs', 'walks', 'reads'][i % 3]} number {i}" for i in range(70)]
    config = TrainConfig(corpus=["c.txt"])
    explicit = {"batch_size": config.eval_batch_size, "temperature": config.temperature}
    for critic in ("dot", "cosine"):
        by_default = LabelFreeEvaluator(texts, seed=3, critic=critic)(tiny_isbert)
        assert by_default == pytest.approx(LabelFreeEvaluator(texts, seed=3, critic=critic, **explicit)(tiny_isbert))
    assert LabelFreeEvaluator(texts, seed=3)(tiny_isbert) != pytest.approx(
        LabelFreeEvaluator(texts, seed=3, batch_size=config.eval_batch_size + 1)(tiny_isbert)
    )  # the batch size is seen: 70 sentences split 64 + 6, or 65 + 5


def test_the_label_free_metrics_cover_every_held_out_sentence_once(tiny_isbert) -> None:
    """Uniformity, the MI loss and the zero fraction equal the same quantities computed on each batch by hand."""
    texts = ["a man walks his dog", "the dog runs", "a red car is parked outside", "she reads", "rain"]
    evaluator = LabelFreeEvaluator(texts, seed=3, batch_size=2, exclude_radius=1, critic="cosine", temperature=0.5)
    metrics = evaluator(tiny_isbert)
    tiny_isbert.eval()
    with torch.no_grad():
        outs = [tiny_isbert(tiny_isbert.preprocess(texts[i : i + 2])) for i in range(0, 5, 2)]
        losses = [
            float(mutual_information_loss(o["token_embeddings"], o["attention_mask"], o["sentence_embedding"], "jsd",
                                          "cosine", 0.5, 1)) * 2
            for o in outs[:2]  # the last batch holds one sentence: no negatives
        ]  # fmt: skip
        local = torch.cat([o["token_embeddings"][o["attention_mask"].bool()] for o in outs])
        plain = torch.cat([o["sentence_embedding"] for o in outs])
    assert metrics["heldout_uniformity"] == pytest.approx(uniformity(plain), rel=1e-5)
    assert metrics["heldout_mi_loss"] == pytest.approx(sum(losses) / 4, rel=1e-5)
    assert metrics["heldout_zero_fraction"] == pytest.approx(float((local == 0).float().mean()))
    assert plain.shape[0] == 5


def test_uniformity_of_vectors_of_any_length_and_of_too_few() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 3)) * [1, 10, 100]  # two vectors (the fewest), not unit length
    unit = unit_rows(x)
    assert uniformity(torch.tensor(x)) == pytest.approx(-2 * ((unit[0] - unit[1]) ** 2).sum(), rel=1e-5)
    assert uniformity(torch.tensor([[2.0], [-3.0], [1.0]])) == pytest.approx(np.log((1 + 2 * np.exp(-8)) / 3), rel=1e-6)
    with pytest.raises(ValueError, match=r"^uniformity needs at least 2 vectors$"):
        uniformity(torch.ones(1, 4))


def test_each_evaluator_names_its_metric_and_direction_for_sentence_transformers(tiny_isbert) -> None:
    """sentence-transformers' model card and SequentialEvaluator read ``primary_metric`` and ``greater_is_better``."""
    label_free = LabelFreeEvaluator(["a man walks", "the dog runs", "she reads"], seed=0)
    dev = StsbDevEvaluator(["a", "b", "c"], ["d", "e", "f"], np.array([1.0, 2.0, 3.0]))
    assert label_free.primary_metric in label_free(tiny_isbert) and label_free.greater_is_better is False
    assert dev.primary_metric in dev(FixedEncoder(list("abcdef"))) and dev.greater_is_better is True
    combined = CombinedEvaluator([dev, label_free], label_free.primary_metric, False)
    assert (combined.primary_metric, combined.greater_is_better) == (label_free.primary_metric, False)
