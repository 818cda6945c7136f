"""Error messages stay one bounded line whatever the input they quote held."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from isbert.cli import main
from isbert.errors import MAX_ERROR_LINE, brief, error_line, some_names


@given(st.text(max_size=5_000))
def test_an_error_line_is_one_line_bounded_and_keeps_its_start(message: str) -> None:
    line = error_line(message)
    assert "\n" not in line and "\r" not in line
    assert len(line) <= MAX_ERROR_LINE + 40
    if message.isprintable() and len(message) <= MAX_ERROR_LINE:
        assert line == message
    elif message.isprintable():
        assert (
            line.startswith(message[:MAX_ERROR_LINE]) and f"({len(message) - MAX_ERROR_LINE} more characters)" in line
        )


@given(st.lists(st.text(max_size=200), max_size=50))
def test_some_names_shows_at_most_eight_short_names_and_counts_the_rest(names: list[str]) -> None:
    listed = some_names(names)
    assert len(listed) <= 8 * (40 * 4 + 2) + 30  # escaped control characters take up to 4 characters each
    if len(names) > 8:
        assert listed.endswith(f" and {len(names) - 8} more")
    assert brief("x" * 100, 10) == "xxxxxxx..."


def test_an_experiment_file_naming_a_million_keys_is_one_short_line(tmp_path: Path, capsys) -> None:
    """The hostile file of tests/reliability/test_linear_time.py: the message lists a few names, not all of them."""
    path = tmp_path / "e.toml"
    path.write_bytes(b"".join(b"[t%d]\n" % i for i in range(100_000)))
    assert main(["experiment", str(path), "--list", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 1_000, err[:300]
    assert "unknown top-level key(s) t0, t1, " in err and "and 99992 more" in err


def test_the_command_line_cuts_a_long_message(tmp_path: Path) -> None:
    """A value quoted whole in a message (here a 100,000-character list of seeds) is cut by the command line."""
    path = tmp_path / "e.toml"
    seeds = ", ".join(["-1"] * 50_000)
    path.write_text(f'[experiment]\nname = "e"\nseeds = [{seeds}]\n[[run]]\nname = "a"\nbaseline = "mean"\n')
    code = "import sys; from isbert.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", code, "experiment", str(path), "--list", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and len(result.stderr) < MAX_ERROR_LINE + 200, result.stderr[-200:]
