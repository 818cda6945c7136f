"""The HTTP service: embeddings, similarity and search over a model (and optionally an index), with FastAPI.

Endpoints (JSON in, JSON out; errors are ``{"error": {"message", "type", "code"}}`` as in the OpenAI API):

- ``GET /health``: model, dimension, index size, and batching counters;
- ``POST /embed`` ``{"texts": [...], "normalize": true}``;
- ``POST /similarity`` ``{"a": [...], "b": [...]}``: the ``len(a) x len(b)`` cosine matrix;
- ``POST /search`` ``{"query": "..."}`` or ``{"queries": [...]}``, ``"k": 10`` (needs ``--index``);
- ``POST /v1/embeddings``: the OpenAI embeddings API (``input`` a string or a list of strings,
  ``encoding_format`` ``float`` or ``base64``), so OpenAI clients work by changing only their base URL.

Why bodies are parsed by hand: a malformed JSON body, a body that is not UTF-8 and a request over the limits must
get a clear 400 or 413 answer, not a framework default (422) or a crash; limits are checked before any work.

Why a batcher: the model is fastest on batches and can only run one at a time; concurrent requests are queued,
merged into one batch (up to ``max_batch`` texts, waiting at most ``batch_wait_ms`` for company), encoded in a
single worker thread, and their rows handed back. The tokenizer also runs only in that thread, because Hugging Face
fast tokenizers must not be used from two threads at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sentence_transformers import SentenceTransformer

from isbert.search.index import SearchIndex


@dataclass
class Limits:
    """Per-request limits: answered with 413 before any work is done."""

    max_texts: int = 256
    max_chars: int = 10_000
    max_k: int = 1000
    max_body_bytes: int = 0  # 0: derived from max_texts and max_chars

    def body_limit(self) -> int:
        return self.max_body_bytes or self.max_texts * (self.max_chars * 6 + 16) + 65_536


class RequestError(Exception):
    """A bad request, answered with ``status`` and an OpenAI-style error body."""

    def __init__(self, status: int, message: str, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass
class Encoded:
    """Raw embeddings and token counts (special tokens included) of a request's texts."""

    vectors: np.ndarray
    tokens: list[int]


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future[Encoded]


@dataclass
class BatchStats:
    requests: int = 0
    batches: int = 0
    texts: int = 0
    largest_batch: int = 0


@dataclass
class Batcher:
    """Merge concurrent encode requests into batches run one at a time on a single worker thread."""

    encode: Callable[[list[str]], Encoded]
    max_batch: int = 64
    batch_wait_s: float = 0.005
    stats: BatchStats = field(default_factory=BatchStats)

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="isbert-encode")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True)

    async def submit(self, texts: list[str]) -> Encoded:
        if self._queue is None:
            raise RuntimeError("the batcher is not running")
        future: asyncio.Future[Encoded] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(texts, future))
        return await future

    async def run_in_worker(self, function: Callable[[], Any]) -> Any:
        """Run other model-thread work (the fingerprint check) on the encode thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            count = len(batch[0].texts)
            deadline = loop.time() + self.batch_wait_s
            while count < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self._queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                batch.append(job)
                count += len(job.texts)
            texts = [text for job in batch for text in job.texts]
            try:
                encoded = await loop.run_in_executor(self._executor, self.encode, texts)
            except Exception as error:
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            self.stats.requests += len(batch)
            self.stats.batches += 1
            self.stats.texts += len(texts)
            self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
            start = 0
            for job in batch:
                end = start + len(job.texts)
                if not job.future.done():
                    job.future.set_result(Encoded(encoded.vectors[start:end], encoded.tokens[start:end]))
                start = end


def model_encoder(model: SentenceTransformer, batch_size: int = 32) -> Callable[[list[str]], Encoded]:
    """Raw (unnormalized) embeddings and untruncated token counts; runs on the batcher's thread only."""

    def encode(texts: list[str]) -> Encoded:
        vectors = model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        tokenizer = getattr(model, "tokenizer", None)
        if tokenizer is None:
            tokens = [len(text.split()) for text in texts]
        else:
            tokens = list(tokenizer(texts, add_special_tokens=True, truncation=False, return_length=True)["length"])
        return Encoded(np.asarray(vectors, dtype=np.float32), [int(n) for n in tokens])

    return encode


def _normalize(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


# ------------------------------------------------------------------------------------------ request validation
async def read_json(request: Request, limits: Limits) -> dict[str, Any]:
    """The request body as a JSON object, or a 413 (too large) / 400 (not UTF-8, not JSON, not an object)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.body_limit():
        raise RequestError(413, f"request body of {declared} bytes exceeds {limits.body_limit()}", "body_too_large")
    body = b""
    async for piece in request.stream():
        body += piece
        if len(body) > limits.body_limit():
            raise RequestError(413, f"request body exceeds {limits.body_limit()} bytes", "body_too_large")
    if not body:
        raise RequestError(400, "empty request body; send a JSON object", "invalid_json")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(
            400,
            f"request body is not valid UTF-8 (byte 0x{body[error.start]:02x} at offset {error.start})",
            "invalid_encoding",
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(
            400, f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}", "invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise RequestError(400, f"expected a JSON object, got {type(data).__name__}", "invalid_json")
    return data


def text_list(data: dict[str, Any], name: str, limits: Limits, *, allow_single: bool = False) -> list[str]:
    """A non-empty list of non-empty strings within the limits, from field ``name``."""
    if name not in data:
        raise RequestError(400, f"missing field {name!r}", "missing_field")
    value = data[name]
    if allow_single and isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise RequestError(400, f"field {name!r} must be a non-empty list of strings", "invalid_type")
    if len(value) > limits.max_texts:
        raise RequestError(
            413, f"{len(value)} texts in {name!r}; at most {limits.max_texts} per request", "too_many_texts"
        )
    for position, text in enumerate(value):
        if not isinstance(text, str):
            hint = " (token arrays are not supported; send text)" if isinstance(text, (int, list)) else ""
            raise RequestError(400, f"{name}[{position}] is {type(text).__name__}, not a string{hint}", "invalid_type")
        if not text.strip():
            raise RequestError(400, f"{name}[{position}] is empty", "empty_text")
        if len(text) > limits.max_chars:
            raise RequestError(
                413, f"{name}[{position}] has {len(text)} characters; at most {limits.max_chars}", "text_too_long"
            )
    return value


def _error_response(status: int, message: str, code: str) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status)


# --------------------------------------------------------------------------------------------------- the app
def create_app(
    model: SentenceTransformer,
    model_name: str,
    *,
    index: SearchIndex | None = None,
    limits: Limits | None = None,
    max_batch: int = 64,
    batch_wait_ms: float = 5.0,
    batch_size: int = 32,
) -> FastAPI:
    """The FastAPI application. An index built with another model is refused here (IsbertError)."""
    limits = limits or Limits()
    if index is not None:
        index.check_model(model, model_name)
    dimension = int(model.get_embedding_dimension() or 0)
    max_tokens = int(model.max_seq_length or 0)
    batcher = Batcher(model_encoder(model, batch_size), max_batch=max_batch, batch_wait_s=batch_wait_ms / 1000)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="isbert", summary=f"sentence embeddings from {model_name}", lifespan=lifespan)
    app.state.batcher = batcher
    app.state.limits = limits

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, error: RequestError) -> JSONResponse:
        return _error_response(error.status, error.message, error.code)

    def truncated(tokens: list[int]) -> list[int]:
        return [i for i, n in enumerate(tokens) if max_tokens and n > max_tokens]

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": model_name,
            "dimension": dimension,
            "max_tokens": max_tokens,
            "index": None if index is None else {"size": len(index), "kind": index.manifest["spec"]["kind"]},
            "limits": {"max_texts": limits.max_texts, "max_chars": limits.max_chars, "max_k": limits.max_k},
            "batching": vars(batcher.stats).copy(),
        }

    @app.post("/embed")
    async def embed(request: Request) -> dict[str, Any]:
        data = await read_json(request, limits)
        texts = text_list(data, "texts", limits)
        normalize = data.get("normalize", True)
        if not isinstance(normalize, bool):
            raise RequestError(400, "field 'normalize' must be true or false", "invalid_type")
        encoded = await batcher.submit(texts)
        vectors = _normalize(encoded.vectors) if normalize else encoded.vectors
        return {
            "model": model_name,
            "dimension": dimension,
            "embeddings": vectors.tolist(),
            "truncated": truncated(encoded.tokens),
        }

    @app.post("/similarity")
    async def similarity(request: Request) -> dict[str, Any]:
        data = await read_json(request, limits)
        first = text_list(data, "a", limits, allow_single=True)
        second = text_list(data, "b", limits, allow_single=True)
        if len(first) + len(second) > limits.max_texts:
            raise RequestError(
                413, f"{len(first) + len(second)} texts; at most {limits.max_texts} per request", "too_many_texts"
            )
        encoded = await batcher.submit(first + second)
        vectors = _normalize(encoded.vectors)
        scores = vectors[: len(first)] @ vectors[len(first) :].T
        return {"model": model_name, "scores": scores.tolist(), "truncated": truncated(encoded.tokens)}

    @app.post("/search")
    async def search(request: Request) -> dict[str, Any]:
        if index is None:
            raise RequestError(404, "this server has no index; start it with --index DIR", "no_index")
        data = await read_json(request, limits)
        single = "query" in data
        if single and "queries" in data:
            raise RequestError(400, "send either 'query' or 'queries', not both", "invalid_request")
        queries = text_list(data, "query" if single else "queries", limits, allow_single=single)
        k = data.get("k", 10)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= limits.max_k:
            raise RequestError(400, f"'k' must be a whole number from 1 to {limits.max_k}", "invalid_k")
        encoded = await batcher.submit(queries)
        vectors = _normalize(encoded.vectors).astype(np.float32)
        loop = asyncio.get_running_loop()
        scores, ids = await loop.run_in_executor(None, index.search_vectors, vectors, k)
        hits = await loop.run_in_executor(None, index.hits, scores, ids)
        cut = set(truncated(encoded.tokens))
        results = [
            {"query": query, "truncated": i in cut, "hits": [hit.as_dict() for hit in row]}
            for i, (query, row) in enumerate(zip(queries, hits, strict=True))
        ]
        return {"model": model_name, "k": k, "results": results[0] if single else results}

    @app.post("/v1/embeddings")
    async def openai_embeddings(request: Request) -> JSONResponse:
        data = await read_json(request, limits)
        texts = text_list(data, "input", limits, allow_single=True)
        encoding = data.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise RequestError(400, "'encoding_format' must be 'float' or 'base64'", "invalid_encoding_format")
        wanted = data.get("dimensions")
        if wanted is not None and wanted != dimension:
            raise RequestError(400, f"this model makes {dimension}-d embeddings; 'dimensions' {wanted!r}", "invalid")
        encoded = await batcher.submit(texts)
        vectors = _normalize(encoded.vectors).astype("<f4")
        items = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(row.tobytes()).decode("ascii") if encoding == "base64" else row.tolist(),
            }
            for i, row in enumerate(vectors)
        ]
        used = int(sum(min(n, max_tokens) if max_tokens else n for n in encoded.tokens))
        cut = truncated(encoded.tokens)
        return JSONResponse(
            {
                "object": "list",
                "data": items,
                "model": model_name,
                "usage": {"prompt_tokens": used, "total_tokens": used},
            },
            headers={"X-Isbert-Truncated": ",".join(map(str, cut))} if cut else None,
        )

    return app


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning") -> None:
    """Run the app with uvicorn until interrupted."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)
    server = uvicorn.Server(config)
    print(f"isbert serve: listening on http://{host}:{port} (Ctrl-C to stop)", flush=True)
    server.run()
