"""Every subcommand with bad arguments: wrong flags, wrong types, missing files and models, unwritable output.

The outcome must be a short error on stderr and a non-zero exit code: argparse's usage error (a usage line and an
error line, exit 2) for malformed command lines, and exactly one ``isbert CMD: error: ...`` line for isbert's own
errors. Never a traceback. Most cases run in-process (``isbert.cli.main``); a few go through ``python -m isbert``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from isbert.cli import main

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_isbert_folder: Path) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli-bad-input")
    corpus = root / "corpus.txt"
    corpus.write_text("a man runs\nthe dog sleeps\na cat eats\nhello there\n", encoding="utf-8")
    blocker = root / "a-file"
    blocker.write_text("not a folder\n")
    bad_jsonl = root / "bad.jsonl"
    bad_jsonl.write_text('{"text": "ok"}\n{"body": "no text field"}\n')
    bad_utf8 = root / "bad.txt"
    bad_utf8.write_bytes(b"ok\n\xff\xfe broken\n")
    bad_sources = root / "sources.json"
    bad_sources.write_text("{not json")
    empty_sources = root / "no-sources.json"
    empty_sources.write_text("[]")
    empty_data = root / "empty-data"
    empty_data.mkdir()
    return {
        "model": str(tiny_isbert_folder),
        "corpus": str(corpus),
        "root": str(root),
        "under_file": str(blocker / "sub" / "out"),
        "missing": str(root / "does-not-exist.txt"),
        "missing_model": str(root / "no-such-model"),
        "missing_index": str(root / "no-such-index"),
        "bad_jsonl": str(bad_jsonl),
        "bad_utf8": str(bad_utf8),
        "bad_sources": str(bad_sources),
        "empty_sources": str(empty_sources),
        "empty_data": str(empty_data),
        "file": str(blocker),
    }


# (case id, argv template, kind, message): kind "usage" = argparse usage error, "error" = isbert's one-line error;
# message = a regex the error line must match, naming the actual cause (not just any error).
# Templates use {model}, {corpus}, {under_file}, ... from the `files` fixture.
CASES: list[tuple[str, list[str], str, str]] = [
    # --- top level
    ("no-such-command", ["frobnicate"], "usage", r"invalid choice: 'frobnicate'"),
    ("top-unknown-flag", ["--bogus"], "usage", r"unrecognized arguments: --bogus"),
    # --- encode
    (
        "encode-unknown-flag",
        ["encode", "{model}", "-i", "{corpus}", "-o", "{root}/e.npy", "--bogus"],
        "usage",
        r"unrecognized arguments: --bogus",
    ),
    (
        "encode-batch-abc",
        ["encode", "{model}", "-i", "{corpus}", "-o", "{root}/e.npy", "--batch-size", "abc"],
        "usage",
        r"--batch-size: expected a whole number, got 'abc'",
    ),
    (
        "encode-batch-zero",
        ["encode", "{model}", "-i", "{corpus}", "-o", "{root}/e.npy", "--batch-size", "0"],
        "usage",
        r"--batch-size: must be at least 1, got 0",
    ),
    (
        "encode-chunk-neg",
        ["encode", "{model}", "-i", "{corpus}", "-o", "{root}/e.npy", "--chunk-size", "-1"],
        "usage",
        r"--chunk-size: must be at least 1, got -1",
    ),
    (
        "encode-bad-choice",
        ["encode", "{model}", "-i", "{corpus}", "-o", "{root}/e.npy", "--backend", "tf"],
        "usage",
        r"--backend: invalid choice: 'tf'",
    ),
    ("encode-no-output", ["encode", "{model}", "-i", "{corpus}"], "usage", r"required: --output"),
    (
        "encode-missing-input",
        ["encode", "{model}", "-i", "{missing}", "-o", "{root}/e.npy"],
        "error",
        r"input file not found: .*does-not-exist.txt",
    ),
    (
        "encode-input-is-folder-without-texts",
        ["encode", "{model}", "-i", "{empty_data}", "-o", "{root}/e.npy"],
        "error",
        r"empty-data: no text files in this folder",
    ),
    (
        "encode-missing-model",
        ["encode", "{missing_model}", "-i", "{corpus}", "-o", "{root}/e.npy"],
        "error",
        r"model folder not found: .*no-such-model",
    ),
    (
        "encode-bad-jsonl",
        ["encode", "{model}", "-i", "{bad_jsonl}", "-o", "{root}/j.npy"],
        "error",
        r"bad.jsonl:2: no field 'text'",
    ),
    (
        "encode-bad-utf8",
        ["encode", "{model}", "-i", "{bad_utf8}", "-o", "{root}/u.npy"],
        "error",
        r"bad.txt:2: not valid UTF-8",
    ),
    (
        "encode-output-under-file",
        ["encode", "{model}", "-i", "{corpus}", "-o", "{under_file}.npy"],
        "error",
        r"a-file/sub: Not a directory",
    ),
    ("encode-output-is-folder", ["encode", "{model}", "-i", "{corpus}", "-o", "{root}"], "error", r"must end in .npy"),
    # --- export
    (
        "export-unknown-flag",
        ["export", "{model}", "-o", "{root}/x", "--bogus"],
        "usage",
        r"unrecognized arguments: --bogus",
    ),
    (
        "export-bad-choice",
        ["export", "{model}", "-o", "{root}/x", "--quantize", "int4"],
        "usage",
        r"--quantize: invalid choice: 'int4'",
    ),
    (
        "export-missing-model",
        ["export", "{missing_model}", "-o", "{root}/x"],
        "error",
        r"model folder not found: .*no-such-model",
    ),
    ("export-output-under-file", ["export", "{model}", "-o", "{under_file}"], "error", r"a-file/sub: Not a directory"),
    # --- train
    (
        "train-unknown-flag",
        ["train", "--corpus", "{corpus}", "-o", "{root}/t", "--bogus"],
        "usage",
        r"unrecognized arguments: --bogus",
    ),
    (
        "train-batch-abc",
        ["train", "--corpus", "{corpus}", "-o", "{root}/t", "--batch-size", "abc"],
        "usage",
        r"--batch-size: expected a whole number",
    ),
    (
        "train-lr-neg",
        ["train", "--corpus", "{corpus}", "-o", "{root}/t", "--lr", "-1"],
        "usage",
        r"--lr: must be positive, got -1",
    ),
    (
        "train-epochs-nan",
        ["train", "--corpus", "{corpus}", "-o", "{root}/t", "--epochs", "nan"],
        "usage",
        r"--epochs: must be positive, got nan",
    ),
    (
        "train-heldout-neg",
        ["train", "--corpus", "{corpus}", "-o", "{root}/t", "--heldout-size", "-3"],
        "usage",
        r"--heldout-size: must be at least 0, got -3",
    ),
    ("train-no-corpus", ["train", "-o", "{root}/t"], "usage", r"required: --input/-i/--corpus"),
    (
        "train-missing-corpus",
        ["train", "--model", "{model}", "--corpus", "{missing}", "-o", "{root}/t1"],
        "error",
        r"input file not found: .*does-not-exist.txt",
    ),
    (
        "train-missing-model",
        ["train", "--model", "{missing_model}", "--corpus", "{corpus}", "-o", "{root}/t2", "--batch-size", "2"],
        "error",
        r"model folder not found: .*no-such-model",
    ),
    (
        "train-output-under-file",
        ["train", "--model", "{model}", "--corpus", "{corpus}", "-o", "{under_file}"],
        "error",
        r"a-file/sub/out: Not a directory",
    ),
    # --- eval
    ("eval-unknown-flag", ["eval", "{model}", "--bogus"], "usage", r"unrecognized arguments: --bogus"),
    ("eval-batch-abc", ["eval", "{model}", "--batch-size", "abc"], "usage", r"--batch-size: expected a whole number"),
    ("eval-batch-neg", ["eval", "{model}", "--batch-size", "-1"], "usage", r"--batch-size: must be at least 1, got -1"),
    (
        "eval-whiten-dim-abc",
        ["eval", "{model}", "--whiten-dim", "x"],
        "usage",
        r"--whiten-dim: expected a whole number",
    ),
    ("eval-bad-text", ["eval", "{model}", "--text", "cased"], "usage", r"--text: invalid choice: 'cased'"),
    (
        "eval-unknown-task",
        ["eval", "{model}", "--tasks", "NOPE", "--data-dir", "{empty_data}"],
        "error",
        r"unknown task 'NOPE'",
    ),
    (
        "eval-missing-data-dir",
        ["eval", "{model}", "--data-dir", "{missing}"],
        "error",
        r"data directory not found: .*does-not-exist.txt",
    ),
    (
        "eval-data-dir-is-file",
        ["eval", "{model}", "--data-dir", "{file}"],
        "error",
        r"data directory not found: .*a-file",
    ),
    (
        "eval-empty-data-dir",
        ["eval", "{model}", "--tasks", "STS12", "--data-dir", "{empty_data}"],
        "error",
        r"missing data file: .*STS12",
    ),
    (
        "eval-missing-model",
        ["eval", "{missing_model}", "--tasks", "STS12", "--data-dir", "{empty_data}"],
        "error",
        r"model folder not found: .*no-such-model",
    ),
    # --- data
    ("data-no-action", ["data"], "usage", r"required: {check,download}"),
    ("data-bad-action", ["data", "frob"], "usage", r"invalid choice: 'frob'"),
    ("data-check-unknown-flag", ["data", "check", "--bogus"], "usage", r"unrecognized arguments: --bogus"),
    (
        "data-check-missing-dir",
        ["data", "check", "--data-dir", "{missing}"],
        "error",
        r"data directory not found: .*does-not-exist.txt",
    ),
    (
        "data-check-bad-task",
        ["data", "check", "--data-dir", "{empty_data}", "--tasks", "NOPE"],
        "error",
        r"unknown task 'NOPE'",
    ),
    ("data-download-no-dir", ["data", "download"], "usage", r"required: --data-dir"),
    (
        "data-download-timeout-abc",
        ["data", "download", "--data-dir", "{root}/d", "--timeout", "abc"],
        "usage",
        r"--timeout: expected a number, got 'abc'",
    ),
    (
        "data-download-bad-sources",
        ["data", "download", "--data-dir", "{root}/d", "--sources", "{bad_sources}"],
        "error",
        r"sources.json: not a valid sources file",
    ),
    (
        "data-download-missing-sources",
        ["data", "download", "--data-dir", "{root}/d", "--sources", "{missing}"],
        "error",
        r"does-not-exist.txt: not a valid sources file",
    ),
    (
        "data-download-dir-under-file",
        ["data", "download", "--data-dir", "{under_file}", "--sources", "{empty_sources}"],
        "error",
        r"a-file",
    ),
    # --- index
    ("index-no-action", ["index"], "usage", r"required: ACTION"),
    (
        "index-build-unknown-flag",
        ["index", "build", "{root}/i", "--model", "{model}", "-i", "{corpus}", "--bogus"],
        "usage",
        r"unrecognized arguments: --bogus",
    ),
    (
        "index-build-batch-abc",
        ["index", "build", "{root}/i", "--model", "{model}", "-i", "{corpus}", "--batch-size", "abc"],
        "usage",
        r"--batch-size: expected a whole number",
    ),
    (
        "index-build-bad-kind",
        ["index", "build", "{root}/i", "--model", "{model}", "-i", "{corpus}", "--kind", "lsh"],
        "usage",
        r"--kind: invalid choice: 'lsh'",
    ),
    (
        "index-build-nlist-neg",
        ["index", "build", "{root}/i", "--model", "{model}", "-i", "{corpus}", "--nlist", "-4"],
        "usage",
        r"--nlist: must be at least 1, got -4",
    ),
    (
        "index-build-missing-input",
        ["index", "build", "{root}/i1", "--model", "{model}", "-i", "{missing}"],
        "error",
        r"input file not found: .*does-not-exist.txt",
    ),
    (
        "index-build-missing-model",
        ["index", "build", "{root}/i2", "--model", "{missing_model}", "-i", "{corpus}"],
        "error",
        r"model folder not found: .*no-such-model",
    ),
    (
        "index-build-under-file",
        ["index", "build", "{under_file}", "--model", "{model}", "-i", "{corpus}"],
        "error",
        r"a-file/sub/out: Not a directory",
    ),
    (
        "index-build-index-is-file",
        ["index", "build", "{file}", "--model", "{model}", "-i", "{corpus}"],
        "error",
        r"not a folder: .*a-file",
    ),
    (
        "index-build-bad-utf8",
        ["index", "build", "{root}/i3", "--model", "{model}", "-i", "{bad_utf8}"],
        "error",
        r"bad.txt:2: not valid UTF-8",
    ),
    (
        "index-add-missing-index",
        ["index", "add", "{missing_index}", "-i", "{corpus}"],
        "error",
        r"not an index folder .*no-such-index",
    ),
    (
        "index-add-batch-abc",
        ["index", "add", "{missing_index}", "-i", "{corpus}", "--batch-size", "abc"],
        "usage",
        r"--batch-size: expected a whole number",
    ),
    ("index-info-missing", ["index", "info", "{missing_index}"], "error", r"not an index folder .*no-such-index"),
    ("index-info-is-file", ["index", "info", "{file}"], "error", r"not an index folder .*a-file"),
    ("index-info-extra-arg", ["index", "info", "{missing_index}", "extra"], "usage", r"unrecognized arguments: extra"),
    # --- search
    ("search-unknown-flag", ["search", "{missing_index}", "q", "--bogus"], "usage", r"unrecognized arguments: --bogus"),
    ("search-k-abc", ["search", "{missing_index}", "q", "-k", "abc"], "usage", r"-k: expected a whole number"),
    ("search-k-neg", ["search", "{missing_index}", "q", "-k", "-1"], "usage", r"-k: must be at least 1, got -1"),
    ("search-missing-index", ["search", "{missing_index}", "hello"], "error", r"not an index folder .*no-such-index"),
    ("search-no-query", ["search", "{missing_index}"], "error", r"give a query"),
    (
        "search-missing-queries-file",
        ["search", "{missing_index}", "--queries", "{missing}"],
        "error",
        r"input file not found: .*does-not-exist.txt",
    ),
    (
        "search-bad-queries-file",
        ["search", "{missing_index}", "--queries", "{bad_jsonl}"],
        "error",
        r"bad.jsonl:2: no field 'text'",
    ),
    # --- cluster
    (
        "cluster-unknown-flag",
        ["cluster", "{model}", "-i", "{corpus}", "--k", "2", "--bogus"],
        "usage",
        r"unrecognized arguments: --bogus",
    ),
    ("cluster-k-abc", ["cluster", "{model}", "-i", "{corpus}", "--k", "abc"], "usage", r"--k: expected a whole number"),
    (
        "cluster-k-neg",
        ["cluster", "{model}", "-i", "{corpus}", "--k", "-1"],
        "usage",
        r"--k: must be at least 1, got -1",
    ),
    (
        "cluster-bad-method",
        ["cluster", "{model}", "-i", "{corpus}", "--method", "dbscan"],
        "usage",
        r"--method: invalid choice: 'dbscan'",
    ),
    (
        "cluster-threshold-abc",
        ["cluster", "{model}", "-i", "{corpus}", "--method", "agglomerative", "--distance-threshold", "abc"],
        "usage",
        r"--distance-threshold: expected a number, got 'abc'",
    ),
    ("cluster-no-k", ["cluster", "{model}", "-i", "{corpus}"], "error", r"k-means needs --k N"),
    (
        "cluster-missing-input",
        ["cluster", "{model}", "-i", "{missing}", "--k", "2"],
        "error",
        r"input file not found: .*does-not-exist.txt",
    ),
    (
        "cluster-missing-model",
        ["cluster", "{missing_model}", "-i", "{corpus}", "--k", "2"],
        "error",
        r"model folder not found: .*no-such-model",
    ),
    (
        "cluster-output-under-file",
        ["cluster", "{model}", "-i", "{corpus}", "--k", "2", "--no-plot", "--no-progress", "-o", "{under_file}"],
        "error",
        r"a-file/sub/out: Not a directory",
    ),
    (
        "cluster-k-too-big",
        ["cluster", "{model}", "-i", "{corpus}", "--k", "50", "--no-plot", "--no-progress", "-o", "{root}/c"],
        "error",
        r"--k 50 is larger than the number of texts \(4\)",
    ),
    # --- similar
    (
        "similar-unknown-flag",
        ["similar", "{model}", "-i", "{corpus}", "-t", "0.9", "--bogus"],
        "usage",
        r"unrecognized arguments: --bogus",
    ),
    (
        "similar-threshold-abc",
        ["similar", "{model}", "-i", "{corpus}", "-t", "abc"],
        "usage",
        r"--threshold/-t: expected a number, got 'abc'",
    ),
    ("similar-no-threshold", ["similar", "{model}", "-i", "{corpus}"], "usage", r"required: --threshold/-t"),
    (
        "similar-block-zero",
        ["similar", "{model}", "-i", "{corpus}", "-t", "0.9", "--block", "0"],
        "usage",
        r"--block: must be at least 1, got 0",
    ),
    (
        "similar-missing-input",
        ["similar", "{model}", "-i", "{missing}", "-t", "0.9"],
        "error",
        r"input file not found: .*does-not-exist.txt",
    ),
    (
        "similar-missing-model",
        ["similar", "{missing_model}", "-i", "{corpus}", "-t", "0.9"],
        "error",
        r"model folder not found: .*no-such-model",
    ),
    (
        "similar-output-under-file",
        ["similar", "{model}", "-i", "{corpus}", "-t", "-1", "--no-progress", "-o", "{under_file}.tsv"],
        "error",
        r"a-file/sub: Not a directory",
    ),
    # --- serve (never reaches the point of binding a port)
    ("serve-unknown-flag", ["serve", "{model}", "--bogus"], "usage", r"unrecognized arguments: --bogus"),
    ("serve-port-abc", ["serve", "{model}", "--port", "abc"], "usage", r"--port: expected a whole number, got 'abc'"),
    (
        "serve-max-texts-zero",
        ["serve", "{model}", "--max-texts", "0"],
        "usage",
        r"--max-texts: must be at least 1, got 0",
    ),
    (
        "serve-port-out-of-range",
        ["serve", "{model}", "--port", "70000"],
        "usage",
        r"--port: must be at most 65,535, got 70000",
    ),
    (
        "serve-missing-index",
        ["serve", "{model}", "--index", "{missing_index}"],
        "error",
        r"not an index folder .*no-such-index",
    ),
    (
        "serve-missing-model",
        ["serve", "{missing_model}", "--port", "1"],
        "error",
        r"model folder not found: .*no-such-model",
    ),
]


def _argv(template: list[str], files: dict[str, str]) -> list[str]:
    return [part.format(**files) for part in template]


def _check_stderr(err: str, kind: str, command: str) -> None:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    if kind == "usage":
        # argparse: "usage: ..." (possibly wrapped over several lines) then exactly one "PROG: error: ..." line
        assert lines and lines[0].startswith("usage:"), err
        errors = [line for line in lines if ": error: " in line]
        assert len(errors) == 1 and lines[-1] == errors[0], err
    else:
        assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{err}"
        assert lines[0].startswith(f"isbert {command}: error: "), err


@pytest.mark.parametrize(("template", "kind", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_arguments_give_a_short_error(template, kind, message, files, capsys, reliability) -> None:
    reliability.fuzz_case()
    argv = _argv(template, files)
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse
        code = stop.code
    err = capsys.readouterr().err
    assert code not in (0, None), err
    assert code == 2, (code, err)
    _check_stderr(err, kind, argv[0])
    error_line = next(line for line in err.splitlines() if ": error: " in line)
    assert re.search(message, error_line), f"{message!r} not in {error_line!r}"


@pytest.mark.parametrize(
    ("template", "kind"),
    [
        (["encode", "{model}", "-i", "{corpus}", "-o", "{root}/s.npy", "--batch-size", "abc"], "usage"),
        (["encode", "{missing_model}", "-i", "{corpus}", "-o", "{root}/s.npy"], "error"),
        (["encode", "{model}", "-i", "{corpus}", "-o", "{under_file}.npy"], "error"),
    ],
    ids=["usage", "missing-model", "unwritable-output"],
)
def test_subprocess_exit_code_and_no_traceback(template, kind, files, reliability) -> None:
    reliability.fuzz_case()
    argv = _argv(template, files)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "isbert", *argv], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 2, result.stderr
    _check_stderr(result.stderr, kind, argv[0])
