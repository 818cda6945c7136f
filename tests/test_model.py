"""Building, saving and loading IS-BERT models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

import isbert
from isbert.errors import IsbertError
from isbert.modules import MaskedCNN

TEXTS = ["a man runs in the park", "hi", "the red car is very fast", ""]


def test_build_has_encoder_cnn_and_mean_pooling(tiny_backbone: Path) -> None:
    model = isbert.build(str(tiny_backbone), out_channels=5, kernel_sizes=[1, 3], activation="relu", device="cpu")
    assert [type(module).__name__ for module in model] == ["Transformer", "MaskedCNN", "Pooling"]
    assert model.get_embedding_dimension() == 10
    assert model[1].activation == "relu"
    assert model[2].pooling_mode == "mean"
    assert model.encode(TEXTS).shape == (4, 10)


def test_tiny_tokenizer_knows_its_words(tiny_isbert) -> None:
    """Guards the fixtures themselves: distinct words must get distinct ids, or the invariance tests mean little."""
    ids = tiny_isbert.tokenizer("a man runs in the park")["input_ids"]
    assert tiny_isbert.tokenizer.unk_token_id not in ids and len(set(ids)) == len(ids)


def test_paper_defaults(tiny_backbone: Path) -> None:
    model = isbert.build(str(tiny_backbone), device="cpu")
    cnn = model[1]
    assert (cnn.out_channels, cnn.kernel_sizes, cnn.activation, cnn.include_special_tokens) == (
        256,
        [1, 3, 5],
        "relu",
        True,
    )
    assert model.get_embedding_dimension() == 768
    assert model.max_seq_length == 128


def test_save_then_load_gives_identical_embeddings_both_ways(tiny_isbert, tmp_path: Path) -> None:
    tiny_isbert.eval()
    want = tiny_isbert.encode(TEXTS)
    tiny_isbert.save(str(tmp_path))
    np.testing.assert_array_equal(isbert.load(tmp_path, device="cpu").encode(TEXTS), want)
    plain = SentenceTransformer(str(tmp_path), trust_remote_code=True, device="cpu")
    np.testing.assert_array_equal(plain.encode(TEXTS), want)
    assert isinstance(plain[1], MaskedCNN)


def test_saved_folder_is_plain_config_and_safetensors(tiny_isbert, tmp_path: Path) -> None:
    tiny_isbert.save(str(tmp_path))
    modules = json.loads((tmp_path / "modules.json").read_text())
    assert [entry["type"] for entry in modules][1] == "isbert.modules.MaskedCNN"
    cnn_folder = tmp_path / modules[1]["path"]
    assert (cnn_folder / "model.safetensors").is_file()
    assert json.loads((cnn_folder / "masked_cnn_config.json").read_text())["activation"] == "relu"
    assert not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pt"))
    card = (tmp_path / "README.md").read_text()
    assert "2009.12061" in card and "Mutual Information Maximization" in card


def test_sentence_transformers_refuses_the_cnn_without_trust_remote_code(tiny_isbert_folder: Path) -> None:
    with pytest.raises(ValueError, match="trust_remote_code"):
        SentenceTransformer(str(tiny_isbert_folder), device="cpu")


def test_load_still_guards_foreign_module_types(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_isbert_folder, folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["type"] = "somebody_elses_package.Module"
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(IsbertError, match="trust_remote_code"):
        isbert.load(folder, device="cpu")


def test_load_accepts_any_sentence_transformers_model(tiny_backbone: Path, tmp_path: Path) -> None:
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    encoder = Transformer(str(tiny_backbone))
    SentenceTransformer(modules=[encoder, Pooling(32, "mean")], device="cpu").save(str(tmp_path))
    assert isbert.load(tmp_path, device="cpu").encode(["hi"]).shape == (1, 32)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IsbertError, match="model folder not found"):
        isbert.load(tmp_path / "nothing" / "here")
    with pytest.raises(IsbertError, match="model folder not found"):
        isbert.build("./no-such-folder")


def test_unreachable_hub_names_the_offline_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(IsbertError, match="offline-minilm") as info:
        isbert.build("no-such-org/no-such-model-xyz")
    assert "HF_HUB_OFFLINE" in str(info.value)
    with pytest.raises(IsbertError, match="offline-minilm"):
        isbert.load("no-such-org/no-such-model-xyz")


def test_offline_alias_resolves_to_the_packaged_folder() -> None:
    folder = Path(isbert.resolve_model_name(isbert.OFFLINE_ALIAS))
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert isbert.resolve_model_name("bert-base-uncased") == "bert-base-uncased"


@pytest.mark.parametrize(
    ("relative", "damage", "message"),
    [
        ("1_MaskedCNN/model.safetensors", "truncate", "corrupt or truncated weights"),
        ("model.safetensors", "truncate", "corrupt or truncated weights"),
        ("1_MaskedCNN/masked_cnn_config.json", "truncate", "corrupt or truncated JSON"),
        ("modules.json", "garbage", "corrupt or truncated JSON"),
    ],
)
def test_damaged_folder_is_refused_naming_the_file(
    tiny_isbert_folder: Path, tmp_path: Path, relative: str, damage: str, message: str
) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_isbert_folder, folder)
    target = folder / relative
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00\xff not json")
    with pytest.raises(IsbertError, match=message) as info:
        isbert.load(folder, device="cpu")
    assert relative in str(info.value)


def test_atomic_save_replaces_a_model_and_leaves_no_temporary_folders(tiny_isbert, tmp_path: Path) -> None:
    target = tmp_path / "model"
    isbert.save(tiny_isbert, target)
    first = isbert.load(target, device="cpu").encode(TEXTS)
    tiny_isbert[1].convs[0].bias.data += 1.0
    isbert.save(tiny_isbert, target)
    second = isbert.load(target, device="cpu").encode(TEXTS)
    assert not np.allclose(first, second)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_full_disk_during_save_keeps_the_previous_model(tiny_isbert, tmp_path: Path, monkeypatch) -> None:
    import errno

    target = tmp_path / "model"
    isbert.save(tiny_isbert, target)
    before = isbert.load(target, device="cpu").encode(TEXTS)
    tiny_isbert[1].convs[0].bias.data += 1.0

    from safetensors import torch as safetensors_torch

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors_torch, "save_model", disk_full)
    monkeypatch.setattr(safetensors_torch, "save_file", disk_full)
    import sentence_transformers.base.modules.module as st_module

    monkeypatch.setattr(st_module, "save_safetensors_model", disk_full)
    with pytest.raises(IsbertError, match="the disk is full; nothing there was changed"):
        isbert.save(tiny_isbert, target)
    np.testing.assert_array_equal(isbert.load(target, device="cpu").encode(TEXTS), before)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_saved_model_has_the_usual_permissions(tiny_isbert, tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        folder = isbert.save(tiny_isbert, tmp_path / "model")
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert {stat.S_IMODE(f.stat().st_mode) for f in folder.rglob("*") if f.is_file()} == {0o644}
