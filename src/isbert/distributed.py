"""Encoding on a Ray cluster: one model replica per worker, chunks dispatched in input order.

The driver streams the input and writes the output (see :func:`isbert.encode.encode_file`); workers receive the
texts themselves, so no shared file system is needed, only a model reference every worker can load (a hub id, the
offline alias, or a folder present on every machine). At most two chunks per worker are in flight, which bounds
memory on the driver. ``pip install "isbert[ray]"``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from isbert.encode import ChunkEncoder
from isbert.errors import IsbertError
from isbert.extras import require


def _require_ray() -> Any:
    require("ray", "ray", what="--engine ray")
    import ray

    return ray


class _EncoderWorker:
    """Holds one model replica; created once per worker by Ray."""

    def __init__(self, model_ref: str, backend: str, quantization: str | None, threads: int) -> None:
        import torch

        from isbert.model import load

        torch.set_num_threads(threads)
        options = {"quantization": quantization} if backend == "onnx" and quantization else {}
        self.model = load(model_ref, backend="onnx", **options) if backend == "onnx" else load(model_ref, device="cpu")

    def encode(self, texts: list[str], batch_size: int, normalize: bool) -> np.ndarray:
        return self.model.encode(
            texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=normalize, show_progress_bar=False
        )


def ray_chunk_encoder(
    model_ref: str,
    *,
    workers: int = 2,
    address: str | None = None,
    threads_per_worker: int = 1,
    batch_size: int = 32,
    normalize: bool = False,
    backend: str = "torch",
    quantization: str | None = None,
) -> ChunkEncoder:
    """A chunk encoder for :func:`isbert.encode.encode_file` that runs on Ray.

    Args:
        model_ref: what each worker passes to :func:`isbert.load`.
        workers: model replicas (Ray actors), each reserving ``threads_per_worker`` CPUs.
        address: a running cluster (``"auto"``, ``"ray://host:10001"``); None starts a local Ray instance.
    """
    ray = _require_ray()
    if not ray.is_initialized():
        if address is None:
            ray.init(num_cpus=workers * threads_per_worker, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    worker_class = ray.remote(num_cpus=threads_per_worker)(_EncoderWorker)
    actors = [worker_class.remote(model_ref, backend, quantization, threads_per_worker) for _ in range(workers)]

    def embed(chunks: Iterator[list[str]]) -> Iterator[np.ndarray]:
        # Round-robin over the actors (each runs its calls in order), results taken in submission order, and at
        # most two chunks per actor in flight: the input is never read ahead further than that.
        in_flight: deque[Any] = deque()
        try:
            for index, chunk in enumerate(chunks):
                in_flight.append(actors[index % len(actors)].encode.remote(chunk, batch_size, normalize))
                if len(in_flight) >= 2 * len(actors):
                    yield ray.get(in_flight.popleft())
            while in_flight:
                yield ray.get(in_flight.popleft())
        except ray.exceptions.RayError as error:
            raise IsbertError(f"a Ray worker failed: {str(error).splitlines()[0]}") from error
        finally:
            for actor in actors:
                ray.kill(actor)

    return embed
