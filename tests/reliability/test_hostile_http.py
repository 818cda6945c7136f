"""Hostile HTTP clients against ``isbert serve``: bad texts merged with good ones, fuzzed bodies, missing keys,
browsers (content types, DNS rebinding), resource exhaustion, slow and vanished clients, and path disclosure.

Every server runs for real on 127.0.0.1 (uvicorn in a thread, configured by ``server_config`` as the CLI does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import isbert
from isbert.search.serve import Batcher, Limits, Security, create_app, server_config

pytestmark = pytest.mark.reliability

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
KEY = "s3cret-key"
WORDS = ["the dog runs", "a cat sleeps", "birds sing at dawn", "the market opens early", "rain falls"]


@pytest.fixture(scope="module")
def model_and_folder(tiny_isbert_folder: Path):
    return isbert.load(tiny_isbert_folder, device="cpu"), tiny_isbert_folder


def start(app) -> tuple[str, uvicorn.Server, threading.Thread, socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(server_config(app, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"
    return f"http://127.0.0.1:{port}", server, thread, sock


@contextlib.contextmanager
def running(app) -> Iterator[tuple[str, uvicorn.Server]]:
    url, server, thread, sock = start(app)
    try:
        yield url, server
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture(scope="module")
def served(model_and_folder) -> Iterator[str]:
    """A server without an API key (loopback), small limits."""
    model, _ = model_and_folder
    app = create_app(model, "tiny", limits=Limits(max_texts=8, max_chars=200, max_tokens=200), batch_wait_ms=20)
    with running(app) as (url, _):
        yield url


def assert_error_shape(response: httpx.Response) -> dict:
    assert response.status_code < 500, (response.status_code, response.text)
    return error_of(response)


def error_of(response: httpx.Response) -> dict:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"] and error["code"], error
    return error


def post(url: str, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(url, content=content, headers={"content-type": "application/json", **headers}, timeout=30)


# ------------------------------------------------------------------------------- one bad request, merged batches
@pytest.mark.parametrize("bad", ['"\\ud800"', '"a\\u0000b"', '"\\udfff tail"'])
def test_a_bad_text_among_concurrent_requests_fails_alone(served, model_and_folder, bad: str, reliability) -> None:
    model, _ = model_and_folder

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served, timeout=30) as client:
            bodies = [json.dumps({"texts": [WORDS[i % 5], WORDS[(i + 2) % 5]]}) for i in range(6)]
            bodies.insert(3, '{"texts": ["fine", ' + bad + "]}")
            headers = {"content-type": "application/json"}
            return await asyncio.gather(*(client.post("/embed", content=b, headers=headers) for b in bodies))

    responses = asyncio.run(run())
    reliability.fault()
    bad_response = responses.pop(3)
    assert bad_response.status_code == 400 and assert_error_shape(bad_response)["code"] == "invalid_text"
    for i, response in enumerate(responses):
        assert response.status_code == 200, response.text
        want = model.encode([WORDS[i % 5], WORDS[(i + 2) % 5]], normalize_embeddings=True)
        np.testing.assert_allclose(response.json()["embeddings"], want, atol=1e-5)


def test_a_failing_merged_batch_is_retried_request_by_request(reliability) -> None:
    def encode(texts: list[str]) -> np.ndarray:
        if "poison" in texts:
            raise RuntimeError("the model cannot encode poison")
        return np.asarray([[len(text), 1.0] for text in texts], dtype=np.float32)

    async def run() -> tuple[list, Batcher]:
        batcher = Batcher(encode, max_batch=64, batch_wait_s=0.05)
        await batcher.start()
        jobs = [["a", "bb"], ["poison"], ["ccc"], ["dddd", "e", "ff"]]
        results = await asyncio.gather(*(batcher.submit(texts) for texts in jobs), return_exceptions=True)
        await batcher.stop()
        return results, batcher

    results, batcher = asyncio.run(run())
    reliability.fault()
    assert isinstance(results[1], RuntimeError)
    assert [row[0] for row in results[0]] == [1, 2] and [row[0] for row in results[3]] == [4, 1, 2]
    assert batcher.stats.split_batches == 1 and batcher.stats.failed == 1


def test_a_server_fault_is_a_json_500_for_that_request_only(model_and_folder, tmp_path: Path) -> None:
    model, folder = model_and_folder
    app = create_app(model, "tiny", batch_wait_ms=30)
    real = app.state.batcher.encode
    app.state.batcher.encode = lambda texts: real(texts) if "boom" not in texts else 1 / 0

    async def run(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            inputs = [WORDS[0], "boom", WORDS[1]]
            return await asyncio.gather(*(client.post("/v1/embeddings", json={"input": t}) for t in inputs))

    with running(app) as (url, _):
        good, fault, other = asyncio.run(run(url))
    assert good.status_code == other.status_code == 200
    assert fault.status_code == 500 and fault.json()["error"]["type"] == "server_error"
    assert "ZeroDivision" not in fault.text and str(folder) not in fault.text


# ------------------------------------------------------------------------------------------------ fuzzed bodies
def _check_any_answer(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("application/json")
    if response.status_code >= 400:
        assert_error_shape(response)


PATHS = st.sampled_from(["/embed", "/similarity", "/search", "/v1/embeddings", "/nowhere"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
TEXTS = st.text(st.characters(codec=None, exclude_categories=()), min_size=0, max_size=40)


@FUZZ
@given(path=PATHS, body=st.binary(max_size=300))
def test_random_bytes_never_5xx(served, reliability, path: str, body: bytes) -> None:
    reliability.fuzz_case()
    _check_any_answer(post(served + path, body))


@FUZZ
@given(path=PATHS, value=JSON_VALUES)
def test_random_json_never_5xx(served, reliability, path: str, value) -> None:
    reliability.fuzz_case()
    _check_any_answer(post(served + path, json.dumps(value).encode()))


@FUZZ
@given(
    field=st.sampled_from([("/embed", "texts"), ("/v1/embeddings", "input"), ("/similarity", "a")]),
    texts=st.lists(TEXTS, min_size=1, max_size=4),
)
def test_random_texts_with_surrogates_and_nul_never_5xx(served, reliability, field, texts: list[str]) -> None:
    reliability.fuzz_case()
    path, name = field
    body = {name: texts, "b": ["dog"]} if name == "a" else {name: texts}
    _check_any_answer(post(served + path, json.dumps(body).encode()))


def test_pathological_json_is_refused_cheaply(served) -> None:
    deep = b'{"texts": ["a"], "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    huge_int = b'{"texts": ["a"], "k": ' + b"9" * 5000 + b"}"
    for body in (deep, huge_int):
        assert_error_shape(post(served + "/embed", body))
    assert post(served + "/embed", b'{"texts": ["a"], "normalize": NaN}').status_code == 400


def test_a_15_mb_body_of_tiny_values_does_not_stall_health(model_and_folder) -> None:
    model, _ = model_and_folder
    app = create_app(model, "tiny", limits=Limits(max_body_bytes=20_000_000))
    body = b'{"texts": ["a"], "pad": [' + b",".join([b'{"a":[]}'] * 1_600_000) + b"]}"
    with running(app) as (url, _):
        stop = threading.Event()
        worst: list[float] = []

        def poll() -> None:
            while not stop.is_set():
                start = time.perf_counter()
                httpx.get(url + "/health", timeout=30)
                worst.append(time.perf_counter() - start)

        poller = threading.Thread(target=poll)
        poller.start()
        deadline = time.monotonic() + 30
        while not worst:  # the body is sent once health has answered, so the poll always overlaps it
            assert time.monotonic() < deadline and poller.is_alive(), "health never answered"
            time.sleep(0.005)
        response = post(url + "/embed", body)
        stop.set()
        poller.join()
    assert response.status_code == 413 and assert_error_shape(response)["code"] == "too_many_values"
    assert max(worst) < 1.0, max(worst)


# ------------------------------------------------------------------------------------- who may call, and from where
@pytest.fixture(scope="module")
def keyed(model_and_folder) -> Iterator[str]:
    model, _ = model_and_folder
    security = Security(api_key=KEY, allowed_hosts=("embed.example",))
    with running(create_app(model, "tiny", security=security)) as (url, _):
        yield url


def test_the_api_key_is_required_except_for_health(keyed, model_and_folder) -> None:
    body = json.dumps({"input": WORDS[0]}).encode()
    assert post(keyed + "/v1/embeddings", body).status_code == 401
    wrong = post(keyed + "/v1/embeddings", body, authorization="Bearer nope")
    assert wrong.status_code == 401 and assert_error_shape(wrong)["code"] == "invalid_api_key"
    assert httpx.get(keyed + "/openapi.json").status_code == 401
    assert post(keyed + "/v1/embeddings", body, authorization=f"Bearer {KEY}").status_code == 200
    assert httpx.get(keyed + "/health").status_code == 200
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{keyed}/v1", api_key=KEY, max_retries=0)
    got = client.embeddings.create(model="any", input=WORDS[:2]).data
    np.testing.assert_allclose(
        [item.embedding for item in got], model_and_folder[0].encode(WORDS[:2], normalize_embeddings=True), atol=1e-5
    )
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{keyed}/v1", api_key="wrong", max_retries=0).embeddings.create(model="m", input="x")


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("", 415),
        ("application/json; charset=utf-8", 200),
    ],
)
def test_only_json_bodies_are_read(served, content_type: str, status: int) -> None:
    response = post(served + "/embed", b'{"texts": ["the dog runs"]}', **{"content-type": content_type})
    assert response.status_code == status
    if status != 200:
        assert assert_error_shape(response)["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost:8000", True),
        ("127.0.0.7", True),
        ("[::1]:80", True),
        ("embed.example", True),
        ("evil.example", False),
        ("evil.example:8000", False),
        ("127.0.0.1.evil.example", False),
    ],
)
def test_dns_rebinding_is_refused_by_host(keyed, host: str, allowed: bool) -> None:
    response = httpx.get(keyed + "/health", headers={"host": host})
    assert (response.status_code == 200) is allowed, response.text
    if not allowed:
        assert response.status_code == 421 and assert_error_shape(response)["code"] == "bad_host"


def test_no_cors_unless_asked(served, model_and_folder) -> None:
    origin = {"origin": "https://evil.example"}
    assert "access-control-allow-origin" not in httpx.get(served + "/health", headers=origin).headers
    app = create_app(model_and_folder[0], "tiny", security=Security(cors_origins=("https://app.example",)))
    with running(app) as (url, _):
        preflight = httpx.options(
            url + "/embed",
            headers={"origin": "https://app.example", "access-control-request-method": "POST"},
        )
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        refused = httpx.get(url + "/health", headers=origin)
        assert "access-control-allow-origin" not in refused.headers


def test_the_model_folder_appears_nowhere(model_and_folder) -> None:
    model, folder = model_and_folder
    app = create_app(model, folder.name)
    with running(app) as (url, _):
        answers = [
            httpx.get(url + "/health").text,
            httpx.get(url + "/openapi.json").text,
            post(url + "/embed", b'{"texts": ["the dog runs"]}').text,
            post(url + "/v1/embeddings", b'{"input": "a"}').text,
            post(url + "/search", b'{"query": "a"}').text,
            httpx.get(url + "/nowhere").text,
        ]
    for answer in answers:
        assert str(folder) not in answer and str(folder.parent) not in answer, answer[:300]


# -------------------------------------------------------------------------------------------- bounded resources
def _slowed(app, seconds: float) -> None:
    real = app.state.batcher.encode
    seen: list[str] = []

    def slow(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        time.sleep(seconds)
        return real(texts)

    app.state.batcher.encode = slow
    app.state.seen = seen


def test_a_full_queue_answers_503_with_retry_after(model_and_folder) -> None:
    app = create_app(model_and_folder[0], "tiny", limits=Limits(max_queued=2), batch_wait_ms=1)
    _slowed(app, 0.5)

    async def run(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return await asyncio.gather(*(client.post("/embed", json={"texts": [w]}) for w in WORDS * 2))

    with running(app) as (url, _):
        responses = asyncio.run(run(url))
    busy = [r for r in responses if r.status_code == 503]
    assert busy and all(r.headers["retry-after"] == "1" for r in busy)
    assert all(error_of(r)["code"] == "overloaded" for r in busy)
    assert {r.status_code for r in responses} == {200, 503}


def test_deadlines_for_requests_and_bodies(model_and_folder) -> None:
    limits = Limits(request_timeout_s=1.0, body_timeout_s=0.3)
    app = create_app(model_and_folder[0], "tiny", limits=limits)
    _slowed(app, 1.5)
    with running(app) as (url, _):
        late = post(url + "/embed", b'{"texts": ["the dog runs"]}')
        assert late.status_code == 504 and error_of(late)["code"] == "timeout"
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"POST /embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n")
            raw.sendall(b'Content-Length: 100\r\n\r\n{"texts": ')
            answer = raw.recv(4096)
            while b'"}}' not in answer and (more := raw.recv(4096)):
                answer += more
        assert b" 408 " in answer.split(b"\r\n")[0] and b"body_timeout" in answer


def test_half_sent_heads_are_closed_and_do_not_block_shutdown(model_and_folder) -> None:
    app = create_app(model_and_folder[0], "tiny", limits=Limits(header_timeout_s=0.5, body_timeout_s=30))
    url, server, thread, sock = start(app)
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow_head:
        slow_head.sendall(b"POST /embed HTTP/1.1\r\nHost: local")
        begin = time.monotonic()
        assert slow_head.recv(100) == b""  # closed by the server
        assert time.monotonic() - begin < 3
    with socket.create_connection(("127.0.0.1", port), timeout=10) as half_body:
        half_body.sendall(b"POST /embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n")
        half_body.sendall(b"Content-Length: 100\r\n\r\n{")
        half_head = socket.create_connection(("127.0.0.1", port), timeout=10)
        half_head.sendall(b"GET /health HTTP/1.1\r\n")
        time.sleep(0.2)
        begin = time.monotonic()
        server.should_exit = True
        thread.join(timeout=15)
        elapsed = time.monotonic() - begin
        half_head.close()
    sock.close()
    assert not thread.is_alive() and elapsed < 5, elapsed


def test_the_head_deadline_spares_a_slow_answer_and_closes_an_idle_keep_alive(model_and_folder) -> None:
    """The deadline is for a request's head only: a request whose answer takes longer than it is answered, and the
    kept-alive connection is closed once the next head is that late (uvicorn alone would wait 5 s)."""
    app = create_app(model_and_folder[0], "tiny", limits=Limits(header_timeout_s=0.4))
    _slowed(app, 1.0)
    body = b'{"texts": ["the dog runs"]}'
    with running(app) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as kept:
            kept.sendall(
                b"POST /embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            answer = kept.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
            begin = time.monotonic()
            while kept.recv(65536):  # the rest of the answer, then nothing until the server closes
                pass
            assert time.monotonic() - begin < 3


def test_work_of_a_departed_client_is_dropped(model_and_folder) -> None:
    app = create_app(model_and_folder[0], "tiny", batch_wait_ms=1)
    _slowed(app, 0.8)

    async def run(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            blocker = asyncio.create_task(client.post("/embed", json={"texts": ["the dog runs"]}))
            await asyncio.sleep(0.2)  # the encoder is now busy with the blocker
            port = int(url.rsplit(":", 1)[1])
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            body = b'{"texts": ["departed words"]}'
            head = "POST /embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            head += f"Content-Length: {len(body)}\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.close()
            assert (await blocker).status_code == 200
            await asyncio.sleep(1.0)

    with running(app) as (url, _):
        asyncio.run(run(url))
        assert "departed words" not in app.state.seen
        assert app.state.batcher.stats.dropped == 1


def test_bounded_mixed_load_gives_each_good_request_its_own_rows(model_and_folder, reliability) -> None:
    """300 requests (1 in 6 bad) of 1 to 5 texts from 6 clients on 127.0.0.1, within 60 s: every good one succeeds
    with the embeddings of its own texts; every bad one gets its own 4xx."""
    model, _ = model_and_folder
    app = create_app(model, "tiny", limits=Limits(max_texts=8, max_chars=200), batch_wait_ms=5)
    total, clients = 300, 6
    latencies: list[float] = []
    problems: list[str] = []
    answers: list[tuple[list[str], list[list[float]]]] = []

    async def client_loop(worker: int, client: httpx.AsyncClient) -> None:
        for n in range(worker, total, clients):
            texts = [WORDS[(n + i) % 5] + f" {n}" * (i % 3) for i in range(1 + n % 5)]
            bad = n % 6 == 0
            body = json.dumps({"texts": [*texts, "\ud800"] if bad else texts}).encode()
            begin = time.perf_counter()
            response = await client.post("/embed", content=body, headers={"content-type": "application/json"})
            latencies.append(time.perf_counter() - begin)
            if bad and response.status_code != 400:
                problems.append(f"bad request answered {response.status_code}")
            elif not bad and response.status_code != 200:
                problems.append(f"good request answered {response.status_code}: {response.text[:100]}")
            elif not bad:
                answers.append((texts, response.json()["embeddings"]))

    async def run(url: str) -> float:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            begin = time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*(client_loop(w, client) for w in range(clients))), timeout=60)
            return time.perf_counter() - begin

    with running(app) as (url, _):
        elapsed = asyncio.run(run(url))
        stats = app.state.batcher.stats
    reliability.fuzz_case(total)
    # Compared after the server stopped: the model's tokenizer must not run on two threads at once.
    for texts, embeddings in answers:
        if not np.allclose(embeddings, model.encode(texts, normalize_embeddings=True), atol=1e-5):
            problems.append(f"a request for {texts} got rows that are not its own")
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    reliability.note(
        f"mixed HTTP load on the tiny model: {total} requests ({total - len(answers)} bad), {clients} clients: "
        f"{total / elapsed:.1f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, {len(answers)}/{total - total // 6} good "
        f"requests answered with their own rows, {stats.batches} batches"
    )
    assert not problems, problems[:3]
    assert len(answers) == total - len(range(0, total, 6))
    assert len(latencies) == total and stats.batches < stats.requests
