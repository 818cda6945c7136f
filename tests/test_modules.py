"""The masked CNN: equal to a per-sentence reference, and blind to padding and batch composition; its mask, config,
argument checks and save/load against hand-built expectations."""

from __future__ import annotations

import inspect
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sentence_transformers
import torch
import torch.nn.functional as F
from huggingface_hub.errors import LocalEntryNotFoundError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import CNN, Pooling
from sentence_transformers.util import load_file_path
from tiny_models import WORDS

from isbert.modules import MaskedCNN, stock_cnn_masks_padding
from isbert.released import released_model


def reference_local_features(cnn: MaskedCNN, tokens: torch.Tensor, length: int) -> torch.Tensor:
    """One sentence on its own, unpadded: convolve its `length` real tokens, nothing else."""
    x = tokens[:length].T.unsqueeze(0)  # (1, dim, length)
    out = torch.cat([conv(x) for conv in cnn.convs], dim=1)[0].T
    return torch.relu(out) if cnn.activation == "relu" else out


@pytest.mark.parametrize("activation", ["relu", "none"])
def test_masked_cnn_equals_per_sentence_reference(activation: str) -> None:
    torch.manual_seed(0)
    cnn = MaskedCNN(6, out_channels=4, kernel_sizes=[1, 3, 5], activation=activation)  # type: ignore[arg-type]
    lengths = [5, 2, 7, 1]
    tokens = torch.randn(4, 7, 6)
    mask = torch.zeros(4, 7, dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
    tokens[mask == 0] = 100.0  # whatever the encoder leaves at padded positions
    out = cnn({"token_embeddings": tokens.clone(), "attention_mask": mask})
    for b, n in enumerate(lengths):
        torch.testing.assert_close(out["token_embeddings"][b, :n], reference_local_features(cnn, tokens[b], n))
        assert torch.all(out["token_embeddings"][b, n:] == 0)
    assert out["token_embeddings"].shape == (4, 7, 12)


def test_special_tokens_can_be_left_out_of_the_local_tokens() -> None:
    cnn = MaskedCNN(3, out_channels=2, include_special_tokens=False, special_token_ids=[101, 102, 0])
    input_ids = torch.tensor([[101, 7, 8, 102, 0], [101, 9, 102, 0, 0]])
    mask = (input_ids != 0).long()
    out = cnn({"token_embeddings": torch.randn(2, 5, 3), "attention_mask": mask, "input_ids": input_ids})
    assert out["attention_mask"].tolist() == [[0, 1, 1, 0, 0], [0, 1, 0, 0, 0]]
    assert torch.all(out["token_embeddings"][0, [0, 3, 4]] == 0)


def test_left_out_special_tokens_still_feed_the_windows_as_context() -> None:
    """With include_special_tokens=False, [CLS]/[SEP] are not local tokens but stay in their neighbours' windows."""
    torch.manual_seed(0)
    kept = MaskedCNN(3, out_channels=2, kernel_sizes=[3], activation="none")
    left_out = MaskedCNN(3, out_channels=2, kernel_sizes=[3], activation="none", include_special_tokens=False,
                         special_token_ids=[101, 102])  # fmt: skip
    left_out.load_state_dict(kept.state_dict())
    input_ids = torch.tensor([[101, 7, 8, 102]])
    tokens = torch.randn(1, 4, 3)
    mask = torch.ones(1, 4, dtype=torch.long)
    full = kept({"token_embeddings": tokens.clone(), "attention_mask": mask})["token_embeddings"]
    out = left_out({"token_embeddings": tokens.clone(), "attention_mask": mask, "input_ids": input_ids})
    # Word positions 1 and 2 see [CLS] and [SEP] in their 3-token windows: the same features as with them kept.
    torch.testing.assert_close(out["token_embeddings"][0, 1:3], full[0, 1:3])
    # And they differ from windows where the special tokens were zeroed out, so the test can tell the two apart.
    blanked = tokens.clone()
    blanked[0, [0, 3]] = 0
    without_context = kept({"token_embeddings": blanked, "attention_mask": mask})["token_embeddings"]
    assert not torch.allclose(without_context[0, 1:3], full[0, 1:3])


BAD_CONFIGURATIONS = [
    ({"kernel_sizes": [2]}, "kernel_sizes must be odd positive integers, got [2]"),
    ({"kernel_sizes": [3, 4]}, "kernel_sizes must be odd positive integers, got [3, 4]"),
    ({"kernel_sizes": [-1]}, "kernel_sizes must be odd positive integers, got [-1]"),
    ({"kernel_sizes": []}, "kernel_sizes must be odd positive integers, got []"),
    ({"activation": "tanh"}, "activation must be one of ('relu', 'none'), got 'tanh'"),
    ({"activation": "RELU"}, "activation must be one of ('relu', 'none'), got 'RELU'"),
    ({"out_channels": 0}, "out_channels must be positive, got 0"),
    (
        {"include_special_tokens": False},
        "include_special_tokens=False needs special_token_ids (isbert.build sets them)",
    ),
]


def exactly(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern for this whole one-line message and nothing else."""
    return f"^{re.escape(message)}$"


@pytest.mark.parametrize(("kwargs", "message"), BAD_CONFIGURATIONS)
def test_bad_configuration_is_refused(kwargs: dict, message: str) -> None:
    """Each bad argument is refused with its own one-line message (catches a changed or garbled message, and a
    check that no longer fires)."""
    with pytest.raises(ValueError, match=exactly(message)):
        MaskedCNN(8, **kwargs)


def test_smallest_valid_configuration_is_accepted() -> None:
    """One filter and a single 1-token window are valid (catches ``out_channels < 1`` tightened to ``<= 1``)."""
    cnn = MaskedCNN(3, out_channels=1, kernel_sizes=[1])
    assert cnn.get_embedding_dimension() == 1


def test_defaults_and_config_dict_are_the_papers() -> None:
    """The defaults are the paper's head (256 filters per 1/3/5-token window, ReLU, special tokens counted), and the
    config dict holds exactly the constructor's arguments (catches a changed default, a config dict that cannot be
    built, and a width computed by division)."""
    cnn = MaskedCNN(8)
    assert cnn.get_config_dict() == {
        "in_embedding_dimension": 8,
        "out_channels": 256,
        "kernel_sizes": [1, 3, 5],
        "activation": "relu",
        "include_special_tokens": True,
        "special_token_ids": [],
    }
    assert [tuple(conv.weight.shape) for conv in cnn.convs] == [(256, 8, 1), (256, 8, 3), (256, 8, 5)]
    narrow = MaskedCNN(8, out_channels=4)
    width = narrow.get_embedding_dimension()
    assert width == 12 and type(width) is int
    assert MaskedCNN(**narrow.get_config_dict()).get_config_dict() == narrow.get_config_dict()


def expected_local_mask(input_ids: list[list[int]], lengths: list[int], special: set[int] | None) -> list[list[bool]]:
    """By hand: position j of row b is a local token when it is real (j < lengths[b]) and, when special tokens are
    left out, its id is not special."""
    return [
        [j < n and (special is None or token not in special) for j, token in enumerate(row)]
        for row, n in zip(input_ids, lengths, strict=True)
    ]


@st.composite
def masked_batches(draw: st.DrawFn) -> dict[str, Any]:
    """A padded batch: ids, lengths (a row may be all padding), the attention mask's dtype, and the special ids."""
    batch, length = draw(st.integers(1, 4)), draw(st.integers(1, 7))
    lengths = draw(st.lists(st.integers(0, length), min_size=batch, max_size=batch))
    input_ids = draw(
        st.lists(st.lists(st.integers(0, 9), min_size=length, max_size=length), min_size=batch, max_size=batch)
    )
    special = draw(st.none() | st.sets(st.integers(0, 9), min_size=1, max_size=4))
    dtype = draw(st.sampled_from([torch.long, torch.int32, torch.bool]))
    mask = torch.tensor([[j < n for j in range(length)] for n in lengths]).to(dtype)
    return {"input_ids": input_ids, "lengths": lengths, "special": special, "mask": mask}


@settings(max_examples=40, deadline=None)
@given(b=masked_batches())
def test_local_token_mask_is_the_real_tokens_less_the_left_out_special_ones(b: dict[str, Any]) -> None:
    """Padding is never local; special ids are not local only when left out (catches a mask that keeps padding,
    drops the wrong ids, or ignores include_special_tokens)."""
    special = b["special"]
    cnn = MaskedCNN(2, out_channels=1, include_special_tokens=special is None, special_token_ids=special)
    features = {"input_ids": torch.tensor(b["input_ids"]), "attention_mask": b["mask"]}
    mask = cnn.local_token_mask(features)
    assert mask.dtype == torch.bool
    assert mask.tolist() == expected_local_mask(b["input_ids"], b["lengths"], special)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_local_token_mask_of_a_cuda_batch() -> None:
    """The special ids are compared on the batch's device (catches them built on the CPU, which a CUDA batch
    cannot be compared with; on a CPU-only machine the two are the same)."""
    cnn = MaskedCNN(2, out_channels=1, include_special_tokens=False, special_token_ids=[101, 102]).cuda()
    features = {
        "input_ids": torch.tensor([[101, 7, 102, 0]]).cuda(),
        "attention_mask": torch.tensor([[1, 1, 1, 0]]).cuda(),
    }
    assert cnn.local_token_mask(features).tolist() == [[False, True, False, False]]


def direct_local_features(cnn: MaskedCNN, tokens: torch.Tensor, length: int) -> torch.Tensor:
    """The head computed by hand for one unpadded sentence: for each window k, ``conv1d`` of its `length` real tokens
    with the saved weight and bias and (k-1)/2 zeros on each side, then ReLU (or none), the windows concatenated."""
    x = tokens[:length].T.unsqueeze(0)  # (1, in_dim, length)
    state = cnn.state_dict()
    windows = [
        F.conv1d(x, state[f"convs.{i}.weight"], state[f"convs.{i}.bias"], padding=(k - 1) // 2)
        for i, k in enumerate(cnn.kernel_sizes)
    ]
    out = torch.cat(windows, dim=1)[0].T  # (length, out_channels * windows)
    return torch.relu(out) if cnn.activation == "relu" else out


@settings(max_examples=30, deadline=None)
@given(
    b=masked_batches(),
    kernel_sizes=st.lists(st.sampled_from([1, 3, 5, 7]), min_size=1, max_size=3),
    activation=st.sampled_from(["relu", "none"]),
    seed=st.integers(0, 2**16),
)
def test_forward_and_mean_pooling_equal_a_direct_computation(
    b: dict[str, Any], kernel_sizes: list[int], activation: str, seed: int
) -> None:
    """Local features are the per-window convolutions of the real tokens alone, activated and concatenated, zero where
    the position is not a local token; the attention mask handed on is the local-token mask in the caller's dtype,
    and the sentence vector (mean pooling) is the mean over the local tokens (catches padding reaching a window, a
    lost activation, features or a mask left at non-local positions, a mask handed on as bool)."""
    torch.manual_seed(seed)
    special = b["special"]
    cnn = MaskedCNN(
        3,
        out_channels=2,
        kernel_sizes=kernel_sizes,
        activation=activation,  # type: ignore[arg-type]
        include_special_tokens=special is None,
        special_token_ids=special,
    )
    tokens = torch.randn(len(b["lengths"]), b["mask"].shape[1], 3)
    tokens[~b["mask"].bool()] = 1e3  # whatever the encoder leaves at padded positions
    features = {
        "token_embeddings": tokens.clone(),
        "attention_mask": b["mask"],
        "input_ids": torch.tensor(b["input_ids"]),
    }
    with torch.no_grad():
        out = cnn(features)
        pooled = Pooling(cnn.get_embedding_dimension())(dict(out))["sentence_embedding"]
    local = torch.tensor(expected_local_mask(b["input_ids"], b["lengths"], special))
    assert out["attention_mask"].dtype == b["mask"].dtype
    assert out["attention_mask"].bool().tolist() == local.tolist()
    for row, n in enumerate(b["lengths"]):
        expected = torch.zeros(tokens.shape[1], cnn.get_embedding_dimension())
        if n:
            expected[:n] = direct_local_features(cnn, tokens[row], n)
        expected[~local[row]] = 0
        torch.testing.assert_close(out["token_embeddings"][row], expected)
        torch.testing.assert_close(pooled[row], expected[local[row]].sum(0) / max(int(local[row].sum()), 1))


def _same_module(a: MaskedCNN, b: MaskedCNN) -> None:
    assert a.get_config_dict() == b.get_config_dict()
    assert a.state_dict().keys() == b.state_dict().keys()
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


configurations = st.fixed_dictionaries(
    {
        "in_embedding_dimension": st.integers(1, 6),
        "out_channels": st.integers(1, 4),
        "kernel_sizes": st.lists(st.sampled_from([1, 3, 5]), min_size=1, max_size=3),
        "activation": st.sampled_from(["relu", "none"]),
        "special_token_ids": st.lists(st.integers(0, 200), max_size=3),
    }
).map(lambda c: {**c, "include_special_tokens": not c["special_token_ids"]})


@settings(max_examples=20, deadline=None)
@given(config=configurations)
def test_save_writes_the_config_and_safetensors_weights_that_load_reads_back(config: dict[str, Any]) -> None:
    """save writes two files, the exact config and the weights as safetensors; load (no subfolder) rebuilds the same
    module, weights and outputs (catches a save that writes no config or pickled weights, or a load that looks in
    another folder)."""
    cnn = MaskedCNN(**config)
    with tempfile.TemporaryDirectory() as folder:
        cnn.save(folder)
        assert sorted(p.name for p in Path(folder).iterdir()) == ["masked_cnn_config.json", "model.safetensors"]
        saved = json.loads((Path(folder) / "masked_cnn_config.json").read_text())
        expected = {**config, "special_token_ids": sorted(set(config["special_token_ids"]))}
        assert saved == expected == cnn.get_config_dict()
        weights = load_file(str(Path(folder) / "model.safetensors"))
        assert weights.keys() == cnn.state_dict().keys()
        loaded = MaskedCNN.load(folder)
    _same_module(cnn, loaded)
    tokens = torch.randn(2, 4, config["in_embedding_dimension"])
    features = {
        "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]),
        "input_ids": torch.tensor([[1, 2, 3, 4]] * 2),
    }
    with torch.no_grad():
        a = cnn({**features, "token_embeddings": tokens.clone()})["token_embeddings"]
        b = loaded({**features, "token_embeddings": tokens.clone()})["token_embeddings"]
    assert torch.equal(a, b)


def test_load_keeps_the_saved_config_over_init_defaults(tmp_path: Path) -> None:
    """init_defaults only fill keys the saved config lacks (catches defaults overriding what was saved)."""
    cnn = MaskedCNN(4, out_channels=2, kernel_sizes=[3], activation="none")
    cnn.save(str(tmp_path))
    loaded = MaskedCNN.load(str(tmp_path), init_defaults={"activation": "relu", "out_channels": 7})
    _same_module(cnn, loaded)


@pytest.mark.parametrize(("change", "message"), BAD_CONFIGURATIONS)
def test_load_refuses_a_bad_saved_config(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    """A hand-edited config is refused with the constructor's one-line message, not loaded half-right."""
    MaskedCNN(8, out_channels=2).save(str(tmp_path))
    config_file = tmp_path / "masked_cnn_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), **change}))  # special_token_ids: []
    with pytest.raises(ValueError, match=exactly(message)):
        MaskedCNN.load(str(tmp_path))


def test_load_refuses_weights_of_another_shape(tmp_path: Path) -> None:
    """Weights saved for 2 filters per window do not load into a config that says 3."""
    MaskedCNN(8, out_channels=2).save(str(tmp_path))
    config_file = tmp_path / "masked_cnn_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "out_channels": 3}))
    with pytest.raises(RuntimeError, match=re.escape("size mismatch for convs.0.weight")):
        MaskedCNN.load(str(tmp_path))


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[dict[str, Any]]]:
    """A Hub repository served from tmp_path/<revision>/<subfolder>/<file>, recording each download request."""
    requests: list[dict[str, Any]] = []

    def hf_hub_download(
        repo_id: str,
        filename: str,
        subfolder: str = "",
        revision: str | None = None,
        token: bool | str | None = None,
        cache_dir: str | None = None,
        local_files_only: bool = False,
        **_: Any,
    ) -> str:
        requests.append(
            {
                "repo": repo_id,
                "file": Path(subfolder, filename).as_posix(),
                "revision": revision,
                "token": token,
                "cache_dir": cache_dir,
                "local_files_only": local_files_only,
            }
        )
        path = tmp_path / "hub" / (revision or "main") / subfolder / filename
        if not path.is_file():
            raise LocalEntryNotFoundError(f"{filename} is not in the fake hub")
        return str(path)

    monkeypatch.setattr(inspect.getmodule(load_file_path), "hf_hub_download", hf_hub_download)
    monkeypatch.chdir(tmp_path)  # "org/cnn" is no local folder
    return tmp_path / "hub", requests


def test_load_from_the_hub_asks_for_the_users_revision_token_cache_and_offline_mode(
    fake_hub: tuple[Path, list[dict[str, Any]]],
) -> None:
    """Both files (config, weights) are fetched at the pinned revision, with the user's token, into their cache
    folder, offline when asked; with none given, the defaults (latest revision, online). Catches load dropping or
    resetting a hub argument for either file: a private repo refused, the wrong revision, an ignored cache."""
    hub, requests = fake_hub
    pinned = MaskedCNN(4, out_channels=3, kernel_sizes=[3], activation="none")
    (hub / "v2" / "1_MaskedCNN").mkdir(parents=True)
    pinned.save(str(hub / "v2" / "1_MaskedCNN"))
    (hub / "main" / "1_MaskedCNN").mkdir(parents=True)
    MaskedCNN(4, out_channels=2).save(str(hub / "main" / "1_MaskedCNN"))

    loaded = MaskedCNN.load(
        "org/cnn",
        subfolder="1_MaskedCNN",
        token="hf_user",
        cache_folder="/cache/hf",
        revision="v2",
        local_files_only=True,
    )
    _same_module(pinned, loaded)
    asked = {
        "repo": "org/cnn",
        "revision": "v2",
        "token": "hf_user",
        "cache_dir": "/cache/hf",
        "local_files_only": True,
    }
    assert requests == [
        {**asked, "file": "1_MaskedCNN/masked_cnn_config.json"},
        {**asked, "file": "1_MaskedCNN/model.safetensors"},
    ]

    requests.clear()
    latest = MaskedCNN(4, out_channels=1, kernel_sizes=[5])
    latest.save(str(hub / "main"))
    _same_module(latest, MaskedCNN.load("org/cnn"))
    default = {"repo": "org/cnn", "revision": None, "token": None, "cache_dir": None, "local_files_only": False}
    assert requests == [{**default, "file": "masked_cnn_config.json"}, {**default, "file": "model.safetensors"}]


sentences = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(sentences, min_size=2, max_size=6), seed=st.integers(0, 1000))
def test_embedding_does_not_depend_on_the_batch(tiny_isbert: SentenceTransformer, batch: list[str], seed: int) -> None:
    tiny_isbert.eval()
    alone = np.stack([tiny_isbert.encode([text], convert_to_numpy=True)[0] for text in batch])
    together = tiny_isbert.encode(batch, batch_size=len(batch), convert_to_numpy=True)
    np.testing.assert_allclose(together, alone, atol=2e-5, rtol=1e-4)
    order = np.random.default_rng(seed).permutation(len(batch))
    shuffled = tiny_isbert.encode([batch[i] for i in order], batch_size=len(batch), convert_to_numpy=True)
    np.testing.assert_allclose(shuffled, together[order], atol=2e-5, rtol=1e-4)


def test_released_code_leaks_padding_where_masked_cnn_does_not(tiny_isbert: SentenceTransformer) -> None:
    """The flaw this module fixes, against the released IS-BERT code's CNN (which does not change): it sees padding
    inside its windows, so a short sentence's vector depends on the longest sentence of its batch."""
    tiny_isbert.eval()
    tiny_isbert[1].activation = "none"  # the released CNN has no activation: compare in the same setting
    released = released_model(tiny_isbert)
    short, long = "hi", "the old man walks his small dog in the green park with many people"
    leak = released.encode([short, long])[0] - released.encode([short])[0]
    assert np.abs(leak).max() > 1e-3
    fixed = tiny_isbert.encode([short, long])[0] - tiny_isbert.encode([short])[0]
    assert np.abs(fixed).max() < 1e-5
    np.testing.assert_allclose(released.encode([short])[0], tiny_isbert.encode([short])[0], atol=1e-5)


def _stock_copy(masked: MaskedCNN) -> CNN:
    stock = CNN(masked.in_embedding_dimension, out_channels=masked.out_channels, kernel_sizes=masked.kernel_sizes)
    stock.load_state_dict(masked.state_dict())
    return stock


def test_stock_cnn_padding_behaviour_by_release(tiny_isbert: SentenceTransformer) -> None:
    """sentence-transformers 6.0-6.2's CNN leaked padding like the released code; from 6.3 on it masks it. This
    test states which release it describes, so an upgrade (or a pin to an older one) cannot turn it into a false
    claim."""
    tiny_isbert.eval()
    stock = _stock_copy(tiny_isbert[1])
    stock_model = SentenceTransformer(modules=[tiny_isbert[0], stock, Pooling(stock.get_embedding_dimension())])
    short, long = "hi", "the old man walks his small dog in the green park with many people"
    leak = np.abs(stock_model.encode([short, long])[0] - stock_model.encode([short])[0]).max()
    if stock_cnn_masks_padding():
        assert leak < 1e-5, f"sentence-transformers {sentence_transformers.__version__}'s CNN should mask padding"
    else:
        assert leak > 1e-3, f"sentence-transformers {sentence_transformers.__version__}'s CNN leaks padding"
    assert stock_cnn_masks_padding("6.3.0") and not stock_cnn_masks_padding("6.2.1")
