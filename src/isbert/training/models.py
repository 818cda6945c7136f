"""The model a training run starts from, and which of its parameters learn."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling, WordWeights

from isbert import sif
from isbert.errors import IsbertError
from isbert.model import build, load_torch, pooled_encoder, resolve_model_name, truncate_encoder
from isbert.modules import is_cnn_head
from isbert.objectives import objective
from isbert.sif_model import StaticEncoder, check_static, count_tokens, probabilities, vocabulary, word_weights
from isbert.training.config import TrainConfig


def build_model(config: TrainConfig) -> Any:
    """The model a run starts from: a fresh IS-BERT model or, for a pooled objective (SimCSE, TSDAE, CT), the
    encoder with mean pooling; a saved isbert model is continued as it is. Seed torch first for a reproducible head.
    """
    path = resolve_model_name(config.model)
    if objective(config.objective).pooled:
        return add_word_weights(build_baseline(config, "mean"), config)
    if os.path.isdir(path) and _has_cnn_head(_modules_json(path)):
        model = load_torch(path, device=config.device)
        model.max_seq_length = config.max_seq_length
        if config.encoder_layers is not None:
            truncate_encoder(model[0], config.encoder_layers)
        return add_word_weights(model, config)
    model = build(
        config.model,
        out_channels=config.out_channels,
        activation=config.activation,
        include_special_tokens=config.include_special_tokens,
        max_seq_length=config.max_seq_length,
        encoder_layers=config.encoder_layers,
        device=config.device,
    )
    return add_word_weights(model, config)


def add_word_weights(model: SentenceTransformer, config: TrainConfig) -> SentenceTransformer:
    """``model`` with SIF weights (``--word-weights``) as a fixed ``WordWeights`` module: before its final mean
    ``Pooling`` (``sif-pool``: the sentence vector is the SIF-weighted mean of the local features, and the loss scores
    the weighted local features) or right after the encoder (``sif-input``: the CNN reads weighted token vectors;
    ``Pooling`` then divides by the summed weights, a positive factor per sentence). p(w) is counted on the training
    corpus with the model's own tokenizer, or read off the rank in a frequency-sorted vocabulary
    (``sif_probabilities``). A model that already weights its tokens is returned as it is."""
    modules = list(model)
    if config.word_weights == "none" or any(isinstance(module, WordWeights) for module in modules):
        return model
    check_static(modules[0], config.model)
    encoder = cast(StaticEncoder, modules[0])  # what check_static let through
    if not isinstance(modules[-1], Pooling):
        raise IsbertError(f"--word-weights needs a model that ends in mean pooling, not {type(modules[-1]).__name__}")
    counts = count_tokens(
        encoder, config.corpus, text_field=config.text_field, column=config.column,
        encoding_errors=config.encoding_errors, dedup=config.dedup,
    )  # fmt: skip
    weights = sif.sif_weights(probabilities(encoder, counts, config.sif_probabilities), config.sif_a)
    layer = word_weights(vocabulary(encoder), weights, 1.0)
    layer.emb_layer.weight.requires_grad_(False)  # fixed by the corpus, not learned
    at = 1 if config.word_weights == "sif-input" else len(modules) - 1
    weighted = SentenceTransformer(modules=[*modules[:at], layer, *modules[at:]], device=str(model.device))
    weighted.model_card_data = model.model_card_data
    return weighted


def is_tuned_sentence_encoder(model: str) -> bool:
    """Whether ``model`` (a name as ``--model`` takes it) is a sentence encoder that was already tuned as one.

    The rule: a sentence-transformers model (its ``modules.json``, in the folder or, for a hub id, fetched with the
    model) whose modules are a transformer encoder followed by pooling, like ``offline-minilm`` (all-MiniLM-L6-v2,
    tuned on a billion labeled pairs). A plain transformers checkpoint (BERT, which isbert mean-pools itself), word
    vectors (``offline-glove``) and a saved isbert model (its CNN head is isbert's own training) are not.
    """
    modules = _modules_json(resolve_model_name(model))
    types = _module_types(modules)
    if not types or _has_cnn_head(modules):
        return False
    return types[0].endswith("Transformer") and any(t.endswith("Pooling") for t in types[1:])


def _module_types(modules: list[Any]) -> list[str]:
    return [str(m.get("type", "")) for m in modules if isinstance(m, dict)]


def _has_cnn_head(modules: list[Any]) -> bool:
    """A saved IS-BERT model: its modules include isbert's MaskedCNN or sentence-transformers' CNN."""
    return any(is_cnn_head(module_type) for module_type in _module_types(modules))


def _modules_json(path: str) -> list[Any]:
    local = Path(path, "modules.json")
    if os.path.isdir(path):
        found: str | None = str(local) if local.is_file() else None
    else:
        try:
            found = hf_hub_download(path, "modules.json")  # nosec B615 # the id the user named, read as the loaders will
        except (OSError, ValueError, EntryNotFoundError, HfHubHTTPError):  # not a sentence-transformers repo, offline
            found = None
    if found is None:
        return []
    try:
        modules = json.loads(Path(found).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return modules if isinstance(modules, list) else []


def tuned_encoder_warning(config: TrainConfig) -> str | None:
    """The warning for a run whose selection cannot see harm: a tuned sentence encoder and no labeled dev set.

    The label-free criterion (held-out alignment + uniformity) rewards spreading sentences apart; it cannot tell
    when training erases what the encoder's labeled tuning taught it (experiments/tuned-backbone.toml).
    """
    if config.dev != "none" or not is_tuned_sentence_encoder(config.model):
        return None
    anchored = config.anchor != "none" and config.anchor_weight > 0
    keep = (
        f"--anchor {config.anchor} limits the drift from the start but does not measure it"
        if anchored
        else "--anchor distill --anchor-weight 10 keeps it near its start"
    )
    return (
        f"warning: {config.model} is an already tuned sentence encoder and no labeled dev set was given, so the "
        "label-free selection cannot see if training hurts it (at --lr 2e-5 its choice lost 0.54 STSb test points "
        f"in experiments/tuned-backbone.toml): pass --dev stsb to select on labeled STSb dev; {keep}"
    )


def build_baseline(config: TrainConfig, pooling: str) -> Any:
    """A training-free baseline: the (possibly truncated) encoder of ``config.model`` with ``pooling``
    (``mean``, ``cls`` or ``first-last-mean``) and no head."""
    model = pooled_encoder(resolve_model_name(config.model), pooling, device=config.device)
    model.max_seq_length = config.max_seq_length
    if hasattr(model[0], "emb_layer"):
        # sentence-transformers loads a word-vector table frozen; train_parts decides what trains (SimCSE here).
        cast(torch.nn.Embedding, model[0].emb_layer).weight.requires_grad_(True)
    if config.encoder_layers is not None:
        truncate_encoder(model[0], config.encoder_layers)
    return model


def freeze_parts(model: Any, parts: str) -> list[str]:
    """Freeze what ``train_parts`` leaves out: the encoder (``head``) or its transformer layers
    (``head+embeddings``). Returns the frozen parameter names."""
    if parts == "all":
        return []
    encoder = model[0]
    frozen = []
    # A word-vector encoder is all embeddings: head+embeddings trains it whole.
    whole_embeddings = type(encoder).__name__ == "WordEmbeddings"
    for name, parameter in encoder.named_parameters():
        if parts == "head" or (".embeddings." not in f".{name}" and not whole_embeddings):
            parameter.requires_grad_(False)
            frozen.append(f"0.{name}")
    if not any(p.requires_grad for p in model.parameters()):
        raise IsbertError(f"--train-parts {parts} leaves nothing to train in this model (no head after the encoder)")
    return frozen


def freeze_unused_parameters(model: Any, loss: Any, columns: int = 1) -> list[str]:
    """Freeze parameters that get no gradient from the IS-BERT loss (e.g. BERT's pooler), so DDP does not fail.

    Found with one forward/backward pass on two fixed sentences (as each of the loss's ``columns``, TSDAE's noisy
    twin and text), in a forked RNG so training's randomness is intact.
    """
    texts = ["a probe sentence .", "another probe sentence here ."]
    features = model.preprocess(texts)
    features = {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
    devices = [model.device.index] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        loss([features] * columns, None).backward()
    frozen = []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad and parameter.grad is None:
            parameter.requires_grad_(False)
            frozen.append(name)
        parameter.grad = None
    return frozen
