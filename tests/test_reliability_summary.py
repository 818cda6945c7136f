"""The reliability summary line is honest: a fault counts as survived only when its test's assertions held."""

from __future__ import annotations

import shutil
from pathlib import Path

pytest_plugins = ["pytester"]
TESTS = Path(__file__).resolve().parent


def test_a_failed_assertion_is_not_counted_as_survived(pytester) -> None:
    shutil.copy(TESTS / "conftest.py", pytester.path / "conftest.py")
    shutil.copy(TESTS / "tiny_models.py", pytester.path / "tiny_models.py")
    pytester.makepyfile(
        test_faults="""
        import pytest

        pytestmark = pytest.mark.reliability

        def test_survives(reliability):
            reliability.fault()
            assert True

        def test_breaks(reliability):
            reliability.fault(2)
            assert False, "the fault broke the guarantee"

        def test_fuzz(reliability):
            reliability.fuzz_case(5)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-m", "reliability")
    result.stdout.fnmatch_lines(
        ["reliability: 3 tests; 3 faults injected, 1 survived; 5 fuzz cases tried; failures: 1"]
    )
