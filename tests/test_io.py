"""The streaming text readers: formats, line endings, encodings and errors with file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isbert.errors import InputError, IsbertError
from isbert.io import ReadStats, detect_format, iter_texts


def texts(path: Path, **kwargs) -> list[str]:
    return [text for _, text in iter_texts(path, **kwargs)]


def test_txt_keeps_empty_lines_and_strips_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\n\r\ntwo  \nthree")
    assert texts(path) == ["one", "", "two  ", "three"]
    stats = ReadStats()
    assert texts(path, skip_empty=True, strip=True, stats=stats) == ["one", "two", "three"]
    assert (stats.lines, stats.used, stats.skipped) == (4, 3, {"empty": 1})


def test_gzip_is_read_transparently(tmp_path: Path) -> None:
    path = tmp_path / "a.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("héllo\nwörld\n")
    assert texts(path) == ["héllo", "wörld"]


def test_jsonl_reads_the_chosen_field(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "a", "id": 1}\n\n{"text": "b"}\n', encoding="utf-8")
    assert texts(path) == ["a", "b"]
    path.write_text('{"sentence": "a"}\n', encoding="utf-8")
    assert texts(path, text_field="sentence") == ["a"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "a"}\n{"text": \n', r"a\.jsonl:2: not valid JSON"),
        ('{"text": "a"}\n{"body": "b"}\n', r"a\.jsonl:2: no field 'text' \(fields: body\)"),
        ('["a"]\n', r"a\.jsonl:1: expected a JSON object"),
        ('{"text": 3}\n', r"a\.jsonl:1: field 'text' is int"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        texts(path)


def test_csv_and_tsv_read_the_chosen_column(tmp_path: Path) -> None:
    csv_path = tmp_path / "a.csv"
    csv_path.write_text('id,text\n1,"hello, world"\n2,"two\nlines"\n3,plain\n', encoding="utf-8")
    assert list(iter_texts(csv_path)) == [(2, "hello, world"), (3, "two\nlines"), (5, "plain")]
    tsv_path = tmp_path / "a.tsv"
    tsv_path.write_text("sentence\tlabel\nfirst\t1\nsecond\t0\n", encoding="utf-8")
    assert texts(tsv_path, column="sentence") == ["first", "second"]
    with pytest.raises(InputError, match=r"a\.tsv:1: no column 'text' \(columns: sentence, label\)"):
        texts(tsv_path)


def test_short_csv_row_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id,text\n1,ok\n2\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"a\.csv:3: row has 1 fields"):
        texts(path)


def test_non_utf8_bytes_strict_replace_skip(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"fine\nbad \xff byte\nfine again\n")
    with pytest.raises(InputError, match=r"a\.txt:2: not valid UTF-8 \(byte 0xff at column 5\)"):
        texts(path)
    assert texts(path, encoding_errors="replace") == ["fine", "bad \ufffd byte", "fine again"]
    stats = ReadStats()
    assert texts(path, encoding_errors="skip", stats=stats) == ["fine", "fine again"]
    assert stats.skipped == {"not valid UTF-8": 1} and stats.lines == 3


def test_missing_file_and_folder_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(IsbertError, match="input file not found"):
        texts(tmp_path / "none.txt")
    with pytest.raises(IsbertError, match="expected a file, got a folder"):
        texts(tmp_path)


def test_corrupt_gzip_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "a.txt.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(IsbertError, match="cannot read"):
        texts(path)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.txt", "txt"), ("a.TXT.GZ", "txt"), ("x", "txt"), ("a.jsonl.gz", "jsonl"), ("a.csv", "csv"), ("b.tsv", "tsv")],
)
def test_format_from_name(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


# NUL is valid UTF-8 but marks a binary file, refused (test_a_nul_byte_is_a_binary_file)
line_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x00"), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(line_text, min_size=1, max_size=20), crlf=st.booleans(), gz=st.booleans())
def test_txt_round_trip(tmp_path: Path, lines: list[str], crlf: bool, gz: bool) -> None:
    """Whatever the lines, each comes back as written, in order: no shifted or merged rows."""
    path = tmp_path / ("r.txt.gz" if gz else "r.txt")
    ending = "\r\n" if crlf else "\n"
    data = "".join(line + ending for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    expected = [lines[0].removeprefix("\ufeff"), *lines[1:]]  # a leading BOM is not text
    assert texts(path) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.text(max_size=30), min_size=1, max_size=15))
def test_jsonl_round_trip(tmp_path: Path, records: list[str]) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps({"text": text}) for text in records) + "\n", encoding="utf-8")
    assert texts(path) == records


def test_error_quoting_file_content_stays_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('"col\nwith newline",other\n1,2\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        texts(path)
    assert "\n" not in str(info.value) and "col\\nwith newline" in str(info.value)


@pytest.mark.parametrize("encoding_errors", ["strict", "replace", "skip"])
def test_a_nul_byte_is_a_binary_file(tmp_path: Path, encoding_errors: str) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"fine\n\x89PNG\x00\x00\x00\rIHDR\xff\n")
    with pytest.raises(InputError, match=rf"{path}:2: a NUL byte: this is a binary file"):
        list(iter_texts(path, encoding_errors=encoding_errors))
