"""The one atomic writer: content lands whole, nothing temporary is left, a failed write keeps the old file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from isbert import atomic
from isbert.atomic import atomic_file, save_figure_atomic, write_bytes_atomic, write_json_atomic, write_text_atomic


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", counting)
    return calls


def test_writers_write_the_content(tmp_path: Path, fsyncs: list[int]) -> None:
    assert write_text_atomic(tmp_path / "a.txt", "héllo\n") == tmp_path / "a.txt"
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\xff")
    write_json_atomic(tmp_path / "c.json", {"x": [1, 2]}, indent=2)
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    assert (tmp_path / "c.json").read_text() == json.dumps({"x": [1, 2]}, indent=2) + "\n"
    assert leftovers(tmp_path) == []
    assert len(fsyncs) == 6  # each write: the file, then its folder


def test_json_writes_numpy_scalars_as_floats(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    write_json_atomic(tmp_path / "n.json", {"score": np.float32(0.5)})
    assert json.loads((tmp_path / "n.json").read_text()) == {"score": 0.5}


def test_a_failed_write_keeps_the_old_content(tmp_path: Path, fsyncs: list[int]) -> None:
    target = tmp_path / "kept.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk full"), atomic_file(target) as partial:
        partial.write_text("half", encoding="utf-8")
        raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == "old"
    assert leftovers(tmp_path) == []
    assert fsyncs == []
    with pytest.raises(TypeError):
        write_json_atomic(target, {"not json": object()})
    assert target.read_text(encoding="utf-8") == "old"
    assert leftovers(tmp_path) == []


def test_a_new_file_stays_absent_when_the_write_fails(tmp_path: Path) -> None:
    with pytest.raises(OSError), atomic_file(tmp_path / "new.txt"):
        raise OSError("no space left on device")
    assert list(tmp_path.iterdir()) == []


def test_figures(tmp_path: Path, fsyncs: list[int]) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    path = save_figure_atomic(figure, tmp_path / "curve.png", dpi=50)
    assert path.read_bytes().startswith(b"\x89PNG")
    assert leftovers(tmp_path) == [] and len(fsyncs) == 2
    assert not plt.fignum_exists(figure.number)  # closed


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    """Temporary files are created 0600; what is published must follow the umask like any file the user writes."""
    old = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "out.txt", "hello")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
