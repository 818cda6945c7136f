"""evaluate() end to end on a tiny hand-made data folder with a fake encoder: de-duplication, cache, errors,
reports and the CLI."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from recording_bar import RecordingBar

from isbert.errors import IsbertError
from isbert.evaluation import EmbeddingCache, encode_unique, evaluate, harness, readers, tasks
from isbert.evaluation.cli import add_commands
from isbert.evaluation.report import PAPER_STS, format_markdown, format_table


class HashedBagOfWords:
    """Deterministic fake encoder: each word adds a hashed random vector; records every sentence it encodes."""

    def __init__(self, dim: int = 16, nan: bool = False) -> None:
        self.dim, self.nan = dim, nan
        self.seen: list[str] = []

    def encode(self, sentences: list[str], batch_size: int = 32, **kwargs: object) -> np.ndarray:
        self.seen.extend(sentences)
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        for row, sentence in enumerate(sentences):
            for word in sentence.lower().split():
                seed = int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")
                out[row] += np.random.default_rng(seed).normal(size=self.dim)
        if self.nan:
            out[0, 0] = np.nan
        return out


SENTENCES = ["a man plays guitar", "a man plays a guitar", "a woman cuts onions", "a dog runs", "the cat sleeps"]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """STS12 with two tiny sub-datasets, SICK-R and MR, with the expected sizes patched to match."""
    root = tmp_path / "data"
    monkeypatch.setitem(tasks.STS_SUBSETS, "STS12", {"MSRpar": 4, "MSRvid": 3})
    monkeypatch.setitem(tasks.EXPECTED_COUNTS, "SICK-R", 4)
    monkeypatch.setitem(tasks.EXPECTED_COUNTS, "MR", 20)
    sts = root / "sts" / "STS12"
    sts.mkdir(parents=True)
    pairs = [(0, 1, 5.0), (0, 2, 1.0), (2, 3, 0.5), (3, 4, 2.0), (1, 1, 4.9)]
    (sts / "STS.input.MSRpar.txt").write_text("".join(f"{SENTENCES[a]}\t{SENTENCES[b]}\n" for a, b, _ in pairs))
    (sts / "STS.gs.MSRpar.txt").write_text("5.0\n1.0\n0.5\n\n4.9\n")  # one unscored pair
    (sts / "STS.input.MSRvid.txt").write_text(
        f"{SENTENCES[0]}\t{SENTENCES[1]}\n{SENTENCES[3]}\t{SENTENCES[4]}\n{SENTENCES[2]}\t{SENTENCES[2]}\n"
    )
    (sts / "STS.gs.MSRvid.txt").write_text("4\n1\n5\n")
    sick = root / "sts" / "SICK" / "senteval"
    sick.mkdir(parents=True)
    rows = [f"{i}\t{SENTENCES[a]}\t{SENTENCES[b]}\t{s}\tNEUTRAL\r\n" for i, (a, b, s) in enumerate(pairs[:4])]
    (sick / "SICK_test_annotated.txt").write_text(
        "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tx\r\n" + "".join(rows)
    )
    mr = root / "transfer" / "MR"
    mr.mkdir(parents=True)
    (mr / "rt-polarity.pos").write_text("".join(f"great good film {i}\n" for i in range(10)))
    (mr / "rt-polarity.neg").write_text("".join(f"awful bad film {i}\n" for i in range(10)))
    return root


def test_each_distinct_sentence_is_encoded_once(data_dir: Path) -> None:
    model = HashedBagOfWords()
    results = evaluate(model, "sts12,sick-r,mr", data_dir, show_progress=False, model_name="fake")
    assert sorted(model.seen) == sorted(set(model.seen))
    assert set(SENTENCES) <= set(model.seen)
    assert results["timing"]["encoded_sentences"] == len(model.seen) == results["timing"]["distinct_sentences"]
    assert results["STS12"]["subsets"]["MSRpar"]["n"] == 4
    assert {"spearman", "all", "mean", "wmean"} <= set(results["STS12"])
    assert "spearman" in results["SICK-R"] and "accuracy" in results["MR"]
    assert results["MR"]["accuracy"] == pytest.approx(100.0)
    assert set(results["checksums"]) == {
        *tasks.task_files("STS12"),
        *tasks.task_files("SICK-R"),
        *tasks.task_files("MR"),
    }
    assert results["versions"]["numpy"] == np.__version__


def test_cache_round_trip(data_dir: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = HashedBagOfWords()
    a = evaluate(first, "sts12", data_dir, cache_dir=cache_dir, model_name="fake", show_progress=False)
    second = HashedBagOfWords()
    b = evaluate(second, "sts12", data_dir, cache_dir=cache_dir, model_name="fake", show_progress=False)
    assert second.seen == [] and b["timing"]["encoded_sentences"] == 0
    assert b["STS12"]["spearman"] == pytest.approx(a["STS12"]["spearman"])
    other = HashedBagOfWords()
    evaluate(other, "sts12", data_dir, cache_dir=cache_dir, model_name="another model", show_progress=False)
    assert len(other.seen) == a["timing"]["distinct_sentences"]  # a different model key shares nothing


def test_encode_unique_with_partial_cache(tmp_path: Path) -> None:
    model = HashedBagOfWords()
    cache = EmbeddingCache(tmp_path, "m")
    index, matrix, n = encode_unique(model, ["x y", "z"], cache=cache, show_progress=False)
    index2, matrix2, n2 = encode_unique(
        model, ["z", "w", "z"], cache=EmbeddingCache(tmp_path, "m"), show_progress=False
    )
    assert (n, n2) == (2, 1) and model.seen == ["x y", "z", "w"]
    np.testing.assert_allclose(matrix2[index2["z"]], matrix[index["z"]])


def test_nan_embeddings_are_an_error(data_dir: Path) -> None:
    with pytest.raises(IsbertError, match="non-finite sentence embeddings"):
        evaluate(HashedBagOfWords(nan=True), "sts12", data_dir, show_progress=False)


def test_unknown_task_and_missing_data_dir(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(IsbertError, match=r"unknown task 'sts99'.*STSBenchmark"):
        evaluate(HashedBagOfWords(), "sts12,sts99", data_dir)
    with pytest.raises(IsbertError, match=r"data directory not found.*isbert data download"):
        evaluate(HashedBagOfWords(), "sts12", tmp_path / "absent")


def test_whitening_changes_scores_and_cuts_dimensions(data_dir: Path, tmp_path: Path) -> None:
    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text(
        "\n".join(f"sentence number {i} about {w}" for i, w in enumerate("abcdefghijklmnopqrstuvwxyz"))
    )
    results = evaluate(
        HashedBagOfWords(), "sts12", data_dir, whiten=True, whiten_dim=4, whiten_file=unlabeled, show_progress=False
    )
    assert np.isfinite(results["STS12"]["spearman"])
    assert "whitening (4 dims)" in results["model"]


def test_reports_show_paper_rows_beside_the_model(data_dir: Path, tmp_path: Path) -> None:
    results = evaluate(HashedBagOfWords(), "sts12,mr", data_dir, show_progress=False, model_name="fake-bow")
    table = format_table(results)
    assert "IS-BERT-NLI (paper)" in table and "fake-bow (this run)" in table
    assert f"{PAPER_STS['IS-BERT-NLI'][0]:.2f}" in table
    assert f"{results['STS12']['spearman']:.2f}" in table
    markdown = format_markdown(results)
    assert markdown.count("| IS-BERT-NLI (paper) |") == 2


def test_cli_eval_writes_json_and_markdown(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import isbert.model

    monkeypatch.setattr(isbert.model, "load", lambda name, device=None: HashedBagOfWords())
    monkeypatch.setattr("isbert.evaluation.harness.model_cache_key", lambda name: name)
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    args = parser.parse_args(
        [
            "eval",
            "fake",
            "--tasks",
            "STS12,MR",
            "--data-dir",
            str(data_dir),
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
            "--no-progress",
        ]
    )
    assert args.func(args) == 0
    saved = json.loads(out_json.read_text())
    assert saved["STS12"]["spearman"] == pytest.approx(saved["STS12"]["all"])
    assert 0 <= saved["MR"]["accuracy"] <= 100
    assert saved["model"] == "fake" and "checksums" in saved and "versions" in saved
    assert "IS-BERT-NLI (paper)" in out_md.read_text()
    assert "fake (this run)" in capsys.readouterr().out


def test_cli_data_check_fails_on_fixture_checksums(data_dir: Path, capsys) -> None:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["data", "check", "--data-dir", str(data_dir), "--tasks", "sts12,sick-r,mr,trec"])
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert "STS12 (senteval): counts ok" in out and "checksum differs" in out
    assert "TREC: missing transfer/TREC/train_5500.label" in out


def test_cache_keeps_texts_whose_hash_ends_in_a_nul_byte(tmp_path: Path) -> None:
    """Regression: fixed-width numpy bytes strip trailing NULs, which lost about 1 in 256 cached sentences."""
    text = next(f"s{i}" for i in range(100_000) if hashlib.sha256(f"s{i}".encode()).digest().endswith(b"\0"))
    model = HashedBagOfWords()
    encode_unique(model, [text, "other"], cache=EmbeddingCache(tmp_path, "m"), show_progress=False)
    _, _, encoded = encode_unique(model, [text, "other"], cache=EmbeddingCache(tmp_path, "m"), show_progress=False)
    assert encoded == 0


def independent_scores(encoder: HashedBagOfWords, pairs: list[tuple[str, str, float]], transform=None) -> float:
    """Cosine + Spearman x100 computed here with numpy and scipy only, as a check on the harness."""
    from scipy.stats import spearmanr

    first = encoder.encode([a for a, _, _ in pairs]).astype(np.float64)
    second = encoder.encode([b for _, b, _ in pairs]).astype(np.float64)
    if transform is not None:
        first, second = transform(first), transform(second)
    cosine = (first * second).sum(1) / (np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1))
    return 100 * spearmanr(cosine, [gold for _, _, gold in pairs]).statistic


PHRASES = ["a man plays guitar", "a woman cuts onions", "a dog runs fast", "the cat sleeps", "kids play ball",
           "a man sings", "the sun is hot", "a car drives by", "birds fly south", "a girl reads books"]  # fmt: skip


@pytest.fixture
def scored_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[tuple[str, str, float]]]:
    """STS12 as two sub-datasets of 8 pairs with distinct gold scores (no ties anywhere), and its pooled pairs."""
    monkeypatch.setitem(tasks.STS_SUBSETS, "STS12", {"MSRpar": 8, "MSRvid": 8})
    rng = np.random.default_rng(3)
    folder = tmp_path / "data" / "sts" / "STS12"
    folder.mkdir(parents=True)
    pooled = []
    for number, subset in enumerate(["MSRpar", "MSRvid"]):
        pairs = [(PHRASES[i], PHRASES[(i + 1 + number + i // 3) % 10] + f" {i}", 0.3 * i + number) for i in range(8)]
        order = rng.permutation(8)
        pairs = [pairs[i] for i in order]
        (folder / f"STS.input.{subset}.txt").write_text("".join(f"{a}\t{b}\n" for a, b, _ in pairs))
        (folder / f"STS.gs.{subset}.txt").write_text("".join(f"{gold}\n" for _, _, gold in pairs))
        pooled += pairs
    return tmp_path / "data", pooled


def test_pooled_sts_scores_match_scipy_on_the_same_embeddings(scored_data_dir) -> None:
    root, pooled = scored_data_dir
    results = evaluate(HashedBagOfWords(), "sts12", root, show_progress=False)
    assert results["STS12"]["spearman"] == pytest.approx(independent_scores(HashedBagOfWords(), pooled), rel=1e-9)


def test_single_file_sts_score_matches_scipy(data_dir: Path) -> None:
    results = evaluate(HashedBagOfWords(), "sick-r", data_dir, show_progress=False)
    sick = [(SENTENCES[a], SENTENCES[b], s) for a, b, s in [(0, 1, 5.0), (0, 2, 1.0), (2, 3, 0.5), (3, 4, 2.0)]]
    assert results["SICK-R"]["spearman"] == pytest.approx(independent_scores(HashedBagOfWords(), sick), rel=1e-9)


def test_whitening_is_applied_to_the_scored_embeddings(scored_data_dir, tmp_path: Path) -> None:
    root, pooled = scored_data_dir
    unlabeled = [f"sentence number {i} about {w}" for i, w in enumerate("abcdefghijklmnopqrstuvwxyz")]
    (tmp_path / "unlabeled.txt").write_text("\n".join(unlabeled))
    results = evaluate(HashedBagOfWords(), "sts12", root, whiten=True, whiten_dim=4,
                       whiten_file=tmp_path / "unlabeled.txt", show_progress=False)  # fmt: skip
    x = HashedBagOfWords().encode(unlabeled).astype(np.float64)
    mean = x.mean(0)
    u, s, _ = np.linalg.svd(np.cov(x - mean, rowvar=False))
    kernel = (u / np.sqrt(s + 1e-8))[:, :4]
    whitened = independent_scores(HashedBagOfWords(), pooled, lambda e: (e - mean) @ kernel)
    assert results["STS12"]["spearman"] == pytest.approx(whitened, rel=1e-9)
    assert whitened != pytest.approx(independent_scores(HashedBagOfWords(), pooled))  # the test can tell them apart


def _pairs_file(tmp_path: Path) -> Path:
    rows = [(0, 1, 4.8), (0, 2, 1.0), (2, 3, 0.5), (3, 4, 2.0), (1, 4, 0.2)]
    path = tmp_path / "my pairs.tsv"
    path.write_text("text1\ttext2\tscore\n" + "".join(f"{SENTENCES[a]}\t{SENTENCES[b]}\t{s}\n" for a, b, s in rows))
    return path


def test_own_pairs_are_scored_with_the_sts_protocol_without_a_data_folder(tmp_path: Path, monkeypatch) -> None:
    from scipy.stats import spearmanr

    from isbert.evaluation.sts import cosine_rows

    monkeypatch.setenv(tasks.ENV_VAR, str(tmp_path / "no-data-here"))
    path = _pairs_file(tmp_path)
    encoder = HashedBagOfWords()
    results = evaluate(encoder, None, pairs=path, show_progress=False, model_name="fake-bow")
    subset = readers.read_labeled_pairs(path).subsets[path.name]
    cosine = cosine_rows(encoder.encode(subset.sentences1), encoder.encode(subset.sentences2))
    assert results["pairs"]["spearman"] == pytest.approx(100 * spearmanr(cosine, subset.scores).statistic)
    assert results["pairs"]["n"] == 5 and results["settings"]["pairs"] == str(path)
    table = format_table(results)
    assert "Your pairs: my pairs.tsv, 5 pairs" in table and f"{results['pairs']['spearman']:.2f}" in table
    assert "(paper)" not in table


LOADED: list[str] = []


def _eval_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """``isbert eval`` with every model name mapped to a fake encoder of its own (seeded by the name)."""
    import isbert.model

    LOADED.clear()
    # a 1-dimensional encoder for the baseline, so the two rows differ
    encoder = lambda name, device=None: LOADED.append(name) or HashedBagOfWords(1 if "old" in name else 16)  # noqa: E731
    monkeypatch.setattr(isbert.model, "load", encoder)
    monkeypatch.setattr("isbert.evaluation.harness.model_cache_key", lambda name: name)
    monkeypatch.setattr(isbert.model, "check_model_reference", lambda name: None)
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["eval", *argv, "--no-progress"])
    return args.func(args)


def test_cli_eval_compare_prints_both_rows_and_the_delta(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    out_json = tmp_path / "r.json"
    argv = ["new", "--compare", "old-model", "--tasks", "STS12,SICK-R", "--data-dir", str(data_dir)]
    assert _eval_cli([*argv, "--pairs", str(_pairs_file(tmp_path)), "--json", str(out_json)], monkeypatch) == 0
    out = capsys.readouterr().out
    saved = json.loads(out_json.read_text())
    ours, theirs = saved, saved["compare"]
    assert (ours["model"], theirs["model"]) == ("new", "old-model")
    sts, pairs = out.split("STS (cosine")[1].split("\n\n")[0], out.split("Your pairs:")[1].split("\n\n")[0]
    rows = {table: {line.split("  ")[0]: line.split()[-3:] for line in text.splitlines()} for table, text in
            (("sts", sts), ("pairs", pairs))}  # fmt: skip
    # STS table: the columns end with ... STS12 ... SICK-R, Avg.; the Avg. needs all STS tasks, so it is "-" here
    for label, run in (("new (this run)", ours), ("old-model (--compare)", theirs)):
        assert rows["sts"][label][-2] == f"{run['SICK-R']['spearman']:.2f}"
        assert rows["pairs"][label][-1] == f"{run['pairs']['spearman']:.2f}"
    assert rows["sts"]["delta"][-2] == f"{ours['SICK-R']['spearman'] - theirs['SICK-R']['spearman']:+.2f}"
    assert rows["pairs"]["delta"][-1] == f"{ours['pairs']['spearman'] - theirs['pairs']['spearman']:+.2f}"
    assert LOADED == ["new", "old-model"] and ours["pairs"]["spearman"] != theirs["pairs"]["spearman"]


def test_eval_compare_ends_with_the_verdict_and_writes_it(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "r.json"
    argv = ["new", "--compare", "old-model", "--tasks", "STS12,SICK-R", "--data-dir", str(data_dir)]
    assert _eval_cli([*argv, "--pairs", str(_pairs_file(tmp_path)), "--json", str(out_json)], monkeypatch) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    saved = json.loads(out_json.read_text())
    verdict = saved["verdict"]
    assert verdict["ours"] == "new" and verdict["theirs"] == "old-model"
    assert verdict["tasks"] == ["STS12", "SICK-R", "pairs"]
    expected = float(np.mean([saved[t]["spearman"] - saved["compare"][t]["spearman"] for t in verdict["tasks"]]))
    assert verdict["delta"] == pytest.approx(expected)
    assert last.startswith("verdict: ") and f"{abs(verdict['delta']):.2f} STS points" in last


def test_cli_eval_bad_pairs_file_is_one_line_before_any_encoding(tmp_path: Path, capsys, monkeypatch) -> None:
    from isbert.cli import main

    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\t1\nc\td\n")
    monkeypatch.setattr("isbert.evaluation.harness._load_encoder", lambda *a: pytest.fail("loaded a model"))
    assert main(["eval", "offline-minilm", "--pairs", str(bad)]) == 2
    error = capsys.readouterr().err
    assert error == f"isbert eval: error: {bad}:2: expected 3 tab-separated columns (text1, text2, score), not 2\n"


def test_versions_name_python_and_each_library_or_say_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform
    from importlib import metadata

    libraries = ("isbert", "sentence-transformers", "transformers", "torch", "scikit-learn", "scipy", "numpy")
    expected = {"python": platform.python_version(), **{name: metadata.version(name) for name in libraries}}
    assert harness.library_versions() == expected

    installed = metadata.version

    def version(name: str) -> str:
        if name == "scipy":
            raise metadata.PackageNotFoundError(name)
        return installed(name)

    monkeypatch.setattr(harness.metadata, "version", version)
    assert harness.library_versions() == expected | {"scipy": "not installed"}


def test_the_model_cache_key_is_the_name_then_each_file_s_path_size_and_mtime(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.bin").write_bytes(b"12345")
    (folder / "sub" / "a.json").write_text("{}")
    parts = [str(folder)]
    for relative in ("b.bin", "sub/a.json"):
        status = (folder / relative).stat()
        parts.append(f"{relative}:{status.st_size}:{status.st_mtime_ns}")
    assert harness.model_cache_key(str(folder)) == "|".join(parts)
    assert harness.model_cache_key("some/hub-model") == "some/hub-model"  # a hub id: no folder to read


def test_the_cache_folder_is_32_hex_digits_of_the_key_s_sha256(tmp_path: Path) -> None:
    assert EmbeddingCache(tmp_path, "m").folder == tmp_path / hashlib.sha256(b"m").hexdigest()[:32]


def test_a_shard_with_more_keys_than_vectors_is_one_line_naming_it(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "m")
    cache.folder.mkdir()
    shard = cache.folder / "00000.npz"
    keys = np.array([EmbeddingCache.key(text) for text in ("a", "b", "c")], dtype="S64")
    np.savez(shard, keys=keys, vectors=np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(IsbertError) as caught:
        EmbeddingCache(tmp_path, "m")
    assert str(caught.value).startswith(f"unreadable embedding cache {shard}: ")
    assert str(caught.value).endswith("; delete it") and "\n" not in str(caught.value)
    written = shard.read_bytes()
    with pytest.raises(ValueError):
        cache.update(["x", "y"], np.zeros((1, 4), dtype=np.float32))  # one vector per text
    assert shard.read_bytes() == written  # checked before any shard is written


def test_timing_splits_the_run_at_its_marks_to_two_decimals() -> None:
    timing = harness._timing((10.0, 11.23456, 13.5, 14.006), {"STS12": 0.25}, 7, 3)
    assert timing == {
        "load_seconds": 1.23,
        "encode_seconds": 2.27,
        "tasks_seconds": {"STS12": 0.25},
        "total_seconds": 4.01,
        "distinct_sentences": 7,
        "encoded_sentences": 3,
    }


def test_each_task_s_seconds_to_two_decimals_and_the_transfer_settings_reach_it(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs: list = []
    monkeypatch.setattr(
        harness, "evaluate_transfer", lambda task, embed, config: configs.append(config) or {"accuracy": 50.0}
    )
    clock = iter([100.0, 100.123456, 105.0, 105.0, 107.5, 109.0, 109.001, 109.004])  # start, load, encode, 2 tasks, end

    class Clock:
        @staticmethod
        def perf_counter() -> float:
            return next(clock)

    monkeypatch.setattr(harness, "time", Clock)
    results = evaluate(HashedBagOfWords(), "sts12,mr", data_dir, full=True, standardize=True, show_progress=False)
    assert configs == [harness.TransferConfig(full=True, standardize=True)]
    assert results["timing"]["tasks_seconds"] == {"STS12": 2.5, "MR": 0.0}
    assert (results["timing"]["load_seconds"], results["timing"]["total_seconds"]) == (0.12, 9.0)


def test_a_word_vector_model_s_coverage_is_said_and_recorded(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Coverage:
        def summary(self) -> str:
            return "3 of 40 words unknown"

        def as_dict(self) -> dict:
            return {"unknown": 3}

    asked: list = []
    monkeypatch.setattr(harness, "word_coverage", lambda encoder, sentences: asked.append(encoder) or Coverage())
    model, said = HashedBagOfWords(), []
    results = evaluate(model, "sts12", data_dir, show_progress=False, log=said.append)
    assert asked == [model] and "3 of 40 words unknown" in said
    assert results["word_coverage"] == {"unknown": 3}
    monkeypatch.setattr(harness, "word_coverage", lambda encoder, sentences: None)
    assert "word_coverage" not in evaluate(model, "sts12", data_dir, show_progress=False)


def test_a_model_object_is_labelled_by_its_type_and_refuses_pooling(data_dir: Path) -> None:
    assert evaluate(HashedBagOfWords(), "sts12", data_dir, show_progress=False)["model"] == "HashedBagOfWords"
    with pytest.raises(IsbertError) as caught:
        evaluate(HashedBagOfWords(), "sts12", data_dir, pooling="mean", show_progress=False)
    assert str(caught.value) == "pooling baselines need a model name or folder, not a model object"


def test_a_named_model_is_loaded_on_the_asked_device(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import isbert.model

    loads: list = []
    monkeypatch.setattr(
        isbert.model, "load", lambda model, device: loads.append(("load", device)) or HashedBagOfWords()
    )
    monkeypatch.setattr(
        isbert.model,
        "pooled_encoder",
        lambda model, pooling, device: loads.append((pooling, device)) or HashedBagOfWords(),
    )
    monkeypatch.setattr(isbert.model, "check_model_reference", lambda model: None)
    folder = tmp_path / "model"
    folder.mkdir()
    assert evaluate(str(folder), "sts12", data_dir, device="cpu:1", show_progress=False)["model"] == str(folder)
    pooled = evaluate(str(folder), "sts12", data_dir, pooling="cls", device="meta", show_progress=False)
    assert pooled["model"] == f"{folder} (cls pooling)"
    assert loads == [("load", "cpu:1"), ("cls", "meta")]


class RecordingEncoder(HashedBagOfWords):
    """Records the keyword arguments of every ``encode`` call and the size of its chunk; returns float64.

    With ``each_once``, a sentence asked for a second time fails that call: a chunking that re-encodes (a step of 1
    over 4,097 sentences) fails at its second call instead of after thousands of them (under mutmut, a kill in
    milliseconds rather than a timeout)."""

    def __init__(self, each_once: bool = False) -> None:
        super().__init__(dim=4)
        self.calls: list[tuple[int, dict]] = []
        self.each_once = each_once

    def encode(self, sentences: list[str], batch_size: int = 32, **kwargs: object) -> np.ndarray:
        assert not self.each_once or set(self.seen).isdisjoint(sentences), "a sentence was encoded twice"
        self.calls.append((len(sentences), {"batch_size": batch_size, **kwargs}))
        return super().encode(sentences).astype(np.float64)


def test_encode_unique_asks_for_numpy_in_chunks_of_4096_without_the_model_s_own_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    RecordingBar.made = []
    monkeypatch.setattr(harness, "tqdm", RecordingBar)
    model = RecordingEncoder(each_once=True)
    sentences = [f"s{i}" for i in range(4097)]
    index, matrix, encoded = encode_unique(model, [*sentences, "s0"])
    assert encoded == 4097 and matrix.shape == (4097, 4) and index["s4096"] == 4096
    assert matrix.dtype == np.float32  # the model's float64 rows are stored at half the memory
    settings = {"batch_size": 64, "convert_to_numpy": True, "show_progress_bar": False}
    assert model.calls == [(4096, settings), (1, settings)]
    assert RecordingBar.made == [
        {"total": 4097, "desc": "Encoding", "unit": "sent", "disable": False, "updates": [4096, 1]}
    ]
    encode_unique(model, ["a", "b"], batch_size=7, show_progress=False, chunk_size=1)
    assert model.calls[2:] == [(1, settings | {"batch_size": 7})] * 2
    assert RecordingBar.made[1]["disable"] is True
    cache = EmbeddingCache(tmp_path, "m")
    cache.update(["a"], np.ones((1, 4), dtype=np.float32))
    encode_unique(model, ["a"], cache=cache)
    assert RecordingBar.made[2]["disable"] is True and RecordingBar.made[2]["total"] == 0  # nothing to encode


def test_a_model_returning_one_vector_per_sentence_flattened_is_refused_in_one_line() -> None:
    class Flat:
        def encode(self, sentences: list[str], **kwargs: object) -> np.ndarray:
            return np.zeros(len(sentences), dtype=np.float32)

    with pytest.raises(IsbertError) as caught:
        encode_unique(Flat(), ["a", "b", "c"], show_progress=False)
    assert str(caught.value) == "the model returned embeddings of shape (3,) for 3 sentences"


def test_evaluate_s_defaults_are_the_sts_group_batches_of_64_a_progress_bar_and_fast_transfer(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list = []

    def task_names(tasks: object) -> list[str]:
        asked.append(tasks)
        return ["STS12", "MR"]

    monkeypatch.setattr(harness, "canonical_task_names", task_names)
    configs: list = []
    monkeypatch.setattr(
        harness, "evaluate_transfer", lambda task, embed, config: configs.append(config) or {"accuracy": 1.0}
    )
    RecordingBar.made = []
    monkeypatch.setattr(harness, "tqdm", RecordingBar)
    model = RecordingEncoder()
    results = evaluate(model, data_dir=data_dir)
    assert asked == ["sts"]
    assert {settings["batch_size"] for _, settings in model.calls} == {64}
    assert RecordingBar.made[0]["disable"] is False
    assert configs == [harness.TransferConfig(full=False, standardize=False)]
    assert results["settings"]["transfer"] == "fast" and results["settings"]["standardize"] is False


def test_the_text_variant_reaches_every_task_and_an_unknown_one_is_named(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(IsbertError) as caught:
        evaluate(HashedBagOfWords(), "sts12", data_dir, text="tokenized")  # type: ignore[arg-type]
    assert str(caught.value) == "unknown text variant 'tokenized'; valid: senteval, raw"
    variants: list = []
    real = harness.load_task
    monkeypatch.setattr(harness, "load_task", lambda name, root, text: variants.append(text) or real(name, root))
    evaluate(HashedBagOfWords(), "sts12,mr", data_dir, text="raw", show_progress=False)
    assert variants == ["raw", "raw"]


def test_results_record_every_setting_and_the_whitening_in_the_model_s_name(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness, "evaluate_transfer", lambda task, embed, config: {"accuracy": 1.0})
    RecordingBar.made = []
    monkeypatch.setattr(harness, "tqdm", RecordingBar)
    whiten_file = tmp_path / "unlabeled.txt"
    whiten_file.write_text("".join(f"{s} {i}\n" for i, s in enumerate(SENTENCES * 4)), encoding="utf-8")
    model = RecordingEncoder()
    results = evaluate(
        model, "sts12,mr", data_dir, whiten=True, whiten_dim=2, whiten_file=whiten_file, full=True,
        standardize=True, batch_size=8, show_progress=False,
    )  # fmt: skip
    assert results["settings"] == {
        "tasks": ["STS12", "MR"],
        "pairs": None,
        "text": "senteval",
        "pooling": None,
        "whiten": True,
        "whiten_dim": 2,
        "transfer": "full",
        "standardize": True,
        "batch_size": 8,
        "data_dir": str(data_dir),
    }
    assert results["model"] == "RecordingEncoder + whitening (2 dims)"
    assert {settings["batch_size"] for _, settings in model.calls} == {8}
    assert [bar["disable"] for bar in RecordingBar.made] == [True]
    assert any(name.endswith("unlabeled.txt") for name in results["checksums"])  # the whitening file is an input
    plain = evaluate(model, "sts12", data_dir, whiten=True, whiten_file=whiten_file, show_progress=False)
    assert plain["model"] == "RecordingEncoder + whitening"
    assert not any(name.endswith("unlabeled.txt") for name in evaluate(model, "sts12", data_dir)["checksums"])


def test_no_tasks_and_no_pairs_mean_the_sts_group(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list = []
    monkeypatch.setattr(harness, "canonical_task_names", lambda tasks: asked.append(tasks) or ["STS12"])
    evaluate(HashedBagOfWords(), None, data_dir, show_progress=False)
    evaluate(HashedBagOfWords(), "", data_dir, show_progress=False)
    assert asked == ["sts", "sts"]


def test_no_sentences_is_one_line() -> None:
    with pytest.raises(IsbertError) as caught:
        encode_unique(HashedBagOfWords(), [], show_progress=False)
    assert str(caught.value) == "no sentences to encode"
