"""Parsers on small hand-made files: each format's quirks, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isbert.errors import InputError, IsbertError
from isbert.evaluation import readers, tasks


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_read_lines_strips_bom_and_crlf_and_keeps_empty_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "f.txt", b"\xef\xbb\xbfheader\r\nrow 1\r\n\r\nrow 3\r\n")
    assert readers.read_lines(path) == ["header", "row 1", "", "row 3"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"\xef\xbb\xbf", []), (b"\xef\xbb\xbf\n", [""]), (b"\xef\xbb\xbf\r\n", [""]), (b"\n", [""]), (b"", [])],
)
def test_read_lines_a_bom_alone_is_empty_but_a_bom_and_newline_is_one_empty_line(
    tmp_path: Path, content: bytes, expected: list[str]
) -> None:
    """A gold file of one unscored pair (an empty line) keeps that line after a BOM, so its pairs still line up."""
    path = tmp_path / "STS.gs.x.txt"
    path.write_bytes(content)
    assert readers.read_lines(path) == expected


def test_read_lines_does_not_split_on_form_feed(tmp_path: Path) -> None:
    path = write(tmp_path / "f.txt", "a\x0cb\nc")
    assert readers.read_lines(path) == ["a\x0cb", "c"]


def test_read_lines_bad_encoding_names_line(tmp_path: Path) -> None:
    path = write(tmp_path / "trec.label", b"NUM:dist ok ?\nHUM:ind Who is \xf0 ?\n")
    with pytest.raises(InputError, match=r"trec\.label:2: not valid utf-8"):
        readers.read_lines(path)
    assert readers.read_lines(path, encoding="latin-1")[1] == "HUM:ind Who is \xf0 ?"


def test_missing_file_says_how_to_get_data(tmp_path: Path) -> None:
    with pytest.raises(IsbertError, match="isbert data download"):
        readers.read_lines(tmp_path / "nope.txt")


def test_sts_pairs_drop_unscored_and_accept_four_columns(tmp_path: Path) -> None:
    inputs = write(tmp_path / "STS.input.x.txt", "a b\tc d\te\tf\ng\th\ni\tj\n")
    gold = write(tmp_path / "STS.gs.x.txt", "4.2\n\n0\n")
    subset = readers.read_sts_pairs(inputs, gold)
    assert subset.sentences1 == ["a b", "i"]
    assert subset.sentences2 == ["c d", "j"]
    np.testing.assert_allclose(subset.scores, [4.2, 0.0])


def test_sts_malformed_line_and_bad_score(tmp_path: Path) -> None:
    inputs = write(tmp_path / "in.txt", "a\tb\nno tab here\n")
    gold = write(tmp_path / "gs.txt", "1\n2\n")
    with pytest.raises(InputError, match=r"in\.txt:2: expected 2 \(or 4\) tab-separated columns, found 1"):
        readers.read_sts_pairs(inputs, gold)
    write(tmp_path / "gs.txt", "1\nfive\n")
    write(tmp_path / "in.txt", "a\tb\nc\td\n")
    with pytest.raises(InputError, match=r"gs\.txt:2: gold score is not a number"):
        readers.read_sts_pairs(inputs, gold)
    write(tmp_path / "gs.txt", "1\nnan\n")
    with pytest.raises(InputError, match=r"gs\.txt:2: gold score is not finite"):
        readers.read_sts_pairs(inputs, gold)


def test_sts_line_count_mismatch_names_gold_file(tmp_path: Path) -> None:
    inputs = write(tmp_path / "in.txt", "a\tb\nc\td\n")
    gold = write(tmp_path / "gs.txt", "1\n")
    with pytest.raises(InputError, match=r"gs\.txt: 1 lines, but in\.txt has 2"):
        readers.read_sts_pairs(inputs, gold)


def test_stsb_seven_and_nine_columns_and_quotes(tmp_path: Path) -> None:
    path = write(
        tmp_path / "sts-test.csv",
        'main-captions\tMSRvid\t2012test\t0024\t2.500\tA "girl" is here.\tA girl.\n'
        "main-news\theadlines\t2015\t0001\t5.000\tOne.\tTwo.\tsrc1\tsrc2\n",
    )
    subset = readers.read_stsb(path)
    assert subset.sentences1 == ['A "girl" is here.', "One."]
    assert subset.sentences2 == ["A girl.", "Two."]
    np.testing.assert_allclose(subset.scores, [2.5, 5.0])


def test_stsb_wrong_column_count(tmp_path: Path) -> None:
    path = write(tmp_path / "sts-test.csv", "g\tf\ty\t1\t2.0\ta\tb\ng\tf\ty\t1\t2.0\ta\n")
    with pytest.raises(InputError, match=r"sts-test\.csv:2: expected 7 or 9 tab-separated columns, found 6"):
        readers.read_stsb(path)


def test_sick_crlf(tmp_path: Path) -> None:
    path = write(
        tmp_path / "SICK_test_annotated.txt",
        "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\r\n"
        "6\tA boy\tA kid\t3.3\tNEUTRAL\r\n7\tA man\tA dog\t1.0\tNEUTRAL\r\n",
    )
    subset = readers.read_sick(path)
    assert subset.sentences2 == ["A kid", "A dog"]
    np.testing.assert_allclose(subset.scores, [3.3, 1.0])
    write(path, "pair_ID\ta\tb\tc\td\n6\tA boy\tA kid\t3.3\n")
    with pytest.raises(InputError, match=r"SICK_test_annotated\.txt:2: expected 5"):
        readers.read_sick(path)


def test_binary_pos_first_sorted_like_senteval_and_empty_line_is_dot(tmp_path: Path) -> None:
    pos = write(tmp_path / "x.pos", "good  long movie\n\n")
    neg = write(tmp_path / "x.neg", "bad\n")
    split = readers.read_binary(pos, neg)
    assert split.texts == [".", "bad", "good long movie"]
    assert split.labels.tolist() == [1, 0, 1]


def test_sst_and_malformed_sst(tmp_path: Path) -> None:
    path = write(tmp_path / "sentiment-dev", "it 's charming . \t1\nbleak \t0\n")
    split = readers.read_sst(path)
    assert split.texts == ["bleak", "it 's charming ."]
    assert split.labels.tolist() == [0, 1]
    write(path, "ok\t1\nno label here\n")
    with pytest.raises(InputError, match=r"sentiment-dev:2:"):
        readers.read_sst(path)


def test_trec_latin1_coarse_labels(tmp_path: Path) -> None:
    path = write(tmp_path / "train_5500.label", b"NUM:dist How far ?\nHUM:ind Who is \xf0 ?\n")
    split = readers.read_trec(path)
    assert split.texts == ["How far ?", "Who is \xf0 ?"]
    assert split.labels.tolist() == [readers.TREC_CLASSES.index("NUM"), readers.TREC_CLASSES.index("HUM")]
    write(path, "NUM:dist How far ?\nBOGUS:x What ?\n")
    with pytest.raises(InputError, match=r"train_5500\.label:2: expected 'CLASS:fine question'"):
        readers.read_trec(path)


def test_mrpc_bom_header_and_pairs(tmp_path: Path) -> None:
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    path = write(tmp_path / "msr_paraphrase_test.txt", header + "1\t1\t2\tA b c\tA b\n0\t3\t4\tX\tY z\n")
    split = readers.read_mrpc(path)
    assert split.texts == ["X", "A b c"]
    assert split.texts_b == ["Y z", "A b"]
    assert split.labels.tolist() == [0, 1]
    write(path, header + "1\t1\t2\tonly four\n")
    with pytest.raises(InputError, match=r"msr_paraphrase_test\.txt:2: expected 5"):
        readers.read_mrpc(path)


def test_count_mismatch_names_the_file(tmp_path: Path) -> None:
    base = tmp_path / "sts" / "STS13"
    for sub, n in tasks.STS_SUBSETS["STS13"].items():
        write(base / f"STS.input.{sub}.txt", "a\tb\n" * n)
        write(
            base / f"STS.gs.{sub}.txt",
            "1\n" * (n - 1 if sub == "headlines" else n) + ("\n" if sub == "headlines" else ""),
        )
    with pytest.raises(IsbertError, match=r"STS\.gs\.headlines\.txt: found 749 scored pairs, expected 750"):
        readers.load_task("STS13", tmp_path)


def test_canonical_task_names() -> None:
    assert tasks.canonical_task_names("sts12, STSB,sick,sst") == ["STS12", "STSBenchmark", "SICK-R", "SST2"]
    assert tasks.canonical_task_names("transfer") == list(tasks.TRANSFER_TASKS)
    assert tasks.canonical_task_names(["STS", "sts13"]) == list(tasks.STS_TASKS)
    with pytest.raises(IsbertError, match=r"unknown task 'STS17'.*STS12, STS13.*MRPC"):
        tasks.canonical_task_names("sts12,STS17")


def test_resolve_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tasks.ENV_VAR, str(tmp_path))
    assert tasks.resolve_data_dir(None) == tmp_path
    other = tmp_path / "other"
    other.mkdir()
    assert tasks.resolve_data_dir(other) == other
    with pytest.raises(IsbertError, match=r"data directory not found: .*missing.*isbert data download --data-dir DIR"):
        tasks.resolve_data_dir(tmp_path / "missing")
    monkeypatch.delenv(tasks.ENV_VAR)
    monkeypatch.setattr(tasks, "DEFAULT_DATA_DIR", tmp_path / "nowhere")
    with pytest.raises(IsbertError, match="default location"):
        tasks.resolve_data_dir(None)


def test_task_corpus_sentences_are_the_distinct_training_sentences(tmp_path) -> None:
    from isbert.errors import IsbertError
    from isbert.evaluation.readers import task_corpus_sentences

    folder = tmp_path / "sts" / "STSBenchmark" / "senteval"
    folder.mkdir(parents=True)
    rows = [
        "g\tf\t2012\t1\t5.0\ta plane takes off .\tan air plane takes off .",
        "g\tf\t2012\t2\t1.0\ta dog .\ta plane takes off .",
    ]
    (folder / "sts-train.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    sentences = task_corpus_sentences("stsb-train", tmp_path)
    assert sentences == ["a plane takes off .", "an air plane takes off .", "a dog ."]
    with pytest.raises(IsbertError, match="sick-train"):
        task_corpus_sentences("sick-train", tmp_path)
    with pytest.raises(IsbertError, match="unknown task corpus 'mnli'"):
        task_corpus_sentences("mnli", tmp_path)


# ----------------------------------------------------------------------------------------------------
# one's own scored pairs (isbert eval --pairs)


def test_labeled_pairs_skip_a_header_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "my.tsv", "sentence1\tsentence2\tscore\r\na cat\ta kitten\t4.5\n\nstocks fell\ta dog\t0\n")
    task = readers.read_labeled_pairs(path)
    subset = task.subsets["my.tsv"]
    assert (task.name, task.files) == ("my.tsv", [path])
    assert subset.sentences1 == ["a cat", "stocks fell"] and subset.sentences2 == ["a kitten", "a dog"]
    np.testing.assert_array_equal(subset.scores, [4.5, 0.0])


@pytest.mark.parametrize(
    ("content", "where", "message"),
    [
        ("a\tb\t1\na\tb\n", "my.tsv:2", "expected 3 tab-separated columns"),
        ("a\tb\t1\na\tb\tc\td\n", "my.tsv:2", "expected 3 tab-separated columns"),
        ("a\tb\t1\nc\td\thigh\n", "my.tsv:2", "score is not a number: 'high'"),
        ("a\tb\t1\nc\td\tnan\n", "my.tsv:2", "score is not finite"),
        ("a\tb\t1\n \td\t2\n", "my.tsv:2", "empty text"),
        ("a\tb\t1\nc\td\t1\n", "my.tsv", "a correlation needs two different scores"),
        ("text1\ttext2\tscore\n", "my.tsv", "0 scored pairs"),
        (b"a\tb\t1\nc\t\xff\t2\n", "my.tsv:2", "not valid utf-8"),
    ],
)
def test_hostile_labeled_pairs_are_one_line_naming_file_and_line(
    tmp_path: Path, content: str | bytes, where: str, message: str
) -> None:
    path = write(tmp_path / "my.tsv", content)
    with pytest.raises(InputError) as caught:
        readers.read_labeled_pairs(path)
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / where}:") and message in text and "\n" not in text


def test_missing_labeled_pairs_file_says_what_it_should_hold(tmp_path: Path) -> None:
    with pytest.raises(IsbertError, match=r"nope\.tsv: no such file \(--pairs takes a file of 'text1<TAB>text2"):
        readers.read_labeled_pairs(tmp_path / "nope.tsv")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("ab \t\r1.5-xné\x00\x0b"), max_size=12), max_size=6))
def test_any_pairs_file_parses_or_fails_in_one_line(tmp_path_factory: pytest.TempPathFactory, lines: list[str]) -> None:
    path = write(tmp_path_factory.mktemp("pairs") / "p.tsv", "\n".join(lines))
    try:
        task = readers.read_labeled_pairs(path)
    except InputError as error:
        assert str(error).startswith(str(path)) and "\n" not in str(error)
        return
    subset = task.subsets["p.tsv"]
    assert len(set(subset.scores)) >= 2 and np.isfinite(subset.scores).all()
    assert all(text.strip() for text in subset.sentences1 + subset.sentences2)
