"""Hostile folders: tampered index databases and first-format manifests, model checksum lists, ONNX configs,
checkpoints and pickle weights.

Every name read from a manifest must be one the project generated and stay inside its folder. Each attack here
once worked (deleted or read a file outside the folder, or loaded a pickle, or ended in a long traceback); each
test writes the attack and asserts a one-line error, exit 2, and a victim file that was neither read nor changed.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waiting import planted_fifo, returns_without_waiting

import isbert
import isbert.model_folder
from isbert.cli import main
from isbert.errors import IsbertError
from isbert.search import legacy
from isbert.search.index import SearchIndex
from isbert.training import checkpoints

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "search"))
from test_search_index import make_word_model_folder, sentences, sql, write_lines

pytestmark = pytest.mark.reliability
VICTIM_TEXT = "do not touch\n"
LEGACY_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "index-v1"


@pytest.fixture(autouse=True)
def _each_attack_is_a_fault(request: pytest.FixtureRequest, reliability) -> None:
    if "fuzzed" not in request.node.name:
        reliability.fault()


@pytest.fixture(scope="module")
def word_model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_word_model_folder(tmp_path_factory.mktemp("hostile-model"))


@pytest.fixture(scope="module")
def word_model(word_model_folder: Path):
    return isbert.load(word_model_folder, device="cpu")


@pytest.fixture
def index_and_victim(word_model, word_model_folder: Path, tmp_path: Path) -> tuple[Path, Path]:
    corpus = write_lines(tmp_path / "c.txt", sentences(20))
    SearchIndex.build(tmp_path / "idx", word_model, str(word_model_folder), corpus, show_progress=False)
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    return tmp_path / "idx", victim


@pytest.fixture
def legacy_and_victim(tmp_path: Path) -> tuple[Path, Path]:
    """A first-format index folder (manifest, texts, offsets; tests/fixtures/index-v1) and a file beside it."""
    shutil.copytree(LEGACY_FIXTURE, tmp_path / "idx")
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    return tmp_path / "idx", victim


def tamper(folder: Path, **files: str) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"].update(files)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def assert_one_line_error(capsys: pytest.CaptureFixture[str], code: int, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.mark.parametrize("name", ["../victim.txt", "VICTIM_ABSOLUTE", "sub/../../victim.txt", "texts-000009.jsonl"])
def test_index_migrate_never_deletes_a_file_named_by_the_manifest(legacy_and_victim, capsys, name: str) -> None:
    index, victim = legacy_and_victim
    tamper(index, texts=str(victim) if name == "VICTIM_ABSOLUTE" else name)
    assert_one_line_error(capsys, main(["index", "migrate", str(index)]), "manifest")
    assert victim.read_text() == VICTIM_TEXT


def test_index_build_overwrite_never_deletes_outside(legacy_and_victim, word_model_folder: Path, capsys) -> None:
    index, victim = legacy_and_victim
    tamper(index, index="../victim.txt")
    corpus = write_lines(index.parent / "more.txt", sentences(5, offset=40))
    args = ["index", "build", str(index), "--model", str(word_model_folder), "-i", str(corpus), "--overwrite"]
    assert_one_line_error(capsys, main([*args, "--no-progress"]), "manifest")
    assert victim.read_text() == VICTIM_TEXT


def test_search_and_serve_never_read_outside(legacy_and_victim, word_model_folder: Path, capsys) -> None:
    index, victim = legacy_and_victim
    tamper(index, texts=str(victim))
    assert_one_line_error(capsys, main(["search", str(index), "the man runs"]), "index migrate")
    assert_one_line_error(capsys, main(["serve", str(word_model_folder), "--index", str(index)]), "index migrate")


@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder"])
def test_a_link_or_not_a_file_at_the_vectors_name_is_refused(index_and_victim, capsys, kind: str) -> None:
    """A FIFO is refused without waiting for a writer that never comes."""
    index, victim = index_and_victim
    vectors = index / "vectors-000001.faiss"
    vectors.unlink()
    if kind == "symlink":
        vectors.symlink_to(victim)
    elif kind == "fifo":
        planted_fifo(vectors)
    else:
        vectors.mkdir()
    with pytest.raises(IsbertError) as refused:
        returns_without_waiting(lambda: SearchIndex.open(index), fifo=vectors)
    assert str(refused.value) == f"{vectors} is a link leading outside the index (or not a file); refused"
    assert_one_line_error(capsys, main(["index", "info", str(index)]), "outside")


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
@pytest.mark.parametrize("name", ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm", "index.sqlite-journal"])
def test_a_link_at_a_database_name_is_refused_by_readers(index_and_victim, capsys, kind: str, name: str) -> None:
    """SQLite follows links and writes its side files beside the target: a reader refuses before it opens."""
    index, victim = index_and_victim
    (index / name).unlink(missing_ok=True)
    (index / name).symlink_to(victim) if kind == "symlink" else os.link(victim, index / name)
    assert_one_line_error(capsys, main(["search", str(index), "the man runs"]), name, "refused")
    assert_one_line_error(capsys, main(["index", "delete", str(index), "--id", "1"]), name, "refused")
    assert victim.read_text() == VICTIM_TEXT


def test_a_file_that_is_not_a_database_is_one_line_and_replaceable(
    index_and_victim, word_model_folder: Path, capsys
) -> None:
    index, _ = index_and_victim
    (index / "index.sqlite").write_bytes(b"not a database at all " * 500)
    assert_one_line_error(capsys, main(["search", str(index), "the man runs"]), "index.sqlite")
    assert_one_line_error(capsys, main(["index", "info", str(index)]), "index.sqlite")
    corpus = write_lines(index.parent / "more.txt", sentences(5, offset=40))
    args = ["index", "build", str(index), "--model", str(word_model_folder), "-i", str(corpus), "--no-progress"]
    assert_one_line_error(capsys, main(args), "--overwrite")
    assert main([*args, "--overwrite"]) == 0
    assert len(SearchIndex.open(index)) == 5


def test_damaged_text_records_are_one_line(index_and_victim, capsys) -> None:
    index, _ = index_and_victim
    sql(index, "UPDATE docs SET text = ? WHERE id = 3", b"\xff not text")
    assert_one_line_error(capsys, main(["search", str(index), "-k", "20", "the man runs"]), "damaged record")
    sql(index, "UPDATE docs SET text = ? WHERE id = 3", "x" * (17 << 20))  # over the 16 MiB cap on a value
    assert_one_line_error(capsys, main(["search", str(index), "-k", "20", "the man runs"]), "too big")


def test_damaged_first_format_records_are_one_line(legacy_and_victim, capsys) -> None:
    legacy, _ = legacy_and_victim
    texts = legacy / json.loads((legacy / "manifest.json").read_text())["files"]["texts"]
    texts.write_bytes(b"\xff not json " * 100)
    assert_one_line_error(capsys, main(["index", "migrate", str(legacy)]), "damaged record")


@pytest.mark.parametrize(
    ("statement", "value", "message"),
    [
        ("UPDATE meta SET value = ? WHERE key = 'dimension'", '"24"', "damaged settings"),
        ("UPDATE meta SET value = ? WHERE key = 'spec'", '{"kind": "lsh"}', "damaged settings"),
        ("UPDATE meta SET value = ? WHERE key = 'format'", "99", "unsupported index format"),
        ("UPDATE meta SET value = ? WHERE key = 'fingerprint'", "[" * 50_000, "damaged settings"),
        ("UPDATE state SET count = ?", 7, "not the index's vectors"),
        ("DELETE FROM state WHERE ? IS NOT NULL", 1, "unfinished index"),
    ],
)
def test_tampered_settings_and_state_are_one_line(index_and_victim, capsys, statement, value, message) -> None:
    index, _ = index_and_victim
    sql(index, statement, value)
    assert_one_line_error(capsys, main(["index", "info", str(index)]), message)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generation=st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=40), st.none(), st.floats(), st.binary()))
def test_fuzzed_generations_open_only_the_generated_file(index_and_victim, reliability, generation: object) -> None:
    """The vectors file's name is made from the state's generation number: any other value is a one-line error."""
    index, _ = index_and_victim
    try:
        sql(index, "UPDATE state SET generation = ?", generation)
    except (OverflowError, sqlite3.Error):  # not storable: not an attack an attacker can write either
        return
    try:
        if generation == 1 and type(generation) in (int, float):
            SearchIndex.open(index).close()
        else:
            with pytest.raises(IsbertError):
                SearchIndex.open(index)
    finally:
        sql(index, "UPDATE state SET generation = 1")
    reliability.fuzz_case()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.text(max_size=40), st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2)))
def test_fuzzed_first_format_manifest_names_are_read_only_when_generated(
    legacy_and_victim, reliability, name: object
) -> None:
    index, _ = legacy_and_victim
    original = (index / "manifest.json").read_text()
    try:
        manifest = json.loads(original)
        generated = manifest["files"]["offsets"]
        manifest["files"]["offsets"] = name
        (index / "manifest.json").write_text(json.dumps(manifest))
        if name == generated:
            legacy.read_manifest(index)
        else:
            with pytest.raises(IsbertError):
                legacy.read_manifest(index)
    finally:
        (index / "manifest.json").write_text(original)
    reliability.fuzz_case()


def test_model_checksum_list_cannot_name_files_outside(
    word_model_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(word_model_folder, folder)
    isbert.save(isbert.load(folder, device="cpu"), folder)
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"secret")
    read: list[Path] = []
    real_sha256 = isbert.model_folder.sha256_file
    monkeypatch.setattr(isbert.model_folder, "sha256_file", lambda path: read.append(Path(path)) or real_sha256(path))
    manifest_path = folder / isbert.model_folder.CHECKSUMS_FILE
    for name in ("../victim.bin", str(victim), "1_MaskedCNN/../../victim.bin"):
        checksums = json.loads(manifest_path.read_text())
        manifest_path.write_text(json.dumps({**checksums, name: "0" * 64}))
        with pytest.raises(IsbertError, match="outside"):
            isbert.load(folder, device="cpu")
        manifest_path.write_text(json.dumps(checksums))
    assert all(path.resolve().is_relative_to(folder.resolve()) for path in read)


def test_onnx_config_cannot_name_a_graph_outside(tmp_path: Path) -> None:
    from isbert.onnx_backend import CONFIG_NAME, OnnxEncoder

    folder = tmp_path / "export"
    folder.mkdir()
    config = {"files": {"none": "../elsewhere.onnx"}, "default": "none", "input_names": [], "max_seq_length": 8}
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(IsbertError, match="outside"):
        OnnxEncoder(folder)


def test_symlinked_checkpoints_are_never_resumed_or_deleted(tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "checkpoint-7"
    outside.mkdir(parents=True)
    (outside / checkpoints.MARKER).write_text("{}")
    (outside / "trainer_state.json").write_text("{}")
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint-7").symlink_to(outside, target_is_directory=True)
    assert checkpoints.list_checkpoints(run) == []
    checkpoints.rotate(run, keep_last=0)
    assert (outside / checkpoints.MARKER).is_file()


# ------------------------------------------------------------------------------------------------ pickle weights
def pickle_only_copy(source: Path, target: Path) -> Path:
    """The model with every safetensors file replaced by a torch pickle of the same tensors (as old folders are)."""
    from safetensors.torch import load_file

    shutil.copytree(source, target)
    for weights in list(target.rglob("*.safetensors")):
        torch.save(load_file(weights), weights.with_name("pytorch_model.bin"))
        weights.unlink()
    (target / isbert.model_folder.CHECKSUMS_FILE).unlink(missing_ok=True)
    return target


def test_pickle_only_folder_is_refused_naming_the_file_and_the_conversion(
    word_model_folder: Path, tmp_path: Path, capsys
) -> None:
    folder = pickle_only_copy(word_model_folder, tmp_path / "old")
    with pytest.raises(IsbertError, match=r"pytorch_model\.bin.*isbert convert-weights"):
        isbert.load(folder, device="cpu")
    source = write_lines(tmp_path / "in.txt", ["the man runs"])
    code = main(["encode", str(folder), "-i", str(source), "-o", str(tmp_path / "e.npy")])
    assert_one_line_error(capsys, code, "pytorch_model.bin", "isbert convert-weights")


def test_convert_weights_then_load_gives_the_same_embeddings(word_model, word_model_folder: Path, tmp_path: Path):
    folder = pickle_only_copy(word_model_folder, tmp_path / "old")
    assert main(["convert-weights", str(folder)]) == 0
    converted = isbert.load(folder, device="cpu")
    texts = sentences(4)
    torch.testing.assert_close(
        torch.tensor(converted.encode(texts)), torch.tensor(word_model.encode(texts)), rtol=1e-5, atol=1e-6
    )


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_malicious_pickle_is_one_line_without_weights_only_advice(
    word_model_folder: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = pickle_only_copy(word_model_folder, tmp_path / "evil")
    with (folder / "pytorch_model.bin").open("wb") as handle:
        pickle.dump({"weight": _Payload()}, handle)
    monkeypatch.chdir(tmp_path)
    code = main(["convert-weights", str(folder)])
    err = assert_one_line_error(capsys, code, "pytorch_model.bin")
    assert "weights_only=False" not in err and "weights_only" not in err.replace("weights_only=True", "")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    "module_type", ["sentence_transformers.util.cos_sim", "sentence_transformers.NoSuchThing", "sentence_transformers"]
)
def test_a_module_type_that_is_not_a_module_is_one_line(
    word_model_folder: Path, tmp_path: Path, capsys, module_type: str
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(word_model_folder, folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules[2]["type"] = module_type
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / isbert.model_folder.CHECKSUMS_FILE).unlink(missing_ok=True)
    source = write_lines(tmp_path / "in.txt", ["the man runs"])
    code = main(["encode", str(folder), "-i", str(source), "-o", str(tmp_path / "e.npy")])
    assert_one_line_error(capsys, code, "could not load the model")


@pytest.fixture
def interrupted_run(tmp_path: Path, tiny_backbone: Path) -> tuple[dict[str, object], Path]:
    """A run stopped by Ctrl-C at step 4, with the checkpoint it saved (and the settings to resume it)."""

    from isbert.training import TrainingInterrupted, train

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    from helpers_training import ctrl_c_at, write_corpus

    settings: dict[str, object] = {
        "model": str(tiny_backbone), "corpus": [str(write_corpus(tmp_path / "c.txt", 100))],
        "output": str(tmp_path / "run"), "max_steps": 8, "batch_size": 8, "save_steps": 100, "heldout_size": 0,
        "out_channels": 8, "max_seq_length": 16, "show_progress": False, "device": "cpu",
    }  # fmt: skip
    with pytest.raises(TrainingInterrupted):
        train(callbacks=[ctrl_c_at(4)], **settings)
    (checkpoint,) = (tmp_path / "run").rglob("checkpoint-*")
    return settings, checkpoint


@pytest.mark.parametrize("damage", ["marker-step", "marker-json", "rng-pickle"])
def test_a_tampered_checkpoint_is_refused_in_one_line(
    interrupted_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    from isbert.training import train

    settings, checkpoint = interrupted_run
    if damage == "marker-step":
        (checkpoint / checkpoints.MARKER).write_text(json.dumps({"step": "../../x", "selection": None}))
    elif damage == "marker-json":
        (checkpoint / checkpoints.MARKER).write_text("{not json")
    else:
        (rng,) = checkpoint.glob("rng_state*.pth")
        with rng.open("wb") as handle:
            pickle.dump({"state": _Payload()}, handle)
    monkeypatch.chdir(tmp_path)  # where the payload would write
    with pytest.raises(IsbertError, match="checkpoint") as info:
        train(resume=True, **settings)
    assert "\n" not in str(info.value) and "weights_only=False" not in str(info.value)
    assert not (tmp_path / "PWNED").exists()
