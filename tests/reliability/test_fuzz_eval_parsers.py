"""Property-based fuzzing of every evaluation-data parser (``isbert.evaluation.readers``).

Files generated in each parser's real format (shared/data/README.md; no real data is copied) must parse exactly, with
any mix of LF/CRLF, a BOM and with or without a final newline. Random bytes, truncation, extra or missing columns,
non-numeric scores and other encodings must give a correct result or an ``IsbertError`` that names the file (and, for
an ``InputError``, a line inside it), never any other exception.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isbert.errors import InputError, IsbertError
from isbert.evaluation import readers as eval_readers
from isbert.evaluation import tasks as eval_tasks

pytestmark = pytest.mark.reliability

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOM = b"\xef\xbb\xbf"

# A sentence inside one tab-separated field: no TAB, LF, CR, BOM; other odd characters are welcome.
sentence = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_characters="\t\n\r\ufeff", blacklist_categories=("Cs",)),
        st.sampled_from("\x0b\x0c\x1c\x85\u2028\"' ,"),
    ),
    min_size=1,
    max_size=25,
)
score = st.floats(min_value=0, max_value=5, allow_nan=False).map(lambda x: round(x, 3))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-eval-parsers")


def _file(workdir: Path, name: str, content: bytes) -> Path:
    path = Path(tempfile.mkdtemp(dir=workdir)) / name
    path.write_bytes(content)
    return path


def _encode(lines: list[str], style: dict, encoding: str = "utf-8") -> bytes:
    newline = b"\r\n" if style["crlf"] else b"\n"
    body = newline.join(line.encode(encoding) for line in lines)
    if lines and (style["final_newline"] or lines[-1] == ""):
        body += newline
    return (BOM if style["bom"] else b"") + body


styles = st.fixed_dictionaries({"crlf": st.booleans(), "bom": st.booleans(), "final_newline": st.booleans()})


def _outcome(parse, *args):
    try:
        return parse(*args)
    except IsbertError as error:
        return error


def _assert_located(error: IsbertError, paths: list[Path]) -> None:
    message = str(error)
    assert "\n" not in message, message
    assert any(str(path) in message for path in paths), message
    if isinstance(error, InputError):
        path = Path(error.path)
        assert path in paths, message
        assert message.startswith(f"{path}:"), message
        if error.line is not None:
            assert 1 <= error.line <= path.read_bytes().count(b"\n") + 1, message


def _sorted_split(texts: list[str], labels: list[int]) -> tuple[list[str], list[int]]:
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i].split()), labels[i]))
    return [" ".join(texts[i].split()) or "." for i in order], [labels[i] for i in order]


# ---------------------------------------------------------------------------------------------- valid files parse
@FUZZ
@given(
    rows=st.lists(st.tuples(sentence, sentence, st.one_of(st.none(), score), st.booleans()), max_size=10),
    style_in=styles,
    style_gold=styles,
)
def test_sts_pairs_exact(workdir, reliability, rows, style_in, style_gold):
    reliability.fuzz_case()
    inputs = [f"{a}\t{b}" + ("\tsrc1\tsrc2" if four else "") for a, b, _, four in rows]
    golds = ["" if s is None else str(s) for _, _, s, _ in rows]
    input_path = _file(workdir, "STS.input.x.txt", _encode(inputs, style_in))
    gold_path = _file(workdir, "STS.gs.x.txt", _encode(golds, style_gold))
    subset = eval_readers.read_sts_pairs(input_path, gold_path)
    scored = [(a, b, s) for a, b, s, _ in rows if s is not None]
    assert subset.sentences1 == [a for a, _, _ in scored]
    assert subset.sentences2 == [b for _, b, _ in scored]
    np.testing.assert_array_equal(subset.scores, np.asarray([s for _, _, s in scored], dtype=np.float64))


@FUZZ
@given(rows=st.lists(st.tuples(sentence, sentence, score, st.booleans()), max_size=10), style=styles)
def test_stsb_exact(workdir, reliability, rows, style):
    reliability.fuzz_case()
    lines = [
        "\t".join(["main-captions", "MSRvid", "2012test", f"{i:04d}", str(s), a, b] + (["src", "src"] if nine else []))
        for i, (a, b, s, nine) in enumerate(rows)
    ]
    subset = eval_readers.read_stsb(_file(workdir, "sts-test.csv", _encode(lines, style)))
    assert subset.sentences1 == [r[0] for r in rows] and subset.sentences2 == [r[1] for r in rows]
    np.testing.assert_array_equal(subset.scores, np.asarray([r[2] for r in rows], dtype=np.float64))


SICK_HEADER = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment"


@FUZZ
@given(rows=st.lists(st.tuples(sentence, sentence, score), max_size=10), style=styles)
def test_sick_exact(workdir, reliability, rows, style):
    reliability.fuzz_case()
    lines = [SICK_HEADER] + [f"{i}\t{a}\t{b}\t{s}\tNEUTRAL" for i, (a, b, s) in enumerate(rows, start=1)]
    subset = eval_readers.read_sick(_file(workdir, "SICK_test_annotated.txt", _encode(lines, style)))
    assert subset.sentences1 == [r[0] for r in rows] and subset.sentences2 == [r[1] for r in rows]
    np.testing.assert_array_equal(subset.scores, np.asarray([r[2] for r in rows], dtype=np.float64))


line_sentence = st.text(
    alphabet=st.characters(blacklist_characters="\n\r\ufeff", blacklist_categories=("Cs",)), max_size=25
)


@FUZZ
@given(pos=st.lists(line_sentence, max_size=8), neg=st.lists(line_sentence, max_size=8), s1=styles, s2=styles)
def test_binary_exact(workdir, reliability, pos, neg, s1, s2):
    reliability.fuzz_case()
    split = eval_readers.read_binary(
        _file(workdir, "x.pos", _encode(pos, s1)), _file(workdir, "x.neg", _encode(neg, s2))
    )
    texts, labels = _sorted_split(pos + neg, [1] * len(pos) + [0] * len(neg))
    assert split.texts == texts and split.labels.tolist() == labels


@FUZZ
@given(rows=st.lists(st.tuples(sentence.filter(lambda s: s.strip()), st.integers(0, 4)), max_size=10), style=styles)
def test_sst_exact(workdir, reliability, rows, style):
    reliability.fuzz_case()
    lines = [f"{text}\t{label}" for text, label in rows]
    split = eval_readers.read_sst(_file(workdir, "sentiment-test", _encode(lines, style)))
    texts, labels = _sorted_split([t.strip() for t, _ in rows], [label for _, label in rows])
    assert split.texts == texts and split.labels.tolist() == labels


latin1_sentence = st.text(alphabet=st.characters(max_codepoint=255, blacklist_characters="\n\r"), max_size=25)


@FUZZ
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(eval_readers.TREC_CLASSES),
            st.sampled_from(["abb", "def", "ind", "other"]),
            latin1_sentence.filter(lambda s: s.strip() == s and s),
        ),
        max_size=10,
    ),
    crlf=st.booleans(),
)
def test_trec_exact(workdir, reliability, rows, crlf):
    reliability.fuzz_case()
    lines = [f"{coarse}:{fine} {text}" for coarse, fine, text in rows]
    style = {"crlf": crlf, "bom": False, "final_newline": True}
    split = eval_readers.read_trec(_file(workdir, "TREC_10.label", _encode(lines, style, "latin-1")))
    texts, labels = _sorted_split([t for _, _, t in rows], [eval_readers.TREC_CLASSES.index(c) for c, _, _ in rows])
    assert split.texts == texts and split.labels.tolist() == labels


MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"


@FUZZ
@given(rows=st.lists(st.tuples(st.integers(0, 1), sentence, sentence), max_size=10), style=styles)
def test_mrpc_exact(workdir, reliability, rows, style):
    reliability.fuzz_case()
    lines = [MRPC_HEADER] + [f"{label}\t{i}\t{i + 1}\t{a}\t{b}" for i, (label, a, b) in enumerate(rows)]
    split = eval_readers.read_mrpc(_file(workdir, "msr_paraphrase_test.txt", _encode(lines, style)))
    norm = [(" ".join(a.split()) or ".", " ".join(b.split()) or ".", label) for label, a, b in rows]
    norm.sort(key=lambda r: (len(r[0].split()), len(r[1].split()), r[2]))
    assert split.texts == [r[0] for r in norm] and split.texts_b == [r[1] for r in norm]
    assert split.labels.tolist() == [r[2] for r in norm]


# ---------------------------------------------------------------------------------------------- bad files
# Each parser with the file names it reads; one or two files.
PARSERS = {
    "sts_pairs": (eval_readers.read_sts_pairs, ["STS.input.x.txt", "STS.gs.x.txt"]),
    "stsb": (eval_readers.read_stsb, ["sts-test.csv"]),
    "sick": (eval_readers.read_sick, ["SICK_test_annotated.txt"]),
    "binary": (eval_readers.read_binary, ["x.pos", "x.neg"]),
    "sst": (eval_readers.read_sst, ["sentiment-test"]),
    "trec": (eval_readers.read_trec, ["TREC_10.label"]),
    "mrpc": (eval_readers.read_mrpc, ["msr_paraphrase_test.txt"]),
}

# Lines that look almost right for some parser: real-format lines with a column too many or too few, bad scores,
# bad labels, other encodings, and random bytes.
line_bytes = st.one_of(
    st.binary(max_size=30),
    st.text(max_size=20).map(lambda t: t.encode("utf-8")),
    st.text(alphabet="aé€\t", max_size=12).map(lambda t: t.encode("cp1252")),
    st.text(alphabet="aé\t", max_size=12).map(lambda t: t.encode("utf-16")),
    st.lists(
        st.sampled_from(
            [
                "a b",
                "",
                " ",
                "3.5",
                "-1",
                "nan",
                "inf",
                "1e999",
                "x",
                "0",
                "1",
                "--1",
                "²",
                "١",
                "HUM:ind",
                "NUM:",
                "Quality",
                "pair_ID",
                '"',
                "main",
                "2012",
            ]
        ),
        max_size=10,
    ).map(lambda cells: "\t".join(cells).encode("utf-8")),
    st.sampled_from([SICK_HEADER.encode(), MRPC_HEADER.encode(), BOM, b"\x00", b"1\t1\t2\ta\tb", b"a\tb\t4"]),
)
random_content = st.lists(st.tuples(line_bytes, st.sampled_from([b"\n", b"\r\n", b""])), max_size=8).map(
    lambda parts: b"".join(p + e for p, e in parts)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parser=st.sampled_from(sorted(PARSERS)), contents=st.lists(random_content, min_size=2, max_size=2))
def test_random_content_gives_result_or_located_error(workdir, reliability, parser, contents):
    reliability.fuzz_case()
    parse, names = PARSERS[parser]
    paths = [_file(workdir, name, content) for name, content in zip(names, contents, strict=False)]
    result = _outcome(parse, *paths)
    if isinstance(result, IsbertError):
        _assert_located(result, paths)
        return
    # a result: every list has one entry per label/score, every text a string, every score finite
    if isinstance(result, eval_tasks.StsSubset):
        assert len(result.sentences1) == len(result.sentences2) == len(result.scores)
        assert np.isfinite(result.scores).all()
    else:
        assert len(result.texts) == len(result.labels)
        assert result.texts_b is None or len(result.texts_b) == len(result.texts)
        assert all(isinstance(t, str) and t for t in result.texts)


@FUZZ
@given(
    rows=st.lists(st.tuples(sentence, sentence, score), min_size=1, max_size=6),
    mutation=st.sampled_from(["drop-column", "extra-column", "bad-score", "truncate", "latin1", "bad-bytes", "crlf"]),
    where=st.data(),
    parser=st.sampled_from(["sts_pairs", "stsb", "sick"]),
)
def test_mutated_sts_files_give_result_or_located_error(workdir, reliability, rows, mutation, where, parser):
    """A valid file with one damaged line: a located error, or (for harmless damage) the exact same pairs."""
    reliability.fuzz_case()
    if parser == "sts_pairs":
        lines = [f"{a}\t{b}" for a, b, _ in rows]
        gold = "".join(f"{s}\n" for _, _, s in rows).encode()
        first = 0
    elif parser == "stsb":
        lines = [f"g\td\t2012\t{i}\t{s}\t{a}\t{b}" for i, (a, b, s) in enumerate(rows)]
        first = 0
    else:
        lines = [SICK_HEADER] + [f"{i}\t{a}\t{b}\t{s}\tNEUTRAL" for i, (a, b, s) in enumerate(rows)]
        first = 1
    index = where.draw(st.integers(first, len(lines) - 1))
    raw = [line.encode("utf-8") for line in lines]
    columns = raw[index].split(b"\t")
    if mutation == "drop-column":
        raw[index] = b"\t".join(columns[:-1])
    elif mutation == "extra-column":
        raw[index] += b"\textra"
    elif mutation == "bad-score":
        if parser == "sts_pairs":
            gold = b"".join(
                (b"x" + line if i == index else line) for i, line in enumerate(gold.splitlines(keepends=True))
            )
        else:
            columns[4 if parser == "stsb" else 3] = where.draw(st.sampled_from([b"", b"abc", b"nan", b"1,5", b"inf"]))
            raw[index] = b"\t".join(columns)
    elif mutation == "latin1":
        raw[index] = lines[index].encode("latin-1", errors="replace") + "é".encode("latin-1")
    elif mutation == "bad-bytes":
        raw[index] += b"\xff\xfe"
    content = b"\n".join(raw) + b"\n"
    if mutation == "truncate":
        content = content[: where.draw(st.integers(0, len(content) - 1))]
    if mutation == "crlf":
        content = content.replace(b"\n", b"\r\n")
    names = PARSERS[parser][1]
    paths = [_file(workdir, names[0], content)]
    if parser == "sts_pairs":
        paths.append(_file(workdir, names[1], gold))
    result = _outcome(PARSERS[parser][0], *paths)
    if isinstance(result, IsbertError):
        _assert_located(result, paths)
        if mutation in ("drop-column", "extra-column", "bad-score", "bad-bytes") and isinstance(result, InputError):
            assert result.line is not None
        return
    if mutation == "crlf" or (mutation == "extra-column" and parser == "sts_pairs"):
        pass
    elif mutation == "truncate":
        expected_rows = len(rows)
        assert len(result) <= expected_rows
        # whatever was read lines up with the original rows: nothing shifted
        for k in range(len(result) - 1):
            assert (result.sentences1[k], result.sentences2[k], result.scores[k]) == rows[k]
        return
    else:
        return  # harmless damage (e.g. latin-1 text that is valid UTF-8 too): checked below only for the clean cases
    assert result.sentences1 == [r[0] for r in rows] and result.sentences2 == [r[1] for r in rows]
    np.testing.assert_array_equal(result.scores, np.asarray([r[2] for r in rows]))


@pytest.mark.parametrize("parser", sorted(PARSERS))
@pytest.mark.parametrize("problem", ["missing", "folder", "empty", "bom-only"])
def test_missing_folder_and_empty_files(workdir, reliability, parser, problem):
    reliability.fuzz_case()
    parse, names = PARSERS[parser]
    folder = Path(tempfile.mkdtemp(dir=workdir))
    paths = [folder / name for name in names]
    for path in paths:
        if problem == "folder":
            path.mkdir()
        elif problem == "empty":
            path.write_bytes(b"")
        elif problem == "bom-only":
            path.write_bytes(BOM)
    result = _outcome(parse, *paths)
    if problem in ("missing", "folder"):
        assert isinstance(result, IsbertError), result
        _assert_located(result, paths)
    elif isinstance(result, IsbertError):  # an empty file is an empty split, or a clear "no header" error
        _assert_located(result, paths)
        assert parser in ("sick", "mrpc", "trec")  # TREC is Latin-1: a BOM is text
    else:
        assert len(result) == 0


@pytest.mark.parametrize("label", ["\u00b2", "--1", "\u0661", "1.0", "", " ", "one", "1 2"])
def test_sst_label_must_be_an_ascii_integer(workdir, reliability, label):
    reliability.fuzz_case()
    path = _file(workdir, "sentiment-dev", f"good film\t1\nbad film\t{label}\n".encode())
    with pytest.raises(InputError, match=rf"^{path}:2: "):
        eval_readers.read_sst(path)


def test_load_task_counts_name_the_file(workdir, reliability):
    reliability.fuzz_case()
    root = Path(tempfile.mkdtemp(dir=workdir))
    path = root / "sts/STSBenchmark/senteval/sts-test.csv"
    path.parent.mkdir(parents=True)
    path.write_text("g\td\t2012\t1\t3.0\ta b\tc d\n")
    with pytest.raises(IsbertError, match=rf"^{path}: found 1 pairs, expected 1379"):
        eval_readers.load_task("STSBenchmark", root)
    with pytest.raises(IsbertError, match="missing data file"):
        eval_readers.load_task("SICK-R", root)


def test_huge_stsb_sentence(workdir, reliability):
    """A 1 MB sentence is read whole (the csv module's 128 KiB field limit does not apply)."""
    reliability.fuzz_case()
    huge = "word " * 200_000 + "end"
    path = _file(workdir, "sts-test.csv", f"g\td\t2012\t1\t3.0\ta b\tc\ng\td\t2012\t2\t1.5\t{huge}\tz\n".encode())
    subset = eval_readers.read_stsb(path)
    assert subset.sentences1 == ["a b", huge] and subset.scores.tolist() == [3.0, 1.5]
