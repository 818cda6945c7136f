"""tools/mutmut_modules.py (``make mutation``): its module table names real modules and tests, covers every module
issue 31 lists, and the copy's ``[tool.mutmut]`` mutates the one module with its tests and keeps the shared settings."""

from __future__ import annotations

import difflib
import fnmatch
import json
import shutil
import sys
from pathlib import Path

import pytest
import tomllib
from hypothesis import given
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import mutmut_modules  # noqa: E402
from test_tests_alone import ORDER_DEPENDENT  # noqa: E402 # the same order-dependent pair of tests

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
    also_copy = shared.pop("also_copy")
    assert config.pop("also_copy") == [*also_copy, "conftest.py"]  # the hooks, into mutmut's own copy
    assert {key: config[key] for key in shared} == shared
    assert written["tool"]["ruff"] == tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]
    mutmut_modules.configure(tmp_path, "losses.py", ["tests/test_losses.py"])  # again: replaced, not repeated
    assert tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"] == [
        "src/isbert/losses.py"
    ]


def test_the_training_modules_run_without_their_slow_tests_and_the_others_with_all(tmp_path: Path) -> None:
    """The selection is what pytest collects: the slow end-to-end test is out of the runner's run, its siblings in."""
    import subprocess

    without_slow = {
        "experiments/runner.py",
        "training/run.py",
        "training/result.py",
        "training/callbacks.py",
        "training/selection/__init__.py",
    }
    for module in mutmut_modules.MODULES:
        marker = ["-m", "not slow"] if module in without_slow else []
        assert mutmut_modules.selection(module) == [*mutmut_modules.MODULES[module], *marker], module
    collect = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    listed = subprocess.run(
        [*collect, *mutmut_modules.selection("experiments/runner.py")], cwd=REPO, capture_output=True, text=True
    ).stdout
    assert "test_runner.py::test_run_reuse_partial_rerun_and_only" in listed
    assert "test_quick_experiment_end_to_end" not in listed


_ORDER_TESTS = """
import gc
from pathlib import Path


def _ran(name):
    with Path("ran.txt").open("a") as log:
        log.write(f"{name} {gc.get_freeze_count() > 0}\\n")


def test_slow_and_failing():
    _ran("slow")
    assert False


def test_medium():
    _ran("medium")


def test_fast():
    _ran("fast")


def test_unrecorded():
    _ran("unrecorded")
"""


@pytest.mark.parametrize("mutant", ["", "stats", "isbert.losses.x_f__mutmut_3"])
def test_a_mutants_tests_run_likely_killers_first_with_the_inherited_heap_frozen(tmp_path: Path, mutant: str) -> None:
    """The hooks the copy gets as its root conftest.py, in a pytest run as mutmut's worker makes it: the tests in the
    order mutmut hands them, ``-x``. Running a mutant, the test that killed a mutant of the same function goes first,
    then the rest by recorded duration (the failing slow one last: the same verdict, later), the heap frozen, and the
    test that failed is recorded; mutmut's other passes keep the order they are given and record nothing."""
    import os
    import subprocess

    mutmut_modules._add_hooks(tmp_path)
    (tmp_path / "test_order.py").write_text(_ORDER_TESTS)
    durations = {"test_order.py::test_slow_and_failing": 2.0, "test_order.py::test_medium": 0.5,
                 "test_order.py::test_fast": 0.1}  # fmt: skip
    (tmp_path / "mutmut-stats.json").write_text(json.dumps({"duration_by_test": durations}))
    kills = "isbert.losses.x_f\ttest_order.py::test_medium\nisbert.losses.x_g\ttest_order.py::test_fast\n"
    (tmp_path / "mutmut-kills.tsv").write_text(kills * 2)
    given = ["test_order.py::test_unrecorded", *durations]
    env = {key: value for key, value in os.environ.items() if key != "MUTANT_UNDER_TEST"}
    run = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--rootdir=.", *given]
    done = subprocess.run(run, cwd=tmp_path, env={**env, "MUTANT_UNDER_TEST": mutant}, capture_output=True, text=True)
    assert done.returncode == 1, done.stdout  # killed either way
    ran = (tmp_path / "ran.txt").read_text().split("\n")[:-1]
    recorded = (tmp_path / "mutmut-kills.tsv").read_text()
    if "__mutmut_" in mutant:
        assert ran == ["medium True", "fast True", "slow True"]
        assert recorded == kills * 2 + "isbert.losses.x_f\ttest_order.py::test_slow_and_failing\n"
    else:
        assert ran == ["unrecorded False", "slow False"]
        assert recorded == kills * 2


@given(
    st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), unique=True),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.floats(0, 5)),
    st.lists(st.sampled_from(["b", "d", "e"])),
)
def test_likely_killers_first_sorts_by_kills_then_recorded_time_ties_in_order(
    names: list[str], durations: dict[str, float], killers: list[str]
) -> None:
    import math
    from collections import Counter
    from types import SimpleNamespace

    import mutmut_conftest

    items = [SimpleNamespace(nodeid=name) for name in names]
    kills = Counter(killers)
    mutmut_conftest.likely_killers_first(items, kills, durations)  # type: ignore[arg-type]
    assert sorted(item.nodeid for item in items) == sorted(names)
    keys = [(-kills[i.nodeid], durations.get(i.nodeid, math.inf), names.index(i.nodeid)) for i in items]
    assert keys == sorted(keys)


def test_kills_are_counted_per_function_and_a_missing_log_is_none(tmp_path: Path) -> None:
    import mutmut_conftest

    log = tmp_path / "kills.tsv"
    assert mutmut_conftest.kills_of("m.x_f", log) == {}
    for function, test in [("m.x_f", "t::a"), ("m.x_f", "t::a"), ("m.x_f2", "t::b"), ("m.xǁCǁf", "t::c[x\ty]")]:
        mutmut_conftest.record_kill(function, test, log)
    assert mutmut_conftest.kills_of("m.x_f", log) == {"t::a": 2}
    assert mutmut_conftest.kills_of("m.xǁCǁf", log) == {"t::c[x\ty]": 1}
    assert mutmut_conftest.function_of("m.xǁCǁf__mutmut_12") == "m.xǁCǁf"


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


TINY = """import functools


LIMIT = 3


def build(x: int) -> int:
    return x + 1


def build_from_vectors(x: int) -> int:
    return x * 2


class Index:
    size = 4

    def add(self, x: int) -> int:
        return x - 1

    @functools.cache
    def search(self, x: int) -> int:
        def inner(y: int) -> int:
            return y * 3

        return inner(x)
"""


def _git(folder: Path, *args: str) -> None:
    import subprocess

    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


@pytest.mark.slow
def test_since_selects_the_changed_functions_and_exactly_their_mutants(tmp_path: Path) -> None:
    """`--since`: the functions a commit or the working tree changed, by mutmut's names, and the patterns that pick
    their mutants among those mutmut plants (not `build_from_vectors`' for `build`)."""
    module = tmp_path / "src" / "isbert" / "tiny.py"
    module.parent.mkdir(parents=True)
    (module.parent / "__init__.py").write_text("")
    module.write_text(TINY)
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "first", "--allow-empty")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny")
    edited = TINY.replace("x + 1", "x + 2").replace("return y * 3", "return y * 4").replace("LIMIT = 3", "LIMIT = 5")
    module.write_text(edited)
    changed = mutmut_modules.changed_functions("tiny.py", "HEAD", None, repo=tmp_path)
    assert changed == ["x_build", "xǁIndexǁsearch"]  # the nested function is its method's; LIMIT is not mutated
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "edit")
    module.write_text(TINY.replace("x - 1", "x - 7"))  # the working tree no longer matters once a commit is named
    assert mutmut_modules.changed_functions("tiny.py", "HEAD~1", "HEAD", repo=tmp_path) == changed
    assert mutmut_modules.changed_functions("tiny.py", "HEAD", None, repo=tmp_path) == [
        "x_build",
        "xǁIndexǁadd",
        "xǁIndexǁsearch",
    ]
    assert mutmut_modules.changed_functions("tiny.py", "HEAD", "HEAD", repo=tmp_path) == []

    module.write_text(TINY)
    mutmut_modules.configure(tmp_path, "tiny.py", [])
    planted = mutmut_modules.plant(tmp_path)["tiny.py"]
    patterns = mutmut_modules.mutant_patterns("tiny.py", ["x_build", "xǁIndexǁadd"])
    picked = {name for pattern in patterns for name in fnmatch.filter(planted, pattern)}
    assert picked and picked == {
        name for name in planted if name.split("__mutmut_")[0] in ("isbert.tiny.x_build", "isbert.tiny.xǁIndexǁadd")
    }
    assert any(name.startswith("isbert.tiny.x_build_from_vectors__mutmut_") for name in planted)
    assert mutmut_modules.mutant_patterns("training/selection/__init__.py", ["x_f"]) == [
        "isbert.training.selection.x_f__mutmut_*"
    ]


def test_functions_at_counts_decorators_and_nested_functions_and_skips_module_and_class_lines() -> None:
    lines = TINY.splitlines()
    number = {text.strip(): index + 1 for index, text in enumerate(lines)}
    assert mutmut_modules.functions_at(TINY, {number["@functools.cache"]}) == ["xǁIndexǁsearch"]
    assert mutmut_modules.functions_at(TINY, {number["return y * 3"]}) == ["xǁIndexǁsearch"]
    assert mutmut_modules.functions_at(TINY, {number["LIMIT = 3"], number["size = 4"], 1}) == []
    assert mutmut_modules.functions_at(TINY, set(range(1, len(lines) + 1))) == [
        "x_build", "x_build_from_vectors", "xǁIndexǁadd", "xǁIndexǁsearch"
    ]  # fmt: skip


@given(
    st.lists(st.sampled_from("abcde"), max_size=12),
    st.lists(st.sampled_from("abcde"), max_size=12),
)
def test_new_lines_are_the_added_lines_and_the_line_before_each_removal(old: list[str], new: list[str]) -> None:
    """A -U0 diff (difflib writes git's hunk headers) gives the new file's added lines, and for lines only removed
    the line before them (0 at the top of the file)."""
    diff = "".join(difflib.unified_diff([f"{x}\n" for x in old], [f"{x}\n" for x in new], n=0))
    expected: set[int] = set()
    for tag, _, _, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag in ("replace", "insert"):
            expected.update(range(j1 + 1, j2 + 1))
        elif tag == "delete":
            expected.add(j1)
    assert mutmut_modules.new_lines(diff) == expected


def test_since_an_unknown_commit_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert mutmut_modules.main(["--since", "no-such-commit", "losses.py"]) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err.startswith("git cannot compare no-such-commit with the working tree: ")
    assert printed.err.count("\n") == 1


def test_each_finished_module_is_in_the_json_before_the_next_one_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scores.json"
    seen: list[list[str]] = []

    def run_module(module: str, **options: object) -> dict[str, object]:
        seen.append([r["module"] for r in json.loads(out.read_text())] if out.exists() else [])
        if module == "modules.py":
            raise KeyboardInterrupt  # a long run stopped part way
        return {"module": module, "score": 0.5, "mutants": 2, "counts": {"killed": 1}, "minutes": 1.5, "stopped": False,
                "not_killed": {}}  # fmt: skip

    monkeypatch.setattr(mutmut_modules, "run_module", run_module)
    assert mutmut_modules.main(["--json", str(out), "losses.py", "encode.py"]) == 0
    assert seen == [[], ["losses.py"]]
    assert [r["module"] for r in json.loads(out.read_text())] == ["losses.py", "encode.py"]
    assert capsys.readouterr().out.endswith("\n2 modules: 3.0 min\n")
    with pytest.raises(KeyboardInterrupt):
        mutmut_modules.main(["--json", str(out), "losses.py", "modules.py"])
    assert [r["module"] for r in json.loads(out.read_text())] == ["losses.py"]


def test_a_run_stopped_at_its_budget_takes_its_whole_process_group_down(tmp_path: Path) -> None:
    """mutmut's fork server and workers are grandchildren: stopping only mutmut would leave them running tests."""
    import os
    import time

    pids = tmp_path / "pids"
    script = (
        "import os, sys, time\n"
        "child = os.fork()\n"
        "if child == 0:\n    time.sleep(60)\n    os._exit(0)\n"
        f"open({str(pids)!r}, 'w').write(str(child))\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    assert mutmut_modules.mutmut_run([sys.executable, "-c", script], tmp_path, dict(os.environ), 2.0) is None
    assert time.monotonic() - started < 30
    worker = int(pids.read_text())
    for _ in range(50):
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the worker {worker} outlived the stopped run")
    assert mutmut_modules.mutmut_run([sys.executable, "-c", "raise SystemExit(3)"], tmp_path, dict(os.environ), 30) == 3


def test_the_budget_is_shared_by_the_modules_in_turn(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    given: list[tuple[str, float | None]] = []

    def run_module(module: str, *, seconds: float | None, **options: object) -> dict[str, object]:
        given.append((module, seconds))
        return {"module": module, "score": 1.0, "mutants": 1, "counts": {"killed": 1}, "minutes": 0.1,
                "stopped": False, "not_killed": {}}  # fmt: skip

    monkeypatch.setattr(mutmut_modules, "run_module", run_module)
    assert mutmut_modules.main(["--budget", "2", "losses.py", "encode.py"]) == 0
    assert [module for module, _ in given] == ["losses.py", "encode.py"]
    assert all(seconds is not None and 100 < seconds <= 120 for _, seconds in given)
    given.clear()
    assert mutmut_modules.main(["--budget", "0", "losses.py", "encode.py"]) == 0
    assert given == []
    printed = capsys.readouterr().out.splitlines()
    assert printed[-2:] == [f"{m}: not run, the budget of 0 min is spent" for m in ("losses.py", "encode.py")]
    assert mutmut_modules.main(["losses.py"]) == 0 and given == [("losses.py", None)]  # no budget: no limit
    changed = {"losses.py": ["x_f"], "encode.py": []}
    monkeypatch.setattr(mutmut_modules, "changed_functions", lambda module, since, rev: changed[module])
    capsys.readouterr()
    assert mutmut_modules.main(["--since", "c0ffee", "--budget", "0", "losses.py", "encode.py"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "losses.py: not run, the budget of 0 min is spent",
        "encode.py: no function changed since c0ffee",  # nothing to run: not a module the budget left out
    ]


def test_a_relative_data_folder_reaches_mutmut_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mutmut runs in the copy, where the Makefile's and CI's ``../shared/data`` would name another folder."""
    seen: dict[str, str] = {}

    def mutmut_run(command: list[str], work: Path, env: dict[str, str], seconds: float | None) -> int:
        seen.update(env)
        return 0

    monkeypatch.setattr(mutmut_modules, "_copy_tree", lambda work, rev: None)
    monkeypatch.setattr(mutmut_modules, "configure", lambda work, module, tests: None)
    monkeypatch.setattr(mutmut_modules, "mutmut_run", mutmut_run)
    monkeypatch.setattr(mutmut_modules, "results", lambda work: {"m": "killed"})
    monkeypatch.setattr(mutmut_modules, "diffs", lambda work, names: {})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ISBERT_DATA_DIR", "../shared/data")
    report = mutmut_modules.run_module("losses.py", jobs=1, rev=None, keep=False)
    assert seen["ISBERT_DATA_DIR"] == str((tmp_path / ".." / "shared" / "data").resolve())
    assert report is not None and report["score"] == 1.0 and report["stopped"] is False


def test_the_kills_of_a_test_that_fails_alone_are_found_in_the_copy_on_its_own_source(tmp_path: Path) -> None:
    """The check runs in mutmut's folder of the copy, on the copy's source (``state`` is importable only from its
    ``src``), with no mutant: a test that passes only after another fails there, and its logged kills are void."""
    import os

    mutants = tmp_path / "mutants"
    (mutants / "src").mkdir(parents=True)
    (mutants / "src" / "state.py").write_text("")
    (mutants / "test_order.py").write_text(ORDER_DEPENDENT)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    assert mutmut_modules.kills_failing_alone(tmp_path, env, warm=False) == {}  # nothing killed: nothing to check
    log = mutants / "mutmut-kills.tsv"
    log.write_text("m.x_f\ttest_order.py::test_sets_the_state\n")
    assert mutmut_modules.kills_failing_alone(tmp_path, env, warm=False) == {}
    log.write_text(
        "m.x_f\ttest_order.py::test_needs_the_state\nm.x_g\ttest_order.py::test_sets_the_state\n"
        "m.x_f\ttest_order.py::test_needs_the_state\n"
    )
    assert mutmut_modules.kills_failing_alone(tmp_path, env, warm=False) == {"test_order.py::test_needs_the_state": 2}
    (mutants / "src" / "isbert").mkdir()  # the warm-up imports the copy's package: broken there, the check fails
    (mutants / "src" / "isbert" / "__init__.py").write_text("raise RuntimeError('a broken copy')\n")
    with pytest.raises(SystemExit, match=r"^tools/tests_alone.py could not check the kills in .*: RuntimeError: a b"):
        mutmut_modules.kills_failing_alone(tmp_path, env)


def test_void_kills_leave_the_score_are_printed_and_fail_the_run_and_a_stopped_run_is_not_checked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """8 killed (3 of them by a test that fails alone), 1 caught by mypy, 1 survived: 6 of 10 caught."""
    status: list[int | None] = [0]
    checked: list[str] = []

    def kills_failing_alone(work: Path, env: dict[str, str]) -> dict[str, int]:
        checked.append(env["HF_HUB_OFFLINE"])
        return {"tests/test_losses.py::test_x": 3}

    verdicts = {f"m.x_f__mutmut_{n}": "killed" for n in range(1, 9)}
    verdicts |= {"m.x_f__mutmut_9": "caught by type check", "m.x_f__mutmut_10": "survived"}
    for name in ("_copy_tree", "_add_hooks", "configure"):
        monkeypatch.setattr(mutmut_modules, name, lambda *args: None)
    monkeypatch.setattr(mutmut_modules, "mutmut_run", lambda command, work, env, seconds: status[0])
    monkeypatch.setattr(mutmut_modules, "results", lambda work: verdicts)
    monkeypatch.setattr(mutmut_modules, "diffs", lambda work, names: {name: "-a\n+b" for name in names})
    monkeypatch.setattr(mutmut_modules, "kills_failing_alone", kills_failing_alone)
    assert mutmut_modules.main(["losses.py"]) == 1
    assert checked == ["1"]  # in mutmut's environment
    out = capsys.readouterr().out
    assert "\nlosses.py: 60.0% caught of 10 mutants (1 caught by type check, 8 killed, 1 survived), " in out
    assert "  void: 3 kill(s) by tests/test_losses.py::test_x, which fails alone without a mutant" in out
    status[0] = None  # stopped at its budget: a partial run's kills are not checked, and the line says so
    assert mutmut_modules.main(["losses.py"]) == 0
    assert checked == ["1"]
    out = capsys.readouterr().out
    assert "losses.py: 90.0% caught of 10 mutants" in out and "its kills not checked alone" in out
