"""Corpus reading: counts of used and skipped lines, formats, errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from isbert.errors import InputError, IsbertError
from isbert.training.corpus import build_corpus_dataset, corpus_fingerprint, default_heldout_size, split_heldout


def test_txt_stats_strip_empty_and_dedup(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("  a man walks \n\n   \nA dog runs\na man walks\n", encoding="utf-8")
    dataset, stats = build_corpus_dataset([corpus], tmp_path / "cache", dedup=True)
    assert list(dataset["text"]) == ["a man walks", "A dog runs"]
    assert (stats.lines, stats.used, stats.skipped) == (5, 2, {"empty": 2, "duplicate": 1})
    assert "2 sentences used of 5 lines" in stats.summary()
    dataset, stats = build_corpus_dataset([corpus], tmp_path / "cache", dedup=False)
    assert len(dataset) == 3 and stats.skipped == {"empty": 2}


def test_gz_jsonl_csv_and_several_files(tmp_path: Path) -> None:
    gz = tmp_path / "a.txt.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as handle:
        handle.write("one\ntwo\n")
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text('{"sent": "three"}\n{"sent": " "}\n', encoding="utf-8")
    dataset, stats = build_corpus_dataset([gz, jsonl], tmp_path / "cache", text_field="sent")
    assert list(dataset["text"]) == ["one", "two", "three"]
    assert [f["used"] for f in stats.files] == [2, 1]
    tsv = tmp_path / "c.tsv"
    tsv.write_text("id\tsentence\n1\tfour\n", encoding="utf-8")
    dataset, _ = build_corpus_dataset([tsv], tmp_path / "cache", column="sentence")
    assert list(dataset["text"]) == ["four"]


def test_missing_field_column_and_bad_utf8(tmp_path: Path) -> None:
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text('{"text": "x"}\n{"other": "y"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"b.jsonl:2: no field 'text'"):
        build_corpus_dataset([jsonl], tmp_path / "cache")
    csv_file = tmp_path / "c.csv"
    csv_file.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="no column 'text'"):
        build_corpus_dataset([csv_file], tmp_path / "cache")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good line\nbad \xff line\nanother\n")
    with pytest.raises(InputError, match=r"bad.txt:2: not valid UTF-8"):
        build_corpus_dataset([bad], tmp_path / "cache")
    dataset, stats = build_corpus_dataset([bad], tmp_path / "cache", encoding_errors="skip")
    assert len(dataset) == 2 and stats.skipped == {"not valid UTF-8": 1}


def test_empty_and_missing_corpus(tmp_path: Path) -> None:
    empty = tmp_path / "e.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(IsbertError, match="the corpus is empty"):
        build_corpus_dataset([empty], tmp_path / "cache")
    with pytest.raises(IsbertError, match=r"input file not found: .*nope\.txt"):
        build_corpus_dataset([tmp_path / "nope.txt"], tmp_path / "cache")


def test_folders_and_patterns_expand_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("two\n", encoding="utf-8")
    (folder / "a.txt").write_text("one\n", encoding="utf-8")
    (folder / "sub" / "c.txt").write_text("three\n", encoding="utf-8")
    (folder / "notes.md").write_text("not a corpus file\n", encoding="utf-8")
    dataset, stats = build_corpus_dataset([folder], tmp_path / "cache")
    assert list(dataset["text"]) == ["one", "two", "three"]
    assert [Path(f["path"]).name for f in stats.files] == ["a.txt", "b.txt", "c.txt"]
    dataset, _ = build_corpus_dataset([str(folder / "*.txt"), folder / "a.txt"], tmp_path / "cache")
    assert list(dataset["text"]) == ["one", "two"]  # a file named twice is read once
    with pytest.raises(IsbertError, match=r"^no files match '.*\*\.tsv'$"):
        build_corpus_dataset([str(folder / "*.tsv")], tmp_path / "cache")
    (folder / "sub" / "bad.txt").write_bytes(b"fine\nbad \xff\n")
    with pytest.raises(InputError, match=r"bad.txt:2: not valid UTF-8"):
        build_corpus_dataset([folder], tmp_path / "cache")


def test_fingerprint_covers_every_file_of_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\n", encoding="utf-8")
    before = corpus_fingerprint([tmp_path])
    assert [Path(entry["path"]).name for entry in before] == ["a.txt"]
    (tmp_path / "b.txt").write_text("two\n", encoding="utf-8")
    assert [Path(entry["path"]).name for entry in corpus_fingerprint([tmp_path])] == ["a.txt", "b.txt"]
    assert corpus_fingerprint([str(tmp_path / "*.txt")]) == corpus_fingerprint([tmp_path])


def test_heldout_split_is_seeded_and_disjoint(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(f"sentence {i}\n" for i in range(500)), encoding="utf-8")
    dataset, _ = build_corpus_dataset([corpus], tmp_path / "cache")
    assert default_heldout_size(500) == 16 and default_heldout_size(150) == 0 and default_heldout_size(10**7) == 1000
    train_a, held_a = split_heldout(dataset, 16, seed=1)
    _, held_b = split_heldout(dataset, 16, seed=1)
    assert list(held_a["text"]) == list(held_b["text"])
    assert len(train_a) == 484 and not set(held_a["text"]) & set(train_a["text"])


def test_summary_warns_when_training_lowers_the_dev_score(tmp_path) -> None:
    from isbert.training import TrainResult
    from isbert.training.corpus import CorpusStats

    def result(scores: list[float]) -> TrainResult:
        history = [{"step": 50 * i, "stsb_dev_spearman": v} for i, v in enumerate(scores)]
        best = max(history, key=lambda h: h["stsb_dev_spearman"])
        return TrainResult(
            output_dir=tmp_path, steps=50 * (len(scores) - 1), seconds=1.0, sentences_per_second=1.0,
            corpus=CorpusStats(), best={"step": best["step"], "metric": "stsb_dev_spearman",
            "value": best["stsb_dev_spearman"]}, start=history[0], history=history, agreement=None,
        )  # fmt: skip

    fell = result([0.8666, 0.8616, 0.8548])
    assert "warning: training lowered STSb dev from 86.66 (start) to 85.48 (step 100)" in fell.summary()
    assert "STSb dev Spearman: 86.66 at the start, 86.66 for the saved model (+0.00)" in fell.summary()
    assert "STSb dev Spearman: 80.00 at the start, 81.00 for the saved model (+1.00)" in result([0.80, 0.81]).summary()
    assert result([0.80, 0.805, 0.81]).degradation_warning() is None
    assert result([0.8666, 0.8600]).degradation_warning() is None  # 0.66 points: within noise


def test_summary_warns_on_label_free_decline_and_sparse_collapse(tmp_path) -> None:
    from isbert.training import TrainResult
    from isbert.training.corpus import CorpusStats

    def result(history: list[dict]) -> TrainResult:
        return TrainResult(
            output_dir=tmp_path, steps=history[-1]["step"], seconds=1.0, sentences_per_second=1.0,
            corpus=CorpusStats(), best=None, start=history[0], history=history, agreement=None,
        )  # fmt: skip

    worse = result([{"step": 0, "heldout_align_uniform": -3.5}, {"step": 100, "heldout_align_uniform": -3.3}])
    assert "label-free criterion got worse, from -3.5000 (start) to -3.3000" in worse.summary()
    sparse = result([{"step": 0, "heldout_zero_fraction": 0.5}, {"step": 100, "heldout_zero_fraction": 0.99}])
    assert "99% of the local feature values are exactly zero (start: 50%)" in sparse.summary()
    fine = result([{"step": 0, "heldout_align_uniform": -3.5, "heldout_zero_fraction": 0.0},
                   {"step": 100, "heldout_align_uniform": -3.6, "heldout_zero_fraction": 0.0}])  # fmt: skip
    assert fine.degradation_warning() is None
