"""tools/mutmut_modules.py (``make mutation``): its module table names real modules and tests, covers every module
issue 31 lists, and the copy's ``[tool.mutmut]`` mutates the one module with its tests and keeps the shared settings."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

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
