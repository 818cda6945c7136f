"""The one atomic writer: content lands whole, nothing temporary is left, a failed write keeps the old file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from waiting import planted_fifo, returns_without_waiting

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


# ------------------------------------------------------------------------------------------ planted links (issue 29)
VICTIM = b"do not touch\n"


def plant(name: Path, victim: Path, kind: str) -> None:
    """A link at ``name`` to ``victim``: what an attacker with write access to the folder leaves there."""
    if kind == "symlink":
        name.symlink_to(victim)
    else:
        os.link(victim, name)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(VICTIM)
    return outside / "victim.txt"


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
@pytest.mark.parametrize("writer", ["text", "bytes", "json", "open", "file"])
def test_a_link_at_the_target_is_replaced_never_written_through(
    tmp_path: Path, victim: Path, kind: str, writer: str
) -> None:
    target = tmp_path / "out.txt"
    plant(target, victim, kind)
    if writer == "text":
        write_text_atomic(target, "new")
    elif writer == "bytes":
        write_bytes_atomic(target, b"new")
    elif writer == "json":
        write_json_atomic(target, "new")
    elif writer == "open":
        with atomic.atomic_open(target, "w", encoding="utf-8") as handle:
            handle.write("new")
    else:
        with atomic_file(target) as partial, partial.open("w") as handle:
            handle.write("new")
    assert victim.read_bytes() == VICTIM
    assert not target.is_symlink() and target.stat().st_nlink == 1 and "new" in target.read_text()


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_temporary_swapped_for_a_link_is_never_published(tmp_path: Path, victim: Path, kind: str) -> None:
    """A writer that takes a file name reopens it: a link put in its place meanwhile is refused, not renamed."""
    target = tmp_path / "out.txt"
    with pytest.raises(atomic.IsbertError, match="refused"), atomic_file(target) as partial:
        partial.unlink()
        plant(partial, victim, kind)
    assert not target.exists() and victim.read_bytes() == VICTIM
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_create_fresh_unlinks_a_planted_link(tmp_path: Path, victim: Path, kind: str) -> None:
    target = tmp_path / "grown.bin"
    plant(target, victim, kind)
    fd = atomic.create_fresh(target)
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"new")
    assert victim.read_bytes() == VICTIM and target.read_bytes() == b"new" and not target.is_symlink()


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_appending_refuses_a_planted_link(tmp_path: Path, victim: Path, kind: str) -> None:
    log = tmp_path / "log.jsonl"
    plant(log, victim, kind)
    with pytest.raises(atomic.IsbertError, match="refused") as info:
        atomic.open_append(log)
    assert "\n" not in str(info.value) and victim.read_bytes() == VICTIM


def test_appending_creates_then_appends(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    for line in (b"a\n", b"b\n"):
        with atomic.open_append(log) as handle:
            handle.write(line)
    assert log.read_bytes() == b"a\nb\n"


def test_appending_never_opens_a_fifo(tmp_path: Path) -> None:
    fifo = planted_fifo(tmp_path / "log.jsonl")
    with pytest.raises(atomic.IsbertError, match=r"not a regular file|cannot append"):  # ENXIO: no reader
        returns_without_waiting(lambda: atomic.open_append(fifo), fifo)


def test_fresh_dir_unlinks_a_planted_folder_link(tmp_path: Path, victim: Path) -> None:
    staging = tmp_path / ".partial-final"
    staging.symlink_to(victim.parent, target_is_directory=True)
    atomic.fresh_dir(staging)
    (staging / "victim.txt").write_text("new")
    assert victim.read_bytes() == VICTIM and staging.is_dir() and not staging.is_symlink()


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fill(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "no-exchange"])
def test_a_published_folder_replaces_the_old_one_whole(
    tmp_path: Path, exchange: bool, fsyncs: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not exchange:  # a system without renameat2: the old folder is moved aside, then removed after
        monkeypatch.setattr(atomic, "exchange_paths", lambda a, b: False)
    target = tmp_path / "model"
    for version in ("old", "new"):
        with atomic.publishing_dir(target, "saving") as staging:
            assert staging.parent == tmp_path and staging.name.startswith(".model.saving-")
            _fill(staging, {"weights": version, "sub/config": version})
    assert _tree(target) == {"weights": "new", "sub/config": "new"}
    assert len(fsyncs) >= 3 and leftovers(tmp_path) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "no-exchange"])
def test_a_failed_publication_leaves_the_old_folder(
    tmp_path: Path, exchange: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "model"
    _fill(target, {"weights": "old"})
    if exchange:
        monkeypatch.setattr(atomic, "exchange_paths", lambda a, b: (_ for _ in ()).throw(OSError(5, "I/O error")))
    else:
        monkeypatch.setattr(atomic, "exchange_paths", lambda a, b: False)
        real = os.replace

        def replace(source: Path, destination: Path) -> None:  # the new folder cannot be moved in
            if Path(destination) == target and ".saving-" in Path(source).name:
                raise OSError(5, "I/O error")
            real(source, destination)

        monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OSError), atomic.publishing_dir(target, "saving") as staging:
        _fill(staging, {"weights": "new"})
    assert _tree(target) == {"weights": "old"} and leftovers(tmp_path) == []
    with pytest.raises(ValueError), atomic.publishing_dir(target, "saving") as staging:
        _fill(staging, {"weights": "half"})
        raise ValueError("the writer failed")
    assert _tree(target) == {"weights": "old"} and leftovers(tmp_path) == []


def test_a_folder_published_over_a_link_replaces_the_link(tmp_path: Path, victim: Path) -> None:
    victim.write_text("keep")
    target = tmp_path / "model"
    target.symlink_to(victim.parent)
    with atomic.publishing_dir(target) as staging:
        _fill(staging, {"weights": "new"})
    assert not target.is_symlink() and _tree(target) == {"weights": "new"} and victim.read_text() == "keep"


def test_entries_published_into_a_shared_folder(tmp_path: Path, victim: Path) -> None:
    out = tmp_path / "run"
    _fill(out, {"training_log.jsonl": "log", "1_Pooling/config.json": "old", "model.safetensors": "old"})
    (out / "modules.json").symlink_to(victim)  # a planted link at a name the model writes
    (out / "README.md").mkdir()  # a previous save's folder where a file goes now
    staged = tmp_path / "staged"
    _fill(staged, {"1_Pooling/config.json": "new", "model.safetensors": "new", "modules.json": "[]", "README.md": "c"})
    atomic.publish_entries(staged, out)
    assert _tree(out) == {
        "1_Pooling/config.json": "new",
        "README.md": "c",
        "model.safetensors": "new",
        "modules.json": "[]",
        "training_log.jsonl": "log",
    }
    assert not (out / "modules.json").is_symlink() and victim.read_bytes() == VICTIM
