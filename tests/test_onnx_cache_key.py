"""The ONNX export cache's key (:func:`isbert.onnx_backend.model_key`): the names and bytes of every file of the model
folder, and nothing else. Any change to a file's content, a file added, removed or renamed gives another key; the
folder's location and the files' modification times do not (a copied model reuses its export)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isbert.onnx_backend import model_key

NAMES = st.sampled_from(
    ["model.safetensors", "config.json", "tokenizer.json", "vocab.txt", "modules.json", "1_Pooling/config.json",
     "2_Dense/model.safetensors", "sentence_bert_config.json", "isbert.json"]
)  # fmt: skip
FOLDERS = st.dictionaries(NAMES, st.binary(max_size=64), min_size=1, max_size=6)


def write(folder: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    return folder


SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(files=FOLDERS, data=st.data())
def test_any_change_to_a_file_gives_another_key(tmp_path_factory, files: dict[str, bytes], data) -> None:
    folder = write(tmp_path_factory.mktemp("model"), files)
    key = model_key(folder)
    name = data.draw(st.sampled_from(sorted(files)))
    change = data.draw(st.sampled_from(["content", "added", "removed", "renamed"]))
    if change == "content":
        old = files[name]
        new = data.draw(st.binary(max_size=64).filter(lambda b: b != old))
        (folder / name).write_bytes(new)
    elif change == "added":
        (folder / "added" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "added" / name).write_bytes(b"")  # even an empty file
    elif change == "removed":
        (folder / name).unlink()
    else:
        (folder / name).rename(folder / f"{name}.old")
    assert model_key(folder) != key


@SETTINGS
@given(files=FOLDERS)
def test_location_and_modification_times_keep_the_key(tmp_path_factory, files: dict[str, bytes]) -> None:
    folder = write(tmp_path_factory.mktemp("model"), files)
    key = model_key(folder)
    copy = tmp_path_factory.mktemp("elsewhere") / "copy"
    shutil.copytree(folder, copy)
    for path in copy.rglob("*"):
        os.utime(path, ns=(10**18, 10**18))
    assert model_key(copy) == key
    assert model_key(folder) == key  # reading it again
