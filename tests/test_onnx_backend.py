"""The ONNX backend: same embeddings as torch (fp32), close ones (int8), and the CLI round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import isbert
from isbert.cli import main
from isbert.errors import IsbertError
from isbert.onnx_backend import OnnxEncoder, export_onnx

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


def test_cli_export_then_encode(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    assert main(["export", str(tiny_isbert_folder), "--output", str(folder), "--quantize", "none"]) == 0
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n")
    output = tmp_path / "e.npy"
    assert main(["encode", str(folder), "-i", str(source), "-o", str(output), "--backend", "onnx"]) == 0
    want = isbert.load(tiny_isbert_folder, device="cpu").encode(TEXTS)
    np.testing.assert_allclose(np.load(output), want, atol=1e-5)


def test_errors(tiny_isbert_folder: Path, exported: Path, tmp_path: Path) -> None:
    with pytest.raises(IsbertError, match="not an ONNX export"):
        isbert.load(tiny_isbert_folder, backend="onnx")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(IsbertError, match="not an isbert ONNX export"):
        export_onnx(isbert.load(tiny_isbert_folder, device="cpu"), tmp_path / "busy")
    with pytest.raises(IsbertError, match="no 'int8' graph"):
        only_fp32 = export_onnx(isbert.load(tiny_isbert_folder, device="cpu"), tmp_path / "fp32", quantize="none")
        OnnxEncoder(only_fp32, quantization="int8")
