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


def test_help_ends_with_a_recipe_whose_every_command_parses_and_the_thread_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shlex

    from isbert.cli import RECIPE, build_parser
    from isbert.threads import POLICY_ENV, THREADS_ENV

    with pytest.raises(SystemExit):
        main(["--help"])
    recipe_end, threads = capsys.readouterr().out.rstrip().rsplit("\n\n", 1)
    assert recipe_end.endswith(RECIPE.splitlines()[-1])
    assert threads.startswith("CPU threads:") and all(
        f"{name}=" in threads.replace("\n", " ") for name in (THREADS_ENV, "OMP_NUM_THREADS", POLICY_ENV)
    )
    commands = [part.split("#")[0] for line in RECIPE.splitlines() for part in line.split("&&") if "isbert " in part]
    assert len(commands) == 5
    parser = build_parser()
    for command in commands:
        words = shlex.split(command[command.index("isbert ") :])[1:]
        args = parser.parse_args(words)  # a stale recipe (renamed command or flag) exits here
        assert callable(args.func), command


# ------------------------------------------------------------------------------------------------ one grammar
def _command_parsers():
    from isbert.cli import _command_parsers, build_parser

    parser = build_parser()
    return [(sub.prog, sub) for sub in _command_parsers(parser)]


def test_every_option_help_states_its_default_at_most_once() -> None:
    """`train --help` once printed each default twice (the formatter's and the text's): one mention per option."""
    import argparse

    seen = 0
    for prog, parser in _command_parsers():
        formatter = parser._get_formatter()
        assert parser.format_help()  # every command's help renders
        for action in parser._actions:
            if not action.help or action.help == argparse.SUPPRESS:
                continue
            text = formatter._expand_help(action)
            seen += 1
            assert text.lower().count("default") <= 1, f"{prog} {action.option_strings or action.dest}: {text}"
    assert seen > 100


def test_options_may_come_anywhere_among_positionals() -> None:
    from isbert.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["search", "IDX", "-k", "3", "what is it", "--json", "and this"])
    assert (args.index, args.query, args.k, args.json) == ("IDX", ["what is it", "and this"], 3, True)
    args = parser.parse_args(["search", "-k", "3", "IDX", "q", "-v", "--trust-remote-code"])
    assert (args.index, args.query, args.verbose, args.trust_remote_code) == ("IDX", ["q"], True, True)
    args = parser.parse_args(["--verbose", "index", "build", "--model", "M", "IDX", "--input", "a.txt", "b/"])
    assert (args.index, args.model, args.input, args.verbose) == ("IDX", "M", ["a.txt", "b/"], True)
    args = parser.parse_args(["index", "build", "-i", "a.txt", "b/", "--", "IDX", "--model", "M"])
    assert (args.index, args.input) == ("IDX", ["a.txt", "b/"])  # --input takes several paths: -- ends them
    assert parser.parse_args(["cluster", "M", "-i", "a", "--k", "2", "-i", "b"]).input == ["a", "b"]
    assert parser.parse_args(["index", "info", "IDX"]).verbose is False
    args = parser.parse_args(["train", "--corpus", "a.txt", "b.txt", "-o", "run", "--max-steps", "3"])
    assert (args.corpus, args.output, args.max_steps) == (["a.txt", "b.txt"], "run", 3)
    args = parser.parse_args(["train", "-o", "run", "--input", "a.txt", "texts/", "-i", "'*.txt'"])
    assert args.corpus == ["a.txt", "texts/", "'*.txt'"]  # train's --input is its corpus, as in other commands


def test_the_index_is_positional_everywhere() -> None:
    from isbert.cli import build_parser

    parser = build_parser()
    for command in (["index", "build"], ["index", "add"], ["index", "info"], ["search"]):
        sub = parser.parse_args([*command, "IDX", *(["--input", "a.txt"] if command[-1] in ("build", "add") else [])])
        assert sub.index == "IDX", command


def test_index_build_needs_a_model_and_reads_the_old_spelling_with_a_note(tmp_path: Path, capsys) -> None:
    assert main(["index", "build", str(tmp_path / "idx"), "--input", str(tmp_path / "a.txt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "isbert index build INDEX --model MODEL" in err
    (tmp_path / "a.txt").write_text("a text\n")
    corpus = str(tmp_path / "a.txt")
    old = ["index", "build", str(tmp_path / "no-model"), "--index", str(tmp_path / "idx"), "-i", corpus]
    assert main(old) == 2
    err = capsys.readouterr().err
    assert f"isbert index build {tmp_path / 'idx'} --model {tmp_path / 'no-model'}" in err  # the note
    assert "model folder not found" in err.splitlines()[-1]


def test_export_and_encode_spell_quantization_the_same() -> None:
    from isbert.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["export", "M", "-o", "x", "--quantization", "none"]).quantization == "none"
    assert parser.parse_args(["export", "M", "-o", "x", "--quantize", "none"]).quantization == "none"  # old name
    assert parser.parse_args(["export", "M", "-o", "x"]).quantization == "int8"
    assert parser.parse_args(["encode", "M", "-i", "a", "-o", "b.npy", "--quantization", "int8"]).quantization == "int8"
