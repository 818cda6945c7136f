"""Planted links at every name a whole command writes (issue 29, class 1): ``export``, ``baseline``, ``similar -o``
and ``train``. Each test runs the command once into a clean folder to learn the names it writes (files in
sub-folders included), plants a symlink or a hard link to a victim file at each of those names in a second folder,
runs the command again into it, and checks the victim's bytes and that every name written is a fresh file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from test_planted_links import KINDS, make_victim, plant, untouched

from isbert.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "search"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from helpers_training import write_corpus
from test_search_index import sentences, write_lines

pytestmark = pytest.mark.reliability


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    return make_victim(tmp_path)


def names_written(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def plant_everywhere(folder: Path, names: list[str], victim: Path, kind: str) -> None:
    for name in names:
        plant((folder / name).parent, [Path(name).name], victim, kind)


def assert_fresh(folder: Path, names: list[str]) -> None:
    for name in names:
        path = folder / name
        assert not path.is_symlink() and path.stat().st_nlink == 1, name


def attack(
    tmp_path: Path, victim: Path, kind: str, run: Callable[[Path], int], *, folder: bool = True
) -> tuple[Path, list[str]]:
    """Run the command into ``clean`` to learn its names, then into a folder of links at those names."""
    clean, planted = tmp_path / "clean", tmp_path / "planted"
    assert run(clean) == 0
    names = names_written(clean) if folder else [clean.name]
    root = planted if folder else planted.parent
    plant_everywhere(root, names, victim, kind)
    assert run(planted if folder else root / clean.name) == 0
    assert untouched(victim)
    assert_fresh(root, names)
    return root, names


@pytest.mark.parametrize("kind", KINDS)
def test_export_replaces_links_at_every_name(tiny_isbert_folder: Path, tmp_path: Path, victim: Path, kind: str) -> None:
    pytest.importorskip("onnxruntime")
    _, names = attack(
        tmp_path,
        victim,
        kind,
        lambda out: main(["export", str(tiny_isbert_folder), "-o", str(out), "--quantization", "none"]),
    )
    assert "isbert_onnx.json" in names


@pytest.mark.parametrize("kind", KINDS)
def test_baseline_replaces_links_at_every_name(tiny_backbone: Path, tmp_path: Path, victim: Path, kind: str) -> None:
    corpus = write_corpus(tmp_path / "c.txt", 200)
    args = ["baseline", "sif", str(tiny_backbone), "-i", str(corpus), "--encoder-layers", "0", "--overwrite"]
    _, names = attack(tmp_path, victim, kind, lambda out: main([*args, "-o", str(out)]))
    assert "modules.json" in names


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("suffix", [".jsonl", ".tsv"])
def test_similar_output_replaces_a_link(
    tiny_isbert_folder: Path, tmp_path: Path, victim: Path, kind: str, suffix: str
) -> None:
    corpus = write_lines(tmp_path / "c.txt", sentences(20))
    args = ["similar", str(tiny_isbert_folder), "-i", str(corpus), "--threshold", "-1", "--no-progress"]
    out = tmp_path / "out" / f"pairs{suffix}"
    assert main([*args, "-o", str(tmp_path / f"clean{suffix}")]) == 0
    plant(out.parent, [out.name], victim, kind)
    assert main([*args, "-o", str(out)]) == 0
    assert untouched(victim)
    assert_fresh(out.parent, [out.name])
    assert out.read_bytes() == (tmp_path / f"clean{suffix}").read_bytes()


@pytest.mark.parametrize("kind", KINDS)
def test_train_replaces_links_at_every_name_of_a_run(
    tiny_backbone: Path, tmp_path: Path, victim: Path, kind: str
) -> None:
    """A fresh run into a folder holding a (forged) run and links at every name a run writes: ``--overwrite``."""
    corpus = write_corpus(tmp_path / "c.txt", 64)
    args = ["train", "--model", str(tiny_backbone), "--corpus", str(corpus), "--max-steps", "2", "--batch-size", "8"]
    args += ["--save-steps", "1", "--heldout-size", "0", "--out-channels", "8", "--max-seq-length", "16"]
    args += ["--device", "cpu", "--no-progress", "--overwrite"]
    attack(tmp_path, victim, kind, lambda out: main([*args, "--output", str(out)]))


def test_train_overwrite_replaces_a_link_at_the_output_folder(
    tiny_backbone: Path, tmp_path: Path, victim: Path
) -> None:
    """``--output`` itself a symlink to another folder (the victim's, with a forged run file to pass the checks):
    ``--overwrite`` replaces the link by a fresh folder (it was a one-line error from rmtree, naming no fix)."""
    corpus = write_corpus(tmp_path / "c.txt", 64)
    (victim.parent / "training_run.json").write_text('{"trajectory": {}}')
    before = {path.name: path.read_bytes() for path in victim.parent.iterdir()}
    (tmp_path / "run").symlink_to(victim.parent, target_is_directory=True)
    args = ["train", "--model", str(tiny_backbone), "--corpus", str(corpus), "--max-steps", "2", "--batch-size", "8"]
    args += ["--heldout-size", "0", "--out-channels", "8", "--max-seq-length", "16", "--device", "cpu"]
    code = main([*args, "--no-progress", "--overwrite", "--output", str(tmp_path / "run")])
    assert {path.name: path.read_bytes() for path in victim.parent.iterdir()} == before
    assert code == 0 and not (tmp_path / "run").is_symlink() and (tmp_path / "run" / "model.safetensors").is_file()
