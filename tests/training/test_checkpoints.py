"""Checkpoint folders in-process: which folders count, in which order, a damaged marker, and what cleanup removes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isbert.errors import IsbertError
from isbert.training import checkpoints as ckpt
from isbert.training.checkpoints import (
    MARKER,
    PARTIAL_PREFIX,
    latest_checkpoint,
    list_checkpoints,
    read_marker,
    remove_partials,
    rotate,
)

STEPS = st.sets(st.integers(0, 10**6), max_size=12)


def make_checkpoint(folder: Path, step: int, *, marker: bool = True, state: bool = True) -> Path:
    """A checkpoint folder as the trainer writes it; either part can be left out."""
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if state:
        (path / "trainer_state.json").write_text("{}", encoding="utf-8")
    if marker:
        (path / MARKER).write_text(json.dumps({"step": step, "selection": None}), encoding="utf-8")
    return path


def names(folder: Path) -> set[str]:
    return {child.name for child in folder.iterdir()}


def test_the_names_the_trainer_and_cleanup_agree_on() -> None:
    """A changed constant would make the trainer's folders invisible to resume, or cleanup miss the partial ones."""
    assert MARKER == "isbert_checkpoint.json"
    assert PARTIAL_PREFIX == ".partial-"


# --- list_checkpoints ------------------------------------------------------------------------------------------------


def test_checkpoints_are_ordered_by_step_number_not_by_name(tmp_path: Path) -> None:
    """Name order puts checkpoint-10 before checkpoint-9: resume would pick an older step than the newest."""
    for step in (10, 9, 100, 2):
        make_checkpoint(tmp_path, step)
    assert list_checkpoints(tmp_path) == [(step, tmp_path / f"checkpoint-{step}") for step in (2, 9, 10, 100)]


@settings(max_examples=40, deadline=None)
@given(steps=STEPS)
def test_any_set_of_steps_is_listed_oldest_first(tmp_path_factory: pytest.TempPathFactory, steps: set[int]) -> None:
    folder = tmp_path_factory.mktemp("run")
    for step in steps:
        make_checkpoint(folder, step)
    listed = list_checkpoints(folder)
    assert listed == [(step, folder / f"checkpoint-{step}") for step in sorted(steps)]
    assert all(type(step) is int and isinstance(path, Path) for step, path in listed)


def test_a_folder_counts_only_with_both_the_marker_and_the_trainer_state(tmp_path: Path) -> None:
    """A save killed before its marker (or before the trainer state) is not a checkpoint to resume from."""
    make_checkpoint(tmp_path, 1)
    make_checkpoint(tmp_path, 2, marker=False)
    make_checkpoint(tmp_path, 3, state=False)
    make_checkpoint(tmp_path, 4, marker=False, state=False)
    assert list_checkpoints(tmp_path) == [(1, tmp_path / "checkpoint-1")]


@pytest.mark.parametrize(
    "name",
    [
        "checkpoint-3x",
        "xcheckpoint-3",
        "checkpoint-",
        "checkpoint",
        "Checkpoint-3",
        "checkpoint--3",
        "checkpoint-3.5",
        "checkpoint-3\n",  # `$` matches before a final newline
        "checkpoint-\u0663",  # ARABIC-INDIC DIGIT THREE: `\d` and int() accept it
        "checkpoint-\uff13",  # FULLWIDTH DIGIT THREE
    ],
)
def test_only_a_full_checkpoint_step_name_counts(tmp_path: Path, name: str) -> None:
    """A folder named like but not as a checkpoint, complete inside, is neither listed nor a crash."""
    make_checkpoint(tmp_path, 7)
    other = tmp_path / name
    other.mkdir()
    (other / "trainer_state.json").write_text("{}", encoding="utf-8")
    (other / MARKER).write_text(json.dumps({"step": 3, "selection": None}), encoding="utf-8")
    assert list_checkpoints(tmp_path) == [(7, tmp_path / "checkpoint-7")]


def test_a_link_named_like_a_checkpoint_is_skipped_and_the_rest_still_listed(tmp_path: Path) -> None:
    """A link may lead anywhere (resume would read, rotate would delete, through it); one must not end the listing."""
    elsewhere = tmp_path / "elsewhere"
    run = tmp_path / "run"
    run.mkdir()
    for step in range(10):
        make_checkpoint(run, step)
        target = make_checkpoint(elsewhere, 100 + step)
        (run / target.name).symlink_to(target, target_is_directory=True)
        (run / f"link-{step}").symlink_to(target, target_is_directory=True)
    assert list_checkpoints(run) == [(step, run / f"checkpoint-{step}") for step in range(10)]
    assert (elsewhere / "checkpoint-105" / MARKER).is_file()


def test_a_plain_file_named_like_a_checkpoint_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "checkpoint-5").write_text("not a folder", encoding="utf-8")
    make_checkpoint(tmp_path, 6)
    assert list_checkpoints(tmp_path) == [(6, tmp_path / "checkpoint-6")]


def test_no_folder_means_no_checkpoints(tmp_path: Path) -> None:
    """A fresh run has no checkpoint folder yet; a file in its place is not one either (never a crash, never None)."""
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    assert list_checkpoints(tmp_path / "missing") == []
    assert list_checkpoints(tmp_path / "a-file") == []
    assert list_checkpoints(tmp_path) == []


def test_a_string_path_lists_the_same(tmp_path: Path) -> None:
    make_checkpoint(tmp_path, 4)
    make_checkpoint(tmp_path, 12)
    want = [(4, tmp_path / "checkpoint-4"), (12, tmp_path / "checkpoint-12")]
    assert list_checkpoints(str(tmp_path)) == want
    assert list_checkpoints(tmp_path) == want


# --- read_marker -----------------------------------------------------------------------------------------------------


def write_marker(folder: Path, name: str, content: Any) -> Path:
    """``content`` as the marker of ``folder/name``: bytes as they are, anything else as JSON."""
    checkpoint = folder / name
    checkpoint.mkdir()
    data = content if isinstance(content, bytes) else json.dumps(content).encode("utf-8")
    (checkpoint / MARKER).write_bytes(data)
    return checkpoint


@pytest.mark.parametrize(
    "marker",
    [
        {"step": 12, "selection": None},
        {"step": 12, "selection": {"criterion": "stsb", "history": [{"step": 6, "stsb": 0.5}], "note": "é"}},
        {"step": 12, "selection": {}, "extra": [1, 2]},
    ],
)
def test_a_valid_marker_is_returned_as_written(tmp_path: Path, marker: dict[str, Any]) -> None:
    checkpoint = write_marker(tmp_path, "checkpoint-12", marker)
    assert read_marker(checkpoint) == marker


@pytest.mark.parametrize("content", [b"{not json", b"", b'{"step": 3, "selection": null', b'{"step": "\xff3"}'])
def test_an_unreadable_marker_is_one_error_naming_the_file_and_the_fix(tmp_path: Path, content: bytes) -> None:
    """Not JSON or not UTF-8: the parser's reason, the file, and the folder to remove; never a traceback chain."""
    checkpoint = write_marker(tmp_path, "checkpoint-3", content)
    try:
        json.loads(content.decode("utf-8"))
    except ValueError as error:
        reason = str(error)
    with pytest.raises(IsbertError) as caught:
        read_marker(checkpoint)
    path = checkpoint / MARKER
    assert str(caught.value) == f"{path}: damaged checkpoint marker ({reason}); remove {checkpoint} to resume"
    assert type(caught.value) is IsbertError
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


@pytest.mark.parametrize(
    ("name", "marker"),
    [
        ("checkpoint-3", [3, None]),
        ("checkpoint-3", "step 3"),
        ("checkpoint-3", None),
        ("checkpoint-3", {"step": 4, "selection": None}),
        ("checkpoint-3", {"step": 2, "selection": None}),
        ("checkpoint-3", {"step": "3", "selection": None}),
        ("checkpoint-3", {"selection": None}),
        ("checkpoint-3", {"step": 3, "selection": []}),
        ("checkpoint-3", {"step": 3, "selection": "stsb"}),
        ("checkpoint-3", {"step": 3, "selection": 1}),
        ("best", {"step": 3, "selection": None}),
        ("checkpoint-3x", {"step": 3, "selection": None}),
    ],
)
def test_a_marker_that_does_not_fit_its_folder_is_one_error(tmp_path: Path, name: str, marker: Any) -> None:
    """Resuming from a marker of another step (or another shape) would restore a selection history that is not its."""
    checkpoint = write_marker(tmp_path, name, marker)
    with pytest.raises(IsbertError) as caught:
        read_marker(checkpoint)
    path = checkpoint / MARKER
    assert str(caught.value) == f"{path}: damaged checkpoint marker; remove {checkpoint} to resume from an earlier one"
    assert type(caught.value) is IsbertError
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_a_missing_marker_is_not_taken_for_a_damaged_one(tmp_path: Path) -> None:
    """Only a present but damaged marker is the user's to fix; a missing file is the caller's bug, left as it is."""
    (tmp_path / "checkpoint-3").mkdir()
    with pytest.raises(FileNotFoundError):
        read_marker(tmp_path / "checkpoint-3")


# --- latest_checkpoint -----------------------------------------------------------------------------------------------


def test_the_latest_checkpoint_is_the_highest_step(tmp_path: Path) -> None:
    for step in (3, 100, 20, 9):
        make_checkpoint(tmp_path, step)
    make_checkpoint(tmp_path, 500, marker=False)  # incomplete: never resumed from
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-100"
    assert latest_checkpoint(str(tmp_path)) == tmp_path / "checkpoint-100"


def test_no_checkpoint_means_none(tmp_path: Path) -> None:
    make_checkpoint(tmp_path, 5, state=False)
    assert latest_checkpoint(tmp_path) is None
    assert latest_checkpoint(tmp_path / "missing") is None


@settings(max_examples=40, deadline=None)
@given(steps=STEPS)
def test_the_latest_of_any_set_of_steps(tmp_path_factory: pytest.TempPathFactory, steps: set[int]) -> None:
    folder = tmp_path_factory.mktemp("run")
    for step in steps:
        make_checkpoint(folder, step)
    assert latest_checkpoint(folder) == (folder / f"checkpoint-{max(steps)}" if steps else None)


# --- remove_partials -------------------------------------------------------------------------------------------------


def test_only_partial_folders_are_removed(tmp_path: Path) -> None:
    """An interrupted save's staging folders go; a checkpoint, or a name that merely contains the prefix, stays."""
    for name in (".partial-5", ".partial-final", ".partial-"):
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "sub" / "model.safetensors").write_bytes(b"x")
    kept = {"partial-x", "x.partial-", ".partialx", "._partial-1", "checkpoint-1", "best"}
    for name in kept - {"checkpoint-1"}:
        (tmp_path / name).mkdir()
    make_checkpoint(tmp_path, 1)
    remove_partials(tmp_path)
    assert names(tmp_path) == kept
    assert list_checkpoints(tmp_path) == [(1, tmp_path / "checkpoint-1")]
    remove_partials(str(tmp_path))  # nothing left to remove, and a string path is fine
    assert names(tmp_path) == kept


def test_removing_partials_never_fails(tmp_path: Path) -> None:
    """Cleanup at start must not stop a run: no folder yet, a file in its place, or a partial that is a plain file."""
    remove_partials(tmp_path / "missing")
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    remove_partials(tmp_path / "a-file")
    (tmp_path / ".partial-file").write_text("x", encoding="utf-8")
    (tmp_path / ".partial-7").mkdir()
    remove_partials(tmp_path)
    assert not (tmp_path / ".partial-7").exists()
    assert (tmp_path / "a-file").is_file()


# --- rotate ----------------------------------------------------------------------------------------------------------


def incomplete_and_other(folder: Path) -> set[str]:
    """Folders rotation must leave alone, as names."""
    make_checkpoint(folder, 0, marker=False)
    make_checkpoint(folder, 999, state=False)
    (folder / ".partial-50").mkdir()
    (folder / "best").mkdir()
    return {"checkpoint-0", "checkpoint-999", ".partial-50", "best"}


@pytest.mark.parametrize(
    ("keep_last", "kept"),
    [(2, [20, 100]), (1, [100]), (0, []), (4, [2, 10, 20, 100]), (5, [1, 2, 10, 20, 100]), (50, [1, 2, 10, 20, 100])],
)
def test_rotation_keeps_the_newest_complete_checkpoints(tmp_path: Path, keep_last: int, kept: list[int]) -> None:
    """Newest by step number (not by name), exactly ``keep_last`` of them; incomplete folders are not counted."""
    for step in (10, 2, 100, 1, 20):
        make_checkpoint(tmp_path, step)
    others = incomplete_and_other(tmp_path)
    rotate(tmp_path, keep_last)
    assert list_checkpoints(tmp_path) == [(step, tmp_path / f"checkpoint-{step}") for step in kept]
    assert names(tmp_path) == others | {f"checkpoint-{step}" for step in kept}


@settings(max_examples=40, deadline=None)
@given(steps=STEPS, keep_last=st.integers(0, 14))
def test_rotation_keeps_the_top_k_of_any_set(
    tmp_path_factory: pytest.TempPathFactory, steps: set[int], keep_last: int
) -> None:
    folder = tmp_path_factory.mktemp("run")
    for step in steps:
        make_checkpoint(folder, step)
    rotate(str(folder), keep_last)
    want = sorted(steps)[len(steps) - min(keep_last, len(steps)) :]
    assert [step for step, _ in list_checkpoints(folder)] == want
    assert names(folder) == {f"checkpoint-{step}" for step in want}


def test_rotation_of_nothing_is_fine(tmp_path: Path) -> None:
    rotate(tmp_path / "missing", 2)
    others = incomplete_and_other(tmp_path)
    rotate(tmp_path, 0)
    assert names(tmp_path) == others


def test_a_checkpoint_that_cannot_be_removed_does_not_stop_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rotation runs inside every save: a folder another process holds must not fail the save (it goes next time)."""
    for step in (1, 2, 3, 4):
        make_checkpoint(tmp_path, step)
    stuck = tmp_path / "checkpoint-1"
    real_rmtree = shutil.rmtree

    def rmtree(path: Any, ignore_errors: bool = False, *args: Any, **kwargs: Any) -> None:
        if Path(path) == stuck:
            if not ignore_errors:
                raise PermissionError(f"{path} is busy")
            return
        real_rmtree(path, ignore_errors, *args, **kwargs)

    monkeypatch.setattr(ckpt.shutil, "rmtree", rmtree)
    rotate(tmp_path, 1)
    assert list_checkpoints(tmp_path) == [(1, stuck), (4, tmp_path / "checkpoint-4")]
