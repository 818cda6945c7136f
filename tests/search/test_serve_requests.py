"""The service's answers, pinned exactly: request validation, the endpoints' bodies, batching and shutdown numbers.

The app runs in process (FastAPI's TestClient) over a fake model and a fake index whose outputs are known, so every
status code, error body and answer field can be compared whole; the batcher, token counter and drain are driven
directly on an event loop.
"""

from __future__ import annotations

import asyncio
import base64
import json as json_module
import logging
import threading
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from isbert.search.serve import (
    Batcher,
    Drain,
    Limits,
    RequestError,
    Security,
    TokenCounter,
    _search_options,
    create_app,
    model_encoder,
    serve,
    server_config,
)

pytest_plugins = ["pytester"]

# FastAPI's TestClient waits for an answer without a bound: a batcher that never answers a request (a `_collect` that
# waits for a partner for ever) would hang the test, and under mutmut run until its wall bound (a timeout, not a
# kill). Every test here takes under a second but the one that checks this bound in a subprocess (its own bound).
pytestmark = pytest.mark.timeout(30)


class FakeTokenizer:
    """Counts a text as its characters plus two special tokens (never its words)."""

    def __init__(self) -> None:
        self.state = {"calls": 0}  # shared only by a shallow copy
        self.threads: list[str] = []

    def __call__(self, texts: list[str], **options: Any) -> dict[str, list[int]]:
        assert options == {"add_special_tokens": True, "truncation": False, "return_length": True}
        self.state["calls"] += 1
        self.threads.append(threading.current_thread().name)
        return {"length": [len(text) + 2 for text in texts]}


class FakeModel:
    """Embeds a text as ``[len(text), 1, 0]`` (float64), records each encode call's options."""

    def __init__(self, dimension: int | None = 3, max_seq_length: int | None = 8, tokenizer: bool = True) -> None:
        self.dimension = dimension
        self.max_seq_length = max_seq_length
        if tokenizer:
            self.tokenizer = FakeTokenizer()
        self.calls: list[dict[str, Any]] = []

    def get_embedding_dimension(self) -> int | None:
        return self.dimension

    def encode(self, texts, batch_size=None, convert_to_numpy=None, show_progress_bar=None) -> np.ndarray:
        self.calls.append(
            {
                "texts": list(texts),
                "batch_size": batch_size,
                "convert_to_numpy": convert_to_numpy,
                "show_progress_bar": show_progress_bar,
                "thread": threading.current_thread().name,
            }
        )
        return np.asarray([[float(len(text)), 1.0, 0.0] for text in texts], dtype=np.float64)


def unit(text: str) -> list[float]:
    row = np.asarray([float(len(text)), 1.0, 0.0], dtype=np.float32)
    return (row / np.linalg.norm(row)).tolist()


class FakeHit:
    def __init__(self, text: str) -> None:
        self.text = text

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "score": 1.0}


class FakeIndex:
    manifest = {"spec": {"kind": "flat"}}

    def __init__(self, stores_texts: bool = True) -> None:
        self.stores_texts = stores_texts
        self.searches: list[dict[str, Any]] = []
        self.checked: list[tuple[Any, Any]] = []

    def __len__(self) -> int:
        return 5

    def check_model(self, model: Any, name: Any) -> None:
        self.checked.append((model, name))

    def search_embedded(self, queries, unit, k, *, mode, source):
        self.searches.append({"queries": list(queries), "unit": unit, "k": k, "mode": mode, "source": source})
        return [[FakeHit(query)] for query in queries]


async def until(event: threading.Event) -> None:
    """Wait (on the loop) until a worker thread has set ``event``: no test depends on a sleep being long enough."""
    for _ in range(500):
        if event.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the worker thread never started")


def client_for(model: FakeModel | None = None, **options: Any) -> TestClient:
    app = create_app(model or FakeModel(), "fake-model", **options)
    return TestClient(app, base_url="http://localhost", raise_server_exceptions=False)


def error(status: int, message: str, code: str) -> tuple[int, dict[str, Any]]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return status, {"error": {"message": message, "type": kind, "param": None, "code": code}}


def answer(client: TestClient, path: str, body: Any) -> tuple[int, Any]:
    response = client.post(path, json=body)
    return response.status_code, response.json()


# ------------------------------------------------------------------------------------------------ /embed
def test_embed_answers_normalized_rows_by_default_and_raw_rows_on_request() -> None:
    model = FakeModel()
    with client_for(model) as client:
        assert answer(client, "/embed", {"texts": ["ab", "abcdefghij"]}) == (
            200,
            {"model": "fake-model", "dimension": 3, "embeddings": [unit("ab"), unit("abcdefghij")], "truncated": [1]},
        )
        assert answer(client, "/embed", {"texts": ["ab"], "normalize": False}) == (
            200,
            {"model": "fake-model", "dimension": 3, "embeddings": [[2.0, 1.0, 0.0]], "truncated": []},
        )
        assert answer(client, "/embed", {"texts": ["ab"], "normalize": "no"}) == error(
            400, "field 'normalize' must be true or false", "invalid_type"
        )
    # the app's defaults reach the model: batches of 32, numpy out, no progress bar, on the encode thread
    assert {(c["batch_size"], c["convert_to_numpy"], c["show_progress_bar"]) for c in model.calls} == {
        (32, True, False)
    }
    assert all(c["thread"].startswith("isbert-encode") for c in model.calls)
    # tokens are counted on the private tokenizer copy's own thread, never the model's tokenizer
    assert model.tokenizer.state["calls"] == 0


def test_the_model_encoder_asks_for_float32_numpy_rows_in_batches() -> None:
    model = FakeModel()
    vectors = model_encoder(model)(["abc"])  # type: ignore[arg-type]
    assert vectors.dtype == np.float32 and vectors.tolist() == [[3.0, 1.0, 0.0]]
    assert model_encoder(model, 7)(["a"]).dtype == np.float32  # type: ignore[arg-type]
    assert [(c["batch_size"], c["convert_to_numpy"], c["show_progress_bar"]) for c in model.calls] == [
        (32, True, False),
        (7, True, False),
    ]


def test_create_app_passes_its_batching_options_on() -> None:
    model = FakeModel()
    limits = Limits(max_queued=5, shutdown_timeout_s=3.0)
    app = create_app(model, "fake-model", limits=limits, max_batch=3, batch_wait_ms=20, batch_size=7)  # type: ignore[arg-type]
    batcher = app.state.batcher
    assert isinstance(batcher, Batcher) and app.state.limits is limits
    assert (batcher.max_batch, batcher.batch_wait_s, batcher.max_queued, batcher.pending) == (3, 0.02, 5, 0)
    assert isinstance(app.state.drain, Drain) and (app.state.drain.margin, app.state.drain.grace) == (1.0, 2.0)
    config = server_config(app)
    assert config.timeout_graceful_shutdown == 1.0 and config.limit_concurrency == 4 * 5 + 64
    batcher.encode(["abcd"])
    assert model.calls[-1]["batch_size"] == 7
    defaults = create_app(FakeModel(), "fake-model")  # type: ignore[arg-type]
    assert (defaults.state.batcher.max_batch, defaults.state.batcher.batch_wait_s) == (64, 0.005)
    assert defaults.state.batcher.max_queued == Limits().max_queued


def test_the_server_configuration_turns_the_limits_into_deadlines_and_a_backstop() -> None:
    """What `isbert serve` hands uvicorn: loopback on 8000 by default, warnings only, no access log (texts stay out
    of logs), idle keep-alives closed after 5 s, the header deadline, and a connection backstop only when the queue
    is bounded."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    app = create_app(FakeModel(), "fake-model", limits=Limits(header_timeout_s=0.7))  # type: ignore[arg-type]
    config = server_config(app)
    assert (config.host, config.port, config.log_level, config.access_log) == ("127.0.0.1", 8000, "warning", False)
    assert (config.timeout_keep_alive, config.limit_concurrency) == (5, 4 * Limits().max_queued + 64)
    assert issubclass(config.http, H11Protocol) and config.http.__name__ == "HeaderDeadlineProtocol"
    given = server_config(app, "192.0.2.1", 9001, "info")  # compared, never bound
    assert (given.host, given.port, given.log_level) == ("192.0.2.1", 9001, "info")
    unbounded = create_app(FakeModel(), "fake-model", limits=Limits(max_queued=0))  # type: ignore[arg-type]
    assert server_config(unbounded).limit_concurrency is None


@pytest.mark.parametrize(
    ("args", "where", "level"),
    [((), "127.0.0.1:8000", "warning"), (("192.0.2.1", 9001, "info"), "192.0.2.1:9001", "info")],
)
def test_serve_runs_uvicorn_with_that_configuration_and_a_signal_starts_the_drain(
    monkeypatch: pytest.MonkeyPatch, args: tuple, where: str, level: str
) -> None:
    """`isbert serve`'s last step, in process: the server is handed over, not run. Its line is out before uvicorn
    runs (a supervisor reading a pipe waits for it); a signal starts the drain, and the drain's stop is uvicorn's own
    (a second Ctrl-C forces the exit)."""
    import io
    import signal
    import sys

    import uvicorn

    piped = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(piped, encoding="utf-8"))  # block-buffered, as a pipe
    ran: list[tuple[Any, bytes]] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: ran.append((self, piped.getvalue())))
    app = create_app(FakeModel(), "fake-model")  # type: ignore[arg-type]
    serve(app, *args)
    ((server, printed),) = ran
    assert f"{server.config.host}:{server.config.port}" == where and server.config.log_level == level
    assert server.config.http.__name__ == "HeaderDeadlineProtocol"
    assert printed == f"isbert serve: listening on http://{where} (Ctrl-C to stop)\n".encode()
    stops: list[Any] = []
    monkeypatch.setattr(app.state.drain, "begin", stops.append)
    server.handle_exit(signal.SIGINT, None)
    server.handle_exit(signal.SIGINT, None)
    assert len(stops) == 2 and not server.should_exit  # the drain decides when uvicorn stops
    stops[0]()
    assert server.should_exit and not server.force_exit
    stops[1]()
    assert server.force_exit


# ------------------------------------------------------------------------------------------------ /similarity
def test_similarity_takes_single_strings_and_counts_both_sides_against_max_texts() -> None:
    with client_for(limits=Limits(max_texts=4)) as client:
        status, body = answer(client, "/similarity", {"a": "ab", "b": "ab"})
        assert status == 200 and set(body) == {"model", "scores", "truncated"}
        assert body["model"] == "fake-model" and body["truncated"] == []
        assert body["scores"] == [[pytest.approx(1.0, abs=1e-6)]]
        status, body = answer(client, "/similarity", {"a": ["ab", "abcdefghij"], "b": ["ab", "abc"]})  # 4: allowed
        assert status == 200 and np.asarray(body["scores"]).shape == (2, 2) and body["truncated"] == [1]
        assert answer(client, "/similarity", {"a": ["a", "b", "c"], "b": ["d", "e"]}) == error(
            413, "5 texts; at most 4 per request", "too_many_texts"
        )


# ------------------------------------------------------------------------------------------------ /search
def test_search_without_an_index_is_a_404() -> None:
    with client_for() as client:
        assert answer(client, "/search", {"query": "x"}) == error(
            404, "this server has no index; start it with --index DIR", "no_index"
        )


def test_search_passes_float32_unit_queries_the_default_k_and_the_options_to_the_index() -> None:
    index = FakeIndex()
    model = FakeModel()
    with client_for(model, index=index, limits=Limits(max_k=200)) as client:
        assert answer(client, "/search", {"query": "abc"}) == (
            200,
            {
                "model": "fake-model",
                "k": 10,
                "results": {"query": "abc", "truncated": False, "hits": [{"text": "abc", "score": 1.0}]},
            },
        )
        search = index.searches[-1]
        assert (search["k"], search["mode"], search["source"]) == (10, "vector", None)
        assert search["unit"].dtype == np.float32 and search["unit"].tolist() == [unit("abc")]
        status, body = answer(client, "/search", {"queries": ["ab", "abcdefghij"], "k": 200, "source": "c.txt"})
        assert status == 200 and body["k"] == 200 and [r["truncated"] for r in body["results"]] == [False, True]
        assert (index.searches[-1]["k"], index.searches[-1]["source"]) == (200, "c.txt")
        encoded = len(model.calls)
        status, body = answer(client, "/search", {"query": "abc", "mode": "keyword", "k": 1})
        assert status == 200 and body["results"]["truncated"] is False
        assert index.searches[-1]["unit"] is None and index.searches[-1]["mode"] == "keyword"
        assert len(model.calls) == encoded  # a keyword search never runs the model


@pytest.mark.parametrize("k", [0, 201, True, False, "3", 1.5, None, [3]])
def test_search_refuses_a_k_that_is_not_a_whole_number_in_range(k: Any) -> None:
    with client_for(index=FakeIndex(), limits=Limits(max_k=200)) as client:
        assert answer(client, "/search", {"query": "abc", "k": k}) == error(
            400, "'k' must be a whole number from 1 to 200", "invalid_k"
        )


def test_search_refuses_query_and_queries_together() -> None:
    with client_for(index=FakeIndex()) as client:
        assert answer(client, "/search", {"query": "a", "queries": ["b"]}) == error(
            400, "send either 'query' or 'queries', not both", "invalid_request"
        )


def test_an_index_without_texts_answers_vector_searches_only() -> None:
    with client_for(index=FakeIndex(stores_texts=False)) as client:
        assert answer(client, "/search", {"query": "abc"})[0] == 200
        for mode in ("keyword", "hybrid"):
            assert answer(client, "/search", {"query": "abc", "mode": mode}) == error(
                400, "this index stores no texts (built with --ids-only); use mode 'vector'", "no_texts"
            )


def test_search_mode_and_source_errors_over_http() -> None:
    with client_for(index=FakeIndex()) as client:
        assert answer(client, "/search", {"query": "a", "mode": "VECTOR"}) == error(
            400, "'mode' must be 'vector', 'keyword' or 'hybrid'", "invalid_mode"
        )
        assert answer(client, "/search", {"query": "a", "source": ""}) == error(
            400, "'source' must be a file label of at most 4096 characters", "invalid_source"
        )


SOURCE_CHARS = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))


@given(source=st.one_of(st.text(SOURCE_CHARS, min_size=1, max_size=20), st.sampled_from(["a", "x" * 4096, "d/"])))
def test_a_source_of_1_to_4096_characters_without_nul_is_accepted(source: str) -> None:
    for mode in ("vector", "keyword", "hybrid"):
        assert _search_options({"mode": mode, "source": source}) == (mode, source)


@pytest.mark.parametrize("source", ["", "x" * 4097, "a\x00b", "\x00", 5, ["a"]])
def test_a_bad_source_is_refused(source: Any) -> None:
    with pytest.raises(RequestError) as raised:
        _search_options({"source": source})
    assert (raised.value.status, raised.value.code) == (400, "invalid_source")
    assert raised.value.message == "'source' must be a file label of at most 4096 characters"


def test_search_options_defaults() -> None:
    assert _search_options({}) == ("vector", None)


# ------------------------------------------------------------------------------------------------ /health
def test_health_reports_the_model_shape_limits_and_an_idle_batcher() -> None:
    with client_for(index=FakeIndex(), limits=Limits(max_texts=4, max_chars=50, max_k=7)) as client:
        assert client.get("/health").json() == {
            "status": "ok",
            "model": "fake-model",
            "dimension": 3,
            "max_tokens": 8,
            "index": {"size": 5, "kind": "flat"},
            "limits": {"max_texts": 4, "max_chars": 50, "max_k": 7},
            "batching": {
                "requests": 0,
                "batches": 0,
                "texts": 0,
                "largest_batch": 0,
                "dropped": 0,
                "split_batches": 0,
                "failed": 0,
                "queued": 0,
            },
        }


def test_a_model_without_a_dimension_or_length_reports_zero() -> None:
    with client_for(FakeModel(dimension=None, max_seq_length=None)) as client:
        health = client.get("/health").json()
        assert (health["dimension"], health["max_tokens"]) == (0, 0)


def test_create_app_checks_the_index_against_the_model_and_its_name() -> None:
    index = FakeIndex()
    model = FakeModel()
    create_app(model, "fake-model", index=index)  # type: ignore[arg-type]
    assert index.checked == [(model, "fake-model")]
    create_app(model, "fake-model", index=index, index_checked=True)  # type: ignore[arg-type]
    assert len(index.checked) == 1


# ------------------------------------------------------------------------------------------------ tokens
def test_token_counter_counts_with_a_deep_private_copy_of_the_tokenizer_on_its_own_thread() -> None:
    model = FakeModel()
    counter = TokenCounter(model)  # type: ignore[arg-type]
    assert counter.count(["abc", "a b c d"]) == [5, 9]  # characters + 2, not words
    assert model.tokenizer.state["calls"] == 0  # the copy's state is its own (a deep copy)

    async def counts() -> list[int]:
        return await counter.count_checked(["ab"], Limits())

    assert asyncio.run(counts()) == [4]
    assert model.tokenizer.threads == [] and counter._tokenizer.threads[-1].startswith("isbert-tokenize")
    counter.close()
    words = TokenCounter(FakeModel(tokenizer=False))  # type: ignore[arg-type]
    assert words.count(["abc", "a b c d"]) == [1, 4]
    words.close()


def test_token_counting_and_encoding_each_run_one_at_a_time() -> None:
    """One thread each: a second count (or fingerprint check) waits for the first, however many are submitted."""
    release, started = threading.Event(), threading.Event()
    order: list[str] = []

    class SlowTokenizer:
        def __call__(self, texts: list[str], **options: Any) -> dict[str, list[int]]:
            if texts == ["first"]:
                started.set()
                release.wait(5)
            order.append(texts[0])
            return {"length": [1]}

    class SlowModel(FakeModel):
        def encode(self, texts, **options: Any) -> np.ndarray:
            started.set()
            release.wait(5)
            order.append("encoded")
            return np.zeros((len(texts), 3))

    async def run() -> None:
        model = SlowModel(tokenizer=False)
        model.tokenizer = SlowTokenizer()  # type: ignore[assignment]
        counter = TokenCounter(model)  # type: ignore[arg-type]
        first = asyncio.ensure_future(counter.count_checked(["first"], Limits()))
        await until(started)
        second = asyncio.ensure_future(counter.count_checked(["second"], Limits()))
        await asyncio.sleep(0.2)
        order.append("released")
        release.set()
        await asyncio.gather(first, second)
        counter.close()
        assert order == ["released", "first", "second"]
        order.clear()
        release.clear()
        started.clear()
        batcher = Batcher(model_encoder(model))  # type: ignore[arg-type]
        await batcher.start()
        encoded = asyncio.ensure_future(batcher.submit(["x"]))
        await until(started)
        other = asyncio.ensure_future(batcher.run_in_worker(lambda: order.append("worker")))
        await asyncio.sleep(0.2)
        order.append("released")
        release.set()
        await asyncio.gather(encoded, other)
        await batcher.stop()
        assert order == ["released", "encoded", "worker"]

    asyncio.run(run())


def test_too_many_tokens_and_unreadable_texts_are_refused() -> None:
    class Refusing(FakeTokenizer):
        def __call__(self, texts: list[str], **options: Any) -> dict[str, list[int]]:
            if "boom" in texts:
                raise ValueError("cannot read")
            return super().__call__(texts, **options)

    model = FakeModel()
    model.tokenizer = Refusing()
    with client_for(model, limits=Limits(max_tokens=10)) as client:
        assert answer(client, "/embed", {"texts": ["abcdefgh"]})[0] == 200  # 10 tokens: the limit
        assert answer(client, "/embed", {"texts": ["abcd", "abcde"]}) == error(
            413, "13 tokens in this request; at most 10", "too_many_tokens"
        )
        assert answer(client, "/embed", {"texts": ["boom"]}) == error(
            400, "the tokenizer cannot read these texts", "invalid_text"
        )


# ------------------------------------------------------------------------------------------------ batching
def test_requests_whose_client_left_are_counted_as_dropped_across_batches() -> None:
    release, started = threading.Event(), threading.Event()

    def encode(texts: list[str]) -> np.ndarray:
        if texts == ["slow"]:
            started.set()
            release.wait(5)
        return np.ones((len(texts), 2), dtype=np.float32)

    async def run() -> None:
        batcher = Batcher(encode, batch_wait_s=0.0)
        await batcher.start()
        slow = asyncio.ensure_future(batcher.submit(["slow"]))
        await until(started)
        gone = [asyncio.ensure_future(batcher.submit([f"gone{i}"])) for i in range(2)]
        await asyncio.sleep(0.05)
        assert batcher.pending == 3
        for task in gone:
            task.cancel()
        await asyncio.sleep(0.01)
        release.set()
        await slow
        await batcher.submit(["later"])  # a batch with nobody gone keeps the count
        await batcher.submit(["later", "again"])
        await batcher.stop()
        assert batcher.stats.dropped == 2 and batcher.pending == 0
        assert (batcher.stats.requests, batcher.stats.batches, batcher.stats.texts) == (3, 3, 4)

    asyncio.run(run())


def test_a_failing_request_fails_alone_and_a_panic_becomes_an_ordinary_error() -> None:
    PanicException = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})

    def encode(texts: list[str]) -> np.ndarray:
        if "bad" in texts:
            raise ValueError("bad text")
        if "panic" in texts:
            raise PanicException("x" * 500)
        return np.asarray([[float(len(text))] for text in texts], dtype=np.float32)

    async def run() -> list[Any]:
        batcher = Batcher(encode, batch_wait_s=0.05)
        await batcher.start()

        async def answered(*texts: str) -> list[Any]:  # bounded: a request left unanswered fails, not hangs
            submitted = (batcher.submit([text]) for text in texts)
            return await asyncio.wait_for(asyncio.gather(*submitted, return_exceptions=True), 10)

        results = await answered("good", "bad", "panic")
        alone = await answered("bad")
        assert (batcher.stats.split_batches, batcher.stats.failed, batcher.stats.requests) == (1, 3, 1)
        await answered("good", "bad")
        await batcher.stop()
        assert (batcher.stats.split_batches, batcher.stats.failed, batcher.stats.requests) == (2, 4, 2)
        return [*results, *alone]

    good, bad, panic, alone = asyncio.run(run())
    assert good.tolist() == [[4.0]]
    assert isinstance(bad, ValueError) and str(bad) == "bad text" and isinstance(alone, ValueError)
    assert type(panic) is RuntimeError and str(panic) == f"the encoder panicked: {'x' * 200}"


def test_a_failed_request_is_logged_with_its_size_and_its_error_and_answered(caplog: pytest.LogCaptureFixture) -> None:
    def encode(texts: list[str]) -> np.ndarray:
        raise ValueError("bad text")

    async def run() -> list[Any]:
        batcher = Batcher(encode, batch_wait_s=0.0)
        await batcher.start()
        try:  # bounded: a request whose failure never reaches it would wait for ever
            return await asyncio.wait_for(asyncio.gather(batcher.submit(["a", "b"]), return_exceptions=True), 10)
        finally:
            await batcher.stop()

    with caplog.at_level(logging.ERROR, logger="isbert.serve"):
        (error,) = asyncio.run(run())
    assert isinstance(error, ValueError) and str(error) == "bad text"
    logged = [(r.name, r.levelno, r.getMessage(), r.exc_info and r.exc_info[1]) for r in caplog.records]
    assert logged == [("isbert.serve", logging.ERROR, "encoding a request of 2 texts failed", error)]


# ------------------------------------------------------------------------------------------------ shutdown
@pytest.mark.parametrize(
    ("seconds", "margin", "grace"), [(3.0, 1.0, 2.0), (10.0, 1.0, 9.0), (1.0, 0.5, 0.5), (0.2, 0.1, 0.1), (0.0, 0, 0)]
)
def test_the_drain_keeps_at_most_one_second_or_half_the_time_for_answers_to_go_out(
    seconds: float, margin: float, grace: float
) -> None:
    drain = Drain(seconds)
    assert (drain.margin, drain.grace) == (pytest.approx(margin), pytest.approx(grace)) and not drain.started


def test_a_drain_stops_the_server_once_its_grace_is_over_and_at_once_on_a_second_signal() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        drain = Drain(0.4)
        drain.attach()
        stops: list[float] = []
        start = loop.time()
        drain.begin(lambda: stops.append(loop.time() - start))
        assert drain.started and stops == []
        await asyncio.wait_for(drain.over(), 5)
        assert len(stops) == 1 and stops[0] >= 0.15
        drain.begin(lambda: stops.append(-1.0))
        assert stops[-1] == -1.0

    asyncio.run(run())
    unattached: list[int] = []
    Drain(5.0).begin(lambda: unattached.append(1))  # no loop to wait on: stop at once
    assert unattached == [1]


def test_while_draining_every_request_gets_a_json_503() -> None:
    with client_for() as client:
        client.app.state.drain.started = True  # type: ignore[attr-defined]
        response = client.post("/embed", json={"texts": ["a"]})
        assert (response.status_code, response.json()) == error(
            503, "the server is shutting down; retry shortly", "shutting_down"
        )
        assert response.headers["retry-after"] == "1" and response.headers["connection"] == "close"


def test_a_request_still_running_when_the_grace_ends_gets_the_503() -> None:
    release = threading.Event()

    class SlowModel(FakeModel):
        def encode(self, texts, **options: Any) -> np.ndarray:
            release.wait(5)
            return super().encode(texts, **options)

    with client_for(SlowModel(), limits=Limits(shutdown_timeout_s=0.4)) as client:
        drain = client.app.state.drain  # type: ignore[attr-defined]
        stopped: list[bool] = []
        timer = threading.Timer(0.3, lambda: drain.begin(lambda: stopped.append(True)))
        timer.start()
        try:
            response = client.post("/embed", json={"texts": ["a"]})
        finally:
            release.set()
            timer.join()
        assert (response.status_code, response.json()["error"]["code"]) == (503, "shutting_down") and stopped


# ------------------------------------------------------------------------------------------------ the app
def test_the_openapi_document_describes_the_hand_read_bodies() -> None:
    from isbert.search.serve import _BODIES, _ERROR

    with client_for() as client:
        document = client.get("/openapi.json").json()
    assert (
        document["info"]["title"] == "isbert" and document["info"]["summary"] == "sentence embeddings from fake-model"
    )
    assert set(document["paths"]) == {"/health", "/embed", "/similarity", "/search", "/v1/embeddings"}
    assert set(document["paths"]["/health"]) == {"get"}
    for path, (request, reply) in _BODIES.items():
        operation = document["paths"][path]
        assert set(operation) == {"post"}
        operation = operation["post"]
        assert operation["requestBody"] == {"required": True, "content": {"application/json": {"schema": request}}}
        assert set(operation["responses"]) == {"200", "4XX", "5XX"}
        for status, schema in (("200", reply), ("4XX", _ERROR), ("5XX", _ERROR)):
            response = operation["responses"][status]
            assert set(response) == {"description", "content"} and response["description"]
            assert set(response["content"]) == {"application/json"}
            described = response["content"]["application/json"]["schema"]  # FastAPI adds a title and the like
            assert {key: described.get(key) for key in schema} == schema, (path, status)


def test_cors_preflights_are_answered_for_the_allowed_origin_methods_and_headers() -> None:
    origin = "https://app.example"
    with client_for(security=Security(cors_origins=(origin,))) as client:
        for method in ("GET", "POST"):
            response = client.options(
                "/embed",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            )
            assert response.status_code == 200, (method, response.text)
            assert response.headers["access-control-allow-origin"] == origin
        refused = client.options(
            "/embed", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert refused.status_code == 400
        assert client.get("/health", headers={"Origin": origin}).headers["access-control-allow-origin"] == origin


# ------------------------------------------------------------------------------------------------ validation
def refusal(call: Any, *args: Any, **kwargs: Any) -> tuple[int, str, str]:
    with pytest.raises(RequestError) as raised:
        call(*args, **kwargs)
    return raised.value.status, raised.value.message, raised.value.code


def test_the_derived_limits() -> None:
    assert Limits().body_limit() == 256 * (10_000 * 6 + 16) + 65_536
    assert Limits(max_texts=2, max_chars=10).body_limit() == 2 * 76 + 65_536
    assert Limits(max_body_bytes=100).body_limit() == 100
    assert Limits().json_value_limit() == 4 * 256 + 1024 and Limits(max_texts=3).json_value_limit() == 1036
    assert Limits(max_json_values=7).json_value_limit() == 7


@given(count=st.integers(1, 30), escaped=st.booleans())
def test_the_json_value_count_is_exact_at_the_limit(count: int, escaped: bool) -> None:
    from isbert.search.serve import _parse_json

    text = 'a\\"b\\\\' if escaped else "a"
    body = ('{"t": [' + ",".join([f'"{text}"'] * count) + "]}").encode()
    values = 1 + 1 + count + 1 + 1 + (count - 1)  # "t" and its string, ":", "[", the strings and the commas
    assert _parse_json(body, values) == {"t": [text.replace('\\"', '"').replace("\\\\", "\\")] * count}
    assert refusal(_parse_json, body, values - 1) == (
        413,
        f"request body holds too many JSON values (at most {values - 1})",
        "too_many_values",
    )


def test_separators_count_outside_strings_only_and_still_count_at_twice_the_limit_in_quotes() -> None:
    from isbert.search.serve import _parse_json

    assert _parse_json(b'["a,b:c[d{e"]', 2) == ["a,b:c[d{e"]  # one string and its list
    assert _parse_json(b'"ab"', 1) == "ab"  # exactly twice the limit in quotes, and no more values than it
    four = b'["a","b","c","d"]'  # 8 quotes = 2 * 4, and 4 separators outside them: 8 values
    assert refusal(_parse_json, four, 4) == (
        413,
        "request body holds too many JSON values (at most 4)",
        "too_many_values",
    )
    assert _parse_json(four, 8) == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("content_type", "json"),
    [
        (None, False),
        ("application/json", True),
        (" Application/JSON ; Charset=UTF-8 ", True),
        ('application/json; charset="utf-8"', True),
        ("application/json; charset=latin-1", False),
        ("text/plain", False),
        ("text/plain; charset=utf-8", False),
        ("application/json-seq", False),
    ],
)
def test_only_json_in_utf_8_is_a_json_body(content_type: str | None, json: bool) -> None:
    from isbert.search.serve import _is_json

    assert _is_json(content_type) is json


class Sent:
    """A request as `read_json` reads it: its headers, and its body in pieces (or a client that stalls or leaves)."""

    def __init__(self, *pieces: bytes | BaseException | float, length: int | None = None) -> None:
        self.pieces = pieces
        self.headers = Headers({} if length is None else {"content-length": str(length)})  # starlette's, any case

    async def stream(self) -> Any:
        for piece in self.pieces:
            if isinstance(piece, BaseException):
                raise piece
            if isinstance(piece, float):
                await asyncio.sleep(piece)
                continue
            yield piece


def read(sent: Sent, limits: Limits) -> Any:
    from isbert.search.serve import read_json

    async def bounded() -> Any:  # a body timeout that never fires would otherwise wait for ever
        return await asyncio.wait_for(read_json(sent, limits), 10)  # type: ignore[arg-type]

    return asyncio.run(bounded())


def test_read_json_declared_lengths_stalls_departures_and_large_bodies() -> None:
    from starlette.requests import ClientDisconnect

    limits = Limits(max_body_bytes=100_000, body_timeout_s=0.2)
    assert read(Sent(b'{"a": 1}', length=100_000), limits) == {"a": 1}  # declared at the limit: read
    assert refusal(read, Sent(b"{}", length=100_001), limits) == (
        413, "request body of 100001 bytes exceeds 100000", "body_too_large"
    )  # fmt: skip
    assert refusal(read, Sent(b'{"a"', 5.0), limits) == (408, "request body not received within 0.2 s", "body_timeout")
    assert refusal(read, Sent(b'{"a"', ClientDisconnect()), limits) == (
        400, "the client closed the connection while sending the body", "client_closed"
    )  # fmt: skip
    large = {"texts": ["x" * 70_000]}  # over PARSE_OFF_LOOP_BYTES: parsed on a worker thread
    assert read(Sent(json_module.dumps(large).encode()), limits) == large


def test_unreadable_bodies_get_exact_answers() -> None:
    from isbert.search.serve import _parse_json

    assert refusal(_parse_json, b'{"a": "caf\xe9"}', 100) == (
        400,
        "request body is not valid UTF-8 (byte 0xe9 at offset 10)",
        "invalid_encoding",
    )
    assert refusal(_parse_json, b'{"a": ', 100) == (
        400,
        "malformed JSON: Expecting value at line 1 column 7",
        "invalid_json",
    )
    assert refusal(_parse_json, b"1" * 5000, 100) == (400, "unreadable JSON: ValueError", "invalid_json")


@pytest.mark.parametrize(
    ("value", "status", "message", "code"),
    [
        (None, 400, "missing field 'texts'", "missing_field"),
        ([], 400, "field 'texts' must be a non-empty list of strings", "invalid_type"),
        ("one", 400, "field 'texts' must be a non-empty list of strings", "invalid_type"),
        (["a", "b", "c"], 413, "3 texts in 'texts'; at most 2 per request", "too_many_texts"),
        (["a", 5], 400, "texts[1] is int, not a string (token arrays are not supported; send text)", "invalid_type"),
        ([[1, 2]], 400, "texts[0] is list, not a string (token arrays are not supported; send text)", "invalid_type"),
        ([{"a": 1}], 400, "texts[0] is dict, not a string", "invalid_type"),
        (["a", " \t"], 400, "texts[1] is empty", "empty_text"),
        (["x" * 11], 413, "texts[0] has 11 characters; at most 10", "text_too_long"),
        (["ab\x00c"], 400, "texts[0] contains a NUL character (at 2)", "invalid_text"),
        (["a\x00b\x00"], 400, "texts[0] contains a NUL character (at 1)", "invalid_text"),
        (["ab\ud800"], 400, "texts[0] has an unpaired surrogate U+D800 at character 2", "invalid_text"),
    ],
)
def test_text_lists_are_validated_with_exact_answers(value: Any, status: int, message: str, code: str) -> None:
    from isbert.search.serve import text_list

    data = {} if value is None else {"texts": value}
    assert refusal(text_list, data, "texts", Limits(max_texts=2, max_chars=10)) == (status, message, code)


def test_text_lists_at_the_limits_pass_and_a_single_string_only_where_allowed() -> None:
    from isbert.search.serve import text_list

    limits = Limits(max_texts=2, max_chars=10)
    assert text_list({"texts": ["x" * 10, "y"]}, "texts", limits) == ["x" * 10, "y"]
    assert text_list({"input": "one"}, "input", limits, allow_single=True) == ["one"]


JSON = {"content-type": "application/json"}


def test_a_body_sent_in_pieces_is_capped_by_its_total_size() -> None:
    """A chunked body has no Content-Length to refuse up front: the pieces are summed as they come."""
    from isbert.search.serve import _read_body

    assert asyncio.run(_read_body(Sent(b"a" * 6, b"b" * 4), 10)) == b"a" * 6 + b"b" * 4  # type: ignore[arg-type]
    assert refusal(asyncio.run, _read_body(Sent(b"a" * 6, b"b" * 5), 10)) == (  # type: ignore[arg-type]
        413, "request body exceeds 10 bytes", "body_too_large"
    )  # fmt: skip


def test_a_body_of_a_million_quotes_is_refused_without_splitting_it() -> None:
    """Past ``2 * limit`` quotes the count alone refuses it: splitting would make a million pieces (tens of MB)."""
    import tracemalloc

    from isbert.search.serve import _check_json_size

    body = b'"' * 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(RequestError) as refused:
            _check_json_size(body, 1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.code == "too_many_values"
    assert peak < 8 * len(body), peak  # the two copies the replacements make, not a piece per quote


def test_bodies_are_refused_before_parsing_with_exact_answers() -> None:
    limits = Limits(max_texts=2, max_chars=10, max_body_bytes=200)
    with client_for(limits=limits) as client:

        def post(content: bytes, **headers: str) -> tuple[int, Any]:
            response = client.post("/embed", content=content, headers={"content-type": "application/json", **headers})
            return response.status_code, response.json()

        assert post(b"") == error(400, "empty request body; send a JSON object", "invalid_json")
        assert post(b"[1]") == error(400, "expected a JSON object, got list", "invalid_json")
        assert post(b'"x"') == error(400, "expected a JSON object, got str", "invalid_json")
        chunked = client.post(  # no Content-Length: the limit is found while reading
            "/embed", content=iter([b'{"texts": ["', b"x" * 150, b"x" * 150, b'"]}']), headers=JSON
        )
        assert (chunked.status_code, chunked.json()) == error(413, "request body exceeds 200 bytes", "body_too_large")
        exact = client.post("/embed", content=iter([b'{"texts": ["', b"x" * 10, b'"]}', b" " * 175]), headers=JSON)
        assert exact.status_code == 200  # 200 bytes: the limit itself
        assert post(b'{"texts": ["a"]}', **{"content-length": "201"}) == error(
            413, "request body of 201 bytes exceeds 200", "body_too_large"
        )
        assert post(b'{"texts": ["' + b"x" * 180 + b'"]}')[0] == 413  # within the body limit: the text is too long


# ------------------------------------------------------------------------------------------------ /v1/embeddings
def test_openai_embeddings_answer_exactly_and_name_the_truncated_inputs() -> None:
    with client_for() as client:
        response = client.post("/v1/embeddings", json={"input": ["ab", "abcdefghij", "abcdefg"], "dimensions": 3})
        assert response.status_code == 200 and response.headers["x-isbert-truncated"] == "1,2"
        assert response.json() == {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": pytest.approx(unit(text))}
                for i, text in enumerate(["ab", "abcdefghij", "abcdefg"])
            ],
            "model": "fake-model",
            "usage": {"prompt_tokens": 4 + 8 + 8, "total_tokens": 20},  # each input counted up to max_seq_length
        }
        packed = client.post("/v1/embeddings", json={"input": "ab", "encoding_format": "base64"})
        assert "x-isbert-truncated" not in packed.headers
        row = np.frombuffer(base64.b64decode(packed.json()["data"][0]["embedding"]), dtype="<f4")
        assert row.tolist() == pytest.approx(unit("ab"))
        assert answer(client, "/v1/embeddings", {"input": "ab", "dimensions": 4}) == error(
            400, "this model makes 3-d embeddings; 'dimensions' 4", "invalid"
        )
        assert answer(client, "/v1/embeddings", {"input": "ab", "encoding_format": "int8"}) == error(
            400, "'encoding_format' must be 'float' or 'base64'", "invalid_encoding_format"
        )
    with client_for(FakeModel(max_seq_length=None)) as client:  # no length: every token counts, none is cut
        response = client.post("/v1/embeddings", json={"input": ["ab", "abcdefghij"]})
        assert response.json()["usage"] == {"prompt_tokens": 16, "total_tokens": 16}
        assert "x-isbert-truncated" not in response.headers


# ------------------------------------------------------------------------------------------------ faults
def test_a_server_fault_is_a_json_500_server_error() -> None:
    class Broken(FakeModel):
        def encode(self, texts, **options: Any) -> np.ndarray:
            raise ValueError("broken")

    with client_for(Broken()) as client:
        assert answer(client, "/embed", {"texts": ["a"]}) == error(
            500, "internal server error; see the server log", "server_error"
        )


def test_an_index_that_changed_underneath_is_a_503_with_its_message_cut_to_300_characters() -> None:
    from isbert.errors import IsbertError

    class Changed(FakeIndex):
        def search_embedded(self, queries, unit, k, *, mode, source):
            raise IsbertError("x" * 400)

    with client_for(index=Changed()) as client:
        assert answer(client, "/search", {"query": "a"}) == error(503, "x" * 300, "index_unavailable")


def test_an_index_answering_fewer_rows_than_queries_is_a_fault_not_a_short_answer() -> None:
    class Short(FakeIndex):
        def search_embedded(self, queries, unit, k, *, mode, source):
            return super().search_embedded(queries, unit, k, mode=mode, source=source)[:-1]

    with client_for(index=Short()) as client:
        assert answer(client, "/search", {"queries": ["a", "b"]})[0] == 500


def test_request_error_defaults() -> None:
    refused = RequestError(400, "the message")
    assert (str(refused), refused.code, refused.headers) == ("the message", "invalid_request", None)


def test_allowed_host_names_are_matched_whatever_their_case() -> None:
    app = create_app(FakeModel(), "fake-model", security=Security(allowed_hosts=("Search.Example.COM",)))  # type: ignore[arg-type]
    with TestClient(app, base_url="http://search.example.com") as client:
        assert client.get("/health").status_code == 200
    with TestClient(app, base_url="http://other.example.com") as client:
        response = client.get("/health")
        assert (response.status_code, response.json()) == error(
            421, "this server does not answer for that Host name (see --allowed-host)", "bad_host"
        )


def test_a_missing_key_and_a_body_that_is_not_json_are_refused_word_for_word() -> None:
    with client_for(security=Security(api_key="s3cret")) as client:
        refused = client.post("/embed", json={"texts": ["a"]})
        assert (refused.status_code, refused.json()) == error(
            401, "missing or wrong API key; send 'Authorization: Bearer KEY'", "invalid_api_key"
        )
        assert refused.headers["www-authenticate"] == "Bearer"
        not_json = client.post(
            "/embed", content=b"texts=a", headers={"Authorization": "Bearer s3cret", "Content-Type": "text/plain"}
        )
        assert (not_json.status_code, not_json.json()) == error(
            415, "send the body as 'Content-Type: application/json'", "unsupported_media_type"
        )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LocalHost", True),
        ("[::1]", True),
        ("127.3.2.1", True),
        ("Xlocalhost", False),
        (" localhost", False),
        ("[::2]", False),
        ("10.0.0.1", False),
    ],
)
def test_loopback_names(host: str, loopback: bool) -> None:
    from isbert.search.serve import is_loopback

    assert is_loopback(host) is loopback


def test_a_request_without_a_host_header_is_refused() -> None:
    """HTTP/1.0 may omit it; no name means no allowed name (DNS rebinding)."""
    from isbert.search.serve import RequestGuard

    scope = {"type": "http", "method": "GET", "path": "/health", "headers": []}
    problem = RequestGuard(lambda *_: None, Security()).problem(scope)  # type: ignore[arg-type]
    assert problem is not None and (problem.status, problem.code) == (421, "bad_host")


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("[::1]:8000", "::1"),
        ("[::1]", "::1"),
        ("[fe80::1]]:80", "fe80::1"),  # the first bracket closes the name
        ("[::1", "[::1"),  # never closed: the whole header, which no allowed name equals
        ("::1", "::1"),  # a bare IPv6 address has no port to remove
        (" Localhost:80 ", "localhost"),
        ("search.example.com", "search.example.com"),
        ("a:b:c", "a:b:c"),
    ],
)
def test_the_name_in_a_host_header(header: str, name: str) -> None:
    from isbert.search.serve import _host_name

    assert _host_name(header) == name


def test_stopping_does_not_wait_for_a_running_batch_and_cancels_queued_work() -> None:
    release, started, counting = threading.Event(), threading.Event(), threading.Event()
    ran: list[str] = []

    def encode(texts: list[str]) -> np.ndarray:
        started.set()
        release.wait(5)
        return np.ones((len(texts), 1), dtype=np.float32)

    class Slow:
        def __call__(self, texts: list[str], **options: Any) -> dict[str, list[int]]:
            counting.set()
            release.wait(5)
            ran.append(texts[0])
            return {"length": [1]}

    async def run() -> None:
        loop = asyncio.get_running_loop()
        batcher = Batcher(encode)
        await batcher.start()
        running = asyncio.ensure_future(batcher.submit(["x"]))
        await until(started)
        queued = asyncio.ensure_future(batcher.run_in_worker(lambda: ran.append("queued")))
        await asyncio.sleep(0.05)
        start = loop.time()
        await batcher.stop()
        assert loop.time() - start < 2
        model = FakeModel(tokenizer=False)
        model.tokenizer = Slow()  # type: ignore[attr-defined]
        counter = TokenCounter(model)  # type: ignore[arg-type]
        first = asyncio.ensure_future(counter.count_checked(["first"], Limits()))
        await until(counting)
        second = asyncio.ensure_future(counter.count_checked(["second"], Limits()))
        await asyncio.sleep(0.05)
        start = loop.time()
        counter.close()
        assert loop.time() - start < 2
        release.set()
        await asyncio.sleep(0.3)
        assert ran == ["first"]  # the queued fingerprint check and the queued count never ran
        for task in (running, queued, first, second):
            task.cancel()
        await asyncio.gather(running, queued, first, second, return_exceptions=True)

    asyncio.run(run())


def test_a_text_of_exactly_max_seq_length_tokens_is_not_truncated() -> None:
    with client_for() as client:  # max_seq_length 8: "abcdef" is 8 tokens, "abcdefg" 9
        assert answer(client, "/embed", {"texts": ["abcdef", "abcdefg"]})[1]["truncated"] == [1]


def test_normalize_makes_unit_rows_of_small_ones_and_leaves_zero_rows_zero() -> None:
    from isbert.search.serve import _normalize

    rows = _normalize(np.asarray([[0.0006, 0.0008], [0.0, 0.0], [3.0, 4.0]]))
    assert rows.tolist() == [pytest.approx([0.6, 0.8]), [0.0, 0.0], pytest.approx([0.6, 0.8])]


def test_a_client_that_leaves_cancels_its_work_and_gets_client_closed() -> None:
    from isbert.search.serve import _unless_disconnected

    class Gone:
        async def receive(self) -> dict[str, str]:
            await asyncio.sleep(0)  # a receive that suspends, as the server's does
            return {"type": "http.disconnect"}

    async def run() -> tuple[tuple[int, str, str], bool]:
        work = asyncio.ensure_future(asyncio.sleep(2))
        with pytest.raises(RequestError) as raised:
            await _unless_disconnected(Gone(), work)  # type: ignore[arg-type]
        await asyncio.sleep(0)
        return (raised.value.status, raised.value.message, raised.value.code), work.cancelled()

    assert asyncio.run(run()) == ((400, "the client closed the connection", "client_closed"), True)


def test_the_tokenizer_refusal_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    class Refusing(FakeTokenizer):
        def __call__(self, texts: list[str], **options: Any) -> dict[str, list[int]]:
            raise ValueError("cannot read")

    model = FakeModel()
    model.tokenizer = Refusing()
    with caplog.at_level("WARNING", logger="isbert.serve"), client_for(model) as client:
        assert answer(client, "/embed", {"texts": ["a"]})[0] == 400
    assert [record.getMessage() for record in caplog.records if record.name == "isbert.serve"] == [
        "the tokenizer refused a request: cannot read"
    ]


def test_only_a_disconnect_counts_as_the_client_leaving() -> None:
    from isbert.search.serve import _unless_disconnected

    class Stays:
        def __init__(self) -> None:
            self.calls = 0

        async def receive(self) -> dict[str, Any]:
            self.calls += 1
            if self.calls == 1:
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.sleep(30)
            raise AssertionError("never")

    async def work() -> np.ndarray:
        await asyncio.sleep(0.1)
        return np.ones(2)

    assert asyncio.run(_unless_disconnected(Stays(), work())).tolist() == [1.0, 1.0]  # type: ignore[arg-type]


def test_a_full_queue_is_a_503_with_retry_after_and_the_count_comes_back_down() -> None:
    release, started = threading.Event(), threading.Event()

    def encode(texts: list[str]) -> np.ndarray:
        started.set()
        release.wait(5)
        return np.ones((len(texts), 1), dtype=np.float32)

    async def run() -> None:
        batcher = Batcher(encode, max_queued=2)
        with pytest.raises(RuntimeError, match=r"^the batcher is not running$"):
            await batcher.submit(["x"])
        await batcher.start()
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await until(started)
        second = asyncio.ensure_future(batcher.submit(["b"]))
        await asyncio.sleep(0.05)
        assert batcher.pending == 2
        with pytest.raises(RequestError) as raised:
            await batcher.submit(["c"])
        refused = raised.value
        assert (refused.status, refused.message, refused.code, refused.headers) == (
            503,
            "server busy: 2 requests queued; retry shortly",
            "overloaded",
            {"Retry-After": "1"},
        )
        release.set()
        await asyncio.gather(first, second)
        assert batcher.pending == 0
        await batcher.submit(["d"])
        assert batcher.pending == 0
        await batcher.stop()

    asyncio.run(run())


def test_requests_arriving_within_the_batch_wait_are_merged() -> None:
    sizes: list[int] = []

    def encode(texts: list[str]) -> np.ndarray:
        sizes.append(len(texts))
        return np.ones((len(texts), 1), dtype=np.float32)

    async def run() -> None:
        batcher = Batcher(encode, batch_wait_s=0.5)
        await batcher.start()

        async def later(delay: float) -> np.ndarray:
            await asyncio.sleep(delay)
            return await batcher.submit(["x"])

        await asyncio.gather(later(0), later(0.05), later(0.1))
        await batcher.stop()
        assert sizes == [3] and batcher.stats.batches == 1

    asyncio.run(run())


UNANSWERED = """
import asyncio

import numpy as np
import pytest
from fastapi.testclient import TestClient

from isbert.search.serve import Batcher, create_app

pytestmark = pytest.mark.timeout(2)


class Model:
    max_seq_length = 8

    def get_embedding_dimension(self):
        return 3

    def encode(self, texts, **options):
        return np.ones((len(texts), 3), dtype=np.float32)


async def never(self):
    await asyncio.Event().wait()


def test_unanswered(monkeypatch):
    monkeypatch.setattr(Batcher, "_collect", never)
    with TestClient(create_app(Model(), "m"), base_url="http://localhost") as client:
        client.post("/embed", json={"texts": ["hi"]})
"""


@pytest.mark.slow
@pytest.mark.timeout(120)  # a fresh Python importing torch, on a busy machine
def test_a_request_the_batcher_never_answers_fails_its_test_at_the_bound_instead_of_hanging(pytester) -> None:
    """The wiring of this module's hang bound: pytest-timeout interrupts TestClient's unbounded wait, and the app's
    shutdown then ends the batcher, so the test fails in seconds (a mutant is killed, not timed out)."""
    pytester.makepyfile(test_unanswered=UNANSWERED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Failed: Timeout (>2.0s) from pytest-timeout*"])
