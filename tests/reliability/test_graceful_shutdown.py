"""SIGTERM to ``isbert serve`` (issue 29, class 5): running requests are answered (done, or a JSON 503 when the
shutdown's grace ends first), requests arriving after the signal get a JSON 503, and the process is gone within
``--shutdown-timeout``. Each server is a real process, started as the CLI starts it (``serve.serve``).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

SLACK_S = 1.5  # interpreter teardown on a busy machine, beyond the shutdown timeout itself

# The service as the CLI builds it, with an encoder slowed down so that a request is still running at the signal.
SLOW_SERVER = textwrap.dedent(
    """
    import sys, time
    import isbert
    from isbert.search.serve import Limits, create_app, serve

    folder, port, shutdown_s, encode_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    app = create_app(isbert.load(folder, device="cpu"), "tiny", limits=Limits(shutdown_timeout_s=shutdown_s))
    real = app.state.batcher.encode

    def slow(texts):
        time.sleep(encode_s)
        return real(texts)

    app.state.batcher.encode = slow
    serve(app, "127.0.0.1", port)
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail("the server did not start")


def wait_until_queued(url: str) -> None:
    deadline = time.monotonic() + 30
    while httpx.get(url + "/health", timeout=5).json()["batching"]["queued"] < 1:
        assert time.monotonic() < deadline, "the request never reached the encoder"
        time.sleep(0.01)


def assert_shutting_down(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "shutting_down" and response.headers["retry-after"] == "1"


def stop_and_time(process: subprocess.Popen[str]) -> float:
    """Send SIGTERM; the seconds until the process is gone (measured by the caller's clock from now)."""
    start = time.monotonic()
    process.send_signal(signal.SIGTERM)
    return start


@pytest.mark.parametrize(
    ("encode_s", "shutdown_s", "finished"),
    [(60.0, 2.0, False), (1.0, 4.0, True)],
    ids=["running past the grace: 503", "finishing within the grace: 200"],
)
def test_sigterm_answers_running_and_new_requests_and_exits_in_time(
    tiny_isbert_folder: Path, encode_s: float, shutdown_s: float, finished: bool, reliability
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-c", SLOW_SERVER, str(tiny_isbert_folder), str(port), str(shutdown_s), str(encode_s)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_up(url, process)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(httpx.post, url + "/embed", json={"texts": ["the dog runs"]}, timeout=60)
            wait_until_queued(url)
            start = stop_and_time(process)
            reliability.fault()
            time.sleep(0.2)
            late = httpx.post(url + "/embed", json={"texts": ["a cat sleeps"]}, timeout=10)
            answer = running.result()
            answered_after = time.monotonic() - start
        process.wait(timeout=shutdown_s + 30)
        gone_after = time.monotonic() - start
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate()
    assert_shutting_down(late)
    if finished:
        assert answer.status_code == 200 and len(answer.json()["embeddings"]) == 1
    else:
        assert_shutting_down(answer)
        assert answered_after < shutdown_s, answered_after
    assert gone_after < shutdown_s + SLACK_S, gone_after
    assert process.returncode in (0, -signal.SIGTERM), (process.returncode, stderr[-3000:])
    assert "Traceback" not in stderr, stderr[-3000:]


def test_the_cli_flag_bounds_the_exit_of_an_idle_server(tiny_isbert_folder: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "isbert", "serve", str(tiny_isbert_folder), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--shutdown-timeout", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process)
        start = stop_and_time(process)
        process.wait(timeout=30)
        gone_after = time.monotonic() - start
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate()
    assert gone_after < 1 + SLACK_S, gone_after
    assert process.returncode in (0, -signal.SIGTERM), (process.returncode, stderr[-3000:])
    assert "Traceback" not in stderr, stderr[-3000:]
