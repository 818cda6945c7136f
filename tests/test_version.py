"""The version is declared once, in ``isbert/version.py``; the installed metadata and the CLI report it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from isbert.version import __version__

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_reads_the_version_from_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "isbert.version.__version__"}


def test_installed_metadata_and_cli_report_the_declared_version() -> None:
    assert importlib.metadata.version("isbert") == __version__
    result = subprocess.run([sys.executable, "-m", "isbert", "--version"], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == f"isbert {__version__}"
