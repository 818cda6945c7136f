"""Exceptions that are not ``Exception`` (issue 29, class 5), and the ones hostile input raises from deep inside.

The tokenizers' Rust panics arrive as ``pyo3_runtime.PanicException``, a ``BaseException``: an ``except Exception``
lets them through, into a traceback (CLI) or a dead batcher and 500s (HTTP). ``RecursionError``, ``MemoryError``
and ``OverflowError`` from a hostile TOML, JSON or model file must read as the same one line, exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import numpy as np
import pytest

from isbert import cli
from isbert.errors import contained
from isbert.search.serve import Batcher

pytestmark = pytest.mark.reliability

PanicException = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})
"""What pyo3 raises for a Rust panic (the tokenizers' ``pyo3_runtime.PanicException``), built the same way."""


@pytest.fixture(autouse=True)
def _each_case_is_a_fault(reliability) -> None:
    reliability.fault()


def test_a_panic_is_contained_and_an_interrupt_is_not() -> None:
    assert contained(PanicException("index out of bounds")) and contained(RecursionError())
    assert not contained(KeyboardInterrupt()) and not contained(SystemExit(1))


@pytest.mark.parametrize(
    "error",
    [PanicException("tokenizers panicked: index out of bounds"), RecursionError("maximum recursion depth exceeded"),
     MemoryError(), OverflowError("int too large to convert")],
    ids=["panic", "recursion", "memory", "overflow"],
)  # fmt: skip
def test_the_cli_answers_one_line_for_errors_from_deep_inside(
    error: BaseException, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def hostile(args: argparse.Namespace) -> int:
        raise error

    parser = cli.build_parser()
    real_parse = parser.parse_args
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(
        parser, "parse_args", lambda argv: argparse.Namespace(**{**vars(real_parse(argv)), "func": hostile})
    )
    code = cli.main(["search", "idx", "query"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("isbert search: error: ") and "damaged or hostile" in err


def test_a_deeply_nested_toml_is_one_line(tmp_path: Path, capsys) -> None:
    config = tmp_path / "deep.toml"
    config.write_text("[defaults]\ncorpus = " + "[" * 50_000 + "\n")
    code = cli.main(["experiment", str(config), "--list", "--runs-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err


def test_a_panicking_encoder_fails_its_request_and_the_batcher_lives_on() -> None:
    def encode(texts: list[str]) -> np.ndarray:
        if "panic" in texts:
            raise PanicException("the tokenizer panicked")
        return np.ones((len(texts), 2), dtype=np.float32)

    async def run() -> list[object]:
        batcher = Batcher(encode, max_batch=64, batch_wait_s=0.05)
        await batcher.start()
        first = await asyncio.gather(*(batcher.submit(t) for t in (["a"], ["panic"], ["b"])), return_exceptions=True)
        later = await batcher.submit(["c"])  # the worker survived
        await batcher.stop()
        return [*first, later]

    results = asyncio.run(run())
    assert isinstance(results[1], Exception) and "panicked" in str(results[1])
    assert all(isinstance(r, np.ndarray) for i, r in enumerate(results) if i != 1)


def test_a_panicking_tokenizer_is_a_400(monkeypatch: pytest.MonkeyPatch) -> None:
    from isbert.search.serve import Limits, RequestError, TokenCounter

    counter = TokenCounter.__new__(TokenCounter)
    from concurrent.futures import ThreadPoolExecutor

    counter._tokenizer, counter._executor = object(), ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(counter, "count", lambda texts: (_ for _ in ()).throw(PanicException("boom")))
    with pytest.raises(RequestError) as info:
        asyncio.run(counter.count_checked(["x"], Limits()))
    assert info.value.status == 400
    counter.close()
