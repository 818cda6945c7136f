"""encode_file: streaming, chunking, and resuming an interrupted run to the same output."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from recording_bar import RecordingBar
from tiny_models import WORDS
from waiting import planted_fifo, returns_without_waiting

import isbert
from isbert.encode import (
    EncodeReport,
    _valid_done,
    count_truncated,
    encode_file,
    local_chunk_encoder,
    read_sources,
    sources_path,
)
from isbert.errors import InputError
from isbert.io import ReadStats


def write_corpus(path: Path, count: int) -> list[str]:
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(WORDS, size=rng.integers(1, 12))) for _ in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


class Interrupting:
    """Wraps a model and raises KeyboardInterrupt on the n-th encode call, counting the calls."""

    def __init__(self, model, interrupt_on: int | None) -> None:
        self.model, self.interrupt_on, self.calls = model, interrupt_on, 0

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def encode(self, texts, **kwargs):
        self.calls += 1
        if self.calls == self.interrupt_on:
            raise KeyboardInterrupt
        return self.model.encode(texts, **kwargs)


@pytest.mark.reliability
def test_interrupted_run_resumes_to_the_same_output(tiny_isbert_folder: Path, tmp_path: Path, reliability) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    source = tmp_path / "corpus.txt"
    write_corpus(source, 50)
    reference = tmp_path / "reference.npy"
    encode_file(model, source, reference, chunk_size=8, show_progress=False)

    output = tmp_path / "out.npy"
    first = Interrupting(model, interrupt_on=4)
    with pytest.raises(KeyboardInterrupt):
        encode_file(first, source, output, chunk_size=8, model_id="m", show_progress=False)
    assert not output.exists() and not sources_path(output).exists()
    progress = json.loads((tmp_path / ".out.npy.progress.json").read_text())
    assert progress["done"]["written"] == 24

    second = Interrupting(model, interrupt_on=None)
    report = encode_file(second, source, output, chunk_size=8, model_id="m", show_progress=False)
    assert second.calls == 4  # chunks 4..7 of 7 (the last one short), not the first three again
    assert report.rows == 50
    np.testing.assert_array_equal(np.load(output), np.load(reference))
    assert read_sources(output) == [f"corpus.txt:{line}" for line in range(1, 51)]
    assert not list(tmp_path.glob(".out.*"))
    reliability.fault()


def test_changed_input_or_model_starts_over(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    source = tmp_path / "corpus.txt"
    write_corpus(source, 30)
    output = tmp_path / "out.npy"
    with pytest.raises(KeyboardInterrupt):
        encode_file(Interrupting(model, 3), source, output, chunk_size=8, model_id="m", show_progress=False)
    again = Interrupting(model, None)
    encode_file(again, source, output, chunk_size=8, model_id="another model", show_progress=False)
    assert again.calls == 4  # all four chunks: a different model id is a different job


def test_row_i_is_the_text_at_its_file_and_line(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("one\n\ntwo\n", encoding="utf-8")
    (folder / "sub" / "b.csv").write_text('id,text\n1,three\n2,"four\nfive"\n3,six\n', encoding="utf-8")
    (folder / 'c,"d.txt').write_text("seven\n", encoding="utf-8")  # a name CSV has to quote
    output = tmp_path / "out" / "vectors.npy"
    report = encode_file(model, [folder / "a.txt", folder], output, chunk_size=2, show_progress=False)
    matrix, sources = np.load(output), read_sources(output)
    assert sources_path(output) == tmp_path / "out" / "vectors.sources.csv"
    texts = {"a.txt:1": "one", "a.txt:2": "", "a.txt:3": "two", 'c,"d.txt:1': "seven",
             "sub/b.csv:2": "three", "sub/b.csv:3": "four\nfive", "sub/b.csv:5": "six"}  # fmt: skip
    assert sources == ["a.txt:1", "a.txt:2", "a.txt:3", 'c,"d.txt:1', "sub/b.csv:2", "sub/b.csv:3", "sub/b.csv:5"]
    for row, source in zip(matrix, sources, strict=True):
        np.testing.assert_allclose(row, model.encode(texts[source]), atol=1e-5)
    with sources_path(output).open(newline="", encoding="utf-8") as handle:  # plain CSV with a header
        assert [row["source"] for row in csv.DictReader(handle)] == sources
    assert "each row's file:line in vectors.sources.csv" in report.summary()
    (folder / "sub" / "bad.txt").write_bytes(b"fine\nbad \xff\n")
    with pytest.raises(InputError, match=r"bad\.txt:2: not valid UTF-8"):
        encode_file(model, folder, tmp_path / "out" / "other.npy", show_progress=False)
    assert sorted(path.name for path in output.parent.iterdir()) == ["vectors.npy", "vectors.sources.csv"]


@pytest.mark.slow
@pytest.mark.reliability
def test_sigkill_during_cli_encode_then_rerun_equals_uninterrupted(
    tiny_isbert_folder: Path, tmp_path: Path, reliability
) -> None:
    source = tmp_path / "corpus.txt"
    write_corpus(source, 3000)
    output, reference = tmp_path / "out.npy", tmp_path / "reference.npy"
    command = [sys.executable, "-m", "isbert", "encode", str(tiny_isbert_folder), "-i", str(source)]
    command += ["--chunk-size", "64", "--no-progress", "--device", "cpu", "-o"]
    # One thread in every run: on a busy machine isbert would pick fewer threads than an idle run, and sums taken
    # in another order differ in the last bit.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    uninterrupted = subprocess.run([*command, str(reference)], env=env, capture_output=True, text=True, timeout=300)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    command.append(str(output))
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    progress_file = tmp_path / ".out.npy.progress.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if progress_file.is_file() and json.loads(progress_file.read_text())["done"]["written"] >= 640:
            break
        time.sleep(0.02)
    if process.poll() is not None:
        pytest.fail("the encode run ended before it could be killed; make the corpus larger")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not output.exists()
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    np.testing.assert_array_equal(np.load(output), np.load(reference))
    reliability.fault()


class SwappingPartial:
    """Wraps a model; on the last encode call it replaces the partial matrix with a link to ``victim``."""

    def __init__(self, model, partial: Path, victim: Path) -> None:
        self.model, self.partial, self.victim = model, partial, victim

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def encode(self, texts, **kwargs):
        self.partial.unlink()
        self.partial.symlink_to(self.victim)
        return self.model.encode(texts, **kwargs)


def test_a_partial_swapped_for_a_link_is_refused_not_published(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    """The output name never becomes a link an attacker planted while encoding ran, and nothing outside changes."""
    source, output, victim = tmp_path / "corpus.txt", tmp_path / "out.npy", tmp_path / "victim.txt"
    write_corpus(source, 5)
    victim.write_text("keep me\n")
    model = SwappingPartial(isbert.load(tiny_isbert_folder, device="cpu"), tmp_path / ".out.npy.partial", victim)
    with pytest.raises(isbert.IsbertError, match="replaced or linked elsewhere"):
        encode_file(model, source, output, chunk_size=8, show_progress=False)
    assert not output.exists() and not output.is_symlink()
    assert victim.read_text() == "keep me\n"


def interrupted_after_one_chunk(model, tmp_path: Path, model_id: str | None = "m") -> tuple[Path, Path, Path]:
    """An encode of 30 lines in chunks of 8 stopped after its first chunk: (source, output, partial matrix); a
    ``model_id`` of None leaves encode_file's default."""
    source, output = tmp_path / "corpus.txt", tmp_path / "out.npy"
    write_corpus(source, 30)
    named = {} if model_id is None else {"model_id": model_id}
    with pytest.raises(KeyboardInterrupt):
        encode_file(Interrupting(model, 2), source, output, chunk_size=8, show_progress=False, **named)
    return source, output, tmp_path / ".out.npy.partial"


def resume_calls(model, source: Path, output: Path) -> int:
    """Run the interrupted job again to the end: how many chunks it encoded (4 when it started over, 3 resumed)."""
    resumed = Interrupting(model, None)
    encode_file(resumed, source, output, chunk_size=8, model_id="m", show_progress=False)
    return resumed.calls


def plant_link(path: Path, elsewhere: Path, link: str) -> Path:
    """Move ``path``'s bytes to ``elsewhere`` and leave at ``path`` a symlink or a hard link to it."""
    elsewhere.write_bytes(path.read_bytes())
    path.unlink()
    if link == "symlink":
        path.symlink_to(elsewhere)
    else:
        os.link(elsewhere, path)
    return elsewhere


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_resume_never_writes_through_a_link_planted_at_the_partial(
    tiny_isbert_folder: Path, tmp_path: Path, link: str
) -> None:
    """A partial matrix that is a link (to a file big enough to pass for it) is started over, the linked file kept."""
    model = isbert.load(tiny_isbert_folder, device="cpu")
    source, output, partial = interrupted_after_one_chunk(model, tmp_path)
    victim = plant_link(partial, tmp_path / "victim.bin", link)
    before = victim.read_bytes()
    assert resume_calls(model, source, output) == 4  # started over: the linked file is not this job's partial
    assert victim.read_bytes() == before
    reference = tmp_path / "reference.npy"
    encode_file(model, source, reference, chunk_size=8, show_progress=False)
    np.testing.assert_array_equal(np.load(output), np.load(reference))


def test_the_progress_file_records_exactly_each_input_s_path_size_and_mtime(
    tiny_isbert_folder: Path, tmp_path: Path
) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    source, _, _ = interrupted_after_one_chunk(model, tmp_path)
    progress = json.loads((tmp_path / ".out.npy.progress.json").read_text())
    status = source.stat()
    assert progress["job"]["inputs"] == [
        {"path": str(source.resolve()), "size": status.st_size, "mtime_ns": status.st_mtime_ns}
    ]
    assert progress["done"] == {"written": 8, "empty": 0, "truncated": 0}


def test_saved_counts_are_trusted_only_as_ints_from_zero_to_the_row_count() -> None:
    rows, keys = 10, ("written", "empty", "truncated")
    assert _valid_done(dict.fromkeys(keys, 0), rows) and _valid_done(dict.fromkeys(keys, rows), rows)
    for bad in (-1, rows + 1, True, 1.0, "1", None):
        for key in keys:
            assert not _valid_done({**dict.fromkeys(keys, 0), key: bad}, rows), (key, bad)
    assert not _valid_done({"written": 0, "empty": 0}, rows) and not _valid_done([0, 0, 0], rows)


def report_with(file_rows: dict[str, int], skipped: dict[str, int], empty: int = 0, truncated: int = 0) -> EncodeReport:
    stats = ReadStats(lines=sum(file_rows.values()), used=sum(file_rows.values()), skipped=dict(skipped))
    return EncodeReport(sum(file_rows.values()), 4, empty, truncated, stats, Path("out/v.npy"), file_rows)


def test_summary_names_each_file_s_rows_and_every_skip_but_empty_lines() -> None:
    head = "wrote {} x 4 float32 embeddings to out/v.npy (each row's file:line in v.sources.csv)"
    assert report_with({"a.txt": 3}, {}).summary() == head.format(3)
    assert report_with({"a.txt": 3}, {"empty": 2}).summary() == head.format(3)  # empty lines have their rows
    assert report_with({"a.txt": 2, "b.txt": 1}, {}).summary() == head.format(3) + "; rows of a.txt 0-1, b.txt 2-2"
    three = report_with({"a.txt": 3, "b.txt": 1, "c.txt": 2}, {"empty": 1, "undecodable": 2, "too long": 1}, 1, 2)
    assert three.summary() == head.format(6) + (
        "; 1 empty texts encoded as the empty string; 2 texts truncated to the model's maximum length"
        "; 3 lines skipped (6 used of 6 lines (skipped: 1 empty, 1 too long, 2 undecodable))"
        "; rows of a.txt 0-2, b.txt 3-3, c.txt 4-5"
    )


def test_read_sources_keeps_a_line_break_inside_a_file_name(tmp_path: Path) -> None:
    """The sources CSV quotes a name holding CR LF; reading it back must not translate the line break."""
    labels = ["a\r\nb.txt:1", "c\rd.txt:2", "é.txt:3"]
    with sources_path(tmp_path / "v.npy").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source"])
        writer.writerows([label] for label in labels)
    assert read_sources(tmp_path / "v.npy") == labels


class Recording:
    """Wraps a model: records each encode call's keyword arguments; ``dtype`` and ``nan`` change what it returns."""

    def __init__(self, model, dtype=np.float32, nan: bool = False) -> None:
        self.model, self.dtype, self.nan, self.calls = model, dtype, nan, []

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def encode(self, texts, **kwargs):
        self.calls.append(kwargs)
        vectors = self.model.encode(texts, **kwargs).astype(self.dtype)
        if self.nan:
            vectors[-1, 0] = np.nan
        return vectors


def test_truncated_texts_are_those_longer_than_the_limit_special_tokens_included(tiny_isbert_folder: Path) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    texts = ["a", "the red car", "the red car is fast", " ".join(WORDS[:40])]
    lengths = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=True)["input_ids"]]
    model.max_seq_length = lengths[2]  # the third text fits exactly; only the fourth is longer
    assert count_truncated(model, texts) == 1
    model.max_seq_length = lengths[0] - 1  # every text is longer, the shortest by its [CLS] and [SEP] too
    assert count_truncated(model, texts) == 4
    model.max_seq_length = model.tokenizer.model_max_length  # counted on the untruncated length
    assert count_truncated(model, [" ".join(WORDS) * 20]) == 1
    model.max_seq_length = None
    assert count_truncated(model, texts) == 0
    assert count_truncated(SimpleNamespace(max_seq_length=4), texts) == 0  # no tokenizer: nothing to count


def test_chunks_are_encoded_to_numpy_in_the_asked_batches_without_an_inner_bar(tiny_isbert_folder: Path) -> None:
    model = Recording(isbert.load(tiny_isbert_folder, device="cpu"))
    embed = local_chunk_encoder(model, batch_size=3, normalize=True)
    vectors = list(embed(iter([["a b", "c"], ["d"]])))
    assert model.calls == [{"batch_size": 3, "convert_to_numpy": True, "normalize_embeddings": True,
                            "show_progress_bar": False}] * 2  # fmt: skip
    np.testing.assert_allclose(np.linalg.norm(vectors[0], axis=1), 1, rtol=1e-5)


def test_the_job_records_every_setting_and_the_defaults(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    """What a resume must match, by name: a renamed key would silently resume a different job in a later version."""
    model = isbert.load(tiny_isbert_folder, device="cpu")
    interrupted_after_one_chunk(model, tmp_path, model_id=None)
    job = json.loads((tmp_path / ".out.npy.progress.json").read_text())["job"]
    del job["inputs"]
    assert job == {
        "model": "Interrupting",  # no model id: the model's type
        "rows": 30,
        "dimension": model.get_embedding_dimension(),
        "normalize": False,
        "batch_size": 32,
        "chunk_size": 8,
        "text_field": "text",
        "column": "text",
        "encoding_errors": "strict",
    }
    assert (tmp_path / ".out.npy.progress.json").read_text().count("\n") == 1  # one compact line


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_a_progress_file_planted_as_a_link_is_not_trusted(tiny_isbert_folder: Path, tmp_path: Path, link: str) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    source, output, _ = interrupted_after_one_chunk(model, tmp_path)
    plant_link(tmp_path / ".out.npy.progress.json", tmp_path / "saved.json", link)
    assert resume_calls(model, source, output) == 4  # started over


def test_a_fifo_planted_at_the_progress_file_is_not_waited_on(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    source, output, _ = interrupted_after_one_chunk(model, tmp_path)
    fifo = planted_fifo(tmp_path / ".out.npy.progress.json")
    assert returns_without_waiting(lambda: resume_calls(model, source, output), fifo) == 4  # started over


def test_progress_files_up_to_one_mib_are_read_and_a_non_object_is_ignored(
    tiny_isbert_folder: Path, tmp_path: Path
) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    source, output, _ = interrupted_after_one_chunk(model, tmp_path)
    progress = tmp_path / ".out.npy.progress.json"
    text = progress.read_text()
    progress.write_text(text + " " * ((1 << 20) - len(text.encode())))  # exactly the limit
    assert resume_calls(model, source, output) == 3  # resumed after the first chunk
    (tmp_path / "list").mkdir()
    _, output, _ = interrupted_after_one_chunk(model, tmp_path / "list")
    (tmp_path / "list" / ".out.npy.progress.json").write_text("[1, 2]")
    assert resume_calls(model, tmp_path / "list" / "corpus.txt", output) == 4


def test_a_partial_without_room_for_its_header_is_started_over(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    source, output, partial = interrupted_after_one_chunk(model, tmp_path)
    rows_bytes = 30 * model.get_embedding_dimension() * 4
    with partial.open("r+b") as handle:
        handle.truncate(rows_bytes)  # the rows fit, the header does not: not this job's file
    assert resume_calls(model, source, output) == 4
    reference = tmp_path / "reference.npy"
    encode_file(model, source, reference, chunk_size=8, show_progress=False)
    np.testing.assert_array_equal(np.load(output), np.load(reference))


def test_float64_embeddings_are_stored_as_float32_and_counted(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    source = tmp_path / "corpus.txt"
    source.write_text("one\n\ntwo three\n \nfour\n" + " ".join(WORDS[:40]) + "\n", encoding="utf-8")
    model.max_seq_length = 8
    output = tmp_path / "deep" / "er" / "out.npy"  # missing folders are made
    report = encode_file(Recording(model, np.float64), source, output, chunk_size=2, show_progress=False)
    matrix = np.load(output)
    assert matrix.dtype == np.float32 and matrix.shape == (6, report.dimension)
    np.testing.assert_allclose(matrix[0], model.encode("one"), atol=1e-6)
    lines = source.read_text(encoding="utf-8").splitlines()
    longer = sum(len(ids) > 8 for ids in model.tokenizer(lines, add_special_tokens=True)["input_ids"])
    assert longer >= 1 and (report.rows, report.empty, report.truncated) == (6, 2, longer)


def test_bad_requests_and_bad_models_are_one_line(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    source = tmp_path / "corpus.txt"
    write_corpus(source, 5)
    assert encode_file(model, source, tmp_path / "one.npy", batch_size=1, show_progress=False).rows == 5
    with pytest.raises(isbert.IsbertError) as caught:
        encode_file(model, source, tmp_path / "zero.npy", batch_size=0, show_progress=False)
    assert str(caught.value) == "--batch-size must be at least 1, got 0"
    with pytest.raises(isbert.IsbertError) as caught:
        encode_file(model, source, tmp_path / "out.txt", show_progress=False)
    assert str(caught.value) == f"the output file must end in .npy: {tmp_path / 'out.txt'}"
    with pytest.raises(isbert.IsbertError) as caught:
        encode_file(Recording(model, nan=True), source, tmp_path / "nan.npy", chunk_size=2, show_progress=False)
    assert str(caught.value) == "the model produced NaN or infinite embeddings near row 1"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["corpus.txt", "one.npy", "one.sources.csv"]
    no_dimension = SimpleNamespace(get_embedding_dimension=lambda: None)
    with pytest.raises(isbert.IsbertError) as caught:
        encode_file(no_dimension, source, tmp_path / "x.npy", show_progress=False)
    assert str(caught.value) == "the model does not report its embedding dimension"
    (tmp_path / "blank.txt").write_text("", encoding="utf-8")
    with pytest.raises(isbert.IsbertError, match=r"blank\.txt: no texts to encode \(empty\)$"):
        encode_file(model, tmp_path / "blank.txt", tmp_path / "x.npy", show_progress=False)


def test_the_progress_bar_and_the_resume_line(
    tiny_isbert_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import isbert.encode as encode

    model = isbert.load(tiny_isbert_folder, device="cpu")
    source, output, _ = interrupted_after_one_chunk(model, tmp_path)
    RecordingBar.made = []
    monkeypatch.setattr(encode, "tqdm", RecordingBar)
    with caplog.at_level("INFO", logger="isbert.encode"):
        encode_file(model, source, output, chunk_size=8, model_id="m")
    assert RecordingBar.made == [
        {"total": 30, "initial": 8, "desc": "encode", "unit": "text", "disable": False, "updates": [8, 8, 6]}
    ]
    assert f"resuming {output} after 8 of 30 rows" in caplog.messages


def test_read_options_apply_to_counting_and_encoding_alike(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    source = tmp_path / "corpus.txt"
    source.write_bytes(b"fine\nbad \xff\nalso fine\n")
    report = encode_file(model, source, tmp_path / "out.npy", encoding_errors="skip", show_progress=False)
    assert report.rows == 2 and report.stats.skipped and "1 lines skipped" in report.summary()
    table = tmp_path / "table.csv"
    table.write_text("id,title\n1,first\n2,second\n", encoding="utf-8")
    assert encode_file(model, table, tmp_path / "t.npy", column="title", show_progress=False).rows == 2
    two = encode_file(model, [source, table], tmp_path / "two.npy", encoding_errors="skip", column="title",
                      show_progress=False)  # fmt: skip
    assert two.file_rows == {"corpus.txt": 2, "table.csv": 2}


class Shrinking(Interrupting):
    """Empties the input file during the first encode call, as another program rewriting it would."""

    def __init__(self, model, source: Path) -> None:
        super().__init__(model, None)
        self.source = source

    def encode(self, texts, **kwargs):
        if self.calls == 0:
            self.source.write_text("", encoding="utf-8")
        return super().encode(texts, **kwargs)


def test_an_input_changed_while_encoding_and_a_wrong_shape_are_one_line(
    tiny_isbert_folder: Path, tmp_path: Path
) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    source = tmp_path / "corpus.txt"
    write_corpus(source, 3000)
    with pytest.raises(
        isbert.IsbertError, match=r"corpus\.txt changed while it was being encoded \(3000 rows, then \d+\)$"
    ):
        encode_file(Shrinking(model, source), source, tmp_path / "out.npy", chunk_size=8, show_progress=False)

    class Short(Interrupting):
        def encode(self, texts, **kwargs):
            return self.model.encode(texts, **kwargs)[:-1]

    write_corpus(source, 5)
    with pytest.raises(isbert.IsbertError) as caught:
        encode_file(Short(model, None), source, tmp_path / "short.npy", chunk_size=2, show_progress=False)
    assert str(caught.value) == f"the model returned shape (1, {model.get_embedding_dimension()}) for 2 texts"
