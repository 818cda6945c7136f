"""tools/mutmut_modules.py (``make mutation``): its module table names real modules and tests, covers every module
issue 31 lists, and the copy's ``[tool.mutmut]`` mutates the one module with its tests and keeps the shared settings."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import mutmut_modules  # noqa: E402

REQUIRED = [
    "search/serve.py", "search/index.py", "search/cluster.py", "search/similar.py", "encode.py",
    "evaluation/harness.py", "evaluation/sts.py", "evaluation/baselines.py", "evaluation/report.py",
    "training/run.py", "training/corpus.py", "training/checkpoints.py", "training/callbacks.py", "training/result.py",
    "training/selection/__init__.py", "experiments/report.py", "losses.py", "modules.py",
]  # fmt: skip


def test_every_required_module_is_in_the_table_with_its_tests() -> None:
    assert set(REQUIRED) <= set(mutmut_modules.MODULES)
    for module, tests in mutmut_modules.MODULES.items():
        assert (REPO / "src" / "isbert" / module).is_file(), module
        assert tests, module
        existing = [test for test in tests if (REPO / test.split("::")[0]).is_file()]
        assert existing, f"{module}: none of its tests exists"


def test_the_copy_mutates_one_module_with_its_tests(tmp_path: Path) -> None:
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shared = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]
    mutmut_modules.configure(tmp_path, "evaluation/sts.py", ["tests/evaluation/test_scoring.py"])
    written = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    config = written["tool"]["mutmut"]
    assert config["only_mutate"] == ["src/isbert/evaluation/sts.py"]
    assert config["pytest_add_cli_args_test_selection"] == ["tests/evaluation/test_scoring.py"]
    assert {key: config[key] for key in shared} == shared
    assert written["tool"]["ruff"] == tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]
    mutmut_modules.configure(tmp_path, "losses.py", ["tests/test_losses.py"])  # again: replaced, not repeated
    assert tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"] == [
        "src/isbert/losses.py"
    ]


def test_the_copy_type_checks_the_module_with_mypy_in_mutmuts_json_form(tmp_path: Path) -> None:
    """mutmut picks its report parser by a command element equal to "mypy" and reads JSON lines."""
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    mutmut_modules.configure(tmp_path, "training/checkpoints.py", ["tests/training/test_checkpoints.py"])
    command = tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["mutmut"]["type_check_command"]
    assert "mypy" in command and command[command.index("--output") + 1] == "json"
    assert command[-1] == "src/isbert/training/checkpoints.py"


@pytest.mark.slow
def test_the_type_check_reports_a_planted_type_error_and_nothing_on_the_clean_module(tmp_path: Path) -> None:
    """The command, run as mutmut runs it (in the copy, through mutmut's parser), finds exactly the planted error."""
    from mutmut.type_checking import run_type_checker

    module = tmp_path / "src" / "isbert" / "training" / "checkpoints.py"
    module.parent.mkdir(parents=True)
    for folder in (module.parent.parent, module.parent):
        (folder / "__init__.py").write_text("")
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    clean = (REPO / "src" / "isbert" / "training" / "checkpoints.py").read_text()
    command = mutmut_modules.type_check_command(["training/checkpoints.py"])
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        module.write_text(clean)
        assert run_type_checker(command) == []
        module.write_text(clean + "\n\ndef planted() -> int:\n    return None\n")
        errors = run_type_checker(command)
    assert [(error.file_path.name, error.line_number) for error in errors] == [
        ("checkpoints.py", clean.count("\n") + 4)
    ]


@pytest.mark.slow
def test_diffs_in_one_process_show_what_mutmut_show_shows(tmp_path: Path) -> None:
    """The survivors' report reads every diff in one process; each must be the changed lines ``mutmut show`` prints."""
    import subprocess

    module = tmp_path / "src" / "isbert" / "tiny.py"
    module.parent.mkdir(parents=True)
    (module.parent / "__init__.py").write_text("")
    module.write_text("def scaled(x: int) -> int:\n    return 2 * x + 1\n")
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    mutmut_modules.configure(tmp_path, "tiny.py", [])
    subprocess.run([sys.executable, "-c", "import mutmut.__main__ as m; m.create_mutants(1)"], cwd=tmp_path, check=True)
    names = [f"isbert.tiny.x_scaled__mutmut_{i}" for i in (1, 2)]
    shown = {}
    for name in names:
        printed = subprocess.run([mutmut_modules.MUTMUT, "show", name], cwd=tmp_path, capture_output=True, text=True)
        shown[name] = mutmut_modules.changed_lines(printed.stdout)
    assert mutmut_modules.diffs(tmp_path, names) == shown
    assert all(text.startswith("-    return 2 * x + 1\n+    return ") for text in shown.values())
    assert mutmut_modules.changed_lines("--- a.py\n+++ a.py\n@@ -1 +1 @@\n-\n+x = 1\n ok") == "-\n+x = 1"
