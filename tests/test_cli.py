"""The command line: `isbert encode` end to end on a tiny model, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import isbert
from isbert.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "isbert", *args], capture_output=True, text=True, env=env, timeout=300)


def test_encode_writes_one_row_per_line_in_order(tiny_isbert_folder: Path, tmp_path: Path, capsys) -> None:
    lines = ["a man runs", "", "the dog sleeps in the park", "hi", "  "]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "out" / "emb.npy"
    assert main(["encode", str(tiny_isbert_folder), "--input", str(source), "--output", str(output)]) == 0
    matrix = np.load(output)
    assert matrix.dtype == np.float32 and matrix.shape == (5, 24)
    want = isbert.load(tiny_isbert_folder, device="cpu").encode(lines)
    np.testing.assert_allclose(matrix, want, atol=1e-5)
    assert "2 empty texts" in capsys.readouterr().out
    assert not list(output.parent.glob(".*partial"))


def test_encode_jsonl_normalized(tiny_isbert_folder: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps({"body": t}) for t in ["red car", "a cat"]) + "\n")
    output = tmp_path / "emb.npy"
    args = ["encode", str(tiny_isbert_folder), "-i", str(source), "-o", str(output), "--text-field", "body"]
    assert main([*args, "--normalize", "--batch-size", "1"]) == 0
    np.testing.assert_allclose(np.linalg.norm(np.load(output), axis=1), 1.0, rtol=1e-5)


def test_long_lines_are_truncated_and_counted(tiny_isbert_folder: Path, tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.txt"
    source.write_text("hi\n" + " ".join(["dog"] * 500) + "\n")
    output = tmp_path / "emb.npy"
    assert main(["encode", str(tiny_isbert_folder), "-i", str(source), "-o", str(output)]) == 0
    assert np.load(output).shape[0] == 2
    assert "1 texts truncated" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (b"", [], "no texts to encode"),
        (b"ok\n\xff\xfe\n", [], r"in\.txt:2: not valid UTF-8"),
    ],
)
def test_bad_input_is_one_line_error(
    tiny_isbert_folder: Path, tmp_path: Path, capsys, content: bytes, extra: list[str], message: str
) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(content)
    output = tmp_path / "emb.npy"
    code = main(["encode", str(tiny_isbert_folder), "-i", str(source), "-o", str(output), *extra])
    err = capsys.readouterr().err
    assert code == 2 and not output.exists()
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err)


def test_missing_model_and_wrong_output_suffix(tiny_isbert_folder: Path, tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.txt"
    source.write_text("hi\n")
    assert main(["encode", str(tmp_path / "no-model"), "-i", str(source), "-o", str(tmp_path / "e.npy")]) == 2
    assert "model folder not found" in capsys.readouterr().err
    assert main(["encode", str(tiny_isbert_folder), "-i", str(source), "-o", str(tmp_path / "e.txt")]) == 2
    assert "must end in .npy" in capsys.readouterr().err


def test_subprocess_errors_have_no_traceback_and_help_works(tmp_path: Path) -> None:
    result = run_cli("encode", "./missing-model", "-i", str(tmp_path / "none.txt"), "-o", str(tmp_path / "e.npy"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("isbert encode: error:") and "Traceback" not in result.stderr
    bad_flag = run_cli("encode", "m", "-i", "x", "-o", "y.npy", "--batch-size", "zero")
    assert bad_flag.returncode == 2 and "expected a whole number" in bad_flag.stderr
    helped = run_cli("encode", "--help")
    assert helped.returncode == 0 and "--text-field" in helped.stdout and "one row per text" in helped.stdout


def test_foreign_module_needs_the_trust_remote_code_flag(tiny_isbert_folder: Path, tmp_path: Path, capsys) -> None:
    import shutil

    import isbert.model

    folder = tmp_path / "model"
    shutil.copytree(tiny_isbert_folder, folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["type"] = "no_such_package_xyz.Module"
    (folder / "modules.json").write_text(json.dumps(modules))
    source = tmp_path / "in.txt"
    source.write_text("hi\n")
    args = ["encode", str(folder), "-i", str(source), "-o", str(tmp_path / "e.npy")]
    assert main(args) == 2
    assert "isbert --trust-remote-code" in capsys.readouterr().err
    try:
        assert main(["--trust-remote-code", *args]) == 2  # now it tries to import the class, which does not exist
        assert "no_such_package_xyz" in capsys.readouterr().err
    finally:
        isbert.model.TRUST_REMOTE_CODE = False


def test_help_and_argument_parsing_load_no_heavy_library() -> None:
    """`isbert --help` and every `isbert COMMAND --help` answer at once: building the parser imports no torch,
    sentence-transformers or transformers (they take seconds to import)."""
    code = (
        "import sys, isbert.cli; parser = isbert.cli.build_parser(); "
        "names = ('torch', 'sentence_transformers', 'transformers', 'faiss', 'fastapi'); "
        "heavy = [m for m in names if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"building the parser imported {result.stdout.strip()}"
