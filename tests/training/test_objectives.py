"""Training options of the experiments: truncated encoders, what is trained, SimCSE, anchors, both selections."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers_training import (
    TINY,
    assert_resumed_from,
    ctrl_c_at,
    latest_checkpoint_step,
    log_records,
    parameter_digest,
    write_corpus,
)

import isbert
from isbert.errors import IsbertError
from isbert.model import truncate_encoder
from isbert.training import TrainConfig, TrainingInterrupted, train
from isbert.training.models import build_baseline


@pytest.mark.parametrize("layers", [0, 1, 2])
def test_truncated_encoder_equals_the_full_models_hidden_state(tiny_backbone: Path, layers: int) -> None:
    """Keeping N layers must give exactly the full encoder's N-th hidden state (0 = the embedding layer)."""
    texts = ["a man walks the dog", "red car"]
    full = isbert.build(str(tiny_backbone), out_channels=8, device="cpu").eval()
    features = full.preprocess(texts)
    with torch.no_grad():
        hidden = full[0].auto_model(
            **{k: features[k] for k in ("input_ids", "attention_mask")}, output_hidden_states=True
        )
        truncated = build_baseline(TrainConfig(model=str(tiny_backbone), encoder_layers=layers, device="cpu"), "mean")
        tokens = truncated[0](dict(truncated.preprocess(texts)))["token_embeddings"]
    torch.testing.assert_close(tokens, hidden.hidden_states[layers], rtol=1e-5, atol=1e-6)


def test_truncation_refuses_more_layers_than_the_encoder_has(tiny_backbone: Path) -> None:
    model = isbert.build(str(tiny_backbone), out_channels=8, device="cpu")
    with pytest.raises(IsbertError, match="between 0 and 2"):
        truncate_encoder(model[0], 3)


def _run(tmp_path: Path, backbone: Path, name: str, **settings) -> tuple[TrainConfig, object]:
    corpus = write_corpus(tmp_path / "c.txt", 200)
    config = TrainConfig(
        model=str(backbone), corpus=[str(corpus)], output=str(tmp_path / name), max_steps=6, batch_size=8,
        eval_steps=3, lr=1e-2, **TINY,
    )  # fmt: skip
    for key, value in settings.items():
        setattr(config, key, value)
    return config, train(config)


def _encoder_parts(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    encoder = isbert.load(folder, device="cpu")[0]
    state = encoder.auto_model.state_dict()
    embeddings = {k: v for k, v in state.items() if k.startswith("embeddings.")}
    layers = {k: v for k, v in state.items() if k.startswith("encoder.")}
    return embeddings, layers


@pytest.mark.parametrize("parts", ["head", "head+embeddings"])
def test_train_parts_leave_the_frozen_weights_untouched(tmp_path: Path, tiny_backbone: Path, parts: str) -> None:
    start_embeddings, start_layers = _encoder_parts(tiny_backbone)
    _run(tmp_path, tiny_backbone, parts, train_parts=parts, heldout_size=0)
    embeddings, layers = _encoder_parts(tmp_path / parts)
    assert layers.keys() == start_layers.keys()
    assert all(torch.equal(layers[k], start_layers[k]) for k in layers)
    embeddings_moved = any(not torch.equal(embeddings[k], start_embeddings[k]) for k in embeddings)
    assert embeddings_moved == (parts == "head+embeddings")


def test_simcse_objective_trains_the_mean_pooled_encoder(tmp_path: Path, tiny_backbone: Path) -> None:
    _, result = _run(tmp_path, tiny_backbone, "simcse", objective="simcse")
    model = isbert.load(tmp_path / "simcse", device="cpu")
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling"]
    assert model.encode(["a man walks"]).shape == (1, 32)
    assert "heldout_mi_loss" not in result.history[0]  # no local features to score
    with pytest.raises(IsbertError, match="no head"):
        train(TrainConfig(model=str(tiny_backbone), corpus=["x.txt"], objective="simcse", train_parts="head"))


def test_both_selections_are_saved(tmp_path: Path, tiny_backbone: Path) -> None:
    """Label-free selection also keeps the best model by the other criterion (and the reverse with STSb)."""
    _, result = _run(tmp_path, tiny_backbone, "both", anchor="distill", anchor_weight=1.0)
    scored = [h for h in result.history if "heldout_align_uniform" in h]
    assert result.best is not None and result.best["metric"] == "heldout_align_uniform"
    assert result.best["step"] == min(scored, key=lambda h: h["heldout_align_uniform"])["step"]
    assert result.alternative is None  # no labeled dev set in this run: nothing else to select on


def _interrupted_then_resumed(tmp_path: Path, backbone: Path, **settings) -> tuple[str, str]:
    corpus = write_corpus(tmp_path / "c.txt", 200)
    common = {
        "model": str(backbone), "corpus": [str(corpus)], "output": str(tmp_path / "cut"), "max_steps": 8,
        "batch_size": 8, "save_steps": 100, "heldout_size": 0, "lr": 1e-2, **TINY, **settings,
    }  # fmt: skip
    with pytest.raises(TrainingInterrupted):
        train(callbacks=[ctrl_c_at(4)], **common)
    newest = latest_checkpoint_step(tmp_path / "cut")
    train(resume=True, **common)
    assert_resumed_from(tmp_path / "cut", newest, max_steps=8)
    reference = train(**{**common, "output": str(tmp_path / "whole")})
    assert reference.steps == 8
    return parameter_digest(isbert.load(tmp_path / "cut", device="cpu")), parameter_digest(
        isbert.load(tmp_path / "whole", device="cpu")
    )


@pytest.mark.parametrize("anchor", ["distill", "l2sp"])
def test_anchored_run_resumes_to_the_uninterrupted_weights(tmp_path: Path, tiny_backbone: Path, anchor: str) -> None:
    """The anchor is rebuilt from the same seeded starting model on resume, so the trajectory is unchanged."""
    cut, whole = _interrupted_then_resumed(tmp_path, tiny_backbone, anchor=anchor, anchor_weight=5.0)
    assert cut == whole


def test_anchor_weight_keeps_the_model_closer_to_its_start(tmp_path: Path, tiny_backbone: Path) -> None:
    texts = ["a man walks the dog", "red car", "the woman reads a book", "two dogs run", "a red house"]

    def drift(folder: Path) -> float:
        torch.manual_seed(42)  # the run's seed: the same fresh head it started from
        start = isbert.build(str(tiny_backbone), out_channels=8, max_seq_length=16, activation="none", device="cpu")
        a = torch.nn.functional.normalize(torch.tensor(start.encode(texts)), dim=-1)
        b = torch.nn.functional.normalize(torch.tensor(isbert.load(folder, device="cpu").encode(texts)), dim=-1)
        return float((a @ a.T - b @ b.T).pow(2).mean())

    _run(tmp_path, tiny_backbone, "free", heldout_size=0, max_steps=20)
    _run(tmp_path, tiny_backbone, "anchored", heldout_size=0, max_steps=20, anchor="distill", anchor_weight=100.0)
    assert drift(tmp_path / "anchored") < drift(tmp_path / "free")


@pytest.mark.parametrize("objective", ["tsdae", "ct"])
def test_peer_objectives_train_and_the_saved_model_loads(tmp_path: Path, tiny_backbone: Path, objective: str) -> None:
    _, result = _run(tmp_path, tiny_backbone, objective, objective=objective, max_steps=8, eval_steps=4)
    log = log_records(tmp_path / objective)
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    if objective == "tsdae":  # reconstruction falls steadily; CT's in-batch loss is too noisy over 8 tiny steps
        assert losses[-1] < losses[0]
    model = isbert.load(tmp_path / objective, device="cpu")
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling"]
    assert model.encode(["a man walks"]).shape == (1, 32)
    assert result.steps == 8


@pytest.mark.parametrize("objective", ["tsdae", "ct"])
def test_peer_run_resumes_to_the_uninterrupted_weights(tmp_path: Path, tiny_backbone: Path, objective: str) -> None:
    """The parts only the loss holds (TSDAE's decoder, CT's second copy) are checkpointed and restored too."""
    cut, whole = _interrupted_then_resumed(tmp_path, tiny_backbone, objective=objective)
    assert cut == whole


def test_tsdae_on_a_backbone_without_layers_is_one_cli_line(tmp_path: Path, tiny_backbone: Path) -> None:
    from helpers_training import TINY_ARGS, run_cli

    corpus = write_corpus(tmp_path / "c.txt", 50)
    args = ["--model", str(tiny_backbone), "--corpus", str(corpus), "--output", str(tmp_path / "o"), *TINY_ARGS]
    done = run_cli(*args, "--objective", "tsdae", "--encoder-layers", "0", "--max-steps", "2", "--device", "cpu")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "needs transformer layers" in done.stderr
