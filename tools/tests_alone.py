"""Run each given test alone, first in a fresh process, as mutmut's worker runs it; print the ones that fail.

mutmut's fork server imports the libraries and the tests, then forks a worker per mutant, and the mutant-run hooks
(``tools/mutmut_conftest.py``) put a function's likeliest killer first in it. A test that fails whenever it runs
first in a process (it passes in the suite only because an earlier test changed the process's state) then "kills"
every mutant it is put first for. This runs each test the same way, without a mutant: a failure voids its kills.

    .venv/bin/python tools/tests_alone.py /tmp/mutmut-*/mutants/mutmut-kills.tsv

Arguments are kill logs (``function<TAB>test`` lines) or plain lists of test ids; two tests run at a time.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

from mutmut_conftest import kill_record

FAILED_ALONE = "failed alone: "  # the line naming a test that failed alone (read by tools/mutmut_modules.py)
# imported once before forking, as mutmut's server has them, so each test costs its own time only
WARM = ("torch", "transformers", "sentence_transformers", "isbert")


def test_ids(files: list[Path]) -> list[str]:
    """The distinct test ids of kill logs (read as the hooks write them) or of lists (a line without a tab), in
    first-seen order."""
    lines = (line for file in files for line in file.read_text(encoding="utf-8").splitlines())
    ids = (test or function for function, test in map(kill_record, lines))
    return list(dict.fromkeys(test.strip() for test in ids if test.strip()))


def run_alone(tests: list[str], jobs: int = 2, logs: Path | None = None) -> dict[str, int]:
    """Each test in its own forked pytest (``-p no:cacheprovider -q``); its exit code by test id."""
    import pytest

    codes: dict[str, int] = {}
    running: dict[int, tuple[str, float]] = {}

    def reap() -> None:
        pid, status = os.wait()
        test, began = running.pop(pid)
        codes[test] = os.waitstatus_to_exitcode(status)
        print(f"{codes[test]}\t{time.monotonic() - began:.1f}\t{test}", flush=True)

    for number, test in enumerate(tests):
        while len(running) >= jobs:
            reap()
        pid = os.fork()
        if pid == 0:  # the child: its output to its own log, or nowhere
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL  # a fresh file in the new logs folder, never a planted one
            out = os.open(logs / f"{number}.log", flags, 0o600) if logs else os.open(os.devnull, os.O_WRONLY)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os._exit(int(pytest.main(["-p", "no:cacheprovider", "-q", test])))
        running[pid] = (test, time.monotonic())
    while running:
        reap()
    return codes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="kill logs or lists of test ids")
    parser.add_argument("--jobs", type=int, default=2, help="tests run at once (default 2)")
    parser.add_argument("--logs", type=Path, help="a new folder for each test's output")
    parser.add_argument("--no-warm", action="store_true", help="do not import torch and the rest before forking")
    args = parser.parse_args(argv)
    tests = test_ids(args.files)
    if args.logs:
        args.logs.mkdir()
    if not args.no_warm:
        for module in WARM:
            importlib.import_module(module)
    began = time.monotonic()
    failed = sorted(test for test, code in run_alone(tests, args.jobs, args.logs).items() if code != 0)
    print(f"{len(tests)} tests alone in {time.monotonic() - began:.0f} s; {len(failed)} failed", flush=True)
    for test in failed:
        print(f"{FAILED_ALONE}{test}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
