"""--input: several files, folders and quoted glob patterns, in a deterministic order with file:line provenance;
hostile inputs (link loops, unreadable or binary files, FIFOs) are one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waiting import planted_fifo, returns_without_waiting

from isbert.errors import IsbertError
from isbert.inputs import describe, expand_inputs, iter_input_texts


def write(path: Path, text: str = "a line\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_files_folders_and_patterns_in_order_each_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "docs/b.txt")
    write(tmp_path / "docs/a.jsonl", '{"text": "x"}\n')
    write(tmp_path / "docs/sub/c.csv.gz", "")
    write(tmp_path / "docs/notes.md")  # not a text-file name: a folder does not contribute it
    write(tmp_path / "docs/.hidden/d.txt")
    write(tmp_path / "extra/z.tsv")
    write(tmp_path / "extra/y.txt")
    files = expand_inputs(["extra/z.tsv", "docs", "extra/*.t*", "docs/b.txt"])
    assert [f.label for f in files] == [
        "extra/z.tsv",
        "docs/a.jsonl",
        "docs/b.txt",
        "docs/sub/c.csv.gz",
        "extra/y.txt",
    ]
    assert [f.path for f in expand_inputs("docs/**/*.gz")] == [Path("docs/sub/c.csv.gz")]
    assert [f.label for f in expand_inputs(str(tmp_path / "docs" / "b.txt"))] == ["b.txt"]  # one file: its name
    assert [f.label for f in expand_inputs("docs/notes.md")] == ["notes.md"]  # named explicitly: read as text


def test_records_carry_their_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "a/x.txt", "one\n\ntwo\n")
    write(tmp_path / "b/x.txt", "three\n")
    files = expand_inputs([tmp_path / "a/x.txt", tmp_path / "b"])
    got = [(f"{file.label}:{line}", text) for file, line, text in iter_input_texts(files, skip_empty=True)]
    assert got == [("a/x.txt:1", "one"), ("a/x.txt:3", "two"), ("b/x.txt:1", "three")]
    assert describe(files) == f"{tmp_path / 'a/x.txt'} and 1 more files"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: "missing.txt", "input file not found: missing.txt"),
        (lambda root: "'*.nothing'", "no files match \"'\\*.nothing'\""),
        (lambda root: "*.nothing", r"no files match '\*.nothing'"),
        (lambda root: str(write(root / "empty/readme.md").parent), "no text files in this folder"),
        (lambda root: "", "an empty input path"),
    ],
)
def test_what_matches_nothing_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make, message) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(IsbertError, match=message) as caught:
        expand_inputs([make(tmp_path)])
    assert "\n" not in str(caught.value)


def test_link_loops_are_refused_or_not_entered(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    write(folder / "a.txt")
    (folder / "again").symlink_to(folder)  # a folder link back up: not entered, so the walk ends
    assert [f.label for f in expand_inputs(folder)] == ["a.txt"]
    (folder / "loop.txt").symlink_to(folder / "loop.txt")
    with pytest.raises(IsbertError, match=r"loop\.txt: a broken or looping symbolic link"):
        expand_inputs(folder)
    with pytest.raises(IsbertError, match=r"loop\.txt: a broken or looping symbolic link"):
        expand_inputs(folder / "loop.txt")


def test_a_fifo_in_a_folder_is_skipped_not_opened(tmp_path: Path) -> None:
    write(tmp_path / "a.txt")
    fifo = planted_fifo(tmp_path / "pipe.txt")  # opening it would wait for a writer forever
    assert [f.label for f in returns_without_waiting(lambda: expand_inputs(tmp_path), fifo)] == ["a.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    locked = write(tmp_path / "locked.txt")
    locked.chmod(0)
    with pytest.raises(IsbertError, match=r"locked\.txt: cannot read \(Permission denied\)"):
        expand_inputs(tmp_path)


def test_unreadable_folder_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "sub/a.txt")

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "scandir", refuse)  # what os.walk meets in a folder it may not list
    with pytest.raises(IsbertError, match="cannot read the folder"):
        expand_inputs(tmp_path)


names = st.lists(st.from_regex(r"[a-c]{1,3}(/[a-c]{1,2})?\.(txt|jsonl|csv)", fullmatch=True), min_size=1, max_size=8)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=names, reverse=st.booleans())
def test_a_folder_reads_the_same_whatever_the_creation_order(tmp_path_factory, names: list[str], reverse: bool):
    root = tmp_path_factory.mktemp("order")
    unique = sorted(set(names), reverse=reverse)
    created = []
    for name in unique:
        if any(name.startswith(other.rsplit(".", 1)[0] + "/") or other.startswith(name.rsplit(".", 1)[0] + "/")
               for other in created):  # fmt: skip
            continue  # a file and a folder of the same stem cannot both exist
        write(root / name)
        created.append(name)
    files = expand_inputs(root)
    assert sorted(f.path for f in files) == sorted(root / name for name in created)
    assert all(str(f.path).endswith("/" + f.label) for f in files) and len({f.label for f in files}) == len(files)
    assert files == expand_inputs([root, *(root / name for name in created)])  # each file once, first place kept
    relative = [f.path.relative_to(root) for f in files]
    for folder in {path.parent for path in relative}:  # within a folder: its files sorted
        inside = [path.name for path in relative if path.parent == folder]
        assert inside == sorted(inside)
