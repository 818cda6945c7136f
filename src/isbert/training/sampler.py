"""The order of the training sentences: a pure function of (seed, epoch), so a resumed run sees the same batches.

Two orders (``--batching``): ``random`` batches (the released code's), and ``length`` batches, where sentences of
similar token length share a batch so that a batch is padded to nearly its own length instead of its longest
sentence's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence, Sized
from typing import Any, cast

import torch
from sentence_transformers.base.sampler import DefaultBatchSampler

POOL_BATCHES = 64
"""Length-grouped batching sorts pools of this many batches: large enough that each batch spans only a few token
lengths on a corpus of short sentences, small enough that a pool still mixes sentences from all over the corpus."""


def _permutation(size: int, seed: int) -> tuple[torch.Generator, list[int]]:
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator, torch.randperm(size, generator=generator).tolist()


def _chunks(order: Sequence[int], size: int, drop_last: bool) -> list[list[int]]:
    batches = [list(order[start : start + size]) for start in range(0, len(order), size)]
    if batches and drop_last and len(batches[-1]) < size:
        batches.pop()
    return batches


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, seed: int, drop_last: bool, pool_batches: int = POOL_BATCHES
) -> list[list[int]]:
    """Batches of similar length: shuffle, sort each pool of ``pool_batches`` batches by length, shuffle the batches.

    The within-pool sort is stable and keys on (length, shuffled position), so equal lengths stay randomly mixed and
    the result is a pure function of the arguments. Only the corpus's last pool can leave a short batch.
    """
    generator, order = _permutation(len(lengths), seed)
    pool = batch_size * pool_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        members = sorted(order[start : start + pool], key=lambda index: lengths[index])
        batches.extend(_chunks(members, batch_size, drop_last=False))
    if batches and drop_last and len(batches[-1]) < batch_size:
        # the short batch, if any, is the last one built: the tail of the last pool
        batches.pop()
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[index] for index in shuffled]


class EpochSeededBatchSampler(DefaultBatchSampler):
    """Shuffled batches from a permutation seeded by ``seed + epoch``.

    The stock sampler draws each epoch from one generator that a resumed run cannot fast-forward; here the order of
    every epoch is a pure function of (seed, epoch), so resuming in any epoch sees exactly the same batches.
    """

    def batches(self) -> list[list[int]]:
        _, order = _permutation(len(cast(Sized, self.sampler)), int(self.seed) + int(self.epoch))
        return _chunks(order, self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()

    def __len__(self) -> int:
        n = len(cast(Sized, self.sampler))  # the Trainer's samplers over a dataset all have a length
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


class LengthGroupedBatchSampler(EpochSeededBatchSampler):
    """:func:`length_grouped_batches` seeded by ``seed + epoch``; ``lengths`` holds each sentence's token count."""

    def __init__(self, dataset: Any, *args: Any, lengths: Sequence[int], **kwargs: Any) -> None:
        super().__init__(dataset, *args, **kwargs)
        if len(lengths) != len(dataset):
            raise ValueError(f"{len(lengths)} lengths for {len(dataset)} sentences")
        self.lengths = lengths

    def batches(self) -> list[list[int]]:
        return length_grouped_batches(self.lengths, self.batch_size, int(self.seed) + int(self.epoch), self.drop_last)


def token_lengths(model: Any, texts: Sequence[str], chunk: int = 1024) -> list[int]:
    """Each sentence's token count as the model's own preprocessing gives it (truncation included)."""
    lengths: list[int] = []
    for start in range(0, len(texts), chunk):
        features = model.preprocess(list(texts[start : start + chunk]))
        lengths.extend(features["attention_mask"].sum(dim=1).tolist())
    return lengths
