"""The hand-written mutation list (`make mutation-targeted`) stays valid as the code moves, holds only bugs mutmut
(`make mutation`) does not plant, and its runner never mutates the working tree.

No mutant is run here: that is `make mutation-targeted`'s job (minutes, not CI). These checks are instant.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load_tool():
    spec = importlib.util.spec_from_file_location("isbert_mutation_tool", REPO / "tools" / "mutation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_every_snippet_occurs_exactly_once_in_its_file() -> None:
    """A refactor that moves a mutated line breaks the list here, in CI, not silently in the next mutation run."""
    assert tool.check_list(tool.MUTATIONS) == []
    assert len(tool.MUTATIONS) >= 30


def test_every_selected_test_file_exists() -> None:
    for mutation in tool.MUTATIONS:
        for test in mutation.tests:
            assert (REPO / test.split("::")[0]).is_file(), f"{mutation.id}: no {test}"


def test_a_broken_list_is_reported() -> None:
    first = tool.MUTATIONS[0]
    moved = tool.Mutation("moved", first.file, "this text is not in the file", "x", "bug", first.tests, "why")
    twice = tool.Mutation("twice", "losses.py", "return e_neg - e_pos", "return 0", "bug", first.tests, "why")
    unexplained = tool.Mutation("unexplained", first.file, first.original, "x", "bug", first.tests, " ")
    problems = tool.check_list((moved, twice, first, first, unexplained))
    assert any("moved: the original snippet occurs 0 times" in p for p in problems)
    assert any("twice: the original snippet occurs 2 times" in p for p in problems)
    assert any("duplicate id" in p for p in problems)
    assert any("unexplained: no why_not_mutmut" in p for p in problems)


def test_every_kept_mutant_says_why_mutmut_does_not_plant_it() -> None:
    """The list holds only what mutmut (`make mutation`) cannot plant, each with its reason in one sentence.

    An entry mutmut does express stays only while its module has no row in tools/mutmut_modules.py's table: once the
    module gets one, this fails, and the entry is to be removed (mutmut's run of that module plants it)."""
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import mutmut_modules
    finally:
        sys.path.remove(str(REPO / "tools"))
    for mutation in tool.MUTATIONS:
        why = mutation.why_not_mutmut
        assert why.strip() and "\n" not in why and why.count(". ") == 0, f"{mutation.id}: {why!r}"
        if why.startswith("mutmut expresses it"):
            assert mutation.file not in mutmut_modules.MODULES, f"{mutation.id}: `make mutation` plants it now"


@pytest.mark.parametrize("mutation", tool.MUTATIONS[:: len(tool.MUTATIONS) // 6], ids=lambda m: m.id)
def test_apply_writes_the_mutant_into_the_copy_only(mutation, tmp_path: Path) -> None:
    before = _digest(REPO / "src")
    tree = tool.copy_tree(REPO, tmp_path)
    mutated = tool.apply_mutation(mutation, tree).read_text(encoding="utf-8")
    original = (REPO / tool.PACKAGE / mutation.file).read_text(encoding="utf-8")
    assert mutated == original.replace(mutation.original, mutation.replacement) != original
    assert (tree / "tests" / "conftest.py").is_file() and (tree / "pyproject.toml").is_file()
    assert _digest(REPO / "src") == before  # the working tree is untouched
    with pytest.raises(ValueError, match="not found exactly once"):
        tool.apply_mutation(mutation, tree)  # already applied: the snippet is gone from the copy


def test_the_mutants_environment_imports_the_copy(tmp_path: Path) -> None:
    env = tool.mutant_environment(tmp_path)
    assert env["PYTHONPATH"] == str(tmp_path / "src") and env["CI"] == "1"
    assert Path(env["ISBERT_DATA_DIR"]).is_absolute()


def test_every_mutant_is_valid_python() -> None:
    """A mutant that does not compile would be 'killed' by any test: it must plant a bug, not a syntax error."""
    for mutation in tool.MUTATIONS:
        path = REPO / tool.PACKAGE / mutation.file
        mutated = path.read_text(encoding="utf-8").replace(mutation.original, mutation.replacement)
        compile(mutated, f"{mutation.id}:{path.name}", "exec")
