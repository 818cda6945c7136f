"""Property-based fuzzing of the streaming readers (``isbert.io.iter_texts``) and the training corpus builder.

Random bytes must give texts or an ``IsbertError`` whose message starts with the file path (and, for an ``InputError``,
a line inside the file); files generated from known records, with any mix of LF/CRLF, a BOM, with or without a final
newline, must read back exactly (same texts, same line numbers: nothing shifted or merged).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from isbert.errors import InputError, IsbertError
from isbert.io import ReadStats, iter_texts

pytestmark = pytest.mark.reliability

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SUFFIXES = ("txt", "txt.gz", "jsonl", "jsonl.gz", "csv", "tsv", "csv.gz")
BOM = b"\xef\xbb\xbf"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-readers")


def _write(workdir: Path, suffix: str, content: bytes, *, compress: bool = True) -> Path:
    folder = Path(tempfile.mkdtemp(dir=workdir))
    path = folder / f"input.{suffix}"
    path.write_bytes(gzip.compress(content) if suffix.endswith(".gz") and compress else content)
    return path


def _read(path: Path, **kwargs) -> list[tuple[int, str]] | IsbertError:
    """The records, or the IsbertError raised; any other exception propagates and fails the test."""
    try:
        return list(iter_texts(path, **kwargs))
    except IsbertError as error:
        return error


def _assert_clear_error(error: IsbertError, path: Path, content: bytes) -> None:
    message = str(error)
    assert "\n" not in message, message
    assert str(path) in message, message
    if isinstance(error, InputError):
        assert message.startswith(f"{path}:"), message
        assert error.line is not None, message
        assert 1 <= error.line <= content.count(b"\n") + 1, (error.line, message)


# ------------------------------------------------------------------------------------------------ random bytes
line_bytes = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=20).map(lambda t: t.encode("utf-8")),
    st.text(max_size=20).map(lambda t: t.encode("utf-16")),
    st.text(alphabet="abcé\"',\t{}[]:", max_size=20).map(lambda t: t.encode("latin-1")),
    st.sampled_from([b'{"text": "x"}', b'{"text": 1}', b"[1, 2]", b"text,other", b'"open quote', b"\x00", BOM]),
)
random_files = st.lists(line_bytes, max_size=8).flatmap(
    lambda parts: st.lists(st.sampled_from([b"\n", b"\r\n", b"\r", b""]), min_size=len(parts), max_size=len(parts)).map(
        lambda ends: b"".join(p + e for p, e in zip(parts, ends, strict=True))
    )
)


@FUZZ
@given(
    content=random_files,
    suffix=st.sampled_from(SUFFIXES),
    encoding_errors=st.sampled_from(["strict", "replace", "skip"]),
    strip=st.booleans(),
)
def test_random_bytes_give_texts_or_a_located_error(workdir, reliability, content, suffix, encoding_errors, strip):
    reliability.fuzz_case()
    path = _write(workdir, suffix, content)
    stats = ReadStats()
    result = _read(path, encoding_errors=encoding_errors, strip=strip, skip_empty=strip, stats=stats)
    if isinstance(result, IsbertError):
        _assert_clear_error(result, path, content)
        return
    numbers = [number for number, _ in result]
    assert numbers == sorted(set(numbers)), "line numbers must increase"
    assert all(isinstance(text, str) for _, text in result)
    assert all(1 <= n <= content.count(b"\n") + 1 for n in numbers)
    assert stats.used == len(result)
    if suffix.startswith("txt") and encoding_errors != "skip" and not strip:
        # one record per physical line, nothing merged or dropped
        assert len(result) == len(content.split(b"\n")) - (1 if content.endswith(b"\n") or not content else 0)


@FUZZ
@given(content=st.binary(max_size=200), suffix=st.sampled_from(["txt.gz", "jsonl.gz", "csv.gz"]))
def test_corrupt_gzip_is_a_clear_error(workdir, reliability, content, suffix):
    reliability.fuzz_case()
    path = _write(workdir, suffix, content, compress=False)
    result = _read(path)
    if isinstance(result, IsbertError):
        assert str(path) in str(result) and "\n" not in str(result)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_empty_files_read_as_nothing(workdir, reliability, suffix):
    reliability.fuzz_case()
    for content in (b"", BOM):
        assert _read(_write(workdir, suffix, content)) == []
    assert _read(_write(workdir, suffix, b"", compress=False)) == []  # a zero-byte .gz too


# ------------------------------------------------------------------------------------------------ exact round trip
# Texts on one line: no LF or CR, no BOM character (a leading one is dropped as a BOM); other line-like
# characters (\x0b \x0c \x1c \x85 \u2028) must NOT split a line. No NUL: it marks a binary file, refused in one
# line (tests/test_io.py::test_a_nul_byte_is_a_binary_file).
line_text = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_characters="\n\r\ufeff\x00", blacklist_categories=("Cs",)),
        st.sampled_from("\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\t \"',;"),
    ),
    max_size=30,
)


def _join(lines: list[str], ends: list[bytes], bom: bool, final_newline: bool) -> bytes:
    body = b"".join(line.encode("utf-8") + end for line, end in zip(lines, ends, strict=True))
    if not final_newline and lines:
        body = body[: -len(ends[-1])]
    return (BOM if bom else b"") + body


layout = st.fixed_dictionaries({"bom": st.booleans(), "final_newline": st.booleans(), "crlf": st.data()})


def _ends(data, count: int) -> list[bytes]:
    return data.draw(st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=count, max_size=count))


@FUZZ
@given(texts=st.lists(line_text, max_size=12), gz=st.booleans(), layout=layout)
def test_txt_round_trip(workdir, reliability, texts, gz, layout):
    reliability.fuzz_case()
    if not layout["final_newline"] and texts:
        assume(texts[-1] != "")  # a final empty line without newline does not exist
    content = _join(texts, _ends(layout["crlf"], len(texts)), layout["bom"], layout["final_newline"])
    path = _write(workdir, "txt.gz" if gz else "txt", content)
    assert _read(path) == list(enumerate(texts, start=1))


@FUZZ
@given(
    records=st.lists(
        st.tuples(st.text(max_size=30), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2), st.booleans()),
        max_size=10,
    ),
    blank_before=st.lists(st.booleans(), max_size=10),
    ascii_only=st.booleans(),
    gz=st.booleans(),
    layout=layout,
)
def test_jsonl_round_trip(workdir, reliability, records, blank_before, ascii_only, gz, layout):
    reliability.fuzz_case()
    lines: list[str] = []
    expected: list[tuple[int, str]] = []
    for i, (text, extra, first) in enumerate(records):
        if i < len(blank_before) and blank_before[i]:
            lines.append("  ")
        record = {**extra, "text": text} if first else {"text": text, **{k: v for k, v in extra.items() if k != "text"}}
        lines.append(json.dumps(record, ensure_ascii=ascii_only))
        expected.append((len(lines), text))
    content = _join(lines, _ends(layout["crlf"], len(lines)), layout["bom"], layout["final_newline"])
    path = _write(workdir, "jsonl.gz" if gz else "jsonl", content)
    assert _read(path) == expected


@FUZZ
@given(
    texts=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=8),
    bad=st.data(),
    kind=st.sampled_from(["missing", "not-string", "not-object", "not-json"]),
)
def test_jsonl_bad_record_names_its_line(workdir, reliability, texts, bad, kind):
    reliability.fuzz_case()
    lines = [json.dumps({"text": t}) for t in texts]
    index = bad.draw(st.integers(0, len(lines) - 1))
    lines[index] = {
        "missing": json.dumps({"body": texts[index]}),
        "not-string": json.dumps({"text": 3}),
        "not-object": json.dumps([texts[index]]),
        "not-json": '{"text": ' + json.dumps(texts[index]),
    }[kind]
    content = "\n".join(lines).encode("utf-8") + b"\n"
    path = _write(workdir, "jsonl", content)
    error = _read(path)
    assert isinstance(error, InputError), error
    assert error.line == index + 1 and str(error).startswith(f"{path}:{index + 1}: ")
    if kind == "missing":
        assert "'text'" in str(error)


cell = st.text(alphabet=st.characters(blacklist_characters="\r\ufeff\x00", blacklist_categories=("Cs",)), max_size=15)


@FUZZ
@given(
    header=st.lists(st.text(alphabet="abcxyz_ ", min_size=1, max_size=6), unique=True, max_size=3),
    position=st.integers(0, 3),
    rows=st.lists(st.lists(cell, min_size=4, max_size=4), max_size=8),
    delimiter=st.sampled_from([",", "\t"]),
    crlf=st.booleans(),
    bom=st.booleans(),
    final_newline=st.booleans(),
)
def test_table_round_trip(workdir, reliability, header, position, rows, delimiter, crlf, bom, final_newline):
    """csv/tsv with quoting as csv.writer does it (fields with quotes, delimiters and even newlines)."""
    reliability.fuzz_case()
    header = [name for name in header if name != "text"]
    position = min(position, len(header))
    header.insert(position, "text")
    width = len(header)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(header)
    expected = []
    line = 2
    for row in rows:
        row = row[:width]
        assume(row != [""])  # csv.writer writes a lone empty field as '""' (fine), but keep the model simple
        expected.append((line, row[position]))
        writer.writerow(row)
        line += buffer.getvalue().count("\n") - (line - 1)
    content = buffer.getvalue().encode("utf-8")
    if not final_newline:
        content = content[: -(2 if crlf else 1)]
    path = _write(workdir, "tsv" if delimiter == "\t" else "csv", (BOM if bom else b"") + content)
    result = _read(path)
    assert result == expected


@FUZZ
@given(
    width=st.integers(2, 4),
    rows=st.integers(1, 5),
    bad=st.data(),
    delimiter=st.sampled_from([",", "\t"]),
)
def test_table_missing_column_names_the_line(workdir, reliability, width, rows, bad, delimiter):
    reliability.fuzz_case()
    header = [f"c{i}" for i in range(width - 1)] + ["text"]
    table = [header] + [[f"r{r}c{i}" for i in range(width)] for r in range(rows)]
    suffix = "tsv" if delimiter == "\t" else "csv"
    which = bad.draw(st.integers(1, rows))
    table[which] = table[which][: bad.draw(st.integers(1, width - 1))]
    path = _write(workdir, suffix, "\n".join(delimiter.join(row) for row in table).encode() + b"\n")
    error = _read(path)
    assert isinstance(error, InputError) and error.line == which + 1, error
    assert str(error).startswith(f"{path}:{which + 1}: ")
    # and a header without the column: line 1, naming the column
    path = _write(workdir, suffix, b"a,b\n1,2\n".replace(b",", delimiter.encode()))
    error = _read(path)
    assert isinstance(error, InputError) and error.line == 1 and "'text'" in str(error)


@pytest.mark.parametrize("suffix", ["txt", "txt.gz", "jsonl", "csv", "tsv"])
def test_huge_lines(workdir, reliability, suffix):
    """A 1 MB record between normal ones reads back whole, at its own line number."""
    reliability.fuzz_case()
    huge = "word " * 200_000 + "end"
    texts = ["first", huge, "last"]
    if suffix.startswith("txt"):
        content = "\n".join(texts) + "\n"
    elif suffix == "jsonl":
        content = "\n".join(json.dumps({"text": t}) for t in texts) + "\n"
    else:
        sep = "\t" if suffix == "tsv" else ","
        content = "id" + sep + "text\n" + "".join(f"{i}{sep}{t}\n" for i, t in enumerate(texts))
    first = 1 if suffix.startswith("txt") or suffix == "jsonl" else 2
    result = _read(_write(workdir, suffix, content.encode()))
    assert result == [(first + i, t) for i, t in enumerate(texts)], str(result)[:300]


# ------------------------------------------------------------------------------------------------ training corpus
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=random_files, suffix=st.sampled_from(["txt", "jsonl", "csv"]))
def test_corpus_builder_on_random_bytes(workdir, reliability, content, suffix):
    from isbert.training.corpus import build_corpus_dataset

    reliability.fuzz_case()
    path = _write(workdir, suffix, content)
    expected = _read(path, strip=True, skip_empty=True)
    cache = Path(tempfile.mkdtemp(dir=workdir))
    try:
        dataset, stats = build_corpus_dataset([path], cache)
    except IsbertError as error:
        message = str(error)
        assert str(path) in message and "\n" not in message, message
        if isinstance(expected, IsbertError):
            assert message == str(expected)
        else:
            assert expected == [] and "empty" in message
        return
    assert not isinstance(expected, IsbertError), expected
    assert dataset["text"] == [text for _, text in expected]
    assert stats.used == len(expected)
