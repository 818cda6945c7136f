"""The ONNX backend: same embeddings as torch (fp32), close ones (int8), and the CLI round trip."""

from __future__ import annotations

import json
import logging
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import isbert
from isbert import onnx_backend
from isbert.cli import main
from isbert.errors import IsbertError
from isbert.model import cached_export
from isbert.onnx_backend import CONFIG_NAME, OnnxEncoder, export_onnx, model_key

pytest.importorskip("onnxruntime")

TEXTS = ["a man runs in the park", "hi", "", "the red car is very fast and the old dog sleeps", "she reads"]


@pytest.fixture(scope="module")
def exported(tiny_isbert_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "export", source=str(tiny_isbert_folder))


def test_fp32_graph_equals_torch(tiny_isbert_folder: Path, exported: Path) -> None:
    want = isbert.load(tiny_isbert_folder, device="cpu").encode(TEXTS)
    got = isbert.load(exported, backend="onnx", quantization="none").encode(TEXTS, batch_size=2)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_int8_graph_is_close_and_the_default(tiny_isbert_folder: Path, exported: Path) -> None:
    want = isbert.load(tiny_isbert_folder, device="cpu").encode(TEXTS)
    encoder = isbert.load(exported)  # an export folder is recognised without naming the backend
    assert isinstance(encoder, OnnxEncoder) and encoder.quantization == "int8"
    got = encoder.encode(TEXTS)
    cosine = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert cosine.min() > 0.95


def test_length_sorted_batches_keep_input_order(exported: Path) -> None:
    encoder = OnnxEncoder(exported, quantization="none")
    one_by_one = np.stack([encoder.encode([text])[0] for text in TEXTS])
    np.testing.assert_allclose(encoder.encode(TEXTS, batch_size=3), one_by_one, atol=1e-5)
    assert encoder.encode("hi").shape == (24,)
    normalized = encoder.encode(TEXTS[:2], normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), 1.0, rtol=1e-5)


class WatchedSession:
    """The encoder's onnxruntime session, counting the rows of each batch it runs and scaling the rows it returns."""

    def __init__(self, session, scale: float = 1.0) -> None:
        self.session, self.scale, self.batches = session, scale, []

    def run(self, names, inputs):
        self.batches.append(len(inputs["input_ids"]))
        return [self.session.run(names, inputs)[0] * self.scale]


def test_encode_batches_of_32_by_default_into_float32_rows_and_a_string_is_one_row(exported: Path) -> None:
    encoder = OnnxEncoder(exported, quantization="none")
    encoder.session = WatchedSession(encoder.session)
    texts = [f"text number {i}" for i in range(33)]
    rows = encoder.encode(texts)
    assert encoder.session.batches == [32, 1] and rows.dtype == np.float32 and rows.shape == (33, 24)
    np.testing.assert_array_equal(encoder.encode("she reads"), encoder.encode(["she reads"])[0])


def test_normalized_rows_are_unit_whatever_their_length(exported: Path) -> None:
    """Short raw rows too (a model whose embeddings have norms below 1): only a zero row is left as it is."""
    encoder = OnnxEncoder(exported, quantization="none")
    encoder.session = WatchedSession(encoder.session, scale=1e-3)
    rows = encoder.encode(TEXTS, normalize_embeddings=True)
    assert np.linalg.norm(encoder.encode(TEXTS), axis=1).max() < 1
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1, rtol=1e-5)


def test_a_text_longer_than_the_model_reads_is_truncated_as_torch_does(
    tiny_isbert_folder: Path, exported: Path
) -> None:
    model = isbert.load(tiny_isbert_folder, device="cpu")
    long = " ".join(["the red car is very fast"] * 60)
    assert len(model.tokenizer(long)["input_ids"]) > model.max_seq_length
    got = OnnxEncoder(exported, quantization="none").encode([long, "she reads"])
    np.testing.assert_allclose(got, model.encode([long, "she reads"]), atol=1e-5)


def test_the_progress_bar_is_shown_when_asked_and_named_encode(
    exported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encoder = OnnxEncoder(exported, quantization="none")
    encoder.encode(TEXTS)
    assert capsys.readouterr().err == ""
    encoder.encode(TEXTS, show_progress_bar=True)  # stderr is not a terminal here: shown all the same
    assert re.search(r"(^|\r)encode: 100%", capsys.readouterr().err)


def test_an_export_s_defaults_opset_17_no_source_and_a_quiet_quantization(
    tiny_isbert_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import onnx

    model = isbert.load(tiny_isbert_folder, device="cpu")
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as python_warnings:
        warnings.simplefilter("always")
        export = export_onnx(model, tmp_path / "export")
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == []  # onnxruntime's pre-processing hint is silenced; the tracing texts fit a 16-token model
    assert [str(warning.message) for warning in python_warnings] == []  # and are cut to it, not only padded
    graph = onnx.load(str(export / onnx_backend.FILES["none"]))
    assert {entry.version for entry in graph.opset_import if entry.domain in ("", "ai.onnx")} == {17}
    assert [output.name for output in graph.graph.output] == ["sentence_embedding"]
    config = json.loads((export / CONFIG_NAME).read_text())
    assert (config["source"], config["source_checksum"], config["default"]) == ("", None, "int8")


def test_only_a_model_that_starts_with_a_hugging_face_encoder_is_exported(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer, models

    pooling_only = SentenceTransformer(modules=[models.Pooling(8)], device="cpu")
    with pytest.raises(IsbertError) as refused:
        export_onnx(pooling_only, tmp_path / "export")
    assert str(refused.value) == "only models that start with a Hugging Face encoder can be exported to ONNX"


def test_cli_export_then_encode(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    assert main(["export", str(tiny_isbert_folder), "--output", str(folder), "--quantize", "none"]) == 0
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n")
    output = tmp_path / "e.npy"
    assert main(["encode", str(folder), "-i", str(source), "-o", str(output), "--backend", "onnx"]) == 0
    want = isbert.load(tiny_isbert_folder, device="cpu").encode(TEXTS)
    np.testing.assert_allclose(np.load(output), want, atol=1e-5)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ISBERT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


def test_plain_folder_exports_once_into_the_cache(
    tiny_isbert_folder: Path, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_isbert_folder, model)
    first = isbert.load(model, backend="onnx", quantization="none")
    assert first.path.parent == cache and first.path.name == model_key(model)
    want = isbert.load(model, device="cpu").encode(TEXTS)
    np.testing.assert_allclose(first.encode(TEXTS), want, atol=1e-5)
    exports: list[Path] = []
    monkeypatch.setattr(onnx_backend, "export_onnx", lambda *a, **k: exports.append(a[1]))
    assert isbert.load(model, backend="onnx").path == first.path and exports == []  # reused, not exported again
    # a changed model gets a new key, hence a new export
    (model / "README.md").write_text("changed\n")
    assert model_key(model) != first.path.name
    with pytest.raises(IsbertError):  # the stub wrote nothing: the point is that an export was asked for
        isbert.load(model, backend="onnx")
    assert exports == [cache / model_key(model)]


def test_cache_key_hashes_the_weights_not_the_checksum_list_saved_with_them(
    tiny_isbert_folder: Path, tmp_path: Path
) -> None:
    from isbert.identity import CHECKSUMS_FILE, folder_checksum
    from isbert.model import save

    model = tmp_path / "model"
    save(isbert.load(tiny_isbert_folder, device="cpu"), model)  # isbert's save lists the sha256 of every file
    assert (model / CHECKSUMS_FILE).is_file()
    key, identity = model_key(model), folder_checksum(model)
    weights = next(model.rglob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # edited behind the saved list: loading would refuse it, a cache hit would not load it
    weights.write_bytes(bytes(data))
    assert folder_checksum(model) == identity  # the identity reads the saved list ...
    assert model_key(model) != key  # ... the cache key reads the bytes, so no stale export is served


DAMAGES = ["no checksums", "a graph without its checksum", "a graph deleted", "a config that is not JSON"]


@pytest.mark.parametrize("damage", DAMAGES)
def test_an_entry_that_cannot_prove_its_graphs_whole_is_exported_again(
    tiny_isbert_folder: Path, cache: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry is trusted only as far as its checksums reach and can be read: a config that lost them (or a graph's),
    a graph gone, a config no longer JSON are not proof that the graphs are whole."""
    entry = cached_export(tiny_isbert_folder)
    config = json.loads((entry / CONFIG_NAME).read_text())
    if damage == "no checksums":
        del config["checksums"]
    elif damage == "a graph without its checksum":
        del config["checksums"][config["files"]["int8"]]
    elif damage == "a graph deleted":
        (entry / config["files"]["int8"]).unlink()
    (entry / CONFIG_NAME).write_text("{not json" if damage == "a config that is not JSON" else json.dumps(config))
    assert not onnx_backend.intact_export(entry)
    with caplog.at_level(logging.WARNING, logger="isbert.model"):
        assert cached_export(tiny_isbert_folder) == entry
    assert "the cached ONNX export was changed or damaged; exporting again" in caplog.text
    again = json.loads((entry / CONFIG_NAME).read_text())
    assert set(again["files"].values()) < set(again["checksums"]) and onnx_backend.intact_export(entry)


def test_tampered_cache_entry_is_exported_again_or_refused(
    tiny_isbert_folder: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = cached_export(tiny_isbert_folder)
    graph = entry / "model_int8.onnx"
    graph.write_bytes(graph.read_bytes()[:-10] + b"0123456789")  # a swapped graph
    assert cached_export(tiny_isbert_folder) == entry
    assert isbert.load(tiny_isbert_folder, backend="onnx").encode(["hi"]).shape == (1, 24)
    config = json.loads((entry / CONFIG_NAME).read_text())
    config["files"]["int8"] = "../../outside.onnx"  # a config pointing outside its folder
    (entry / CONFIG_NAME).write_text(json.dumps(config))
    assert cached_export(tiny_isbert_folder) == entry
    assert json.loads((entry / CONFIG_NAME).read_text())["files"]["int8"] == "model_int8.onnx"
    shutil.rmtree(entry)
    entry.symlink_to(cache.parent)  # a link planted where the entry goes: refused, nothing followed or removed
    with pytest.raises(IsbertError, match="not a folder isbert wrote"):
        cached_export(tiny_isbert_folder)
    capsys.readouterr()  # the loads above may print transformers' bars (first in a process): only the CLI's lines count
    assert main(["encode", str(tiny_isbert_folder), "-i", "-", "-o", "x.npy", "--backend", "onnx"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_encode_plain_folder_says_where(
    tiny_isbert_folder: Path, tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n")
    output = tmp_path / "e.npy"
    args = ["encode", str(tiny_isbert_folder), "-i", str(source), "-o", str(output), "--backend", "onnx"]
    assert main(args) == 0
    assert str(cache / model_key(tiny_isbert_folder)) in capsys.readouterr().err
    assert np.load(output).shape == (len(TEXTS), 24)


def test_an_export_is_not_exported_again(exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """isbert export needs the torch model: an export folder (which load opens as an OnnxEncoder) is refused in one
    line, not with a TypeError from indexing the encoder."""
    assert main(["export", str(exported), "--output", str(tmp_path / "again"), "--quantize", "none"]) == 2
    assert "is an ONNX export (`isbert export`), which can only encode" in capsys.readouterr().err
    assert not (tmp_path / "again").exists()


def test_errors(tiny_isbert_folder: Path, exported: Path, tmp_path: Path) -> None:
    with pytest.raises(IsbertError, match="backend onnx needs a local model folder"):
        isbert.load(tmp_path, backend="onnx")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(IsbertError, match="not an isbert ONNX export"):
        export_onnx(isbert.load(tiny_isbert_folder, device="cpu"), tmp_path / "busy")
    with pytest.raises(IsbertError, match="no 'int8' graph"):
        only_fp32 = export_onnx(isbert.load(tiny_isbert_folder, device="cpu"), tmp_path / "fp32", quantize="none")
        OnnxEncoder(only_fp32, quantization="int8")


def write_export_config(folder: Path, **fields: object) -> Path:
    """A folder holding only an export config (valid for ``_read_config``) with ``fields`` added."""
    folder.mkdir()
    config = {"files": {"none": "model.onnx"}, "default": "none", "input_names": ["input_ids"], "max_seq_length": 8}
    (folder / CONFIG_NAME).write_text(json.dumps(config | fields), encoding="utf-8")
    return folder


def test_export_source_checksum_is_the_recorded_string_or_none(exported: Path, tmp_path: Path) -> None:
    assert onnx_backend.export_source_checksum(write_export_config(tmp_path / "a", source_checksum="abc")) == "abc"
    assert onnx_backend.export_source_checksum(write_export_config(tmp_path / "b", source_checksum=5)) is None
    assert onnx_backend.export_source_checksum(write_export_config(tmp_path / "c")) is None
    assert onnx_backend.export_source_checksum(tmp_path / "a" / CONFIG_NAME) is None  # not an export folder
    (tmp_path / "plain").mkdir()
    assert onnx_backend.export_source_checksum(tmp_path / "plain") is None
    assert onnx_backend.export_source_checksum(exported) is None  # the fixture's export recorded none
    with pytest.raises(IsbertError, match="damaged ONNX export config"):
        onnx_backend.export_source_checksum(write_export_config(tmp_path / "d", files=[]))


def test_a_load_error_is_told_by_its_first_line_of_at_most_200_characters() -> None:
    assert onnx_backend._first_line(ValueError("  \n first line\nsecond")) == "first line"
    assert onnx_backend._first_line(OSError("")) == "OSError"
    assert onnx_backend._first_line(ValueError(" \n ")) == "ValueError"
    assert onnx_backend._first_line(ValueError("x" * 300 + "\ny")) == "x" * 200


def test_an_unreadable_graph_or_tokenizer_is_one_line_naming_the_file(exported: Path, tmp_path: Path) -> None:
    broken = shutil.copytree(exported, tmp_path / "export")
    graph = broken / json.loads((broken / CONFIG_NAME).read_text())["files"]["int8"]
    graph.write_bytes(b"not a graph\n" * 100)
    with pytest.raises(IsbertError) as caught:
        OnnxEncoder(broken)
    message = str(caught.value)
    assert message.startswith(f"{graph}: cannot load the ONNX graph (") and "\n" not in message
    (broken / "tokenizer.json").write_text("{ damaged", encoding="utf-8")
    with pytest.raises(IsbertError, match=r"^.*: cannot load the tokenizer \([^\n]+\)$"):
        OnnxEncoder(broken)


@pytest.mark.parametrize(
    ("absent", "named"),
    [({"onnxruntime"}, "onnxruntime"), ({"onnx"}, "onnx"), ({"onnx", "onnxruntime"}, "onnxruntime and onnx")],
)
def test_a_missing_runtime_is_named_with_its_pip_command(
    absent: set[str], named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from isbert.extras import MissingExtraError

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *rest: None if name in absent else find_spec(name, *rest)
    )
    for needs_the_backend in (lambda: OnnxEncoder(tmp_path), lambda: export_onnx(object(), tmp_path / "export")):
        with pytest.raises(MissingExtraError) as refused:
            needs_the_backend()
        assert str(refused.value) == f'the ONNX backend needs {named}: pip install "isbert[onnx]"'


def test_the_encoder_s_refusals_of_a_folder_word_for_word(tmp_path: Path) -> None:
    """Config-only folders: each refusal comes before the tokenizer or the graph is read."""
    with pytest.raises(IsbertError) as refused:
        OnnxEncoder(tmp_path)
    assert str(refused.value) == f"{tmp_path} is not an ONNX export (no {CONFIG_NAME}); create one with `isbert export`"
    two_graphs = write_export_config(tmp_path / "two", files={"none": "model.onnx", "fp16": "model_fp16.onnx"})
    with pytest.raises(IsbertError) as refused:
        OnnxEncoder(two_graphs, quantization="int8")
    assert str(refused.value) == f"{two_graphs} has no 'int8' graph (has: none, fp16)"
    outside = write_export_config(tmp_path / "outside", files={"none": "../model.onnx"})
    with pytest.raises(IsbertError) as refused:
        OnnxEncoder(outside)
    assert str(refused.value).startswith(f"{outside / CONFIG_NAME}: the name '../model.onnx' ")
    for name, damage in [("json", b"{ not json"), ("utf8", b'{"files": "\xff"}')]:
        (tmp_path / name).mkdir()
        (tmp_path / name / CONFIG_NAME).write_bytes(damage)
        with pytest.raises(IsbertError) as refused:
            OnnxEncoder(tmp_path / name)
        assert re.fullmatch(rf"{re.escape(str(tmp_path / name / CONFIG_NAME))}: damaged ONNX export config \(.+\)",
                            str(refused.value))  # fmt: skip


class RecordedSession:
    """onnxruntime's ``InferenceSession``, keeping the options and providers each session was made with."""

    made: list[tuple[object, object]] = []

    def __new__(cls, graph: str, sess_options: object = None, providers: object = None, **rest: object):
        import onnxruntime

        cls.made.append((sess_options, providers))
        return onnxruntime.capi.onnxruntime_inference_collection.InferenceSession(
            graph, sess_options, providers, **rest
        )


@pytest.mark.parametrize(("policy", "spins"), [(None, "1"), ("ACTIVE", "1"), ("PASSIVE", "0"), ("passive", "0")])
def test_the_session_runs_on_the_cpu_with_the_threads_asked_and_spins_unless_omp_is_passive(
    exported: Path, policy: str | None, spins: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """isbert.threads sets OMP_WAIT_POLICY=PASSIVE on a busy machine; onnxruntime's own pool must then sleep too."""
    import onnxruntime

    if policy is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", policy)
    monkeypatch.setattr(onnxruntime, "InferenceSession", RecordedSession)
    monkeypatch.setattr(RecordedSession, "made", [])
    encoder = OnnxEncoder(exported, quantization="none", threads=3)
    [(options, providers)] = RecordedSession.made
    assert isinstance(options, onnxruntime.SessionOptions) and providers == ["CPUExecutionProvider"]
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (3, 1)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == spins
    assert encoder.encode("she reads").shape == (24,)


def test_an_export_traces_on_the_cpu_in_a_hidden_folder_beside_its_target(
    tiny_isbert_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model loaded on a GPU is traced on the CPU (the sample texts are CPU tensors); an export killed part-way
    leaves ``.NAME.exporting-*``, which says what it was."""
    import torch

    model = isbert.load(tiny_isbert_folder, device="cpu")
    moved_to: list[tuple[object, ...]] = []
    staged_in: list[Path] = []
    to, trace = model.to, torch.onnx.export

    def move(*args: Any, **kwargs: Any) -> Any:
        moved_to.append(args)
        return to(*args, **kwargs)

    def export(*args: Any, **kwargs: Any) -> Any:
        staged_in.append(Path(args[2]))
        return trace(*args, **kwargs)

    monkeypatch.setattr(model, "to", move)
    monkeypatch.setattr(torch.onnx, "export", export)
    export_onnx(model, tmp_path / "export", quantize="none")
    assert moved_to == [("cpu",)]
    assert staged_in[0].parent.parent == tmp_path and staged_in[0].parent.name.startswith(".export.exporting-")


def fresh_export(tiny_isbert_folder: Path, folder: Path) -> Path:
    """An export made inside the test, not by the module's fixture: mutmut runs a mutant only against the tests it
    saw call the mutated function, and a shared fixture's export is seen only by the first test that builds it."""
    return export_onnx(isbert.load(tiny_isbert_folder, device="cpu"), folder / "export")


def test_an_export_s_graphs_take_any_batch_of_any_length_and_give_a_row_per_text(
    tiny_isbert_folder: Path, tmp_path: Path
) -> None:
    """Declared in the graph, not only tolerated by onnxruntime: other runtimes read these shapes."""
    import onnx

    exported = fresh_export(tiny_isbert_folder, tmp_path)
    for graph in (onnx.load(str(exported / name)) for name in onnx_backend.FILES.values()):
        shapes = {value.name: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
                  for value in [*graph.graph.input, *graph.graph.output]}  # fmt: skip
        batch, tokens = shapes["input_ids"]
        assert isinstance(batch, str) and isinstance(tokens, str) and batch != tokens
        assert all(shape == [batch, tokens] for name, shape in shapes.items() if name != "sentence_embedding")
        assert shapes["sentence_embedding"] == [batch, 24]


def test_the_int8_graph_quantizes_the_encoder_s_matmuls_per_channel_and_leaves_the_cnn_in_fp32(
    tiny_isbert_folder: Path, tmp_path: Path
) -> None:
    import onnx

    exported = fresh_export(tiny_isbert_folder, tmp_path)
    fp32, int8 = (onnx.load(str(exported / onnx_backend.FILES[kind])).graph for kind in ("none", "int8"))
    ops = [node.op_type for node in int8.node]
    assert ops.count("Conv") == [node.op_type for node in fp32.node].count("Conv") == 3  # windows 1, 3 and 5
    assert "ConvInteger" not in ops and ops.count("MatMulInteger") > 0
    shapes = {tensor.name: list(tensor.dims) for tensor in int8.initializer}
    for node in (node for node in int8.node if node.op_type == "MatMulInteger"):
        weight, weight_zero_point = node.input[1], node.input[3]
        assert shapes[weight_zero_point] == shapes[weight][-1:]  # one zero point per output channel
