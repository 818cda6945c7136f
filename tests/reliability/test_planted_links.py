"""Planted links (issue 29, class 1): a symlink or hard link to a victim file, left at a name a command writes next.

Whoever can write into a folder isbert writes to (a shared run folder, an index handed over, a scratch folder) can
leave a link at a name isbert will create or append to. Every command must replace such a name, or refuse it in
one line, and never write through it: each test plants both kinds at every such name, runs the command, and
compares the victim's bytes.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import isbert
from isbert.cli import main
from isbert.errors import IsbertError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "search"))
from test_search_index import make_word_model_folder, sentences, write_lines

pytestmark = pytest.mark.reliability
VICTIM = b"victim: do not touch\n"
KINDS = ["symlink", "hardlink"]


@pytest.fixture(autouse=True)
def _each_plant_is_a_fault(reliability) -> None:
    reliability.fault()


@pytest.fixture(scope="module")
def word_model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_word_model_folder(tmp_path_factory.mktemp("planted-model"))


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    return make_victim(tmp_path)


def make_victim(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(VICTIM)
    return outside / "victim.txt"


def plant(folder: Path, names: list[str], victim: Path, kind: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).unlink(missing_ok=True)
        if kind == "symlink":
            (folder / name).symlink_to(victim)
        else:
            os.link(victim, folder / name)


def untouched(victim: Path) -> bool:
    return victim.read_bytes() == VICTIM and victim.parent.joinpath("victim.txt").stat().st_size == len(VICTIM)


def one_line(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------------------------------------ index build / add
GENERATION_2 = ["vectors-000002.faiss", ".vectors-000002.faiss.partial"]
DATABASE_NAMES = ["index.sqlite-wal", "index.sqlite-shm", "index.sqlite-journal"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["add", "build --overwrite"])
def test_index_writes_never_go_through_a_planted_link(
    word_model_folder: Path, tmp_path: Path, victim: Path, kind: str, command: str, capsys
) -> None:
    index, model = tmp_path / "idx", str(word_model_folder)
    corpus = write_lines(tmp_path / "c.txt", sentences(20))
    assert main(["index", "build", str(index), "--model", model, "-i", str(corpus), "--no-progress"]) == 0
    plant(index, GENERATION_2, victim, kind)
    if kind == "hardlink":
        plant(index, [".lock"], victim, kind)
    more = write_lines(tmp_path / "more.txt", sentences(5, offset=40))
    if command == "add":
        code = main(["index", "add", str(index), "-i", str(more), "--model", model, "--no-progress"])
    else:
        code = main(["index", "build", str(index), "--model", model, "-i", str(more), "--overwrite", "--no-progress"])
    if kind == "hardlink":  # the lock is refused before anything is written
        assert ".lock" in one_line(capsys, code)
    else:
        assert code == 0, capsys.readouterr().err
        assert main(["search", str(index), "the man runs", "-k", "1"]) == 0
    assert untouched(victim)


def test_a_temporary_swapped_for_a_link_while_faiss_writes_changes_nothing_outside(
    word_model_folder: Path, tmp_path: Path, victim: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The race a check cannot close for a writer that reopens a name: an attacker replaces the new temporary with
    a link just before faiss writes. The vectors go through the handle isbert created, so the victim is untouched
    and the swapped name is refused, not published."""
    import faiss

    index, model = tmp_path / "idx", str(word_model_folder)
    corpus = write_lines(tmp_path / "c.txt", sentences(20))
    assert main(["index", "build", str(index), "--model", model, "-i", str(corpus), "--no-progress"]) == 0
    write_index = faiss.write_index

    def swap_then_write(vectors, target):
        for partial in index.glob(".vectors-*.partial*"):
            partial.unlink()
            partial.symlink_to(victim)
        return write_index(vectors, target)

    monkeypatch.setattr(faiss, "write_index", swap_then_write)
    more = write_lines(tmp_path / "more.txt", sentences(5, offset=40))
    code = main(["index", "add", str(index), "-i", str(more), "--model", model, "--no-progress"])
    assert "refused" in one_line(capsys, code)
    assert untouched(victim)
    monkeypatch.undo()
    assert main(["search", str(index), "the man runs", "-k", "1"]) == 0  # the old generation still answers


def test_a_vectors_file_swapped_for_a_link_after_its_check_is_not_followed(
    word_model_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader's side of that race: the vectors file is checked (a plain file of the folder), then swapped for a
    link to another index's vectors of the same shape just before faiss reads it. faiss reads the file that was
    checked, through the handle isbert opened, never the link."""
    import faiss

    from isbert.search import store
    from isbert.search.index import SearchIndex

    model = isbert.load(word_model_folder, device="cpu")
    for name, offset in (("idx", 0), ("outside", 40)):
        corpus = write_lines(tmp_path / f"{name}.txt", sentences(20, offset=offset))
        SearchIndex.build(tmp_path / name, model, str(word_model_folder), corpus, show_progress=False)
    vectors = tmp_path / "idx" / store.vectors_name(1)
    own, foreign = (
        faiss.read_index(str(path)).reconstruct(0) for path in (vectors, tmp_path / "outside" / vectors.name)
    )
    assert not np.allclose(own, foreign)
    read_index = faiss.read_index

    def swap_then_read(path: str, *args):
        vectors.unlink()
        vectors.symlink_to(tmp_path / "outside" / vectors.name)
        return read_index(path, *args)

    monkeypatch.setattr(faiss, "read_index", swap_then_read)
    np.testing.assert_array_equal(SearchIndex.open(tmp_path / "idx").index.reconstruct(0), own)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["add", "delete", "build --overwrite", "new build"])
def test_links_at_the_database_names_are_refused_or_replaced(
    word_model_folder: Path, tmp_path: Path, victim: Path, kind: str, command: str, capsys
) -> None:
    """SQLite writes its side files (and, through a link, its database) wherever the name leads: writers refuse a
    link at any of them; a build that replaces the folder unlinks them (never follows) and starts fresh."""
    index, model = tmp_path / "idx", str(word_model_folder)
    corpus = write_lines(tmp_path / "c.txt", sentences(20))
    if command != "new build":
        assert main(["index", "build", str(index), "--model", model, "-i", str(corpus), "--no-progress"]) == 0
    plant(index, [*DATABASE_NAMES, *(["index.sqlite"] if command != "add" else [])], victim, kind)
    more = write_lines(tmp_path / "more.txt", sentences(5, offset=40))
    build = ["index", "build", str(index), "--model", model, "-i", str(more), "--no-progress"]
    if command == "add":
        assert "refused" in one_line(capsys, main(["index", "add", str(index), "-i", str(more), "--no-progress"]))
    elif command == "delete":
        assert "refused" in one_line(capsys, main(["index", "delete", str(index), "--id", "1"]))
    elif command == "new build":
        assert "--overwrite" in one_line(capsys, main(build))
        assert main([*build, "--overwrite"]) == 0
    else:
        assert main([*build, "--overwrite"]) == 0
    if command in ("new build", "build --overwrite"):
        assert main(["search", str(index), "the man runs", "-k", "1"]) == 0
    assert untouched(victim)


# ------------------------------------------------------------------------------------------------ encode
ENCODE_NAMES = [
    "vectors.npy",
    ".vectors.npy.partial",
    "vectors.sources.csv",
    ".vectors.sources.csv.partial",
    ".vectors.npy.progress.json",
]


@pytest.mark.parametrize("kind", KINDS)
def test_encode_never_writes_through_a_planted_link(
    word_model_folder: Path, tmp_path: Path, victim: Path, kind: str
) -> None:
    corpus = write_lines(tmp_path / "c.txt", sentences(12))
    plant(tmp_path / "out", ENCODE_NAMES, victim, kind)
    output = tmp_path / "out" / "vectors.npy"
    assert main(["encode", str(word_model_folder), "-i", str(corpus), "-o", str(output), "--no-progress"]) == 0
    assert untouched(victim)
    assert not output.is_symlink() and output.stat().st_nlink == 1


@pytest.mark.parametrize("kind", KINDS)
def test_encode_does_not_resume_into_a_planted_partial(
    word_model_folder: Path, tmp_path: Path, victim: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forged progress file naming this very job, beside a partial matrix that is a link to the victim."""
    import isbert
    import isbert.encode as encode_module

    corpus = write_lines(tmp_path / "c.txt", sentences(12))
    output = tmp_path / "out" / "vectors.npy"
    model = isbert.load(word_model_folder, device="cpu")
    jobs: list[object] = []
    real_job = encode_module._job
    monkeypatch.setattr(encode_module, "_job", lambda *a, **k: jobs.append(real_job(*a, **k)) or jobs[-1])
    encode_file = encode_module.encode_file
    encode_file(model, corpus, tmp_path / "probe" / "vectors.npy", chunk_size=4, show_progress=False)
    victim.write_bytes(VICTIM * 200)  # long enough to pass for this job's partial matrix
    progress = {"job": jobs[0], "done": {"written": 4, "empty": 0, "truncated": 0}}
    plant(tmp_path / "out", [".vectors.npy.partial"], victim, kind)
    (tmp_path / "out" / ".vectors.npy.progress.json").write_text(json.dumps(progress))
    encode_file(model, corpus, output, chunk_size=4, show_progress=False)
    assert victim.read_bytes() == VICTIM * 200
    assert output.stat().st_nlink == 1 and not output.is_symlink()


# ------------------------------------------------------------------------------------------------ training log / run
@pytest.mark.parametrize("kind", KINDS)
def test_the_run_log_refuses_a_planted_link(tmp_path: Path, victim: Path, kind: str) -> None:
    from isbert.training.run_log import RunLog

    plant(tmp_path / "run", ["training_log.jsonl"], victim, kind)
    log = RunLog(tmp_path / "run" / "training_log.jsonl")
    with pytest.raises(IsbertError, match="refused") as info:
        log.write({"event": "start"})
    assert "\n" not in str(info.value)
    with pytest.raises(IsbertError, match="refused"):
        log.truncate_after(3)
    assert untouched(victim)


@pytest.fixture
def interrupted(tmp_path: Path, tiny_backbone: Path) -> dict[str, object]:
    """The settings of a run stopped by Ctrl-C at step 2 of 4, with the checkpoint it saved."""

    from isbert.training import TrainingInterrupted, train

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    from helpers_training import ctrl_c_at, write_corpus

    settings: dict[str, object] = {
        "model": str(tiny_backbone), "corpus": [str(write_corpus(tmp_path / "c.txt", 64))],
        "output": str(tmp_path / "run"), "max_steps": 4, "batch_size": 8, "save_steps": 100, "heldout_size": 0,
        "out_channels": 8, "max_seq_length": 16, "show_progress": False, "device": "cpu",
    }  # fmt: skip
    with pytest.raises(TrainingInterrupted):
        train(callbacks=[ctrl_c_at(2)], **settings)
    return settings


def test_a_resumed_run_replaces_planted_staging_links(interrupted: dict[str, object], victim: Path) -> None:
    """Folders a run writes into next (``.partial-STEP``, ``.partial-best``, ``.partial-final``, the corpus cache),
    planted as links to a victim folder holding files of the names the run writes, are replaced by fresh ones."""
    from isbert.training import train

    for name in ("config.json", "model.safetensors", "README.md", "isbert_checkpoint.json", "modules.json"):
        (victim.parent / name).write_bytes(VICTIM)
    before = {p.name: p.read_bytes() for p in victim.parent.iterdir()}
    run = Path(str(interrupted["output"]))
    staging = [run / ".partial-final", *(run / "checkpoints" / f".partial-{n}" for n in (2, 3, 4, "best"))]
    staging.append(run / ".corpus-cache")  # the Arrow cache of the corpus, rebuilt by every start
    for name in staging:
        shutil.rmtree(name) if name.is_dir() else name.unlink(missing_ok=True)
        name.symlink_to(victim.parent, target_is_directory=True)
    train(resume=True, **interrupted)
    assert {p.name: p.read_bytes() for p in victim.parent.iterdir()} == before
    assert (run / "model.safetensors").is_file()


def test_a_resumed_run_refuses_a_planted_log_link(interrupted: dict[str, object], victim: Path) -> None:
    from isbert.training import train

    plant(Path(str(interrupted["output"])), ["training_log.jsonl"], victim, "hardlink")
    with pytest.raises(IsbertError, match="refused") as info:
        train(resume=True, **interrupted)
    assert "\n" not in str(info.value) and untouched(victim)


# ------------------------------------------------------------------------------------------------ cluster / eval
@pytest.mark.parametrize("kind", KINDS)
def test_cluster_outputs_replace_planted_links(
    word_model_folder: Path, tmp_path: Path, victim: Path, kind: str
) -> None:
    corpus = write_lines(tmp_path / "c.txt", sentences(30))
    out = tmp_path / "clusters"
    plant(out, ["assignments.csv", "clusters.json", "projection.png"], victim, kind)
    args = ["cluster", str(word_model_folder), "-i", str(corpus), "--k", "3", "-o", str(out), "--no-progress"]
    assert main([*args, "--projection", "pca"]) == 0
    assert untouched(victim)
    assert all(p.stat().st_nlink == 1 and not p.is_symlink() for p in out.iterdir())


@pytest.mark.parametrize("kind", KINDS)
def test_eval_reports_replace_planted_links(word_model_folder: Path, tmp_path: Path, victim: Path, kind: str) -> None:
    pairs = tmp_path / "pairs.tsv"
    texts = sentences(6)
    pairs.write_text(
        "text1\ttext2\tscore\n" + "".join(f"{a}\t{b}\t{i}\n" for i, (a, b) in enumerate(itertools.pairwise(texts)))
    )
    out = tmp_path / "reports"
    plant(out, ["r.json", "r.md"], victim, kind)
    args = ["eval", str(word_model_folder), "--pairs", str(pairs), "--no-progress"]
    assert main([*args, "--json", str(out / "r.json"), "--markdown", str(out / "r.md")]) == 0
    assert untouched(victim)
    assert json.loads((out / "r.json").read_text())["pairs"]["n"] == 5
