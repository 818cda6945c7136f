"""The HTTP service: embeddings, similarity and search over a model (and optionally an index), with FastAPI.

Endpoints (JSON in, JSON out; errors are ``{"error": {"message", "type", "param", "code"}}`` as in the OpenAI API):

- ``GET /health``: model, dimension, index size, and batching counters (open without the API key);
- ``POST /embed`` ``{"texts": [...], "normalize": true}``;
- ``POST /similarity`` ``{"a": [...], "b": [...]}``: the ``len(a) x len(b)`` cosine matrix;
- ``POST /search`` ``{"query": "..."}`` or ``{"queries": [...]}``, ``"k": 10``, ``"mode"`` ``vector`` (default),
  ``keyword`` or ``hybrid``, ``"source"`` a file label to search within (needs ``--index``);
- ``POST /v1/embeddings``: the OpenAI embeddings API (``input`` a string or a list of strings,
  ``encoding_format`` ``float`` or ``base64``), so OpenAI clients work by changing only their base URL.

Threat model: request bodies and headers are hostile. Every request is checked (Host, API key, content type)
before its body is read, and every text is validated (UTF-8 encodable, no NUL, within the character and token
limits) before it joins a batch, so one caller cannot fail another's request; work is bounded (queue, body and
header read deadlines, a per-request deadline) and a client that has gone is not computed. Responses name the
model by a display name, never its folder. TLS and per-client rate limits are left to a reverse proxy.

Why bodies are parsed by hand: a malformed JSON body, a body that is not UTF-8 and a request over the limits must
get a clear 400 or 413 answer, not a framework default (422) or a crash; limits are checked before any work.

Why a batcher: the model is fastest on batches and can only run one at a time; concurrent requests are queued,
merged into one batch (up to ``max_batch`` texts, waiting at most ``batch_wait_ms`` for company), encoded in a
single worker thread, and their rows handed back. If a merged batch fails, its requests are encoded one by one
so that only the failing one gets an error.

Why tokens are counted on a private tokenizer copy: Hugging Face fast tokenizers must not be used from two threads
at once, and counting on the encode thread would make each request wait behind the batch being encoded; a copy on
its own single thread counts tokens (and finds text the tokenizer cannot read) before the request is queued.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import functools
import hmac
import ipaddress
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sentence_transformers import SentenceTransformer
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from isbert.errors import IsbertError, contained, printable

if TYPE_CHECKING:  # the service runs without faiss when no --index is given
    from isbert.search.index import SearchIndex

LOGGER = logging.getLogger("isbert.serve")
PARSE_OFF_LOOP_BYTES = 65_536  # bodies above this are decoded and parsed on a worker thread, not the event loop
OPEN_PATHS = frozenset({"/health"})  # answered without the API key (liveness probes); they reveal no data
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass
class Limits:
    """Per-request and per-server bounds: a request over them is refused before any work is done."""

    max_texts: int = 256
    max_chars: int = 10_000
    max_k: int = 1000
    max_body_bytes: int = 0  # 0: derived from max_texts and max_chars
    max_json_values: int = 0  # 0: derived from max_texts; bounds the parse's cost (see _check_json_size)
    max_tokens: int = 100_000  # untruncated tokens (special tokens included) per request
    max_queued: int = 64  # requests waiting for or in the encoder; more get 503 + Retry-After
    request_timeout_s: float = 60.0  # a request's whole life, body read and encoding included: 504 after
    body_timeout_s: float = 10.0  # reading the body: 408 after
    header_timeout_s: float = 10.0  # receiving a request's head (slowloris): the connection is closed after
    shutdown_timeout_s: float = 3.0  # from SIGTERM to exit; running requests get a 503 before it (see Drain)

    def body_limit(self) -> int:
        return self.max_body_bytes or self.max_texts * (self.max_chars * 6 + 16) + 65_536

    def json_value_limit(self) -> int:
        return self.max_json_values or 4 * self.max_texts + 1024


@dataclass
class Security:
    """Who may call: the API key, the Host names accepted (DNS rebinding) and the browser origins allowed (CORS)."""

    api_key: str | None = None  # None: no authentication (only sensible on loopback)
    check_host: bool = True  # refuse Host headers that are not loopback names or in allowed_hosts
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()  # empty: no CORS headers, so browsers cannot read answers cross-origin


class RequestError(Exception):
    """A request refused with ``status`` and an OpenAI-style error body."""

    def __init__(
        self, status: int, message: str, code: str = "invalid_request", headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers


class Drain:
    """Graceful shutdown within ``seconds`` of SIGTERM (or Ctrl-C): from the signal on, new requests get a JSON
    503 ``shutting_down``; running ones may finish until ``seconds`` less a margin (at most 1 s, for the answers
    to go out), then they get the same 503, and the server stops. A second signal stops it at once."""

    def __init__(self, seconds: float) -> None:
        self.margin = min(1.0, seconds / 2)
        self.grace = seconds - self.margin
        self.started = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._over: asyncio.Event | None = None

    def attach(self) -> None:
        """Remember the server's event loop (called on it at startup); an event of that loop marks the end."""
        self._loop = asyncio.get_running_loop()
        self._over = asyncio.Event()  # one per startup: an app started again (a test client) runs on a new loop

    def begin(self, stop: Callable[[], None]) -> None:
        """Start draining, then call ``stop`` once the grace has passed; safe to call from a signal handler."""
        if self.started or self._loop is None:
            stop()
            return
        self.started = True
        self._loop.call_soon_threadsafe(self._loop.call_later, self.grace, self._end, stop)

    def _end(self, stop: Callable[[], None]) -> None:
        if self._over is not None:
            self._over.set()
        stop()

    async def over(self) -> None:
        """Return when the grace of a shutdown is over (never, on an app whose startup did not run)."""
        await (asyncio.get_running_loop().create_future() if self._over is None else self._over.wait())


def shutting_down() -> RequestError:
    return RequestError(
        503, "the server is shutting down; retry shortly", "shutting_down", {"Retry-After": "1", "Connection": "close"}
    )


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future[np.ndarray]


@dataclass
class BatchStats:
    requests: int = 0
    batches: int = 0
    texts: int = 0
    largest_batch: int = 0
    dropped: int = 0  # requests whose client left (or whose deadline passed) before they were encoded
    split_batches: int = 0  # merged batches that failed and were retried request by request
    failed: int = 0  # requests whose texts failed to encode even alone


@dataclass
class Batcher:
    """Merge concurrent encode requests into batches run one at a time on a single worker thread."""

    encode: Callable[[list[str]], np.ndarray]
    max_batch: int = 64
    batch_wait_s: float = 0.005
    max_queued: int = 0  # 0: unbounded
    stats: BatchStats = field(default_factory=BatchStats)

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="isbert-encode")
        self.pending = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        # Not waiting: a batch still encoding must not hold the exit past the shutdown timeout (its requests have
        # been answered 503 already); the thread ends with the process.
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, texts: list[str]) -> np.ndarray:
        """The raw embeddings of ``texts``; 503 when ``max_queued`` requests are already waiting."""
        if self._queue is None:
            raise RuntimeError("the batcher is not running")
        if self.max_queued and self.pending >= self.max_queued:
            raise RequestError(
                503, f"server busy: {self.pending} requests queued; retry shortly", "overloaded", {"Retry-After": "1"}
            )
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self.pending += 1
        try:
            await self._queue.put(_Job(texts, future))
            return await future  # cancelling this cancels the future, and the worker then skips the job
        finally:
            self.pending -= 1

    async def run_in_worker(self, function: Callable[[], Any]) -> Any:
        """Run other model-thread work (the fingerprint check) on the encode thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    async def _run(self) -> None:
        while True:
            collected = await self._collect()
            live = [job for job in collected if not job.future.done()]  # a done future: its client left
            self.stats.dropped += len(collected) - len(live)
            if live:
                await self._encode_batch(live)

    async def _collect(self) -> list[_Job]:
        """The next batch: the first queued job and whatever joins it within ``batch_wait_s``, up to max_batch."""
        assert self._queue is not None  # nosec B101 # set in start() before any request; narrows the type
        loop = asyncio.get_running_loop()
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
        return batch

    async def _encode_batch(self, batch: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        texts = [text for job in batch for text in job.texts]
        try:
            vectors = await loop.run_in_executor(self._executor, self.encode, texts)
        except BaseException as error:  # a Rust panic too: it must fail its request, not the batcher
            if not contained(error):
                raise
            if len(batch) == 1:
                self._fail(batch[0], error)
                return
            # One request's texts must not fail the others merged with it: retry each alone.
            self.stats.split_batches += 1
            for job in batch:
                if not job.future.done():
                    await self._encode_batch([job])
            return
        self.stats.requests += len(batch)
        self.stats.batches += 1
        self.stats.texts += len(texts)
        self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
        start = 0
        for job in batch:
            end = start + len(job.texts)
            if not job.future.done():
                job.future.set_result(vectors[start:end])
            start = end

    def _fail(self, job: _Job, error: BaseException) -> None:
        self.stats.failed += 1
        LOGGER.error("encoding a request of %d texts failed", len(job.texts), exc_info=error)
        if not isinstance(error, Exception):  # a panic: an ordinary error for the handler (a JSON 500)
            error = RuntimeError(f"the encoder panicked: {printable(str(error))[:200]}")
        if not job.future.done():
            job.future.set_exception(error)


def model_encoder(model: SentenceTransformer, batch_size: int = 32) -> Callable[[list[str]], np.ndarray]:
    """Raw (unnormalized) float32 embeddings; runs on the batcher's thread only."""

    def encode(texts: list[str]) -> np.ndarray:
        vectors = model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    return encode


class TokenCounter:
    """Untruncated token counts (special tokens included) from a private copy of the model's tokenizer.

    The copy runs on its own single thread (see the module docstring); a model without a tokenizer counts words.
    """

    def __init__(self, model: SentenceTransformer) -> None:
        tokenizer = getattr(model, "tokenizer", None)
        self._tokenizer = None if tokenizer is None else copy.deepcopy(tokenizer)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="isbert-tokenize")

    def count(self, texts: list[str]) -> list[int]:
        if self._tokenizer is None:
            return [len(text.split()) for text in texts]
        lengths = self._tokenizer(texts, add_special_tokens=True, truncation=False, return_length=True)["length"]
        return [int(n) for n in lengths]

    async def count_checked(self, texts: list[str], limits: Limits) -> list[int]:
        """Token counts, or 400 for text the tokenizer cannot read and 413 over ``limits.max_tokens``."""
        loop = asyncio.get_running_loop()
        try:
            tokens = await loop.run_in_executor(self._executor, self.count, texts)
        except BaseException as error:  # the texts passed validation; whatever the tokenizer refuses is theirs
            if not contained(error):  # (a Rust panic included), but never an interrupt
                raise
            LOGGER.warning("the tokenizer refused a request: %s", error)
            raise RequestError(400, "the tokenizer cannot read these texts", "invalid_text") from None
        total = sum(tokens)
        if limits.max_tokens and total > limits.max_tokens:
            raise RequestError(413, f"{total} tokens in this request; at most {limits.max_tokens}", "too_many_tokens")
        return tokens

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _normalize(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


# ------------------------------------------------------------------------------------------ request validation
async def read_json(request: Request, limits: Limits) -> dict[str, Any]:
    """The request body as a JSON object, or 413 (too large), 408 (too slow) or 400 (not UTF-8, JSON, an object)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.body_limit():
        raise RequestError(413, f"request body of {declared} bytes exceeds {limits.body_limit()}", "body_too_large")
    try:
        body = await asyncio.wait_for(_read_body(request, limits.body_limit()), limits.body_timeout_s)
    except asyncio.TimeoutError:
        raise RequestError(
            408, f"request body not received within {limits.body_timeout_s:g} s", "body_timeout"
        ) from None
    except ClientDisconnect:
        raise RequestError(400, "the client closed the connection while sending the body", "client_closed") from None
    if not body:
        raise RequestError(400, "empty request body; send a JSON object", "invalid_json")
    if len(body) > PARSE_OFF_LOOP_BYTES:  # a large parse would stall every other request (and /health)
        data = await asyncio.get_running_loop().run_in_executor(None, _parse_json, body, limits.json_value_limit())
    else:
        data = _parse_json(body, limits.json_value_limit())
    if not isinstance(data, dict):
        raise RequestError(400, f"expected a JSON object, got {type(data).__name__}", "invalid_json")
    return data


async def _read_body(request: Request, limit: int) -> bytes:
    pieces: list[bytes] = []
    size = 0
    async for piece in request.stream():
        pieces.append(piece)
        size += len(piece)
        if size > limit:
            raise RequestError(413, f"request body exceeds {limit} bytes", "body_too_large")
    return b"".join(pieces)


def _check_json_size(body: bytes, limit: int) -> None:
    """413 for a body of more than ``limit`` JSON values, found without parsing it, in linear time.

    Why: the parser holds the GIL, so a 15 MB body of a million tiny objects would stall every request for seconds
    even on a worker thread; a legitimate request has a few values per text. Escaped backslashes, then escaped
    quotes, removed left to right leave exactly the quotes that open and close strings (in the valid prefix the
    parser reads; after it, the parse fails fast), so those quotes bound the strings, and the separators between
    them bound the other values. Only ``bytes`` methods (C loops, no regular expression that could rescan the body
    from every quote of an unclosed string) touch the body, and at most ``2 * limit`` pieces are made.
    """
    plain = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    quotes = plain.count(b'"')
    outside = b"".join(plain.split(b'"')[0::2]) if quotes <= 2 * limit else b""
    values = (quotes + 1) // 2 + sum(outside.count(mark) for mark in (b",", b":", b"[", b"{"))
    if quotes > 2 * limit or values > limit:
        raise RequestError(413, f"request body holds too many JSON values (at most {limit})", "too_many_values")


def _parse_json(body: bytes, value_limit: int) -> Any:
    _check_json_size(body, value_limit)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(
            400,
            f"request body is not valid UTF-8 (byte 0x{body[error.start]:02x} at offset {error.start})",
            "invalid_encoding",
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(
            400, f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}", "invalid_json"
        ) from None
    except (ValueError, RecursionError) as error:  # an integer of over 4300 digits; nesting deeper than the stack
        raise RequestError(400, f"unreadable JSON: {type(error).__name__}", "invalid_json") from None


def text_list(data: dict[str, Any], name: str, limits: Limits, *, allow_single: bool = False) -> list[str]:
    """A non-empty list of valid, non-empty strings within the limits, from field ``name``."""
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
        _check_text(text, f"{name}[{position}]", limits)
    return value


def _check_text(text: Any, where: str, limits: Limits) -> None:
    """A text the tokenizer can read: a non-empty string of encodable characters without NUL, not too long."""
    if not isinstance(text, str):
        hint = " (token arrays are not supported; send text)" if isinstance(text, (int, list)) else ""
        raise RequestError(400, f"{where} is {type(text).__name__}, not a string{hint}", "invalid_type")
    if not text.strip():
        raise RequestError(400, f"{where} is empty", "empty_text")
    if len(text) > limits.max_chars:
        raise RequestError(413, f"{where} has {len(text)} characters; at most {limits.max_chars}", "text_too_long")
    if "\x00" in text:
        raise RequestError(400, f"{where} contains a NUL character (at {text.index(chr(0))})", "invalid_text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:  # JSON allows escaped lone surrogates ("\ud800"); no tokenizer takes them
        raise RequestError(
            400,
            f"{where} has an unpaired surrogate U+{ord(text[error.start]):04X} at character {error.start}",
            "invalid_text",
        ) from None


def _error_response(error: RequestError) -> JSONResponse:
    kind = "invalid_request_error" if error.status < 500 else "server_error"
    body = {"error": {"message": error.message, "type": kind, "param": None, "code": error.code}}
    return JSONResponse(body, status_code=error.status, headers=error.headers)


# ------------------------------------------------------------------------------------ who may call (middleware)
def is_loopback(host: str) -> bool:
    """Whether a host name or address (no port) is this machine only: localhost, 127.0.0.0/8 or ::1."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The name in a Host header, without its port: ``[::1]:8000`` -> ``::1``, ``localhost:80`` -> ``localhost``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class RequestGuard:
    """Refuse, before the body is read: a foreign Host (DNS rebinding), a missing or wrong API key, a body that is
    not ``application/json`` (a browser form or ``text/plain`` fetch cannot send one without a CORS preflight);
    and, once the server is draining for shutdown, every request (503)."""

    def __init__(self, app: ASGIApp, security: Security, drain: Drain | None = None) -> None:
        self.app = app
        self.security = security
        self.drain = drain
        self._allowed = frozenset(host.lower() for host in security.allowed_hosts)
        self._key = None if security.api_key is None else security.api_key.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = self.problem(scope) if scope["type"] == "http" else None
        if problem is None:
            await self.app(scope, receive, send)
        else:
            await _error_response(problem)(scope, receive, send)

    def problem(self, scope: Scope) -> RequestError | None:
        headers = Headers(scope=scope)
        if self.security.check_host and not self._host_allowed(headers.get("host")):
            return RequestError(421, "this server does not answer for that Host name (see --allowed-host)", "bad_host")
        if self._key is not None and scope["path"] not in OPEN_PATHS and not self._authorized(headers):
            return RequestError(
                401,
                "missing or wrong API key; send 'Authorization: Bearer KEY'",
                "invalid_api_key",
                {"WWW-Authenticate": "Bearer"},
            )
        if self.drain is not None and self.drain.started:
            return shutting_down()
        if scope["method"] in BODY_METHODS and not _is_json(headers.get("content-type")):
            return RequestError(415, "send the body as 'Content-Type: application/json'", "unsupported_media_type")
        return None

    def _host_allowed(self, header: str | None) -> bool:
        if not header:
            return False
        name = _host_name(header)
        return is_loopback(name) or name in self._allowed

    def _authorized(self, headers: Headers) -> bool:
        assert self._key is not None  # nosec B101 # only called when a key is set; narrows the type
        scheme, _, token = headers.get("authorization", "").partition(" ")
        # Only HTTP's own whitespace (RFC 9110 OWS): str.strip() would also drop NBSP or NEL around a wrong key.
        given = token.strip(" \t").encode("utf-8") if scheme.lower() == "bearer" else b""
        # constant time: no key recovery from response timings; an empty key (possible from Python) admits nobody
        return bool(given) and hmac.compare_digest(given, self._key)


def _is_json(content_type: str | None) -> bool:
    media_type, _, parameters = (content_type or "").partition(";")
    charset = parameters.strip().lower()
    return media_type.strip().lower() == "application/json" and charset in ("", "charset=utf-8", 'charset="utf-8"')


# --------------------------------------------------------------------------------------------- the endpoints
@dataclass
class _Service:
    """What the endpoints share: the model's display name and shape, the limits, the batcher and the index."""

    model_name: str
    dimension: int
    max_seq_length: int
    limits: Limits
    batcher: Batcher
    counter: TokenCounter
    index: SearchIndex | None

    async def encode(self, request: Request, texts: list[str]) -> tuple[np.ndarray, list[int]]:
        """Raw embeddings and token counts; texts are tokenized (and refused) before they join a batch."""
        tokens = await self.counter.count_checked(texts, self.limits)
        return await _unless_disconnected(request, self.batcher.submit(texts)), tokens

    def truncated(self, tokens: list[int]) -> list[int]:
        return [i for i, n in enumerate(tokens) if self.max_seq_length and n > self.max_seq_length]

    async def health(self) -> dict[str, Any]:
        limits = self.limits
        return {
            "status": "ok",
            "model": self.model_name,
            "dimension": self.dimension,
            "max_tokens": self.max_seq_length,
            "index": None
            if self.index is None
            else {"size": len(self.index), "kind": self.index.manifest["spec"]["kind"]},
            "limits": {"max_texts": limits.max_texts, "max_chars": limits.max_chars, "max_k": limits.max_k},
            "batching": {**vars(self.batcher.stats), "queued": self.batcher.pending},
        }

    async def embed(self, request: Request) -> dict[str, Any]:
        data = await read_json(request, self.limits)
        texts = text_list(data, "texts", self.limits)
        normalize = data.get("normalize", True)
        if not isinstance(normalize, bool):
            raise RequestError(400, "field 'normalize' must be true or false", "invalid_type")
        vectors, tokens = await self.encode(request, texts)
        return {
            "model": self.model_name,
            "dimension": self.dimension,
            "embeddings": (_normalize(vectors) if normalize else vectors).tolist(),
            "truncated": self.truncated(tokens),
        }

    async def similarity(self, request: Request) -> dict[str, Any]:
        data = await read_json(request, self.limits)
        first = text_list(data, "a", self.limits, allow_single=True)
        second = text_list(data, "b", self.limits, allow_single=True)
        if len(first) + len(second) > self.limits.max_texts:
            raise RequestError(
                413, f"{len(first) + len(second)} texts; at most {self.limits.max_texts} per request", "too_many_texts"
            )
        vectors, tokens = await self.encode(request, first + second)
        vectors = _normalize(vectors)
        scores = vectors[: len(first)] @ vectors[len(first) :].T
        return {"model": self.model_name, "scores": scores.tolist(), "truncated": self.truncated(tokens)}

    async def search(self, request: Request) -> dict[str, Any]:
        index = self.index
        if index is None:
            raise RequestError(404, "this server has no index; start it with --index DIR", "no_index")
        data = await read_json(request, self.limits)
        single = "query" in data
        if single and "queries" in data:
            raise RequestError(400, "send either 'query' or 'queries', not both", "invalid_request")
        queries = text_list(data, "query" if single else "queries", self.limits, allow_single=single)
        k = data.get("k", 10)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= self.limits.max_k:
            raise RequestError(400, f"'k' must be a whole number from 1 to {self.limits.max_k}", "invalid_k")
        mode, source = _search_options(data)
        if mode != "vector" and not index.stores_texts:
            raise RequestError(400, "this index stores no texts (built with --ids-only); use mode 'vector'", "no_texts")
        vectors, tokens = (None, [0] * len(queries)) if mode == "keyword" else await self.encode(request, queries)
        unit = None if vectors is None else _normalize(vectors).astype(np.float32)
        run = functools.partial(index.search_embedded, queries, unit, k, mode=mode, source=source)
        try:
            hits = await asyncio.get_running_loop().run_in_executor(None, run)
        except IsbertError as error:  # the index changed under the service in a way it cannot follow
            raise RequestError(503, printable(str(error))[:300], "index_unavailable") from None
        cut = set(self.truncated(tokens))
        results = [
            {"query": query, "truncated": i in cut, "hits": [hit.as_dict() for hit in row]}
            for i, (query, row) in enumerate(zip(queries, hits, strict=True))
        ]
        return {"model": self.model_name, "k": k, "results": results[0] if single else results}

    async def openai_embeddings(self, request: Request) -> JSONResponse:
        data = await read_json(request, self.limits)
        texts = text_list(data, "input", self.limits, allow_single=True)
        encoding = data.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise RequestError(400, "'encoding_format' must be 'float' or 'base64'", "invalid_encoding_format")
        wanted = data.get("dimensions")
        if wanted is not None and wanted != self.dimension:
            raise RequestError(
                400, f"this model makes {self.dimension}-d embeddings; 'dimensions' {wanted!r}", "invalid"
            )
        vectors, tokens = await self.encode(request, texts)
        items = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(row.tobytes()).decode("ascii") if encoding == "base64" else row.tolist(),
            }
            for i, row in enumerate(_normalize(vectors).astype("<f4"))
        ]
        used = int(sum(min(n, self.max_seq_length) if self.max_seq_length else n for n in tokens))
        cut = self.truncated(tokens)
        return JSONResponse(
            {
                "object": "list",
                "data": items,
                "model": self.model_name,
                "usage": {"prompt_tokens": used, "total_tokens": used},
            },
            headers={"X-Isbert-Truncated": ",".join(map(str, cut))} if cut else None,
        )


def _search_options(data: dict[str, Any]) -> tuple[str, str | None]:
    """``mode`` (vector, keyword or hybrid) and ``source`` (a file label, or a folder ending in /) of a search."""
    mode = data.get("mode", "vector")
    if mode not in ("vector", "keyword", "hybrid"):
        raise RequestError(400, "'mode' must be 'vector', 'keyword' or 'hybrid'", "invalid_mode")
    source = data.get("source")
    if source is not None and (not isinstance(source, str) or not 0 < len(source) <= 4096 or "\x00" in source):
        raise RequestError(400, "'source' must be a file label of at most 4096 characters", "invalid_source")
    return mode, source


async def _unless_disconnected(request: Request, work: Awaitable[np.ndarray]) -> np.ndarray:
    """The result of ``work``, cancelled (so never encoded) as soon as the client disconnects."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()  # the client left, or this request's deadline passed
    if not task.done():  # cancel() only asks: the task is cancelled once it has run again
        await asyncio.wait({task})
    if task.cancelled():
        raise RequestError(400, "the client closed the connection", "client_closed")
    return task.result()


async def _disconnected(request: Request) -> None:
    """Return when the client disconnects; the body has been read, so the only message left is the disconnect."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _with_deadline(
    handler: Callable[[Request], Awaitable[Any]], seconds: float, drain: Drain
) -> Callable[[Request], Awaitable[Any]]:
    """``handler`` answered within ``seconds`` (else 504), or a 503 when a shutdown's grace ends first."""

    @functools.wraps(handler)
    async def answer(request: Request) -> Any:
        work = asyncio.ensure_future(asyncio.wait_for(handler(request), seconds))
        over = asyncio.ensure_future(drain.over())
        try:
            await asyncio.wait({work, over}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            over.cancel()
            if not work.done():
                work.cancel()  # the shutdown's grace is over (or this request was cancelled)
        if not work.done():
            raise shutting_down()
        try:
            return work.result()
        except asyncio.TimeoutError:
            raise RequestError(504, f"request not answered within {seconds:g} s", "timeout") from None

    return answer


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}

# ------------------------------------------------------------------------------------- the OpenAPI description
# The endpoints read their bodies by hand (see the module docstring), so FastAPI cannot describe them; these
# schemas do, for clients and for the API fuzzer (tests/reliability/test_api_schema.py). Only the shapes are
# described: the limits (texts, characters, tokens, k) are the server's and answered 413 or 400.
_TEXTS = {"type": "array", "items": {"type": "string"}, "minItems": 1}
_ONE_OR_MORE = {"anyOf": [{"type": "string"}, _TEXTS]}
_NUMBERS = {"type": "array", "items": {"type": "number"}}
_INDICES = {"type": "array", "items": {"type": "integer"}}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {"message": {"type": "string"}, "type": {"type": "string"}, "code": {"type": "string"}},
        }
    },
}
_BODIES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {  # path: (request body, answer)
    "/embed": (
        {"type": "object", "required": ["texts"], "properties": {"texts": _TEXTS, "normalize": {"type": "boolean"}}},
        {
            "type": "object",
            "required": ["embeddings"],
            "properties": {"embeddings": {"type": "array", "items": _NUMBERS}, "truncated": _INDICES},
        },
    ),
    "/similarity": (
        {"type": "object", "required": ["a", "b"], "properties": {"a": _ONE_OR_MORE, "b": _ONE_OR_MORE}},
        {
            "type": "object",
            "required": ["scores"],
            "properties": {"scores": {"type": "array", "items": _NUMBERS}, "truncated": _INDICES},
        },
    ),
    "/search": (
        {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "queries": _TEXTS,
                "k": {"type": "integer", "minimum": 1},
                "mode": {"enum": ["vector", "keyword", "hybrid"]},
                "source": {"type": "string"},
            },
        },
        {"type": "object", "required": ["results"]},
    ),
    "/v1/embeddings": (
        {
            "type": "object",
            "required": ["input"],
            "properties": {
                "input": _ONE_OR_MORE,
                "encoding_format": {"enum": ["float", "base64"]},
                "dimensions": {"type": "integer"},
            },
        },
        {"type": "object", "required": ["object", "data", "model", "usage"], "properties": {"data": {"type": "array"}}},
    ),
}


def _openapi(path: str) -> dict[str, Any]:
    """The request body and answers of the endpoint at ``path``, in OpenAPI terms."""
    request, answer = _BODIES[path]

    def json_of(schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": {
            "200": json_of(answer, "the answer"),
            "4XX": json_of(_ERROR, "refused: the request, the caller or its size"),
            "5XX": json_of(_ERROR, "busy (503), past its deadline (504), shutting down (503), or a server fault"),
        },
    }


def _add_error_handlers(app: FastAPI) -> None:
    """Every answer, even for unknown paths and server faults, has the OpenAI error shape."""

    @app.exception_handler(RequestError)
    async def _refused(_: Request, error: RequestError) -> JSONResponse:
        return _error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(error.status_code, "http_error")
        return _error_response(RequestError(error.status_code, str(error.detail), code, error.headers))

    @app.exception_handler(Exception)
    async def _fault(request: Request, error: Exception) -> JSONResponse:
        LOGGER.error("unexpected error answering %s %s", request.method, request.url.path, exc_info=error)
        return _error_response(RequestError(500, "internal server error; see the server log", "server_error"))


# --------------------------------------------------------------------------------------------------- the app
def create_app(
    model: SentenceTransformer,
    model_name: str,
    *,
    index: SearchIndex | None = None,
    limits: Limits | None = None,
    security: Security | None = None,
    max_batch: int = 64,
    batch_wait_ms: float = 5.0,
    batch_size: int = 32,
    index_checked: bool = False,
) -> FastAPI:
    """The FastAPI application; ``model_name`` is the display name in every answer (never a folder path).

    An index built with another model is refused here (IsbertError), unless the caller has checked the pair by the
    model's path already (``index_checked``: the CLI does, so that an ONNX export of the index's model is accepted).
    """
    limits = limits or Limits()
    security = security or Security()
    if index is not None and not index_checked:
        index.check_model(model, model_name)
    drain = Drain(limits.shutdown_timeout_s)
    batcher = Batcher(
        model_encoder(model, batch_size),
        max_batch=max_batch,
        batch_wait_s=batch_wait_ms / 1000,
        max_queued=limits.max_queued,
    )
    service = _Service(
        model_name,
        int(model.get_embedding_dimension() or 0),
        int(model.max_seq_length or 0),
        limits,
        batcher,
        TokenCounter(model),
        index,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        drain.attach()
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            service.counter.close()

    app = FastAPI(title="isbert", summary=f"sentence embeddings from {model_name}", lifespan=lifespan)
    app.state.batcher = batcher
    app.state.limits = limits
    app.state.drain = drain
    _add_error_handlers(app)
    app.add_api_route("/health", service.health, methods=["GET"])
    for path, handler in (
        ("/embed", service.embed),
        ("/similarity", service.similarity),
        ("/search", service.search),
        ("/v1/embeddings", service.openai_embeddings),
    ):
        app.add_api_route(
            path,
            _with_deadline(handler, limits.request_timeout_s, drain),
            methods=["POST"],
            openapi_extra=_openapi(path),
        )
    app.add_middleware(RequestGuard, security=security, drain=drain)
    if security.cors_origins:  # outermost, so that preflight requests are answered before the guard
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(security.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


# ------------------------------------------------------------------------------------------------ the server
def server_config(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning") -> Any:
    """The uvicorn configuration: the app's limits turned into connection deadlines and a concurrency backstop."""
    import uvicorn

    limits: Limits = app.state.limits
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        http=_protocol_with_header_deadline(limits.header_timeout_s),
        timeout_keep_alive=5,
        # After a drain (see Drain) every request has its answer; this bounds the wait for them to go out.
        timeout_graceful_shutdown=app.state.drain.margin,  # a float works
        # A backstop on open connections (uvicorn answers a plain 503 above it); max_queued is the real bound.
        limit_concurrency=4 * limits.max_queued + 64 if limits.max_queued else None,
    )


def _protocol_with_header_deadline(seconds: float) -> type:
    """uvicorn's h11 protocol, with a deadline for each request's head.

    Why: uvicorn only times out idle keep-alive connections; a client that sends its headers a byte at a time
    (slowloris) would otherwise hold its connection, and delay shutdown, for ever.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineProtocol(H11Protocol):
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
            super().connection_lost(exc)

        def _arm_head_deadline(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
            self._head_deadline = self.loop.call_later(seconds, self._head_deadline_passed)

        def _head_deadline_passed(self) -> None:
            waiting_for_a_head = self.cycle is None or self.cycle.response_complete
            if waiting_for_a_head and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning") -> None:
    """Run the app with uvicorn until interrupted."""
    import uvicorn

    drain: Drain = app.state.drain

    class DrainingServer(uvicorn.Server):
        """uvicorn's server, draining on the first SIGTERM or SIGINT (see Drain) before it stops."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            drain.begin(functools.partial(super().handle_exit, sig, frame))

    server = DrainingServer(server_config(app, host, port, log_level))
    print(f"isbert serve: listening on http://{host}:{port} (Ctrl-C to stop)", flush=True)
    server.run()
