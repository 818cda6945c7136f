"""Issue 29, item 6: a hostile model folder is refused in one line before anything is allocated or waited on.

Sizes in a config are capped one by one and together (a config asking for 10**9 hidden units is refused in well
under a second); FIFOs and devices planted at any name are never opened (a FIFO named config.json must not hang
``isbert eval FOLDER``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waiting import planted_fifo, returns_without_waiting

from isbert.errors import IsbertError
from isbert.identity import CHECKSUMS_FILE
from isbert.model import load
from isbert.model_folder import SIZE_CAPS, check_model_folder

pytestmark = pytest.mark.reliability


@pytest.fixture
def folder(tiny_isbert_folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(tiny_isbert_folder, copy)
    (copy / CHECKSUMS_FILE).unlink(missing_ok=True)  # an attacker rewrites or drops the manifest
    return copy


def _set_config(folder: Path, name: str, key: str, value: object) -> None:
    path = folder / name
    config = json.loads(path.read_text())
    config[key] = value
    path.write_text(json.dumps(config))


def _load_within(folder: Path, seconds: float, fifo: Path | None = None) -> BaseException | None:
    """What :func:`load` raised (None when it loaded); fails when it has not returned within ``seconds``."""
    try:
        returns_without_waiting(lambda: load(str(folder), device="cpu"), fifo, seconds)
    except AssertionError:
        raise
    except BaseException as error:
        return error
    return None


def test_a_config_asking_for_a_billion_hidden_units_is_refused_quickly(folder: Path) -> None:
    _set_config(folder, "config.json", "hidden_size", 10**9)
    started = time.monotonic()
    error = _load_within(folder, 30)
    assert isinstance(error, IsbertError) and time.monotonic() - started < 5
    assert "config.json: hidden_size must be a whole number from 0 to 65,536, got 1000000000" in str(error)
    assert "\n" not in str(error)


def test_sizes_under_their_caps_can_still_add_up_to_too_many_parameters(folder: Path) -> None:
    _set_config(folder, "config.json", "hidden_size", 65_536)
    _set_config(folder, "config.json", "vocab_size", 4_000_000)
    with pytest.raises(IsbertError, match=r"config.json: its sizes imply about [\d,]+ parameters, over the cap"):
        check_model_folder(folder)


@settings(max_examples=40, deadline=None)
@given(key=st.sampled_from(sorted(SIZE_CAPS)), excess=st.integers(1, 10**30), where=st.integers(0, 2))
def test_every_capped_size_is_refused_over_its_cap(tiny_isbert_folder: Path, key: str, excess: int, where: int) -> None:
    name = ("config.json", "sentence_bert_config.json", "2_Pooling/config.json")[where]
    config = json.loads((tiny_isbert_folder / name).read_text())
    config[key] = SIZE_CAPS[key] + excess
    from isbert.model_folder import check_config_sizes

    with pytest.raises(IsbertError, match=f"{key} must be a whole number from 0 to"):
        check_config_sizes(Path(name), config)


FIFO_NAMES = ["config.json", "model.safetensors", "modules.json", "tokenizer.json", "1_MaskedCNN/model.safetensors",
              "2_Pooling/config.json", "onnx_config.json"]  # fmt: skip


@pytest.mark.parametrize("name", FIFO_NAMES)
def test_a_fifo_planted_in_a_model_folder_is_refused_without_waiting(folder: Path, name: str) -> None:
    error = _load_within(folder, 30, planted_fifo(folder / name))
    assert isinstance(error, IsbertError), error
    assert str(error) == f"{folder / name}: not a regular file (a FIFO, device or socket); the model folder is refused"


def test_a_link_to_a_device_is_refused(folder: Path) -> None:
    (folder / "vocab.txt").symlink_to("/dev/zero")
    with pytest.raises(IsbertError, match=r"vocab\.txt: not a regular file"):
        check_model_folder(folder)


@pytest.mark.parametrize("command", ["eval", "encode"])
def test_a_command_on_a_folder_with_a_fifo_config_is_one_line_not_a_hang(
    folder: Path, tmp_path: Path, command: str
) -> None:
    if command == "eval" and not os.environ.get("ISBERT_DATA_DIR"):
        pytest.skip("eval reads its data folder before the model: needs ISBERT_DATA_DIR")
    (folder / "config.json").unlink()
    os.mkfifo(folder / "config.json")
    corpus = tmp_path / "c.txt"
    corpus.write_text("a sentence\n")
    extra = ["--tasks", "STSBenchmark"] if command == "eval" else ["-i", str(corpus), "-o", str(tmp_path / "e.npy")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "isbert", command, str(folder), *extra],
                          capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"isbert {command}: error: {folder / 'config.json'}: not a regular file (a FIFO, device or socket); "
        "the model folder is refused"
    ]


def _checks_that_read_a_config(folder: Path) -> dict[str, object]:
    from isbert.evaluation.distilled import not_applicable
    from isbert.objectives.base import missing_layers
    from isbert.sif_model import _saved_layers

    return {
        "tsdae's layer check": lambda: missing_layers("TSDAE", str(folder), None),
        "model2vec's check": lambda: not_applicable(str(folder)),
        "SIF's layer count": lambda: _saved_layers(str(folder)),
    }


@pytest.mark.parametrize("check", ["tsdae's layer check", "model2vec's check", "SIF's layer count"])
def test_the_checks_that_read_a_config_cap_it_before_parsing(
    folder: Path, check: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config readers outside the loaders (the objective's layer check, model2vec's, SIF's) read at most the cap
    of a file read whole, and a config over it, or not JSON, is one line (SIF's count says unknown instead)."""
    import isbert.model_folder

    monkeypatch.setattr(isbert.model_folder, "MAX_READ_WHOLE_BYTES", 4096)
    reads: list[int] = []
    real_read = isbert.model_folder.read_capped_bytes

    def spy(path: Path, cap: int) -> bytes:
        data = real_read(path, cap)
        reads.append(len(data))
        return data

    monkeypatch.setattr(isbert.model_folder, "read_capped_bytes", spy)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "padding": "x" * 100_000}))
    run = _checks_that_read_a_config(folder)[check]
    if check == "SIF's layer count":
        assert run() is None
    else:
        with pytest.raises(IsbertError, match=r"config\.json: over 4,096 bytes") as refused:
            run()
        assert "\n" not in str(refused.value)
    assert reads and max(reads) <= 4097
    (folder / "config.json").write_text("{not json")
    if check != "SIF's layer count":
        with pytest.raises(IsbertError, match="corrupt or truncated JSON"):
            run()
