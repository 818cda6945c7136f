"""The HTTP service, started for real on a loopback port and driven with real HTTP clients."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from test_search_index import make_word_model_folder, sentences, write_lines

import isbert
from isbert.errors import IsbertError
from isbert.search.index import SearchIndex
from isbert.search.serve import Batcher, Limits, create_app

# A batcher that never answers (a `_collect` that waits for a partner for ever) would hang these tests, and under
# mutmut run until its wall bound, a timeout rather than a kill (`_collect_10` in the run at 3c7018b): each test ends
# at 60 s, far above its seconds here (the slowest, a subprocess, about 7 s in mutmut's stats pass).
pytestmark = pytest.mark.timeout(60)

TEXTS = sentences(60)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object, SearchIndex]]:
    """A uvicorn server in a thread, on a socket bound to 127.0.0.1 with a port chosen by the OS."""
    root = tmp_path_factory.mktemp("serve")
    folder = make_word_model_folder(root)
    model = isbert.load(folder, device="cpu")
    SearchIndex.build(root / "idx", model, str(folder), write_lines(root / "c.txt", TEXTS), show_progress=False)
    index = SearchIndex.open(root / "idx")
    app = create_app(model, "tiny-isbert", index=index, limits=Limits(max_texts=8, max_chars=200), batch_wait_ms=10)
    for url in _run_server(app):
        yield url, model, index


def _run_server(app) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_health_embed_similarity(served) -> None:
    url, model, _ = served
    with httpx.Client(base_url=url, timeout=30) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["dimension"] == 24 and health["index"]["size"] == 60
        body = client.post("/embed", json={"texts": TEXTS[:3]}).json()
        vectors = np.asarray(body["embeddings"])
        want = model.encode(TEXTS[:3], normalize_embeddings=True)
        np.testing.assert_allclose(vectors, want, atol=1e-5)
        assert body["truncated"] == []
        scores = client.post("/similarity", json={"a": TEXTS[0], "b": [TEXTS[0], TEXTS[1]]}).json()["scores"]
        assert np.asarray(scores).shape == (1, 2) and scores[0][0] == pytest.approx(1.0, abs=1e-5)
        assert scores[0][1] < scores[0][0]


def test_search_returns_the_indexed_sentence_first(served) -> None:
    url, _, _ = served
    with httpx.Client(base_url=url, timeout=30) as client:
        single = client.post("/search", json={"query": TEXTS[11], "k": 3}).json()["results"]
        assert single["hits"][0]["text"] == TEXTS[11] and len(single["hits"]) == 3 and not single["truncated"]
        many = client.post("/search", json={"queries": TEXTS[20:24], "k": 1}).json()["results"]
        assert [r["hits"][0]["text"] for r in many] == TEXTS[20:24]
        long_query = " ".join(["the dog runs"] * 10)
        assert client.post("/search", json={"query": long_query, "k": 1}).json()["results"]["truncated"] is True


def test_openai_embeddings_shape_and_the_openai_client(served) -> None:
    url, model, _ = served
    with httpx.Client(base_url=url, timeout=30) as client:
        body = client.post("/v1/embeddings", json={"input": TEXTS[:2], "model": "text-embedding-3-small"}).json()
        assert body["object"] == "list" and body["model"] == "tiny-isbert"
        assert [item["object"] for item in body["data"]] == ["embedding", "embedding"]
        assert [item["index"] for item in body["data"]] == [0, 1] and len(body["data"][0]["embedding"]) == 24
        assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
        packed = client.post("/v1/embeddings", json={"input": TEXTS[0], "encoding_format": "base64"}).json()
        decoded = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
        np.testing.assert_allclose(decoded, body["data"][0]["embedding"], atol=1e-6)
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    response = client.embeddings.create(model="anything", input=TEXTS[:3])
    got = np.asarray([item.embedding for item in response.data])
    np.testing.assert_allclose(got, model.encode(TEXTS[:3], normalize_embeddings=True), atol=1e-5)
    with pytest.raises(openai.APIStatusError) as raised:
        client.embeddings.create(model="anything", input="")
    assert raised.value.status_code == 400


@pytest.mark.parametrize(
    ("path", "content", "status", "code"),
    [
        ("/embed", b'{"texts": ["a", ', 400, "invalid_json"),
        ("/embed", b'{"texts": ["caf\xe9"]}', 400, "invalid_encoding"),
        ("/embed", b"[1, 2]", 400, "invalid_json"),
        ("/embed", b"", 400, "invalid_json"),
        ("/embed", b'{"texts": []}', 400, "invalid_type"),
        ("/embed", b'{"texts": ["ok", "  "]}', 400, "empty_text"),
        ("/embed", b'{"texts": ["' + b"x" * 201 + b'"]}', 413, "text_too_long"),
        ("/embed", b'{"texts": [' + b",".join([b'"a"'] * 9) + b"]}", 413, "too_many_texts"),
        ("/embed", b'{"texts": ["' + b"x" * 200_000 + b'"]}', 413, "body_too_large"),
        ("/search", b'{"query": ""}', 400, "empty_text"),
        ("/search", b'{"query": "dog", "k": 0}', 400, "invalid_k"),
        ("/v1/embeddings", b'{"input": [[1, 2, 3]]}', 400, "invalid_type"),
        ("/v1/embeddings", b'{"input": "a", "encoding_format": "int8"}', 400, "invalid_encoding_format"),
        ("/v1/embeddings", b'{"model": "x"}', 400, "missing_field"),
    ],
)
def test_bad_requests_get_clear_answers(served, path: str, content: bytes, status: int, code: str) -> None:
    url, _, _ = served
    response = httpx.post(url + path, content=content, headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["type"] == "invalid_request_error" and error["message"]


def test_an_index_from_another_model_is_refused(served, tmp_path: Path) -> None:
    _, _, index = served
    other = isbert.load(make_word_model_folder(tmp_path, seed=3), device="cpu")
    with pytest.raises(IsbertError, match="not the model the index"):
        create_app(other, "other", index=index)


def test_bounded_load(served) -> None:
    """200 requests from 4 concurrent clients: none fails, concurrent requests are batched, stats are reported."""
    url, _, _ = served
    total, clients = 200, 4
    latencies: list[float] = []
    failures: list[str] = []

    async def client_loop(worker: int, client: httpx.AsyncClient) -> None:
        for n in range(worker, total, clients):
            body = {"input": [TEXTS[n % len(TEXTS)], TEXTS[(n * 7) % len(TEXTS)]], "model": "m"}
            start = time.perf_counter()
            response = await client.post("/v1/embeddings", json=body)
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200 or len(response.json()["data"]) != 2:
                failures.append(f"{response.status_code}: {response.text[:100]}")

    async def run() -> float:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            before = (await client.get("/health")).json()["batching"]
            start = time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*(client_loop(w, client) for w in range(clients))), timeout=120)
            elapsed = time.perf_counter() - start
            after = (await client.get("/health")).json()["batching"]
        batches = after["batches"] - before["batches"]
        requests = after["requests"] - before["requests"]
        assert requests == total and batches < total, (batches, requests)
        return elapsed

    elapsed = asyncio.run(run())
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    print(
        f"\nload: {total} requests, {clients} clients: {total / elapsed:.1f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    assert not failures, failures[:3]
    assert len(latencies) == total and p50 <= p99


def test_the_serve_command_runs_on_loopback(tmp_path: Path) -> None:
    folder = make_word_model_folder(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "isbert", "serve", str(folder), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the server did not start in 60 s"
                time.sleep(0.2)
        assert health.json()["index"] is None
        response = httpx.post(f"http://127.0.0.1:{port}/v1/embeddings", json={"input": "hi", "model": "m"})
        assert response.status_code == 200 and len(response.json()["data"][0]["embedding"]) == 24
        assert httpx.post(f"http://127.0.0.1:{port}/search", json={"query": "hi"}).status_code == 404
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::"])
def test_binding_beyond_loopback_without_a_key_is_refused(host: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from isbert.cli import main

    monkeypatch.delenv("ISBERT_API_KEY", raising=False)
    assert main(["serve", "no-such-model", "--host", host]) == 2
    message = capsys.readouterr().err.strip()
    assert "--insecure-no-api-key" in message and "\n" not in message


def test_merged_batches_stay_within_max_batch() -> None:
    """Kills batcher-size-not-counted: however many requests are queued, a merged batch stops at max_batch texts."""
    sizes: list[int] = []

    def encode(texts: list[str]) -> np.ndarray:
        sizes.append(len(texts))
        return np.asarray([[float(len(text))] for text in texts], dtype=np.float32)

    async def run() -> list[np.ndarray]:
        batcher = Batcher(encode, max_batch=4, batch_wait_s=0.05)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(["x" * n]) for n in range(1, 11)))
        await batcher.stop()
        return results

    results = asyncio.run(run())
    assert [float(row[0, 0]) for row in results] == [float(n) for n in range(1, 11)]  # each request its own row
    assert sum(sizes) == 10 and max(sizes) <= 4, sizes


def test_search_modes_and_filters_over_http(served) -> None:
    url, _, _ = served
    with httpx.Client(base_url=url, timeout=30) as client:
        for mode in ("keyword", "hybrid"):
            answer = client.post("/search", json={"query": TEXTS[7], "k": 2, "mode": mode, "source": "c.txt"})
            assert answer.status_code == 200 and answer.json()["results"]["hits"][0]["text"] == TEXTS[7], mode
        nothing = client.post("/search", json={"query": TEXTS[7], "mode": "hybrid", "source": "other.txt"})
        assert nothing.status_code == 200 and nothing.json()["results"]["hits"] == []
        for hostile in ['"', 'a" OR "b', "NEAR(a b)", "*", "col:man", "-the", "(((", "\u00e9\u0301 ^x"]:
            answer = client.post("/search", json={"query": hostile, "mode": "keyword"})
            assert answer.status_code == 200, (hostile, answer.text)
        for body, code in [
            ({"query": "x", "mode": "fuzzy"}, "invalid_mode"),
            ({"query": "x", "source": 5}, "invalid_source"),
            ({"query": "x", "source": "a" * 5000}, "invalid_source"),
            ({"query": "x", "k": 10**9}, "invalid_k"),
        ]:
            answer = client.post("/search", json=body)
            assert answer.status_code == 400 and answer.json()["error"]["code"] == code


def _wait_for_more_answers(codes: list[int], seen: int, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while len(codes) <= seen:
        assert time.monotonic() < deadline, "the search thread answered nothing for 30 s"
        time.sleep(0.005)


def test_a_served_index_keeps_answering_while_another_process_writes(tmp_path: Path) -> None:
    """Issue 29 item 4: `index add` and `index delete` (here a second SearchIndex on the folder, as another process
    would) beside a running service: every search answers 200, and new texts are found once committed."""
    folder = make_word_model_folder(tmp_path / "m")
    model = isbert.load(folder, device="cpu")
    SearchIndex.build(tmp_path / "idx", model, str(folder), write_lines(tmp_path / "c.txt", TEXTS), show_progress=False)
    app = create_app(model, "tiny-isbert", index=SearchIndex.open(tmp_path / "idx"), batch_wait_ms=1)
    writer = SearchIndex.open(tmp_path / "idx")
    codes: list[int] = []
    stop = threading.Event()
    extra = sentences(12, offset=70)
    for url in _run_server(app):

        def search_forever(url: str) -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                while not stop.is_set():
                    for mode in ("vector", "hybrid"):
                        codes.append(client.post("/search", json={"query": TEXTS[3], "mode": mode}).status_code)

        thread = threading.Thread(target=search_forever, args=(url,))
        thread.start()
        try:
            for step in range(4):
                # Each write waits for a search answered since the last one, so searches and writes interleave
                # whatever the machine's speed (on a fast one the writes once finished before the first search).
                _wait_for_more_answers(codes, seen=len(codes))
                part = write_lines(tmp_path / f"w{step}.txt", extra[3 * step : 3 * step + 3])
                writer.add(model, part, show_progress=False)
                if step % 2:
                    writer.delete(source=f"w{step}.txt")
            _wait_for_more_answers(codes, seen=len(codes))
        finally:
            stop.set()
            thread.join()
        with httpx.Client(base_url=url, timeout=30) as client:
            hits = client.post("/search", json={"query": extra[7], "k": 1}).json()["results"]["hits"]
            assert hits[0]["source"] == "w2.txt:2"
            assert client.get("/health").json()["index"]["size"] == 66
    assert codes and set(codes) == {200}


def test_an_index_rebuilt_with_another_model_under_the_service_is_a_json_503(tmp_path: Path) -> None:
    folder = make_word_model_folder(tmp_path / "m")
    model = isbert.load(folder, device="cpu")
    corpus = write_lines(tmp_path / "c.txt", TEXTS[:20])
    SearchIndex.build(tmp_path / "idx", model, str(folder), corpus, show_progress=False)
    app = create_app(model, "tiny-isbert", index=SearchIndex.open(tmp_path / "idx"), batch_wait_ms=1)
    other = isbert.load(make_word_model_folder(tmp_path / "other", seed=4), device="cpu")
    for url in _run_server(app):
        SearchIndex.build(tmp_path / "idx", other, "other", corpus, overwrite=True, show_progress=False)
        with httpx.Client(base_url=url, timeout=30) as client:
            answer = client.post("/search", json={"query": TEXTS[1], "mode": "hybrid"})
            assert answer.status_code == 503 and answer.json()["error"]["code"] == "index_unavailable"
            assert "another model" in answer.json()["error"]["message"]
            assert client.get("/health").status_code == 200
