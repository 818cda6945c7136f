"""Record caps (issue 29, class 3): every record has a length cap before it is decoded or parsed.

A line, a CSV record (quoted fields may span lines), a JSON value, a gzip stream's decompressed line, an index text
record: over the cap is one line naming the file and line, read under bounded memory. The long-line attacks run in
a subprocess under an address-space limit, so a reader that holds the whole line dies there instead of passing.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from isbert.errors import InputError
from isbert.io import MAX_RECORD_BYTES, iter_texts

pytestmark = pytest.mark.reliability


@pytest.fixture(autouse=True)
def _each_case_is_a_fault(reliability) -> None:
    reliability.fault()


def read_under_limit(path: Path, limit_mb: int = 400) -> subprocess.CompletedProcess[str]:
    """``iter_texts(path)`` in a fresh interpreter whose address space is capped (the test's own memory is not)."""
    script = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({limit_mb} << 20, {limit_mb} << 20))
        from isbert.errors import IsbertError
        from isbert.io import iter_texts
        try:
            for _ in iter_texts({str(path)!r}):
                pass
        except IsbertError as error:
            print(error)
            sys.exit(2)
        """
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["long.txt", "long.jsonl", "long.csv", "long.txt.gz"])
def test_a_line_over_the_cap_is_one_line_under_bounded_memory(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    head = {"long.txt": b"first\n", "long.jsonl": b'{"text": "first"}\n', "long.csv": b"text\nfirst\n"}
    first = head.get(name.removesuffix(".gz"), b"first\n")
    body = first + b"x" * (1 << 30) if name.endswith(".gz") else first + b"x" * (3 * MAX_RECORD_BYTES)
    if name.endswith(".gz"):  # a 1 GiB line that compresses to about 1 MB: a decompression bomb
        with gzip.open(path, "wb", compresslevel=1) as handle:
            handle.write(first)
            for _ in range(64):
                handle.write(b"x" * (1 << 24))
    else:
        path.write_bytes(body)
    result = read_under_limit(path)
    assert result.returncode == 2, result.stderr[-2000:]
    line = 3 if name == "long.csv" else 2
    assert f"{path}:{line}: " in result.stdout and "longer than" in result.stdout, result.stdout
    assert result.stdout.count("\n") == 1


def test_a_stray_quote_in_a_csv_is_an_error_not_a_swallowed_file(tmp_path: Path) -> None:
    path = tmp_path / "stray.csv"
    path.write_text('text,label\nfine,1\n"broken,2\nnext,3\nlast,4\n')
    with pytest.raises(InputError, match=r"stray\.csv:3: .*quote"):
        list(iter_texts(path))


def test_a_csv_row_with_too_few_fields_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("text,label\nfine,1\nshort\n")
    with pytest.raises(InputError, match=r"short\.csv:3: row has 1 fields"):
        list(iter_texts(path))


def test_a_quoted_multi_line_field_is_still_one_record(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    path.write_text('text,label\n"two\nlines",1\nnext,2\n')
    assert list(iter_texts(path)) == [(2, "two\nlines"), (4, "next")]


def test_a_quoted_record_spanning_past_the_cap_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import isbert.io

    monkeypatch.setattr(isbert.io, "MAX_RECORD_BYTES", 1000)
    path = tmp_path / "span.csv"
    path.write_text('text,label\n"open\n' + "more text\n" * 500 + '",1\n')
    with pytest.raises(InputError, match=r"span\.csv:2: .*longer than"):
        list(iter_texts(path))


def test_deeply_nested_json_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text('{"text": "ok"}\n' + "[" * 100_000 + "\n")
    with pytest.raises(InputError, match=r"deep\.jsonl:2: .*nested"):
        list(iter_texts(path))


def test_a_deeply_nested_index_record_is_one_line(tmp_path: Path) -> None:
    from isbert.errors import IsbertError
    from isbert.search.legacy import parse_record

    with pytest.raises(IsbertError, match="damaged record"):
        parse_record(b"[" * 100_000 + b"\n", "texts-000001.jsonl: record 0")


def test_json_records_stay_exact(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["a", "b\nc", "é"]))
    assert [text for _, text in iter_texts(path)] == ["a", "b\nc", "é"]


def test_a_task_file_line_over_the_cap_is_one_line_under_bounded_memory(tmp_path: Path) -> None:
    """The evaluation task parsers read through ``readers.read_lines``, capped like every other line reader."""
    path = tmp_path / "STS.input.long.txt"
    path.write_bytes(b"a\tb\n" + b"x" * (3 * MAX_RECORD_BYTES) + b"\n")
    script = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (400 << 20, 400 << 20))
        from isbert.errors import IsbertError
        from isbert.evaluation.readers import read_lines
        try:
            read_lines({str(path)!r})
        except IsbertError as error:
            print(error)
            sys.exit(2)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"{path}:2: " in result.stdout and "longer than" in result.stdout, result.stdout
    assert result.stdout.count("\n") == 1


def test_an_experiment_file_over_its_cap_is_one_line(tmp_path: Path) -> None:
    from isbert.errors import IsbertError
    from isbert.experiments.config import MAX_EXPERIMENT_BYTES, load_experiment

    path = tmp_path / "huge.toml"
    path.write_bytes(b"# " + b"x" * MAX_EXPERIMENT_BYTES + b"\n")
    with pytest.raises(IsbertError, match=r"huge\.toml: larger than") as info:
        load_experiment(path)
    assert "\n" not in str(info.value)
