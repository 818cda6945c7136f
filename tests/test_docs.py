"""The README stays a five-minute read that shows every command; docs links point at files that exist."""

from __future__ import annotations

import re
from pathlib import Path

from isbert.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def commands() -> list[str]:
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if a.dest == "command"]
    return list(subparsers.choices)


def test_readme_is_short_and_shows_every_command() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= 15_000
    missing = [name for name in commands() if not re.search(rf"isbert {re.escape(name)}\b", text)]
    assert not missing, f"commands the README never shows: {missing}"


def test_relative_links_in_readme_and_docs_exist() -> None:
    for page in [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name} links to a missing {target}"
