"""Shared fixtures: tiny random-weight models (see tiny_models.py), offline hub settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings
from tiny_models import make_tiny_backbone

# CI runs a fixed set of examples (no flaky red builds); local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The evaluation data, found exactly as the CLI finds it (``ISBERT_DATA_DIR``; the README's test command sets
    it to ``../shared/data``). Missing data skips a developer's run but fails CI, which is meant to have it."""
    from isbert.errors import IsbertError
    from isbert.evaluation.tasks import resolve_data_dir

    try:
        return resolve_data_dir()
    except IsbertError as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the data tests: {error}", pytrace=False)
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_backbone(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_isbert_folder(tiny_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved IS-BERT model (tiny backbone, 8 filters per window) for CLI and loading tests."""
    import isbert

    model = isbert.build(str(tiny_backbone), out_channels=8, max_seq_length=16, device="cpu")
    folder = tmp_path_factory.mktemp("tiny-isbert")
    model.save(str(folder))
    return folder


@pytest.fixture
def tiny_isbert(tiny_backbone: Path):
    import isbert

    return isbert.build(str(tiny_backbone), out_channels=8, max_seq_length=32, device="cpu")


# --- Reliability summary (`make reliability`) -------------------------------------------------------------------
# Tests marked `reliability` report the faults they inject and the fuzz cases they try; the run ends with one line.
_NOTES: list[str] = []
_RELIABILITY = {"faults_injected": 0, "faults_survived": 0, "fuzz_cases": 0, "failures": 0, "tests": 0}


class ReliabilityCounter:
    """Counts what a reliability test did, for the summary printed at the end of the run.

    A test calls ``fault()`` where it injects a fault; the faults of a test count as survived only when the whole
    test passed, i.e. when its assertions about the outcome held.
    """

    def __init__(self) -> None:
        self.pending_faults = 0

    def fault(self, count: int = 1) -> None:
        _RELIABILITY["faults_injected"] += count
        self.pending_faults += count

    def fuzz_case(self, count: int = 1) -> None:
        _RELIABILITY["fuzz_cases"] += count

    def note(self, line: str) -> None:
        """A measured figure (a load test's throughput) printed under the summary line."""
        _NOTES.append(line)


_COUNTER = ReliabilityCounter()


@pytest.fixture(scope="session")
def reliability() -> ReliabilityCounter:
    return _COUNTER


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        _RELIABILITY["faults_survived"] += _COUNTER.pending_faults
    if report.when == "teardown":
        _COUNTER.pending_faults = 0
    if "reliability" in report.keywords and report.when == "call":
        _RELIABILITY["tests"] += 1
        _RELIABILITY["failures"] += int(report.failed)


def pytest_terminal_summary(terminalreporter) -> None:
    if _RELIABILITY["tests"]:
        r = _RELIABILITY
        terminalreporter.write_line(
            f"reliability: {r['tests']} tests; {r['faults_injected']} faults injected, {r['faults_survived']} "
            f"survived; {r['fuzz_cases']} fuzz cases tried; failures: {r['failures']}"
        )
    for line in _NOTES:
        terminalreporter.write_line(f"  {line}")
