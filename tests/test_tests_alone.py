"""tools/tests_alone.py: each test alone, first in a forked process, finds the test that passes only after another."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import tests_alone

ORDER_DEPENDENT = """
import state


def test_sets_the_state():
    state.ready = True


def test_needs_the_state():
    assert getattr(state, "ready", False)


def test_alone_is_fine():
    assert True
"""


def test_a_test_that_passes_only_after_another_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "state.py").write_text("")
    (tmp_path / "test_order.py").write_text(ORDER_DEPENDENT)
    kills = tmp_path / "mutmut-kills.tsv"
    kills.write_text(
        "m.x_f\ttest_order.py::test_needs_the_state\nm.x_g\ttest_order.py::test_sets_the_state\n"
        "m.x_f\ttest_order.py::test_needs_the_state\n"
    )
    listed = tmp_path / "more.txt"
    listed.write_text("test_order.py::test_alone_is_fine\n\n")
    assert tests_alone.test_ids([kills, listed]) == [
        "test_order.py::test_needs_the_state", "test_order.py::test_sets_the_state", "test_order.py::test_alone_is_fine"
    ]  # fmt: skip
    tabbed = tmp_path / "tabbed.tsv"  # a test id may hold a tab: the first one ends the function, as the hooks read it
    tabbed.write_text("m.x_h\ttest_order.py::test_p[a\tb]\n")
    assert tests_alone.test_ids([tabbed]) == ["test_order.py::test_p[a\tb]"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert tests_alone.main([str(kills), str(listed), "--no-warm", "--logs", str(tmp_path / "logs")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "failed alone: test_order.py::test_needs_the_state"
    assert out[-2].startswith("3 tests alone in") and out[-2].endswith("; 1 failed")
    assert len(list((tmp_path / "logs").iterdir())) == 3
