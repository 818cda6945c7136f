"""Names read from a file inside a folder never lead outside it: tried with hostile names and links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isbert.confined import confined_path, escape
from isbert.errors import IsbertError

SEGMENTS = st.sampled_from(["a", "b.txt", "..", ".", "", "link", "\x00", "c\\d", "/"])


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """folder/ with a file, a subfolder and a link to a secret beside the folder."""
    root = tmp_path_factory.mktemp("confined")
    folder = root / "folder"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "b.txt").write_text("inside", encoding="utf-8")
    (root / "secret.txt").write_text("outside", encoding="utf-8")
    os.symlink(root / "secret.txt", folder / "link")
    return folder


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../secret.txt", "points outside"),
        ("a/../../secret.txt", "points outside"),
        ("/etc/passwd", "points outside"),
        ("link", "is a link leading outside"),
        ("", "is not a file name"),
        ("a\x00b", "is not a file name"),
        ("a\\b.txt", "is not a file name"),
        (7, "is not a file name"),
    ],
)
def test_hostile_names_are_refused_in_one_line(tree: Path, name: object, reason: str) -> None:
    with pytest.raises(IsbertError, match=reason) as error:
        confined_path(tree, name, "manifest.json")
    assert "\n" not in str(error.value) and str(error.value).startswith("manifest.json: ")


def test_a_name_inside_is_kept_as_given(tree: Path) -> None:
    assert confined_path(tree, "a/b.txt", "manifest.json") == tree / "a" / "b.txt"
    assert escape(tree, "a/./b.txt") is None


@settings(max_examples=300, deadline=None)
@given(st.lists(SEGMENTS, min_size=1, max_size=5).map("/".join))
def test_whatever_is_accepted_resolves_inside(tree: Path, name: str) -> None:
    try:
        path = confined_path(tree, name, "manifest.json")
    except IsbertError:
        return
    assert path.resolve().is_relative_to(tree.resolve())
