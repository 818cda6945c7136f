"""Mutation testing with mutmut, one module at a time: ``make mutation MODULE=evaluation/sts.py``.

mutmut (3.x, from PyPI) plants every mutant its operators can express (operators, constants, strings, arguments,
conditions) in a copy of ``src/`` and runs, for each mutant, only the tests that reached the mutated function. This
script gives each module the tests that are meant to cover it (:data:`MODULES`), so that one module's run takes
minutes to an hour on 2 cores, not the whole suite per mutant:

1. copy ``src/``, ``tests/``, ``experiments/`` and ``pyproject.toml`` (the working tree, or ``git archive REV`` with
   ``--rev``) into a temporary folder; the working tree is never touched;
2. write the module and its tests into the copy's ``[tool.mutmut]`` (``only_mutate``,
   ``pytest_add_cli_args_test_selection``, without the slow tests for :data:`WITHOUT_SLOW`; the shared settings
   stay in pyproject.toml), and put ``tools/mutmut_conftest.py`` at its root as ``conftest.py``: in a worker running
   a mutant, the tests that killed the function's other mutants go first, then the fastest;
3. ``mutmut run`` there with ``CI=1`` (hypothesis's fixed examples: the same mutant gets the same verdict each run);
4. print the score (caught / all mutants, where caught is killed by a test or rejected by CI's mypy step; ``no
   tests``, timeouts and the rest are not caught) and each survivor's diff; ``--json`` writes them.

``--since COMMIT`` (``make mutation SINCE=...``) runs only the mutants of the functions changed since that commit
(``git diff``, mapped to mutmut's function names): a quick check of a change before it lands. Its score is of those
mutants only, not the module's.

``--budget MINUTES`` (``make mutation BUDGET=...``) stops when the minutes are spent: the module running then is
stopped with its whole process group and reported with the mutants it reached, and the modules after it are named as
not run. CI's ``.ci/run`` ends with ``--since HEAD~1 --budget 8``. ``--json`` is rewritten after each module.

The hand-written list (tools/mutation.py, ``make mutation-targeted``) is kept for the mutants mutmut's operators
cannot express; see docs/testing.md.

After each module that ran to its end, every test that killed a mutant runs alone, first in a process, on the mutated
source with no mutant active (``tools/tests_alone.py``): one that fails there fails whatever the mutant, so its kills
are void, left out of the score and printed. Exit status: 0 when the run completed (the score is information), 1 when
a killing test failed alone (fix the test, run again), 2 on a usage error or when mutmut itself failed.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

import tomllib
from mutmut_conftest import kill_record
from tests_alone import FAILED_ALONE

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path("src") / "isbert"
COPIED = ("src", "tests", "experiments", "pyproject.toml")
HOOKS = Path(__file__).with_name("mutmut_conftest.py")  # pytest hooks for the mutant runs, the copy's root conftest.py
TESTS_ALONE = Path(__file__).with_name("tests_alone.py")
MUTMUT = Path(sys.executable).with_name("mutmut")
CAUGHT = ("killed", "caught by type check")  # a failing test, or CI's mypy step (type_check_command)
NOT_RUN = "not checked"  # mutmut's verdict for a mutant a stopped run did not reach

_SERVE = [
    "tests/search/test_search_serve.py",
    "tests/search/test_serve_api_key.py",
    "tests/search/test_serve_requests.py",
    # the header deadline only acts on a real socket: two of the reliability suite's live-server tests (seconds each)
    "tests/reliability/test_hostile_http.py::test_half_sent_heads_are_closed_and_do_not_block_shutdown",
    "tests/reliability/test_hostile_http.py::test_the_head_deadline_spares_a_slow_answer_and_closes_an_idle_keep_alive",
]
_TRAIN = ["tests/training/test_train.py", "tests/training/test_corpus.py", "tests/training/test_run_log.py"]
MODULES: dict[str, list[str]] = {
    # module (below src/isbert) -> the tests meant to catch its bugs (files or node ids)
    "losses.py": ["tests/test_losses.py"],
    "modules.py": ["tests/test_modules.py", "tests/test_cnn_head.py"],
    "encode.py": ["tests/test_encode.py", "tests/test_encode_resume_key.py"],
    "onnx_backend.py": ["tests/test_onnx_backend.py", "tests/test_onnx_cache_key.py"],
    "evaluation/sts.py": ["tests/evaluation/test_scoring.py", "tests/evaluation/test_sts_contract.py"],
    "evaluation/harness.py": ["tests/evaluation/test_harness.py", "tests/evaluation/test_cache_key.py"],
    "evaluation/baselines.py": ["tests/evaluation/test_baselines.py"],
    "evaluation/report.py": [
        "tests/evaluation/test_report.py",
        "tests/evaluation/test_report_columns.py",
        "tests/evaluation/test_harness.py",
    ],
    "experiments/report.py": [
        "tests/experiments/test_report.py",
        "tests/experiments/test_report_markdown.py",
        "tests/experiments/test_report_columns.py",
    ],
    "experiments/runner.py": [
        "tests/experiments/test_runner.py",
        "tests/experiments/test_runner_records.py",
        "tests/experiments/test_config.py",
        "tests/experiments/test_settings_hash.py",
        "tests/experiments/test_reuse.py",
        # the SIF-family baselines and SIF after training, the whitening and model2vec rows, the paper's tables:
        # without these in-process runs the runner's post-hoc and baseline code is reached only by slow tests
        "tests/experiments/test_sif_runs.py",
        "tests/experiments/test_peers.py",
        "tests/experiments/test_paper.py",
    ],
    "search/serve.py": _SERVE,
    "search/index.py": [
        "tests/search/test_index.py",
        "tests/search/test_search_index.py",
        "tests/search/test_index_changes.py",
        "tests/search/test_index_export.py",
        "tests/reliability/test_hostile_files.py",
        "tests/reliability/test_planted_links.py",
    ],
    "search/cluster.py": [
        "tests/search/test_cluster.py",
        "tests/search/test_search_cluster_similar.py",
        "tests/search/test_cluster_wiring.py",
    ],
    "search/similar.py": ["tests/search/test_similar.py", "tests/search/test_search_cluster_similar.py"],
    "training/run.py": [
        *_TRAIN,
        "tests/training/test_run.py",
        "tests/training/test_run_stops.py",
        # which parameters a run trains (--train-parts): the one test of test_objectives.py that reaches it
        "tests/training/test_objectives.py::test_train_parts_leave_the_frozen_weights_untouched",
    ],
    "training/corpus.py": ["tests/training/test_corpus.py", "tests/training/test_run.py"],
    "training/checkpoints.py": ["tests/training/test_checkpoints.py"],
    "training/callbacks.py": ["tests/training/test_callbacks.py", "tests/training/test_train.py"],
    "training/selection/evaluators.py": ["tests/training/test_evaluators.py", "tests/training/test_train.py"],
    "training/result.py": [
        "tests/training/test_result.py",
        "tests/objectives/test_registry.py",
        "tests/training/test_train.py",
    ],
    "training/selection/__init__.py": [
        "tests/training/test_selection.py",
        "tests/training/test_evaluators.py",
        "tests/training/test_train.py",
    ],
}
"""Every module a user's result or safety depends on (issue 31), with its tests. A test file that does not exist yet
is skipped with a warning, so the table can name the tests a module should have."""

WITHOUT_SLOW = frozenset(
    {
        "experiments/runner.py",
        "training/run.py",
        "training/result.py",
        "training/callbacks.py",
        "training/selection/__init__.py",
    }
)
"""Modules run without their selection's tests marked ``slow`` (``-m "not slow"``): the packaged pretrained model end
to end, and training through the CLI in subprocesses (SIGKILL and resume, DDP, a corpus folder). Each adds half a
minute to a minute and a half to every surviving mutant of the functions it reaches, hours over these modules, and a
subprocess hides from mutmut which function it reached. CI runs them all the same."""


def selection(module: str) -> list[str]:
    """pytest's arguments for the module's run: its tests that exist (a warning for each missing one), then the
    marker expression of :data:`WITHOUT_SLOW`."""
    tests = [test for test in MODULES[module] if (REPO / test.split("::")[0]).exists()]
    for missing in sorted(set(MODULES[module]) - set(tests)):
        print(f"warning: {missing} does not exist; running without it", file=sys.stderr)
    return tests + (["-m", "not slow"] if module in WITHOUT_SLOW else [])


def _copy_tree(work: Path, rev: str | None) -> None:
    if rev is None:
        for name in COPIED:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(source, work / name)
        return
    archive = work / "rev.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), rev, *COPIED], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    archive.unlink()


def _add_hooks(work: Path) -> None:
    shutil.copy2(HOOKS, work / "conftest.py")


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


def type_check_command(modules: list[str]) -> list[str]:
    """mypy over the mutated module(s), as CI runs it (pyproject's ``[tool.mypy]``), in mutmut's JSON form.

    A mutant mypy rejects is caught by CI's mypy step before any test runs, so mutmut records it as caught by the type
    check without running its tests. Two of mypy's checks only see mutmut's scaffolding, not the mutant: the
    ``# type: ignore`` comments mutmut puts on its trampolines, and an attribute annotated in ``__init__`` that every
    copy of ``__init__`` annotates again (``no-redef``)."""
    scaffolding = ["--no-warn-unused-ignores", "--disable-error-code", "no-redef"]
    return [sys.executable, "-m", "mypy", "--output", "json", *scaffolding, *(str(PACKAGE / name) for name in modules)]


def configure(work: Path, module: str | list[str], tests: list[str]) -> None:
    """Put the module(s) and the tests into the copy's ``[tool.mutmut]`` (the shared settings are kept)."""
    pyproject = work / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    shared = tomllib.loads(text).get("tool", {}).get("mutmut", {})
    modules = [module] if isinstance(module, str) else module
    own = {
        "only_mutate": [str(PACKAGE / name) for name in modules],
        "also_copy": [*shared.get("also_copy", []), "conftest.py"],  # the hooks (_add_hooks), beside mutmut's stats
        "pytest_add_cli_args_test_selection": tests,
        "type_check_command": type_check_command(modules),
    }
    lines = ["[tool.mutmut]"]
    for key, value in {**shared, **own}.items():
        lines.append(f"{key} = {_toml_list(value) if isinstance(value, list) else json.dumps(value)}")
    section = re.compile(r"^\[tool\.mutmut\]\n(?:(?!\[).*\n?)*", re.MULTILINE)
    text = section.sub("", text).rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    pyproject.write_text(text, encoding="utf-8")


def results(work: Path) -> dict[str, str]:
    """mutant name -> mutmut's verdict (killed, survived, no tests, timeout, suspicious, ...)."""
    listed = subprocess.run([str(MUTMUT), "results", "--all", "true"], cwd=work, capture_output=True, text=True)
    verdicts = {}
    for line in listed.stdout.splitlines():
        name, _, verdict = line.strip().rpartition(": ")
        if name:
            verdicts[name] = verdict
    return verdicts


_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant
print(json.dumps({name: get_diff_for_mutant(name, path=find_mutant(name).path) for name in json.load(sys.stdin)}))
"""


def diffs(work: Path, names: list[str]) -> dict[str, str]:
    """Each mutant's changed lines, all in one process: ``mutmut show`` per mutant costs a second or two each, which
    is half an hour on a module with a thousand mutants not caught."""
    shown = subprocess.run(
        [sys.executable, "-c", _DIFFS], cwd=work, input=json.dumps(names), capture_output=True, text=True, check=True
    )
    return {name: changed_lines(text) for name, text in json.loads(shown.stdout).items()}


def changed_lines(diff: str) -> str:
    """The removed and added lines of a unified diff, without its file header."""
    lines = diff.splitlines()
    return "\n".join(line for line in lines if line.startswith(("-", "+")) and not line.startswith(("---", "+++")))


_PLANT = """
import glob, json
import mutmut.__main__ as mutmut
mutmut.create_mutants(2)
planted = {}
for meta in sorted(glob.glob("mutants/src/isbert/**/*.meta", recursive=True)):
    with open(meta, encoding="utf-8") as handle:
        planted[meta[len("mutants/src/isbert/"):-len(".meta")]] = list(json.load(handle)["exit_code_by_key"])
print(json.dumps(planted))
"""


def plant(work: Path) -> dict[str, list[str]]:
    """Plant the configured modules' mutants in the copy (no test run): module -> mutant names."""
    planted = subprocess.run([sys.executable, "-c", _PLANT], cwd=work, capture_output=True, text=True, check=True)
    return json.loads(planted.stdout.splitlines()[-1])  # after the paths mutmut prints


def count_mutants(modules: list[str], rev: str | None) -> dict[str, int]:
    """How many mutants mutmut plants in each module (generated in a copy, no test run): the size of a full run."""
    work = Path(tempfile.mkdtemp(prefix="mutmut-count-"))
    try:
        _copy_tree(work, rev)
        configure(work, modules, [])
        planted = plant(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {module: len(planted.get(module, [])) for module in modules}


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.MULTILINE)


def new_lines(diff: str) -> set[int]:
    """The lines of the new file a ``git diff -U0`` touches: each added line, and for a removal the line before it
    (inside the function the lines were removed from, or the ``def`` line when they were its first)."""
    touched: set[int] = set()
    for hunk in _HUNK.finditer(diff):
        start, count = int(hunk[1]), 1 if hunk[2] is None else int(hunk[2])
        touched.update(range(start, start + count) if count else {start})
    return touched


def functions_at(source: str, lines: set[int]) -> list[str]:
    """mutmut's names (``x_name``, ``xǁClassǁname``) of the functions and methods with a line (decorators included) in
    ``lines``: mutmut mutates only function bodies, each under its top-level function or method."""

    def touched(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
        return any(first <= line <= (node.end_lineno or node.lineno) for line in lines)

    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, functions) and touched(node):
            names.append(f"x_{node.name}")
        elif isinstance(node, ast.ClassDef):
            methods = [item for item in node.body if isinstance(item, functions) and touched(item)]
            names += [f"xǁ{node.name}ǁ{method.name}" for method in methods]
    return names


def changed_functions(module: str, since: str, rev: str | None, repo: Path = REPO) -> list[str]:
    """The functions of ``module`` changed from commit ``since`` to ``rev`` (default: the working tree)."""
    path = str(PACKAGE / module)
    diff = ["git", "-C", str(repo), "diff", "-U0", "--no-ext-diff", since, *([rev] if rev else []), "--", path]
    touched = new_lines(subprocess.run(diff, capture_output=True, text=True, check=True).stdout)
    if not touched:
        return []
    source = (
        subprocess.run(["git", "-C", str(repo), "show", f"{rev}:{path}"], capture_output=True, text=True, check=True)
        .stdout if rev else (repo / path).read_text(encoding="utf-8")
    )  # fmt: skip
    return functions_at(source, touched)


def mutant_patterns(module: str, functions: list[str]) -> list[str]:
    """``mutmut run`` arguments selecting every mutant of these functions (and none of a longer name)."""
    dotted = ".".join(("isbert", *Path(module).with_suffix("").parts)).removesuffix(".__init__")
    return [f"{dotted}.{function}__mutmut_*" for function in functions]


def mutmut_run(command: list[str], work: Path, env: dict[str, str], seconds: float | None) -> int | None:
    """``mutmut run`` in a process group of its own: its exit status, or None when it was stopped at ``seconds``
    (its fork server and workers with it; the verdicts it had written stay in the copy)."""
    process = subprocess.Popen(command, cwd=work, env=env, start_new_session=True)
    try:
        return process.wait(timeout=seconds)
    except (subprocess.TimeoutExpired, KeyboardInterrupt) as stop:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if isinstance(stop, KeyboardInterrupt):
            raise
        return None


def kills_failing_alone(work: Path, env: dict[str, str], warm: bool = True) -> dict[str, int]:
    """The tests of the copy's kill log that fail alone, first in a process, on the mutated source with no mutant
    active (``tools/tests_alone.py`` in mutmut's folder), each with the kills it logged: those kills are void, the
    test fails whatever the mutant (docs/testing.md, the package run with the hooks). Empty when all pass."""
    mutants = work / "mutants"
    log = mutants / "mutmut-kills.tsv"
    if not log.is_file():
        return {}
    source = os.pathsep.join(filter(None, ["src", env.get("PYTHONPATH")]))
    command = [sys.executable, str(TESTS_ALONE), log.name, *([] if warm else ["--no-warm"])]
    checked = subprocess.run(
        command, cwd=mutants, env={**env, "MUTANT_UNDER_TEST": "", "PYTHONPATH": source}, capture_output=True, text=True
    )
    lines = checked.stdout.splitlines()
    failed = [line.removeprefix(FAILED_ALONE) for line in lines if line.startswith(FAILED_ALONE)]
    if checked.returncode != (1 if failed else 0):
        reason = (checked.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(
            f"tools/tests_alone.py could not check the kills in {work} (exit {checked.returncode}): {reason}"
        )
    kills = Counter(test.strip() for _, test in map(kill_record, log.read_text(encoding="utf-8").splitlines()))
    return {test: kills[test] for test in failed}


def mutmut_environment() -> dict[str, str]:
    """The environment ``mutmut run`` gets in a copy: CI's fixed hypothesis examples, no hub, and the data folder."""
    env = dict(os.environ, CI="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    # mutmut runs in the copy: a data folder given relative to here (the Makefile's and CI's ../shared/data) is made
    # absolute, or the tests there would not find it
    env["ISBERT_DATA_DIR"] = str(Path(env.get("ISBERT_DATA_DIR") or REPO / ".." / "shared" / "data").resolve())
    return env


def run_module(
    module: str,
    *,
    jobs: int,
    rev: str | None,
    keep: bool,
    functions: list[str] | None = None,
    seconds: float | None = None,
) -> dict[str, object] | None:
    """mutmut over the module (or only the mutants of ``functions``, mutmut's names) in a fresh copy, stopped after
    ``seconds`` if given (``stopped`` in the report; the mutants not reached are ``not checked``); None when those
    functions have no mutant."""
    tests = selection(module)
    work = Path(tempfile.mkdtemp(prefix=f"mutmut-{module.replace('/', '-')}-"))
    started = time.perf_counter()
    _copy_tree(work, rev)
    _add_hooks(work)
    configure(work, module, tests)
    env = mutmut_environment()
    only = []  # mutmut refuses a run whose names match no mutant (a changed function with nothing to mutate)
    if functions is not None:
        planted = plant(work).get(module, [])
        only = [pattern for pattern in mutant_patterns(module, functions) if fnmatch.filter(planted, pattern)]
        if not only:
            shutil.rmtree(work, ignore_errors=True)
            return None
    print(f"mutmut on src/isbert/{module} with {' '.join(tests)} in {work}", flush=True)
    status = mutmut_run([str(MUTMUT), "run", "--max-children", str(jobs), *only], work, env, seconds)
    verdicts = results(work)
    if only:
        verdicts = {name: verdict for name, verdict in verdicts.items() if any(fnmatch.fnmatch(name, p) for p in only)}
    if status not in (0, None) or (status == 0 and not verdicts):
        raise SystemExit(f"mutmut failed on {module} (exit {status}); the copy is kept in {work}")
    not_caught = {name: verdict for name, verdict in verdicts.items() if verdict not in (*CAUGHT, NOT_RUN)}
    changed = diffs(work, list(not_caught))
    not_killed = {name: {"verdict": verdict, "diff": changed[name]} for name, verdict in not_caught.items()}
    failing_alone = kills_failing_alone(work, env) if status == 0 else None  # a stopped run's kills: not checked
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    counts = Counter(verdicts.values())
    void = min(counts["killed"], sum((failing_alone or {}).values()))  # a void kill catches nothing
    return {
        "module": module,
        "tests": tests,
        "rev": rev or "working tree",
        "mutants": len(verdicts),
        "counts": dict(counts),
        "score": (counts["killed"] - void + counts["caught by type check"]) / max(1, len(verdicts)),
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "stopped": status is None,
        "not_killed": not_killed,
        "failing_alone": failing_alone,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="below src/isbert, e.g. evaluation/sts.py (default: all)")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests")
    parser.add_argument("--count", action="store_true", help="print each module's number of mutants (no test run)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    parser.add_argument("--rev", help="mutate this commit (git archive) instead of the working tree")
    parser.add_argument("--keep", action="store_true", help="keep the copy (then `mutmut browse` in it)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--budget",
        type=float,
        metavar="MINUTES",
        help="stop after this many minutes in all: the module running then is stopped (its score is of the mutants "
        "it reached) and the modules after it are not run (CI's quick check of the last commit)",
    )
    parser.add_argument(
        "--since",
        metavar="COMMIT",
        help="only the mutants of functions changed since COMMIT (to --rev, or the working tree): a quick check of a "
        "change, not a module's score",
    )
    args = parser.parse_args(argv)
    if args.list:
        for module in MODULES:
            print(f"{module}: {' '.join(selection(module))}")
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        print(f"unknown module(s) {', '.join(unknown)}; --list shows them", file=sys.stderr)
        return 2
    if args.count:
        counts = count_mutants(args.modules or list(MODULES), args.rev)
        for module, count in counts.items():
            print(f"{module}: {count}")
        print(f"all: {sum(counts.values())}")
        return 0
    reports = []
    deadline = time.monotonic() + 60 * args.budget if args.budget is not None else None
    for module in args.modules or list(MODULES):
        try:
            functions = changed_functions(module, args.since, args.rev) if args.since else None
        except subprocess.CalledProcessError as error:
            reason = " ".join(error.stderr.split())
            print(f"git cannot compare {args.since} with {args.rev or 'the working tree'}: {reason}", file=sys.stderr)
            return 2
        if functions == []:
            print(f"{module}: no function changed since {args.since}")
            continue
        seconds = None if deadline is None else deadline - time.monotonic()
        if seconds is not None and seconds <= 0:
            print(f"{module}: not run, the budget of {args.budget:g} min is spent")
            continue
        report = run_module(module, jobs=args.jobs, rev=args.rev, keep=args.keep, functions=functions, seconds=seconds)
        if report is None:
            print(f"{module}: the functions changed since {args.since} have no mutant ({', '.join(functions or [])})")
            continue
        reports.append(report)
        if args.json:  # after each module: a long run stopped part way keeps the modules it finished
            _write_json(args.json, reports)
        print_report(report)
    if len(reports) > 1:
        print(f"\n{len(reports)} modules: {round(sum(r['minutes'] for r in reports), 1)} min")
    if args.json:
        _write_json(args.json, reports)
    return 1 if any(report.get("failing_alone") for report in reports) else 0


def print_report(report: dict) -> None:
    """The module's score and counts, each mutant not caught with its diff, and the tests whose kills are void."""
    counts = ", ".join(f"{n} {verdict}" for verdict, n in sorted(report["counts"].items()))
    not_run = report["counts"].get(NOT_RUN, 0)
    stopped = f"; stopped at the budget, {not_run} not run, its kills not checked alone" if report["stopped"] else ""
    print(f"\n{report['module']}: {report['score']:.1%} caught of {report['mutants']} mutants ({counts}), "
          f"{report['minutes']} min{stopped}")  # fmt: skip
    for name, mutant in report["not_killed"].items():
        print(f"  {name} ({mutant['verdict']}):\n    " + mutant["diff"].replace("\n", "\n    "))
    for test, kills in (report.get("failing_alone") or {}).items():
        print(f"  void: {kills} kill(s) by {test}, which fails alone without a mutant (not counted in the score)")


def _write_json(path: Path, reports: list[dict]) -> None:
    from isbert.atomic import write_json_atomic

    write_json_atomic(path, reports, indent=2)


if __name__ == "__main__":
    sys.exit(main())
