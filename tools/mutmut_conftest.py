"""pytest hooks for mutmut's mutant runs: ``tools/mutmut_modules.py`` puts this file at the root of each copy, as
``conftest.py``, next to mutmut's ``mutmut-stats.json``. They act only in a worker running a mutant (mutmut's
``MUTANT_UNDER_TEST`` names one); the stats pass and the clean run are untouched.

- **Likely killers first.** mutmut 3.8 hands a worker the tests that reach the mutated function as a set, so pytest
  runs them in an arbitrary order and stops at the first failure (``-x``). The hooks sort them: first the tests that
  killed other mutants of the same function in this run (most kills first; each worker appends the test that failed
  to ``mutmut-kills.tsv``, and mutmut runs a function's mutants one after another), then by the durations mutmut
  recorded in its stats pass, fastest first. With tests that do not depend on their order the verdict is the same
  (killed when any test fails, survived when all pass), only the time to it, and whether a slow mutant's first test
  runs into mutmut's wall bound, changes; a test that fails whenever it runs first in a process fails for every
  mutant it is put first for (docs/testing.md, the package run with the hooks).
- **No collection of the warmed-up heap.** The fork server imports torch, transformers and the test modules before it
  forks each worker, and pytest collects garbage at the end of every session (for unraisable exceptions): a full
  collection of that heap costs about half a second per mutant. ``gc.freeze()`` leaves the inherited objects out of
  every collection; what a test creates is collected as before.
"""

from __future__ import annotations

import gc
import json
import math
import os
from collections import Counter
from pathlib import Path

import pytest

STATS = Path(__file__).with_name("mutmut-stats.json")
KILLS = Path(__file__).with_name("mutmut-kills.tsv")


def mutant_under_test() -> str | None:
    """The mutant this worker runs (mutmut's stats pass and clean run set other values), or None."""
    name = os.environ.get("MUTANT_UNDER_TEST", "")
    return name if "__mutmut_" in name else None


def function_of(mutant: str) -> str:
    return mutant.rsplit("__mutmut_", 1)[0]


def recorded_durations(stats: Path = STATS) -> dict[str, float]:
    """Each test's seconds in mutmut's stats pass (setup, call and teardown); empty before that pass has written it."""
    try:
        return dict(json.loads(stats.read_text(encoding="utf-8"))["duration_by_test"])
    except (OSError, ValueError, KeyError):
        return {}


def kill_record(line: str) -> tuple[str, str]:
    """(function, test) of a kill log line: the first tab ends the function's name (a test id may hold tabs)."""
    function, _, test = line.partition("\t")
    return function, test


def kills_of(function: str, kills: Path = KILLS) -> Counter[str]:
    """How many mutants of ``function`` each test killed so far in this run."""
    try:
        lines = kills.read_text(encoding="utf-8").splitlines()
    except OSError:
        return Counter()
    return Counter(test for killed, test in map(kill_record, lines) if killed == function)


def record_kill(function: str, test: str, kills: Path = KILLS) -> None:
    # one short append per worker: O_APPEND keeps the concurrent workers' lines whole
    with kills.open("a", encoding="utf-8") as log:
        log.write(f"{function}\t{test}\n")


def likely_killers_first(items: list[pytest.Item], kills: Counter[str], durations: dict[str, float]) -> None:
    """Sort in place: most kills first, then fastest (an unrecorded test last); ties keep their order."""
    items.sort(key=lambda item: (-kills[item.nodeid], durations.get(item.nodeid, math.inf)))


def pytest_configure(config: pytest.Config) -> None:
    if mutant_under_test():
        gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mutant = mutant_under_test()
    if mutant:
        likely_killers_first(items, kills_of(function_of(mutant)), recorded_durations())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    mutant = mutant_under_test()
    if mutant and report.failed:
        record_kill(function_of(mutant), report.nodeid)
